//! The typed interceptor. `#[self_healing]` expands a function into a loop around its body:
//!
//! ```text
//! let mut driver = Driver::new(&SITE, ops);
//! loop {
//!     let attempt = { /* fresh copies of the arguments */ driver.attempt(async { body }).await };
//!     match driver.settle(attempt).await {
//!         Step::Return(result) => return result,
//!         Step::Rerun => {}
//!         Step::Fallback => return driver.settle_fallback(fallback(args).await),
//!     }
//! }
//! ```
//!
//! The success path of a healthy site is one relaxed atomic load in `attempt` and a branch in
//! `settle`: no allocation, no clock read, no lock. Everything else (the "slow" state, the clock,
//! the healer lookup) starts at the first error or when the site's flags ask for guarding.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use tokio::time::Instant;

mod futures;
mod inject;

use futures::CatchUnwind;
pub use futures::{AttemptFuture, SettleFuture};

use crate::Rejected;
use crate::breaker::Admission;
use crate::decide::{Action, Candidate, Decider};
use crate::error_ops::ErrorOps;
use crate::healer::Healer;
use crate::nesting;
use crate::site::{Site, flag};

/// The result of one attempt.
#[derive(Debug)]
pub enum Attempt<T, E> {
    /// The body ran to completion.
    Done(Result<T, E>),
    /// The body did not run (circuit open, bulkhead full) or was cancelled (timeout). Boxed:
    /// it only happens on the guarded path, and a small `Attempt` keeps the success path in
    /// registers.
    Rejected(Box<Rejected>),
    /// The body panicked (`catch_panic = true`).
    Panicked(Box<dyn Any + Send>),
}

/// What the generated loop does next.
#[derive(Debug)]
pub enum Step<T, E> {
    /// Return this to the caller.
    Return(Result<T, E>),
    /// Run the body again.
    Rerun,
    /// Call the declared fallback and hand its result to [`Driver::settle_fallback`].
    Fallback,
}

/// Access to the site's cache of last-good values, for `cache = ".."` sites.
pub(crate) trait CacheAccess<T>: Sync {
    fn put(&self, driver_key: u64, value: &T, site: &'static Site);
    fn get(&self, driver_key: u64, site: &'static Site) -> Option<T>;
}

struct NoCache;
impl<T> CacheAccess<T> for NoCache {
    fn put(&self, _: u64, _: &T, _: &'static Site) {}
    fn get(&self, _: u64, _: &'static Site) -> Option<T> {
        None
    }
}

struct SiteCache;
impl<T: Clone + Send + Sync + 'static> CacheAccess<T> for SiteCache {
    fn put(&self, key: u64, value: &T, site: &'static Site) {
        site.state().cache_put(key, value, Instant::now());
    }
    fn get(&self, key: u64, site: &'static Site) -> Option<T> {
        let max_age = site.options().cache()?;
        site.state()
            .cache_get::<T>(key, max_age, Instant::now())
            .map(|(v, _)| v)
    }
}

/// Per-call state of the typed interceptor. Created by generated code; see the module docs.
#[derive(Debug)]
pub struct Driver<E> {
    site: &'static Site,
    ops: ErrorOps<E>,
    cache_key: u64,
    /// Everything beyond the success path, boxed so that the success path only initialises
    /// and drops one null pointer, and the success path's future stays small.
    slow: Option<Box<Slow<E>>>,
}

/// The typed part of the state beyond the success path.
#[derive(Debug)]
struct Slow<E> {
    decider: Decider,
    /// The latest error of the call, returned if healing does not produce a value.
    original: Option<E>,
    /// The latest rejection, when the attempt produced no error of type `E`.
    rejection: Option<Rejected>,
    /// The panic payload of the latest attempt, resumed if it cannot become an error.
    panic: Option<Box<dyn Any + Send>>,
    /// The latest sync attempt overran the site's timeout.
    overran: bool,
}

impl<E> Driver<E> {
    /// A driver for one call of `site`.
    #[inline(always)]
    pub fn new(site: &'static Site, ops: ErrorOps<E>) -> Self {
        Driver {
            site,
            ops,
            cache_key: 0,
            slow: None,
        }
    }

    /// Sets the key of the cached last-good value (hash of the arguments).
    #[inline]
    pub fn set_cache_key(&mut self, key: u64) {
        self.cache_key = key;
    }

    /// Runs one attempt of an async body.
    ///
    /// Not an `async fn`: on the success path of a healthy site the returned future is the body
    /// itself, and the guarded path's (much larger) state is boxed only when it is needed.
    #[inline(always)]
    pub fn attempt<'a, T: 'a, Fut>(
        &'a mut self,
        body: Fut,
    ) -> AttemptFuture<Fut, impl Future<Output = Attempt<T, E>> + 'a>
    where
        Fut: Future<Output = Result<T, E>> + 'a,
    {
        if self.slow.is_none() && self.site.flags() == 0 {
            return AttemptFuture::Fast { body };
        }
        AttemptFuture::Guarded {
            guarded: self.guarded(body),
        }
    }

    /// Kept out of line so the success path stays a load, a branch and the body.
    #[cold]
    #[inline(never)]
    fn guarded<'a, T: 'a, Fut>(
        &'a mut self,
        body: Fut,
    ) -> Pin<Box<impl Future<Output = Attempt<T, E>> + 'a>>
    where
        Fut: Future<Output = Result<T, E>> + 'a,
    {
        Box::pin(self.attempt_guarded(body))
    }

    /// Runs one attempt of a sync body.
    #[inline(always)]
    pub fn attempt_sync<T>(&mut self, body: impl FnOnce() -> Result<T, E>) -> Attempt<T, E> {
        if self.slow.is_none() && self.site.flags() == 0 {
            return Attempt::Done(body());
        }
        self.attempt_guarded_sync(body)
    }

    /// Decides what follows an async attempt. Like [`attempt`](Self::attempt), the success path
    /// returns a ready future and the slow path's state is boxed.
    #[inline(always)]
    pub fn settle<'a, T: 'a>(
        &'a mut self,
        attempt: Attempt<T, E>,
    ) -> SettleFuture<T, E, impl Future<Output = Step<T, E>> + 'a> {
        match attempt {
            Attempt::Done(Ok(v)) if self.slow.is_none() => SettleFuture::Ready {
                step: Some(Step::Return(Ok(v))),
            },
            other => SettleFuture::Slow {
                slow: self.settle_boxed(other),
            },
        }
    }

    /// Kept out of line, like [`guarded`](Self::guarded).
    #[cold]
    #[inline(never)]
    fn settle_boxed<'a, T: 'a>(
        &'a mut self,
        attempt: Attempt<T, E>,
    ) -> Pin<Box<impl Future<Output = Step<T, E>> + 'a>> {
        Box::pin(self.settle_slow(attempt, &NoCache))
    }

