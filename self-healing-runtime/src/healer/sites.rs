//! A healer's view of each site: its state, its resolved settings, its circuit and its
//! checklist row; and reconfiguration while the program runs.

use std::sync::Arc;

use crate::breaker::CircuitState;
use crate::settings::{Resolver, Settings, SiteSettings};
use crate::site::{Site, SiteReport};
use crate::site_state::SiteState;

use super::{ConfigError, Healer};

impl Healer {
    /// This healer's state of `site`, created on first need.
    pub(crate) fn state_of(&self, site: &'static Site) -> Arc<SiteState> {
        self.inner.sites.get_or_create(site, &self.inner.resolver)
    }

    /// Creates the state of every site whose settings need it before its first failure (a
    /// bulkhead, a configured timeout), so their calls take the guarded path.
    pub(super) fn prepare_sites(&self) {
        let resolver = self
            .inner
            .resolver
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for site in crate::sites() {
            if resolver.needs_state(site) {
                let _ = self.state_of(site);
            }
        }
    }

    /// The settings `source` has under this healer (`None`: no wrapped function has it).
    pub fn settings_of(&self, source: &str) -> Option<SiteSettings> {
        let site = crate::sites().find(|s| s.source() == source)?;
        Some(match self.inner.sites.get(site) {
            Some(state) => (*state.settings()).clone(),
            None => self.resolver().resolve(site),
        })
    }

    /// Replaces the per-category and per-source settings (and the file's defaults) while the
    /// program runs, keeping every site's state: open circuits stay open, budgets keep their
    /// tokens, bulkheads are resized in place. The builder's own defaults stay.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad or unknown setting; nothing changes then.
    pub fn reconfigure(&self, settings: Settings) -> Result<(), ConfigError> {
        let builder_base = self.inner.base.clone();
        crate::settings::validate(&builder_base, &settings, std::iter::empty())?;
        let resolver = Resolver::new(builder_base, settings);
        *self
            .inner
            .resolver
            .write()
            .unwrap_or_else(|p| p.into_inner()) = resolver.clone();
        for (site, state) in self.inner.sites.all() {
            state.apply(resolver.resolve(site));
        }
        self.prepare_sites();
        Ok(())
    }

    fn resolver(&self) -> Resolver {
        self.inner
            .resolver
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The circuit state of `site` under this healer (closed until it met a failure).
    pub fn circuit_of(&self, site: &Site) -> CircuitState {
        self.inner
            .sites
            .get(site)
            .map_or(CircuitState::Closed, |s| s.circuit_state())
    }

    /// The integration checklist's row of `site` under this healer.
    pub fn report(&self, site: &Site) -> SiteReport {
        self.report_of(site, site.flags() & crate::site::flag::FRESH == 0)
    }

    pub(crate) fn report_of(&self, site: &Site, exercised: bool) -> SiteReport {
        let state = self.inner.sites.get(site);
        let count = |f: fn(&SiteState) -> u64| state.as_deref().map_or(0, f);
        SiteReport {
            exercised,
            failures: count(|s| s.failures.load(std::sync::atomic::Ordering::Relaxed)),
            healed: count(|s| s.healed.load(std::sync::atomic::Ordering::Relaxed)),
            last_error: state.as_deref().and_then(SiteState::last_error),
            last_healed: state.as_deref().and_then(SiteState::last_healed),
            circuit: state
                .as_deref()
                .map_or(CircuitState::Closed, SiteState::circuit_state),
            can_fail_fast: !state
                .as_deref()
                .is_some_and(|s| s.cannot_reject.load(std::sync::atomic::Ordering::Relaxed)),
        }
    }
}
