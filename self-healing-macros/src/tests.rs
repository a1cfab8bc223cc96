//! Unit tests on `proc_macro2` tokens: the errors of each check, and a few expansion snapshots.

use proc_macro2::TokenStream;
use quote::quote;

use crate::expand::expand_attribute;
use crate::site_macro::expand_site;

/// The messages of a failed expansion.
fn errors(args: TokenStream, item: TokenStream) -> Vec<String> {
    match expand_attribute(args, item) {
        Ok(tokens) => panic!("expected errors, got {tokens}"),
        Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
    }
}

fn site_errors(input: TokenStream) -> Vec<String> {
    match expand_site(input) {
        Ok(tokens) => panic!("expected errors, got {tokens}"),
        Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
    }
}

/// Token strings compared without whitespace: `quote!` joins `<<` where generated code has `< <`.
fn norm(tokens: &str) -> String {
    tokens.split_whitespace().collect()
}

fn expands(args: TokenStream, item: TokenStream) -> String {
    expand_attribute(args, item)
        .unwrap_or_else(|e| panic!("{e}"))
        .to_string()
}

const TWICE: &str = "`#[self_healing]` is applied twice to `create_contact`; remove one (double wrapping would heal every failure twice)";
const NOT_RESULT: &str = "`#[self_healing]` functions must return `Result<T, E>`; a function that cannot fail has nothing to heal";
const BY_VALUE: &str = "a `#[self_healing]` method cannot take `self` by value: each attempt needs its own receiver; take `&self` or `&mut self`";

