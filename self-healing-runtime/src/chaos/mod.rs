//! Fault injection for wrapped sites: see what healing does before production does it for you.
//!
//! A [`Chaos`] value holds fault rules, each aimed at a source or a category: an error rate with
//! your own error, added latency, outage windows, rate limits whose 429s carry Retry-After, a
//! connection that stays broken (or stale) until the reconnect hook runs, a token that expires
//! until the credential-refresh hook runs, one bad backend among several. Faults hit a call after
//! the site's guards admitted it and instead of (or before) its body, exactly where the
//! dependency would fail, so everything the healer does (diagnosis, strategies, the circuit,
//! Retry-After pacing) sees them as real failures.
//!
//! Chaos is deterministic: rules draw from a seeded generator and measure time on tokio's clock
//! from the moment the [`Chaos`] was built, so a test on a paused clock replays the same faults
//! every run. It is off unless the `chaos` feature is on *and* a [`Chaos`] is in effect; sites no
//! rule targets keep their plain success path.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use self_healing_runtime::chaos::{Chaos, Fault, WithChaosExt};
//! use self_healing_runtime::{Category, Healer, InMemoryStore, WithHealerExt, heal, Site, SiteInfo, SiteOptions};
//!
//! # #[linkme::distributed_slice(self_healing_runtime::__private::SITES)]
//! # static ENTRY: &Site = &SITE;
//! // What `site!(source = "getRates", category = "api")` declares.
//! static SITE: Site = Site::new(SiteInfo {
//!     source: "getRates", category: Category::Api, function: "closure",
//!     module_path: module_path!(), file: file!(), line: line!(), options: SiteOptions::new(),
//! });
//!
//! // Every other call of `getRates` meets the bad one of two backends.
//! let chaos = Chaos::builder().seed(7).fault("getRates", Fault::bad_backend(2)).build()?;
//! let healer = Healer::builder().store(InMemoryStore::new()).build()?;
//! for _ in 0..10 {
//!     let rate = heal(&SITE, || async { Ok::<_, std::io::Error>(1.08) })
//!         .with_healer(healer.clone())
//!         .with_chaos(chaos.clone())
//!         .await?;
//!     assert_eq!(rate, 1.08, "each failed first attempt is healed by a re-run");
//! }
//! assert_eq!(chaos.stats("getRates").injected, 10);
//! # Ok(()) }
//! ```

mod fault;
mod model;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

pub use fault::{Fault, RetryAfter};
pub(crate) use model::Failing;
use model::{Effect, Model};

use crate::hooks::HookKind;
use crate::scope::ScopeGuard;
use crate::site::flag;
use crate::{Category, Site, sites};

/// Which sites a fault rule targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every wrapped site.
    Any,
    /// The sites of one category.
    Category(Category),
    /// The site with this `source`.
    Source(String),
}

impl Target {
    fn matches(&self, site: &Site) -> bool {
        match self {
            Target::Any => true,
            Target::Category(c) => *c == site.category(),
            Target::Source(s) => s == site.source(),
        }
    }
}

impl From<Category> for Target {
    fn from(c: Category) -> Self {
        Target::Category(c)
    }
}

impl From<&str> for Target {
    /// A `source` name.
    fn from(source: &str) -> Self {
        Target::Source(source.to_owned())
    }
}

impl From<String> for Target {
    /// A `source` name.
    fn from(source: String) -> Self {
        Target::Source(source)
    }
}

/// A fault rule or chaos setting that [`ChaosBuilder::build`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChaosError {
    /// A rule's settings are out of range.
    InvalidFault {
        /// The fault's name (`"rate_limit"`, …).
        fault: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A rule targets a `source` no wrapped function has.
    UnknownSource {
        /// The source as given.
        source: String,
        /// The closest registered source, if one is close.
        did_you_mean: Option<&'static str>,
    },
    /// `install` was called while a chaos layer is installed already.
    AlreadyInstalled,
}

impl fmt::Display for ChaosError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChaosError::InvalidFault { fault, reason } => {
                write!(f, "invalid `{fault}` fault: {reason}")
            }
            ChaosError::UnknownSource {
                source,
                did_you_mean,
            } => {
                write!(f, "no wrapped function has the source `{source}`")?;
                match did_you_mean {
                    Some(close) => write!(f, ": did you mean `{close}`?"),
                    None => f.write_str(" (see `self_healing::sites()` for the registered ones)"),
                }
            }
            ChaosError::AlreadyInstalled => f.write_str(
                "a chaos layer is installed already: install one per process, or scope one with `with_chaos`",
            ),
        }
    }
}

