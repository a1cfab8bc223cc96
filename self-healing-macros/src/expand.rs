//! Code generation for `#[self_healing]`: the site statics, the error view, and the loop that runs
//! the unchanged body once per attempt. The entry point turns any error into "the errors plus the
//! original item", so the rest of the crate (and the IDE) keeps working.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Block, Ident, Path, ReturnType, Stmt, Type};

use crate::attr::{Form, Options};
use crate::item::{Arg, Func, Pass, Shape, boxed_async, rewrite_signature};
use crate::validate::{Errors, Target, validate};

/// `#[self_healing(args)] item`: the wrapped item, or the errors next to the item as written.
pub(crate) fn self_healing(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand_attribute(args, item.clone()) {
        Ok(tokens) => tokens,
        Err(errors) => {
            let errors = errors.into_compile_error();
            quote!(#errors #item)
        }
    }
}

/// Parses, validates and expands; every error found on the way is in the `Err`.
pub(crate) fn expand_attribute(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let options = match Options::parse(args.clone(), Form::Attribute, &mut errors) {
        Ok(options) => options,
        Err(e) => {
            errors.push(e);
            Options::default()
        }
    };
    let func = match Func::parse(item) {
        Ok(func) => func,
        Err(e) => {
            errors.push(e);
            return errors.into_result().map(|()| TokenStream::new());
        }
    };
    let args_list = Arg::all(&func.sig);
    let shape = func.block.as_ref().map(|b| Shape::of(&func.sig, b));
    let target = Target {
        func: &func,
        args: &args_list,
        shape: shape.as_ref(),
        attr_args: &args,
    };
    validate(&options, Form::Attribute, Some(&target), &mut errors);
    errors.into_result()?;
    let shape = shape.expect("validation rejects functions without a body");
    Ok(Wrapper::new(&options, &func, args_list, shape).expand())
}

/// The `crate = ".."` path, or `::self_healing`.
pub(crate) fn crate_path(options: &Options) -> TokenStream {
    match &options.krate {
        Some(setting) => setting.value.to_token_stream(),
        None => quote!(::self_healing),
    }
}

/// What the site statics need to know.
pub(crate) struct SiteDecl<'a> {
    pub(crate) krate: &'a TokenStream,
    pub(crate) options: &'a Options,
    pub(crate) source: String,
    pub(crate) function: String,
    /// Where `line!()` is taken.
    pub(crate) line_span: Span,
    pub(crate) is_async: bool,
}

