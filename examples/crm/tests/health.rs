//! The served demo's health: the monitor runs on its own (the first report right after the
//! load, then every `HEALTH_EVERY`), and the error rate counts the run's failures instead of
//! reporting 0 from a first sample.

mod common;

use std::time::Duration;

use self_healing::health::{HealthReport, HealthStatus};

#[tokio::test(start_paused = true)]
async fn the_monitor_runs_and_the_error_rate_sees_the_failures() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = common::config(
        format!("sqlite://{}", dir.path().join("store.db").display()),
        dir.path().join("crm.db").display().to_string(),
    );
    config.max_calls = Some(800);
    let demo = self_healing_crm::run(config).await?;
    let recorded = demo.healer.queue_stats().recorded;
    assert!(recorded > 50, "the run failed often: {recorded}");

    let dashboard = demo.dashboard(None)?;
    let monitor = dashboard.state.monitor();
    // The first report comes without anyone asking `/health`...
    let mut first = None;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        first = monitor.latest();
        if first.is_some() {
            break;
        }
    }
    let first = first.expect("the monitor ran on its own");
    let (status, value) = error_rate(&first);
    assert_ne!(status, HealthStatus::Healthy, "{first:#?}");
    assert!(value > 10.0, "{recorded} failures, {value} a minute");

    // ...and the next one on schedule: the report follows the process instead of freezing.
    tokio::time::sleep(self_healing_crm::HEALTH_EVERY + Duration::from_secs(1)).await;
    let later = monitor.latest().expect("a report");
    assert!(later.time > first.time, "a new report");
    Ok(())
}

/// The status and value of the `error_rate` check of `report`.
fn error_rate(report: &HealthReport) -> (HealthStatus, f64) {
    let check = report
        .checks
        .iter()
        .find(|c| c.name == "error_rate")
        .expect("an error_rate check");
    (check.result.status, check.result.value.unwrap_or(0.0))
}
