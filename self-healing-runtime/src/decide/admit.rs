//! The guards before an attempt: Retry-After pacing, the circuit, the bulkhead.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::Decider;
use crate::Rejected;
use crate::breaker::Admission;
use crate::pacer::Turn;
use crate::site::flag;

/// What the guards say about the next attempt.
#[derive(Debug)]
pub(crate) enum Admit {
    /// Run it (holding the bulkhead's permit, if the site has one).
    Run(Option<OwnedSemaphorePermit>),
    /// The dependency asked to wait: wait this long, then ask again.
    Wait(Duration),
    /// Do not run it.
    Reject(Rejected),
}

impl Decider {
    /// Asks the guards about the next attempt. `can_reject`: the call's error type can carry a
    /// rejection (or a fallback answers one); if not, guards let the call run and the site's
    /// checklist says they could not fail fast.
    pub(crate) fn admit(&mut self, can_reject: bool) -> Admit {
        let site = self.site;
        // The call's first admission follows its decider's creation: one clock read serves both.
        let now = if self.attempts == 0 && !self.turn_taken {
            self.started
        } else {
            Instant::now()
        };
        self.now = now;
        // What this healer holds on the site decides; the site's own bits are the union over
        // every healer, set or not for this one.
        let flags = self.state.held();
        // Pacing, once per attempt: a call that waited for its turn does not queue again.
        if flags & flag::PACED != 0 && !std::mem::take(&mut self.turn_taken) {
            let refuse = match self.state.pacing_turn(site, now) {
                Turn::Go => None,
                Turn::Wait(wait) => {
                    // Waiting is not an attempt: the dependency is not called until then.
                    if now
                        .saturating_duration_since(self.started)
                        .saturating_add(wait)
                        <= self.settings.max_elapsed
                    {
                        self.turn_taken = true;
                        return Admit::Wait(wait);
                    }
                    Some(wait)
                }
                Turn::Refuse(wait) => Some(wait),
            };
            if let Some(wait) = refuse {
                if can_reject {
                    self.begin_attempt(now);
                    return Admit::Reject(Rejected::Paced {
                        source: site.source(),
                        wait,
                    });
                }
                self.note_cannot_reject();
            }
        }
        self.begin_attempt(now);
        if flags & flag::CIRCUIT != 0 {
            match self.admit_circuit(now) {
                Admission::Reject if can_reject => {
                    return Admit::Reject(Rejected::CircuitOpen {
                        source: site.source(),
                    });
                }
                Admission::Reject => self.note_cannot_reject(),
                Admission::Allow | Admission::Probe => {}
            }
        }
        if flags & flag::BULKHEAD != 0 {
            match self.try_bulkhead() {
                Some(permit) => return Admit::Run(Some(permit)),
                None if can_reject => {
                    return Admit::Reject(Rejected::Shed {
                        source: site.source(),
                        max_concurrent: self.bulkhead_limit(),
                    });
                }
                None => self.note_cannot_reject(),
            }
        }
        Admit::Run(None)
    }

    fn begin_attempt(&mut self, now: Instant) {
        self.attempts += 1;
        self.attempt_started = now;
        self.admission = Admission::Allow;
    }

    fn admit_circuit(&mut self, now: Instant) -> Admission {
        let config = self.settings.breaker;
        let repaired = std::mem::take(&mut self.repaired_probe);
        let ok = self.site.ok_calls();
        let admission = self.state.with_breaker(config, now, ok, |b| {
            if repaired {
                b.admit_repaired_probe(now)
            } else {
                b.admit(now)
            }
        });
        self.admission = admission;
        admission
    }

    /// The site's bulkhead under this healer; a site without one gets an unlimited semaphore
    /// (its settings changed since the call began).
    fn bulkhead(&self) -> Arc<tokio::sync::Semaphore> {
        match self.state.bulkhead() {
            Some((semaphore, _)) => semaphore,
            None => Arc::new(tokio::sync::Semaphore::new(
                tokio::sync::Semaphore::MAX_PERMITS,
            )),
        }
    }

    pub(crate) fn bulkhead_limit(&self) -> usize {
        self.state.bulkhead().map_or(0, |(_, n)| n)
    }

    fn try_bulkhead(&self) -> Option<OwnedSemaphorePermit> {
        self.bulkhead().try_acquire_owned().ok()
    }

    /// How long a re-run waits for a bulkhead slot: the healer's bulkhead wait, at least 100 ms
    /// (a re-run after an overload is worth a short wait even where first calls never wait).
    fn capacity_wait(&self) -> Duration {
        self.settings.bulkhead_wait.max(Duration::from_millis(100))
    }

    /// Waits up to the healer's bulkhead wait for a free slot (the slot is not kept: the re-run
    /// acquires its own when it starts).
    pub(super) async fn wait_for_capacity(&self) -> Result<(), String> {
        match tokio::time::timeout(self.capacity_wait(), self.bulkhead().acquire_owned()).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err("no bulkhead slot freed up in time".to_owned()),
        }
    }

    /// [`wait_for_capacity`](Self::wait_for_capacity) for sync sites.
    pub(super) fn wait_for_capacity_blocking(&self) -> Result<(), String> {
        let deadline = crate::clock::after(Instant::now(), self.capacity_wait());
        let semaphore = self.bulkhead();
        while semaphore.available_permits() == 0 {
            if Instant::now() >= deadline {
                return Err("no bulkhead slot freed up in time".to_owned());
            }
            (self.healer.inner.config.blocking_sleep)(Duration::from_millis(1));
        }
        Ok(())
    }

    /// A guard wanted to fail fast but the error type cannot say so: the call runs, and the
    /// site's checklist entry reports it (once per site in the log).
    pub(crate) fn note_cannot_reject(&self) {
        let state = &self.state;
        if !state.cannot_reject.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                source = self.site.source(),
                "self-healing: this site's error type cannot represent a rejection \
                 (`fail_fast = false`), so its circuit breaker, bulkhead and Retry-After pacing \
                 let calls run instead of failing fast"
            );
        }
    }
}
