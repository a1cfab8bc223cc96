//! The function-style form, for closures and blocks (the guide's "Pattern B"):
//! `heal(site!(source = "myAction", category = "database"), || async { .. }).await`.

use std::error::Error;
use std::future::Future;
use std::pin::Pin;

use crate::Site;
use crate::driver::{Attempt, Driver, FailedCall, Slow, Step};
use crate::error_ops::ErrorOps;

/// Runs an async operation through the healer of `site`: the same interceptor `#[self_healing]`
/// uses. `op` is called once per attempt, so it should own (or clone) what it needs.
///
/// `E` must represent a call the site's guards refused (`From<Rejected>`, as `std::io::Error`
/// has): an open circuit, a full bulkhead or a timeout hands the caller a [`Rejected`](crate::Rejected) as an `E`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use self_healing_runtime::{Category, Site, SiteInfo, SiteOptions, heal};
///
/// // What `site!(source = "fetchRates", category = "api")` expands to, more or less.
/// static SITE: Site = Site::new(SiteInfo {
///     source: "fetchRates", category: Category::Api, function: "closure",
///     module_path: module_path!(), file: file!(), line: line!(), options: SiteOptions::new(),
/// });
/// let rate = heal(&SITE, || async { Ok::<_, std::io::Error>(1.08) }).await;
/// assert_eq!(rate.unwrap(), 1.08);
/// # }
/// ```
pub async fn heal<T, E, F, Fut>(site: &'static Site, op: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Error + From<crate::Rejected> + 'static,
{
    heal_with(site, ErrorOps::of_error(), op).await
}

/// [`heal`] with the [`ErrorOps`] given: for error types that are not `std::error::Error`
/// themselves (`ErrorOps::boxed()` for boxed errors), or for a `fail_fast = false` site whose
/// error type cannot represent a rejection (`ErrorOps::without_rejections(..)`).
pub async fn heal_with<T, E, F, Fut>(site: &'static Site, ops: ErrorOps<E>, op: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut op = op;
    if is_fast(site) {
        return match op().await {
            Ok(v) => {
                site.count_ok();
                Ok(v)
            }
            Err(e) => run_async_slow(site, ops, op, Some(e)).await,
        };
    }
    run_async_slow(site, ops, op, None).await
}

/// The blocking counterpart of [`heal`]; `E` needs `From<Rejected>` likewise.
pub fn heal_blocking<T, E, F>(site: &'static Site, op: F) -> Result<T, E>
where
    F: FnMut() -> Result<T, E>,
    E: Error + From<crate::Rejected> + 'static,
{
    heal_blocking_with(site, ErrorOps::of_error(), op)
}

/// The blocking counterpart of [`heal_with`].
#[inline(always)]
pub fn heal_blocking_with<T, E, F>(site: &'static Site, ops: ErrorOps<E>, op: F) -> Result<T, E>
where
    F: FnMut() -> Result<T, E>,
{
    run_sync(site, ops, op)
}

/// How a sync wrapped call with a fallback ended: a result, or a request to call the declared
/// fallback and hand its result to [`FailedCall::settle_fallback`].
#[derive(Debug)]
pub enum Run<T, E> {
    /// The call's result.
    Done(Result<T, E>),
    /// Call the fallback, then `call.settle_fallback(result)` (or `call.give_up()`).
    Fallback(Box<FailedCall<E>>),
}

/// Runs a sync body (of a site without fallback or cache) through the interceptor. The success
/// path of a healthy site is one load, one branch and the call; everything else happens out of
/// line.
#[inline(always)]
pub fn run_sync<T, E, F>(site: &'static Site, ops: ErrorOps<E>, mut body: F) -> Result<T, E>
where
    F: FnMut() -> Result<T, E>,
{
    if site.flags() == 0 {
        return match body() {
            Ok(v) => {
                site.count_ok();
                Ok(v)
            }
            Err(e) => run_sync_slow(site, ops, body, Some(Attempt::Done(Err(e)))),
        };
    }
    run_sync_slow(site, ops, body, None)
}

/// [`run_sync_after`] for sites without a fallback: the strategy never asks for one; should it,
/// the call gives up.
#[cold]
#[inline(never)]
fn run_sync_slow<T, E, F>(
    site: &'static Site,
    ops: ErrorOps<E>,
    body: F,
    first: Option<Attempt<T, E>>,
) -> Result<T, E>
where
    F: FnMut() -> Result<T, E>,
{
    // The driver lives on this (cold) frame: its slow state is kept inline, not boxed.
    let mut driver: Driver<E, Option<Slow<E>>> = Driver::without_fallback(site, ops);
    let mut body = body;
    let mut attempt = match first {
        Some(attempt) => attempt,
        None => driver.attempt_sync(&mut body),
    };
    loop {
        match driver.settle_sync(attempt) {
            Step::Return(result) => return result,
            // No fallback function here: the driver never asks for one.
            Step::Rerun | Step::Fallback => {}
        }
        attempt = driver.attempt_sync(&mut body);
    }
}

/// [`run_sync`] for sites with a `fallback`: the caller calls it on [`Run::Fallback`].
#[inline(always)]
pub fn run_sync_with_fallback<T, E, F>(
    site: &'static Site,
    ops: ErrorOps<E>,
    mut body: F,
) -> Run<T, E>
where
    F: FnMut() -> Result<T, E>,
{
    if site.flags() == 0 {
        return match body() {
            Ok(v) => {
                site.count_ok();
                Run::Done(Ok(v))
            }
            Err(e) => run_sync_after(Driver::new(site, ops), body, Some(Attempt::Done(Err(e)))),
        };
    }
    run_sync_after(Driver::new(site, ops), body, None)
}

/// [`run_sync_with_fallback`] for keyed sites (`idempotent = "keyed"`): the call's key goes
/// into its event.
pub fn run_sync_keyed<T, E, F>(
    site: &'static Site,
    ops: ErrorOps<E>,
    start: crate::call_key::CallStart,
    mut body: F,
) -> Run<T, E>
where
    F: FnMut() -> Result<T, E>,
{
    let mut driver = Driver::new(site, ops);
    driver.set_call_start(start);
    if site.flags() == 0 {
        return match body() {
            Ok(v) => {
                site.count_ok();
                Run::Done(Ok(v))
            }
            Err(e) => run_sync_after(driver, body, Some(Attempt::Done(Err(e)))),
        };
    }
    run_sync_after(driver, body, None)
}

/// [`run_sync_with_fallback`] for `cache = ".."` sites (never on the fast path: their flags ask
/// for guarding).
pub fn run_sync_cached<T, E, F>(
    site: &'static Site,
    ops: ErrorOps<E>,
    key: u64,
    mut body: F,
) -> Run<T, E>
where
    F: FnMut() -> Result<T, E>,
    T: crate::__private::CacheValue,
{
    let mut driver = Driver::new(site, ops);
    driver.set_cache_key(key);
    loop {
        let attempt = driver.attempt_sync(&mut body);
        match driver.settle_cached_sync(attempt) {
            Step::Return(result) => return Run::Done(result),
            Step::Rerun => {}
            Step::Fallback => match driver.into_failed() {
                Ok(call) => return Run::Fallback(Box::new(call)),
                Err(unfailed) => driver = unfailed,
            },
        }
    }
}

/// Everything after a failure (or when the site is guarded), out of line.
#[cold]
#[inline(never)]
fn run_sync_after<T, E, F>(
    mut driver: Driver<E>,
    mut body: F,
    first: Option<Attempt<T, E>>,
) -> Run<T, E>
where
    F: FnMut() -> Result<T, E>,
{
    let mut attempt = match first {
        Some(attempt) => attempt,
        None => driver.attempt_sync(&mut body),
    };
    loop {
        match driver.settle_sync(attempt) {
            Step::Return(result) => return Run::Done(result),
            Step::Rerun => {}
            Step::Fallback => match driver.into_failed() {
                Ok(call) => return Run::Fallback(Box::new(call)),
                Err(unfailed) => driver = unfailed,
            },
        }
        attempt = driver.attempt_sync(&mut body);
    }
}

/// Everything after a failure (or when the site is guarded).
async fn run_async_after<T, E, F, Fut>(
    site: &'static Site,
    ops: ErrorOps<E>,
    mut body: F,
    first: Option<Attempt<T, E>>,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    // No fallback function here: the driver never asks for one. This future is boxed, so
    // the driver's slow state lives in it rather than in a box of its own.
    let mut driver: Driver<E, Option<Slow<E>>> = Driver::without_fallback(site, ops);
    // This future is boxed already: attempts and settling are awaited in place.
    let mut attempt = match first {
        Some(attempt) => attempt,
        None => driver.attempt_in_place(body()).await,
    };
    loop {
        match driver.settle_in_place(attempt).await {
            Step::Return(result) => return result,
            Step::Rerun | Step::Fallback => {}
        }
        attempt = driver.attempt_in_place(body()).await;
    }
}

/// Whether a call of `site` may take the plain success path (nothing to guard).
#[inline(always)]
pub fn is_fast(site: &'static Site) -> bool {
    site.flags() == 0
}

/// The boxed slow path of an async wrapped call, after the first attempt failed with `first`
/// (or before any attempt, for a guarded site). Generated code awaits the first attempt itself,
/// so a healthy site's success path has no extra future layer.
#[cold]
#[inline(never)]
pub fn run_async_slow<T, E, F, Fut>(
    site: &'static Site,
    ops: ErrorOps<E>,
    body: F,
    first: Option<E>,
) -> Pin<Box<impl Future<Output = Result<T, E>>>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    Box::pin(run_async_after(
        site,
        ops,
        body,
        first.map(|e| Attempt::Done(Err(e))),
    ))
}
