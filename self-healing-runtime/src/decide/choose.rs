//! Diagnosing a failure and choosing what to do about it: the ranked strategies, each plan
//! passed through the safety rails.

use std::time::Duration;

use tokio::time::Instant;

use super::{Action, Candidate, Decider, Pending, acted, step};
use crate::breaker::{self, CircuitState};
use crate::diagnosis::rules::{analysed_part, chain_window_of};
use crate::diagnosis::{Diagnosis, ErrorClass, Failure};
use crate::event::StepResult;
use crate::hooks::HookKind;
use crate::nesting;
use crate::selection::{Cost, Ranked};
use crate::site::flag;
use crate::strategy::{Context, Plan};

/// The wait the dependency asked for with this failure, if any (Retry-After), whatever its
/// class: a 429's, and a 503's too.
pub(crate) fn retry_after(diagnosis: &Diagnosis) -> Option<Duration> {
    match diagnosis.class {
        ErrorClass::RateLimited { retry_after } => retry_after.or(diagnosis.retry_after),
        _ => diagnosis.retry_after,
    }
}

impl Decider {
    /// Diagnoses a failed attempt and returns the first thing worth doing about it.
    pub(crate) fn on_failure(
        &mut self,
        error: &(dyn std::error::Error + 'static),
        overran: bool,
        rolled_back: bool,
        has_fallback: bool,
        has_cache: bool,
    ) -> Candidate {
        self.rolled_back = rolled_back;
        let now = Instant::now();
        self.now = now;
        self.elapsed = now.saturating_duration_since(self.started);
        self.last_attempt = now.saturating_duration_since(self.attempt_started);
        let healer = self.healer.clone();
        if let Some(p) = self.pending.take() {
            let took = now.saturating_duration_since(p.started);
            self.failed[p.index] = self.failed[p.index].saturating_add(1);
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
        // The message is kept for the event; the event worker scrubs it before anything is
        // stored, shown or sent, which keeps the scrubber's cost off the caller's error path.
        // It is kept longer than the cap (the scrubber's window): cut before scrubbing, a
        // secret straddling the cap would lose its shape and half of it would be stored.
        self.message = chain_window_of(error);
        let failure = Failure {
            site: self.site,
            error,
            message: analysed_part(&self.message),
            attempt: self.attempts.max(1),
            elapsed: now.saturating_duration_since(self.started),
        };
        let mut diagnosis = healer.inner.analyzer.analyze(&failure);
        if overran && diagnosis.class.is_retryable() {
            diagnosis.class = ErrorClass::Timeout;
        }
        let refusal = error.downcast_ref::<crate::Rejected>().filter(|r| {
            matches!(
                r,
                crate::Rejected::CircuitOpen { .. }
                    | crate::Rejected::Shed { .. }
                    | crate::Rejected::Paced { .. }
            )
        });
        self.refused_by_guard = refusal.is_some();
        self.refused_by_circuit = matches!(refusal, Some(crate::Rejected::CircuitOpen { .. }));
        if self.admission == crate::breaker::Admission::Probe && !self.refused_by_guard {
            let healthy = breaker::verdict(diagnosis.class) != breaker::Verdict::Unhealthy;
            self.probe_result(now, healthy);
        }
        if let Some(after) = retry_after(&diagnosis) {
            // The floor under this call's re-runs, whatever strategy runs them.
            let until = crate::clock::after(now, after);
            self.not_before = Some(self.not_before.map_or(until, |t| t.max(until)));
            // A 429 is a quota's answer: pace the site's other callers to it. A 503 with
            // Retry-After asks this call to wait, and says nothing of a quota: a dependency
            // that answers a few random calls so would otherwise ratchet the site's pace down
            // to a call a second (the lab's `throttled-3`). Its unavailability is the circuit's
            // business.
            if !self.refused_by_guard && matches!(diagnosis.class, ErrorClass::RateLimited { .. }) {
                self.state.push_back(self.site, now, after);
            }
        }
        self.state.note_failure(self.wall_now());
        if self.attempts <= 1 || self.diagnosis.is_none() {
            let hooks = &healer.inner.hooks;
            self.reconnect_hook = hooks.has(HookKind::Reconnect, self.site);
            self.refresh_hook = hooks.has(HookKind::RefreshCredentials, self.site);
        }
        self.diagnosis = Some(diagnosis);
        self.has_fallback = has_fallback;
        self.has_cache = has_cache;
        self.rank(error, has_fallback, has_cache);
        self.next(error, has_fallback, has_cache)
    }

    pub(super) fn fingerprint(&self) -> crate::diagnosis::Fingerprint {
        self.diagnosis
            .as_ref()
            .map_or(crate::diagnosis::Fingerprint(0), |d| d.fingerprint)
    }

    /// What strategy `i` sees when asked for a plan.
    fn context<'a>(
        &'a self,
        i: usize,
        diagnosis: &'a Diagnosis,
        error: &'a (dyn std::error::Error + 'static),
        has_fallback: bool,
        has_cache: bool,
    ) -> Context<'a> {
        Context {
            site: self.site,
            diagnosis,
            error,
            call_key: self.call_key,
            replay: self.replay,
            rolled_back: self.rolled_back,
            hooks: &self.healer.inner.hooks,
            attempt: self.attempts.max(1),
            max_attempts: self.max_attempts,
            elapsed: self.elapsed,
            has_fallback,
            has_cache,
            has_bulkhead: self.state.held() & flag::BULKHEAD != 0,
            has_reconnect_hook: self.reconnect_hook,
            has_refresh_hook: self.refresh_hook,
            circuit_open: self.refused_by_circuit,
            uses: u32::from(self.uses[i]),
            backoff: self.settings.backoff,
            random: self.random(),
        }
    }

    /// How long the dependency still asks this call to wait before it comes back.
    fn retry_after_floor(&self, now: Instant) -> Duration {
        self.not_before
            .map_or(Duration::ZERO, |until| until.saturating_duration_since(now))
    }

    /// Ranks the strategies that apply to the current diagnosis by learned heal rate and cost.
    fn rank(
        &mut self,
        error: &(dyn std::error::Error + 'static),
        has_fallback: bool,
        has_cache: bool,
    ) {
        let Some(diagnosis) = self.diagnosis.clone() else {
            return;
        };
        let floor = self.retry_after_floor(self.now);
        let healer = self.healer.clone();
        let strategies = &healer.inner.strategies;
        let mut reruns = [false; crate::selection::MAX_STRATEGIES];
        let mut cost = |i: usize| {
            let plan =
                strategies[i].plan(&self.context(i, &diagnosis, error, has_fallback, has_cache));
            reruns[i] = matches!(plan, Plan::Rerun { .. } | Plan::RerunWhenCapacity);
            self.cost_of(i, &plan, floor)
        };
        let mut random = || self.random();
        let mut ranked = Ranked::new();
        crate::selection::rank(
            strategies,
            &diagnosis,
            &healer.inner.patterns,
            &mut cost,
            &mut random,
            &mut ranked,
        );
        self.ranked = ranked;
        self.reruns = reruns;
        self.cursor = 0;
    }

    /// What acting on `plan` costs: its wait (never shorter than the Retry-After floor) and the
    /// re-run it asks for (as long as the attempt that just failed), or nothing for answers
    /// that need no call of the dependency. `None` when the plan is not to act.
    fn cost_of(&self, i: usize, plan: &Plan, floor: Duration) -> Option<Cost> {
        let failed_in_call = self.failed[i];
        match plan {
            Plan::NotApplicable(_) => None,
            Plan::Rerun { delay, hook } => Some(Cost {
                time: (*delay).max(floor).saturating_add(self.last_attempt),
                // Switching endpoints touches nothing shared but a pointer: not a repair's
                // cost.
                hook: hook.is_some_and(|h| h != HookKind::SwitchEndpoint),
                failed_in_call,
            }),
            Plan::RerunWhenCapacity => Some(Cost {
                time: self
                    .settings
                    .bulkhead_wait
                    .saturating_add(self.last_attempt),
                hook: false,
                failed_in_call,
            }),
            _ => Some(Cost {
                time: Duration::ZERO,
                hook: false,
                failed_in_call,
            }),
        }
    }

    /// The next candidate after the cursor; records why the others were passed over.
    pub(crate) fn next(
        &mut self,
        error: &(dyn std::error::Error + 'static),
        has_fallback: bool,
        has_cache: bool,
    ) -> Candidate {
        let healer = self.healer.clone();
        let Some(diagnosis) = self.diagnosis.clone() else {
            return self.give_up();
        };
        while let Some(i) = self.ranked.get(self.cursor) {
            self.cursor += 1;
            let strategy = &healer.inner.strategies[i];
            let name = strategy.name();
            let plan = strategy.plan(&self.context(i, &diagnosis, error, has_fallback, has_cache));
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
                // A guard that does not apply (a closed circuit) is not worth a line.
                Plan::NotApplicable(_) if strategy.is_guard() => {}
                Plan::NotApplicable(why) => self.steps.push(step(name, why)),
                Plan::Rerun { delay, hook } => {
                    if let Some(action) = self.prepare_rerun(i, name, &diagnosis, delay, hook) {
                        return Candidate::Rerun(action);
                    }
                }
                Plan::RerunWhenCapacity => {
                    if self.refused(name, &diagnosis, Duration::ZERO, false)
                        || !self.take_budget(name)
                    {
                        continue;
                    }
                    self.act(i, name, true);
                    return Candidate::Rerun(Action {
                        delay: Duration::ZERO,
                        hook: None,
                        capacity: true,
                        then_fail: false,
                    });
                }
                Plan::Fallback if has_fallback => {
                    self.act(i, name, false);
                    return Candidate::Fallback;
                }
                Plan::Cached if has_cache => {
                    self.act(i, name, false);
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
                Plan::RunHookThenFail(kind) => {
                    match self.healer.inner.hooks.find(kind, self.site) {
                        Some(hook) => {
                            let hook = hook.clone();
                            self.act(i, name, false);
                            return Candidate::Rerun(Action {
                                delay: Duration::ZERO,
                                hook: Some(hook),
                                capacity: false,
                                then_fail: true,
                            });
                        }
                        None => self
                            .steps
                            .push(step(name, "its hook is not registered for this site")),
                    }
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

    /// A re-run through the rails: the Retry-After floor, the caps, the hook, the budget.
    fn prepare_rerun(
        &mut self,
        i: usize,
        name: &'static str,
        diagnosis: &Diagnosis,
        delay: Duration,
        hook: Option<HookKind>,
    ) -> Option<Action> {
        // Retry-After is a floor for every strategy: never sooner than the dependency asked.
        let delay = delay.max(self.retry_after_floor(self.now));
        if self.refused(name, diagnosis, delay, hook.is_some()) {
            return None;
        }
        let hook = match hook {
            Some(kind) => match self.healer.inner.hooks.find(kind, self.site) {
                Some(h) => Some(h.clone()),
                None => {
                    self.steps
                        .push(step(name, "its hook is not registered for this site"));
                    return None;
                }
            },
            None => None,
        };
        if !self.take_budget(name) {
            return None;
        }
        tracing::debug!(delay_ms = delay.as_millis() as u64, "re-running");
        // The re-run of a probe that a hook repairs is the next probe (see `refused`).
        self.repaired_probe = hook.is_some() && self.state.circuit_state() != CircuitState::Closed;
        self.act(i, name, true);
        Some(Action {
            delay,
            hook,
            capacity: false,
            then_fail: false,
        })
    }

    /// Whether a re-run after `delay` must not happen; if so, records why. `repairs`: a hook
    /// runs before it.
    fn refused(
        &mut self,
        name: &'static str,
        diagnosis: &Diagnosis,
        delay: Duration,
        repairs: bool,
    ) -> bool {
        let why = self.refusal(diagnosis, delay, repairs);
        if let Some(why) = why {
            self.steps.push(step(name, why));
        }
        why.is_some()
    }

    fn refusal(
        &mut self,
        diagnosis: &Diagnosis,
        delay: Duration,
        repairs: bool,
    ) -> Option<&'static str> {
        if self.paced_out {
            return Some(
                "refused: the dependency's Retry-After does not fit the call's time budget",
            );
        }
        if self.attempts >= self.max_attempts {
            return Some("refused: attempt cap reached");
        }
        if self
            .now
            .saturating_duration_since(self.started)
            .saturating_add(delay)
            > self.settings.max_elapsed
        {
            if self.retry_after_floor(self.now) >= delay && !delay.is_zero() {
                // No strategy may go sooner than the dependency asked, so none can re-run.
                self.paced_out = true;
                return Some(
                    "refused: the dependency's Retry-After does not fit the call's time budget",
                );
            }
            return Some("refused: the call's time budget would be exceeded");
        }
        // An open circuit refuses re-runs, except one: a probe that ran and failed for a reason
        // a hook repairs on our side (an expired credential, a dropped pool). Its repaired
        // re-run is the next probe; refusing it would leave every later probe to meet the same
        // stale state, and the circuit open for good.
        if self.state.circuit_state() == CircuitState::Open
            && !(repairs && self.admission == crate::breaker::Admission::Probe)
        {
            return Some("refused: the circuit is open");
        }
        // A rolled-back attempt left nothing behind: re-running it cannot duplicate anything.
        if !self.site.options().idempotent() && !diagnosis.never_reached && !self.rolled_back {
            return Some("refused: not idempotent, and the call may have reached the other side");
        }
        if nesting::inside_rerun() {
            return Some("refused: an outer self-healing site is re-running this call");
        }
        None
    }

    /// Takes a token from the site's retry budget for a re-run; records it when there is none.
    fn take_budget(&mut self, name: &'static str) -> bool {
        let config = self.settings.budget;
        let now = self.now;
        let calls = self.calls_total();
        let granted = self
            .state
            .with_budget(config, now, calls, |b| b.withdraw(now, calls));
        if !granted {
            self.steps
                .push(step(name, "refused: the site's retry budget is spent"));
            self.budget_spent = true;
        }
        granted
    }

    fn act(&mut self, i: usize, name: &'static str, token: bool) {
        self.uses[i] = self.uses[i].saturating_add(1);
        self.last_actor = Some(name);
        self.pending = Some(Pending {
            index: i,
            strategy: name,
            started: self.now,
            token,
        });
    }

    /// Whether a strategy that applies to this failure was passed over (the attempt cap, the
    /// budget) without ever having been tried on its family: the failure then says more about
    /// what was left untried than about the dependency.
    pub(super) fn left_untried(&self) -> bool {
        // A site that never re-runs (one attempt) leaves nothing untried by choice.
        if self.max_attempts <= 1 {
            return false;
        }
        let Some(diagnosis) = self.diagnosis.clone() else {
            return false;
        };
        let strategies = &self.healer.inner.strategies;
        (0..self.ranked.len())
            .filter_map(|c| self.ranked.get(c))
            .filter(|&i| self.uses[i] == 0)
            .any(|i| {
                // Whether its plan was a re-run when the strategies were last ranked.
                self.reruns[i]
                    && self
                        .healer
                        .inner
                        .patterns
                        .get(diagnosis.fingerprint, strategies[i].name())
                        .tried
                        == 0
            })
    }
}
