//! [`Fault`]: what a fault-injection rule does to the calls it targets, and when.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// How a rate-limit fault states its Retry-After.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryAfter {
    /// The exact time until a slot frees, in milliseconds (as some APIs send it).
    #[default]
    Exact,
    /// Whole seconds, rounded up (the HTTP header's `delta-seconds` form, at least 1).
    WholeSeconds,
    /// No Retry-After at all.
    Omitted,
}

/// Makes the user's error of a [`Fault::error`] rule, type-erased.
#[derive(Clone)]
pub(crate) struct ErrorMaker {
    pub(crate) make: Arc<dyn Fn() -> Box<dyn Any + Send> + Send + Sync>,
    pub(crate) into_error: fn(Box<dyn Any + Send>) -> Arc<dyn Error + Send + Sync>,
    pub(crate) type_name: &'static str,
}

impl fmt::Debug for ErrorMaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorMaker")
            .field("type", &self.type_name)
            .finish_non_exhaustive()
    }
}

fn into_error<E: Error + Send + Sync + 'static>(
    value: Box<dyn Any + Send>,
) -> Arc<dyn Error + Send + Sync> {
    match value.downcast::<E>() {
        Ok(e) => Arc::new(*e),
        // Only ever called with what `make` produced, which is an `E`.
        Err(_) => Arc::new(crate::InjectedFault::new(
            crate::FaultKind::Custom,
            "injected error of an unexpected type",
        )),
    }
}

/// What a fault does to each call it targets.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Error {
        rate: f64,
        maker: ErrorMaker,
    },
    Unavailable {
        rate: f64,
        retry_after: Option<Duration>,
    },
    Latency {
        rate: f64,
        delay: Duration,
    },
    Outage,
    RateLimit {
        limit: u32,
        per: Duration,
        retry_after: RetryAfter,
    },
    BrokenConnection,
    StaleConnection {
        hang: Duration,
    },
    ExpiringToken {
        lifetime: Duration,
    },
    BadBackend {
        of: u32,
    },
}

/// One fault-injection rule: what happens to a call, and the window of time it is active in.
///
/// Times are measured from the moment the [`Chaos`](super::Chaos) value was built, on tokio's
/// clock, so tests on a paused clock (`#[tokio::test(start_paused = true)]`) replay faults
/// exactly. Rates draw from the chaos layer's seeded generator: the same seed and the same order
/// of calls give the same faults.
///
/// ```
/// use std::time::Duration;
/// use self_healing_runtime::chaos::{Fault, RetryAfter};
///
/// // 20 % of calls fail like a 503, from the start.
/// let flaky = Fault::unavailable(0.2);
/// // The dependency is down between 10 s and 15 s.
/// let outage = Fault::outage().between(Duration::from_secs(10), Duration::from_secs(15));
/// // At most 40 calls a second; 429s carry a whole-second Retry-After.
/// let limited = Fault::rate_limit(40, Duration::from_secs(1)).retry_after(RetryAfter::WholeSeconds);
/// # let _ = (flaky, outage, limited);
/// ```
#[derive(Debug, Clone)]
pub struct Fault {
    pub(crate) kind: Kind,
    pub(crate) from: Duration,
    pub(crate) until: Option<Duration>,
}

impl Fault {
    fn new(kind: Kind) -> Self {
        Fault {
            kind,
            from: Duration::ZERO,
            until: None,
        }
    }

    /// A share `rate` (0–1) of calls fail with the error `make` returns.
    ///
    /// A site whose error type is `E` gets exactly that error back. Any other site gets it
    /// wrapped in [`Rejected::Injected`](crate::Rejected::Injected), with the error as its
    /// source, so it is diagnosed by its own type and message either way.
    pub fn error<E, F>(rate: f64, make: F) -> Self
    where
        E: Error + Send + Sync + 'static,
        F: Fn() -> E + Send + Sync + 'static,
    {
        Fault::new(Kind::Error {
            rate,
            maker: ErrorMaker {
                make: Arc::new(move || Box::new(make())),
                into_error: into_error::<E>,
                type_name: std::any::type_name::<E>(),
            },
        })
    }

    /// A share `rate` (0–1) of calls fail like an HTTP 503 (a transient fault).
    pub fn unavailable(rate: f64) -> Self {
        Fault::new(Kind::Unavailable {
            rate,
            retry_after: None,
        })
    }