    /// [`settle`](Self::settle) for `cache = ".."` sites: good values are kept, and served when
    /// the `cached_value` strategy is chosen.
    pub async fn settle_cached<T>(&mut self, attempt: Attempt<T, E>) -> Step<T, E>
    where
        T: crate::__private::CacheValue,
    {
        self.settle_slow(attempt, &SiteCache).await
    }

    /// Decides what follows a sync attempt.
    #[inline(always)]
    pub fn settle_sync<T>(&mut self, attempt: Attempt<T, E>) -> Step<T, E> {
        match attempt {
            Attempt::Done(Ok(v)) if self.slow.is_none() => Step::Return(Ok(v)),
            other => self.settle_slow_sync(other, &NoCache),
        }
    }

    /// [`settle_sync`](Self::settle_sync) for `cache = ".."` sites.
    pub fn settle_cached_sync<T>(&mut self, attempt: Attempt<T, E>) -> Step<T, E>
    where
        T: crate::__private::CacheValue,
    {
        self.settle_slow_sync(attempt, &SiteCache)
    }

    /// Takes the fallback's result: a good value heals the call; an error is recorded and the
    /// call's first error is returned (it says more about what went wrong than the fallback's).
    pub fn settle_fallback<T>(&mut self, result: Result<T, E>) -> Result<T, E> {
        let healed = result.is_ok();
        let view = self.ops.view;
        let Some(slow) = self.slow.as_deref_mut() else {
            return result;
        };
        let note = match &result {
            Ok(_) => None,
            Err(e) => Some(crate::diagnosis::chain_message_of(view(e))),
        };
        slow.decider.finish_fallback(healed, note);
        let (original, rejection) = (slow.original.take(), slow.rejection.take());
        match result {
            Ok(v) => Ok(v),
            Err(fallback_error) => match (original, rejection) {
                (Some(original), _) => Err(original),
                (None, Some(r)) if self.ops.reject.is_some() => Err(self.reject_or_resume(r, None)),
                _ => Err(fallback_error),
            },
        }
    }

