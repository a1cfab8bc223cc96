//! The scheduler that runs health checks and keeps the latest report.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

#[cfg(feature = "notify")]
use super::HealthAlerts;
#[cfg(feature = "notify")]
use super::alert::Alerter;
use super::{
    CheckOutcome, CheckResult, HealthCheck, HealthContext, HealthReport, HealthStatus, overall,
};
use crate::Healer;
use crate::hooks::HookRun;

/// Runs health checks every `interval` (2 minutes by default) and on demand.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use self_healing_runtime::Healer;
/// use self_healing_runtime::health::HealthMonitor;
///
/// let healer = Healer::builder().build().unwrap();
/// let monitor = HealthMonitor::with_defaults(healer);
/// let report = monitor.run_now().await;
/// assert_eq!(report.checks.len(), 3);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HealthMonitor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cx: HealthContext,
    checks: Vec<Arc<dyn HealthCheck>>,
    interval: Duration,
    latest: Mutex<Option<HealthReport>>,
    #[cfg(feature = "notify")]
    alerter: Alerter,
}

impl HealthMonitor {
    /// A monitor of `checks` for `healer`.
    pub fn new(healer: Healer, checks: Vec<Arc<dyn HealthCheck>>) -> Self {
        HealthMonitor {
            inner: Arc::new(Inner {
                cx: HealthContext { healer },
                checks,
                interval: Duration::from_secs(120),
                latest: Mutex::new(None),
                #[cfg(feature = "notify")]
                alerter: Alerter::new(HealthAlerts::default(), None),
            }),
        }
    }

    /// The built-in checks: store ping, error rate (5 min), process memory.
    pub fn with_defaults(healer: Healer) -> Self {
        Self::new(
            healer,
            vec![
                Arc::new(super::StorePing),
                Arc::new(super::ErrorRate::default()),
                Arc::new(super::ProcessMemory::default()),
            ],
        )
    }

    /// The same monitor with one setting changed; the latest report and the alert history
    /// start afresh, as the builder methods are meant for before the first run.
    fn rebuild(&self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Inner {
            cx: self.inner.cx.clone(),
            checks: self.inner.checks.clone(),
            interval: self.inner.interval,
            latest: Mutex::new(None),
            #[cfg(feature = "notify")]
            alerter: Alerter::new(
                self.inner.alerter.policy(),
                self.inner.alerter.dispatchers().map(<[_]>::to_vec),
            ),
        };
        change(&mut inner);
        HealthMonitor {
            inner: Arc::new(inner),
        }
    }

    /// Adds a check.
    pub fn with_check(self, check: impl HealthCheck) -> Self {
        self.rebuild(|inner| inner.checks.push(Arc::new(check)))
    }

    /// Sets the schedule's interval.
    pub fn every(self, interval: Duration) -> Self {
        self.rebuild(|inner| inner.interval = interval)
    }

    /// When failing checks tell admins (feature `notify`; see [`HealthAlerts`] for the
    /// default).
    #[cfg(feature = "notify")]
    pub fn alerts(self, policy: HealthAlerts) -> Self {
        let dispatchers = self.inner.alerter.dispatchers().map(<[_]>::to_vec);
        self.rebuild(|inner| inner.alerter = Alerter::new(policy, dispatchers))
    }

    /// Tells admins through `dispatcher` instead of the healer's dispatchers (feature
    /// `notify`); call it again to add more. Alerts are throttled by each dispatcher's window.
    #[cfg(feature = "notify")]
    pub fn notify(self, dispatcher: crate::notify::NotifyDispatcher) -> Self {
        let mut dispatchers = self
            .inner
            .alerter
            .dispatchers()
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        dispatchers.push(dispatcher);
        let policy = self.inner.alerter.policy();
        self.rebuild(|inner| inner.alerter = Alerter::new(policy, Some(dispatchers)))
    }

    /// The schedule's interval.
    pub fn interval(&self) -> Duration {
        self.inner.interval
    }

