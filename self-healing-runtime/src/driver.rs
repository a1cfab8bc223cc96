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
//! The success path of a healthy site is one relaxed atomic load in `attempt`, a branch in
//! `settle` and one relaxed increment of the site's success counter: no allocation, no clock
//! read, no lock. Everything else (the "slow" state, the clock, the healer lookup) starts at the
//! first error or when the site's flags ask for guarding.
//!
//! Nothing here panics on a caller's behalf: an attempt the guards refused carries the function
//! that turns its [`Rejected`] into the call's error type, and guards only refuse when there is
//! one, so every way a call can end has a value of its own type to end with.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use tokio::time::Instant;

mod futures;
mod inject;
mod queue;

use futures::CatchUnwind;
pub use futures::{AttemptFuture, SettleFuture};

use crate::Rejected;
use crate::call_key::CallStart;
use crate::decide::{Action, Admit, Candidate, Decider};
use crate::error_ops::{ErrorOps, RejectFn};
use crate::healer::Healer;
use crate::nesting;
use crate::site::Site;
use crate::site_state::SiteState;

/// The result of one attempt.
#[derive(Debug)]
pub enum Attempt<T, E> {
    /// The body ran to completion.
    Done(Result<T, E>),
    /// The body did not run (circuit open, bulkhead full, Retry-After, an injected fault) or was
    /// cancelled (timeout), with the conversion of the rejection into the call's error type.
    /// Boxed: it only happens on the guarded path, and a small `Attempt` keeps the success path
    /// in registers.
    Rejected(Box<(Rejected, RejectFn<E>)>),
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
/// The cache is the healer's (each healer keeps its own values), reached through the call's
/// decider; a call with no healer keeps nothing.
pub(crate) trait CacheAccess<T>: Sync {
    fn put(&self, driver_key: u64, value: &T, site: &'static Site, state: &SiteState);
    fn get(&self, driver_key: u64, site: &'static Site, state: &SiteState) -> Option<T>;
}

struct NoCache;
impl<T> CacheAccess<T> for NoCache {
    fn put(&self, _: u64, _: &T, _: &'static Site, _: &SiteState) {}
    fn get(&self, _: u64, _: &'static Site, _: &SiteState) -> Option<T> {
        None
    }
}

struct SiteCache;
impl<T: Clone + Send + Sync + 'static> CacheAccess<T> for SiteCache {
    fn put(&self, key: u64, value: &T, _: &'static Site, state: &SiteState) {
        state.cache_put(key, value, Instant::now());
    }
    fn get(&self, key: u64, site: &'static Site, state: &SiteState) -> Option<T> {
        let max_age = site.options().cache()?;
        state
            .cache_get::<T>(key, max_age, Instant::now())
            .map(|(v, _)| v)
    }
}

/// The latest failure of a call: what is returned if healing does not produce a value.
#[derive(Debug)]
enum Last<E> {
    /// An error of the call's own type.
    Error(E),
    /// A rejection, with its conversion into the call's error type.
    Rejected(Rejected, RejectFn<E>),
    /// A panic of the body that the error type cannot carry: it is resumed.
    Panic(Rejected, Box<dyn Any + Send>),
}

impl<E> Last<E> {
    /// The failure as an error to diagnose.
    fn view<'a>(
        &'a self,
        view: crate::error_ops::ViewFn<E>,
    ) -> &'a (dyn std::error::Error + 'static) {
        match self {
            Last::Error(e) => view(e),
            Last::Rejected(r, _) | Last::Panic(r, _) => r,
        }
    }

