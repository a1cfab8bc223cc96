//! Every `tests/ui/pass` case compiled as a module of one test target, so that
//! `cargo clippy --all-targets -- -D warnings` lints the code `#[self_healing]` generates as if it
//! were user code. `cargo test --test ui` compiles and runs them one by one through trybuild.
//! (`unsafe_fn.rs` is left out: the workspace lints forbid `unsafe_code`.)

#[path = "ui/pass/all_options.rs"]
#[allow(dead_code)]
mod all_options;

#[path = "ui/pass/async_trait.rs"]
#[allow(dead_code)]
mod async_trait;

#[path = "ui/pass/cache_receiver.rs"]
#[allow(dead_code)]
mod cache_receiver;

#[path = "ui/pass/crate_rename.rs"]
#[allow(dead_code)]
mod crate_rename;

#[path = "ui/pass/errors_and_aliases.rs"]
#[allow(dead_code)]
mod errors_and_aliases;

#[path = "ui/pass/free_fns.rs"]
#[allow(dead_code)]
mod free_fns;

#[path = "ui/pass/generics.rs"]
#[allow(dead_code)]
mod generics;

#[path = "ui/pass/heals.rs"]
#[allow(dead_code)]
mod heals;

#[path = "ui/pass/impl_trait_return.rs"]
#[allow(dead_code)]
mod impl_trait_return;

#[path = "ui/pass/methods.rs"]
#[allow(dead_code)]
mod methods;

#[path = "ui/pass/rejections.rs"]
#[allow(dead_code)]
mod rejections;

#[path = "ui/pass/send_handler.rs"]
#[allow(dead_code)]
mod send_handler;

#[path = "ui/pass/site_heal.rs"]
#[allow(dead_code)]
mod site_heal;

#[path = "ui/pass/traits.rs"]
#[allow(dead_code)]
mod traits;

#[path = "ui/pass/with_tracing.rs"]
#[allow(dead_code)]
mod with_tracing;
