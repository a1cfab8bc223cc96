//! The function-style form, for closures and blocks (the guide's "Pattern B"):
//! `heal(site!(source = "myAction", category = "database"), || async { .. }).await`.

use std::error::Error;
use std::future::Future;

use crate::Site;
use crate::driver::{Driver, Step};
use crate::error_ops::ErrorOps;

/// Runs an async operation through the healer of `site`: the same interceptor `#[self_healing]`
/// uses. `op` is called once per attempt, so it should own (or clone) what it needs.
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
    E: Error + 'static,
{
    heal_with(site, ErrorOps::of_error(), op).await
}

/// [`heal`] for error types that are not `std::error::Error` themselves (`anyhow::Error`, boxed
/// errors), or to let guards fail fast: pass `ErrorOps::new(..)` built for your type.
pub async fn heal_with<T, E, F, Fut>(
    site: &'static Site,
    ops: ErrorOps<E>,
    mut op: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut driver = Driver::new(site, ops);
    loop {
        let attempt = driver.attempt(op()).await;
        match driver.settle(attempt).await {
            Step::Return(result) => return result,
            Step::Rerun | Step::Fallback => {}
        }
    }
}

/// The blocking counterpart of [`heal`].
pub fn heal_blocking<T, E, F>(site: &'static Site, op: F) -> Result<T, E>
where
    F: FnMut() -> Result<T, E>,
    E: Error + 'static,
{
    heal_blocking_with(site, ErrorOps::of_error(), op)
}

/// The blocking counterpart of [`heal_with`].
pub fn heal_blocking_with<T, E, F>(site: &'static Site, ops: ErrorOps<E>, mut op: F) -> Result<T, E>
where
    F: FnMut() -> Result<T, E>,
{
    let mut driver = Driver::new(site, ops);
    loop {
        let attempt = driver.attempt_sync(&mut op);
        match driver.settle_sync(attempt) {
            Step::Return(result) => return result,
            Step::Rerun | Step::Fallback => {}
        }
    }
}
