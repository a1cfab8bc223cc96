//! Typed classification of Redis errors (feature `redis`).

use std::error::Error;

use redis::{ErrorKind, RedisError, ServerErrorKind};

use super::typed::{TypedVerdict, verdict};
use super::{ErrorClass, Severity};

pub(crate) fn classify(error: &(dyn Error + 'static)) -> Option<TypedVerdict> {
    let e = error.downcast_ref::<RedisError>()?;
    // Refused before dropped: a refusal counts as a dropped connection too.
    if e.is_connection_refusal() {
        return Some(TypedVerdict {
            // Nothing was sent.
            never_reached: true,
            ..verdict(
                ErrorClass::ConnectionLost,
                Severity::High,
                "redis: connection refused",
            )
        });
    }
    if e.is_timeout() {
        return Some(verdict(
            ErrorClass::Timeout,
            Severity::Medium,
            "redis: timed out",
        ));
    }
    if e.is_connection_dropped() || e.is_io_error() {
        return Some(verdict(
            ErrorClass::ConnectionLost,
            Severity::High,
            "redis: connection lost",
        ));
    }
    let v = match e.kind() {
        ErrorKind::Server(kind) => classify_server(kind)?,
        ErrorKind::AuthenticationFailed => verdict(
            ErrorClass::AuthExpired,
            Severity::High,
            "redis: authentication failed",
        ),
        ErrorKind::MasterNameNotFoundBySentinel
        | ErrorKind::NoValidReplicasFoundBySentinel
        | ErrorKind::ClusterConnectionNotFound => verdict(
            ErrorClass::ConnectionLost,
            Severity::High,
            "redis: no node to connect to",
        ),
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => {
            verdict(ErrorClass::Bug, Severity::High, "redis: unexpected reply")
        }
        ErrorKind::InvalidClientConfig
        | ErrorKind::Client
        | ErrorKind::EmptySentinelList
        | ErrorKind::RESP3NotSupported => verdict(
            ErrorClass::Permanent,
            Severity::High,
            "redis: client misconfigured",
        ),
        // An error code the library does not know (`Extension`), new kinds: the message rules
        // read it.
        _ => return None,
    };
    Some(v)
}

fn classify_server(kind: ServerErrorKind) -> Option<TypedVerdict> {
    let v = match kind {
        ServerErrorKind::TryAgain
        | ServerErrorKind::BusyLoading
        | ServerErrorKind::ClusterDown
        | ServerErrorKind::MasterDown
        | ServerErrorKind::Moved
        | ServerErrorKind::Ask => verdict(
            ErrorClass::Transient,
            Severity::Low,
            "redis: server busy or resharding",
        ),
        // READONLY: a replica answered a write, as after a failover; a new connection finds the
        // new primary.
        ServerErrorKind::ReadOnly => verdict(
            ErrorClass::ConnectionLost,
            Severity::Medium,
            "redis: read-only replica",
        ),
        ServerErrorKind::NoPerm => verdict(
            ErrorClass::Permanent,
            Severity::High,
            "redis: no permission",
        ),
        ServerErrorKind::ResponseError
        | ServerErrorKind::ExecAbort
        | ServerErrorKind::NoScript
        | ServerErrorKind::CrossSlot
        | ServerErrorKind::NotBusy
        | ServerErrorKind::NoSub => verdict(
            ErrorClass::Permanent,
            Severity::Medium,
            "redis: command rejected",
        ),
        _ => return None,
    };
    Some(v)
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    fn of(kind: ErrorKind) -> Option<TypedVerdict> {
        classify(&RedisError::from((kind, "test")))
    }

    fn class(kind: ErrorKind) -> ErrorClass {
        of(kind).unwrap().class
    }

    #[test]
    fn io_errors() {
        let refused = RedisError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        let v = classify(&refused).unwrap();
        assert_eq!(v.class, ErrorClass::ConnectionLost);
        assert!(v.never_reached);
        let timed_out = RedisError::from(io::Error::from(io::ErrorKind::TimedOut));
        assert_eq!(classify(&timed_out).unwrap().class, ErrorClass::Timeout);
        let reset = RedisError::from(io::Error::from(io::ErrorKind::ConnectionReset));
        let v = classify(&reset).unwrap();
        assert_eq!(v.class, ErrorClass::ConnectionLost);
        assert!(!v.never_reached);
        assert_eq!(class(ErrorKind::Io), ErrorClass::ConnectionLost);
    }

    #[test]
    fn kinds() {
        for kind in [
            ServerErrorKind::TryAgain,
            ServerErrorKind::BusyLoading,
            ServerErrorKind::ClusterDown,
            ServerErrorKind::MasterDown,
        ] {
            assert_eq!(
                class(ErrorKind::Server(kind)),
                ErrorClass::Transient,
                "{kind:?}"
            );
        }
        assert_eq!(
            class(ErrorKind::Server(ServerErrorKind::ResponseError)),
            ErrorClass::Permanent
        );
        assert_eq!(
            class(ErrorKind::Server(ServerErrorKind::ReadOnly)),
            ErrorClass::ConnectionLost
        );
        assert_eq!(
            class(ErrorKind::AuthenticationFailed),
            ErrorClass::AuthExpired
        );
        assert_eq!(class(ErrorKind::UnexpectedReturnType), ErrorClass::Bug);
        assert_eq!(class(ErrorKind::InvalidClientConfig), ErrorClass::Permanent);
        assert_eq!(of(ErrorKind::Extension), None);
    }
}
