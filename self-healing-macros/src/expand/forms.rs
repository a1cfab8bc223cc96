//! The expansion forms of a wrapped body: async closure, the attempt loop (async, `&mut`
//! receivers, fallback, cache), sync, and `#[async_trait]`'s boxed future.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Block, Stmt};

use crate::item::{Arg, Pass, boxed_async};

use super::{Locals, SiteDecl, Wrapper, site_statics};

impl Wrapper<'_> {
    // Input:  fn f<'life0, 'async_trait>(&'life0 mut self, x: T) -> Pin<Box<dyn Future<Output = R> + ..>> {
    //             Box::pin(async move { let mut __self = self; let x = x; BODY })
    //         }
    // Output: fn f<'life0, 'async_trait>(&'life0 mut self, x: T) -> Pin<Box<dyn Future<Output = R> + ..>> {
    //             Box::pin(async move { STATICS; ..; loop { .. attempt(async { let mut __self = &mut *self; let x = x; BODY }) .. } })
    //         }
    /// `#[async_trait]` output: the wrapper goes inside the boxed `async move` block.
    pub(super) fn wrap_async_trait(&self, block: &Block) -> TokenStream {
        let (callee, inner) = boxed_async(block).expect("Shape::AsyncTrait has a boxed async body");
        let mut stmts = inner.block.stmts.clone();
        if self.mut_self {
            reborrow_async_trait_self(&mut stmts);
        }
        let body = self.wrap(&stmts);
        let attrs = &inner.attrs;
        let async_token = &inner.async_token;
        let capture = &inner.capture;
        quote! {
            #callee(#(#attrs)* #async_token #capture { #body })
        }
    }

    // Input:  { BODY }
    // Output: { STATICS; OPS; DRIVER; CACHE_KEY; loop { ATTEMPT; match SETTLE { .. } } }
    /// The new body around the original statements.
    pub(super) fn wrap(&self, stmts: &[Stmt]) -> TokenStream {
        let k = &self.k;
        let Locals {
            ops,
            probe,
            driver,
            attempt,
            result,
            ..
        } = &self.locals;
        let statics = site_statics(&SiteDecl {
            krate: k,
            options: self.options,
            source: self.options.source.as_ref().map_or_else(
                || self.func.sig.ident.unraw().to_string(),
                |s| s.value.value(),
            ),
            function: self.func.sig.ident.unraw().to_string(),
            line_span: self.func.sig.ident.span(),
            is_async: self.shape.is_async(),
        });
        let err_ty = self.error_type();
        // Spanned at the return type: "not a `Result`" and "cannot be diagnosed" point there.
        let probe_new = quote_spanned!(self.ret_span=> #k::__private::Probe::<#err_ty>::new());
        // The reject probe, not `E::from`: a missing `From<Rejected>` is then reported once, by
        // `reject_check`. With `fail_fast = false` the guards get no reject function.
        let reject = if self.fail_fast() {
            quote_spanned!(self.ret_span=> (&&#probe).__self_healing_reject())
        } else {
            quote_spanned!(self.ret_span=> ::core::option::Option::None)
        };
        let error_ops = quote_spanned! {self.ret_span=>
            #k::__private::ErrorOps::<#err_ty>::new(
                (&&&&#probe).__self_healing_view(),
                #reject,
            )
        };
        let reject_check = self.reject_check();
        let cache_key = self.cache_key();
        let rebinds = self.rebinds();
        let fake_return = self.fake_return();
        let ops_decl = quote! {
            let #ops = {
                #[allow(unused_imports)]
                use #k::__private::probes::*;
                let #probe = #probe_new;
                #reject_check
                #error_ops
            };
        };
        if !self.shape.is_async() {
            return self.wrap_sync(stmts, &statics, &ops_decl, &rebinds, &fake_return);
        }
        if self.closure_form_fits() {
            return self.wrap_async_closure(stmts, &statics, &ops_decl, &rebinds, &fake_return);
        }
        // `&mut self` cannot move into each attempt; the block borrows it instead.
        let capture = (!self.mut_self).then(|| quote!(move));
        let start = &self.locals.start;
        let body = quote!(async #capture { #fake_return #(#stmts)* });
        // Keyed: one key per call, drawn before the first attempt, the same in every attempt.
        let (body, start_decl) = if self.keyed() {
            (
                quote!(#k::__private::with_call_key(#start.key, #body)),
                quote! {
                    let #start = #k::__private::CallStart::new();
                    #driver.set_call_start(#start);
                },
            )
        } else {
            (body, TokenStream::new())
        };
        let run = quote!(#driver.attempt(#body).await);
        let settle = self.settle();
        let other_steps = self.other_steps();
        let replayer = self.replayer();
        quote! {
            #statics
            #replayer
            #ops_decl
            let mut #driver = #k::__private::Driver::new(&__SELF_HEALING_SITE, #ops);
            #start_decl
            #cache_key
            loop {
                let #attempt = {
                    #(#rebinds)*
                    #run
                };
                match #settle {
                    #k::__private::Step::Return(#result) => return #result,
                    #other_steps
                }
            }
        }
    }

    /// Whether an async body can be a closure that makes one attempt's future: nothing is
    /// borrowed mutably (a closure cannot lend a `&mut` to the future it returns), and no
    /// fallback or cache needs the loop form's steps.
    pub(super) fn closure_form_fits(&self) -> bool {
        let unique = self.args.iter().any(|a| {
            matches!(
                a,
                Arg::Named {
                    pass: Pass::Unique,
                    ..
                } | Arg::Pattern {
                    pass: Pass::Unique,
                    ..
                }
            )
        });
        self.shape.is_async()
            && !self.mut_self
            && !unique
            && !self.has_answer()
            && !self.keyed()
            && self.options.cache.is_none()
    }

    // Input:  async fn f(&self, a: A, r: &R) -> Result<T, E> { BODY }
    // Output: { STATICS; OPS;
    //           let mut body = move || { let a = clone_arg(&a); async move { BODY } };
    //           if is_fast(&SITE) { match body().await { Ok(v) => { count_ok(&SITE); Ok(v) }, Err(e) => run_async_slow(.., body, Some(e)).await } }
    //           else { run_async_slow(.., body, None).await } }
    // The success path of a healthy site awaits the body's future in the function's own state
    // machine and returns: no extra future layer, no loop state.
    /// The new body of an async function that borrows nothing mutably.
    pub(super) fn wrap_async_closure(
        &self,
        stmts: &[Stmt],
        statics: &TokenStream,
        ops_decl: &TokenStream,
        rebinds: &[TokenStream],
        fake_return: &TokenStream,
    ) -> TokenStream {
        let k = &self.k;
        let Locals {
            ops,
            body,
            result: value,
            attempt: error,
            ..
        } = &self.locals;
        quote! {
            #statics
            #ops_decl
            let mut #body = move || {
                #(#rebinds)*
                async move {
                    #fake_return
                    #(#stmts)*
                }
            };
            if #k::__private::is_fast(&__SELF_HEALING_SITE) {
                match #body().await {
                    ::core::result::Result::Ok(#value) => {
                        #k::__private::count_ok(&__SELF_HEALING_SITE);
                        ::core::result::Result::Ok(#value)
                    }
                    ::core::result::Result::Err(#error) => {
                        #k::__private::run_async_slow(&__SELF_HEALING_SITE, #ops, #body, ::core::option::Option::Some(#error)).await
                    }
                }
            } else {
                #k::__private::run_async_slow(&__SELF_HEALING_SITE, #ops, #body, ::core::option::Option::None).await
            }
        }
    }

    // Input:  fn f(a: A, r: &R) -> Result<T, E> { BODY }
    // Output: { STATICS; OPS;
    //           let mut body = || { let a = clone_arg(&a); BODY };
    //           match run_sync(&SITE, ops, &mut body) {
    //               Run::Done(result) => result,
    //               Run::Fallback(call) => call.settle_fallback(FALLBACK(a, r)), // or give_up()
    //           } }
    // The body is a closure defined once and called per attempt: the success path of a healthy
    // site is then one load, one branch and the call, with no loop state on the stack.
    /// The new body of a sync function.
    pub(super) fn wrap_sync(
        &self,
        stmts: &[Stmt],
        statics: &TokenStream,
        ops_decl: &TokenStream,
        rebinds: &[TokenStream],
        fake_return: &TokenStream,
    ) -> TokenStream {
        let k = &self.k;
        let Locals {
            ops,
            driver,
            key,
            result,
            body,
            fallback: value,
            ..
        } = &self.locals;
        let fallback_arm = self.answer_value().map(|call| {
            let ret = &self.ret;
            quote! {
                #k::__private::Run::Fallback(#driver) => {
                    let #value: #ret = #call;
                    #driver.settle_fallback(#value)
                }
            }
        });
        let give_up = quote!(#k::__private::Run::Fallback(#driver) => #driver.give_up());
        let start = &self.locals.start;
        let run = match (&self.options.cache, fallback_arm) {
            // Keyed: the driver knows the call's key, for its event.
            (None, arm) if self.keyed() => {
                let arm = arm.unwrap_or(give_up);
                quote! {
                    match #k::__private::run_sync_keyed(&__SELF_HEALING_SITE, #ops, #start, #body) {
                        #k::__private::Run::Done(#result) => #result,
                        #arm
                    }
                }
            }
            // The common case returns the result directly: the success path stays in registers.
            (None, None) => quote!(#k::__private::run_sync(&__SELF_HEALING_SITE, #ops, #body)),
            (None, Some(arm)) => quote! {
                match #k::__private::run_sync_with_fallback(&__SELF_HEALING_SITE, #ops, #body) {
                    #k::__private::Run::Done(#result) => #result,
                    #arm
                }
            },
            (Some(cache), arm) => {
                let call = quote_spanned!(cache.span=> #k::__private::run_sync_cached(&__SELF_HEALING_SITE, #ops, #key, #body));
                let arm = arm.unwrap_or(give_up);
                quote! {
                    match #call {
                        #k::__private::Run::Done(#result) => #result,
                        #arm
                    }
                }
            }
        };
        // The key is taken before the body closure borrows the arguments: a body that mutates
        // `self` (or a `&mut` argument) holds a unique borrow for as long as the closure lives.
        let key_decl = self.options.cache.as_ref().map(|_| {
            let adds = self.cache_key_adds();
            quote! {
                let #key = {
                    let mut #key = #k::__private::cache_key_start();
                    #(#adds)*
                    #k::__private::cache_key_finish(#key)
                };
            }
        });
        // Keyed: one key per call; each attempt's body runs with it as the current key.
        let (start_decl, inner) = if self.keyed() {
            (
                quote!(let #start = #k::__private::CallStart::new();),
                quote! {
                    #k::__private::with_call_key_sync(#start.key, || {
                        #fake_return
                        #(#stmts)*
                    })
                },
            )
        } else {
            (TokenStream::new(), quote!(#fake_return #(#stmts)*))
        };
        quote! {
            #statics
            #ops_decl
            #key_decl
            #start_decl
            let #body = || {
                #(#rebinds)*
                #inner
            };
            #run
        }
    }
}

// Input:  let mut __self = self;
// Output: let mut __self = &mut *self;
/// `#[async_trait]` moves `&mut self` into its body; each attempt must reborrow it instead.
fn reborrow_async_trait_self(stmts: &mut [Stmt]) {
    for stmt in stmts {
        let Stmt::Local(local) = stmt else { continue };
        let syn::Pat::Ident(pat) = &local.pat else {
            continue;
        };
        if pat.ident != "__self" {
            continue;
        }
        if let Some(init) = &mut local.init
            && matches!(&*init.expr, syn::Expr::Path(p) if p.path.is_ident("self"))
        {
            let expr = &init.expr;
            *init.expr = syn::parse_quote_spanned!(expr.span()=> &mut *#expr);
        }
    }
}