    /// The error to give the caller.
    fn into_error(self) -> E {
        match self {
            Last::Error(e) => e,
            Last::Rejected(r, reject) => reject(r),
            // The body's own panic goes on, as it would have without the attribute.
            Last::Panic(_, payload) => std::panic::resume_unwind(payload),
        }
    }
}

/// Per-call state of the typed interceptor. Created by generated code; see the module docs.
///
/// `S` is where the state beyond the success path lives: boxed by default, so that the success
/// path only initialises and drops one null pointer and a generated function's future stays
/// small; inline where the driver itself lives on the stack or in a future that is boxed
/// already (the `heal` functions and plain sync sites), which saves that allocation.
#[derive(Debug)]
pub struct Driver<E, S: SlowSlot<E> = Option<Box<Slow<E>>>> {
    site: &'static Site,
    ops: ErrorOps<E>,
    cache_key: u64,
    /// The call's idempotency key (keyed sites only).
    start: Option<CallStart>,
    /// Whether a fallback function answers [`Step::Fallback`] (the `heal` functions have none).
    fallback: bool,
    /// Everything beyond the success path.
    slow: S,
    _error: std::marker::PhantomData<fn() -> E>,
}

/// Where a [`Driver`] keeps the state beyond the success path. Sealed: implemented for
/// `Option<Box<Slow<E>>>` (boxed) and `Option<Slow<E>>` (inline).
pub trait SlowSlot<E>: sealed::Sealed + Default {
    #[doc(hidden)]
    fn get(&self) -> Option<&Slow<E>>;
    #[doc(hidden)]
    fn get_mut(&mut self) -> Option<&mut Slow<E>>;
    #[doc(hidden)]
    fn fill(&mut self, slow: Slow<E>);
}

mod sealed {
    pub trait Sealed {}
    impl<E> Sealed for Option<Box<super::Slow<E>>> {}
    impl<E> Sealed for Option<super::Slow<E>> {}
}

impl<E> SlowSlot<E> for Option<Box<Slow<E>>> {
    #[inline(always)]
    fn get(&self) -> Option<&Slow<E>> {
        self.as_deref()
    }
    #[inline(always)]
    fn get_mut(&mut self) -> Option<&mut Slow<E>> {
        self.as_deref_mut()
    }
    fn fill(&mut self, slow: Slow<E>) {
        *self = Some(Box::new(slow));
    }
}

impl<E> SlowSlot<E> for Option<Slow<E>> {
    #[inline(always)]
    fn get(&self) -> Option<&Slow<E>> {
        self.as_ref()
    }
    #[inline(always)]
    fn get_mut(&mut self) -> Option<&mut Slow<E>> {
        self.as_mut()
    }
    fn fill(&mut self, slow: Slow<E>) {
        *self = Some(slow);
    }
}

/// The typed part of the state beyond the success path. Opaque: only the driver reads it.
#[derive(Debug)]
pub struct Slow<E> {
    decider: Decider,
    /// The latest failure of the call.
    last: Option<Last<E>>,
    /// The latest sync attempt overran the site's timeout.
    overran: bool,
}

impl<E> Driver<E> {
    /// A driver for one call of `site`, its slow state boxed (what generated code uses).
    #[inline(always)]
    pub fn new(site: &'static Site, ops: ErrorOps<E>) -> Self {
        Driver::in_slot(site, ops)
    }
}

impl<E, S: SlowSlot<E>> Driver<E, S> {
    /// A driver for one call of `site`, its slow state kept in `S`.
    #[inline(always)]
    pub(crate) fn in_slot(site: &'static Site, ops: ErrorOps<E>) -> Self {
        Driver {
            site,
            ops,
            cache_key: 0,
            start: None,
            fallback: site.options().answer().is_some(),
            slow: S::default(),
            _error: std::marker::PhantomData,
        }
    }

    /// A driver for a call whose caller has no fallback function to call, whatever the site
    /// declares (the `heal` functions).
    #[inline(always)]
    pub(crate) fn without_fallback(site: &'static Site, ops: ErrorOps<E>) -> Self {
        Driver {
            fallback: false,
            ..Driver::in_slot(site, ops)
        }
    }

    /// Gives the call its idempotency key (keyed sites: generated code draws it once per call).
    #[inline]
    pub fn set_call_start(&mut self, start: CallStart) {
        self.start = Some(start);
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
        if self.slow.get().is_none() && self.site.flags() == 0 {
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
        if self.slow.get().is_none() && self.site.flags() == 0 {
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
            Attempt::Done(Ok(v)) if self.slow.get().is_none() => {
                self.site.count_ok();
                SettleFuture::Ready {
                    step: Some(Step::Return(Ok(v))),
                }
            }
            other => SettleFuture::Slow {
                slow: self.settle_boxed(other),
            },
        }
    }

    /// [`attempt`](Self::attempt) for callers whose own future is boxed already (the `heal`
    /// functions' slow path): the guarded attempt is awaited in place, not boxed again.
    pub(crate) async fn attempt_in_place<T, Fut>(&mut self, body: Fut) -> Attempt<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        if self.slow.get().is_none() && self.site.flags() == 0 {
            return Attempt::Done(body.await);
        }
        self.attempt_guarded(body).await
    }

