//! Per-site settings: attempts, backoff, circuit breaker, retry budget, bulkhead, timeout and
//! cache size, for every site, per category and per source; from the builder or a TOML file
//! (`self-healing.toml`, feature `toml`), checked against the program's registered sites, and
//! changeable while the program runs ([`Healer::reconfigure`](crate::Healer::reconfigure)).
//!
//! A site's settings are resolved in this order, later ones winning:
//!
//! 1. the healer's defaults (builder methods such as [`max_attempts`](crate::HealerBuilder::max_attempts),
//!    then the file's `[defaults]`);
//! 2. its category's (`[category.api]`);
//! 3. what its attribute declares (`max_attempts = 5`, `timeout = "2s"`);
//! 4. its source's (`[source.createContact]`): operations can tune a site without a rebuild.
//!
//! ```toml
//! [defaults]
//! max_attempts = 3
//! backoff = { base = "50ms", max = "5s" }
//!
//! [category.api]
//! timeout = "2s"
//! breaker = { failure_rate = 0.3, window = "30s" }
//!
//! [source.createContact]
//! max_attempts = 5
//! bulkhead = 8
//! retry_budget = { ratio = 0.2 }
//! cache_capacity = 100
//! ```

#[cfg(feature = "toml")]
mod file;
mod resolve;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::Category;
use crate::backoff::Backoff;
use crate::breaker::BreakerConfig;
use crate::budget::BudgetConfig;

pub(crate) use resolve::{Resolver, closest, validate};

/// Cached last-good values a `cache = ".."` site keeps unless configured otherwise.
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;

/// The settings of one site, resolved from the healer's defaults, its category's, its
/// attribute and its source's (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SiteSettings {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// No re-run starts after a call has taken this long.
    pub max_elapsed: Duration,
    /// Backoff of re-runs.
    pub backoff: Backoff,
    /// The circuit breaker.
    pub breaker: BreakerConfig,
    /// The retry budget.
    pub budget: BudgetConfig,
    /// Most calls of the site running at once (`None`: no bulkhead).
    pub bulkhead: Option<usize>,
    /// How long a call waits for a bulkhead slot before it is shed.
    pub bulkhead_wait: Duration,
    /// The deadline of each attempt (`None`: none).
    pub timeout: Option<Duration>,
    /// Most last-good values kept (`cache = ".."` sites).
    pub cache_capacity: usize,
}

impl Default for SiteSettings {
    fn default() -> Self {
        SiteSettings {
            max_attempts: 3,
            max_elapsed: Duration::from_secs(30),
            backoff: Backoff::default(),
            breaker: BreakerConfig::default(),
            budget: BudgetConfig::default(),
            bulkhead: None,
            bulkhead_wait: Duration::ZERO,
            timeout: None,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }
}

/// Some settings, for every site, a category or a source: what is left `None` is inherited.
///
/// ```
/// use std::time::Duration;
/// use self_healing_runtime::settings::Tuning;
///
/// let tuning = Tuning::new().max_attempts(5).bulkhead(8).timeout(Duration::from_secs(2));
/// assert_eq!(tuning.max_attempts, Some(5));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "toml", derive(serde::Deserialize))]
#[cfg_attr(feature = "toml", serde(deny_unknown_fields))]
#[non_exhaustive]
pub struct Tuning {
    /// Attempts per call, the first included (1–100).
    pub max_attempts: Option<u32>,
    /// No re-run starts after a call has taken this long.
    #[cfg_attr(feature = "toml", serde(default, with = "file::opt_duration"))]
    pub max_elapsed: Option<Duration>,
    /// Backoff of re-runs.
    pub backoff: Option<BackoffTuning>,
    /// The circuit breaker.
    pub breaker: Option<BreakerTuning>,
    /// The retry budget.
    pub retry_budget: Option<BudgetTuning>,
    /// Most calls running at once (at least 1).
    pub bulkhead: Option<usize>,
    /// How long a call waits for a bulkhead slot before it is shed.
    #[cfg_attr(feature = "toml", serde(default, with = "file::opt_duration"))]
    pub bulkhead_wait: Option<Duration>,
    /// The deadline of each attempt. Async attempts are cancelled at it; sync ones are checked
    /// when they return.
    #[cfg_attr(feature = "toml", serde(default, with = "file::opt_duration"))]
    pub timeout: Option<Duration>,
    /// Most last-good values a `cache = ".."` site keeps (at least 1).
    pub cache_capacity: Option<usize>,
}

impl Tuning {
    /// Nothing set: everything inherited.
    pub fn new() -> Self {
        Self::default()
    }

    /// Attempts per call, the first included.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// No re-run starts after a call has taken this long.
    pub fn max_elapsed(mut self, d: Duration) -> Self {
        self.max_elapsed = Some(d);
        self
    }

