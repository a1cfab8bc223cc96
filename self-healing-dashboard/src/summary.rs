//! The numbers behind the page's header and charts, read from the store in one go.

use std::time::{Duration, SystemTime};

use self_healing_runtime::Outcome;
use self_healing_store::{
    DieselStore, FailingFingerprint, FailingSource, HourlyCount, StoreError, StrategyRate,
};
use serde_json::{Value, json};

use crate::charts::{OUTCOMES, hour_start};
use crate::time_fmt;

/// Hours the page and `api/summary` look back by default.
pub(crate) const DEFAULT_HOURS: u32 = 24;
/// Most hours `api/summary` looks back.
pub(crate) const MAX_HOURS: u32 = 24 * 31;

/// What the store says about the last `hours` hours.
#[derive(Debug)]
pub(crate) struct Summary {
    pub(crate) hours: u32,
    pub(crate) now: SystemTime,
    pub(crate) hourly: Vec<HourlyCount>,
    pub(crate) strategies: Vec<StrategyRate>,
    pub(crate) sources: Vec<FailingSource>,
    pub(crate) fingerprints: Vec<FailingFingerprint>,
}

impl Summary {
    /// Reads the summary of the `hours` hours up to now (whole hours: the current one included).
    pub(crate) async fn load(store: &DieselStore, hours: u32) -> Result<Summary, StoreError> {
        let now = SystemTime::now();
        let since = hour_start(now)
            .checked_sub(Duration::from_secs(
                3600 * u64::from(hours.saturating_sub(1)),
            ))
            .unwrap_or(std::time::UNIX_EPOCH);
        let until = now + Duration::from_secs(3600);
        let (hourly, strategies, sources, fingerprints) = tokio::try_join!(
            store.counts_per_hour(since, until),
            store.heal_rate_by_strategy(Some(since)),
            store.top_failing_sources(Some(since), 8),
            store.top_failing_fingerprints(Some(since), 8),
        )?;
        Ok(Summary {
            hours,
            now,
            hourly,
            strategies,
            sources,
            fingerprints,
        })
    }

    /// Calls per outcome, in [`OUTCOMES`] order.
    pub(crate) fn totals(&self) -> [u64; OUTCOMES.len()] {
        let mut totals = [0u64; OUTCOMES.len()];
        for c in &self.hourly {
            if let Some(k) = OUTCOMES.iter().position(|(o, _)| *o == c.outcome) {
                totals[k] += c.calls;
            }
        }
        totals
    }

    /// Failing calls in the window.
    pub(crate) fn calls(&self) -> u64 {
        self.totals().iter().sum()
    }

    /// Healed calls in the window.
    pub(crate) fn healed(&self) -> u64 {
        self.totals()[0]
    }

    /// Healed share of the failing calls (0 when there were none).
    pub(crate) fn heal_rate(&self) -> f64 {
        match self.calls() {
            0 => 0.0,
            n => self.healed() as f64 / n as f64,
        }
    }

    /// The summary as `api/summary` answers it.
    pub(crate) fn to_json(&self) -> Value {
        let totals = self.totals();
        let by_outcome: serde_json::Map<String, Value> = OUTCOMES
            .iter()
            .zip(totals)
            .map(|((o, _), n)| (o.as_str().to_owned(), json!(n)))
            .collect();
        json!({
            "window_hours": self.hours,
            "generated": time_fmt::rfc3339(self.now),
            "calls": self.calls(),
            "healed": self.healed(),
            "heal_rate": self.heal_rate(),
            "by_outcome": by_outcome,
            "per_hour": self.hourly.iter().map(|h| json!({
                "hour": time_fmt::rfc3339(h.hour),
                "outcome": h.outcome.as_str(),
                "calls": h.calls,
            })).collect::<Vec<_>>(),
            "strategies": self.strategies.iter().map(|s| json!({
                "strategy": s.strategy,
                "calls": s.calls,
                "healed": s.healed,
                "heal_rate": s.rate(),
            })).collect::<Vec<_>>(),
            "top_failing_sources": self.sources.iter().map(|s| json!({
                "source": s.source,
                "failures": s.failures,
                "last": time_fmt::rfc3339(s.last),
            })).collect::<Vec<_>>(),
            "top_failing_fingerprints": self.fingerprints.iter().map(|f| json!({
                "fingerprint": f.fingerprint.to_hex(),
                "source": f.source,
                "class": f.class,
                "message": f.message,
                "failures": f.failures,
                "last": time_fmt::rfc3339(f.last),
            })).collect::<Vec<_>>(),
        })
    }
}

/// The label of an outcome for people (`fast failed`).
pub(crate) fn outcome_label(o: Outcome) -> String {
    o.as_str().replace('_', " ")
}
