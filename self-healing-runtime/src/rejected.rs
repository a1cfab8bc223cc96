//! [`Rejected`]: the error a healer reports when it answered for the body.

use std::fmt;
use std::time::Duration;

use crate::injected::InjectedFault;

/// Why a call ended without the wrapped body producing the error.
///
/// The circuit breaker, the bulkhead, per-attempt timeouts and caught panics produce no error of
/// the function's own type. A function whose error type implements `From<Rejected>` gets these
/// as errors (`anyhow::Error` and `Box<dyn Error + Send + Sync>` do out of the box; for your own
/// enum add a variant such as `#[error(transparent)] Rejected(#[from] self_healing::Rejected)`).
/// Without it the breaker and the bulkhead cannot fail fast for that site and let the call run,
/// which the site's checklist entry reports.
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