// Input:  source = "createContact", category = "database", timeout = "2s"
// Output: static __SELF_HEALING_SITE: K::__private::Site = K::__private::Site::new(SiteInfo { .. });
//         #[distributed_slice(K::__private::SITES)]
//         static __SELF_HEALING_SITE_ENTRY: &K::__private::Site = &__SELF_HEALING_SITE;
/// The call-site record and its registration in the runtime's list of sites.
pub(crate) fn site_statics(decl: &SiteDecl<'_>) -> TokenStream {
    let k = decl.krate;
    let o = decl.options;
    let source = &decl.source;
    let function = &decl.function;
    let category = o
        .category
        .as_ref()
        .map_or(crate::attr::Category::Runtime, |s| s.value)
        .variant();
    let is_async = decl.is_async;
    let mut chain = quote!(#k::__private::SiteOptions::new().with_async(#is_async));
    if let Some(s) = &o.idempotent {
        let v = s.value;
        chain.extend(quote!(.with_idempotent(#v)));
    }
    if let Some(s) = &o.timeout {
        let nanos = proc_macro2::Literal::u64_unsuffixed(s.value);
        chain.extend(quote!(.with_timeout(::core::time::Duration::from_nanos(#nanos))));
    }
    if let Some(s) = &o.max_attempts {
        let n = proc_macro2::Literal::u64_unsuffixed(s.value);
        chain.extend(quote!(.with_max_attempts(#n)));
    }
    if let Some(s) = &o.cache {
        let nanos = proc_macro2::Literal::u64_unsuffixed(s.value);
        chain.extend(quote!(.with_cache(::core::time::Duration::from_nanos(#nanos))));
    }
    if let Some(s) = &o.fallback {
        let text = s.value.to_token_stream().to_string().replace(' ', "");
        chain.extend(quote!(.with_fallback(#text)));
    }
    if let Some(s) = &o.catch_panic {
        let v = s.value;
        chain.extend(quote!(.with_catch_panic(#v)));
    }
    let line = quote_spanned!(decl.line_span=> ::core::line!());
    quote! {
        static __SELF_HEALING_SITE: #k::__private::Site =
            #k::__private::Site::new(#k::__private::SiteInfo {
                source: #source,
                category: #k::__private::Category::#category,
                function: #function,
                module_path: ::core::module_path!(),
                file: ::core::file!(),
                line: #line,
                options: #chain,
            });
        #[#k::__private::linkme::distributed_slice(#k::__private::SITES)]
        #[linkme(crate = #k::__private::linkme)]
        static __SELF_HEALING_SITE_ENTRY: &#k::__private::Site = &__SELF_HEALING_SITE;
    }
}

/// Names of generated locals: `Span::mixed_site()`, so the body can neither see nor shadow them.
struct Locals {
    ops: Ident,
    probe: Ident,
    driver: Ident,
    key: Ident,
    attempt: Ident,
    result: Ident,
    fallback: Ident,
    fake_return: Ident,
    body: Ident,
}

impl Locals {
    fn new() -> Self {
        let name = |n: &str| format_ident!("__self_healing_{}", n, span = Span::mixed_site());
        Locals {
            ops: name("ops"),
            probe: name("probe"),
            driver: name("driver"),
            key: name("key"),
            attempt: name("attempt"),
            result: name("result"),
            fallback: name("fallback"),
            fake_return: name("fake_return"),
            body: name("body"),
        }
    }
}

/// Everything the expansion of one function needs.
struct Wrapper<'a> {
    k: TokenStream,
    options: &'a Options,
    func: &'a Func,
    args: Vec<Arg>,
    shape: Shape,
    /// The return type (the future's output for `#[async_trait]`), `impl Trait` replaced by `_`:
    /// for type ascriptions.
    ret: Type,
    /// The same with `impl Trait` replaced by `()`: for naming the error type, which must not
    /// contain inference variables.
    ret_named: Type,
    ret_span: Span,
    /// The body takes `&mut self`: the attempt borrows `self` instead of moving it.
    mut_self: bool,
    locals: Locals,
}

impl<'a> Wrapper<'a> {
    fn new(options: &'a Options, func: &'a Func, args: Vec<Arg>, shape: Shape) -> Self {
        let declared: Type = match (&shape, &func.sig.output) {
            (Shape::AsyncTrait { output }, _) => (**output).clone(),
            (_, ReturnType::Type(_, ty)) => (**ty).clone(),
            (_, ReturnType::Default) => syn::parse_quote!(()),
        };
        let ret_span = declared.span();
        let ret = replace_impl_trait(
            &declared,
            &Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](ret_span),
            }),
        );
        let ret_named = replace_impl_trait(&declared, &syn::parse_quote_spanned!(ret_span=> ()));
        let mut_self = args
            .iter()
            .any(|a| matches!(a, Arg::Receiver { mutable: true, .. }));
        Wrapper {
            k: crate_path(options),
            options,
            func,
            args,
            shape,
            ret,
            ret_named,
            ret_span,
            mut_self,
            locals: Locals::new(),
        }
    }

    /// The function with its body replaced; attributes, signature and generics as written.
    fn expand(&self) -> TokenStream {
        let Func {
            attrs,
            vis,
            defaultness,
            sig,
            block,
            ..
        } = self.func;
        let sig = rewrite_signature(sig, &self.args);
        let block = block.as_ref().expect("validated: the function has a body");
        let body = match &self.shape {
            Shape::Sync | Shape::Async => self.wrap(&block.stmts),
            Shape::AsyncTrait { .. } => self.wrap_async_trait(block),
        };
        quote! {
            #(#attrs)*
            #vis #defaultness #sig {
                #body
            }
        }
    }

    // Input:  fn f<'life0, 'async_trait>(&'life0 mut self, x: T) -> Pin<Box<dyn Future<Output = R> + ..>> {
    //             Box::pin(async move { let mut __self = self; let x = x; BODY })
    //         }
    // Output: fn f<'life0, 'async_trait>(&'life0 mut self, x: T) -> Pin<Box<dyn Future<Output = R> + ..>> {
    //             Box::pin(async move { STATICS; ..; loop { .. attempt(async { let mut __self = &mut *self; let x = x; BODY }) .. } })
    //         }
    /// `#[async_trait]` output: the wrapper goes inside the boxed `async move` block.
    fn wrap_async_trait(&self, block: &Block) -> TokenStream {
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
    fn wrap(&self, stmts: &[Stmt]) -> TokenStream {
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
        let error_ops = quote_spanned! {self.ret_span=>
            #k::__private::ErrorOps::<#err_ty>::new(
                (&&&&#probe).__self_healing_view(),
                (&&#probe).__self_healing_reject(),
            )
        };
        let reject_checks = self.reject_checks();
        let cache_key = self.cache_key();
        let rebinds = self.rebinds();
        let fake_return = self.fake_return();
        let ops_decl = quote! {
            let #ops = {
                #[allow(unused_imports)]
                use #k::__private::probes::*;
                let #probe = #probe_new;
                #error_ops
            };
        };
        if !self.shape.is_async() {
            return self.wrap_sync(
                stmts,
                &statics,
                &reject_checks,
                &ops_decl,
                &rebinds,
                &fake_return,
            );
        }
        if self.closure_form_fits() {
            return self.wrap_async_closure(
                stmts,
                &statics,
                &reject_checks,
                &ops_decl,
                &rebinds,
                &fake_return,
            );
        }
        // `&mut self` cannot move into each attempt; the block borrows it instead.
        let capture = (!self.mut_self).then(|| quote!(move));
        let run = quote!(#driver.attempt(async #capture { #fake_return #(#stmts)* }).await);
        let settle = self.settle();
        let other_steps = self.other_steps();
        quote! {
            #statics
            #reject_checks
            #ops_decl
            let mut #driver = #k::__private::Driver::new(&__SELF_HEALING_SITE, #ops);
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
    fn closure_form_fits(&self) -> bool {
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
            && self.options.fallback.is_none()
            && self.options.cache.is_none()
    }

    // Input:  async fn f(&self, a: A, r: &R) -> Result<T, E> { BODY }
    // Output: { STATICS; OPS;
    //           let mut body = move || { let a = clone_arg(&a); async move { BODY } };
    //           if is_fast(&SITE) { match body().await { Ok(v) => Ok(v), Err(e) => run_async_slow(.., body, Some(e)).await } }
    //           else { run_async_slow(.., body, None).await } }
    // The success path of a healthy site awaits the body's future in the function's own state
    // machine and returns: no extra future layer, no loop state.
    /// The new body of an async function that borrows nothing mutably.
    fn wrap_async_closure(
        &self,
        stmts: &[Stmt],
        statics: &TokenStream,
        reject_checks: &TokenStream,
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
            #reject_checks
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
                    ::core::result::Result::Ok(#value) => ::core::result::Result::Ok(#value),
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
    //               Run::Fallback(mut driver) => driver.settle_fallback(FALLBACK(a, r)), // or give_up()
    //           } }
    // The body is a closure defined once and called per attempt: the success path of a healthy
    // site is then one load, one branch and the call, with no loop state on the stack.
    /// The new body of a sync function.
    fn wrap_sync(
        &self,
        stmts: &[Stmt],
        statics: &TokenStream,
        reject_checks: &TokenStream,
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
        let fallback_arm = self.options.fallback.as_ref().map(|fallback| {
            let ret = &self.ret;
            let call = self.fallback_call(&fallback.value, fallback.span);
            quote! {
                #k::__private::Run::Fallback(mut #driver) => {
                    let #value: #ret = #call;
                    #driver.settle_fallback(#value)
                }
            }
        });
        let give_up = quote!(#k::__private::Run::Fallback(mut #driver) => #driver.give_up());
        let run = match (&self.options.cache, fallback_arm) {
            // The common case returns the result directly: the success path stays in registers.
            (None, None) => quote!(#k::__private::run_sync(&__SELF_HEALING_SITE, #ops, #body)),
            (None, Some(arm)) => quote! {
                match #k::__private::run_sync_with_fallback(&__SELF_HEALING_SITE, #ops, #body) {
                    #k::__private::Run::Done(#result) => #result,
                    #arm
                }
            },
            (Some(cache), arm) => {
                let adds = self.cache_key_adds();
                let call = quote_spanned!(cache.span=> #k::__private::run_sync_cached(&__SELF_HEALING_SITE, #ops, #key, #body));
                let arm = arm.unwrap_or(give_up);
                quote! {
                    match {
                        let #key = {
                            let mut #key = #k::__private::cache_key_start();
                            #(#adds)*
                            #k::__private::cache_key_finish(#key)
                        };
                        #call
                    } {
                        #k::__private::Run::Done(#result) => #result,
                        #arm
                    }
                }
            }
        };
        quote! {
            #statics
            #reject_checks
            #ops_decl
            let #body = || {
                #(#rebinds)*
                #fake_return
                #(#stmts)*
            };
            #run
        }
    }

    /// `<RET as ResultParts>::Err`, spanned at the return type so "not a `Result`" points there.
    fn error_type(&self) -> TokenStream {
        let k = &self.k;
        let ret = &self.ret_named;
        quote_spanned!(self.ret_span=> <#ret as #k::__private::ResultParts>::Err)
    }

    // Input:  timeout = "2s", catch_panic = true
    // Output: K::__private::require_reject::<ERR>();   (once per option, spanned at its value)
    /// `timeout` and `catch_panic` need an error type that can say "timed out" or "panicked".
    fn reject_checks(&self) -> TokenStream {
        let k = &self.k;
        let err_ty = self.error_type();
        let timeout = self.options.timeout.as_ref().map(|s| s.span);
        let catch_panic = self
            .options
            .catch_panic
            .as_ref()
            .filter(|s| s.value)
            .map(|s| s.span);
        timeout
            .into_iter()
            .chain(catch_panic)
            .map(|span| {
                // The whole check at the option's value, so the error points at `"2s"`.
                let err_ty = respan(err_ty.clone(), span);
                quote_spanned!(span=> #k::__private::require_reject::<#err_ty>();)
            })
            .collect()
    }

    // Input:  fn f(db: &Db, id: u64, filter: Filter) with cache = "30s", cache_skip(db)
    // Output: { let mut key = cache_key_start(); cache_key_add(&mut key, &id); cache_key_add(&mut key, &filter);
    //           driver.set_cache_key(cache_key_finish(key)); }
    /// The cache key over the arguments not listed in `cache_skip`; nothing without `cache`.
    fn cache_key(&self) -> TokenStream {
        if self.options.cache.is_none() {
            return TokenStream::new();
        }
        let k = &self.k;
        let Locals { key, driver, .. } = &self.locals;
        let adds = self.cache_key_adds();
        quote! {
            {
                let mut #key = #k::__private::cache_key_start();
                #(#adds)*
                #driver.set_cache_key(#k::__private::cache_key_finish(#key));
            }
        }
    }

    /// One `cache_key_add(&mut key, &arg);` per argument that is part of the key.
    fn cache_key_adds(&self) -> Vec<TokenStream> {
        let k = &self.k;
        let key = &self.locals.key;
        let skipped: Vec<String> = self.options.cache_skip.as_ref().map_or(Vec::new(), |s| {
            s.value.iter().map(|i| i.to_string()).collect()
        });
        self.args
            .iter()
            .filter_map(|arg| {
                let (ident, ty, cfgs) = match arg {
                    Arg::Receiver { .. } => return None,
                    Arg::Named {
                        ident, ty, cfgs, ..
                    } => (ident, ty, cfgs),
                    Arg::Pattern {
                        ident, ty, cfgs, ..
                    } => (ident, ty, cfgs),
                };
                if skipped.contains(&ident.to_string()) {
                    return None;
                }
                Some(quote_spanned! {ty.span()=>
                    #(#cfgs)*
                    #k::__private::cache_key_add(&mut #key, &#ident);
                })
            })
            .collect()
    }

    // Input:  fn f(&self, name: String, mut n: u32, (a, b): (u32, u32), out: &mut Vec<u8>, r: &T)
    // Output: let name = clone_arg(&name); let mut n = clone_arg(&n);
    //         let (a, b) = clone_arg(&__self_healing_arg3); let out = &mut *out;
    /// Fresh arguments for one attempt: owned ones cloned, `&mut` ones reborrowed.
    fn rebinds(&self) -> Vec<TokenStream> {
        let k = &self.k;
        self.args
            .iter()
            .filter_map(|arg| {
                let (pat, source, ty, pass, cfgs) = match arg {
                    Arg::Receiver { .. } => return None,
                    Arg::Named {
                        ident,
                        mutability,
                        ty,
                        pass,
                        cfgs,
                    } => {
                        if *pass == Pass::Shared && mutability.is_none() {
                            return None;
                        }
                        (quote!(#mutability #ident), ident, ty, pass, cfgs)
                    }
                    Arg::Pattern { pat: syn::Pat::Wild(_), .. } => return None,
                    Arg::Pattern {
                        ident,
                        pat,
                        ty,
                        pass,
                        cfgs,
                    } => (pat.to_token_stream(), ident, ty, pass, cfgs),
                };
                let value = match pass {
                    Pass::Owned => quote_spanned!(ty.span()=> #k::__private::clone_arg(&#source)),
                    Pass::Shared => quote!(#source),
                    Pass::Unique => quote!(&mut *#source),
                };
                Some(quote_spanned! {ty.span()=>
                    #(#cfgs)*
                    #[allow(clippy::redundant_clone, clippy::used_underscore_binding, clippy::let_unit_value)]
                    let #pat = #value;
                })
            })
            .collect()
    }

    // Input:  fn f() -> Result<impl Display, E>
    // Output: if false { let fake: Result<_, E> = loop {}; return fake; }
    /// A return that never runs but gives the block its type, so `?` and `return` infer.
    fn fake_return(&self) -> TokenStream {
        let ret = &self.ret;
        let fake = &self.locals.fake_return;
        quote_spanned! {self.ret_span=>
            #[allow(
                unknown_lints,
                unreachable_code,
                clippy::diverging_sub_expression,
                clippy::empty_loop,
                clippy::let_unit_value,
                clippy::let_with_type_underscore,
                clippy::needless_return,
                clippy::unreachable
            )]
            if false {
                let #fake: #ret = loop {};
                return #fake;
            }
        }
    }

    /// `driver.settle(attempt).await` and its sync and cached variants.
    fn settle(&self) -> TokenStream {
        let Locals {
            driver, attempt, ..
        } = &self.locals;
        let cached = self.options.cache.as_ref();
        let name = match (cached.is_some(), self.shape.is_async()) {
            (false, true) => "settle",
            (true, true) => "settle_cached",
            (false, false) => "settle_sync",
            (true, false) => "settle_cached_sync",
        };
        // A cached value must be `Clone + Send + Sync + 'static`: say so at `cache = ".."`.
        let span = cached.map_or_else(Span::call_site, |s| s.span);
        let method = Ident::new(name, span);
        let call = quote_spanned!(span=> #driver.#method(#attempt));
        if self.shape.is_async() {
            quote!(#call.await)
        } else {
            call
        }
    }

    // Input:  fallback = Self::backup, on `async fn f(&self, a: A, b: B)`
    // Output: Step::Rerun => {}
    //         Step::Fallback => { let fb: RET = Self::backup(self, a, b).await; return driver.settle_fallback(fb); }
    // (without a fallback: `Step::Rerun | Step::Fallback => {}`)
    /// The match arms after `Return`.
    fn other_steps(&self) -> TokenStream {
        let k = &self.k;
        let Some(fallback) = &self.options.fallback else {
            return quote!(#k::__private::Step::Rerun | #k::__private::Step::Fallback => {});
        };
        let Locals {
            driver,
            fallback: value,
            ..
        } = &self.locals;
        let ret = &self.ret;
        let call = self.fallback_call(&fallback.value, fallback.span);
        quote! {
            #k::__private::Step::Rerun => {}
            #k::__private::Step::Fallback => {
                let #value: #ret = #call;
                return #driver.settle_fallback(#value);
            }
        }
    }

    /// `FALLBACK(self, a, b)` (`.await`ed for async functions), spanned at the fallback's path so
    /// a signature mismatch points there. The arguments are moved: the call ends the function.
    fn fallback_call(&self, path: &Path, span: Span) -> TokenStream {
        let args = self.args.iter().map(|arg| match arg {
            Arg::Receiver { .. } => quote_spanned!(span=> self),
            Arg::Named { ident, .. } | Arg::Pattern { ident, .. } => {
                let mut ident = ident.clone();
                ident.set_span(ident.span().located_at(span));
                ident.into_token_stream()
            }
        });
        let await_ = self.shape.is_async().then(|| quote_spanned!(span=> .await));
        quote_spanned!(span=> #path(#(#args),*) #await_)
    }
}

/// `tokens` shown at `span`, resolved as before.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(group) => {
                let mut respanned = Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(group.span().located_at(span));
                TokenTree::Group(respanned)
            }
            mut other => {
                other.set_span(other.span().located_at(span));
                other
            }
        })
        .collect()
}

/// Replaces every `impl Trait` in `ty` with `with`.
fn replace_impl_trait(ty: &Type, with: &Type) -> Type {
    struct Replace<'a>(&'a Type);
    impl VisitMut for Replace<'_> {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::ImplTrait(_) = ty {
                *ty = self.0.clone();
            } else {
                syn::visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    let mut ty = ty.clone();
    Replace(with).visit_type_mut(&mut ty);
    ty
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
