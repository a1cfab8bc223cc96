//! Built-in health checks: store ping, error rate over a window, process memory.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{CheckResult, HealthCheck, HealthContext, HealthStatus};
use crate::event::BoxFuture;
use crate::hooks::HookKind;

/// Pings the healer's store; on failure the reconnect hook may run.
#[derive(Debug, Clone, Default)]
pub struct StorePing;

impl HealthCheck for StorePing {
    fn name(&self) -> &str {
        "store"
    }

    fn check<'a>(&'a self, cx: &'a HealthContext) -> BoxFuture<'a, CheckResult> {
        Box::pin(async move {
            let started = Instant::now();
            match cx.healer.store().ping().await {
                Ok(()) => {
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    CheckResult::healthy(format!("store answered in {ms:.1} ms")).with_value(ms)
                }
                Err(e) => {
                    CheckResult::new(HealthStatus::Unhealthy, format!("store unreachable: {e}"))
                }
            }
        })
    }

    fn healing_hook(&self) -> Option<HookKind> {
        Some(HookKind::Reconnect)
    }
}

/// Failures per minute over a window (the original: degraded from 10/min over 5 minutes).
///
/// The failures are the healer's recorded failing calls. The rate is measured between the
/// newest sample taken at least `window` ago and now; before such a sample exists, the baseline
/// is the moment the healer met its first site, when its counters were zero. So the first check
/// after a burst of failures reports the burst instead of 0, and a check whose process saw no
/// failure within the window reports 0 whatever happened before.
#[derive(Debug)]
pub struct ErrorRate {
    window: Duration,
    degraded_per_min: f64,
    unhealthy_per_min: f64,
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl ErrorRate {
    /// Degraded at `degraded_per_min` failures a minute over `window`, unhealthy at
    /// `unhealthy_per_min`.
    pub fn new(window: Duration, degraded_per_min: f64, unhealthy_per_min: f64) -> Self {
        ErrorRate {
            window,
            degraded_per_min,
            unhealthy_per_min,
            samples: Mutex::new(VecDeque::new()),
        }
    }

    /// Failures a minute at `now`, with `recorded` failing calls counted so far. `origin`: when
    /// the counter started (it was zero then); `last_failure_age`: how long ago the latest
    /// failure happened, if one did.
    fn rate(
        &self,
        now: Instant,
        recorded: u64,
        origin: Option<Instant>,
        last_failure_age: Option<Duration>,
    ) -> f64 {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.push_back((now, recorded));
        // Keep the newest sample at least a window old: it is the baseline.
        while samples
            .get(1)
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) >= self.window)
        {
            samples.pop_front();
        }
        if last_failure_age.is_some_and(|age| age >= self.window) {
            // Nothing failed within the window, whatever the counters say about before.
            return 0.0;
        }
        let (mut t0, mut r0) = samples.front().copied().unwrap_or((now, recorded));
        if now.saturating_duration_since(t0) < self.window
            && let Some(origin) = origin.filter(|o| *o < t0)
        {
            // No sample covers the whole window yet: count from when the counter was zero.
            (t0, r0) = (origin, 0);
        }
        let elapsed = now.saturating_duration_since(t0);
        if elapsed.is_zero() {
            return 0.0;
        }
        // At least a minute (or the window, if shorter): five failures in the first second
        // are five failures a minute, not three hundred.
        let floor = self.window.min(Duration::from_secs(60));
        let minutes = elapsed.max(floor).as_secs_f64() / 60.0;
        recorded.saturating_sub(r0) as f64 / minutes
    }
}

impl Default for ErrorRate {
    /// 5 minutes; degraded from 10 failures a minute, unhealthy from 50.
    fn default() -> Self {
        ErrorRate::new(Duration::from_secs(300), 10.0, 50.0)
    }
}

impl HealthCheck for ErrorRate {
    fn name(&self) -> &str {
        "error_rate"
    }