    /// [`settle`](Self::settle) for callers whose own future is boxed already.
    pub(crate) async fn settle_in_place<T>(&mut self, attempt: Attempt<T, E>) -> Step<T, E> {
        match attempt {
            Attempt::Done(Ok(v)) if self.slow.get().is_none() => {
                self.site.count_ok();
                Step::Return(Ok(v))
            }
            other => self.settle_slow(other, &NoCache).await,
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
            Attempt::Done(Ok(v)) if self.slow.get().is_none() => {
                self.site.count_ok();
                Step::Return(Ok(v))
            }
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
    /// call's own error is returned (it says more about what went wrong than the fallback's).
    pub fn settle_fallback<T>(&mut self, result: Result<T, E>) -> Result<T, E> {
        let healed = result.is_ok();
        let view = self.ops.view;
        let Some(slow) = self.slow.get_mut() else {
            return result;
        };
        let note = match &result {
            Ok(_) => None,
            // The scrubber's window, not the cap: the event worker scrubs, then cuts.
            Err(e) => Some(crate::diagnosis::rules::chain_window_of(view(e))),
        };
        slow.decider.finish_fallback(healed, note);
        match (result, slow.last.take()) {
            (Ok(v), _) => Ok(v),
            (Err(_), Some(last)) => Err(last.into_error()),
            (Err(fallback_error), None) => Err(fallback_error),
        }
    }

    /// After [`Step::Fallback`]: the call as it failed, for a caller that has a fallback to
    /// call (or none, and gives up). `None` when nothing failed (the loop should re-run).
    pub(crate) fn into_failed(mut self) -> Result<FailedCall<E, S>, Self> {
        match self.slow.get_mut().and_then(|s| s.last.take()) {
            Some(last) => Ok(FailedCall { driver: self, last }),
            None => Err(self),
        }
    }

    // ----- the guarded path -----

    fn start_slow(&mut self) -> Option<&mut Slow<E>> {
        if self.slow.get().is_none() {
            let healer = Healer::current()?;
            let mut decider = Decider::new(self.site, healer);
            if let Some(start) = self.start {
                decider.set_call_key(start.key, start.replay);
            }
            self.slow.fill(Slow {
                decider,
                last: None,
                overran: false,
            });
        }
        self.slow.get_mut()
    }

    /// Asks the guards about the next attempt; `None` when there is no healer (the body runs as
    /// if unwrapped).
    fn admit(&mut self) -> Option<Admit> {
        let site = self.site;
        if site.flags() & crate::site::flag::FRESH != 0 {
            // The site's first call: what the checklist calls exercised, and where its
            // success counter starts.
            site.mark_called(Instant::now());
        }
        // Guards refuse a call only when its error type can say so, and the site did not opt
        // out (`fail_fast = false`).
        let can_reject = self.ops.reject.is_some() && site.options().fail_fast();
        let slow = self.start_slow()?;
        Some(slow.decider.admit(can_reject))
    }

    async fn attempt_guarded<T, Fut>(&mut self, body: Fut) -> Attempt<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let site = self.site;
        let reject = self.ops.reject;
        let permit = loop {
            match self.admit() {
                None => {
                    // No healer: the body runs as if unwrapped (faults injected all the same).
                    let injection = inject::decide(site, 1, 0);
                    if let Some(failed) = inject::apply(injection, site, self.ops).await {
                        return failed;
                    }
                    return Attempt::Done(body.await);
                }
                // Boxed: pacing is rare, and an unboxed timer would make every call's future
                // larger.
                Some(Admit::Wait(wait)) => Box::pin(tokio::time::sleep(wait)).await,
                Some(Admit::Reject(rejected)) => match reject {
                    Some(reject) => return Attempt::Rejected(Box::new((rejected, reject))),
                    // Guards refuse only calls whose error type can say so; should one not,
                    // the call runs.
                    None => break None,
                },
                Some(Admit::Run(permit)) => break permit,
            }
        };
        let Some(slow) = self.slow.get().map(|s| &s.decider) else {
            return Attempt::Done(body.await);
        };
        let rerun = slow.attempts() > 1;
        let injection = inject::decide(site, slow.attempts(), slow.call_id());
        let options = *site.options();
        // A timed-out attempt needs an error of the call's type to end with.
        let timeout = match (slow.settings().timeout, reject) {
            (Some(limit), Some(reject)) => Some((limit, reject)),
            (Some(_), None) => {
                slow.note_cannot_reject();
                None
            }
            (None, _) => None,
        };
        let run = async {
            let body = CatchUnwind::new(body, options.catch_panic());
            let work = async {
                match inject::apply(injection, site, self.ops).await {
                    Some(failed) => failed,
                    None => body.await,
                }
            };
            match timeout {
                // Boxed: only `timeout` sites need the timer, and it would make every call's
                // future larger.
                Some((limit, reject)) => match Box::pin(tokio::time::timeout(limit, work)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Attempt::Rejected(Box::new((
                        Rejected::TimedOut {
                            source: site.source(),
                            after: limit,
                        },
                        reject,
                    ))),
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
        attempt
    }

    #[cold]
    #[inline(never)]
    fn attempt_guarded_sync<T>(&mut self, body: impl FnOnce() -> Result<T, E>) -> Attempt<T, E> {
        let site = self.site;
        let reject = self.ops.reject;
        let permit = loop {
            match self.admit() {
                None => {
                    let injection = inject::decide(site, 1, 0);
                    if let Some(failed) =
                        inject::apply_blocking(injection, site, self.ops, &std::thread::sleep)
                    {
                        return failed;
                    }
                    return Attempt::Done(body());
                }
                Some(Admit::Wait(wait)) => match self.slow.get() {
                    Some(s) => (s.decider.blocking_sleep())(wait),
                    None => std::thread::sleep(wait),
                },
                Some(Admit::Reject(rejected)) => match reject {
                    Some(reject) => return Attempt::Rejected(Box::new((rejected, reject))),
                    None => break None,
                },
                Some(Admit::Run(permit)) => break permit,
            }
        };
        let Some(slow) = self.slow.get().map(|s| &s.decider) else {
            return Attempt::Done(body());
        };
        let rerun = slow.attempts() > 1;
        let injection = inject::decide(site, slow.attempts(), slow.call_id());
        let ops = self.ops;
        let catch = site.options().catch_panic();
        let deadline = slow.settings().timeout;
        let started = deadline.map(|_| Instant::now());
        let sleep = slow.blocking_sleep();
        let run = || {
            if let Some(failed) = inject::apply_blocking(injection, site, ops, &*sleep) {
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
        if let (Some(limit), Some(started), Some(slow)) = (deadline, started, self.slow.get_mut()) {
            slow.overran = started.elapsed() > limit;
        }
        attempt
    }

    // ----- settling -----

    /// Shared by sync and async: a successful attempt ends the call; a failed one is diagnosed
    /// and turned into the first candidate worth trying.
    fn on_attempt<T>(&mut self, attempt: Attempt<T, E>, cache: &dyn CacheAccess<T>) -> Flow<T, E> {
        let site = self.site;
        let last = match attempt {
            Attempt::Done(Ok(value)) => {
                match self.slow.get_mut() {
                    Some(slow) => {
                        cache.put(self.cache_key, &value, site, slow.decider.state());
                        slow.decider.on_success();
                        slow.last = None;
                    }
                    None => site.count_ok(),
                }
                return Flow::Done(Step::Return(Ok(value)));
            }
            Attempt::Done(Err(e)) => Last::Error(e),
            Attempt::Rejected(boxed) => {
                let (r, reject) = *boxed;
                Last::Rejected(r, reject)
            }
            Attempt::Panicked(payload) => {
                let r = Rejected::Panicked {
                    source: site.source(),
                    message: panic_message(&*payload),
                };
                match self.ops.reject {
                    Some(reject) => Last::Rejected(r, reject),
                    None => Last::Panic(r, payload),
                }
            }
        };
        let view = self.ops.view;
        let rolled_back = crate::rollback::take_mark();
        let (has_fallback, has_cache) = self.capabilities();
        let Some(slow) = self.start_slow() else {
            // No healer: the error goes back untouched.
            return Flow::Done(Step::Return(Err(last.into_error())));
        };
        let overran = std::mem::take(&mut slow.overran);
        if slow.decider.attempts() == 0 {
            slow.decider.count_unguarded_attempt();
        }
        // Keep the latest failure: it describes the state the caller will see.
        let Slow {
            decider,
            last: kept,
            ..
        } = slow;
        let failure = kept.insert(last);
        let candidate = decider.on_failure(
            failure.view(view),
            overran,
            rolled_back,
            has_fallback,
            has_cache,
        );
        self.resolve(candidate, cache)
    }

    /// What the site can answer with besides a re-run: a fallback function the caller will
    /// call, and cached values.
    fn capabilities(&self) -> (bool, bool) {
        (self.fallback, self.site.options().cache().is_some())
    }

    /// Turns a candidate into a step, looking cached values up on the way.
    fn resolve<T>(&mut self, mut candidate: Candidate, cache: &dyn CacheAccess<T>) -> Flow<T, E> {
        loop {
            match candidate {
                Candidate::Rerun(action) => return Flow::Act(action),
                Candidate::Fallback => return Flow::Done(Step::Fallback),
                Candidate::Cached => {
                    let Some(slow) = self.slow.get_mut() else {
                        return Flow::Done(Step::Rerun);
                    };
                    let found = cache.get(self.cache_key, self.site, slow.decider.state());
                    let healed = found.is_some();
                    let Slow { decider, last, .. } = slow;
                    let Some(failure) = last.as_ref() else {
                        return Flow::Done(Step::Rerun);
                    };
                    match decider.cached(healed, failure.view(self.ops.view)) {
                        Some(next) => candidate = next,
                        None => {
                            slow.last = None;
                            return match found {
                                Some(value) => Flow::Done(Step::Return(Ok(value))),
                                None => Flow::Done(Step::Rerun),
                            };
                        }
                    }
                }
                Candidate::GiveUp => {
                    return match self.slow.get_mut().and_then(|s| s.last.take()) {
                        Some(last) => Flow::Done(Step::Return(Err(last.into_error()))),
                        // Nothing failed: run the body rather than invent an error.
                        None => Flow::Done(Step::Rerun),
                    };
                }
            }
        }
    }

    /// What follows an action: the re-run it prepared, the failure a hook-then-fail plan ends
    /// in, or (when it failed) the next candidate.
    fn after_action<T>(
        &mut self,
        action: &Action,
        done: Result<(), String>,
        cache: &dyn CacheAccess<T>,
    ) -> Flow<T, E> {
        let view = self.ops.view;
        let Some(Slow { decider, last, .. }) = self.slow.get_mut() else {
            return Flow::Done(Step::Rerun);
        };
        let candidate = match (done, last.as_ref()) {
            (Ok(()), _) if !action.then_fail => return Flow::Done(Step::Rerun),
            (Ok(()), _) => decider.hook_then_fail_done(),
            (Err(why), Some(failure)) => decider.action_failed(why, failure.view(view)),
            (Err(_), None) => return Flow::Done(Step::Rerun),
        };
        self.resolve(candidate, cache)
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
            let Some(slow) = self.slow.get_mut() else {
                return Step::Rerun;
            };
            let done = slow.decider.perform(&action).await;
            flow = self.after_action(&action, done, cache);
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
            let Some(slow) = self.slow.get_mut() else {
                return Step::Rerun;
            };
            let done = slow.decider.perform_blocking(&action);
            flow = self.after_action(&action, done, cache);
        }
    }
}

/// A call whose healing chose its fallback: [`settle_fallback`](Self::settle_fallback) takes the
/// fallback's result, [`give_up`](Self::give_up) ends the call with its error when there is no
/// fallback to call.
#[derive(Debug)]
pub struct FailedCall<E, S: SlowSlot<E> = Option<Box<Slow<E>>>> {
    driver: Driver<E, S>,
    last: Last<E>,
}

impl<E, S: SlowSlot<E>> FailedCall<E, S> {
    /// Takes the fallback's result: a good value heals the call; otherwise the call's own error
    /// is returned (it says more about what went wrong than the fallback's).
    pub fn settle_fallback<T>(self, result: Result<T, E>) -> Result<T, E> {
        let FailedCall { mut driver, last } = self;
        let healed = result.is_ok();
        let note = match &result {
            Ok(_) => None,
            // The scrubber's window, not the cap: the event worker scrubs, then cuts.
            Err(e) => Some(crate::diagnosis::rules::chain_window_of((driver.ops.view)(
                e,
            ))),
        };
        if let Some(slow) = driver.slow.get_mut() {
            slow.decider.finish_fallback(healed, note);
        }
        match result {
            Ok(v) => Ok(v),
            Err(_) => Err(last.into_error()),
        }
    }

    /// Ends the call with its error.
    pub fn give_up<T>(self) -> Result<T, E> {
        let FailedCall { mut driver, last } = self;
        if let Some(slow) = driver.slow.get_mut() {
            slow.decider.finish_fallback(false, None);
        }
        Err(last.into_error())
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

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
