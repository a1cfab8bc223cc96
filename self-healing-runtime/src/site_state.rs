//! Process-wide healing state of one call site, created the first time the site needs it (never
//! on the success path of a healthy site).

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::breaker::{Breaker, BreakerConfig, CircuitState};
use crate::budget::{BudgetConfig, RetryBudget};

/// Cached last-good values kept per site at most.
const CACHE_ENTRIES: usize = 1024;

struct CacheEntry {
    stored: Instant,
    value: Box<dyn Any + Send + Sync>,
}

#[derive(Default)]
pub(crate) struct SiteState {
    breaker: Mutex<Option<Breaker>>,
    budget: Mutex<Option<RetryBudget>>,
    pub(crate) bulkhead: OnceLock<Arc<Semaphore>>,
    pub(crate) bulkhead_limit: AtomicU64,
    cache: Mutex<HashMap<u64, CacheEntry>>,
    /// Counters for the integration checklist.
    pub(crate) failures: AtomicU64,
    pub(crate) healed: AtomicU64,
    last_error: Mutex<Option<SystemTime>>,
    last_healed: Mutex<Option<SystemTime>>,
    /// Set once the site could not fail fast because its error type lacks `From<Rejected>`.
    pub(crate) cannot_reject: AtomicBool,
}

impl std::fmt::Debug for SiteState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteState")
            .field("circuit", &self.circuit_state())
            .field("failures", &self.failures.load(Ordering::Relaxed))
            .field("healed", &self.healed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // State here stays consistent between statements, so a panic elsewhere cannot leave it
    // half-updated: ignoring poison is safe and keeps one panic from disabling healing.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SiteState {
    pub(crate) fn circuit_state(&self) -> CircuitState {
        lock(&self.breaker)
            .as_ref()
            .map_or(CircuitState::Closed, Breaker::state)
    }

    /// Runs `f` on the breaker, creating it with `config` on first use.
    pub(crate) fn with_breaker<R>(
        &self,
        config: BreakerConfig,
        now: Instant,
        f: impl FnOnce(&mut Breaker) -> R,
    ) -> R {
        let mut guard = lock(&self.breaker);
        f(guard.get_or_insert_with(|| Breaker::new(config, now)))
    }

    pub(crate) fn with_budget<R>(
        &self,
        config: BudgetConfig,
        now: Instant,
        f: impl FnOnce(&mut RetryBudget) -> R,
    ) -> R {
        let mut guard = lock(&self.budget);
        f(guard.get_or_insert_with(|| RetryBudget::new(config, now)))
    }

    pub(crate) fn note_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last_error) = Some(SystemTime::now());
    }

    pub(crate) fn note_healed(&self) {
        self.healed.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last_healed) = Some(SystemTime::now());
    }

    pub(crate) fn last_error(&self) -> Option<SystemTime> {
        *lock(&self.last_error)
    }

    pub(crate) fn last_healed(&self) -> Option<SystemTime> {
        *lock(&self.last_healed)
    }

    pub(crate) fn cache_put<T: Clone + Send + Sync + 'static>(
        &self,
        key: u64,
        value: &T,
        now: Instant,
    ) {
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHE_ENTRIES
            && !cache.contains_key(&key)
            && let Some(oldest) = cache.iter().min_by_key(|(_, e)| e.stored).map(|(k, _)| *k)
        {
            cache.remove(&oldest);
        }
        cache.insert(
            key,
            CacheEntry {
                stored: now,
                value: Box::new(value.clone()),
            },
        );
    }

    /// The value stored for `key` if it is younger than `max_age` and of type `T`.
    pub(crate) fn cache_get<T: Clone + 'static>(
        &self,
        key: u64,
        max_age: Duration,
        now: Instant,
    ) -> Option<(T, Duration)> {
        let cache = lock(&self.cache);
        let entry = cache.get(&key)?;
        let age = now.saturating_duration_since(entry.stored);
        if age > max_age {
            return None;
        }
        entry.value.downcast_ref::<T>().map(|v| (v.clone(), age))
    }
}
