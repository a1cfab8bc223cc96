//! The untyped half of the interceptor: per-call healing state, guards, diagnosis, the choice of a
//! strategy with its safety rails, and the call's event. The typed [`Driver`](crate::driver)
//! asks it what to do and carries it out.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::breaker::{Admission, CircuitState};
use crate::diagnosis::rules::chain_message_of;
use crate::diagnosis::{Diagnosis, ErrorClass, Failure};
use crate::event::{DiagnosisRecord, HealingEvent, Outcome, Step, StepResult};
use crate::healer::Healer;
use crate::hooks::{Hook, HookKind, HookRun};
use crate::nesting;
use crate::site::{Site, flag};
use crate::strategy::{Context, Plan, Strategy};

/// What the decider wants done next.
#[derive(Debug)]
pub(crate) enum Candidate {
    /// Wait, maybe run a hook or wait for a bulkhead slot, then re-run.
    Rerun(Action),
    /// Serve the declared fallback.
    Fallback,
    /// Serve a cached value (the typed side looks it up and reports back).
    Cached,
    /// Stop: the call fails with its error. The event has been recorded.
    GiveUp,
}

/// The work before a re-run.
#[derive(Debug)]
pub(crate) struct Action {
    pub(crate) delay: Duration,
    pub(crate) hook: Option<Arc<Hook>>,
    pub(crate) capacity: bool,
}

/// A strategy's action in flight: its outcome is credited to it, and only to it.
#[derive(Debug, Clone, Copy)]
struct Pending {
    strategy: &'static str,
    started: Instant,
}

/// Per-call state beyond the success path.
#[derive(Debug)]
pub(crate) struct Decider {
    site: &'static Site,
    healer: Healer,
    started: Instant,
    started_wall: SystemTime,
    attempts: u32,
    attempt_started: Instant,
    admission: Admission,
    max_attempts: u32,
    diagnosis: Option<Diagnosis>,
    message: String,
    ranked: Vec<Arc<dyn Strategy>>,
    cursor: usize,
    uses: Vec<(&'static str, u32)>,
    pending: Option<Pending>,
    last_actor: Option<&'static str>,
    steps: Vec<Step>,
    budget_spent: bool,
    escalated: bool,
    fast_failed: bool,
    /// The failed attempt was refused by the open circuit (the body did not run).
    refused_by_circuit: bool,
    /// The next attempt re-runs a failed probe after a repair hook: admit it as a probe.
    repaired_probe: bool,
    finished: bool,
}

impl Decider {
    pub(crate) fn new(site: &'static Site, healer: Healer) -> Self {
        let now = Instant::now();
        let max_attempts = site
            .options()
            .max_attempts()
            .unwrap_or(healer.inner.config.max_attempts);
        Decider {
            site,
            healer,
            started: now,
            started_wall: SystemTime::now(),
            attempts: 0,
            attempt_started: now,
            admission: Admission::Allow,
            max_attempts,
            diagnosis: None,
            message: String::new(),
            ranked: Vec::new(),
            cursor: 0,
            uses: Vec::new(),
            pending: None,
            last_actor: None,
            steps: Vec::new(),
            budget_spent: false,
            escalated: false,
            fast_failed: false,
            refused_by_circuit: false,
            repaired_probe: false,
            finished: false,
        }
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// A span for one healing attempt (a re-run), with its outcome recorded when it ends.
    pub(crate) fn attempt_span(&self) -> tracing::Span {
        tracing::info_span!(
            "self_healing.attempt",
            source = self.site.source(),
            category = self.site.category().as_str(),
            strategy = self.pending.map_or("none", |p| p.strategy),
            attempt = self.attempts,
            outcome = tracing::field::Empty,
        )
    }

    /// Counts an attempt that ran before the slow state existed (the first, unguarded one).
    pub(crate) fn count_unguarded_attempt(&mut self) {
        self.attempts += 1;
    }

    pub(crate) fn begin_attempt(&mut self) {
        self.attempts += 1;
        self.attempt_started = Instant::now();
        self.admission = Admission::Allow;
    }

    // ----- guards -----

    pub(crate) fn admit_circuit(&mut self) -> Admission {
        let config = self.healer.inner.config.breaker;
        let now = Instant::now();
        let repaired = std::mem::take(&mut self.repaired_probe);
        let admission = self.site.state().with_breaker(config, now, |b| {
            if repaired {
                b.admit_repaired_probe(now)
            } else {
                b.admit(now)
            }
        });
        self.admission = admission;
        admission
    }

    pub(crate) fn deposit_budget(&mut self) {
        let config = self.healer.inner.config.budget;
        let now = Instant::now();
        self.site
            .state()
            .with_budget(config, now, |b| b.deposit(now));
    }

    fn bulkhead(&self) -> Arc<tokio::sync::Semaphore> {
        let state = self.site.state();
        state
            .bulkhead
            .get_or_init(|| {
                let n = state.bulkhead_limit.load(Ordering::Relaxed).max(1) as usize;
                Arc::new(tokio::sync::Semaphore::new(n))
            })
            .clone()
    }

    pub(crate) fn bulkhead_limit(&self) -> usize {
        self.site.state().bulkhead_limit.load(Ordering::Relaxed) as usize
    }

    pub(crate) fn try_bulkhead(&self) -> Option<OwnedSemaphorePermit> {
        self.bulkhead().try_acquire_owned().ok()
    }

    pub(crate) fn note_cannot_reject(&self) {
        let state = self.site.state();
        if !state.cannot_reject.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                source = self.site.source(),
                "self-healing: this site's error type has no `From<self_healing::Rejected>`, so its \
                 circuit breaker and bulkhead cannot fail fast; the call runs anyway"
            );
        }
    }