    /// The latest report, if the checks ran.
    pub fn latest(&self) -> Option<HealthReport> {
        self.inner
            .latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Runs every check now (concurrently, each under its timeout), runs the healing hooks of
    /// failed checks, keeps and persists the report.
    pub async fn run_now(&self) -> HealthReport {
        let cx = &self.inner.cx;
        let mut set = tokio::task::JoinSet::new();
        for (index, check) in self.inner.checks.iter().enumerate() {
            let (check, cx) = (check.clone(), cx.clone());
            set.spawn(async move { (index, run_one(&*check, &cx).await) });
        }
        let mut checks: Vec<(usize, CheckOutcome)> = Vec::with_capacity(self.inner.checks.len());
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(outcome) => checks.push(outcome),
                Err(e) => tracing::error!(error = %e, "self-healing: a health check panicked"),
            }
        }
        checks.sort_by_key(|(index, _)| *index);
        let checks: Vec<CheckOutcome> = checks.into_iter().map(|(_, c)| c).collect();
        let report = HealthReport {
            time: SystemTime::now(),
            status: overall(checks.iter().map(|c| c.result.status)),
            checks,
        };
        #[cfg(feature = "notify")]
        self.inner.alerter.alert(
            &report.checks,
            &cx.healer.inner.notify,
            cx.healer.instance_id(),
        );
        if let Err(e) = cx.healer.store().write_health(&report).await {
            tracing::warn!(error = %e, "self-healing: could not persist the health report");
        }
        *self.inner.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(report.clone());
        report
    }

    /// Runs the checks every interval on the current tokio runtime, until the returned handle is
    /// aborted or the runtime stops.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let monitor = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(monitor.inner.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                monitor.run_now().await;
            }
        })
    }
}

/// Runs one check under its timeout; if it is unhealthy, its healing action or hook, then the
/// check once more to see whether that helped.
async fn run_one(check: &dyn HealthCheck, cx: &HealthContext) -> CheckOutcome {
    let started = Instant::now();
    let (result, duration) = timed(check, cx).await;
    if result.status != HealthStatus::Unhealthy {
        return outcome(check, result, duration, None, None);
    }
    let hooks = &cx.healer.inner.hooks;
    let (action, ran) = match (check.heal(), check.healing_hook()) {
        (Some(heal), _) => {
            let done = match hooks.timeout {
                Some(t) => tokio::time::timeout(t, heal)
                    .await
                    .unwrap_or_else(|_| Err(format!("timed out after {t:?}").into())),
                None => heal.await,
            };
            match done {
                Ok(()) => ("healing action ran".to_owned(), true),
                Err(why) => (format!("healing action failed: {why}"), false),
            }
        }
        (None, Some(kind)) => match hooks.find_any(kind) {
            Some(hook) => match hook
                .run(
                    started,
                    hooks.timeout,
                    crate::hooks::HookContext::health("health_check"),
                )
                .await
            {
                HookRun::Failed(why) => (format!("{} hook failed: {why}", kind.as_str()), false),
                // Another run finished after this check started: it may have healed this too.
                _ => (format!("{} hook ran", kind.as_str()), true),
            },
            None => {
                // Nothing ran, so nothing failed to heal: `healed` stays `None`.
                let missing = format!("no {} hook registered", kind.as_str());
                return outcome(check, result, duration, Some(missing), None);
            }
        },
        (None, None) => return outcome(check, result, duration, None, None),
    };
    if !ran {
        return outcome(check, result, duration, Some(action), Some(false));
    }
    // Once more, so the report says whether healing helped instead of assuming it did.
    let (again, duration) = timed(check, cx).await;
    let healed = again.status != HealthStatus::Unhealthy;
    let healing = if healed {
        format!(
            "{action}; {} on re-check (was unhealthy: {})",
            again.status, result.detail
        )
    } else {
        format!("{action}; still unhealthy on re-check")
    };
    outcome(check, again, duration, Some(healing), Some(healed))
}

/// One run of `check` under its timeout, and how long it took.
async fn timed(check: &dyn HealthCheck, cx: &HealthContext) -> (CheckResult, Duration) {
    let started = Instant::now();
    let result = match tokio::time::timeout(check.timeout(), check.check(cx)).await {
        Ok(result) => result,
        Err(_) => CheckResult::new(
            HealthStatus::Unhealthy,
            format!("no answer within {:?}", check.timeout()),
        ),
    };
    (result, started.elapsed())
}

fn outcome(
    check: &dyn HealthCheck,
    result: CheckResult,
    duration: Duration,
    healing: Option<String>,
    healed: Option<bool>,
) -> CheckOutcome {
    CheckOutcome {
        name: check.name().to_owned(),
        result,
        duration,
        healing,
        healed,
    }
}