    /// Backoff of re-runs: full jitter between zero and `base·2ⁿ`, capped at `max`.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff = Some(BackoffTuning {
            base: Some(base),
            max: Some(max),
        });
        self
    }

    /// The circuit breaker's settings, whole.
    pub fn breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = Some(BreakerTuning::from(config));
        self
    }

    /// The retry budget's settings, whole.
    pub fn retry_budget(mut self, config: BudgetConfig) -> Self {
        self.retry_budget = Some(BudgetTuning {
            ratio: Some(config.ratio),
            floor_per_sec: Some(config.floor_per_sec),
            max_tokens: Some(config.max_tokens),
        });
        self
    }

    /// Most calls running at once.
    pub fn bulkhead(mut self, max_concurrent: usize) -> Self {
        self.bulkhead = Some(max_concurrent);
        self
    }

    /// How long a call waits for a bulkhead slot before it is shed.
    pub fn bulkhead_wait(mut self, d: Duration) -> Self {
        self.bulkhead_wait = Some(d);
        self
    }

    /// The deadline of each attempt.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Most last-good values kept.
    pub fn cache_capacity(mut self, n: usize) -> Self {
        self.cache_capacity = Some(n);
        self
    }

    /// `self`'s settings, with `other`'s where both set one.
    pub fn merged(mut self, other: &Tuning) -> Self {
        macro_rules! take {
            ($($field:ident),*) => { $( if other.$field.is_some() { self.$field = other.$field.clone(); } )* };
        }
        take!(
            max_attempts,
            max_elapsed,
            bulkhead,
            bulkhead_wait,
            timeout,
            cache_capacity
        );
        self.backoff = merge_opt(self.backoff, &other.backoff, BackoffTuning::merged);
        self.breaker = merge_opt(self.breaker, &other.breaker, BreakerTuning::merged);
        self.retry_budget = merge_opt(self.retry_budget, &other.retry_budget, BudgetTuning::merged);
        self
    }

    /// `base` with what this sets.
    pub(crate) fn apply(&self, base: &mut SiteSettings) {
        if let Some(n) = self.max_attempts {
            base.max_attempts = n;
        }
        if let Some(d) = self.max_elapsed {
            base.max_elapsed = d;
        }
        if let Some(b) = &self.backoff {
            base.backoff.base = b.base.unwrap_or(base.backoff.base);
            base.backoff.max = b.max.unwrap_or(base.backoff.max);
        }
        if let Some(b) = &self.breaker {
            b.apply(&mut base.breaker);
        }
        if let Some(b) = &self.retry_budget {
            base.budget.ratio = b.ratio.unwrap_or(base.budget.ratio);
            base.budget.floor_per_sec = b.floor_per_sec.unwrap_or(base.budget.floor_per_sec);
            base.budget.max_tokens = b.max_tokens.unwrap_or(base.budget.max_tokens);
        }
        if let Some(n) = self.bulkhead {
            base.bulkhead = Some(n);
        }
        if let Some(d) = self.bulkhead_wait {
            base.bulkhead_wait = d;
        }
        if let Some(d) = self.timeout {
            base.timeout = Some(d);
        }
        if let Some(n) = self.cache_capacity {
            base.cache_capacity = n;
        }
    }
}

fn merge_opt<T: Clone>(base: Option<T>, other: &Option<T>, merge: fn(T, &T) -> T) -> Option<T> {
    match (base, other) {
        (Some(b), Some(o)) => Some(merge(b, o)),
        (b, None) => b,
        (None, o) => o.clone(),
    }
}

/// Backoff settings; what is left `None` is inherited.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "toml", derive(serde::Deserialize))]
#[cfg_attr(feature = "toml", serde(deny_unknown_fields))]
#[non_exhaustive]
pub struct BackoffTuning {
    /// The first re-run's ceiling.
    #[cfg_attr(feature = "toml", serde(default, with = "file::opt_duration"))]
    pub base: Option<Duration>,
    /// No wait is ever longer.
    #[cfg_attr(feature = "toml", serde(default, with = "file::opt_duration"))]
    pub max: Option<Duration>,
}

impl BackoffTuning {
    fn merged(self, other: &Self) -> Self {
        BackoffTuning {
            base: other.base.or(self.base),
            max: other.max.or(self.max),
        }
    }
}

/// Circuit breaker settings (see [`BreakerConfig`]); what is left `None` is inherited.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "toml", derive(serde::Deserialize))]
#[cfg_attr(feature = "toml", serde(deny_unknown_fields))]
#[non_exhaustive]
#[allow(missing_docs)] // each field is the `BreakerConfig` field of the same name
pub struct BreakerTuning {
    pub failure_rate: Option<f64>,
    #[cfg_attr(feature = "toml", serde(default, with = "file::opt_duration"))]
    pub slow_call: Option<Duration>,
    pub slow_call_rate: Option<f64>,
    pub minimum_calls: Option<u32>,
    #[cfg_attr(feature = "toml", serde(default, with = "file::opt_duration"))]
    pub window: Option<Duration>,
    #[cfg_attr(feature = "toml", serde(default, with = "file::opt_duration"))]
    pub probe_after: Option<Duration>,
    #[cfg_attr(feature = "toml", serde(default, with = "file::opt_duration"))]
    pub probe_max: Option<Duration>,
    pub half_open_probes: Option<u32>,
}