    fn check<'a>(&'a self, cx: &'a HealthContext) -> BoxFuture<'a, CheckResult> {
        let now = Instant::now();
        let wall = SystemTime::now();
        let recorded = cx.healer.queue_stats().recorded;
        let states = cx.healer.inner.sites.all();
        // The healer's counters started at zero no later than the first call of its first site.
        let origin = states
            .iter()
            .filter_map(|(site, _)| site.first_call())
            .min();
        let last_failure_age = states
            .iter()
            .filter_map(|(_, state)| state.last_error())
            .max()
            .map(|at| wall.duration_since(at).unwrap_or_default());
        let rate = self.rate(now, recorded, origin, last_failure_age);
        let status = if rate >= self.unhealthy_per_min {
            HealthStatus::Unhealthy
        } else if rate >= self.degraded_per_min {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        };
        let minutes = self.window.as_secs_f64() / 60.0;
        let result = CheckResult::new(
            status,
            format!("{rate:.1} failures/min over {minutes:.0} min"),
        )
        .with_value(rate);
        Box::pin(std::future::ready(result))
    }
}

/// Resident memory of this process (Linux `/proc/self/status`; elsewhere it reports unknown).
#[derive(Debug, Clone)]
pub struct ProcessMemory {
    degraded_mib: f64,
    unhealthy_mib: f64,
}

impl ProcessMemory {
    /// Degraded from `degraded_mib` MiB resident, unhealthy from `unhealthy_mib`.
    pub fn new(degraded_mib: f64, unhealthy_mib: f64) -> Self {
        ProcessMemory {
            degraded_mib,
            unhealthy_mib,
        }
    }
}

impl Default for ProcessMemory {
    /// Degraded from 1 GiB resident, unhealthy from 2 GiB.
    fn default() -> Self {
        ProcessMemory::new(1024.0, 2048.0)
    }
}

/// Resident set size in MiB, if the platform tells.
pub(crate) fn resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

impl HealthCheck for ProcessMemory {
    fn name(&self) -> &str {
        "memory"
    }

    fn check<'a>(&'a self, _cx: &'a HealthContext) -> BoxFuture<'a, CheckResult> {
        let result = match resident_mib() {
            Some(mib) => {
                let status = if mib >= self.unhealthy_mib {
                    HealthStatus::Unhealthy
                } else if mib >= self.degraded_mib {
                    HealthStatus::Degraded
                } else {
                    HealthStatus::Healthy
                };
                CheckResult::new(status, format!("{mib:.0} MiB resident")).with_value(mib)
            }
            None => CheckResult::healthy("resident memory unknown on this platform"),
        };
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn the_first_check_counts_from_the_origin_not_from_itself() {
        let check = ErrorRate::default();
        let origin = Instant::now();
        // 248 failures in the first 10 s: the first check sees them.
        let now = origin + Duration::from_secs(10);
        let rate = check.rate(now, 248, Some(origin), Some(Duration::ZERO));
        assert!(rate >= 50.0, "{rate}");
        // Without an origin a lone sample knows nothing.
        assert_eq!(ErrorRate::default().rate(now, 248, None, None), 0.0);
    }

    #[test]
    fn the_window_moves_and_old_failures_age_out() {
        let check = ErrorRate::default();
        let origin = Instant::now();
        let t = |m: u32| origin + MIN * m;
        assert_eq!(
            check.rate(t(1), 100, Some(origin), Some(Duration::ZERO)),
            100.0
        );
        // 100 more over the next four minutes: 200 over five.
        assert_eq!(
            check.rate(t(5), 200, Some(origin), Some(Duration::ZERO)),
            40.0
        );
        // Five minutes on, 50 more: measured from the sample at minute 5.
        assert_eq!(
            check.rate(t(10), 250, Some(origin), Some(Duration::ZERO)),
            10.0
        );
        // Nothing failed for a whole window: 0, whatever the counters say.
        assert_eq!(check.rate(t(16), 250, Some(origin), Some(MIN * 6)), 0.0);
    }
}
