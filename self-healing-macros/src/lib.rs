//! The procedural macros of [self-healing](https://docs.rs/self-healing): `#[self_healing]` and
//! `site!`. Use them through the `self-healing` crate, which documents them with examples; the
//! code they generate names only `::self_healing::__private` (or the `crate = ".."` path).
//!
//! The crate is organised by phase: `attr.rs` parses the options, `validate.rs` checks them (and
//! the function) in one step, `expand.rs` generates the wrapper and `site_macro.rs` the `site!`
//! record. The inner functions take and return `proc_macro2` tokens, which is what the unit tests
//! call.

use proc_macro::TokenStream;

mod attr;
mod duration;
mod expand;
mod item;
mod site_macro;
mod suggest;
mod validate;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;

/// Makes a function that returns `Result` heal itself at run time: when it fails, the runtime
/// diagnoses the error and retries, reconnects, serves a fallback or a cached value, or gives the
/// error back. The body is left as written.
///
/// ```text
/// #[self_healing(source = "createContact", category = "database")]
/// async fn create_contact(db: &Db, input: NewContact) -> Result<Contact, AppError> { .. }
/// ```
///
/// Options (all optional, `key = value`, comma separated): `source = ".."` (default: the function
/// name), `category = "database" | "api" | "runtime" | "performance"` (default `runtime`),
/// `fallback = path::to_fn` (same signature), `idempotent = false`, `timeout = "2s"`,
/// `max_attempts = 3`, `cache = "30s"`, `cache_skip(arg, ..)`, `catch_panic = true`,
/// `fail_fast = false`, `crate = "path"`.
///
/// The error type must implement `From<self_healing::Rejected>` (checked at compile time, at the
/// error type): the guards answer calls without the body producing an error. `fail_fast = false`
/// opts out, for error types of other crates; it excludes `timeout` and `catch_panic`.
///
/// Owned arguments are cloned for each attempt (they must be `Clone`), `&mut` ones reborrowed;
/// methods take `&self` or `&mut self`. Works on sync and `async` functions, methods, trait
/// methods with a body and `#[async_trait]` methods.
///
/// With `cache`, the key is every argument not in `cache_skip`, and a method's receiver: `Self`
/// must be `Hash`, or `cache_skip(self)` lets all instances share cached values.
#[proc_macro_attribute]
pub fn self_healing(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::self_healing(args.into(), item.into()).into()
}

/// The call-site record for a closure or block, as a `&'static Site`, for the runtime's `heal`
/// functions. Takes the options of `#[self_healing]` except `fallback`, `cache` and `cache_skip`;
/// `source` is required.
///
/// ```text
/// let rates = heal(site!(source = "fetchRates", category = "api"), || async { fetch().await }).await;
/// ```
#[proc_macro]
pub fn site(input: TokenStream) -> TokenStream {
    site_macro::site(input.into()).into()
}
