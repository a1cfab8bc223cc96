//! [`InjectedFault`]: the error a fault-injection layer hands a wrapped call instead of running it.
//!
//! Always compiled (it is part of [`Rejected`](crate::Rejected)), only produced by the `chaos`
//! module. Each fault says what kind of failure it imitates, so the rule analyzer diagnoses it
//! exactly as it would diagnose the real thing.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What kind of real failure an injected fault imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultKind {
    /// The connection broke mid-call (`connection reset by peer`): it may have reached the other
    /// side.
    ConnectionReset,
    /// Nobody answered (`connection refused`): the call provably never reached the other side.
    ConnectionRefused,
    /// The call hung and timed out.
    TimedOut,
    /// The dependency asked us to slow down (HTTP 429).
    RateLimited,
    /// The dependency refused our credentials (HTTP 401, token expired).
    Unauthorized,
    /// The dependency is briefly unavailable (HTTP 502/503).
    Unavailable,
    /// An error supplied by the user; its own type and message say what it is.
    Custom,
}

impl FaultKind {
    /// The snake_case name used in statistics.
    pub const fn as_str(&self) -> &'static str {
        match self {
            FaultKind::ConnectionReset => "connection_reset",
            FaultKind::ConnectionRefused => "connection_refused",
            FaultKind::TimedOut => "timed_out",
            FaultKind::RateLimited => "rate_limited",
            FaultKind::Unauthorized => "unauthorized",
            FaultKind::Unavailable => "unavailable",
            FaultKind::Custom => "custom",
        }
    }
}

/// A failure injected by the `chaos` layer: what kind of failure, its message, the Retry-After
/// it carries (429s and 503s), and for [`FaultKind::Custom`] the user's own error as its source.
#[derive(Clone)]
pub struct InjectedFault {
    kind: FaultKind,
    message: &'static str,
    retry_after: Option<Duration>,
    error: Option<Arc<dyn Error + Send + Sync>>,
}

impl InjectedFault {
    /// A fault of `kind` with a fixed message.
    pub const fn new(kind: FaultKind, message: &'static str) -> Self {
        InjectedFault {
            kind,
            message,
            retry_after: None,
            error: None,
        }
    }

    /// The same fault, asking the caller to wait `after` before calling again.
    pub const fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// A user-supplied error, carried as this fault's source.
    pub fn custom(error: Arc<dyn Error + Send + Sync>) -> Self {
        InjectedFault {
            kind: FaultKind::Custom,
            message: "injected error",
            retry_after: None,
            error: Some(error),
        }
    }

    /// What the fault imitates.
    pub fn kind(&self) -> FaultKind {
        self.kind
    }

    /// The wait the fault asked for (Retry-After), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The user's error of a [`FaultKind::Custom`] fault.
    pub fn error(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        self.error.as_deref()
    }
}

impl fmt::Debug for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InjectedFault")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("retry_after", &self.retry_after)
            .field("error", &self.error.as_ref().map(|e| e.to_string()))
            .finish()
    }
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.error, self.retry_after) {
            (Some(e), _) => write!(f, "injected: {e}"),
            (None, Some(after)) => write!(
                f,
                "injected: {} (retry-after: {}ms)",
                self.message,
                after.as_millis()
            ),
            (None, None) => write!(f, "injected: {}", self.message),
        }
    }
}

impl PartialEq for InjectedFault {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.message == other.message
            && self.retry_after == other.retry_after
            && self.error.as_ref().map(|e| e.to_string())
                == other.error.as_ref().map(|e| e.to_string())
    }
}

impl Eq for InjectedFault {}

impl Error for InjectedFault {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.error.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_was_injected_and_the_wait() {
        let f = InjectedFault::new(FaultKind::RateLimited, "HTTP 429 Too Many Requests")
            .with_retry_after(Duration::from_millis(350));
        assert_eq!(
            f.to_string(),
            "injected: HTTP 429 Too Many Requests (retry-after: 350ms)"
        );
        let custom = InjectedFault::custom(Arc::new(std::io::Error::other("deadlock detected")));
        assert_eq!(custom.to_string(), "injected: deadlock detected");
        assert!(custom.source().is_some(), "the user's error is the source");
    }
}