    /// Returns the call's error: the answer to [`Step::Fallback`] when no fallback exists (the
    /// strategy only asks for one when the site declared it, so this is a safety net).
    pub fn give_up<T>(&mut self) -> Result<T, E> {
        match self.slow.as_deref_mut() {
            Some(slow) => match slow.original.take() {
                Some(e) => Err(e),
                None => Err(self.take_error()),
            },
            None => unreachable_error(),
        }
    }

    // ----- the guarded path -----

    fn start_slow(&mut self) -> Option<&mut Decider> {
        if self.slow.is_none() {
            let healer = Healer::current()?;
            self.slow = Some(Box::new(Slow {
                decider: Decider::new(self.site, healer),
                original: None,
                rejection: None,
                panic: None,
                overran: false,
            }));
        }
        self.decider()
    }

    fn decider(&mut self) -> Option<&mut Decider> {
        self.slow.as_deref_mut().map(|s| &mut s.decider)
    }

    /// The typed slow state; only called once it exists.
    fn typed(&mut self) -> &mut Slow<E> {
        self.slow
            .as_deref_mut()
            .expect("self-healing: the slow state exists once a failure is being handled")
    }

    /// Whether this call can turn a rejection into an error of its own type (or be served by a
    /// fallback or cached value instead). If not, guards must let the call run.
    fn can_reject(&self) -> bool {
        let o = self.site.options();
        self.ops.reject.is_some() || o.fallback().is_some() || o.cache().is_some()
    }

    /// Guards before an attempt: the circuit, the bulkhead. `Err` means "do not run".
    fn admit(&mut self) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, Rejected> {
        let site = self.site;
        if site.flags() & flag::FRESH != 0 {
            site.clear_flag(flag::FRESH);
        }
        let can_reject = self.can_reject();
        let Some(slow) = self.start_slow() else {
            return Ok(None);
        };
        slow.begin_attempt();
        let flags = site.flags();
        if flags & flag::CIRCUIT != 0 {
            match slow.admit_circuit() {
                Admission::Reject if can_reject => {
                    return Err(Rejected::CircuitOpen {
                        source: site.source(),
                    });
                }
                Admission::Reject => slow.note_cannot_reject(),
                Admission::Allow | Admission::Probe => {}
            }
        }
        if flags & flag::TRACKED != 0 {
            slow.deposit_budget();
        }
        if flags & flag::BULKHEAD != 0 {
            match slow.try_bulkhead() {
                Some(permit) => return Ok(Some(permit)),
                None if can_reject => {
                    return Err(Rejected::Shed {
                        source: site.source(),
                        max_concurrent: slow.bulkhead_limit(),
                    });
                }
                None => slow.note_cannot_reject(),
            }
        }
        Ok(None)
    }

