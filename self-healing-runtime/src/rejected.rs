//! [`Rejected`]: the error a healer reports when it answered for the body.

use std::fmt;
use std::time::Duration;

use crate::injected::InjectedFault;

/// Why a call ended without the wrapped body producing the error.
///
/// The circuit breaker, the bulkhead, per-attempt timeouts and caught panics produce no error of
/// the function's own type: the caller gets a `Rejected` converted into that type. So the error
/// type of every `#[self_healing]` function must implement `From<Rejected>`, which is checked at
/// compile time. `std::io::Error` (see below), `anyhow::Error` and
/// `Box<dyn Error + Send + Sync>` have it out of the box; for your own enum add a variant such as
/// `#[error(transparent)] Rejected(#[from] self_healing::Rejected)`. For an error type of another
/// crate that you cannot extend, `fail_fast = false` opts the site out: its guards then let every
/// call run instead of failing fast.
///
/// In a `std::io::Error` a rejection is the inner error, of kind
/// [`TimedOut`](std::io::ErrorKind::TimedOut) for [`Rejected::TimedOut`] and
/// [`Other`](std::io::ErrorKind::Other) otherwise:
///
/// ```
/// use std::io;
/// use self_healing_runtime::Rejected;
///
/// let err = io::Error::from(Rejected::CircuitOpen { source: "fetchRates" });
/// assert_eq!(err.kind(), io::ErrorKind::Other);
/// let inner = err.get_ref().and_then(|e| e.downcast_ref::<Rejected>());
/// assert_eq!(inner, Some(&Rejected::CircuitOpen { source: "fetchRates" }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejected {
    /// The site's circuit is open: the call was not attempted.
    CircuitOpen {
        /// The site's `source`.
        source: &'static str,
    },
    /// The site's bulkhead was full: the call was shed.
    Shed {
        /// The site's `source`.
        source: &'static str,
        /// The bulkhead's cap.
        max_concurrent: usize,
    },
    /// The attempt overran the site's `timeout` and was cancelled.
    TimedOut {
        /// The site's `source`.
        source: &'static str,
        /// The deadline that passed.
        after: Duration,
    },
    /// The body panicked (with `catch_panic = true`).
    Panicked {
        /// The site's `source`.
        source: &'static str,
        /// The panic payload, when it was a string.
        message: String,
    },
    /// The dependency asked this site to wait (Retry-After) longer than the call's time budget
    /// allows: the call was not attempted, rather than sent early or held past its budget.
    Paced {
        /// The site's `source`.
        source: &'static str,
        /// How much longer the dependency asked to wait.
        wait: Duration,
    },
    /// A fault-injection layer (`self_healing::chaos`) failed the call instead of running it.
    Injected {
        /// The site's `source`.
        source: &'static str,
        /// What was injected.
        fault: InjectedFault,
    },
}

impl Rejected {
    /// The `source` of the site that rejected the call.
    pub fn source(&self) -> &'static str {
        match self {
            Rejected::CircuitOpen { source }
            | Rejected::Shed { source, .. }
            | Rejected::TimedOut { source, .. }
            | Rejected::Panicked { source, .. }
            | Rejected::Paced { source, .. }
            | Rejected::Injected { source, .. } => source,
        }
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::CircuitOpen { source } => {
                write!(
                    f,
                    "`{source}` was not called: its circuit is open after repeated failures"
                )
            }
            Rejected::Shed {
                source,
                max_concurrent,
            } => write!(
                f,
                "`{source}` was shed: {max_concurrent} calls were already running (bulkhead full)"
            ),
            Rejected::TimedOut { source, after } => {
                write!(f, "`{source}` timed out after {after:?} and was cancelled")
            }
            Rejected::Panicked { source, message } => write!(f, "`{source}` panicked: {message}"),
            Rejected::Paced { source, wait } => write!(
                f,
                "`{source}` was not called: the dependency asked to wait {}ms more (Retry-After), longer than the call's time budget",
                wait.as_millis()
            ),
            Rejected::Injected { source, fault } => write!(f, "`{source}`: {fault}"),
        }
    }
}

impl std::error::Error for Rejected {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Rejected::Injected { fault, .. } => Some(fault),
            _ => None,
        }
    }
}

// `Rejected` is local, so this impl is allowed here; it lets functions returning `io::Result`
// fail fast without an error type of their own.
impl From<Rejected> for std::io::Error {
    fn from(rejected: Rejected) -> Self {
        use crate::injected::FaultKind;
        use std::io::ErrorKind;
        let kind = match &rejected {
            Rejected::TimedOut { .. } => ErrorKind::TimedOut,
            // An injected fault looks like the failure it imitates to code that reads the kind.
            Rejected::Injected { fault, .. } => match fault.kind() {
                FaultKind::ConnectionReset => ErrorKind::ConnectionReset,
                FaultKind::ConnectionRefused => ErrorKind::ConnectionRefused,
                FaultKind::TimedOut => ErrorKind::TimedOut,
                _ => ErrorKind::Other,
            },
            _ => ErrorKind::Other,
        };
        std::io::Error::new(kind, rejected)
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::time::Duration;

    use super::Rejected;

    fn inner(err: &io::Error) -> Option<&Rejected> {
        err.get_ref().and_then(|e| e.downcast_ref::<Rejected>())
    }

    #[test]
    fn a_timeout_becomes_an_io_error_of_kind_timed_out() {
        let rejected = Rejected::TimedOut {
            source: "fetchRates",
            after: Duration::from_secs(2),
        };
        let err = io::Error::from(rejected.clone());
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(inner(&err), Some(&rejected));
        assert_eq!(err.to_string(), rejected.to_string());
    }

    #[test]
    fn other_rejections_become_io_errors_of_kind_other() {
        for rejected in [
            Rejected::CircuitOpen {
                source: "fetchRates",
            },
            Rejected::Shed {
                source: "fetchRates",
                max_concurrent: 4,
            },
            Rejected::Panicked {
                source: "fetchRates",
                message: "index out of bounds".into(),
            },
        ] {
            let err = io::Error::from(rejected.clone());
            assert_eq!(err.kind(), io::ErrorKind::Other, "{rejected:?}");
            assert_eq!(inner(&err), Some(&rejected));
            // The whole rejection is recoverable by value, too.
            let owned = err.into_inner().map(|e| e.downcast::<Rejected>());
            assert!(matches!(owned, Some(Ok(r)) if *r == rejected));
        }
    }
}