#[test]
fn applied_twice() {
    for attr in [
        quote!(#[self_healing]),
        quote!(#[self_healing::self_healing(category = "api")]),
        quote!(#[::self_healing::self_healing]),
    ] {
        let item = quote!(#attr fn create_contact() -> Result<(), E> { Ok(()) });
        assert_eq!(errors(quote!(), item), [TWICE]);
    }
    // Under a renamed import, the first expansion is recognised by its body.
    let expanded: TokenStream = expands(
        quote!(),
        quote!(
            fn create_contact() -> Result<(), E> {
                Ok(())
            }
        ),
    )
    .parse()
    .unwrap();
    assert_eq!(errors(quote!(source = "createContact"), expanded), [TWICE]);
}

#[test]
fn function_kinds() {
    assert_eq!(
        errors(
            quote!(),
            quote!(
                const fn f() -> Result<(), E> {
                    Ok(())
                }
            )
        ),
        ["`#[self_healing]` cannot wrap a `const fn`: healing happens at run time; remove `const`"]
    );
    assert_eq!(
        errors(
            quote!(),
            quote!(
                extern "C" fn f() -> Result<(), E> {
                    Ok(())
                }
            )
        ),
        [
            "`#[self_healing]` cannot wrap an `extern \"C\"` function; wrap a Rust function that calls it instead"
        ]
    );
    assert_eq!(
        errors(
            quote!(),
            quote!(
                fn f(&self) -> Result<(), E>;
            )
        ),
        ["`#[self_healing]` needs a body to wrap; put it on the method in each `impl` instead"]
    );
    assert_eq!(
        errors(
            quote!(),
            quote!(
                struct NotAFn;
            )
        ),
        [
            "`#[self_healing]` can only be applied to a function (a free fn, a method, or a trait method with a body)"
        ]
    );
    // `unsafe fn` and `default fn` are fine.
    expands(
        quote!(),
        quote!(
            unsafe fn f() -> Result<(), E> {
                Ok(())
            }
        ),
    );
    expands(
        quote!(),
        quote!(default fn f(&self) -> Result<(), E> { Ok(()) }),
    );
}

#[test]
fn return_types() {
    assert_eq!(
        errors(
            quote!(),
            quote!(
                fn f() {}
            )
        ),
        [NOT_RESULT]
    );
    for ty in [
        quote!(()),
        quote!((u8, E)),
        quote!(Option<u8>),
        quote!(bool),
        quote!(&'static str),
        quote!(impl Display),
    ] {
        assert_eq!(
            errors(quote!(), quote!(fn f() -> #ty { todo!() })),
            [NOT_RESULT],
            "{ty}"
        );
    }
    for ty in [
        quote!(io::Result<u8>),
        quote!(anyhow::Result<()>),
        quote!(MyResult<u8>),
        quote!(Result<impl Display, E>),
    ] {
        expands(quote!(), quote!(fn f() -> #ty { todo!() }));
    }
    assert_eq!(
        errors(
            quote!(),
            quote!(
                fn f() -> Result<u8, impl Error> {
                    todo!()
                }
            )
        ),
        [
            "the error type of a `#[self_healing]` function must be nameable: `impl Trait` is not supported in the error position"
        ]
    );
}

#[test]
fn receivers() {
    for receiver in [
        quote!(self),
        quote!(mut self),
        quote!(self: Box<Self>),
        quote!(self: std::sync::Arc<Self>),
    ] {
        let item = quote!(fn f(#receiver) -> Result<(), E> { Ok(()) });
        assert_eq!(errors(quote!(), item), [BY_VALUE], "{receiver}");
    }
    for receiver in [
        quote!(&self),
        quote!(&mut self),
        quote!(&'a self),
        quote!(self: &Self),
        quote!(self: &mut Self),
    ] {
        expands(
            quote!(),
            quote!(fn f(#receiver) -> Result<(), E> { Ok(()) }),
        );
    }
}

#[test]
fn independent_errors_are_reported_together() {
    let found = errors(
        quote!(
            source = "foo",
            category = "databse",
            max_attempts = 0,
            cache_skip(id)
        ),
        quote!(
            const fn f(self, id: u64) -> Option<u8> {
                None
            }
        ),
    );
    assert_eq!(found.len(), 7, "{found:#?}");
    assert_eq!(
        found[0],
        "unknown category `\"databse\"`: expected `\"database\"`, `\"api\"`, `\"runtime\"` or `\"performance\"`; did you mean `\"database\"`?"
    );
    assert_eq!(
        found[1],
        "`source = \"foo\"` is a placeholder name; use a descriptive name such as the function name (`f`) so the dashboard can tell sites apart"
    );
    assert_eq!(
        found[2],
        "`max_attempts` must be at least 1 (the first call counts)"
    );
    assert_eq!(
        found[3],
        "`cache_skip` only applies together with `cache = \"..\"`"
    );
    assert!(found[4].contains("`const fn`"));
    assert_eq!(found[5], BY_VALUE);
    assert_eq!(found[6], NOT_RESULT);
}

#[test]
fn cache_skip_names_arguments() {
    let item = quote!(
        fn find(db: &Db, id: u64, (a, b): (u8, u8)) -> Result<(), E> {
            Ok(())
        }
    );
    assert_eq!(
        errors(quote!(cache = "30s", cache_skip(dbb, id, id, self)), item),
        [
            "`cache_skip` names `dbb`, which is not an argument of `find`: expected `db` or `id`; did you mean `db`?",
            "`id` is listed twice in `cache_skip`",
            "`cache_skip` names `self`, but `find` takes no `self`; list only its arguments",
        ]
    );
}

#[test]
fn cache_skip_self_on_methods() {
    let item = quote!(
        fn find(&self, id: u64) -> Result<(), E> {
            Ok(())
        }
    );
    expands(quote!(cache = "30s", cache_skip(self)), item.clone());
    assert_eq!(
        errors(quote!(cache = "30s", cache_skip(self, slef, self)), item),
        [
            "`cache_skip` names `slef`, which is not an argument of `find`: expected `self` or `id`; did you mean `self`?",
            "`self` is listed twice in `cache_skip`",
        ]
    );
}

#[test]
fn the_receiver_is_part_of_the_cache_key() {
    let key = |options: TokenStream, item: TokenStream| {
        let expanded = norm(&expands(options, item));
        let start = expanded.find("cache_key_start()").expect("a cache key");
        let end = start + expanded[start..].find("cache_key_finish").unwrap();
        expanded[start..end].to_owned()
    };
    let method = quote!(
        fn find(&self, id: u64) -> Result<(), E> {
            Ok(())
        }
    );
    // Sync: the receiver first, then the arguments.
    assert_eq!(
        key(quote!(cache = "30s"), method.clone()),
        norm(
            "cache_key_start(); \
             #[allow(clippy::borrow_deref_ref)] \
             ::self_healing::__private::cache_key_add_self(&mut __self_healing_key, &*self); \
             ::self_healing::__private::cache_key_add(&mut __self_healing_key, &id); \
             ::self_healing::__private::"
        )
    );
    assert_eq!(
        key(quote!(cache = "30s", cache_skip(self)), method),
        norm(
            "cache_key_start(); \
             ::self_healing::__private::cache_key_add(&mut __self_healing_key, &id); \
             ::self_healing::__private::"
        )
    );
    // Async, `&mut self`, `self: &Self`: `&*self` borrows the receiver for the key only.
    for receiver in [quote!(&mut self), quote!(self: &Self)] {
        let found = key(
            quote!(cache = "30s", cache_skip(id)),
            quote!(async fn find(#receiver, id: u64) -> Result<(), E> { Ok(()) }),
        );
        assert!(
            found.contains("cache_key_add_self(&mut__self_healing_key,&*self);"),
            "{found}"
        );
        assert!(!found.contains("&id"), "{found}");
    }
}

#[test]
fn the_sync_cache_key_is_taken_before_the_body_borrows() {
    let expanded = norm(&expands(
        quote!(cache = "30s"),
        quote!(
            fn bump(&mut self, id: u64) -> Result<u64, E> {
                self.n += id;
                Ok(self.n)
            }
        ),
    ));
    let key = expanded.find("cache_key_add_self").expect("a key");
    let body = expanded.find("let__self_healing_body=").expect("a body");
    assert!(key < body, "{expanded}");
}

#[test]
fn zero_durations() {
    assert_eq!(
        errors(
            quote!(timeout = "0s", cache = "0ms"),
            quote!(
                fn f() -> Result<(), E> {
                    Ok(())
                }
            )
        ),
        [
            "`timeout` must be greater than zero; leave it out to disable it",
            "`cache` must be greater than zero; leave it out to disable it",
        ]
    );
}

#[test]
fn fail_fast_false_excludes_options_that_need_a_rejection() {
    let item = quote!(
        async fn f() -> Result<(), E> {
            Ok(())
        }
    );
    assert_eq!(
        errors(quote!(fail_fast = false, timeout = "2s"), item.clone()),
        [
            "`fail_fast = false` cannot be combined with `timeout`: a cancelled attempt has no error of the function's type to return; remove `timeout`, or give the error type `From<self_healing::Rejected>` and drop `fail_fast = false`"
        ]
    );
    assert_eq!(
        errors(quote!(catch_panic = true, fail_fast = false), item.clone()),
        [
            "`fail_fast = false` cannot be combined with `catch_panic = true`: a panicked attempt has no error of the function's type to return; remove `catch_panic = true`, or give the error type `From<self_healing::Rejected>` and drop `fail_fast = false`"
        ]
    );
    // Both at once are one problem, so one error.
    let both = errors(
        quote!(fail_fast = false, timeout = "2s", catch_panic = true),
        item.clone(),
    );
    assert_eq!(both.len(), 1, "{both:#?}");
    assert!(
        both[0].starts_with("`fail_fast = false` cannot be combined with `timeout` and `catch_panic = true`: a cancelled or panicked attempt"),
        "{both:#?}"
    );
    assert_eq!(
        site_errors(quote!(
            source = "fetchRates",
            fail_fast = false,
            timeout = "1s"
        ))
        .len(),
        1
    );
    // Fine: the defaults, `fail_fast = true` with anything, `catch_panic = false`.
    expands(quote!(fail_fast = false, catch_panic = false), item.clone());
    expands(
        quote!(fail_fast = true, timeout = "2s", catch_panic = true),
        item,
    );
}

#[test]
fn snapshot_fail_fast_false() {
    let actual = expands(
        quote!(fail_fast = false),
        quote! {
            fn parse(text: &str) -> Result<u32, ParseIntError> { text.parse() }
        },
    );
    let actual = norm(&actual);
    // The option is recorded, nothing requires `From<Rejected>`, and the guards get no reject
    // function.
    assert!(
        actual.contains(&norm(".with_async(false).with_fail_fast(false)")),
        "{actual}"
    );
    assert!(!actual.contains("RequireReject"), "{actual}");
    assert!(!actual.contains("__self_healing_reject"), "{actual}");
    assert!(
        actual.contains(&norm(
            "(&&&&__self_healing_probe).__self_healing_view(), ::core::option::Option::None,"
        )),
        "{actual}"
    );
}

#[test]
fn one_reject_check_per_function() {
    // Whatever the options, `From<Rejected>` is checked once (so a missing impl is one error).
    for args in [
        quote!(),
        quote!(timeout = "2s"),
        quote!(timeout = "2s", catch_panic = true),
        quote!(fail_fast = true, catch_panic = true),
    ] {
        let actual = expands(
            args.clone(),
            quote!(
                async fn f() -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert_eq!(actual.matches("RequireReject").count(), 1, "{args}");
    }
}

#[test]
fn site_errors_and_keys() {
    assert_eq!(
        site_errors(quote!(category = "api")),
        ["`site!` needs a `source`, as in `site!(source = \"fetchRates\", category = \"api\")`"]
    );
    assert_eq!(
        site_errors(quote!(
            source = "fetchRates",
            fallback = backup,
            cache = "1s",
            cache_skip(a)
        )),
        [
            "`fallback` needs a function signature; use #[self_healing] on a fn",
            "`cache` needs a function signature; use #[self_healing] on a fn",
            "`cache_skip` needs a function signature; use #[self_healing] on a fn",
        ]
    );
    assert_eq!(
        site_errors(quote!(source = "fetchRates", retries = 3)),
        [
            "unknown option `retries`: expected `source`, `category`, `idempotent`, `timeout`, `max_attempts`, `catch_panic`, `fail_fast` or `crate`; did you mean `max_attempts`?"
        ]
    );
}

#[test]
fn snapshot_sync_fn() {
    let actual = expands(
        quote!(category = "api"),
        quote! {
            /// Docs stay.
            pub fn parse(mut text: String, (a, b): (u8, u8), limit: &usize) -> Result<u8, E> { body(text, a, b, limit) }
        },
    );
    let expected = quote! {
        #[doc = r" Docs stay."]
        pub fn parse(text: String, __self_healing_arg1: (u8, u8), limit: &usize) -> Result<u8, E> {
            static __SELF_HEALING_SITE: ::self_healing::__private::Site =
                ::self_healing::__private::Site::new(::self_healing::__private::SiteInfo {
                    source: "parse",
                    category: ::self_healing::__private::Category::Api,
                    function: "parse",
                    module_path: ::core::module_path!(),
                    file: ::core::file!(),
                    line: ::core::line!(),
                    options: ::self_healing::__private::SiteOptions::new().with_async(false),
                });
            #[::self_healing::__private::linkme::distributed_slice(::self_healing::__private::SITES)]
            #[linkme(crate = ::self_healing::__private::linkme)]
            static __SELF_HEALING_SITE_ENTRY: &::self_healing::__private::Site = &__SELF_HEALING_SITE;
            let __self_healing_ops = {
                #[allow(unused_imports)]
                use ::self_healing::__private::probes::*;
                let __self_healing_probe = ::self_healing::__private::Probe::<
                    <Result<u8, E> as ::self_healing::__private::ResultParts>::Err
                >::new();
                let _ = ::self_healing::__private::RequireReject {
                    view: &(&&&&__self_healing_probe).__self_healing_view(),
                };
                ::self_healing::__private::ErrorOps::<<Result<u8, E> as ::self_healing::__private::ResultParts>::Err>::new(
                    (&&&&__self_healing_probe).__self_healing_view(),
                    (&&__self_healing_probe).__self_healing_reject(),
                )
            };
            let __self_healing_body = || {
                #[allow(clippy::redundant_clone, clippy::used_underscore_binding, clippy::let_unit_value)]
                let mut text = ::self_healing::__private::clone_arg(&text);
                #[allow(clippy::redundant_clone, clippy::used_underscore_binding, clippy::let_unit_value)]
                let (a, b) = ::self_healing::__private::clone_arg(&__self_healing_arg1);
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
                    let __self_healing_fake_return: Result<u8, E> = loop {};
                    return __self_healing_fake_return;
                }
                body(text, a, b, limit)
            };
            ::self_healing::__private::run_sync(&__SELF_HEALING_SITE, __self_healing_ops, __self_healing_body)
        }
    };
    assert_eq!(norm(&actual), norm(&expected.to_string()));
}

#[test]
fn snapshot_async_mut_self_with_options() {
    let actual = expands(
        quote!(
            source = "saveDraft",
            timeout = "2s",
            fallback = Self::save_local,
            cache = "1m",
            cache_skip(out),
            crate = "sh"
        ),
        quote! {
            async fn save(&mut self, draft: Draft, out: &mut Vec<u8>) -> Result<impl Display, E> { self.put(draft, out).await }
        },
    );
    let expected = quote! {
        async fn save(&mut self, draft: Draft, out: &mut Vec<u8>) -> Result<impl Display, E> {
            static __SELF_HEALING_SITE: sh::__private::Site =
                sh::__private::Site::new(sh::__private::SiteInfo {
                    source: "saveDraft",
                    category: sh::__private::Category::Runtime,
                    function: "save",
                    module_path: ::core::module_path!(),
                    file: ::core::file!(),
                    line: ::core::line!(),
                    options: sh::__private::SiteOptions::new()
                        .with_async(true)
                        .with_timeout(::core::time::Duration::from_nanos(2000000000))
                        .with_cache(::core::time::Duration::from_nanos(60000000000))
                        .with_fallback("Self::save_local"),
                });
            #[sh::__private::linkme::distributed_slice(sh::__private::SITES)]
            #[linkme(crate = sh::__private::linkme)]
            static __SELF_HEALING_SITE_ENTRY: &sh::__private::Site = &__SELF_HEALING_SITE;
            let __self_healing_ops = {
                #[allow(unused_imports)]
                use sh::__private::probes::*;
                let __self_healing_probe = sh::__private::Probe::<<Result<(), E> as sh::__private::ResultParts>::Err>::new();
                let _ = sh::__private::RequireReject {
                    view: &(&&&&__self_healing_probe).__self_healing_view(),
                };
                sh::__private::ErrorOps::<<Result<(), E> as sh::__private::ResultParts>::Err>::new(
                    (&&&&__self_healing_probe).__self_healing_view(),
                    (&&__self_healing_probe).__self_healing_reject(),
                )
            };
            let mut __self_healing_driver = sh::__private::Driver::new(&__SELF_HEALING_SITE, __self_healing_ops);
            {
                let mut __self_healing_key = sh::__private::cache_key_start();
                #[allow(clippy::borrow_deref_ref)]
                sh::__private::cache_key_add_self(&mut __self_healing_key, &*self);
                sh::__private::cache_key_add(&mut __self_healing_key, &draft);
                __self_healing_driver.set_cache_key(sh::__private::cache_key_finish(__self_healing_key));
            }
            loop {
                let __self_healing_attempt = {
                    #[allow(clippy::redundant_clone, clippy::used_underscore_binding, clippy::let_unit_value)]
                    let draft = sh::__private::clone_arg(&draft);
                    #[allow(clippy::redundant_clone, clippy::used_underscore_binding, clippy::let_unit_value)]
                    let out = &mut *out;
                    __self_healing_driver.attempt(async {
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
                            let __self_healing_fake_return: Result<_, E> = loop {};
                            return __self_healing_fake_return;
                        }
                        self.put(draft, out).await
                    }).await
                };
                match __self_healing_driver.settle_cached(__self_healing_attempt).await {
                    sh::__private::Step::Return(__self_healing_result) => return __self_healing_result,
                    sh::__private::Step::Rerun => {}
                    sh::__private::Step::Fallback => {
                        let __self_healing_fallback: Result<_, E> = Self::save_local(self, draft, out).await;
                        return __self_healing_driver.settle_fallback(__self_healing_fallback);
                    }
                }
            }
        }
    };
    assert_eq!(norm(&actual), norm(&expected.to_string()));
}

#[test]
fn snapshot_async_trait_body_goes_inside_the_box() {
    let actual = expands(
        quote!(),
        quote! {
            fn get<'life0, 'async_trait>(&'life0 mut self, id: u64)
                -> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = Result<u8, E>> + ::core::marker::Send + 'async_trait>>
            where 'life0: 'async_trait, Self: 'async_trait
            {
                Box::pin(async move {
                    let mut __self = self;
                    let id = id;
                    let __ret: Result<u8, E> = { __self.load(id) };
                    __ret
                })
            }
        },
    );
    let actual = norm(&actual);
    for piece in [
        "{Box::pin(asyncmove{static__SELF_HEALING_SITE",
        ".with_async(true)",
        "<Result<u8,E>as::self_healing::__private::ResultParts>::Err",
        "letid=::self_healing::__private::clone_arg(&id);",
        // `&mut self` is reborrowed per attempt, not moved into the first one.
        "__self_healing_driver.attempt(async{",
        "letmut__self=&mut*self;letid=id;",
        "__self_healing_driver.settle(__self_healing_attempt).await",
    ] {
        assert!(actual.contains(&norm(piece)), "missing {piece} in {actual}");
    }
}

#[test]
fn snapshot_site() {
    let actual = expand_site(quote!(
        source = "fetchRates",
        category = "api",
        idempotent = false,
        max_attempts = 3,
        catch_panic = true,
        fail_fast = true
    ))
    .unwrap()
    .to_string();
    let expected = quote! {{
        static __SELF_HEALING_SITE: ::self_healing::__private::Site =
            ::self_healing::__private::Site::new(::self_healing::__private::SiteInfo {
                source: "fetchRates",
                category: ::self_healing::__private::Category::Api,
                function: "closure",
                module_path: ::core::module_path!(),
                file: ::core::file!(),
                line: ::core::line!(),
                options: ::self_healing::__private::SiteOptions::new()
                    .with_async(false)
                    .with_idempotent(false)
                    .with_max_attempts(3)
                    .with_catch_panic(true)
                    .with_fail_fast(true),
            });
        #[::self_healing::__private::linkme::distributed_slice(::self_healing::__private::SITES)]
        #[linkme(crate = ::self_healing::__private::linkme)]
        static __SELF_HEALING_SITE_ENTRY: &::self_healing::__private::Site = &__SELF_HEALING_SITE;
        &__SELF_HEALING_SITE
    }};
    assert_eq!(norm(&actual), norm(&expected.to_string()));
}

#[test]
fn errors_come_with_the_original_item() {
    let item = quote!(
        fn f() -> bool {
            true
        }
    );
    let out = crate::expand::self_healing(quote!(), item.clone()).to_string();
    assert!(out.starts_with(":: core :: compile_error !"), "{out}");
    assert!(out.ends_with(&item.to_string()), "{out}");
}
