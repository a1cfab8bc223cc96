//! Strategy selection: the rule table's priors, refined by what has healed before.
//!
//! For each failure family (fingerprint) and strategy the table keeps raw counts (persisted and
//! shared across instances by a store) and a recency-weighted pair of counts (each new
//! observation discounts the older ones by [`DECAY`], so a world that changes is noticed within a
//! few dozen calls). The prior of a strategy (the rule table, boosted when an analyzer such as an
//! LLM recommends it) acts as `PRIOR_WEIGHT` pseudo-observations: the posterior of its heal rate
//! is `Beta(healed + prior·k, failed + (1 − prior)·k)`.
//!
//! Ranking: guards first (in registration order); then by heal rate weighed by cost. The heal
//! rate is the posterior mean (until a family has `MIN_SAMPLE` recorded tries, the prior alone),
//! except on an `EXPLORATION` share of calls where Thompson sampling (one draw from each
//! posterior) stands in for it, so learning costs at most that share of calls. The cost is the
//! time the strategy's action takes (its wait, its re-run, learned from what it took before)
//! plus [`HOOK_COST`] when it runs a hook; the heal rate is multiplied by
//! `COST_SCALE / (COST_SCALE + cost)`, so a cheap re-run that heals as often as a reconnect
//! leads, and a reconnect leads where re-runs keep failing. Ties keep registration order. All
//! randomness comes from the healer's seeded generator: the same seed gives the same choices.

use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::diagnosis::{Diagnosis, Fingerprint};
use crate::strategy::Strategy;

/// How many observations the prior is worth.
const PRIOR_WEIGHT: f64 = 2.0;
/// Weight kept by older observations at each new one (an effective memory of ~20 tries).
pub const DECAY: f64 = 0.95;
/// Tries of a family before statistics may reorder the rule table.
pub const MIN_SAMPLE: u64 = 3;
/// Share of calls whose order is explored by Thompson sampling instead of exploited.
pub const EXPLORATION: f64 = 0.05;

/// Statistics of one strategy on one fingerprint.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
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
    /// The posterior mean heal rate under `prior`, from raw counts.
    pub fn score(&self, prior: f64) -> f64 {
        (self.healed as f64 + prior * PRIOR_WEIGHT) / (self.tried as f64 + PRIOR_WEIGHT)
    }
}

/// Recency-weighted counts used for ranking.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Recent {
    healed: f64,
    failed: f64,
}

impl Recent {
    fn observe(&mut self, healed: bool) {
        self.healed *= DECAY;
        self.failed *= DECAY;
        if healed {
            self.healed += 1.0;
        } else {
            self.failed += 1.0;
        }
    }

    /// Counts learned elsewhere, squeezed into the effective memory so they do not drown what
    /// this instance sees next.
    fn from_counts(healed: u64, failed: u64) -> Self {
        let memory = 1.0 / (1.0 - DECAY);
        let total = (healed + failed) as f64;
        let scale = if total > memory { memory / total } else { 1.0 };
        Recent {
            healed: healed as f64 * scale,
            failed: failed as f64 * scale,
        }
    }

    fn posterior(&self, prior: f64) -> (f64, f64) {
        let prior = prior.clamp(0.01, 0.99);
        (
            self.healed + prior * PRIOR_WEIGHT,
            self.failed + (1.0 - prior) * PRIOR_WEIGHT,
        )
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    stat: PatternStat,
    recent: Recent,
}

/// What an analyzer (an LLM, say) advised for a family of failures.
#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    /// The recommended strategy, by name (ignored unless a registered strategy has this name).
    pub strategy: String,
    /// How sure the analyzer was, 0 to 1.
    pub confidence: f32,
    /// The analyzer's diagnosis, in words (capped by the analyzer).
    pub diagnosis: String,
    /// Which analyzer gave it.
    pub analyzer: String,
}

/// One row of learned statistics, for persistence and sharing between instances.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternRow {
    /// The failure family.
    pub fingerprint: Fingerprint,
    /// The strategy's name.
    pub strategy: String,
    /// Its statistics.
    pub stat: PatternStat,
}

