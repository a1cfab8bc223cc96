//! The [`Healer`]: configuration, strategies, learned statistics and the event queue, installed
//! once per process or scoped to a test.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::backoff::Backoff;
use crate::breaker::BreakerConfig;
use crate::budget::BudgetConfig;
use crate::default_store::StoreChoice;
use crate::diagnosis::{Analyzer, RuleAnalyzer};
use crate::event::{EventObserver, EventStore};
use crate::hooks::{HookError, HookKind, HookScope, Hooks};
use crate::queue::{EventQueue, QueueStats};
use crate::scope::{self, ScopeGuard};
use crate::selection::PatternTable;
use crate::site::flag;
use crate::strategy::{Strategy, builtin_strategies};
use crate::{Category, sites};

mod from_env;

/// A setting the [`HealerBuilder`] refused, naming the setting and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting is out of its range.
    Invalid {
        /// The setting, as named by its builder method or its environment variable.
        setting: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// Two strategies share a name; names key the learned statistics, so they must be unique.
    DuplicateStrategy(&'static str),
    /// `install` was called while a healer is installed already.
    AlreadyInstalled,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid { setting, reason } => write!(f, "invalid `{setting}`: {reason}"),
            ConfigError::DuplicateStrategy(name) => write!(
                f,
                "two strategies are named `{name}`: strategy names must be unique (they key the learned statistics)"
            ),
            ConfigError::AlreadyInstalled => f.write_str(
                "a healer is installed already: install one per process, or use `with_healer` to scope one to a test",
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

pub(crate) struct Config {
    pub(crate) instance: Arc<str>,
    pub(crate) max_attempts: u32,
    pub(crate) max_elapsed: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) breaker: BreakerConfig,
    pub(crate) budget: BudgetConfig,
    pub(crate) bulkhead_wait: Duration,
    pub(crate) blocking_sleep: Arc<dyn Fn(Duration) + Send + Sync>,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) strategies: Vec<Arc<dyn Strategy>>,
    pub(crate) analyzer: Arc<dyn Analyzer>,
    pub(crate) hooks: Hooks,
    pub(crate) patterns: PatternTable,
    pub(crate) queue: EventQueue,
    pub(crate) rng: Mutex<fastrand::Rng>,
}

/// The configured healer: strategies, hooks, analyzer, learned statistics and the event queue.
///
/// Build one with [`Healer::builder`], then [`install`](Healer::install) it for the process, or
/// scope it to a closure or future with [`with_healer`] / [`WithHealerExt::with_healer`] (tests).
/// With no healer at all, wrapped functions behave exactly like the originals.
///
/// Cloning is cheap and shares everything.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use self_healing_runtime::{Category, Healer, InMemoryStore};
///
/// let store = InMemoryStore::new();
/// let healer = Healer::builder()
///     .max_attempts(4)
///     .store(store.clone())
///     .on_reconnect(Category::Database, || async { /* rebuild the pool */ Ok(()) })
///     .build()?;
/// healer.install()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Healer {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Healer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Healer")
            .field("instance", &self.inner.config.instance)
            .field(
                "strategies",
                &self
                    .inner
                    .strategies
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>(),
            )
            .field("analyzer", &self.inner.analyzer.name())
            .finish_non_exhaustive()
    }
}

static GLOBAL: OnceLock<Healer> = OnceLock::new();

thread_local! {
    static SCOPED: RefCell<Option<Healer>> = const { RefCell::new(None) };
}

impl Healer {
    /// A builder with the defaults: the ten built-in strategies, the rule analyzer, 3 attempts,
    /// 50 ms–5 s full-jitter backoff, a 30 s elapsed cap, and the default store (see
    /// [`HealerBuilder::store`]).
    pub fn builder() -> HealerBuilder {
        HealerBuilder::default()
    }

    /// Makes this the healer of every wrapped function in the process.
    ///
    /// # Errors
    /// [`ConfigError::AlreadyInstalled`] if one is installed already.
    pub fn install(self) -> Result<(), ConfigError> {
        GLOBAL.set(self).map_err(|_| ConfigError::AlreadyInstalled)
    }

    /// The healer in effect here: the scoped one if any, else the installed one.
    pub fn current() -> Option<Healer> {
        scope::current::<Healer>().or_else(|| GLOBAL.get().cloned())
    }

    /// Loads what the store learned (this or other instances): statistics and advice. Call it at
    /// startup for a warm start, and periodically in a fleet to pick up what others learned.
    ///
    /// # Errors
    /// The store's error; the healer keeps working with what it had.
    pub async fn refresh_from_store(&self) -> Result<(), crate::event::StoreError> {
        let names: Vec<&'static str> = self.inner.strategies.iter().map(|s| s.name()).collect();
        let rows = self.inner.store.load_patterns().await?;
        self.inner.patterns.replace(&rows, &names);
        for (fingerprint, advice) in self.inner.store.load_advice().await? {
            self.inner.patterns.set_advice(fingerprint, advice);
        }
        Ok(())
    }

