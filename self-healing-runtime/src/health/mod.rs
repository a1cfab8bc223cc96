//! Health checks: a [`HealthCheck`] trait, built-in checks, and a [`HealthMonitor`] that runs them
//! on a schedule (every 2 minutes by default) or on demand (the cron endpoint), keeps the latest
//! report, persists each report through the store, and may run a healing hook when a check fails.
//!
//! Overall status, as in the original system: **unhealthy** when more than two checks are
//! unhealthy, **degraded** when one or two are (or any check is degraded), **healthy** otherwise.
//!
//! The seven checks of the original, each with thresholds that default as documented on it:
//!
//! | what | check | unhealthy | degraded |
//! |------|-------|-----------|----------|
//! | the healing store | [`StorePing`] | no answer | — |
//! | your own database | [`DatabasePing`] | the ping fails or times out (5 s) | slower than 1 s |
//! | an HTTP endpoint (features `notify` or `llm`) | `HttpCheck` | not 2xx, or no answer within 5 s | slower than 1 s |
//! | the LLM endpoint (feature `llm`) | `LlmEndpoint` | `GET {base}/models` not 2xx | slower than 2 s |
//! | required configuration | [`RequiredConfig`] | a required variable or setting is missing | a recommended one is |
//! | memory | [`ProcessMemory`] | 2 GiB resident | 1 GiB |
//! | error rate | [`ErrorRate`] | 50 failures/min over 5 min | 10/min |
//!
//! A check that is unhealthy may heal: [`HealthCheck::heal`] (a closure of yours, see
//! [`HealthCheckExt::heal_with`]) or else the registered hook named by
//! [`HealthCheck::healing_hook`] runs, and the check runs once more to see whether it helped
//! ([`CheckOutcome::healed`]). A check still unhealthy after that tells admins through the
//! healer's notification dispatchers (feature `notify`), throttled per check like healing
//! failures: see `HealthMonitor::alerts`.

#[cfg(feature = "notify")]
mod alert;
mod builtin;
mod config;
mod database;
mod healing;
#[cfg(any(feature = "llm", feature = "notify"))]
mod http;
#[cfg(feature = "llm")]
mod llm;
mod monitor;

use std::fmt;
use std::time::{Duration, SystemTime};

#[cfg(feature = "notify")]
pub use alert::HealthAlerts;
pub use builtin::{ErrorRate, ProcessMemory, StorePing};
pub use config::RequiredConfig;
pub use database::DatabasePing;
pub use healing::{HealthCheckExt, WithHealing};
#[cfg(any(feature = "llm", feature = "notify"))]
pub use http::HttpCheck;
#[cfg(feature = "llm")]
pub use llm::LlmEndpoint;
pub use monitor::HealthMonitor;

use crate::Healer;
use crate::event::BoxFuture;
use crate::hooks::{HookFuture, HookKind};

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

    /// A registered hook to run when the check is unhealthy (e.g. [`HookKind::Reconnect`] for
    /// the store). Ignored when [`heal`](Self::heal) gives an action of the check's own.
    fn healing_hook(&self) -> Option<HookKind> {
        None
    }

    /// An action of the check's own to run when it is unhealthy (rebuild a pool, reload a
    /// file), run under the healer's hook timeout; the check then runs once more. `None` (the
    /// default) falls back to [`healing_hook`](Self::healing_hook).
    /// [`HealthCheckExt::heal_with`] adds one to any check.
    fn heal(&self) -> Option<HookFuture> {
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
    /// Whether healing helped: `Some(true)` when an action ran and the check, run once more,
    /// was no longer unhealthy (`result` and `duration` are then the second run's);
    /// `Some(false)` when the action failed or the check was still unhealthy; `None` when
    /// nothing ran (healthy, no action, or no hook of the kind registered).
    pub healed: Option<bool>,
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

/// Healthy below `degraded_from`, degraded from it: the latency rule of the checks that time a
/// round trip.
pub(crate) fn by_latency(elapsed: Duration, degraded_from: Duration) -> HealthStatus {
    if elapsed >= degraded_from {
        HealthStatus::Degraded
    } else {
        HealthStatus::Healthy
    }
}

/// Milliseconds, for details and measured values.
pub(crate) fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
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
