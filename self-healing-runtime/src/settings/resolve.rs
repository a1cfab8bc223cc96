//! Resolving a site's settings, and checking settings before a healer takes them.

use crate::healer::ConfigError;
use crate::site::{Site, sites};

use super::{Settings, SiteSettings, Tuning};

/// The healer's defaults and its [`Settings`]: resolves any site's [`SiteSettings`].
#[derive(Debug, Clone)]
pub(crate) struct Resolver {
    /// The builder's defaults with the settings' `[defaults]` applied.
    base: SiteSettings,
    settings: Settings,
}

impl Resolver {
    pub(crate) fn new(mut base: SiteSettings, settings: Settings) -> Self {
        settings.defaults.apply(&mut base);
        Resolver { base, settings }
    }

    /// The settings of `site`: defaults, its category's, its attribute's, its source's.
    pub(crate) fn resolve(&self, site: &Site) -> SiteSettings {
        let mut s = self.base.clone();
        if let Some(t) = self.settings.categories.get(&site.category()) {
            t.apply(&mut s);
        }
        let options = site.options();
        if let Some(n) = options.max_attempts() {
            s.max_attempts = n;
        }
        if let Some(d) = options.timeout() {
            s.timeout = Some(d);
        }
        if let Some(t) = self.settings.sources.get(site.source()) {
            t.apply(&mut s);
        }
        s
    }

    /// Whether anything is set for `site` beyond what every site gets (sites that need their
    /// state before their first failure: a bulkhead, a configured timeout).
    pub(crate) fn needs_state(&self, site: &Site) -> bool {
        let s = self.resolve(site);
        s.bulkhead.is_some() || (s.timeout.is_some() && site.options().timeout().is_none())
    }
}

/// Checks `settings` over `base`: every source names a registered site (`extra_sources`: names
/// used elsewhere in the builder, e.g. by hooks, checked the same way), every value is in range.
pub(crate) fn validate<'a>(
    base: &SiteSettings,
    settings: &'a Settings,
    extra_sources: impl IntoIterator<Item = (&'static str, &'a str)>,
) -> Result<(), ConfigError> {
    let known: Vec<&'static str> = sites().map(Site::source).collect();
    let named = settings
        .sources
        .keys()
        .map(|s| ("source", s.as_str()))
        .chain(extra_sources);
    for (setting, source) in named {
        if !known.contains(&source) {
            return Err(ConfigError::UnknownSource {
                setting,
                source: source.to_owned(),
                suggestion: closest(source, &known),
            });
        }
    }
    let mut defaults = base.clone();
    settings.defaults.apply(&mut defaults);
    check(&defaults, "defaults")?;
    // Each scope is checked over the defaults, so an error names where the bad value is.
    for (category, tuning) in &settings.categories {
        check_over(&defaults, tuning, &format!("category.{category}"))?;
    }
    for (source, tuning) in &settings.sources {
        check_over(&defaults, tuning, &format!("source.{source}"))?;
    }
    Ok(())
}

fn check_over(defaults: &SiteSettings, tuning: &Tuning, scope: &str) -> Result<(), ConfigError> {
    let mut s = defaults.clone();
    tuning.apply(&mut s);
    check(&s, scope)
}

/// The registered source nearest to `name`, when one is close enough to be a typo.
pub(crate) fn closest(name: &str, known: &[&'static str]) -> Option<&'static str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Checks one resolved set of settings; `scope` names it in the error (`defaults`,
/// `category.api`, `source.createContact`).
pub(crate) fn check(s: &SiteSettings, scope: &str) -> Result<(), ConfigError> {
    let invalid = |setting: &str, reason: &str| ConfigError::Invalid {
        setting: if scope == "defaults" {
            setting.to_owned()
        } else {
            format!("{scope}.{setting}")
        },
        reason: reason.to_owned(),
    };
    if !(1..=100).contains(&s.max_attempts) {
        return Err(invalid(
            "max_attempts",
            "must be between 1 and 100 (the first call counts)",
        ));
    }
    if s.backoff.base > s.backoff.max {
        return Err(invalid("backoff", "`base` must not exceed `max`"));
    }
    let b = &s.breaker;
    if !(b.failure_rate > 0.0 && b.failure_rate <= 1.0) {
        return Err(invalid("breaker.failure_rate", "must be in (0, 1]"));
    }
    if !(b.slow_call_rate > 0.0 && b.slow_call_rate <= 1.0) {
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
    let budget = &s.budget;
    if !(budget.ratio >= 0.0 && budget.floor_per_sec >= 0.0 && budget.max_tokens >= 1.0) {
        return Err(invalid(
            "retry_budget",
            "ratio and floor_per_sec must not be negative, max_tokens at least 1",
        ));
    }
    if s.bulkhead == Some(0) {
        return Err(invalid("bulkhead", "max_concurrent must be at least 1"));
    }
    if s.timeout.is_some_and(|d| d.is_zero()) {
        return Err(invalid("timeout", "must be longer than zero"));
    }
    if s.cache_capacity == 0 {
        return Err(invalid("cache_capacity", "must be at least 1"));
    }
    Ok(())
}
