//! Classification by type: the error chain is walked and each link downcast to the types we know.

use std::error::Error;
use std::io;

use super::{ErrorClass, Severity};
use crate::Rejected;
use crate::injected::{FaultKind, InjectedFault};

/// What a typed match concluded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TypedVerdict {
    pub(crate) class: ErrorClass,
    pub(crate) severity: Severity,
    pub(crate) never_reached: bool,
    pub(crate) reason: &'static str,
    /// A wait the error itself carries (a declared `Retry-After`).
    pub(crate) retry_after: Option<std::time::Duration>,
}

pub(crate) const fn verdict(
    class: ErrorClass,
    severity: Severity,
    reason: &'static str,
) -> TypedVerdict {
    TypedVerdict {
        class,
        severity,
        never_reached: false,
        reason,
        retry_after: None,
    }
}

/// The first link of the chain whose type we recognise decides; a type that declares what it
/// is (see [`super::declared`]) wins over the built-in ones.
pub(crate) fn classify_chain(error: &(dyn Error + 'static)) -> Option<TypedVerdict> {
    std::iter::successors(Some(error), |e| (*e).source()).find_map(classify_one)
}

fn classify_one(error: &(dyn Error + 'static)) -> Option<TypedVerdict> {
    if let Some(v) = super::declared::classify(error) {
        return Some(v);
    }
    if let Some(e) = error.downcast_ref::<io::Error>() {
        // `io::Error::source` skips the error it wraps, so a rejection converted into an
        // `io::Error` is found through `get_ref`.
        if let Some(r) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<Rejected>())
        {
            return classify_rejected(r);
        }
        return classify_io(e);
    }
    if let Some(r) = error.downcast_ref::<Rejected>() {
        return classify_rejected(r);
    }
    #[cfg(feature = "tower")]
    if error.is::<crate::tower::NotRerunnable>() {
        return Some(verdict(
            ErrorClass::Permanent,
            Severity::Medium,
            "request cannot be rebuilt for a re-run",
        ));
    }
    if error.is::<tokio::time::error::Elapsed>() {
        return Some(verdict(
            ErrorClass::Timeout,
            Severity::Medium,
            "tokio timeout elapsed",
        ));
    }
    #[cfg(feature = "diesel")]
    if let Some(v) = super::typed_diesel::classify(error) {
        return Some(v);
    }
    #[cfg(feature = "reqwest")]
    if let Some(v) = super::typed_reqwest::classify(error) {
        return Some(v);
    }
    #[cfg(feature = "sqlx")]
    if let Some(v) = super::typed_sqlx::classify(error) {
        return Some(v);
    }
    #[cfg(feature = "tonic")]
    if let Some(v) = super::typed_tonic::classify(error) {
        return Some(v);
    }
    #[cfg(feature = "redis")]
    if let Some(v) = super::typed_redis::classify(error) {
        return Some(v);
    }
    #[cfg(feature = "hyper")]
    if let Some(v) = super::typed_hyper::classify(error) {
        return Some(v);
    }
    None
}

pub(crate) fn classify_io(e: &io::Error) -> Option<TypedVerdict> {
    use io::ErrorKind as K;
    let v = match e.kind() {
        K::ConnectionRefused => TypedVerdict {
            never_reached: true,
            ..verdict(
                ErrorClass::ConnectionLost,
                Severity::High,
                "io: connection refused",
            )
        },
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::NotConnected => verdict(
            ErrorClass::ConnectionLost,
            Severity::High,
            "io: connection lost",
        ),
        K::UnexpectedEof => verdict(
            ErrorClass::ConnectionLost,
            Severity::Medium,
            "io: unexpected eof",
        ),
        K::TimedOut | K::WouldBlock => {
            verdict(ErrorClass::Timeout, Severity::Medium, "io: timed out")
        }
        K::Interrupted => verdict(ErrorClass::Transient, Severity::Low, "io: interrupted"),
        K::AddrInUse | K::AddrNotAvailable | K::OutOfMemory | K::StorageFull | K::QuotaExceeded => {
            verdict(
                ErrorClass::ResourceExhausted,
                Severity::High,
                "io: out of resources",
            )
        }
        K::NotFound | K::AlreadyExists | K::InvalidInput | K::Unsupported => {
            verdict(ErrorClass::Permanent, Severity::Medium, "io: permanent")
        }
        K::PermissionDenied => verdict(
            ErrorClass::Permanent,
            Severity::High,
            "io: permission denied",
        ),
        K::InvalidData => verdict(ErrorClass::Bug, Severity::High, "io: invalid data"),
        // `Other` and friends say nothing by their kind: let the message rules look.
        _ => return None,
    };
    Some(v)
}

/// A rejection says what it is, except a user-supplied injected error: its own type and message
/// decide (`None` lets the chain walk on to it).
fn classify_rejected(r: &Rejected) -> Option<TypedVerdict> {
    let v = match r {
        Rejected::CircuitOpen { .. } => TypedVerdict {
            never_reached: true,
            ..verdict(ErrorClass::CircuitOpen, Severity::High, "circuit open")
        },
        Rejected::Shed { .. } => TypedVerdict {
            never_reached: true,
            ..verdict(
                ErrorClass::ResourceExhausted,
                Severity::High,
                "bulkhead full",
            )
        },
        Rejected::TimedOut { .. } => {
            verdict(ErrorClass::Timeout, Severity::Medium, "attempt timed out")
        }
        Rejected::Panicked { .. } => verdict(ErrorClass::Bug, Severity::Critical, "panicked"),
        Rejected::Paced { wait, .. } => TypedVerdict {
            never_reached: true,
            ..verdict(
                ErrorClass::RateLimited {
                    retry_after: Some(*wait),
                },
                Severity::Low,
                "paced: Retry-After longer than the call's budget",
            )
        },
        Rejected::Injected { fault, .. } => return classify_injected(fault),
        // `Rejected` is non-exhaustive to users, not to this crate; a new variant must be
        // classified here.
    };
    Some(v)
}

fn classify_injected(fault: &InjectedFault) -> Option<TypedVerdict> {
    let v = match fault.kind() {
        FaultKind::ConnectionReset => verdict(
            ErrorClass::ConnectionLost,
            Severity::High,
            "injected: connection reset",
        ),
        FaultKind::ConnectionRefused => TypedVerdict {
            never_reached: true,
            ..verdict(
                ErrorClass::ConnectionLost,
                Severity::High,
                "injected: connection refused",
            )
        },
        FaultKind::TimedOut => {
            verdict(ErrorClass::Timeout, Severity::Medium, "injected: timed out")
        }
        FaultKind::RateLimited => verdict(
            ErrorClass::RateLimited {
                retry_after: fault.retry_after(),
            },
            Severity::Low,
            "injected: rate limited",
        ),
        FaultKind::Unauthorized => verdict(
            ErrorClass::AuthExpired,
            Severity::High,
            "injected: credentials expired",
        ),
        FaultKind::Unavailable => verdict(
            ErrorClass::Transient,
            Severity::Low,
            "injected: unavailable",
        ),
        FaultKind::Custom => return None,
    };
    Some(v)
}