/// The rows of one family of failures: a handful of strategies, scanned in order.
#[derive(Debug, Default)]
struct Family {
    rows: Vec<(&'static str, Entry)>,
}

impl Family {
    fn row(&self, strategy: &str) -> Option<&Entry> {
        self.rows
            .iter()
            .find(|(name, _)| same_name(name, strategy))
            .map(|(_, e)| e)
    }

    fn row_mut(&mut self, strategy: &'static str) -> &mut Entry {
        match self
            .rows
            .iter()
            .position(|(name, _)| same_name(name, strategy))
        {
            Some(i) => &mut self.rows[i].1,
            None => {
                self.rows.push((strategy, Entry::default()));
                let last = self.rows.len() - 1;
                &mut self.rows[last].1
            }
        }
    }
}

/// Names of registered strategies are `&'static str`s: mostly the very same pointer.
fn same_name(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

/// Rows grouped by family: ranking a failure is one lookup on a 64-bit fingerprint (Fx hashing,
/// a few instructions) and a scan of a few rows.
#[derive(Debug, Default)]
struct Tables {
    families: FxHashMap<Fingerprint, Family>,
    advice: FxHashMap<Fingerprint, Advice>,
}

/// Learned statistics per fingerprint × strategy, in memory. Stores persist and share them
/// through [`snapshot`](Self::snapshot) and [`merge`](Self::merge).
#[derive(Debug, Default, Clone)]
pub struct PatternTable {
    inner: Arc<Mutex<Tables>>,
}

impl PatternTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records what one strategy did for one failure.
    pub fn record(
        &self,
        fingerprint: Fingerprint,
        strategy: &'static str,
        healed: bool,
        took: Duration,
    ) {
        let mut tables = self.lock();
        let entry = tables
            .families
            .entry(fingerprint)
            .or_default()
            .row_mut(strategy);
        // Counts merged from a long-lived store can already sit near the top.
        entry.stat.tried = entry.stat.tried.saturating_add(1);
        if healed {
            entry.stat.healed = entry.stat.healed.saturating_add(1);
        } else {
            entry.stat.failed = entry.stat.failed.saturating_add(1);
        }
        entry.stat.total_duration = entry.stat.total_duration.saturating_add(took);
        entry.recent.observe(healed);
    }

    /// The statistics of one strategy on one fingerprint.
    pub fn get(&self, fingerprint: Fingerprint, strategy: &str) -> PatternStat {
        self.lock()
            .families
            .get(&fingerprint)
            .and_then(|f| f.row(strategy))
            .map(|e| e.stat)
            .unwrap_or_default()
    }

    /// Every row.
    pub fn snapshot(&self) -> Vec<PatternRow> {
        self.lock()
            .families
            .iter()
            .flat_map(|(f, family)| {
                family.rows.iter().map(|(s, e)| PatternRow {
                    fingerprint: *f,
                    strategy: (*s).to_owned(),
                    stat: e.stat,
                })
            })
            .collect()
    }

    /// Adds rows learned elsewhere (another instance, a previous run) for the strategies named in
    /// `known`; rows of unknown strategies are ignored.
    pub fn merge(&self, rows: &[PatternRow], known: &[&'static str]) {
        let mut tables = self.lock();
        for row in rows {
            if let Some(name) = known.iter().find(|n| **n == row.strategy) {
                let entry = tables
                    .families
                    .entry(row.fingerprint)
                    .or_default()
                    .row_mut(name);
                // Rows come from a store: add without overflowing.
                entry.stat.tried = entry.stat.tried.saturating_add(row.stat.tried);
                entry.stat.healed = entry.stat.healed.saturating_add(row.stat.healed);
                entry.stat.failed = entry.stat.failed.saturating_add(row.stat.failed);
                entry.stat.total_duration = entry
                    .stat
                    .total_duration
                    .saturating_add(row.stat.total_duration);
                entry.recent = Recent::from_counts(entry.stat.healed, entry.stat.failed);
            }
        }
    }

    /// Replaces the rows of this table with `rows` (a store's totals, which include what this
    /// instance recorded): the periodic refresh of a fleet member.
    pub fn replace(&self, rows: &[PatternRow], known: &[&'static str]) {
        let mut tables = self.lock();
        for row in rows {
            if let Some(name) = known.iter().find(|n| **n == row.strategy) {
                let entry = tables
                    .families
                    .entry(row.fingerprint)
                    .or_default()
                    .row_mut(name);
                if row.stat.tried > entry.stat.tried {
                    entry.stat = row.stat;
                    entry.recent = Recent::from_counts(row.stat.healed, row.stat.failed);
                }
            }
        }
    }

    /// Stores an analyzer's advice for a family; it becomes a prior of the named strategy.
    pub fn set_advice(&self, fingerprint: Fingerprint, advice: Advice) {
        self.lock().advice.insert(fingerprint, advice);
    }

    /// The advice stored for a family, if any.
    pub fn advice(&self, fingerprint: Fingerprint) -> Option<Advice> {
        self.lock().advice.get(&fingerprint).cloned()
    }
}

/// Most strategies a healer may hold: a call keeps its candidates inline, without allocating.
pub const MAX_STRATEGIES: usize = 32;

/// How much a second of acting is worth against a heal: a candidate's heal rate is weighed by
/// `COST_SCALE / (COST_SCALE + cost)`, so among strategies that heal as often the cheaper one
/// leads, and a costly one leads only when it heals clearly more often.
pub const COST_SCALE: Duration = Duration::from_millis(250);

/// The cost charged for running a hook (rebuilding a pool, refreshing a credential) on top of
/// its time: hooks touch state other calls share, so a plain re-run that heals as often is
/// preferred.
pub const HOOK_COST: Duration = Duration::from_millis(200);

/// A candidate's cost, as its plan tells it: the time its action takes (waits, the re-run it
/// asks for), whether it runs a hook, and how often it already failed during this call (each
/// failure halves its weight for the rest of the call: the same call in the same state tends
/// to fail the same way again).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cost {
    pub(crate) time: Duration,
    pub(crate) hook: bool,
    pub(crate) failed_in_call: u8,
}

/// A call's candidate strategies, best first, as indices into the healer's strategies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ranked {
    order: [u8; MAX_STRATEGIES],
    len: u8,
}

impl Ranked {
    pub(crate) const fn new() -> Self {
        Ranked {
            order: [0; MAX_STRATEGIES],
            len: 0,
        }
    }

