//! [`Rejected`]: the error a healer reports when it answered for the body.

use std::fmt;
use std::time::Duration;

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
}

impl Rejected {
    /// The `source` of the site that rejected the call.
    pub fn source(&self) -> &'static str {
        match self {
            Rejected::CircuitOpen { source }
            | Rejected::Shed { source, .. }
            | Rejected::TimedOut { source, .. }
            | Rejected::Panicked { source, .. } => source,
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
        }
    }
}

impl std::error::Error for Rejected {}
