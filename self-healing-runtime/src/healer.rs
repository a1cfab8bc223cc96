//! The [`Healer`]: configuration, strategies, learned statistics and the event queue, installed
//! once per process or scoped to a test.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use crate::Category;
use crate::backoff::Backoff;
use crate::breaker::BreakerConfig;
use crate::budget::BudgetConfig;
use crate::default_store::StoreChoice;
use crate::diagnosis::{Analyzer, RuleAnalyzer};
use crate::event::{EventObserver, EventStore};
use crate::fleet::FleetLink;
use crate::hooks::{HookError, HookKind, HookScope, Hooks};
use crate::queue::{EventQueue, QueueStats};
use crate::scope::{self, ScopeGuard};
use crate::selection::PatternTable;
use crate::settings::{Resolver, Settings, SiteSettings, Tuning};
use crate::site_table::SiteTable;
use crate::strategy::{Strategy, builtin_strategies};

mod from_env;
mod sites;

/// A setting the [`HealerBuilder`] refused, naming the setting and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting is out of its range.
    Invalid {
        /// The setting, as named by its builder method, in `self-healing.toml`
        /// (`source.createContact.breaker.window`) or by its environment variable.
        setting: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// Two strategies share a name; names key the learned statistics, so they must be unique.
    DuplicateStrategy(&'static str),
    /// `install` was called while a healer is installed already.
    AlreadyInstalled,
    /// Settings (or a hook) name a source no wrapped function has: a typo would otherwise be
    /// silently ignored.
    UnknownSource {
        /// Where it was named (`source`, `bulkhead`, `hook`).
        setting: &'static str,
        /// The name given.
        source: String,
        /// The registered source it is closest to, if any.
        suggestion: Option<&'static str>,
    },
    /// A settings file could not be read or is not valid settings.
    File {
        /// The file.
        path: String,
        /// What is wrong, with the line for a syntax error.
        reason: String,
    },
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
            ConfigError::UnknownSource {
                setting,
                source,
                suggestion,
            } => {
                write!(
                    f,
                    "{setting} `{source}`: no wrapped function has this source"
                )?;
                match suggestion {
                    Some(s) => write!(f, "; did you mean `{s}`?"),
                    None => f.write_str(
                        " (sources are the attribute's `source = \"..\"`, or the function's name)",
                    ),
                }
            }
            ConfigError::File { path, reason } => {
                write!(f, "settings file `{path}`: {reason}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

pub(crate) struct Config {
    pub(crate) instance: Arc<str>,
    pub(crate) blocking_sleep: Arc<dyn Fn(Duration) + Send + Sync>,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    /// The builder's defaults, kept so that [`Healer::reconfigure`] starts from them.
    pub(crate) base: SiteSettings,
    /// Resolves each site's settings; replaced by [`Healer::reconfigure`].
    pub(crate) resolver: RwLock<Resolver>,
    /// This healer's state of each site it met.
    pub(crate) sites: SiteTable,
    /// Where its circuit changes go to reach the fleet.
    pub(crate) fleet: FleetLink,
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) strategies: Vec<Arc<dyn Strategy>>,
    pub(crate) analyzer: Arc<dyn Analyzer>,
    pub(crate) hooks: Hooks,
    pub(crate) patterns: PatternTable,
    pub(crate) queue: EventQueue,
    pub(crate) rng: Mutex<fastrand::Rng>,
    /// The dispatchers given to [`HealerBuilder::notify`], kept apart from the observers so the
    /// health monitor can tell admins about failing checks through them too.
    #[cfg(feature = "notify")]
    pub(crate) notify: Vec<crate::notify::NotifyDispatcher>,
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
    /// A builder with the defaults: the sixteen built-in strategies, the rule analyzer, 3 attempts,
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
    /// The defaults set by the builder's own methods.
    base: SiteSettings,
    /// Per category and per source, and what a settings file said.
    settings: Settings,
    /// The first settings file that could not be read, reported by `build`.
    file_error: Option<ConfigError>,
    learning_refresh: Option<Duration>,
    strategies: Vec<Arc<dyn Strategy>>,
    analyzer: Arc<dyn Analyzer>,
    hooks: Hooks,
    store: StoreChoice,
    observers: Vec<Arc<dyn EventObserver>>,
    #[cfg(feature = "notify")]
    pub(crate) notify: Vec<crate::notify::NotifyDispatcher>,
    queue_capacity: usize,
    fold_window: Duration,
    seed: Option<u64>,
    blocking_sleep: Arc<dyn Fn(Duration) + Send + Sync>,
}

impl fmt::Debug for HealerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealerBuilder")
            .field("defaults", &self.base)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Default for HealerBuilder {
    fn default() -> Self {
        HealerBuilder {
            instance: None,
            base: SiteSettings::default(),
            settings: Settings::default(),
            file_error: None,
            learning_refresh: Some(Duration::from_secs(30)),
            strategies: builtin_strategies(),
            analyzer: Arc::new(RuleAnalyzer::new()),
            hooks: Hooks::default(),
            store: StoreChoice::default(),
            observers: Vec::new(),
            #[cfg(feature = "notify")]
            notify: Vec::new(),
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
        self.base.max_attempts = n;
        self
    }

    /// No re-run starts after a call has taken this long (default 30 s).
    pub fn max_elapsed(mut self, d: Duration) -> Self {
        self.base.max_elapsed = d;
        self
    }

    /// Backoff of re-runs: full jitter between zero and `base·2ⁿ`, capped at `max`.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base.backoff = Backoff { base, max };
        self
    }

    /// Circuit breaker settings for every site (see [`BreakerConfig`] for the defaults).
    pub fn breaker(mut self, config: BreakerConfig) -> Self {
        self.base.breaker = config;
        self
    }

    /// Retry budget settings for every site (see [`BudgetConfig`] for the defaults).
    pub fn retry_budget(mut self, config: BudgetConfig) -> Self {
        self.base.budget = config;
        self
    }

    /// Caps the concurrent calls of the site named `source` (the bulkhead strategy); the same
    /// as `.source(source, Tuning::new().bulkhead(max_concurrent))`.
    pub fn bulkhead(self, source: impl Into<String>, max_concurrent: usize) -> Self {
        self.source(source, Tuning::new().bulkhead(max_concurrent))
    }

    /// How often the learned statistics are reloaded from the store, picking up what other
    /// instances sharing it learned (default every 30 s; `None`: only by
    /// [`Healer::refresh_from_store`]). See [`fleet`](crate::fleet).
    pub fn learning_refresh(mut self, every: Option<Duration>) -> Self {
        self.learning_refresh = every;
        self
    }

    /// How long a call waits for a bulkhead slot before it is shed (default: not at all).
    pub fn bulkhead_wait(mut self, d: Duration) -> Self {
        self.base.bulkhead_wait = d;
        self
    }

    /// Settings for the site named `source`, over its category's and its attribute's. The name
    /// is checked in [`build`](Self::build): one no wrapped function has is an error.
    ///
    /// ```
    /// use std::time::Duration;
    /// use self_healing_runtime::{Category, ConfigError, Healer};
    /// use self_healing_runtime::settings::Tuning;
    ///
    /// // Every site of the `api` category gets a 2 s deadline per attempt.
    /// let healer = Healer::builder()
    ///     .category(Category::Api, Tuning::new().timeout(Duration::from_secs(2)))
    ///     .build();
    /// assert!(healer.is_ok());
    ///
    /// // A source no wrapped function has is refused, not silently ignored.
    /// let typo = Healer::builder()
    ///     .source("createContcat", Tuning::new().max_attempts(5))
    ///     .build();
    /// assert!(matches!(typo, Err(ConfigError::UnknownSource { .. })));
    /// ```
    pub fn source(mut self, source: impl Into<String>, tuning: Tuning) -> Self {
        self.settings = std::mem::take(&mut self.settings).source(source, tuning);
        self
    }

    /// Settings for the sites of `category`, over the defaults.
    pub fn category(mut self, category: Category, tuning: Tuning) -> Self {
        self.settings = std::mem::take(&mut self.settings).category(category, tuning);
        self
    }

    /// Adds settings: for every site, per category and per source (merged over what was set
    /// before; later wins).
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = std::mem::take(&mut self.settings).merged(&settings);
        self
    }

    /// Adds the settings of a TOML file (see [`settings`](crate::settings) for its shape). A
    /// file that cannot be read or parsed makes [`build`](Self::build) fail naming it.
    #[cfg(feature = "toml")]
    pub fn settings_file(self, path: impl AsRef<std::path::Path>) -> Self {
        match Settings::from_file(path) {
            Ok(settings) => self.settings(settings),
            Err(e) => HealerBuilder {
                file_error: self.file_error.or(Some(e)),
                ..self
            },
        }
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

    /// Registers a hook of `kind` that sees the call it runs for (its site, failure, attempt and
    /// idempotency key), run once for each call whose strategy asks for it (hooks registered
    /// with [`hook`](Self::hook) are shared repairs: one run serves every call that failed
    /// before it).
    pub fn hook_with_context<F, Fut>(
        mut self,
        kind: HookKind,
        scope: impl Into<HookScope>,
        f: F,
    ) -> Self
    where
        F: Fn(crate::hooks::HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.add_with_context(kind, scope.into(), f);
        self
    }

    /// Registers the clear-cache hook (drop the local cache a failure may come from) for the
    /// sites in `scope`: the `clear_cache` strategy runs it, then re-runs the call once.
    pub fn on_clear_cache<F, Fut>(self, scope: impl Into<HookScope>, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hook(HookKind::ClearCache, scope, f)
    }

    /// Gives the sites in `scope` alternate endpoints: the `switch_endpoint` strategy moves a
    /// failing call to the next healthy one. The sites' bodies send each attempt to
    /// [`Endpoints::current`](crate::endpoints::Endpoints::current).
    pub fn endpoints(
        self,
        scope: impl Into<HookScope>,
        endpoints: &crate::endpoints::Endpoints,
    ) -> Self {
        let endpoints = endpoints.clone();
        self.hook(HookKind::SwitchEndpoint, scope, move || {
            let switched = endpoints.switch();
            async move {
                switched
                    .map(|_| ())
                    .map_err(|e| HookError::from(e.to_string()))
            }
        })
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
        if let Some(e) = self.file_error.take() {
            return Err(e);
        }
        let hook_sources: Vec<String> = self.hooks.sources().map(str::to_owned).collect();
        crate::settings::validate(
            &self.base,
            &self.settings,
            hook_sources.iter().map(|s| ("hook", s.as_str())),
        )?;
        if self.learning_refresh.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::Invalid {
                setting: "learning_refresh".to_owned(),
                reason: "must be longer than zero (or `None` to refresh only by hand)".to_owned(),
            });
        }
        if self.queue_capacity == 0 {
            return Err(ConfigError::Invalid {
                setting: "queue_capacity".to_owned(),
                reason: "must be at least 1".to_owned(),
            });
        }
        if self.strategies.len() > crate::selection::MAX_STRATEGIES {
            return Err(ConfigError::Invalid {
                setting: "strategy".to_owned(),
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
        let (fleet, fleet_changes) = FleetLink::new();
        let healer = Healer {
            inner: Arc::new(Inner {
                fleet,
                config: Config {
                    instance,
                    blocking_sleep: self.blocking_sleep,
                },
                resolver: RwLock::new(Resolver::new(self.base.clone(), self.settings)),
                base: self.base,
                sites: SiteTable::default(),
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
                #[cfg(feature = "notify")]
                notify: self.notify,
            }),
        };
        healer.prepare_sites();
        crate::fleet::start(&healer, fleet_changes, self.learning_refresh);
        #[cfg(feature = "metrics")]
        crate::metrics::start(&healer, crate::metrics::PUBLISH_EVERY);
        Ok(healer)
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