impl From<BreakerConfig> for BreakerTuning {
    fn from(c: BreakerConfig) -> Self {
        BreakerTuning {
            failure_rate: Some(c.failure_rate),
            // A whole config given in code says "no slow-call limit" with `None`: there the
            // tuning cannot tell "inherit" from "off", so the inherited limit is kept.
            slow_call: c.slow_call,
            slow_call_rate: Some(c.slow_call_rate),
            minimum_calls: Some(c.minimum_calls),
            window: Some(c.window),
            probe_after: Some(c.probe_after),
            probe_max: Some(c.probe_max),
            half_open_probes: Some(c.half_open_probes),
        }
    }
}

impl BreakerTuning {
    fn merged(self, o: &Self) -> Self {
        BreakerTuning {
            failure_rate: o.failure_rate.or(self.failure_rate),
            slow_call: o.slow_call.or(self.slow_call),
            slow_call_rate: o.slow_call_rate.or(self.slow_call_rate),
            minimum_calls: o.minimum_calls.or(self.minimum_calls),
            window: o.window.or(self.window),
            probe_after: o.probe_after.or(self.probe_after),
            probe_max: o.probe_max.or(self.probe_max),
            half_open_probes: o.half_open_probes.or(self.half_open_probes),
        }
    }

    fn apply(&self, c: &mut BreakerConfig) {
        c.failure_rate = self.failure_rate.unwrap_or(c.failure_rate);
        c.slow_call = self.slow_call.or(c.slow_call);
        c.slow_call_rate = self.slow_call_rate.unwrap_or(c.slow_call_rate);
        c.minimum_calls = self.minimum_calls.unwrap_or(c.minimum_calls);
        c.window = self.window.unwrap_or(c.window);
        c.probe_after = self.probe_after.unwrap_or(c.probe_after);
        c.probe_max = self.probe_max.unwrap_or(c.probe_max);
        c.half_open_probes = self.half_open_probes.unwrap_or(c.half_open_probes);
    }
}

/// Retry budget settings (see [`BudgetConfig`]); what is left `None` is inherited.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "toml", derive(serde::Deserialize))]
#[cfg_attr(feature = "toml", serde(deny_unknown_fields))]
#[non_exhaustive]
#[allow(missing_docs)] // each field is the `BudgetConfig` field of the same name
pub struct BudgetTuning {
    pub ratio: Option<f64>,
    pub floor_per_sec: Option<f64>,
    pub max_tokens: Option<f64>,
}

impl BudgetTuning {
    fn merged(self, o: &Self) -> Self {
        BudgetTuning {
            ratio: o.ratio.or(self.ratio),
            floor_per_sec: o.floor_per_sec.or(self.floor_per_sec),
            max_tokens: o.max_tokens.or(self.max_tokens),
        }
    }
}

/// Settings for every site, per category and per source: the shape of `self-healing.toml`.
///
/// ```
/// use self_healing_runtime::Category;
/// use self_healing_runtime::settings::{Settings, Tuning};
///
/// let settings = Settings::new()
///     .category(Category::Api, Tuning::new().max_attempts(4))
///     .source("createContact", Tuning::new().bulkhead(8));
/// assert_eq!(settings.sources["createContact"].bulkhead, Some(8));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "toml", derive(serde::Deserialize))]
#[cfg_attr(feature = "toml", serde(deny_unknown_fields))]
#[non_exhaustive]
pub struct Settings {
    /// For every site.
    #[cfg_attr(feature = "toml", serde(default))]
    pub defaults: Tuning,
    /// Per category (`[category.api]`).
    #[cfg_attr(feature = "toml", serde(default, rename = "category"))]
    pub categories: BTreeMap<Category, Tuning>,
    /// Per source (`[source.createContact]`); every source must name a registered site.
    #[cfg_attr(feature = "toml", serde(default, rename = "source"))]
    pub sources: BTreeMap<String, Tuning>,
}

impl Settings {
    /// Nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (merges) settings for every site.
    pub fn defaults(mut self, tuning: Tuning) -> Self {
        self.defaults = std::mem::take(&mut self.defaults).merged(&tuning);
        self
    }

    /// Adds (merges) settings for the sites of `category`.
    pub fn category(mut self, category: Category, tuning: Tuning) -> Self {
        let entry = self.categories.entry(category).or_default();
        *entry = std::mem::take(entry).merged(&tuning);
        self
    }

    /// Adds (merges) settings for the site named `source`.
    pub fn source(mut self, source: impl Into<String>, tuning: Tuning) -> Self {
        let entry = self.sources.entry(source.into()).or_default();
        *entry = std::mem::take(entry).merged(&tuning);
        self
    }

    /// `self` with `other`'s settings where both set one.
    pub fn merged(mut self, other: &Settings) -> Self {
        self = self.defaults(other.defaults.clone());
        for (c, t) in &other.categories {
            self = self.category(*c, t.clone());
        }
        for (s, t) in &other.sources {
            self = self.source(s.clone(), t.clone());
        }
        self
    }
}