    /// The `i`-th candidate's index among the healer's strategies.
    pub(crate) fn get(&self, i: usize) -> Option<usize> {
        (i < usize::from(self.len)).then(|| usize::from(self.order[i]))
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }
}

/// Ranks the strategies for a diagnosis into `out`, best first (see the module docs): guards in
/// registration order, then the learned heal rate weighed by cost. `cost(i)` is the cost of
/// strategy `i`'s plan, or `None` when it does not apply (it is left out, as are strategies
/// with a zero prior). `random` draws uniform numbers in [0, 1). Allocates nothing.
pub(crate) fn rank(
    strategies: &[Arc<dyn Strategy>],
    diagnosis: &Diagnosis,
    table: &PatternTable,
    cost: &mut dyn FnMut(usize) -> Option<Cost>,
    random: &mut dyn FnMut() -> f64,
    out: &mut Ranked,
) {
    let strategies = &strategies[..strategies.len().min(MAX_STRATEGIES)];
    // What the table knows, copied out under its lock; plans (user code) run without it.
    let mut known = [Known::default(); MAX_STRATEGIES];
    let mut tried = 0;
    let mut advised = None;
    {
        let tables = table.lock();
        let fingerprint = diagnosis.fingerprint;
        if let Some(advice) = tables.advice.get(&fingerprint) {
            advised = strategies
                .iter()
                .position(|s| advice.strategy == s.name())
                .map(|i| (i, advice.confidence));
        }
        let family = tables.families.get(&fingerprint);
        for (slot, s) in known.iter_mut().zip(strategies) {
            if let Some(e) = family.and_then(|f| f.row(s.name())) {
                tried += e.stat.tried;
                *slot = Known {
                    recent: e.recent,
                    mean: e.stat.total_duration
                        / u32::try_from(e.stat.tried.max(1)).unwrap_or(u32::MAX),
                };
            }
        }
    }
    let explore = tried >= MIN_SAMPLE && random() < EXPLORATION;
    let mut scored = [(false, false, 0.0f64, 0u8); MAX_STRATEGIES];
    let mut n = 0;
    for (i, s) in strategies.iter().enumerate() {
        let advice = advised.filter(|(a, _)| *a == i).map(|(_, c)| c);
        let (prior, recommended) = prior_of(&**s, diagnosis, advice);
        if prior <= 0.0 {
            continue;
        }
        let Some(cost) = cost(i) else { continue };
        let known = known[i];
        let recent = if tried >= MIN_SAMPLE {
            known.recent
        } else {
            Recent::default()
        };
        let (a, b) = recent.posterior(prior);
        let heal_rate = if explore {
            beta(a, b, random)
        } else {
            a / (a + b)
        };
        // An analyzer that recommends a hook strategy has weighed what the hook costs.
        let hook = if cost.hook && !recommended {
            HOOK_COST
        } else {
            Duration::ZERO
        };
        let time = cost.time.max(known.mean).saturating_add(hook);
        let weight = COST_SCALE.as_secs_f64() / COST_SCALE.saturating_add(time).as_secs_f64()
            * 0.5f64.powi(i32::from(cost.failed_in_call));
        scored[n] = (
            s.is_guard(),
            s.is_last_resort(),
            heal_rate * weight,
            i as u8,
        );
        n += 1;
    }
    let scored = &mut scored[..n];
    // Guards first, last resorts last; equal scores keep registration order.
    scored.sort_unstable_by(|a, b| {
        b.0.cmp(&a.0)
            .then(a.1.cmp(&b.1))
            .then(b.2.total_cmp(&a.2))
            .then(a.3.cmp(&b.3))
    });
    for (slot, (_, _, _, i)) in out.order.iter_mut().zip(scored.iter()) {
        *slot = *i;
    }
    out.len = n as u8;
}

/// What the table knows of one strategy on one family, copied out for ranking.
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    recent: Recent,
    /// Mean time an action of the strategy took.
    mean: Duration,
}

