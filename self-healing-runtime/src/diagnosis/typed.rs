//! Classification by type: the error chain is walked and each link downcast to the types we know.

use std::error::Error;
use std::io;

use super::{ErrorClass, Severity};
use crate::Rejected;

/// What a typed match concluded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TypedVerdict {
    pub(crate) class: ErrorClass,
    pub(crate) severity: Severity,
    pub(crate) never_reached: bool,
    pub(crate) reason: &'static str,
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
    }
}

/// The first link of the chain whose type we recognise decides.
pub(crate) fn classify_chain(error: &(dyn Error + 'static)) -> Option<TypedVerdict> {
    std::iter::successors(Some(error), |e| (*e).source()).find_map(classify_one)
}

fn classify_one(error: &(dyn Error + 'static)) -> Option<TypedVerdict> {
    if let Some(e) = error.downcast_ref::<io::Error>() {
        return classify_io(e);
    }
    if let Some(r) = error.downcast_ref::<Rejected>() {
        return Some(classify_rejected(r));
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
    None
}

fn classify_io(e: &io::Error) -> Option<TypedVerdict> {
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

fn classify_rejected(r: &Rejected) -> TypedVerdict {
    match r {
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
    }
}
