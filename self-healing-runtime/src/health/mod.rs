//! Health checks: a [`HealthCheck`] trait, built-in checks, and a [`HealthMonitor`] that runs them
//! on a schedule (every 2 minutes by default) or on demand (the cron endpoint), keeps the latest
//! report, persists each report through the store, and may run a healing hook when a check fails.
//!
//! Overall status, as in the original system: **unhealthy** when more than two checks are
//! unhealthy, **degraded** when one or two are (or any check is degraded), **healthy** otherwise.

mod builtin;
mod monitor;

use std::fmt;
use std::time::{Duration, SystemTime};

pub use builtin::{ErrorRate, ProcessMemory, StorePing};
pub use monitor::HealthMonitor;

use crate::Healer;
use crate::event::BoxFuture;
use crate::hooks::HookKind;

/// The status of one check, or of the whole service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HealthStatus {
    /// Working as expected.
    Healthy,
    /// Working, but something needs attention.
    Degraded,
    /// Not working.
    Unhealthy,
}

impl HealthStatus {
    /// The lower-case name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    /// The IETF health-check draft's name: `pass`, `warn` or `fail`.
    pub const fn as_draft_status(&self) -> &'static str {
        match self {
            HealthStatus::Healthy => "pass",
            HealthStatus::Degraded => "warn",
            HealthStatus::Unhealthy => "fail",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        [
            HealthStatus::Healthy,
            HealthStatus::Degraded,
            HealthStatus::Unhealthy,
        ]
        .into_iter()
        .find(|h| h.as_str() == s)
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// The verdict.
    pub status: HealthStatus,
    /// One line for humans ("312 MiB resident", "14.2 failures/min over 5 min").
    pub detail: String,
    /// The measured value, when the check measures one.
    pub value: Option<f64>,
}

impl CheckResult {
    /// A healthy result.
    pub fn healthy(detail: impl Into<String>) -> Self {
        Self::new(HealthStatus::Healthy, detail)
    }

    /// A result with a status.
    pub fn new(status: HealthStatus, detail: impl Into<String>) -> Self {
        CheckResult {
            status,
            detail: detail.into(),
            value: None,
        }
    }

    /// Attaches the measured value.
    pub fn with_value(mut self, value: f64) -> Self {
        self.value = Some(value);
        self
    }
}

/// A health check.
///
/// ```
/// use self_healing_runtime::event::BoxFuture;
/// use self_healing_runtime::health::{CheckResult, HealthCheck, HealthContext};
///
/// /// Healthy while a feature flag service answers.
/// #[derive(Debug)]
/// struct Flags;
///
/// impl HealthCheck for Flags {
///     fn name(&self) -> &str { "feature_flags" }
///     fn check<'a>(&'a self, _cx: &'a HealthContext) -> BoxFuture<'a, CheckResult> {
///         Box::pin(async { CheckResult::healthy("flags loaded") })
///     }
/// }
/// ```
pub trait HealthCheck: Send + Sync + fmt::Debug + 'static {
    /// A unique snake_case name.
    fn name(&self) -> &str;

    /// Runs the check. The monitor applies [`timeout`](Self::timeout): an overrun is unhealthy.
    fn check<'a>(&'a self, cx: &'a HealthContext) -> BoxFuture<'a, CheckResult>;

    /// How long the check may take (default 5 s).
    fn timeout(&self) -> Duration {
        Duration::from_secs(5)
    }

    /// A hook to run when the check is unhealthy (e.g. [`HookKind::Reconnect`] for the store).
    fn healing_hook(&self) -> Option<HookKind> {
        None
    }
}

/// What checks can look at.
#[derive(Debug, Clone)]
pub struct HealthContext {
    /// The healer (queue counters, learned statistics, store).
    pub healer: Healer,
}

/// One check's entry in a report.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOutcome {
    /// The check's name.
    pub name: String,
    /// What it found.
    pub result: CheckResult,
    /// How long it took.
    pub duration: Duration,
    /// The healing hook run because the check failed, and what came of it.
    pub healing: Option<String>,
}

/// The result of running every check once.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    /// When the checks ran.
    pub time: SystemTime,
    /// The overall status (see the module docs for the rule).
    pub status: HealthStatus,
    /// Each check.
    pub checks: Vec<CheckOutcome>,
}

/// The overall status of a set of check results.
pub fn overall(statuses: impl IntoIterator<Item = HealthStatus>) -> HealthStatus {
    let (mut unhealthy, mut degraded) = (0, 0);
    for s in statuses {
        match s {
            HealthStatus::Unhealthy => unhealthy += 1,
            HealthStatus::Degraded => degraded += 1,
            HealthStatus::Healthy => {}
        }
    }
    match unhealthy {
        n if n > 2 => HealthStatus::Unhealthy,
        1 | 2 => HealthStatus::Degraded,
        _ if degraded > 0 => HealthStatus::Degraded,
        _ => HealthStatus::Healthy,
    }
}

#[cfg(test)]
mod tests {
    use super::HealthStatus::{Degraded, Healthy, Unhealthy};
    use super::*;

    #[test]
    fn overall_status_follows_the_original_rule() {
        assert_eq!(overall([Healthy, Healthy]), Healthy);
        assert_eq!(overall([Healthy, Degraded]), Degraded);
        assert_eq!(overall([Unhealthy, Healthy]), Degraded);
        assert_eq!(overall([Unhealthy, Unhealthy, Healthy]), Degraded);
        assert_eq!(overall([Unhealthy, Unhealthy, Unhealthy]), Unhealthy);
        assert_eq!(overall([]), Healthy);
    }
}