/// The prior of `strategy` for `diagnosis` (the rule table, raised when an analyzer recommends
/// it), and whether an analyzer recommends it. `advice`: the confidence of stored advice that
/// names this strategy.
fn prior_of(strategy: &dyn Strategy, diagnosis: &Diagnosis, advice: Option<f32>) -> (f64, bool) {
    let mut prior = strategy.prior(diagnosis);
    let recommended = advice.is_some()
        || diagnosis
            .recommended
            .is_some_and(|name| name == strategy.name());
    if recommended && prior > 0.0 {
        let confidence = advice.map_or(0.5, |c| f64::from(c.clamp(0.0, 1.0)));
        prior = prior.max(0.5 + 0.45 * confidence);
    }
    (prior, recommended)
}

/// One draw from Beta(a, b), as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
fn beta(a: f64, b: f64, random: &mut dyn FnMut() -> f64) -> f64 {
    let x = gamma(a, random);
    let y = gamma(b, random);
    if x + y > 0.0 { x / (x + y) } else { 0.5 }
}

/// One draw from Gamma(shape, 1): Marsaglia and Tsang's method, with the usual boost for
/// shapes below one.
fn gamma(shape: f64, random: &mut dyn FnMut() -> f64) -> f64 {
    if shape < 1.0 {
        let u = random().max(f64::MIN_POSITIVE);
        return gamma(shape + 1.0, random) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(random);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = random().max(f64::MIN_POSITIVE);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// A standard normal draw (Box–Muller).
fn normal(random: &mut dyn FnMut() -> f64) -> f64 {
    let u1 = random().max(f64::MIN_POSITIVE);
    let u2 = random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
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
            retry_after: None,
        }
    }

    /// Every strategy applies except those whose plans need what these sites lack (a
    /// rolled-back attempt, endpoints, a clear-cache hook, a declared default, skip or queue);
    /// hook strategies run a hook; nothing waits.
    fn plan_cost(all: &[Arc<dyn Strategy>]) -> impl FnMut(usize) -> Option<Cost> + '_ {
        |i| {
            if matches!(
                all[i].name(),
                "rollback"
                    | "switch_endpoint"
                    | "clear_cache"
                    | "default_value"
                    | "skip"
                    | "queue_for_later"
            ) {
                return None;
            }
            Some(Cost {
                time: Duration::ZERO,
                hook: matches!(all[i].name(), "reconnect" | "credential_refresh"),
                failed_in_call: 0,
            })
        }
    }

    fn names(
        all: &[Arc<dyn Strategy>],
        d: &Diagnosis,
        table: &PatternTable,
        random: &mut dyn FnMut() -> f64,
    ) -> Vec<&'static str> {
        let mut out = Ranked::new();
        rank(all, d, table, &mut plan_cost(all), random, &mut out);
        (0..out.len())
            .map(|i| all[out.get(i).unwrap()].name())
            .collect()
    }

    #[test]
    fn priors_and_costs_rank_when_nothing_is_known() {
        let all = builtin_strategies();
        let ranked = names(
            &all,
            &diagnosis(ErrorClass::ConnectionLost),
            &PatternTable::new(),
            &mut || 0.5,
        );
        assert_eq!(ranked[0], "circuit_breaker", "guards come first");
        assert_eq!(
            ranked[1], "retry",
            "a plain re-run is cheaper than a reconnect"
        );
        assert_eq!(ranked[2], "reconnect");
    }

    #[test]
    fn a_cheap_strategy_that_heals_as_often_leads() {
        let all = builtin_strategies();
        let table = PatternTable::new();
        for _ in 0..10 {
            table.record(Fingerprint(7), "reconnect", true, Duration::from_millis(30));
            table.record(Fingerprint(7), "retry", true, Duration::from_millis(30));
        }
        let ranked = names(
            &all,
            &diagnosis(ErrorClass::ConnectionLost),
            &table,
            &mut || 0.5,
        );
        assert_eq!(ranked[1], "retry", "{ranked:?}");
    }

    #[test]
    fn learning_overrides_the_prior() {
        let all = builtin_strategies();
        let table = PatternTable::new();
        for _ in 0..10 {
            table.record(Fingerprint(7), "retry", false, Duration::ZERO);
            table.record(Fingerprint(7), "reconnect", true, Duration::ZERO);
        }
        let ranked = names(
            &all,
            &diagnosis(ErrorClass::ConnectionLost),
            &table,
            &mut || 0.5,
        );
        assert_eq!(ranked[1], "reconnect", "{ranked:?}");
        let retry = ranked.iter().position(|n| *n == "retry").unwrap();
        let fallback = ranked.iter().position(|n| *n == "fallback").unwrap();
        assert!(
            retry > fallback,
            "ten failures sink retry below untried fallback: {ranked:?}"
        );
    }

    #[test]
    fn slow_strategies_sink() {
        let all = builtin_strategies();
        let table = PatternTable::new();
        for _ in 0..10 {
            table.record(Fingerprint(7), "retry", true, Duration::from_secs(2));
        }
        let ranked = names(
            &all,
            &diagnosis(ErrorClass::ConnectionLost),
            &table,
            &mut || 0.5,
        );
        let retry = ranked.iter().position(|n| *n == "retry").unwrap();
        let reconnect = ranked.iter().position(|n| *n == "reconnect").unwrap();
        assert!(reconnect < retry, "two seconds per heal weigh: {ranked:?}");
    }

    #[test]
    fn permanent_errors_are_never_retried() {
        let all = builtin_strategies();
        let ranked = names(
            &all,
            &diagnosis(ErrorClass::Permanent),
            &PatternTable::new(),
            &mut || 0.5,
        );
        assert!(!ranked.contains(&"retry"));
        assert!(ranked.contains(&"escalate"));
    }

    #[test]
    fn expired_credentials_are_not_re_run_plainly() {
        let all = builtin_strategies();
        let ranked = names(
            &all,
            &diagnosis(ErrorClass::AuthExpired),
            &PatternTable::new(),
            &mut || 0.5,
        );
        assert!(!ranked.contains(&"retry"), "{ranked:?}");
        assert!(ranked.contains(&"credential_refresh"));
    }

    #[test]
    fn rows_from_a_store_add_up_without_overflowing() {
        let table = PatternTable::new();
        let row = PatternRow {
            fingerprint: Fingerprint(7),
            strategy: "retry".to_owned(),
            stat: PatternStat {
                tried: u64::MAX,
                healed: u64::MAX,
                failed: 0,
                total_duration: Duration::MAX,
            },
        };
        table.merge(&[row.clone(), row], &["retry"]);
        table.record(Fingerprint(7), "retry", true, Duration::MAX);
        let stat = table.get(Fingerprint(7), "retry");
        assert_eq!((stat.tried, stat.total_duration), (u64::MAX, Duration::MAX));
    }

    #[test]
    fn ranking_allocates_nothing_it_keeps() {
        // `Ranked` is inline; this proves it holds every built-in strategy.
        let all = builtin_strategies();
        assert!(all.len() <= MAX_STRATEGIES);
    }

    /// The learning simulation: for a family where retry never heals but reconnect always does,
    /// the selector must learn to pick reconnect first, and must adapt when the world changes.
    #[test]
    fn learns_which_strategy_heals_and_adapts_when_the_world_changes() {
        use crate::strategy::{Reconnect, Retry};
        let all: Vec<Arc<dyn Strategy>> = vec![Arc::new(Retry), Arc::new(Reconnect)];
        let d = diagnosis(ErrorClass::Transient); // the rule table prefers retry here
        let table = PatternTable::new();
        let mut rng = fastrand::Rng::with_seed(42);
        let mut random = || rng.f64();
        let heals = |strategy: &str, world: u8| match world {
            0 => strategy == "reconnect",
            _ => strategy == "retry",
        };
        // Each call: the first-ranked strategy acts; if it fails, the next one acts.
        let call = |world: u8,
                    table: &PatternTable,
                    random: &mut dyn FnMut() -> f64|
         -> (&'static str, u32) {
            let ranked = names(&all, &d, table, random);
            let mut failures = 0;
            for s in &ranked {
                let healed = heals(s, world);
                table.record(d.fingerprint, s, healed, Duration::ZERO);
                if healed {
                    break;
                }
                failures += 1;
            }
            (ranked[0], failures)
        };
        assert_eq!(
            call(0, &table, &mut random).0,
            "retry",
            "the rule table decides at first"
        );
        let mut failures = 1;
        while call(0, &table, &mut random).0 != "reconnect" {
            failures += 1;
        }
        assert!(failures <= 20, "learned after {failures} failed tries");
        let picks_before = (0..1000)
            .filter(|_| call(0, &table, &mut random).0 == "reconnect")
            .count();
        assert!(
            picks_before >= 950,
            "reconnect first in {picks_before}/1000 calls"
        );
        // The world changes: reconnect stops healing, retry heals again.
        let mut calls = 0;
        while call(1, &table, &mut random).0 != "retry" {
            calls += 1;
            assert!(calls < 100, "adapts within 100 calls");
        }
        let picks = (0..1000)
            .filter(|_| call(1, &table, &mut random).0 == "retry")
            .count();
        assert!(
            picks >= 950,
            "retry first in {picks}/1000 calls after the change"
        );
        eprintln!(
            "learned in {failures} failures, then reconnect first in {picks_before}/1000 calls; \
             adapted in {calls} calls, then retry first in {picks}/1000"
        );
    }
}
