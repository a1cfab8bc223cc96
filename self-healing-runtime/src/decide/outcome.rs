//! How a call ends: the strategy that acted is credited, the circuit and the retry budget learn
//! the call's outcome, and the call's event is recorded.

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::{Candidate, Decider, acted};
use crate::breaker::{self, Admission, CircuitState, Verdict};
use crate::event::{DiagnosisRecord, HealingEvent, Outcome, StepResult};
use crate::site::flag;

impl Decider {
    /// An attempt produced a good value.
    pub(crate) fn on_success(&mut self) {
        let now = Instant::now();
        self.now = now;
        if self.admission == Admission::Probe {
            self.probe_result(now, true);
        }
        self.site.count_ok();
        self.record_slow_call(now);
        self.finish_healed();
    }

    /// What a half-open probe found: closes the circuit, or opens it again for longer.
    pub(super) fn probe_result(&mut self, now: Instant, healthy: bool) {
        let config = self.settings.breaker;
        let ok = self.site.ok_calls();
        let random = self.random();
        let state = self.state.with_breaker(config, now, ok, |b| {
            b.probe_result(now, ok, healthy, random)
        });
        self.circuit_is(state);
        // One verdict per probe: a re-run of the same call is not a second probe.
        self.admission = Admission::Allow;
    }

    fn circuit_is(&self, state: CircuitState) {
        let changed = if state == CircuitState::Closed {
            self.state.release(flag::CIRCUIT)
        } else {
            self.state.hold(flag::CIRCUIT)
        };
        if changed {
            // The fleet hears of opening and closing (not of each probe).
            self.healer.inner.fleet.moved(
                self.healer.instance_id(),
                self.site.source(),
                state,
                false,
            );
        }
    }

    /// Counts a call slower than the breaker's slow-call limit (guarded calls only).
    fn record_slow_call(&self, now: Instant) {
        let config = self.settings.breaker;
        let Some(limit) = config.slow_call else {
            return;
        };
        if now.saturating_duration_since(self.started) < limit {
            return;
        }
        let ok = self.site.ok_calls();
        let random = self.random();
        let state = self
            .state
            .with_breaker(config, now, ok, |b| b.record(now, ok, false, true, random));
        self.circuit_is(state);
    }

    /// The call produced a good value: the strategy that acted last healed it.
    pub(crate) fn finish_healed(&mut self) {
        let Some(p) = self.pending.take() else {
            // A guarded call that never failed: nothing to record.
            return;
        };
        let took = self.now.saturating_duration_since(p.started);
        self.healer
            .inner
            .patterns
            .record(self.fingerprint(), p.strategy, true, took);
        if p.token {
            // A re-run that heals costs the budget nothing: the budget limits failing retries.
            let config = self.settings.budget;
            let calls = self.calls_total();
            self.state
                .with_budget(config, self.now, calls, |b| b.refund());
        }
        if !p.token {
            // A fallback or a cached value answered for the dependency, whose failure still
            // counts: it is what lets the circuit open and the fallback answer fast.
            self.count_failed_call(false);
        }
        // Queuing and skipping did their job, but the call's work is not done: their outcomes
        // say so, and only a value of the function's own type is "healed".
        let (outcome, note) = match p.strategy {
            "queue_for_later" => (Outcome::Queued, "queued in the outbox"),
            "skip" => (Outcome::Skipped, "skipped: the work was dropped"),
            _ => (Outcome::Healed, "healed"),
        };
        self.steps
            .push(acted(p.strategy, StepResult::Healed, took, note.into()));
        if outcome == Outcome::Healed {
            self.state.note_healed(self.wall_now());
        }
        self.record(outcome, Some(p.strategy));
    }

    /// The fallback ran: `healed` tells whether it produced a value.
    pub(crate) fn finish_fallback(&mut self, healed: bool, error: Option<String>) {
        self.now = Instant::now();
        if healed {
            self.finish_healed();
            return;
        }
        if let Some(p) = self.pending.take() {
            let took = self.now.saturating_duration_since(p.started);
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

    /// The call fails with its error.
    pub(super) fn give_up(&mut self) -> Candidate {
        if !self.finished {
            self.count_failed_call(true);
        }
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

    /// Feeds the circuit and the budget with a call the dependency failed, by what its last
    /// failure says about it. `gave_up`: the call fails (rather than a fallback or a cached
    /// value answering for the dependency).
    fn count_failed_call(&mut self, gave_up: bool) {
        if self.refused_by_guard {
            // The dependency was not called: nothing to learn about it.
            return;
        }
        let Some(class) = self.diagnosis.as_ref().map(|d| d.class) else {
            return;
        };
        match breaker::verdict(class) {
            Verdict::Answered => self.site.count_ok(),
            Verdict::Unrelated => {
                self.state.failed_calls.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::Unhealthy => {
                self.state.failed_calls.fetch_add(1, Ordering::Relaxed);
                // A probe's verdict was taken when it failed; and a call that ran out of
                // attempts while a strategy that applies to its family was never tried says
                // more about what was left untried than about the dependency.
                if self.admission == Admission::Probe || (gave_up && self.left_untried()) {
                    return;
                }
                let config = self.settings.breaker;
                let now = self.now;
                let ok = self.site.ok_calls();
                let random = self.random();
                let slow = config
                    .slow_call
                    .is_some_and(|limit| now.saturating_duration_since(self.started) >= limit);
                let state = self
                    .state
                    .with_breaker(config, now, ok, |b| b.record(now, ok, true, slow, random));
                self.circuit_is(state);
            }
        }
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
            duration: self.now.saturating_duration_since(self.started),
            diagnosis: DiagnosisRecord {
                analyzer: Cow::Borrowed(diagnosis.analyzer),
                confidence: diagnosis.confidence,
                reason: Cow::Borrowed(diagnosis.reason),
                never_reached: diagnosis.never_reached,
                steps: std::mem::take(&mut self.steps),
            },
            count: 1,
            call_key: self.call_key.map(|k| k.to_string()),
        };
        self.healer.inner.queue.push(event);
    }
}
