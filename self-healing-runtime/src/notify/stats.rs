//! Counters of the notification dispatcher, readable at any time (dashboard, `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

/// What the dispatcher did since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotifyStats {
    /// Failing calls that matched a trigger.
    pub triggered: u64,
    /// Alerts sent (first failure of a family in a window).
    pub alerts: u64,
    /// Digests sent.
    pub digests: u64,
    /// Failing calls counted into digests instead of a message each.
    pub held: u64,
    /// Deliveries a channel accepted.
    pub delivered: u64,
    /// Attempts that failed and were tried again.
    pub retries: u64,
    /// Deliveries that failed for good.
    pub failed: u64,
    /// Deliveries not attempted because too many were waiting.
    pub dropped_deliveries: u64,
    /// Failing calls lost before throttling (full queue or family table).
    pub dropped_calls: u64,
}

impl NotifyStats {
    /// Every counter by a stable snake_case name, for metrics exporters.
    pub fn pairs(&self) -> [(&'static str, u64); 9] {
        [
            ("triggered", self.triggered),
            ("alerts", self.alerts),
            ("digests", self.digests),
            ("held", self.held),
            ("delivered", self.delivered),
            ("retries", self.retries),
            ("failed", self.failed),
            ("dropped_deliveries", self.dropped_deliveries),
            ("dropped_calls", self.dropped_calls),
        ]
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) triggered: AtomicU64,
    pub(crate) alerts: AtomicU64,
    pub(crate) digests: AtomicU64,
    pub(crate) held: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) dropped_deliveries: AtomicU64,
    pub(crate) dropped_calls: AtomicU64,
}

/// Adds `n`.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> NotifyStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NotifyStats {
            triggered: get(&self.triggered),
            alerts: get(&self.alerts),
            digests: get(&self.digests),
            held: get(&self.held),
            delivered: get(&self.delivered),
            retries: get(&self.retries),
            failed: get(&self.failed),
            dropped_deliveries: get(&self.dropped_deliveries),
            dropped_calls: get(&self.dropped_calls),
        }
    }
}
