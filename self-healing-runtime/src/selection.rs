//! Strategy selection: the rule table's priors, refined by what has healed before.
//!
//! Each strategy's score for a fingerprint is the posterior mean of its heal rate with the prior
//! as pseudo-counts: `(healed + prior·k) / (tried + k)`. A strategy that keeps failing for a
//! family of errors sinks below one that heals it, however the rule table ranked them; with no
//! history the rule table decides. Ties keep registration order, so the ranking is deterministic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::diagnosis::{Diagnosis, Fingerprint};
use crate::strategy::Strategy;

/// How many observations the prior is worth.
const PRIOR_WEIGHT: f64 = 4.0;

/// Statistics of one strategy on one fingerprint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PatternStat {
    /// Times the strategy acted (re-ran, served a fallback or a cached value).
    pub tried: u64,
    /// Times that produced a good value.
    pub healed: u64,
    /// Times it did not.
    pub failed: u64,
    /// Total time spent acting.
    pub total_duration: Duration,
}

impl PatternStat {
    /// The posterior mean heal rate under `prior`.
    pub fn score(&self, prior: f64) -> f64 {
        (self.healed as f64 + prior * PRIOR_WEIGHT) / (self.tried as f64 + PRIOR_WEIGHT)
    }
}

/// One row of learned statistics, for persistence and sharing between instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternRow {
    /// The failure family.
    pub fingerprint: Fingerprint,
    /// The strategy's name.
    pub strategy: String,
    /// Its statistics.
    pub stat: PatternStat,
}

/// Learned statistics per fingerprint × strategy, in memory. Stores persist and share them
/// through [`snapshot`](Self::snapshot) and [`merge`](Self::merge).
#[derive(Debug, Default, Clone)]
pub struct PatternTable {
    map: Arc<Mutex<HashMap<(Fingerprint, &'static str), PatternStat>>>,
}

impl PatternTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records what one strategy did for one failure.
    pub fn record(
        &self,
        fingerprint: Fingerprint,
        strategy: &'static str,
        healed: bool,
        took: Duration,
    ) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let stat = map.entry((fingerprint, strategy)).or_default();
        stat.tried += 1;
        if healed {
            stat.healed += 1;
        } else {
            stat.failed += 1;
        }
        stat.total_duration += took;
    }

    /// The statistics of one strategy on one fingerprint.
    pub fn get(&self, fingerprint: Fingerprint, strategy: &str) -> PatternStat {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .find(|((f, s), _)| *f == fingerprint && *s == strategy)
            .map(|(_, v)| *v)
            .unwrap_or_default()
    }

    /// Every row.
    pub fn snapshot(&self) -> Vec<PatternRow> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .map(|((f, s), stat)| PatternRow {
                fingerprint: *f,
                strategy: (*s).to_owned(),
                stat: *stat,
            })
            .collect()
    }

    /// Adds rows learned elsewhere (another instance, a previous run) for the strategies named in
    /// `known`; rows of unknown strategies are ignored.
    pub fn merge(&self, rows: &[PatternRow], known: &[&'static str]) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        for row in rows {
            if let Some(name) = known.iter().find(|n| **n == row.strategy) {
                let stat = map.entry((row.fingerprint, name)).or_default();
                stat.tried += row.stat.tried;
                stat.healed += row.stat.healed;
                stat.failed += row.stat.failed;
                stat.total_duration += row.stat.total_duration;
            }
        }
    }

    fn stats_for(&self, fingerprint: Fingerprint) -> HashMap<&'static str, PatternStat> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|((f, _), _)| *f == fingerprint)
            .map(|((_, s), v)| (*s, *v))
            .collect()
    }
}

/// The candidate strategies for a diagnosis, best first: guards in registration order, then the
/// others by score. Strategies with a zero prior are left out.
pub(crate) fn rank<'s>(
    strategies: &'s [Arc<dyn Strategy>],
    diagnosis: &Diagnosis,
    table: &PatternTable,
) -> Vec<&'s Arc<dyn Strategy>> {
    let stats = table.stats_for(diagnosis.fingerprint);
    let mut scored: Vec<(bool, f64, usize, &Arc<dyn Strategy>)> = strategies
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let mut prior = s.prior(diagnosis);
            if diagnosis.recommended == Some(s.name()) {
                prior = prior.max(0.5) + 0.25;
            }
            (prior > 0.0).then(|| {
                let score = stats
                    .get(s.name())
                    .copied()
                    .unwrap_or_default()
                    .score(prior);
                (s.is_guard(), score, i, s)
            })
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(&b.2)));
    scored.into_iter().map(|(_, _, _, s)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::{ErrorClass, Severity};
    use crate::strategy::builtin_strategies;

    fn diagnosis(class: ErrorClass) -> Diagnosis {
        Diagnosis {
            class,
            severity: Severity::High,
            fingerprint: Fingerprint(7),
            never_reached: false,
            analyzer: "rules",
            confidence: 1.0,
            reason: "test",
            recommended: None,
        }
    }

    fn names(v: Vec<&Arc<dyn Strategy>>) -> Vec<&'static str> {
        v.into_iter().map(|s| s.name()).collect()
    }

    #[test]
    fn priors_rank_when_nothing_is_known() {
        let all = builtin_strategies();
        let ranked = names(rank(
            &all,
            &diagnosis(ErrorClass::ConnectionLost),
            &PatternTable::new(),
        ));
        assert_eq!(ranked[0], "circuit_breaker", "guards come first");
        assert_eq!(ranked[1], "reconnect");
        assert_eq!(ranked[2], "retry");
    }

    #[test]
    fn learning_overrides_the_prior() {
        let all = builtin_strategies();
        let table = PatternTable::new();
        for _ in 0..10 {
            table.record(Fingerprint(7), "reconnect", false, Duration::ZERO);
            table.record(Fingerprint(7), "retry", true, Duration::ZERO);
        }
        let ranked = names(rank(&all, &diagnosis(ErrorClass::ConnectionLost), &table));
        assert_eq!(ranked[1], "retry", "{ranked:?}");
        let reconnect = ranked.iter().position(|n| *n == "reconnect").unwrap();
        let fallback = ranked.iter().position(|n| *n == "fallback").unwrap();
        assert!(
            reconnect > fallback,
            "ten failures sink reconnect below untried fallback: {ranked:?}"
        );
    }

    #[test]
    fn permanent_errors_are_never_retried() {
        let all = builtin_strategies();
        let ranked = names(rank(
            &all,
            &diagnosis(ErrorClass::Permanent),
            &PatternTable::new(),
        ));
        assert!(!ranked.contains(&"retry"));
        assert!(ranked.contains(&"escalate"));
    }
}