    /// Like [`unavailable`](Self::unavailable), with a `Retry-After` on every 503.
    pub fn unavailable_retry_after(rate: f64, retry_after: Duration) -> Self {
        Fault::new(Kind::Unavailable {
            rate,
            retry_after: Some(retry_after),
        })
    }

    /// A share `rate` (0–1) of calls is delayed by `delay` before it runs.
    pub fn latency(rate: f64, delay: Duration) -> Self {
        Fault::new(Kind::Latency { rate, delay })
    }

    /// Every call is refused (`connection refused`): a hard outage. Limit it with
    /// [`between`](Self::between).
    pub fn outage() -> Self {
        Fault::new(Kind::Outage)
    }

    /// At most `limit` calls in any `per` (a sliding window); the others get an HTTP 429 whose
    /// Retry-After says when a slot frees (see [`retry_after`](Self::retry_after)). Refused
    /// calls take no slot.
    pub fn rate_limit(limit: u32, per: Duration) -> Self {
        Fault::new(Kind::RateLimit {
            limit,
            per,
            retry_after: RetryAfter::Exact,
        })
    }

    /// How the 429s of a [`rate_limit`](Self::rate_limit) state their Retry-After (ignored by
    /// other faults).
    pub fn retry_after(mut self, form: RetryAfter) -> Self {
        if let Kind::RateLimit { retry_after, .. } = &mut self.kind {
            *retry_after = form;
        }
        self
    }

    /// From the window's start the connection is broken (`connection reset by peer`) and stays
    /// broken until the reconnect hook of a targeted site runs.
    pub fn broken_connection() -> Self {
        Fault::new(Kind::BrokenConnection)
    }

    /// From the window's start every call hangs for `hang`, then fails as timed out (a stale
    /// connection), until the reconnect hook of a targeted site runs.
    pub fn stale_connection(hang: Duration) -> Self {
        Fault::new(Kind::StaleConnection { hang })
    }

    /// The credential is valid for `lifetime`, then every call fails with HTTP 401 (token
    /// expired) until the credential-refresh hook of a targeted site runs, which issues a new
    /// one, valid for `lifetime` again.
    pub fn expiring_token(lifetime: Duration) -> Self {
        Fault::new(Kind::ExpiringToken { lifetime })
    }

    /// Calls are spread round-robin over `of` backends and the first backend is bad (an HTTP
    /// 502). The rotation is per tokio task, as with a connection per client: with two
    /// backends, every call's first attempt fails and its re-run, from the same task, succeeds.
    pub fn bad_backend(of: u32) -> Self {
        Fault::new(Kind::BadBackend { of })
    }

    /// Active only from `from` until `until`.
    pub fn between(mut self, from: Duration, until: Duration) -> Self {
        self.from = from;
        self.until = Some(until);
        self
    }

    /// Active from `from` on.
    pub fn after(mut self, from: Duration) -> Self {
        self.from = from;
        self
    }

    /// The name shown in statistics and errors.
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Error { .. } => "error",
            Kind::Unavailable { .. } => "unavailable",
            Kind::Latency { .. } => "latency",
            Kind::Outage => "outage",
            Kind::RateLimit { .. } => "rate_limit",
            Kind::BrokenConnection => "broken_connection",
            Kind::StaleConnection { .. } => "stale_connection",
            Kind::ExpiringToken { .. } => "expiring_token",
            Kind::BadBackend { .. } => "bad_backend",
        }
    }

    /// What is wrong with the fault's settings, if anything.
    pub(crate) fn invalid(&self) -> Option<String> {
        let rate_ok = |rate: f64| (0.0..=1.0).contains(&rate);
        match &self.kind {
            Kind::Error { rate, .. }
            | Kind::Unavailable { rate, .. }
            | Kind::Latency { rate, .. }
                if !rate_ok(*rate) =>
            {
                return Some(format!("rate {rate} is not between 0 and 1"));
            }
            Kind::RateLimit { per, .. } if per.is_zero() => {
                return Some("the rate limit's window must be longer than zero".to_owned());
            }
            Kind::BadBackend { of } if *of < 1 => {
                return Some("there must be at least one backend".to_owned());
            }
            Kind::ExpiringToken { lifetime } if lifetime.is_zero() => {
                return Some("a token's lifetime must be longer than zero".to_owned());
            }
            _ => {}
        }
        match self.until {
            Some(until) if until <= self.from => Some(format!(
                "its window ends ({until:?}) before it starts ({:?})",
                self.from
            )),
            _ => None,
        }
    }
}
