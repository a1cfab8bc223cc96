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
use crate::pacer::{Pacer, Turn};
use crate::site::{Site, flag};

/// Cached last-good values kept per site at most.
const CACHE_ENTRIES: usize = 1024;

struct CacheEntry {
    stored: Instant,
    value: Box<dyn Any + Send + Sync>,
}

pub(crate) struct SiteState {
    /// When this state was created: at the site's first call (or when a healer configured it).
    /// The successes counted before the breaker existed are spread over the time since.
    born: Instant,
    breaker: Mutex<Option<Breaker>>,
    budget: Mutex<Option<RetryBudget>>,
    /// Calls that ended in an error (the success counter lives on the site itself).
    pub(crate) failed_calls: AtomicU64,
    /// Pacing after the dependency asked to slow down (Retry-After).
    pacer: Mutex<Option<Pacer>>,
    pub(crate) bulkhead: OnceLock<Arc<Semaphore>>,
    pub(crate) bulkhead_limit: AtomicU64,
    cache: Mutex<HashMap<u64, CacheEntry>>,
    /// Counters for the integration checklist.
    pub(crate) failures: AtomicU64,
    pub(crate) healed: AtomicU64,
    last_error: Mutex<Option<SystemTime>>,
    last_healed: Mutex<Option<SystemTime>>,
    /// Set once a guard could not fail fast because the site's error type cannot represent a
    /// rejection (`fail_fast = false`).
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
    pub(crate) fn new(born: Instant) -> Self {
        SiteState {
            born,
            breaker: Mutex::default(),
            budget: Mutex::default(),
            failed_calls: AtomicU64::default(),
            pacer: Mutex::default(),
            bulkhead: OnceLock::default(),
            bulkhead_limit: AtomicU64::default(),
            cache: Mutex::default(),
            failures: AtomicU64::default(),
            healed: AtomicU64::default(),
            last_error: Mutex::default(),
            last_healed: Mutex::default(),
            cannot_reject: AtomicBool::default(),
        }
    }

    pub(crate) fn circuit_state(&self) -> CircuitState {
        lock(&self.breaker)
            .as_ref()
            .map_or(CircuitState::Closed, Breaker::state)
    }

    /// Runs `f` on the breaker, creating it with `config` on first use (`ok_total`: the site's
    /// success counter now).
    pub(crate) fn with_breaker<R>(
        &self,
        config: BreakerConfig,
        now: Instant,
        ok_total: u64,
        f: impl FnOnce(&mut Breaker) -> R,
    ) -> R {
        let mut guard = lock(&self.breaker);
        let born = self.born.min(now);
        f(guard.get_or_insert_with(|| {
            // Everything counted so far happened since the site was born.
            let mut breaker = Breaker::new(config, born, 0);
            breaker.absorb(now, ok_total);
            breaker
        }))
    }

    /// Runs `f` on the retry budget, creating it with `config` on first use (`calls_total`: the
    /// site's calls so far).
    pub(crate) fn with_budget<R>(
        &self,
        config: BudgetConfig,
        now: Instant,
        calls_total: u64,
        f: impl FnOnce(&mut RetryBudget) -> R,
    ) -> R {
        let mut guard = lock(&self.budget);
        f(guard.get_or_insert_with(|| RetryBudget::new(config, now, calls_total)))
    }

    /// The dependency asked `site` to wait `after` at `now`: its calls are paced from now on
    /// (see [`Pacer`]).
    pub(crate) fn push_back(&self, site: &Site, now: Instant, after: Duration) {
        let mut guard = lock(&self.pacer);
        let born = self.born.min(now);
        guard
            .get_or_insert_with(|| Pacer::new(born))
            .push_back(now, after, site.ok_calls());
        // Under the lock, so a concurrent end of pacing cannot clear the flag of a fresh one.
        site.set_flag(flag::PACED);
    }

    /// The turn of a call of `site` arriving at `now`; ends pacing (and lets the site's calls
    /// skip this guard again) once the dependency's wait is over and the turns are used up.
    pub(crate) fn pacing_turn(&self, site: &Site, now: Instant) -> Turn {
        let mut guard = lock(&self.pacer);
        match guard.as_mut() {
            Some(pacer) if pacer.active(now) => pacer.turn(now),
            _ => {
                site.clear_flag(flag::PACED);
                Turn::Go
            }
        }
    }

    /// A failure happened at `at` (wall clock, for the checklist).
    pub(crate) fn note_failure(&self, at: SystemTime) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last_error) = Some(at);
    }

    /// A call was healed at `at` (wall clock, for the checklist).
    pub(crate) fn note_healed(&self, at: SystemTime) {
        self.healed.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last_healed) = Some(at);
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
