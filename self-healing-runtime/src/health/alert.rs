//! Telling admins about failing checks: through the healer's notification dispatchers, throttled
//! per check exactly as healing failures are per family (feature `notify`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use super::{CheckOutcome, HealthStatus};
use crate::Category;
use crate::diagnosis::{ErrorClass, Fingerprint, Severity};
use crate::event::Outcome;
use crate::notify::NotifyDispatcher;
use crate::notify::throttle::Sighting;
use crate::scrub::{scrub, scrub_message};

/// When a failing check tells admins (feature `notify`).
///
/// By default a check that is unhealthy after its healing (if any) is offered to every
/// dispatcher the healer was given ([`HealerBuilder::notify`](crate::HealerBuilder::notify)) at
/// each run while it stays unhealthy. Each dispatcher throttles it like a family of healing
/// failures: the first one goes out at once, later ones are counted into one digest per window
/// (30 minutes by default). A check that healed itself tells no one, as healed calls do not.
///
/// ```
/// use self_healing_runtime::Healer;
/// use self_healing_runtime::health::{HealthAlerts, HealthMonitor, HealthStatus};
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// # let healer = Healer::builder().store(self_healing_runtime::InMemoryStore::new()).build()?;
/// let monitor = HealthMonitor::with_defaults(healer).alerts(
///     HealthAlerts::default()
///         // Also degraded checks.
///         .from_status(HealthStatus::Degraded)
///         // Only when a check turns bad, not at each run while it stays bad.
///         .while_failing(false),
/// );
/// # let _ = monitor;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthAlerts {
    enabled: bool,
    from: HealthStatus,
    repeat: bool,
}

impl Default for HealthAlerts {
    /// On; from unhealthy; at each run while the check stays unhealthy (throttled).
    fn default() -> Self {
        HealthAlerts {
            enabled: true,
            from: HealthStatus::Unhealthy,
            repeat: true,
        }
    }
}

impl HealthAlerts {
    /// No notification about checks at all.
    pub fn off() -> Self {
        HealthAlerts {
            enabled: false,
            ..HealthAlerts::default()
        }
    }

    /// The status from which a check notifies (default [`HealthStatus::Unhealthy`];
    /// [`HealthStatus::Healthy`] is taken as degraded).
    pub fn from_status(mut self, status: HealthStatus) -> Self {
        self.from = status.max(HealthStatus::Degraded);
        self
    }

    /// Whether a check that stays bad is offered again at each run (default `true`: the
    /// throttle turns them into one digest per window); `false` notifies only when it turns bad.
    pub fn while_failing(mut self, repeat: bool) -> Self {
        self.repeat = repeat;
        self
    }
}

/// The alert policy and the last status of each check, to see which ones turned bad.
#[derive(Debug)]
pub(crate) struct Alerter {
    policy: HealthAlerts,
    /// Explicit dispatchers; `None`: the healer's.
    dispatchers: Option<Vec<NotifyDispatcher>>,
    last: Mutex<HashMap<String, HealthStatus>>,
}

impl Alerter {
    pub(crate) fn new(policy: HealthAlerts, dispatchers: Option<Vec<NotifyDispatcher>>) -> Self {
        Alerter {
            policy,
            dispatchers,
            last: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn policy(&self) -> HealthAlerts {
        self.policy
    }

    pub(crate) fn dispatchers(&self) -> Option<&[NotifyDispatcher]> {
        self.dispatchers.as_deref()
    }

    /// Offers the checks that call for it to `dispatchers`, which throttle them.
    pub(crate) fn alert(
        &self,
        checks: &[CheckOutcome],
        healer_dispatchers: &[NotifyDispatcher],
        instance: &str,
    ) {
        let dispatchers = self.dispatchers.as_deref().unwrap_or(healer_dispatchers);
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let mut sightings = Vec::new();
        for check in checks {
            let status = check.result.status;
            let before = last.insert(check.name.clone(), status);
            let bad = |s: HealthStatus| s >= self.policy.from;
            let turned_bad = !before.is_some_and(bad);
            if self.policy.enabled && bad(status) && (self.policy.repeat || turned_bad) {
                sightings.push(sighting(check, instance));
            }
        }
        drop(last);
        if sightings.is_empty() {
            return;
        }
        for dispatcher in dispatchers {
            dispatcher.offer(sightings.clone());
        }
    }
}

/// A failing check as the throttle sees a failed call: one family per check, whatever the
/// detail says, so a check whose detail changes at each run (a latency, a count) is still
/// throttled as one.
fn sighting(check: &CheckOutcome, instance: &str) -> Sighting {
    let source = scrub(&format!("health:{}", check.name));
    // A health failure has no error class of its own; a timeout is the one it can tell.
    let class = if check.result.detail.starts_with("no answer within") {
        ErrorClass::Timeout
    } else {
        ErrorClass::Transient
    };
    Sighting {
        fingerprint: Fingerprint::new(&source, &ErrorClass::Transient, ""),
        category: Category::Runtime,
        class,
        severity: match check.result.status {
            HealthStatus::Unhealthy => Severity::High,
            _ => Severity::Medium,
        },
        outcome: Outcome::Failed,
        strategy: check.healing.clone(),
        message: scrub_message(&check.result.detail),
        count: 1,
        time: SystemTime::now(),
        instance: instance.to_owned(),
        health_check: Some(check.name.clone()),
        source,
    }
}
