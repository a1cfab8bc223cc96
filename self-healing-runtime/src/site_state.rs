//! A healer's state for one call site, created the first time the site needs it under that
//! healer (never on the success path of a healthy site). Each healer has its own, so scoped
//! healers in parallel tests share no circuit, budget, cache or pacing.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::breaker::{Breaker, BreakerConfig, CircuitState};
use crate::budget::{BudgetConfig, RetryBudget};
use crate::pacer::{Pacer, Turn};
use crate::settings::SiteSettings;
use crate::site::{Site, flag};

struct CacheEntry {
    stored: Instant,
    value: Box<dyn Any + Send + Sync>,
}

pub(crate) struct SiteState {
    site: &'static Site,
    /// The flag bits this healer holds on the site (see [`Site::hold_flag`]).
    held: AtomicU8,
    /// The site's resolved settings (replaced when the healer is reconfigured).
    settings: RwLock<Arc<SiteSettings>>,
    /// When this state was created: at the site's first call (or when a healer configured it).
    /// The successes counted before the breaker existed are spread over the time since.
    born: Instant,
    breaker: Mutex<Option<Breaker>>,
    budget: Mutex<Option<RetryBudget>>,
    /// Calls that ended in an error (the success counter lives on the site itself).
    pub(crate) failed_calls: AtomicU64,
    /// Pacing after the dependency asked to slow down (Retry-After).
    pacer: Mutex<Option<Pacer>>,
    /// The bulkhead and its limit, when the settings give the site one.
    bulkhead: Mutex<Option<(Arc<Semaphore>, usize)>>,
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
    pub(crate) fn new(site: &'static Site, settings: SiteSettings, born: Instant) -> Self {
        let state = SiteState {
            site,
            held: AtomicU8::new(0),
            settings: RwLock::new(Arc::new(SiteSettings::default())),
            born,
            breaker: Mutex::default(),
            budget: Mutex::default(),
            failed_calls: AtomicU64::default(),
            pacer: Mutex::default(),
            bulkhead: Mutex::default(),
            cache: Mutex::default(),
            failures: AtomicU64::default(),
            healed: AtomicU64::default(),
            last_error: Mutex::default(),
            last_healed: Mutex::default(),
            cannot_reject: AtomicBool::default(),
        };
        state.apply(settings);
        state
    }

    /// The site this is the state of.
    pub(crate) fn site(&self) -> &'static Site {
        self.site
    }

    /// The site's settings now.
    pub(crate) fn settings(&self) -> Arc<SiteSettings> {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Takes new settings, keeping the state: circuits stay open or closed, the budget keeps
    /// its tokens, the bulkhead's slots in use stay in use.
    pub(crate) fn apply(&self, settings: SiteSettings) {
        if let Some(b) = lock(&self.breaker).as_mut() {
            b.reconfigure(settings.breaker);
        }
        if let Some(b) = lock(&self.budget).as_mut() {
            b.reconfigure(settings.budget);
        }
        {
            let mut bulkhead = lock(&self.bulkhead);
            match (settings.bulkhead, bulkhead.as_mut()) {
                (None, _) => {
                    *bulkhead = None;
                    self.release(flag::BULKHEAD);
                }
                (Some(n), Some((semaphore, limit))) => {
                    // Resized in place, so calls holding a slot keep counting against it.
                    if n > *limit {
                        semaphore.add_permits(n - *limit);
                    } else {
                        // Slots in use now are forgotten as they come back.
                        semaphore.forget_permits(*limit - n);
                    }
                    *limit = n;
                }
                (Some(n), None) => {
                    *bulkhead = Some((Arc::new(Semaphore::new(n)), n));
                    self.hold(flag::BULKHEAD);
                }
            }
        }
        let tuned_timeout = settings.timeout.is_some() && self.site.options().timeout().is_none();
        if tuned_timeout {
            self.hold(flag::TUNED);
        } else {
            self.release(flag::TUNED);
        }
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(settings);
    }

    /// This healer needs `bit` on the site; true if it did not hold it before.
    pub(crate) fn hold(&self, bit: u8) -> bool {
        self.site.hold_flag(&self.held, bit)
    }

    /// This healer no longer needs `bit` on the site; true if it held it before.
    pub(crate) fn release(&self, bit: u8) -> bool {
        self.site.release_flag(&self.held, bit)
    }

    /// The flag bits this healer holds on the site.
    pub(crate) fn held(&self) -> u8 {
        self.held.load(Ordering::Relaxed)
    }

    /// Gives back every bit this healer holds (its healer is gone).
    pub(crate) fn release_all(&self) {
        for bit in flag::HELD {
            self.release(bit);
        }
    }

    /// The bulkhead, if the site has one under this healer.
    pub(crate) fn bulkhead(&self) -> Option<(Arc<Semaphore>, usize)> {
        lock(&self.bulkhead).clone()
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

    /// Opens the circuit by hand: calls are refused until it is closed or reset by hand.
    pub(crate) fn hold_open(&self, now: Instant) {
        let config = self.settings().breaker;
        self.with_breaker(config, now, self.site.ok_calls(), |b| b.hold_open());
        self.hold(flag::CIRCUIT);
    }

    /// Closes the circuit by hand (an empty window; new failures can open it again).
    pub(crate) fn close_circuit(&self, now: Instant) {
        let config = self.settings().breaker;
        let ok = self.site.ok_calls();
        self.with_breaker(config, now, ok, |b| b.close(now, ok));
        self.release(flag::CIRCUIT);
    }

    /// Forgets the circuit's and the budget's history: as on the site's first call.
    pub(crate) fn reset_circuit(&self, now: Instant) {
        let config = self.settings().breaker;
        let ok = self.site.ok_calls();
        self.with_breaker(config, now, ok, |b| b.reset(now, ok));
        *lock(&self.budget) = None;
        self.release(flag::CIRCUIT);
    }

    /// Another instance's circuit for this dependency opened: probe before trusting it.
    pub(crate) fn suspect(&self, now: Instant) {
        let config = self.settings().breaker;
        self.with_breaker(config, now, self.site.ok_calls(), |b| b.suspect(now));
        if self.circuit_state() != CircuitState::Closed {
            self.hold(flag::CIRCUIT);
        }
    }

    /// Whether the circuit was opened by hand.
    pub(crate) fn held_open(&self) -> bool {
        lock(&self.breaker).as_ref().is_some_and(Breaker::held_open)
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
        self.hold(flag::PACED);
    }

    /// The turn of a call of `site` arriving at `now`; ends pacing (and lets the site's calls
    /// skip this guard again) once the dependency's wait is over and the turns are used up.
    pub(crate) fn pacing_turn(&self, site: &Site, now: Instant) -> Turn {
        let mut guard = lock(&self.pacer);
        match guard.as_mut() {
            Some(pacer) if pacer.active(now) => pacer.turn(now),
            _ => {
                let _ = site;
                self.release(flag::PACED);
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
        let capacity = self.settings().cache_capacity;
        let mut cache = lock(&self.cache);
        while cache.len() >= capacity
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
