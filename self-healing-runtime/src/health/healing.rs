//! Healing actions of your own for any check: run when it is unhealthy, before it runs again.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{CheckResult, HealthCheck, HealthContext};
use crate::event::BoxFuture;
use crate::hooks::{HookError, HookFuture, HookKind};

type HealFn = Arc<dyn Fn() -> HookFuture + Send + Sync>;

/// A check with a healing action of your own: see [`HealthCheckExt::heal_with`].
#[derive(Clone)]
pub struct WithHealing<C> {
    check: C,
    heal: HealFn,
}

impl<C: fmt::Debug> fmt::Debug for WithHealing<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithHealing")
            .field("check", &self.check)
            .finish_non_exhaustive()
    }
}

impl<C: HealthCheck> HealthCheck for WithHealing<C> {
    fn name(&self) -> &str {
        self.check.name()
    }

    fn check<'a>(&'a self, cx: &'a HealthContext) -> BoxFuture<'a, CheckResult> {
        self.check.check(cx)
    }

    fn timeout(&self) -> Duration {
        self.check.timeout()
    }

    fn healing_hook(&self) -> Option<HookKind> {
        self.check.healing_hook()
    }

    fn heal(&self) -> Option<HookFuture> {
        Some((self.heal)())
    }
}

/// Adds a healing action to any [`HealthCheck`].
///
/// ```
/// use self_healing_runtime::health::{DatabasePing, HealthCheckExt};
///
/// let check = DatabasePing::new("crm", || async { Ok::<(), std::io::Error>(()) })
///     // Runs when the ping is unhealthy; the ping then runs once more.
///     .heal_with(|| async { /* rebuild the pool */ Ok(()) });
/// # let _ = check;
/// ```
pub trait HealthCheckExt: HealthCheck + Sized {
    /// Runs `heal` when the check is unhealthy (under the healer's hook timeout, 10 s by
    /// default), then the check once more; the report says whether it helped. Replaces the
    /// check's [`healing_hook`](HealthCheck::healing_hook).
    fn heal_with<F, Fut>(self, heal: F) -> WithHealing<Self>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        WithHealing {
            check: self,
            heal: Arc::new(move || Box::pin(heal())),
        }
    }
}

impl<C: HealthCheck> HealthCheckExt for C {}
