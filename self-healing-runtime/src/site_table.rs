//! A healer's states of its sites, found by the site's address.

use std::sync::{Arc, RwLock};

use rustc_hash::FxHashMap;

use crate::settings::Resolver;
use crate::site::Site;
use crate::site_state::SiteState;

/// The states of the sites a healer has met. Looked up once per guarded call (a read lock and a
/// hash of a pointer); written once per site.
#[derive(Default)]
pub(crate) struct SiteTable {
    states: RwLock<FxHashMap<usize, Arc<SiteState>>>,
}

fn key(site: &Site) -> usize {
    std::ptr::from_ref(site) as usize
}

impl SiteTable {
    /// The state of `site`, created with its settings from `resolver` on first need.
    pub(crate) fn get_or_create(
        &self,
        site: &'static Site,
        resolver: &RwLock<Resolver>,
    ) -> Arc<SiteState> {
        if let Some(state) = self.get(site) {
            return state;
        }
        let mut states = self.states.write().unwrap_or_else(|p| p.into_inner());
        states
            .entry(key(site))
            .or_insert_with(|| {
                let settings = resolver
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .resolve(site);
                let now = tokio::time::Instant::now();
                // Successes counted before this healer met the site happened since its first
                // call.
                let born = site.first_call().map_or(now, |t| t.min(now));
                Arc::new(SiteState::new(site, settings, born))
            })
            .clone()
    }

    /// The state of `site`, if this healer has met it.
    pub(crate) fn get(&self, site: &Site) -> Option<Arc<SiteState>> {
        self.states
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key(site))
            .cloned()
    }

    /// Every state, for reconfiguration.
    pub(crate) fn all(&self) -> Vec<(&'static Site, Arc<SiteState>)> {
        self.states
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|s| (s.site(), s.clone()))
            .collect()
    }
}

impl Drop for SiteTable {
    /// The healer is gone: the flags it held on sites no longer send their calls down the
    /// guarded path.
    fn drop(&mut self) {
        for state in self
            .states
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            state.release_all();
        }
    }
}
