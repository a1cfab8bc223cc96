//! The pieces the forms are built from: the error type, the guards' checks, cache keys,
//! argument re-binding per attempt, and the settle and fallback steps.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Path};

use crate::item::{Arg, Pass};

use super::{Locals, Wrapper};

impl Wrapper<'_> {
    /// `<RET as ResultParts>::Err`, spanned at the return type so "not a `Result`" points there.
    pub(super) fn error_type(&self) -> TokenStream {
        let k = &self.k;
        let ret = &self.ret_named;
        quote_spanned!(self.ret_span=> <#ret as #k::__private::ResultParts>::Err)
    }

    /// Whether the site's guards may answer a call with a `Rejected` (not `fail_fast = false`).
    pub(super) fn fail_fast(&self) -> bool {
        self.options.fail_fast.as_ref().is_none_or(|s| s.value)
    }

    // Input:  fn f() -> Result<T, E>
    // Output: let _ = K::__private::RequireReject { view: &(&&&&probe).__self_healing_view() };   (at `E`)
    // (nothing with `fail_fast = false`)
    /// The guards answer calls without the body producing an error: the error type must be able
    /// to represent that (`From<Rejected>`). One check per function, so one error; it goes through
    /// the error view so that a type that cannot be diagnosed at all is reported only for that.
    pub(super) fn reject_check(&self) -> TokenStream {
        if !self.fail_fast() {
            return TokenStream::new();
        }
        let span = self.err_span;
        // The whole check as if written at the error type, so the error points at `E` in
        // `Result<T, E>` and at nothing else; only the probe keeps its hygiene.
        let k = written_at(self.k.clone(), span);
        let mut probe = self.locals.probe.clone();
        probe.set_span(probe.span().located_at(span));
        quote_spanned! {span=>
            let _ = #k::__private::RequireReject {
                view: &(&&&&#probe).__self_healing_view(),
            };
        }
    }

    // Input:  fn f(&self, db: &Db, id: u64, filter: Filter) with cache = "30s", cache_skip(db)
    // Output: { let mut key = cache_key_start(); cache_key_add_self(&mut key, &*self);
    //           cache_key_add(&mut key, &id); cache_key_add(&mut key, &filter);
    //           driver.set_cache_key(cache_key_finish(key)); }
    /// The cache key over the receiver and the arguments not listed in `cache_skip`; nothing
    /// without `cache`.
    pub(super) fn cache_key(&self) -> TokenStream {
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

    /// One `cache_key_add(&mut key, &arg);` per argument that is part of the key, the receiver
    /// first (`cache_key_add_self`, unless `cache_skip(self)`): two instances of a type (two
    /// tenants' repositories) must not serve each other's values.
    pub(super) fn cache_key_adds(&self) -> Vec<TokenStream> {
        let k = &self.k;
        let key = &self.locals.key;
        let skipped: Vec<String> = self.options.cache_skip.as_ref().map_or(Vec::new(), |s| {
            s.value.iter().map(|i| i.to_string()).collect()
        });
        self.args
            .iter()
            .filter_map(|arg| {
                let (ident, ty, cfgs) = match arg {
                    Arg::Receiver {
                        tokens, self_span, ..
                    } => {
                        if skipped.iter().any(|s| s == "self") {
                            return None;
                        }
                        // `&*self` spans the whole receiver (`&` at its start, `self` at its
                        // end), so "must implement `Hash`" points at `&self` / `&mut self`; the
                        // own trait gives that error a message that names `cache_skip(self)`.
                        // For `&self` that is a reborrow clippy would flag in the user's code.
                        let this = Ident::new("self", *self_span);
                        return Some(quote_spanned! {tokens.span()=>
                            #[allow(clippy::borrow_deref_ref)]
                            #k::__private::cache_key_add_self(&mut #key, &*#this);
                        });
                    }
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
    pub(super) fn rebinds(&self) -> Vec<TokenStream> {
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
    pub(super) fn fake_return(&self) -> TokenStream {
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
    pub(super) fn settle(&self) -> TokenStream {
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

    /// Whether each call gets an idempotency key (`idempotent = "keyed"`, `queue_for_later`).
    pub(super) fn keyed(&self) -> bool {
        self.options.queue_for_later.is_some()
            || self
                .options
                .idempotent
                .as_ref()
                .is_some_and(|s| s.value == crate::attr::Idempotent::Keyed)
    }

    /// Whether the site declared an answer for when healing cannot produce its value.
    pub(super) fn has_answer(&self) -> bool {
        let o = self.options;
        o.fallback.is_some()
            || o.default.is_some()
            || o.skip.is_some()
            || o.queue_for_later.is_some()
    }

    // Input:  fallback = backup | default = EXPR | skip
    // Output: backup(a, b).await | Ok(EXPR) | Ok(())
    /// The value a declared fallback, default or skip answers with, of the function's return
    /// type; spanned at the option, so a type mismatch points there.
    pub(super) fn answer_value(&self) -> Option<TokenStream> {
        let o = self.options;
        if let Some(fallback) = &o.fallback {
            return Some(self.fallback_call(&fallback.value, fallback.span));
        }
        if let Some(default) = &o.default {
            let expr = &default.value;
            return Some(quote_spanned!(default.span=> ::core::result::Result::Ok(#expr)));
        }
        if let Some(skip) = &o.skip {
            return Some(quote_spanned!(skip.span=> ::core::result::Result::Ok(())));
        }
        None
    }

    // Input:  fallback = Self::backup, on `async fn f(&self, a: A, b: B)`
    // Output: Step::Rerun => {}
    //         Step::Fallback => { let fb: RET = Self::backup(self, a, b).await; return driver.settle_fallback(fb); }
    // (`default = EXPR`: `Ok(EXPR)`; `skip`: `Ok(())`; without any: `Step::Rerun | Step::Fallback => {}`)
    // Input:  queue_for_later, on `async fn f(a: A, b: B)`
    // Output: Step::Fallback => { if let Some(r) = driver.settle_queued(queue_payload(&(&a, &b,))).await { return r; } }
    /// The match arms after `Return`.
    pub(super) fn other_steps(&self) -> TokenStream {
        let k = &self.k;
        let Locals {
            driver,
            fallback: value,
            result,
            ..
        } = &self.locals;
        if let Some(queue) = &self.options.queue_for_later {
            let args = self.args.iter().filter_map(|a| match a {
                Arg::Named { ident, .. } | Arg::Pattern { ident, .. } => Some(ident),
                Arg::Receiver { .. } => None,
            });
            let settle = quote_spanned! {queue.span=>
                #driver.settle_queued(#k::__private::queue_payload(&(#(&#args,)*))).await
            };
            return quote! {
                #k::__private::Step::Rerun => {}
                #k::__private::Step::Fallback => {
                    if let ::core::option::Option::Some(#result) = #settle {
                        return #result;
                    }
                }
            };
        }
        let Some(answer) = self.answer_value() else {
            return quote!(#k::__private::Step::Rerun | #k::__private::Step::Fallback => {});
        };
        let ret = &self.ret;
        quote! {
            #k::__private::Step::Rerun => {}
            #k::__private::Step::Fallback => {
                let #value: #ret = #answer;
                return #driver.settle_fallback(#value);
            }
        }
    }

    /// `FALLBACK(self, a, b)` (`.await`ed for async functions), spanned at the fallback's path so
    /// a signature mismatch points there. The arguments are moved: the call ends the function.
    pub(super) fn fallback_call(&self, path: &Path, span: Span) -> TokenStream {
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

/// `tokens` as if written at `span`: shown there, and resolved there.
fn written_at(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(group) => {
                let mut respanned = Group::new(group.delimiter(), written_at(group.stream(), span));
                respanned.set_span(span);
                TokenTree::Group(respanned)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}
