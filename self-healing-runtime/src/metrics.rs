//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`): install
//! any recorder (Prometheus, StatsD, OpenTelemetry, …) and the healer reports to it.
//!
//! Nothing is recorded on the success path, which stays a relaxed increment: per-call figures
//! come from the healing events (recorded by the event worker, off the caller's path, before
//! storms are folded), and the rest is published every [`PUBLISH_EVERY`] by a task of the
//! healer's own.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | [`CALLS`] | counter | `source`, `category`, `outcome`, `strategy`, `class` | failing calls by how they ended (`healed`, `failed`, …) |
//! | [`HEAL_SECONDS`] | histogram | `source`, `outcome`, `strategy` | time from a call's start to its outcome, failing calls only |
//! | [`ANSWERED`] | counter | `source` | calls the dependency answered: successes (first try or healed) and answers that say nothing against its health (a 404); what the circuit counts as healthy |
//! | [`CIRCUIT`] | gauge | `source` | circuit state: 0 closed, 1 half-open, 2 open |
//! | [`QUEUE_DEPTH`] | gauge | | events waiting for the event worker |
//! | [`STORE_LAG`] | gauge | | failing calls recorded but not yet committed to the store |
//! | [`DROPPED`] | counter | | failing calls whose events were dropped or lost by the store |
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Any `metrics` recorder: here the crate's no-op default. A Prometheus exporter would be
//! // `metrics_exporter_prometheus::PrometheusBuilder::new().install()?`.
//! let healer = self_healing_runtime::Healer::builder().build()?;
//! // Circuit states, queue depth and store lag are published every 10 s from now on.
//! assert_eq!(
//!     self_healing_runtime::metrics::PUBLISH_EVERY,
//!     std::time::Duration::from_secs(10)
//! );
//! # drop(healer); Ok(()) }
//! ```

use std::time::Duration;

use crate::event::HealingEvent;
use crate::{CircuitState, Healer};

/// Failing calls by outcome (counter).
pub const CALLS: &str = "self_healing_calls_total";
/// Time from a failing call's start to its outcome, in seconds (histogram).
pub const HEAL_SECONDS: &str = "self_healing_heal_duration_seconds";
/// Calls the dependency answered (successes, and answers such as a 404 that say nothing
/// against its health), by source (counter).
pub const ANSWERED: &str = "self_healing_answered_total";
/// Circuit state by source: 0 closed, 1 half-open, 2 open (gauge).
pub const CIRCUIT: &str = "self_healing_circuit_state";
/// Events waiting for the event worker (gauge).
pub const QUEUE_DEPTH: &str = "self_healing_queue_depth";
/// Failing calls recorded but not yet committed to the store (gauge).
pub const STORE_LAG: &str = "self_healing_store_lag_calls";
/// Failing calls whose events were dropped or lost by the store (counter).
pub const DROPPED: &str = "self_healing_events_dropped_total";

/// How often the healer publishes its gauges and the answered counters.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(10);

/// Records one event (possibly standing for `count` calls) as the event worker takes it.
pub(crate) fn record(e: &HealingEvent) {
    let source = e.source.clone();
    let strategy = e
        .strategy
        .clone()
        .unwrap_or(std::borrow::Cow::Borrowed("none"));
    metrics::counter!(
        CALLS,
        "source" => source.clone(),
        "category" => e.category.as_str(),
        "outcome" => e.outcome.as_str(),
        "strategy" => strategy.clone(),
        "class" => e.class.as_str(),
    )
    .increment(e.count);
    // A folded record carries one duration for many calls: only single calls are timed.
    if e.count == 1 {
        metrics::histogram!(
            HEAL_SECONDS,
            "source" => source,
            "outcome" => e.outcome.as_str(),
            "strategy" => strategy,
        )
        .record(e.duration.as_secs_f64());
    }
}

/// The circuit state as a gauge value.
fn circuit_value(state: CircuitState) -> f64 {
    match state {
        CircuitState::Closed => 0.0,
        CircuitState::HalfOpen => 1.0,
        CircuitState::Open => 2.0,
    }
}

/// Publishes the gauges and the answered counters once.
pub(crate) fn publish(healer: &Healer) {
    for view in healer.circuits() {
        metrics::gauge!(CIRCUIT, "source" => view.source).set(circuit_value(view.state));
    }
    for site in crate::sites() {
        metrics::counter!(ANSWERED, "source" => site.source()).absolute(site.ok_calls());
    }
    let q = healer.queue_stats();
    metrics::gauge!(QUEUE_DEPTH).set(q.depth as f64);
    let settled = q.written + q.dropped + q.lost_to_store;
    metrics::gauge!(STORE_LAG).set(q.recorded.saturating_sub(settled) as f64);
    metrics::counter!(DROPPED).absolute(q.dropped + q.lost_to_store);
}

impl Healer {
    /// Publishes the gauges (circuit states, queue depth, store lag) and the answered and
    /// dropped counters now, without waiting for the next [`PUBLISH_EVERY`]: before a scrape
    /// at shutdown, or in a test.
    pub fn publish_metrics(&self) {
        publish(self);
    }
}

/// Starts the publishing task on the current tokio runtime, if there is one. It holds the
/// healer weakly: it stops once the healer is dropped.
pub(crate) fn start(healer: &Healer, every: Duration) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = std::sync::Arc::downgrade(&healer.inner);
    handle.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else {
                return;
            };
            publish(&Healer { inner });
        }
    });
}
