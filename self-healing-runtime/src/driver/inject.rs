//! Where fault injection meets the interceptor: after the guards admitted an attempt and before
//! its body runs. Without the `chaos` feature every function here is a no-op the compiler
//! removes.

use std::time::Duration;

use super::Attempt;
use crate::Site;
use crate::error_ops::ErrorOps;

#[cfg(feature = "chaos")]
pub(crate) type Injection = crate::chaos::Decision;

/// No injection is possible without the `chaos` feature.
#[cfg(not(feature = "chaos"))]
#[derive(Debug)]
pub(crate) enum Injection {}

/// What the chaos layer in effect does to this attempt of `site`, if any targets it.
#[inline]
pub(crate) fn decide(site: &'static Site, attempt: u32, call: u64) -> Option<Injection> {
    #[cfg(feature = "chaos")]
    {
        crate::chaos::for_site(site).map(|chaos| chaos.decide(site, attempt, call))
    }
    #[cfg(not(feature = "chaos"))]
    {
        let _ = (site, attempt, call);
        None
    }
}

/// The attempt an injected failure turns into, after the injection's delay has passed. `None`:
/// run the body. A user's error of the call's own type is returned as it is; anything else
/// travels as [`Rejected::Injected`](crate::Rejected::Injected).
fn failed<T, E>(
    injection: Injection,
    site: &'static Site,
    ops: ErrorOps<E>,
) -> Option<Attempt<T, E>> {
    #[cfg(feature = "chaos")]
    {
        let failing = match (injection.failing?, ops.adopt) {
            (crate::chaos::Failing::Custom { value, into_error }, Some(adopt)) => {
                match adopt(value) {
                    Ok(own) => return Some(Attempt::Done(Err(own))),
                    Err(value) => crate::chaos::Failing::Custom { value, into_error },
                }
            }
            (failing, _) => failing,
        };
        let Some(reject) = ops.reject else {
            warn_cannot_inject(site);
            return None;
        };
        Some(Attempt::Rejected(Box::new((
            crate::Rejected::Injected {
                source: site.source(),
                fault: failing.into_fault(),
            },
            reject,
        ))))
    }
    #[cfg(not(feature = "chaos"))]
    {
        let _ = (site, ops);
        match injection {}
    }
}

#[cfg(feature = "chaos")]
fn warn_cannot_inject(site: &'static Site) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    tracing::warn!(
        source = site.source(),
        "self-healing chaos: this site's error type cannot represent an injected fault \
         (`fail_fast = false`), and the injected error is of another type; only latency is \
         injected"
    );
}

fn delay_of(injection: &Injection) -> Duration {
    #[cfg(feature = "chaos")]
    {
        injection.delay
    }
    #[cfg(not(feature = "chaos"))]
    {
        match *injection {}
    }
}

/// Applies an injection in async code: waits its delay on tokio's clock, then answers with the
/// injected failure, or `None` to run the body.
pub(crate) async fn apply<T, E>(
    injection: Option<Injection>,
    site: &'static Site,
    ops: ErrorOps<E>,
) -> Option<Attempt<T, E>> {
    let injection = injection?;
    let delay = delay_of(&injection);
    if !delay.is_zero() {
        // Boxed: injection is for tests, and its timer would enlarge every call's future.
        Box::pin(tokio::time::sleep(delay)).await;
    }
    failed(injection, site, ops)
}

/// [`apply`] for sync sites: waits with `sleep`.
pub(crate) fn apply_blocking<T, E>(
    injection: Option<Injection>,
    site: &'static Site,
    ops: ErrorOps<E>,
    sleep: &dyn Fn(Duration),
) -> Option<Attempt<T, E>> {
    let injection = injection?;
    let delay = delay_of(&injection);
    if !delay.is_zero() {
        sleep(delay);
    }
    failed(injection, site, ops)
}
