//! Built-in health checks: store ping, error rate over a window, process memory.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

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
        let recorded = cx.healer.queue_stats().recorded;
        let rate = {
            let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
            samples.push_back((now, recorded));
            while samples.len() > 1
                && samples
                    .get(1)
                    .is_some_and(|(t, _)| now.saturating_duration_since(*t) >= self.window)
            {
                samples.pop_front();
            }
            let (t0, r0) = samples.front().copied().unwrap_or((now, recorded));
            let minutes = now.saturating_duration_since(t0).as_secs_f64() / 60.0;
            if minutes > 0.0 {
                (recorded - r0) as f64 / minutes
            } else {
                0.0
            }
        };
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
