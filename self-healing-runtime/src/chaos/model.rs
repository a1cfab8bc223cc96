//! The state machines behind each [`Fault`]: a rate limiter's window, a connection that stays
//! broken until repaired, a token that expires, backends served in turn. Pure: driven by the
//! time since the chaos layer was built and by the hooks that ran, so they are tested without
//! sleeping.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::fault::{ErrorMaker, Fault, Kind, RetryAfter};
use crate::hooks::HookKind;
use crate::{FaultKind, InjectedFault};

/// Tasks whose backend rotation is remembered at most.
const TRACKED_TASKS: usize = 65_536;

/// What one fault does to one attempt.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Nothing.
    Pass,
    /// Wait this long, then run.
    Delay(Duration),
    /// Wait this long, then fail with this.
    Fail(Duration, Failing),
}

/// The failure handed to the call.
pub(crate) enum Failing {
    /// A fault the library describes.
    Fault(InjectedFault),
    /// The user's own error (of some type), with how to view it as an error of another type.
    Custom {
        value: Box<dyn Any + Send>,
        into_error: fn(Box<dyn Any + Send>) -> Arc<dyn std::error::Error + Send + Sync>,
    },
}

impl std::fmt::Debug for Failing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failing::Fault(fault) => f.debug_tuple("Fault").field(fault).finish(),
            Failing::Custom { .. } => f.write_str("Custom"),
        }
    }
}

impl Failing {
    /// The failure as an [`InjectedFault`] (the user's error becomes its source).
    pub(crate) fn into_fault(self) -> InjectedFault {
        match self {
            Failing::Fault(fault) => fault,
            Failing::Custom { value, into_error } => InjectedFault::custom(into_error(value)),
        }
    }

    /// The Retry-After the failure carries.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Failing::Fault(fault) => fault.retry_after(),
            Failing::Custom { .. } => None,
        }
    }
}

/// The mutable state of one fault.
#[derive(Debug)]
pub(crate) struct Model {
    fault: Fault,
    rng: fastrand::Rng,
    /// Rate limit: when each call admitted in the last window was admitted, oldest first.
    admitted: VecDeque<Duration>,
    /// Round-robin position over the backends, per task (each client task keeps its own
    /// connection and moves to the next backend at each call), and outside tasks.
    turns: HashMap<Option<tokio::task::Id>, u64>,
    /// Broken or stale connection: when a reconnect last repaired it.
    repaired_at: Option<Duration>,
    /// Expiring token: when the current credential was issued.
    issued_at: Duration,
}