impl std::error::Error for ChaosError {}

/// What the chaos layer did to one site's calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChaosStats {
    /// Attempts that reached the (simulated) dependency: the guards let them through.
    pub calls: u64,
    /// Attempts failed by a fault.
    pub injected: u64,
    /// Attempts delayed by a fault (latency, or a hang before failing).
    pub delayed: u64,
    /// Re-runs of a call that came before the Retry-After an injected fault gave that call.
    pub early_reruns: u64,
}

#[derive(Debug, Default)]
struct SiteRecord {
    stats: ChaosStats,
    /// Per call: the instant before which the dependency asked it not to come back.
    not_before: HashMap<u64, Instant>,
}

/// Calls whose Retry-After is remembered per site at most (the oldest are forgotten first).
const REMEMBERED_CALLS: usize = 4096;

struct Rule {
    target: Target,
    model: Mutex<Model>,
}

struct Inner {
    started: Instant,
    rules: Vec<Rule>,
    sites: Mutex<HashMap<&'static str, SiteRecord>>,
}

/// A set of fault rules in effect for wrapped sites. Cheap to clone; clones share state.
///
/// Build one with [`Chaos::builder`], then [`install`](Chaos::install) it for the process or
/// scope it with [`with_chaos`] / [`WithChaosExt::with_chaos`]. See the [module docs](self).
#[derive(Clone)]
pub struct Chaos {
    inner: Arc<Inner>,
}

