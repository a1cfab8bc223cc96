//! Carrying out what was chosen before a re-run: waiting, running a hook, waiting for capacity.

use std::time::Duration;

use super::{Action, Candidate, Decider, acted};
use crate::event::StepResult;
use crate::hooks::{Hook, HookContext, HookRun};

impl Decider {
    /// Waits, runs the hook, or waits for capacity, before a re-run.
    pub(crate) async fn perform(&self, action: &Action) -> Result<(), String> {
        if let Some(hook) = &action.hook {
            // Boxed: a hook is rare next to a plain re-run, and its timer would enlarge every
            // call's future.
            let cx = self.hook_context();
            let run =
                Box::pin(hook.run(self.attempt_started, self.healer.inner.hooks.timeout, cx)).await;
            self.hook_finished(hook, run)?;
        }
        if action.capacity {
            return self.wait_for_capacity().await;
        }
        if !action.delay.is_zero() {
            tokio::time::sleep(action.delay).await;
        }
        Ok(())
    }

    /// [`perform`](Self::perform) for sync sites.
    pub(crate) fn perform_blocking(&self, action: &Action) -> Result<(), String> {
        if let Some(hook) = &action.hook {
            let cx = self.hook_context();
            let run = hook.run_blocking(self.attempt_started, self.healer.inner.hooks.timeout, cx);
            self.hook_finished(hook, run)?;
        }
        if action.capacity {
            return self.wait_for_capacity_blocking();
        }
        if !action.delay.is_zero() {
            (self.healer.inner.config.blocking_sleep)(action.delay);
        }
        Ok(())
    }

    /// A [`Plan::RunHookThenFail`](crate::Plan) hook ran: the call fails with its error.
    pub(crate) fn hook_then_fail_done(&mut self) -> Candidate {
        self.now = tokio::time::Instant::now();
        if let Some(p) = self.pending.take() {
            let took = self.now.saturating_duration_since(p.started);
            self.steps.push(acted(
                p.strategy,
                StepResult::Failed,
                took,
                "ran its hook; the call fails".into(),
            ));
        }
        self.give_up()
    }

    /// What a hook learns of the call it runs for.
    pub(crate) fn hook_context(&self) -> HookContext {
        HookContext {
            site: Some(self.site),
            asked_by: self.pending.map_or("none", |p| p.strategy),
            class: self.diagnosis.as_ref().map(|d| d.class),
            fingerprint: self.diagnosis.as_ref().map(|d| d.fingerprint),
            attempt: self.attempts.max(1),
            call_key: self.call_key,
        }
    }

    /// A hook's run: a failure stops the action; a success is what a fault-injection layer
    /// waits for to repair the faults a hook repairs.
    fn hook_finished(&self, hook: &Hook, run: HookRun) -> Result<(), String> {
        match run {
            HookRun::Failed(why) => Err(format!("hook failed: {why}")),
            HookRun::Ran => {
                #[cfg(feature = "chaos")]
                if let Some(chaos) = crate::chaos::for_site(self.site) {
                    chaos.hook_ran(self.site, hook.kind());
                }
                #[cfg(not(feature = "chaos"))]
                let _ = hook;
                Ok(())
            }
            HookRun::AlreadyDone => Ok(()),
        }
    }

    /// A re-run's preparation failed (hook failed, no bulkhead slot): the strategy is charged
    /// with it, so a hook that keeps failing sinks in the ranking, and the next one is tried.
    pub(crate) fn action_failed(
        &mut self,
        why: String,
        error: &(dyn std::error::Error + 'static),
    ) -> Candidate {
        self.now = tokio::time::Instant::now();
        if let Some(p) = self.pending.take() {
            let took = self.now.saturating_duration_since(p.started);
            self.failed[p.index] = self.failed[p.index].saturating_add(1);
            self.healer
                .inner
                .patterns
                .record(self.fingerprint(), p.strategy, false, took);
            self.steps
                .push(acted(p.strategy, StepResult::Failed, took, why.into()));
        }
        // The re-run it prepared never happened: the attempt it was for is not spent.
        self.repaired_probe = false;
        self.next(error, self.has_fallback, self.has_cache)
    }

    /// The cached-value lookup's answer. `None`: a fresh value was found and the call healed;
    /// otherwise the next candidate.
    pub(crate) fn cached(
        &mut self,
        found: bool,
        error: &(dyn std::error::Error + 'static),
    ) -> Option<Candidate> {
        if found {
            self.finish_healed();
            return None;
        }
        if let Some(p) = self.pending.take() {
            self.steps.push(acted(
                p.strategy,
                StepResult::Skipped,
                Duration::ZERO,
                "no fresh value cached for these arguments".into(),
            ));
        }
        Some(self.next(error, self.has_fallback, self.has_cache))
    }
}
