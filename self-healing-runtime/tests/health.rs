//! Health checks: timeouts, healing hooks on failure, the overall rule, the schedule.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use self_healing_runtime::event::BoxFuture;
use self_healing_runtime::health::{
    CheckResult, HealthCheck, HealthContext, HealthMonitor, HealthStatus,
};
use self_healing_runtime::hooks::HookKind;
use self_healing_runtime::{Category, Healer};

#[derive(Debug)]
struct Fixed(&'static str, HealthStatus, Option<HookKind>);

impl HealthCheck for Fixed {
    fn name(&self) -> &str {
        self.0
    }
    fn check<'a>(&'a self, _: &'a HealthContext) -> BoxFuture<'a, CheckResult> {
        Box::pin(std::future::ready(CheckResult::new(self.1, "scripted")))
    }
    fn healing_hook(&self) -> Option<HookKind> {
        self.2
    }
}

#[derive(Debug)]
struct Hangs;

impl HealthCheck for Hangs {
    fn name(&self) -> &str {
        "hangs"
    }
    fn check<'a>(&'a self, _: &'a HealthContext) -> BoxFuture<'a, CheckResult> {
        Box::pin(std::future::pending())
    }
    fn timeout(&self) -> Duration {
        Duration::from_millis(50)
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_check_runs_its_healing_hook_and_says_so() {
    let reconnects = Arc::new(AtomicU32::new(0));
    let hook_count = reconnects.clone();
    let healer = Healer::builder()
        .on_reconnect(Category::Database, move || {
            let n = hook_count.clone();
            async move {
                n.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .build()
        .unwrap();
    let monitor = HealthMonitor::new(
        healer,
        vec![
            Arc::new(Fixed(
                "db",
                HealthStatus::Unhealthy,
                Some(HookKind::Reconnect),
            )),
            Arc::new(Fixed("cache", HealthStatus::Healthy, None)),
            Arc::new(Hangs),
        ],
    );
    let report = monitor.run_now().await;
    assert_eq!(
        report.status,
        HealthStatus::Degraded,
        "two unhealthy of three: degraded"
    );
    assert_eq!(
        report.checks[0].healing.as_deref(),
        Some("reconnect hook ran")
    );
    assert_eq!(reconnects.load(Ordering::SeqCst), 1);
    assert_eq!(
        report.checks[2].result.status,
        HealthStatus::Unhealthy,
        "a hung check times out"
    );
    assert!(report.checks[2].result.detail.contains("no answer"));
    assert_eq!(monitor.latest(), Some(report));
}

#[tokio::test(start_paused = true)]
async fn the_schedule_runs_every_interval() {
    let healer = Healer::builder().build().unwrap();
    let monitor = HealthMonitor::with_defaults(healer).every(Duration::from_secs(120));
    let task = monitor.spawn();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first = monitor.latest().expect("ran at start").time;
    tokio::time::sleep(Duration::from_secs(120)).await;
    let second = monitor.latest().unwrap().time;
    assert!(second > first, "ran again after the interval");
    task.abort();
}