impl fmt::Debug for Chaos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chaos")
            .field(
                "rules",
                &self
                    .inner
                    .rules
                    .iter()
                    .map(|r| (&r.target, lock(&r.model).name()))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Fault state stays consistent between statements; a panic elsewhere must not stop chaos.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

static GLOBAL: OnceLock<Chaos> = OnceLock::new();

thread_local! {
    static SCOPED: RefCell<Option<Chaos>> = const { RefCell::new(None) };
}

impl Chaos {
    /// A builder with no rules and seed 0.
    pub fn builder() -> ChaosBuilder {
        ChaosBuilder::default()
    }

    /// Puts these faults in effect for the whole process.
    ///
    /// # Errors
    /// [`ChaosError::AlreadyInstalled`] if a chaos layer is installed already.
    pub fn install(self) -> Result<(), ChaosError> {
        GLOBAL.set(self).map_err(|_| ChaosError::AlreadyInstalled)
    }

    /// The chaos layer in effect here: the scoped one if any, else the installed one.
    pub fn current() -> Option<Chaos> {
        crate::scope::current::<Chaos>().or_else(|| GLOBAL.get().cloned())
    }

    /// What the faults did to the calls of the site named `source` so far.
    pub fn stats(&self, source: &str) -> ChaosStats {
        lock(&self.inner.sites)
            .get(source)
            .map_or_else(ChaosStats::default, |r| r.stats)
    }

    /// Time since this chaos layer was built, on tokio's clock (the time fault windows use).
    pub fn elapsed(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Decides what the faults do to this attempt of `site`, and counts it. `call` identifies
    /// the logical call across its attempts (0 when unknown), `attempt` is 1-based.
    pub(crate) fn decide(&self, site: &'static Site, attempt: u32, call: u64) -> Decision {
        let now = Instant::now();
        let since = now.saturating_duration_since(self.inner.started);
        let mut delay = Duration::ZERO;
        let mut failing = None;
        for rule in &self.inner.rules {
            if !rule.target.matches(site) {
                continue;
            }
            match lock(&rule.model).decide(since) {
                Effect::Pass => {}
                Effect::Delay(d) => delay += d,
                Effect::Fail(d, f) => {
                    delay += d;
                    failing = Some(f);
                    break;
                }
            }
        }
        let mut sites = lock(&self.inner.sites);
        let record = sites.entry(site.source()).or_default();
        record.stats.calls += 1;
        record.stats.injected += u64::from(failing.is_some());
        record.stats.delayed += u64::from(!delay.is_zero());
        if call != 0 {
            if attempt > 1
                && let Some(&not_before) = record.not_before.get(&call)
                && now < not_before
            {
                record.stats.early_reruns += 1;
            }
            match failing.as_ref().and_then(Failing::retry_after) {
                Some(after) => {
                    if record.not_before.len() >= REMEMBERED_CALLS {
                        // Calls that never came back: forget the ones whose wait is over.
                        record.not_before.retain(|_, t| *t > now);
                    }
                    if record.not_before.len() < REMEMBERED_CALLS {
                        let until = crate::clock::after(now, delay.saturating_add(after));
                        record.not_before.insert(call, until);
                    }
                }
                None => {
                    record.not_before.remove(&call);
                }
            }
        }
        Decision { delay, failing }
    }

    /// A hook of `kind` ran for `site`: repairs the faults aimed at it that this hook repairs.
    pub(crate) fn hook_ran(&self, site: &'static Site, kind: HookKind) {
        let since = self.inner.started.elapsed();
        for rule in &self.inner.rules {
            if rule.target.matches(site) {
                lock(&rule.model).hook_ran(kind, since);
            }
        }
    }
}

/// What the chaos layer does to one attempt.
#[derive(Debug)]
pub(crate) struct Decision {
    /// Wait this long first.
    pub(crate) delay: Duration,
    /// Then fail with this instead of running the body.
    pub(crate) failing: Option<Failing>,
}

/// The chaos layer in effect for `site`, if the site is targeted by any.
#[inline]
pub(crate) fn for_site(site: &'static Site) -> Option<Chaos> {
    if site.flags() & flag::CHAOS == 0 {
        return None;
    }
    Chaos::current()
}

/// Builds a [`Chaos`]; rules are checked in [`build`](Self::build).
#[derive(Debug, Default)]
pub struct ChaosBuilder {
    seed: u64,
    rules: Vec<(Target, Fault)>,
}

impl ChaosBuilder {
    /// Seeds the generator that fault rates draw from: the same seed and the same order of calls
    /// give the same faults.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Adds a rule: `fault` for the sites in `target` (a `source` name, a [`Category`], or
    /// [`Target::Any`]). Rules apply in the order added; the first one that fails a call decides
    /// its error, and latencies add up.
    pub fn fault(mut self, target: impl Into<Target>, fault: Fault) -> Self {
        self.rules.push((target.into(), fault));
        self
    }

    /// Checks every rule, marks the targeted sites, and starts the clock of the fault windows.
    ///
    /// # Errors
    /// A [`ChaosError`] naming the first bad rule.
    pub fn build(self) -> Result<Chaos, ChaosError> {
        for (target, fault) in &self.rules {
            if let Some(reason) = fault.invalid() {
                return Err(ChaosError::InvalidFault {
                    fault: fault.name(),
                    reason,
                });
            }
            if let Target::Source(source) = target
                && !sites().any(|s| s.source() == source)
            {
                return Err(ChaosError::UnknownSource {
                    source: source.clone(),
                    did_you_mean: closest_source(source),
                });
            }
        }
        for site in sites() {
            if self.rules.iter().any(|(t, _)| t.matches(site)) {
                // Never cleared: a targeted site takes the guarded path, which finds no chaos
                // in effect once this value is gone and runs the body as usual.
                site.set_flag(flag::CHAOS);
            }
        }
        let rules = self
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, (target, fault))| Rule {
                target,
                model: Mutex::new(Model::new(
                    fault,
                    self.seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                )),
            })
            .collect();
        Ok(Chaos {
            inner: Arc::new(Inner {
                started: Instant::now(),
                rules,
                sites: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// The registered source closest to `wanted` (an edit distance of at most a third of its length).
fn closest_source(wanted: &str) -> Option<&'static str> {
    let limit = (wanted.chars().count() / 3).max(1);
    sites()
        .map(|s| (edit_distance(wanted, s.source()), s.source()))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, s)| s)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// Runs `f` with `chaos` in effect on this thread (as [`with_healer`](crate::with_healer)).
///
/// For async code, wrap the future instead: [`WithChaosExt::with_chaos`].
pub fn with_chaos<R>(chaos: &Chaos, f: impl FnOnce() -> R) -> R {
    let _guard = ScopeGuard::enter(chaos.clone());
    f()
}

impl crate::scope::sealed::Sealed for Chaos {}

impl crate::scope::Scoped for Chaos {
    fn slot() -> &'static std::thread::LocalKey<RefCell<Option<Self>>> {
        &SCOPED
    }
}

/// A future that runs with a chaos layer in effect at every poll.
pub type WithChaos<F> = crate::scope::InScope<F, Chaos>;

/// Scopes a chaos layer to a future: `my_test().with_chaos(chaos).await`.
pub trait WithChaosExt: Future + Sized {
    /// Runs this future with `chaos` in effect at every poll.
    fn with_chaos(self, chaos: Chaos) -> WithChaos<Self> {
        crate::scope::InScope::new(self, chaos)
    }
}

impl<F: Future> WithChaosExt for F {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("createContact", "createContact"), 0);
        assert_eq!(edit_distance("createContct", "createContact"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