    /// Feeds the breaker, the tracked mode and the checklist with an attempt's result.
    pub(crate) fn end_attempt(&mut self, ok: bool, rejected_by_guard: bool) {
        if rejected_by_guard {
            return;
        }
        let site = self.site;
        let now = Instant::now();
        let duration = now.saturating_duration_since(self.attempt_started);
        let tracked = site.flags() & (flag::TRACKED | flag::CIRCUIT) != 0;
        if !ok || tracked {
            let config = self.healer.inner.config.breaker;
            let (state, quiet) = site.state().with_breaker(config, now, |b| {
                let state = b.record(now, ok, duration);
                (state, b.is_quiet(now))
            });
            if state == CircuitState::Closed {
                site.clear_flag(flag::CIRCUIT);
            } else {
                site.set_flag(flag::CIRCUIT);
            }
            if !ok {
                site.set_flag(flag::TRACKED);
            } else if quiet {
                site.clear_flag(flag::TRACKED);
            }
        }
    }

    // ----- deciding -----

    /// Diagnoses a failed attempt and returns the first thing worth doing about it.
    pub(crate) fn on_failure(
        &mut self,
        error: &(dyn std::error::Error + 'static),
        overran: bool,
        has_fallback: bool,
        has_cache: bool,
    ) -> Candidate {
        let healer = self.healer.clone();
        if let Some(p) = self.pending.take() {
            let took = p.started.elapsed();
            healer
                .inner
                .patterns
                .record(self.fingerprint(), p.strategy, false, took);
            self.steps.push(acted(
                p.strategy,
                StepResult::Failed,
                took,
                "re-ran; failed again".into(),
            ));
        }
        let message = chain_message_of(error);
        let failure = Failure {
            site: self.site,
            error,
            message: &message,
            attempt: self.attempts.max(1),
            elapsed: self.started.elapsed(),
        };
        let mut diagnosis = healer.inner.analyzer.analyze(&failure);
        if overran && diagnosis.class.is_retryable() {
            diagnosis.class = ErrorClass::Timeout;
        }
        self.refused_by_circuit = matches!(
            error.downcast_ref::<crate::Rejected>(),
            Some(crate::Rejected::CircuitOpen { .. })
        );
        // Scrubbed by the event worker before anything is stored, shown or sent: that keeps the
        // scrubber's cost off the caller's error path.
        self.message = message;
        self.site.state().note_failure();
        let mut random = || healer.random();
        self.ranked = crate::selection::rank(
            &healer.inner.strategies,
            &diagnosis,
            &healer.inner.patterns,
            &mut random,
        )
        .into_iter()
        .cloned()
        .collect();
        self.cursor = 0;
        self.diagnosis = Some(diagnosis);
        self.next(has_fallback, has_cache)
    }

    fn fingerprint(&self) -> crate::diagnosis::Fingerprint {
        self.diagnosis
            .as_ref()
            .map_or(crate::diagnosis::Fingerprint(0), |d| d.fingerprint)
    }

    fn uses_of(&self, name: &'static str) -> u32 {
        self.uses
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, c)| *c)
    }

    fn count_use(&mut self, name: &'static str) {
        match self.uses.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => self.uses.push((name, 1)),
        }
    }

    /// The next candidate after the cursor; records why the others were passed over.
    pub(crate) fn next(&mut self, has_fallback: bool, has_cache: bool) -> Candidate {
        let healer = self.healer.clone();
        let config = &healer.inner.config;
        let Some(diagnosis) = self.diagnosis.clone() else {
            return self.give_up();
        };
        while self.cursor < self.ranked.len() {
            let strategy = self.ranked[self.cursor].clone();
            self.cursor += 1;
            let name = strategy.name();
            let elapsed = self.started.elapsed();
            let cx = Context {
                site: self.site,
                diagnosis: &diagnosis,
                attempt: self.attempts.max(1),
                max_attempts: self.max_attempts,
                elapsed,
                has_fallback,
                has_cache,
                has_bulkhead: self.site.flags() & flag::BULKHEAD != 0,
                has_reconnect_hook: healer.inner.hooks.has(HookKind::Reconnect, self.site),
                has_refresh_hook: healer
                    .inner
                    .hooks
                    .has(HookKind::RefreshCredentials, self.site),
                circuit_open: self.refused_by_circuit,
                uses: self.uses_of(name),
                backoff: config.backoff,
                random: healer.random(),
            };
            let plan = strategy.plan(&cx);
            let span = tracing::debug_span!(
                "self_healing.plan",
                source = self.site.source(),
                category = self.site.category().as_str(),
                strategy = name,
                attempt = self.attempts,
                class = diagnosis.class.as_str(),
            );
            let _entered = span.enter();
            match plan {
                Plan::NotApplicable(why) => self.steps.push(step(name, why)),
                Plan::Rerun { delay, hook } => {
                    if let Some(refusal) = self.refuse_rerun(&diagnosis, delay, hook.is_some()) {
                        self.steps.push(step(name, refusal));
                        continue;
                    }
                    let hook = match hook {
                        Some(kind) => match healer.inner.hooks.find(kind, self.site) {
                            Some(h) => Some(h.clone()),
                            None => {
                                self.steps
                                    .push(step(name, "its hook is not registered for this site"));
                                continue;
                            }
                        },
                        None => None,
                    };
                    if !self.withdraw_budget() {
                        self.steps
                            .push(step(name, "refused: the site's retry budget is spent"));
                        self.budget_spent = true;
                        continue;
                    }
                    tracing::debug!(delay_ms = delay.as_millis() as u64, "re-running");
                    self.repaired_probe = self.site.circuit() == CircuitState::Open;
                    self.act(name);
                    return Candidate::Rerun(Action {
                        delay,
                        hook,
                        capacity: false,
                    });
                }
                Plan::RerunWhenCapacity => {
                    if let Some(refusal) = self.refuse_rerun(&diagnosis, Duration::ZERO, false) {
                        self.steps.push(step(name, refusal));
                        continue;
                    }
                    if !self.withdraw_budget() {
                        self.steps
                            .push(step(name, "refused: the site's retry budget is spent"));
                        self.budget_spent = true;
                        continue;
                    }
                    self.act(name);
                    return Candidate::Rerun(Action {
                        delay: Duration::ZERO,
                        hook: None,
                        capacity: true,
                    });
                }
                Plan::Fallback if has_fallback => {
                    self.act(name);
                    return Candidate::Fallback;
                }
                Plan::Cached if has_cache => {
                    self.act(name);
                    return Candidate::Cached;
                }
                Plan::Fallback | Plan::Cached => {
                    self.steps.push(step(name, "not available for this site"));
                }
                Plan::FailFast => {
                    self.steps.push(step(name, "circuit open: failing fast"));
                    self.fast_failed = true;
                    self.last_actor = Some(name);
                    return self.give_up();
                }
                Plan::Escalate => {
                    self.steps
                        .push(step(name, "escalated: severity raised, admins notified"));
                    self.escalated = true;
                    self.last_actor = Some(name);
                    return self.give_up();
                }
            }
        }
        self.give_up()
    }

    /// Why a re-run must not happen now, if it must not. `repairs`: a hook runs before it.
    fn refuse_rerun(
        &self,
        diagnosis: &Diagnosis,
        delay: Duration,
        repairs: bool,
    ) -> Option<&'static str> {
        let config = &self.healer.inner.config;
        if self.attempts >= self.max_attempts {
            return Some("refused: attempt cap reached");
        }
        if self.started.elapsed() + delay > config.max_elapsed {
            return Some("refused: the call's time budget would be exceeded");
        }
        // An open circuit refuses re-runs, except one: a probe that ran and failed for a reason
        // a hook repairs on our side (an expired credential, a dropped pool). Its repaired
        // re-run is the next probe; refusing it would leave every later probe to meet the same
        // stale credential, and the circuit open for good.
        if self.site.circuit() == CircuitState::Open
            && !(repairs && self.admission == Admission::Probe)
        {
            return Some("refused: the circuit is open");
        }
        if !self.site.options().idempotent() && !diagnosis.never_reached {
            return Some("refused: not idempotent, and the call may have reached the other side");
        }
        if nesting::inside_rerun() {
            return Some("refused: an outer self-healing site is re-running this call");
        }
        None
    }

    fn withdraw_budget(&self) -> bool {
        let config = self.healer.inner.config.budget;
        let now = Instant::now();
        self.site
            .state()
            .with_budget(config, now, |b| b.withdraw(now))
    }

    fn act(&mut self, name: &'static str) {
        self.count_use(name);
        self.last_actor = Some(name);
        self.pending = Some(Pending {
            strategy: name,
            started: Instant::now(),
        });
    }

    /// The cached-value lookup's answer. `false` moves on to the next candidate.
    pub(crate) fn cached(&mut self, found: bool, has_fallback: bool) -> Option<Candidate> {
        if found {
            self.finish_healed();
            None
        } else {
            if let Some(p) = self.pending.take() {
                self.steps.push(step(
                    p.strategy,
                    "no fresh value cached for these arguments",
                ));
            }
            Some(self.next(has_fallback, true))
        }
    }

    /// A re-run's preparation failed (hook failed, no bulkhead slot): move on.
    pub(crate) fn action_failed(
        &mut self,
        why: String,
        has_fallback: bool,
        has_cache: bool,
    ) -> Candidate {
        if let Some(p) = self.pending.take() {
            self.steps.push(acted(
                p.strategy,
                StepResult::Skipped,
                Duration::ZERO,
                why.into(),
            ));
        }
        self.next(has_fallback, has_cache)
    }

    // ----- performing -----

    /// Waits, runs the hook, or waits for capacity, before a re-run.
    pub(crate) async fn perform(&self, action: &Action) -> Result<(), String> {
        if let Some(hook) = &action.hook
            && let HookRun::Failed(why) = hook
                .run(self.attempt_started, self.healer.inner.hooks.timeout)
                .await
        {
            return Err(format!("hook failed: {why}"));
        }
        if action.capacity {
            let wait = self
                .healer
                .inner
                .config
                .bulkhead_wait
                .max(Duration::from_millis(100));
            let permit = tokio::time::timeout(wait, self.bulkhead().acquire_owned()).await;
            // The slot is only awaited, not kept: the re-run acquires its own when it starts.
            return match permit {
                Ok(Ok(_)) => Ok(()),
                _ => Err("no bulkhead slot freed up in time".to_owned()),
            };
        }
        if !action.delay.is_zero() {
            tokio::time::sleep(action.delay).await;
        }
        Ok(())
    }

    /// [`perform`](Self::perform) for sync sites.
    pub(crate) fn perform_blocking(&self, action: &Action) -> Result<(), String> {
        if let Some(hook) = &action.hook
            && let HookRun::Failed(why) =
                hook.run_blocking(self.attempt_started, self.healer.inner.hooks.timeout)
        {
            return Err(format!("hook failed: {why}"));
        }
        if action.capacity {
            let wait = self
                .healer
                .inner
                .config
                .bulkhead_wait
                .max(Duration::from_millis(100));
            let deadline = Instant::now() + wait;
            let semaphore = self.bulkhead();
            while semaphore.available_permits() == 0 {
                if Instant::now() >= deadline {
                    return Err("no bulkhead slot freed up in time".to_owned());
                }
                (self.healer.inner.config.blocking_sleep)(Duration::from_millis(1));
            }
            return Ok(());
        }
        if !action.delay.is_zero() {
            (self.healer.inner.config.blocking_sleep)(action.delay);
        }
        Ok(())
    }

    // ----- finishing -----

    /// The call produced a good value.
    pub(crate) fn finish_healed(&mut self) {
        let Some(p) = self.pending.take() else {
            // A guarded call that never failed: nothing to record.
            return;
        };
        let took = p.started.elapsed();
        self.healer
            .inner
            .patterns
            .record(self.fingerprint(), p.strategy, true, took);
        self.steps
            .push(acted(p.strategy, StepResult::Healed, took, "healed".into()));
        self.site.state().note_healed();
        self.record(Outcome::Healed, Some(p.strategy));
    }

    /// The fallback ran: `healed` tells whether it produced a value.
    pub(crate) fn finish_fallback(&mut self, healed: bool, error: Option<String>) {
        if healed {
            self.finish_healed();
            return;
        }
        if let Some(p) = self.pending.take() {
            let took = p.started.elapsed();
            self.healer
                .inner
                .patterns
                .record(self.fingerprint(), p.strategy, false, took);
            let note = format!("fallback failed too: {}", error.unwrap_or_default());
            self.steps
                .push(acted(p.strategy, StepResult::Failed, took, note.into()));
        }
        self.give_up();
    }

    fn give_up(&mut self) -> Candidate {
        let outcome = if self.fast_failed {
            Outcome::FastFailed
        } else if self.escalated {
            Outcome::Failed
        } else if self.budget_spent {
            Outcome::BudgetExhausted
        } else if self.last_actor.is_some() {
            Outcome::Failed
        } else {
            Outcome::NotApplicable
        };
        self.record(outcome, self.last_actor);
        Candidate::GiveUp
    }

    fn record(&mut self, outcome: Outcome, strategy: Option<&'static str>) {
        if self.finished {
            return;
        }
        self.finished = true;
        let Some(diagnosis) = self.diagnosis.as_ref() else {
            return;
        };
        let severity = if self.escalated {
            diagnosis.severity.raised()
        } else {
            diagnosis.severity
        };
        let span = tracing::info_span!(
            "self_healing.outcome",
            source = self.site.source(),
            category = self.site.category().as_str(),
            strategy = strategy.unwrap_or("none"),
            attempt = self.attempts,
            outcome = outcome.as_str(),
        );
        let _entered = span.enter();
        tracing::info!(
            class = diagnosis.class.as_str(),
            severity = severity.as_str(),
            "self-healing outcome"
        );
        let event = HealingEvent {
            time: self.started_wall,
            instance: self.healer.inner.config.instance.clone(),
            source: Cow::Borrowed(self.site.source()),
            category: self.site.category(),
            fingerprint: diagnosis.fingerprint,
            class: diagnosis.class,
            message: std::mem::take(&mut self.message),
            severity,
            strategy: strategy.map(Cow::Borrowed),
            outcome,
            attempts: self.attempts,
            duration: self.started.elapsed(),
            diagnosis: DiagnosisRecord {
                analyzer: Cow::Borrowed(diagnosis.analyzer),
                confidence: diagnosis.confidence,
                reason: Cow::Borrowed(diagnosis.reason),
                never_reached: diagnosis.never_reached,
                steps: std::mem::take(&mut self.steps),
            },
            count: 1,
        };
        self.healer.inner.queue.push(event);
    }
}

/// A strategy that did not act.
fn step(strategy: &'static str, note: &'static str) -> Step {
    acted(
        strategy,
        StepResult::Skipped,
        Duration::ZERO,
        Cow::Borrowed(note),
    )
}

fn acted(
    strategy: &'static str,
    result: StepResult,
    took: Duration,
    note: Cow<'static, str>,
) -> Step {
    Step {
        strategy: Cow::Borrowed(strategy),
        result,
        took,
        note,
    }
}