impl Model {
    pub(crate) fn new(fault: Fault, seed: u64) -> Self {
        Model {
            fault,
            rng: fastrand::Rng::with_seed(seed),
            admitted: VecDeque::new(),
            turns: HashMap::new(),
            repaired_at: None,
            issued_at: Duration::ZERO,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        self.fault.name()
    }

    fn active(&self, now: Duration) -> bool {
        now >= self.fault.from && self.fault.until.is_none_or(|until| now < until)
    }

    /// Whether a connection broken at the window's start is still broken at `now`.
    fn still_broken(&self) -> bool {
        self.repaired_at.is_none_or(|at| at < self.fault.from)
    }

    /// What this fault does to an attempt made `now` after the chaos layer was built.
    pub(crate) fn decide(&mut self, now: Duration) -> Effect {
        if !self.active(now) {
            return Effect::Pass;
        }
        match &self.fault.kind {
            Kind::Error { rate, maker } => {
                if self.rng.f64() < *rate {
                    let ErrorMaker {
                        make, into_error, ..
                    } = maker;
                    return Effect::Fail(
                        Duration::ZERO,
                        Failing::Custom {
                            value: make(),
                            into_error: *into_error,
                        },
                    );
                }
                Effect::Pass
            }
            Kind::Unavailable { rate, retry_after } => {
                if self.rng.f64() < *rate {
                    let mut fault =
                        InjectedFault::new(FaultKind::Unavailable, "HTTP 503 Service Unavailable");
                    if let Some(after) = retry_after {
                        fault = fault.with_retry_after(*after);
                    }
                    return fail(fault);
                }
                Effect::Pass
            }
            Kind::Latency { rate, delay } => {
                if self.rng.f64() < *rate {
                    return Effect::Delay(*delay);
                }
                Effect::Pass
            }
            Kind::Outage => fail(InjectedFault::new(
                FaultKind::ConnectionRefused,
                "connection refused (outage)",
            )),
            Kind::RateLimit {
                limit,
                per,
                retry_after,
            } => {
                let (limit, per, form) = (*limit, *per, *retry_after);
                // A sliding window: a call is admitted when fewer than `limit` were admitted in
                // the `per` before it.
                while self
                    .admitted
                    .front()
                    .is_some_and(|t| now.saturating_sub(*t) >= per)
                {
                    self.admitted.pop_front();
                }
                if self.admitted.len() < limit as usize {
                    self.admitted.push_back(now);
                    return Effect::Pass;
                }
                let oldest = self.admitted.front().copied().unwrap_or(now);
                let wait = (oldest + per).saturating_sub(now);
                let mut fault =
                    InjectedFault::new(FaultKind::RateLimited, "HTTP 429 Too Many Requests");
                match form {
                    RetryAfter::Exact => {
                        // Milliseconds, rounded up: never earlier than a slot frees.
                        let ms = wait.as_nanos().div_ceil(1_000_000);
                        fault = fault.with_retry_after(Duration::from_millis(
                            u64::try_from(ms).unwrap_or(u64::MAX),
                        ));
                    }
                    RetryAfter::WholeSeconds => {
                        let secs = wait.as_nanos().div_ceil(1_000_000_000).max(1);
                        fault = fault.with_retry_after(Duration::from_secs(
                            u64::try_from(secs).unwrap_or(u64::MAX),
                        ));
                    }
                    RetryAfter::Omitted => {}
                }
                fail(fault)
            }
            Kind::BrokenConnection => {
                if self.still_broken() {
                    return fail(InjectedFault::new(
                        FaultKind::ConnectionReset,
                        "connection reset by peer (broken until reconnected)",
                    ));
                }
                Effect::Pass
            }
            Kind::StaleConnection { hang } => {
                if self.still_broken() {
                    return Effect::Fail(
                        *hang,
                        Failing::Fault(InjectedFault::new(
                            FaultKind::TimedOut,
                            "query timed out on a stale connection",
                        )),
                    );
                }
                Effect::Pass
            }
            Kind::ExpiringToken { lifetime } => {
                if now.saturating_sub(self.issued_at) >= *lifetime {
                    return fail(InjectedFault::new(
                        FaultKind::Unauthorized,
                        "HTTP 401 Unauthorized: token expired",
                    ));
                }
                Effect::Pass
            }
            Kind::BadBackend { of } => {
                if self.turns.len() >= TRACKED_TASKS {
                    // Tasks that ended never come back; start over rather than grow.
                    self.turns.clear();
                }
                let turn = self.turns.entry(tokio::task::try_id()).or_default();
                let backend = *turn % u64::from((*of).max(1));
                *turn += 1;
                if backend == 0 {
                    return fail(InjectedFault::new(
                        FaultKind::Unavailable,
                        "HTTP 502 Bad Gateway from a bad backend",
                    ));
                }
                Effect::Pass
            }
        }
    }

    /// A hook of `kind` ran for a targeted site `now` after the chaos layer was built.
    pub(crate) fn hook_ran(&mut self, kind: HookKind, now: Duration) {
        match (&self.fault.kind, kind) {
            (Kind::BrokenConnection | Kind::StaleConnection { .. }, HookKind::Reconnect)
                if now >= self.fault.from =>
            {
                self.repaired_at = Some(now);
            }
            (Kind::ExpiringToken { .. }, HookKind::RefreshCredentials) => self.issued_at = now,
            _ => {}
        }
    }
}

fn fail(fault: InjectedFault) -> Effect {
    Effect::Fail(Duration::ZERO, Failing::Fault(fault))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn fails(e: &Effect) -> bool {
        matches!(e, Effect::Fail(..))
    }

    #[test]
    fn a_rate_limit_admits_its_limit_per_sliding_window_and_says_when_a_slot_frees() {
        let mut m = Model::new(Fault::rate_limit(2, ms(1000)), 1);
        assert!(!fails(&m.decide(ms(100))));
        assert!(!fails(&m.decide(ms(200))));
        let Effect::Fail(_, Failing::Fault(f)) = m.decide(ms(300)) else {
            panic!("the third call within a second is refused");
        };
        assert_eq!(
            f.retry_after(),
            Some(ms(800)),
            "the call at 100 ms leaves at 1100 ms"
        );
        assert!(fails(&m.decide(ms(1099))), "a refused call takes no slot");
        assert!(!fails(&m.decide(ms(1100))), "a slot freed");
        assert!(fails(&m.decide(ms(1150))));

        let mut whole = Model::new(
            Fault::rate_limit(1, ms(1000)).retry_after(RetryAfter::WholeSeconds),
            1,
        );
        whole.decide(ms(10));
        let Effect::Fail(_, Failing::Fault(f)) = whole.decide(ms(900)) else {
            panic!("refused");
        };
        assert_eq!(
            f.retry_after(),
            Some(Duration::from_secs(1)),
            "rounded up to a second"
        );
    }

    #[test]
    fn a_broken_connection_stays_broken_until_a_reconnect_after_it_broke() {
        let mut m = Model::new(Fault::broken_connection().after(ms(500)), 1);
        assert!(!fails(&m.decide(ms(100))));
        m.hook_ran(HookKind::Reconnect, ms(200)); // before it broke: no effect
        assert!(fails(&m.decide(ms(600))));
        m.hook_ran(HookKind::RefreshCredentials, ms(700));
        assert!(fails(&m.decide(ms(800))), "only a reconnect repairs it");
        m.hook_ran(HookKind::Reconnect, ms(900));
        assert!(!fails(&m.decide(ms(901))));
    }

    #[test]
    fn a_token_expires_after_its_lifetime_and_a_refresh_issues_a_new_one() {
        let mut m = Model::new(Fault::expiring_token(ms(1000)), 1);
        assert!(!fails(&m.decide(ms(999))));
        assert!(fails(&m.decide(ms(1000))));
        m.hook_ran(HookKind::RefreshCredentials, ms(1500));
        assert!(!fails(&m.decide(ms(2499))));
        assert!(fails(&m.decide(ms(2500))));
    }

    #[test]
    fn one_bad_backend_of_two_fails_every_other_call() {
        let mut m = Model::new(Fault::bad_backend(2), 1);
        let pattern: Vec<bool> = (0..4).map(|_| fails(&m.decide(ms(1)))).collect();
        assert_eq!(pattern, [true, false, true, false]);
    }

    #[test]
    fn windows_bound_a_fault_in_time() {
        let mut m = Model::new(Fault::outage().between(ms(100), ms(200)), 1);
        assert!(!fails(&m.decide(ms(99))));
        assert!(fails(&m.decide(ms(100))));
        assert!(!fails(&m.decide(ms(200))));
    }

    #[test]
    fn rates_are_seeded() {
        let draw = |seed| {
            let mut m = Model::new(Fault::unavailable(0.3), seed);
            (0..200)
                .map(|_| fails(&m.decide(ms(1))))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        let share = draw(7).iter().filter(|f| **f).count();
        assert!((40..=80).contains(&share), "{share} of 200 at 30 %");
    }
}
