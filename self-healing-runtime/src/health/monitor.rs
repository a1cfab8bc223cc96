//! The scheduler that runs health checks and keeps the latest report.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

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
}

impl HealthMonitor {
    /// A monitor of `checks` for `healer`.
    pub fn new(healer: Healer, checks: Vec<Arc<dyn HealthCheck>>) -> Self {
        Self::build(healer, checks, Duration::from_secs(120))
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

    fn build(healer: Healer, checks: Vec<Arc<dyn HealthCheck>>, interval: Duration) -> Self {
        HealthMonitor {
            inner: Arc::new(Inner {
                cx: HealthContext { healer },
                checks,
                interval,
                latest: Mutex::new(None),
            }),
        }
    }

    /// Adds a check.
    pub fn with_check(self, check: impl HealthCheck) -> Self {
        let mut checks = self.inner.checks.clone();
        checks.push(Arc::new(check));
        Self::build(self.inner.cx.healer.clone(), checks, self.inner.interval)
    }

    /// Sets the schedule's interval.
    pub fn every(self, interval: Duration) -> Self {
        Self::build(
            self.inner.cx.healer.clone(),
            self.inner.checks.clone(),
            interval,
        )
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

/// Runs one check under its timeout, then its healing hook if it failed.
async fn run_one(check: &dyn HealthCheck, cx: &HealthContext) -> CheckOutcome {
    let started = Instant::now();
    let result = match tokio::time::timeout(check.timeout(), check.check(cx)).await {
        Ok(result) => result,
        Err(_) => CheckResult::new(
            HealthStatus::Unhealthy,
            format!("no answer within {:?}", check.timeout()),
        ),
    };
    let duration = started.elapsed();
    let healing = match (result.status, check.healing_hook()) {
        (HealthStatus::Unhealthy, Some(kind)) => Some(match cx.healer.inner.hooks.find_any(kind) {
            Some(hook) => match hook.run(started, cx.healer.inner.hooks.timeout).await {
                HookRun::Failed(why) => format!("{} hook failed: {why}", kind.as_str()),
                _ => format!("{} hook ran", kind.as_str()),
            },
            None => format!("no {} hook registered", kind.as_str()),
        }),
        _ => None,
    };
    CheckOutcome {
        name: check.name().to_owned(),
        result,
        duration,
        healing,
    }
}