    async fn attempt_guarded<T, Fut>(&mut self, body: Fut) -> Attempt<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let permit = match self.admit() {
            Ok(permit) => permit,
            Err(rejected) => return Attempt::Rejected(Box::new(rejected)),
        };
        let site = self.site;
        let reject = self.ops.reject;
        let Some(slow) = self.slow.as_deref().map(|s| &s.decider) else {
            // No healer: the body runs as if unwrapped (faults injected all the same).
            let injection = inject::decide(site, 1, 0);
            if let Some(failed) = inject::apply(injection, site, reject).await {
                return failed;
            }
            return Attempt::Done(body.await);
        };
        let rerun = slow.attempts() > 1;
        let injection = inject::decide(site, slow.attempts(), slow.call_id());
        let options = *site.options();
        let run = async {
            let body = CatchUnwind::new(body, options.catch_panic());
            let work = async {
                match inject::apply(injection, site, reject).await {
                    Some(failed) => failed,
                    None => body.await,
                }
            };
            match options.timeout() {
                Some(limit) => match tokio::time::timeout(limit, work).await {
                    Ok(outcome) => outcome,
                    Err(_) => Attempt::Rejected(Box::new(Rejected::TimedOut {
                        source: site.source(),
                        after: limit,
                    })),
                },
                None => work.await,
            }
        };
        let attempt = if rerun {
            let span = slow.attempt_span();
            let attempt =
                tracing::Instrument::instrument(nesting::rerun_scope(run), span.clone()).await;
            span.record("outcome", attempt_outcome(&attempt));
            attempt
        } else {
            run.await
        };
        drop(permit);
        self.after_attempt(&attempt);
        attempt
    }

    #[cold]
    #[inline(never)]
    fn attempt_guarded_sync<T>(&mut self, body: impl FnOnce() -> Result<T, E>) -> Attempt<T, E> {
        let permit = match self.admit() {
            Ok(permit) => permit,
            Err(rejected) => return Attempt::Rejected(Box::new(rejected)),
        };
        let site = self.site;
        let reject = self.ops.reject;
        let Some(slow) = self.slow.as_deref().map(|s| &s.decider) else {
            let injection = inject::decide(site, 1, 0);
            if let Some(failed) =
                inject::apply_blocking(injection, site, reject, &std::thread::sleep)
            {
                return failed;
            }
            return Attempt::Done(body());
        };
        let rerun = slow.attempts() > 1;
        let injection = inject::decide(site, slow.attempts(), slow.call_id());
        let catch = site.options().catch_panic();
        let deadline = site.options().timeout();
        let started = deadline.map(|_| Instant::now());
        let sleep = slow.blocking_sleep();
        let run = || {
            if let Some(failed) = inject::apply_blocking(injection, site, reject, &*sleep) {
                return failed;
            }
            if catch {
                match std::panic::catch_unwind(AssertUnwindSafe(body)) {
                    Ok(result) => Attempt::Done(result),
                    Err(payload) => Attempt::Panicked(payload),
                }
            } else {
                Attempt::Done(body())
            }
        };
        let attempt = if rerun {
            let span = slow.attempt_span();
            let attempt = span.in_scope(|| nesting::rerun_scope_sync(run));
            span.record("outcome", attempt_outcome(&attempt));
            attempt
        } else {
            run()
        };
        drop(permit);
        // A sync body cannot be interrupted: the deadline is checked when it returns.
        if let (Some(limit), Some(started)) = (deadline, started) {
            self.typed().overran = started.elapsed() > limit;
        }
        self.after_attempt(&attempt);
        attempt
    }

    /// Feeds the breaker and the tracked mode with the attempt's result.
    fn after_attempt<T>(&mut self, attempt: &Attempt<T, E>) {
        let ok = matches!(attempt, Attempt::Done(Ok(_)));
        if let Some(slow) = self.decider() {
            slow.end_attempt(
                ok,
                matches!(
                    attempt,
                    Attempt::Rejected(r) if matches!(**r, Rejected::CircuitOpen { .. } | Rejected::Shed { .. })
                ),
            );
        }
    }

    // ----- settling -----

    /// Shared by sync and async: a successful attempt ends the call; a failed one is diagnosed
    /// and turned into the first candidate worth trying.
    fn on_attempt<T>(&mut self, attempt: Attempt<T, E>, cache: &dyn CacheAccess<T>) -> Flow<T, E> {
        let site = self.site;
        let (error, rejection, panic) = match attempt {
            Attempt::Done(Ok(value)) => {
                cache.put(self.cache_key, &value, site);
                if let Some(slow) = self.slow.as_deref_mut() {
                    slow.decider.finish_healed();
                    slow.original = None;
                    slow.rejection = None;
                }
                return Flow::Done(Step::Return(Ok(value)));
            }
            Attempt::Done(Err(e)) => (Some(e), None, None),
            Attempt::Rejected(r) => (None, Some(*r), None),
            Attempt::Panicked(payload) => {
                let r = Rejected::Panicked {
                    source: site.source(),
                    message: panic_message(&*payload),
                };
                (None, Some(r), Some(payload))
            }
        };
        if self.start_slow().is_none() {
            // No healer: the error goes back untouched.
            return Flow::Done(Step::Return(Err(match (error, rejection) {
                (Some(e), _) => e,
                (None, Some(r)) => self.reject_or_resume(r, panic),
                (None, None) => unreachable_error(),
            })));
        }
        let (has_fallback, has_cache) = self.capabilities();
        let view_fn = self.ops.view;
        let slow = self.typed();
        // Keep the latest error: it describes the state the caller will see.
        match (error, rejection) {
            (Some(e), _) => {
                slow.original = Some(e);
                slow.rejection = None;
            }
            (None, Some(r)) => {
                slow.rejection = Some(r);
                slow.panic = panic;
            }
            (None, None) => unreachable_error(),
        }
        let overran = std::mem::take(&mut slow.overran);
        let view: &(dyn std::error::Error + 'static) = match (&slow.rejection, &slow.original) {
            (Some(r), _) => r,
            (None, Some(e)) => view_fn(e),
            (None, None) => unreachable_error(),
        };
        if slow.decider.attempts() == 0 {
            slow.decider.count_unguarded_attempt();
        }
        let candidate = slow
            .decider
            .on_failure(view, overran, has_fallback, has_cache);
        self.resolve(candidate, cache)
    }

    fn capabilities(&self) -> (bool, bool) {
        let o = self.site.options();
        (o.fallback().is_some(), o.cache().is_some())
    }

    /// Turns a candidate into a step, looking cached values up on the way.
    fn resolve<T>(&mut self, mut candidate: Candidate, cache: &dyn CacheAccess<T>) -> Flow<T, E> {
        let (has_fallback, _) = self.capabilities();
        loop {
            match candidate {
                Candidate::Rerun(action) => return Flow::Act(action),
                Candidate::Fallback => return Flow::Done(Step::Fallback),
                Candidate::Cached => {
                    let found = cache.get(self.cache_key, self.site);
                    let slow = self.typed();
                    match found {
                        Some(value) => {
                            slow.decider.cached(true, has_fallback);
                            slow.original = None;
                            slow.rejection = None;
                            return Flow::Done(Step::Return(Ok(value)));
                        }
                        None => {
                            candidate = slow
                                .decider
                                .cached(false, has_fallback)
                                .expect("a miss moves on to the next candidate");
                        }
                    }
                }
                Candidate::GiveUp => return Flow::Done(Step::Return(Err(self.take_error()))),
            }
        }
    }

    /// The error to give back: the last error, or the last rejection as an error of type `E`.
    fn take_error(&mut self) -> E {
        let slow = self.typed();
        if let Some(r) = slow.rejection.take() {
            let panic = slow.panic.take();
            return self.reject_or_resume(r, panic);
        }
        match slow.original.take() {
            Some(e) => e,
            None => unreachable_error(),
        }
    }

    fn reject_or_resume(&self, rejection: Rejected, panic: Option<Box<dyn Any + Send>>) -> E {
        match (self.ops.reject, panic) {
            (Some(reject), _) => reject(rejection),
            (None, Some(payload)) => std::panic::resume_unwind(payload),
            // Guards only reject when the error type can say so (see `can_reject`).
            (None, None) => {
                panic!("self-healing: {rejection} (and the error type cannot represent it)")
            }
        }
    }

    async fn settle_slow<T>(
        &mut self,
        attempt: Attempt<T, E>,
        cache: &dyn CacheAccess<T>,
    ) -> Step<T, E> {
        let mut flow = self.on_attempt(attempt, cache);
        loop {
            let action = match flow {
                Flow::Done(step) => return step,
                Flow::Act(action) => action,
            };
            match self.typed().decider.perform(&action).await {
                Ok(()) => return self.rerun(),
                Err(why) => flow = self.after_failed_action(why, cache),
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn settle_slow_sync<T>(
        &mut self,
        attempt: Attempt<T, E>,
        cache: &dyn CacheAccess<T>,
    ) -> Step<T, E> {
        let mut flow = self.on_attempt(attempt, cache);
        loop {
            let action = match flow {
                Flow::Done(step) => return step,
                Flow::Act(action) => action,
            };
            match self.typed().decider.perform_blocking(&action) {
                Ok(()) => return self.rerun(),
                Err(why) => flow = self.after_failed_action(why, cache),
            }
        }
    }

    fn after_failed_action<T>(&mut self, why: String, cache: &dyn CacheAccess<T>) -> Flow<T, E> {
        let (has_fallback, has_cache) = self.capabilities();
        let candidate = self
            .typed()
            .decider
            .action_failed(why, has_fallback, has_cache);
        self.resolve(candidate, cache)
    }

    /// Before a re-run: a pending rejection is kept as an error of type `E` (when the type can
    /// hold one) so a later give-up has something to return.
    fn rerun<T>(&mut self) -> Step<T, E> {
        let reject = self.ops.reject;
        let slow = self.typed();
        if let (Some(r), Some(reject)) = (slow.rejection.take(), reject) {
            slow.original = Some(reject(r));
        }
        slow.panic = None;
        Step::Rerun
    }
}

/// Where settling stands.
enum Flow<T, E> {
    Done(Step<T, E>),
    Act(Action),
}

fn attempt_outcome<T, E>(attempt: &Attempt<T, E>) -> &'static str {
    match attempt {
        Attempt::Done(Ok(_)) => "healed",
        Attempt::Done(Err(_)) => "failed",
        Attempt::Rejected(_) => "rejected",
        Attempt::Panicked(_) => "panicked",
    }
}

#[cold]
fn unreachable_error() -> ! {
    panic!("self-healing: a failed attempt carried neither an error nor a rejection")
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