    /// The store events go to.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.inner.store
    }

    /// Waits until every event recorded so far is committed: handed to the store by the event
    /// worker, then made durable by the store ([`EventStore::flush`]). Call it before the
    /// program exits (or [`shutdown`](Self::shutdown)), and in tests before reading the store.
    ///
    /// # Errors
    /// A [`FlushError`](crate::FlushError) saying why not every event is committed: the worker
    /// is gone, the store could not commit, or events were lost since the last flush.
    pub async fn flush(&self) -> Result<(), crate::FlushError> {
        crate::flush::flush(&self.inner.queue, &self.inner.store).await
    }

    /// Stops recording and commits what was recorded, within `deadline`: the event worker
    /// writes what is queued and ends, then the store commits its buffer and closes
    /// ([`EventStore::close`]). The last call before exit; events recorded afterwards are
    /// counted as dropped. Needs tokio's timer (`enable_time`).
    ///
    /// # Errors
    /// As [`flush`](Self::flush), and [`FlushError::TimedOut`](crate::FlushError::TimedOut)
    /// when the deadline passed first.
    pub async fn shutdown(&self, deadline: Duration) -> Result<(), crate::FlushError> {
        crate::flush::shutdown(&self.inner.queue, &self.inner.store, deadline).await
    }

    /// Counters of the event pipeline (recorded, folded, dropped, written).
    pub fn queue_stats(&self) -> QueueStats {
        self.inner.queue.stats()
    }

    /// The learned statistics (shared; a store persists them).
    pub fn patterns(&self) -> &PatternTable {
        &self.inner.patterns
    }

    /// The registered strategies, in registration order.
    pub fn strategies(&self) -> impl Iterator<Item = &dyn Strategy> {
        self.inner.strategies.iter().map(|s| &**s)
    }

    /// The id of this process in events.
    pub fn instance_id(&self) -> &str {
        &self.inner.config.instance
    }

    pub(crate) fn random(&self) -> f64 {
        self.inner
            .rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .f64()
    }
}

/// Runs `f` with `healer` as the current healer on this thread (as tracing's `with_default`).
///
/// For async code, wrap the future instead: [`WithHealerExt::with_healer`].
pub fn with_healer<R>(healer: &Healer, f: impl FnOnce() -> R) -> R {
    let _guard = ScopeGuard::enter(healer.clone());
    f()
}

impl scope::sealed::Sealed for Healer {}

impl scope::Scoped for Healer {
    fn slot() -> &'static std::thread::LocalKey<RefCell<Option<Self>>> {
        &SCOPED
    }
}

/// A future that runs with a given healer in effect at every poll.
pub type WithHealer<F> = scope::InScope<F, Healer>;

/// Scopes a healer to a future: `my_async_test().with_healer(healer).await`.
pub trait WithHealerExt: Future + Sized {
    /// Runs this future with `healer` in effect at every poll.
    fn with_healer(self, healer: Healer) -> WithHealer<Self> {
        scope::InScope::new(self, healer)
    }
}

impl<F: Future> WithHealerExt for F {}

/// Builds a [`Healer`]; every setting is checked in [`build`](Self::build).
pub struct HealerBuilder {
    instance: Option<String>,
    max_attempts: u32,
    max_elapsed: Duration,
    backoff: Backoff,
    breaker: BreakerConfig,
    budget: BudgetConfig,
    bulkheads: HashMap<String, usize>,
    bulkhead_wait: Duration,
    strategies: Vec<Arc<dyn Strategy>>,
    analyzer: Arc<dyn Analyzer>,
    hooks: Hooks,
    store: StoreChoice,
    observers: Vec<Arc<dyn EventObserver>>,
    queue_capacity: usize,
    fold_window: Duration,
    seed: Option<u64>,
    blocking_sleep: Arc<dyn Fn(Duration) + Send + Sync>,
}

impl fmt::Debug for HealerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealerBuilder")
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl Default for HealerBuilder {
    fn default() -> Self {
        HealerBuilder {
            instance: None,
            max_attempts: 3,
            max_elapsed: Duration::from_secs(30),
            backoff: Backoff::default(),
            breaker: BreakerConfig::default(),
            budget: BudgetConfig::default(),
            bulkheads: HashMap::new(),
            bulkhead_wait: Duration::ZERO,
            strategies: builtin_strategies(),
            analyzer: Arc::new(RuleAnalyzer::new()),
            hooks: Hooks::default(),
            store: StoreChoice::default(),
            observers: Vec::new(),
            queue_capacity: 4096,
            fold_window: Duration::from_millis(250),
            seed: None,
            blocking_sleep: Arc::new(std::thread::sleep),
        }
    }
}

impl HealerBuilder {
    /// The id of this process in events (default: `$HOSTNAME-<pid>`).
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance = Some(id.into());
        self
    }

    /// Attempts per call, the first included, for sites without `max_attempts` (default 3, 1–100).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// No re-run starts after a call has taken this long (default 30 s).
    pub fn max_elapsed(mut self, d: Duration) -> Self {
        self.max_elapsed = d;
        self
    }

    /// Backoff of re-runs: full jitter between zero and `base·2ⁿ`, capped at `max`.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff = Backoff { base, max };
        self
    }

    /// Circuit breaker settings for every site (see [`BreakerConfig`] for the defaults).
    pub fn breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = config;
        self
    }

    /// Retry budget settings for every site (see [`BudgetConfig`] for the defaults).
    pub fn retry_budget(mut self, config: BudgetConfig) -> Self {
        self.budget = config;
        self
    }

    /// Caps the concurrent calls of the site named `source` (the bulkhead strategy).
    pub fn bulkhead(mut self, source: impl Into<String>, max_concurrent: usize) -> Self {
        self.bulkheads.insert(source.into(), max_concurrent);
        self
    }

    /// How long a call waits for a bulkhead slot before it is shed (default: not at all).
    pub fn bulkhead_wait(mut self, d: Duration) -> Self {
        self.bulkhead_wait = d;
        self
    }

    /// Adds a strategy of your own (its name must be unique).
    pub fn strategy(mut self, strategy: impl Strategy) -> Self {
        self.strategies.push(Arc::new(strategy));
        self
    }

    /// Removes a built-in or added strategy by name.
    pub fn without_strategy(mut self, name: &str) -> Self {
        self.strategies.retain(|s| s.name() != name);
        self
    }

    /// Replaces the rule analyzer.
    pub fn analyzer(mut self, analyzer: impl Analyzer) -> Self {
        self.analyzer = Arc::new(analyzer);
        self
    }

    /// Where events go.
    ///
    /// Without it, the healer persists to the default store: with the `sqlite` feature of the
    /// `self-healing` facade (on by default), the Diesel store at `DATABASE_URL` (`sqlite://…`,
    /// or `postgres://…` with the `postgres` feature), else at `sqlite://self-healing.db` in the
    /// working directory, where the `self-healing` CLI and the dashboard look by default. It is
    /// opened without waiting for the database, which may be down at startup. With no store
    /// compiled in, events go to a [`crate::InMemoryStore`]. To keep events in memory anyway
    /// (tests), pass `.store(InMemoryStore::new())`.
    pub fn store(mut self, store: impl EventStore) -> Self {
        self.store = StoreChoice::Given(Arc::new(store));
        self
    }

    /// Adds an observer of written events (a notifier, a background analyzer, a live feed).
    pub fn observer(mut self, observer: impl EventObserver) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    /// Events the queue holds before it folds them (default 4096).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n;
        self
    }

    /// How long the event worker collects events before writing, folding identical failures
    /// (same source, fingerprint, strategy and outcome) into one record with a count (default
    /// 250 ms).
    pub fn fold_window(mut self, d: Duration) -> Self {
        self.fold_window = d;
        self
    }

    /// Seeds the jitter generator: the same seed gives the same delays (tests, simulations).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// How sync sites wait between attempts (default `std::thread::sleep`); tests pass a recorder.
    pub fn blocking_sleep(mut self, sleep: impl Fn(Duration) + Send + Sync + 'static) -> Self {
        self.blocking_sleep = Arc::new(sleep);
        self
    }

    /// Registers a hook of `kind` for the sites in `scope`.
    pub fn hook<F, Fut>(mut self, kind: HookKind, scope: impl Into<HookScope>, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.add(kind, scope.into(), f);
        self
    }

    /// Registers the reconnect hook (e.g. rebuild a pool) for the sites in `scope`.
    pub fn on_reconnect<F, Fut>(self, scope: impl Into<HookScope>, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hook(HookKind::Reconnect, scope, f)
    }

    /// Registers the credential-refresh hook for the sites in `scope`.
    pub fn on_refresh_credentials<F, Fut>(self, scope: impl Into<HookScope>, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hook(HookKind::RefreshCredentials, scope, f)
    }

    /// Time a hook may take before it counts as failed (default 10 s).
    pub fn hook_timeout(mut self, d: Duration) -> Self {
        self.hooks.timeout = Some(d);
        self
    }

    /// Checks every setting, opens the default store when none was given (see
    /// [`store`](Self::store)), and starts the event worker (on the current tokio runtime, or a
    /// thread of its own).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad setting; an unusable `DATABASE_URL` is named as
    /// such.
    pub fn build(mut self) -> Result<Healer, ConfigError> {
        let invalid = |setting, reason: &str| ConfigError::Invalid {
            setting,
            reason: reason.to_owned(),
        };
        if !(1..=100).contains(&self.max_attempts) {
            return Err(invalid(
                "max_attempts",
                "must be between 1 and 100 (the first call counts)",
            ));
        }
        if self.backoff.base > self.backoff.max {
            return Err(invalid("backoff", "`base` must not exceed `max`"));
        }
        let b = &self.breaker;
        if !(0.0..=1.0).contains(&b.failure_rate) || b.failure_rate == 0.0 {
            return Err(invalid("breaker.failure_rate", "must be in (0, 1]"));
        }
        if !(0.0..=1.0).contains(&b.slow_call_rate) || b.slow_call_rate == 0.0 {
            return Err(invalid("breaker.slow_call_rate", "must be in (0, 1]"));
        }
        if b.half_open_probes == 0 {
            return Err(invalid("breaker.half_open_probes", "must be at least 1"));
        }
        if b.window.is_zero() {
            return Err(invalid("breaker.window", "must be longer than zero"));
        }
        if b.probe_after.is_zero() {
            return Err(invalid("breaker.probe_after", "must be longer than zero"));
        }
        if b.probe_max < b.probe_after {
            return Err(invalid(
                "breaker.probe_max",
                "must not be shorter than `probe_after`",
            ));
        }
        if self.budget.ratio < 0.0
            || self.budget.floor_per_sec < 0.0
            || self.budget.max_tokens < 1.0
        {
            return Err(invalid(
                "retry_budget",
                "ratio and floor_per_sec must not be negative, max_tokens at least 1",
            ));
        }
        if let Some((source, _)) = self.bulkheads.iter().find(|(_, n)| **n == 0) {
            return Err(ConfigError::Invalid {
                setting: "bulkhead",
                reason: format!("`{source}`: max_concurrent must be at least 1"),
            });
        }
        if self.queue_capacity == 0 {
            return Err(invalid("queue_capacity", "must be at least 1"));
        }
        if self.strategies.len() > crate::selection::MAX_STRATEGIES {
            return Err(ConfigError::Invalid {
                setting: "strategy",
                reason: format!(
                    "{} strategies registered; at most {} are supported",
                    self.strategies.len(),
                    crate::selection::MAX_STRATEGIES
                ),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.strategies {
            if !seen.insert(s.name()) {
                return Err(ConfigError::DuplicateStrategy(s.name()));
            }
        }
        // Last of the checks, so a bad setting never opens a store; before the sites are touched.
        let store = self.store.resolve()?;
        if self.hooks.timeout.is_none() {
            self.hooks.timeout = Some(Duration::from_secs(10));
        }
        for site in sites() {
            if let Some(&n) = self.bulkheads.get(site.source()) {
                site.state()
                    .bulkhead_limit
                    .store(n as u64, std::sync::atomic::Ordering::Relaxed);
                site.set_flag(flag::BULKHEAD);
            }
        }
        let instance: Arc<str> = self
            .instance
            .unwrap_or_else(|| {
                let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "instance".to_owned());
                format!("{host}-{}", std::process::id())
            })
            .into();
        let patterns = PatternTable::new();
        let strategy_names = self.strategies.iter().map(|s| s.name()).collect();
        let rng = match self.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        Ok(Healer {
            inner: Arc::new(Inner {
                config: Config {
                    instance,
                    max_attempts: self.max_attempts,
                    max_elapsed: self.max_elapsed,
                    backoff: self.backoff,
                    breaker: self.breaker,
                    budget: self.budget,
                    bulkhead_wait: self.bulkhead_wait,
                    blocking_sleep: self.blocking_sleep,
                },
                strategies: self.strategies,
                analyzer: self.analyzer,
                hooks: self.hooks,
                store: store.clone(),
                queue: EventQueue::start(
                    self.queue_capacity,
                    self.fold_window,
                    store,
                    self.observers,
                    patterns.clone(),
                    strategy_names,
                ),
                patterns,
                rng: Mutex::new(rng),
            }),
        })
    }
}

impl From<Category> for HookScope {
    fn from(c: Category) -> Self {
        HookScope::Category(c)
    }
}

impl From<&str> for HookScope {
    /// A `source` name.
    fn from(source: &str) -> Self {
        HookScope::Source(source.to_owned())
    }
}
