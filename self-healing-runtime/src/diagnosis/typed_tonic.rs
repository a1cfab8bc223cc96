//! Typed classification of gRPC statuses (feature `tonic`): by code, with the server's
//! `grpc-retry-pushback-ms` as the wait it asked for.

use std::error::Error;
use std::io;
use std::time::Duration;

use tonic::{Code, Status};

use super::typed::{TypedVerdict, verdict};
use super::{ErrorClass, Severity};

/// The trailer in which a server pushes back on retries (gRPC A6, "Retry Design").
const PUSHBACK: &str = "grpc-retry-pushback-ms";

pub(crate) fn classify(error: &(dyn Error + 'static)) -> Option<TypedVerdict> {
    let status = error.downcast_ref::<Status>()?;
    let pushback = pushback(status);
    let v = match status.code() {
        Code::Unavailable if refused(status) => TypedVerdict {
            // The channel could not connect: the call was never sent.
            never_reached: true,
            ..verdict(
                ErrorClass::ConnectionLost,
                Severity::High,
                "grpc: unavailable, connection refused",
            )
        },
        Code::Unavailable => verdict(ErrorClass::Transient, Severity::Medium, "grpc: unavailable"),
        Code::Internal | Code::Unknown => verdict(
            ErrorClass::Transient,
            Severity::Medium,
            "grpc: server error",
        ),
        Code::Aborted => verdict(ErrorClass::Transient, Severity::Low, "grpc: aborted"),
        Code::Cancelled => verdict(ErrorClass::Transient, Severity::Low, "grpc: cancelled"),
        Code::DeadlineExceeded => verdict(
            ErrorClass::Timeout,
            Severity::Medium,
            "grpc: deadline exceeded",
        ),
        Code::ResourceExhausted => verdict(
            ErrorClass::RateLimited {
                retry_after: pushback,
            },
            Severity::Low,
            "grpc: resource exhausted",
        ),
        Code::Unauthenticated => verdict(
            ErrorClass::AuthExpired,
            Severity::High,
            "grpc: unauthenticated",
        ),
        Code::PermissionDenied => verdict(
            ErrorClass::Permanent,
            Severity::High,
            "grpc: permission denied",
        ),
        Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unimplemented => verdict(
            ErrorClass::Permanent,
            Severity::Medium,
            "grpc: rejected request",
        ),
        Code::DataLoss => verdict(ErrorClass::Bug, Severity::Critical, "grpc: data loss"),
        // A status that says "ok" is no failure we can read.
        Code::Ok => return None,
    };
    let retry_after = match v.class {
        ErrorClass::RateLimited { .. } | ErrorClass::Transient => pushback,
        _ => None,
    };
    Some(TypedVerdict { retry_after, ..v })
}

/// The server's pushback, in milliseconds; a negative one means "do not retry" and is ignored
/// here (the class decides).
fn pushback(status: &Status) -> Option<Duration> {
    let value = status.metadata().get(PUSHBACK)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_millis)
}

/// Whether the status wraps a refused connection (tonic's channel reports it as `Unavailable`).
fn refused(status: &Status) -> bool {
    std::iter::successors(status.source(), |e| (*e).source()).any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::ConnectionRefused)
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tonic::metadata::MetadataMap;

    use super::*;

    fn class(code: Code) -> ErrorClass {
        classify(&Status::new(code, "x")).unwrap().class
    }

    #[test]
    fn codes() {
        assert_eq!(class(Code::Unavailable), ErrorClass::Transient);
        assert_eq!(class(Code::DeadlineExceeded), ErrorClass::Timeout);
        assert_eq!(
            class(Code::ResourceExhausted),
            ErrorClass::RateLimited { retry_after: None }
        );
        assert_eq!(class(Code::Unauthenticated), ErrorClass::AuthExpired);
        for code in [
            Code::InvalidArgument,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::FailedPrecondition,
            Code::Unimplemented,
        ] {
            assert_eq!(class(code), ErrorClass::Permanent, "{code:?}");
        }
        for code in [Code::Internal, Code::Unknown, Code::Aborted] {
            assert_eq!(class(code), ErrorClass::Transient, "{code:?}");
        }
        assert_eq!(classify(&Status::new(Code::Ok, "")), None);
    }

    #[test]
    fn pushback_is_the_retry_after() {
        let mut metadata = MetadataMap::new();
        metadata.insert(PUSHBACK, "1500".parse().unwrap());
        let status = Status::with_metadata(Code::ResourceExhausted, "quota", metadata.clone());
        let v = classify(&status).unwrap();
        let wait = Some(Duration::from_millis(1500));
        assert_eq!(v.class, ErrorClass::RateLimited { retry_after: wait });
        assert_eq!(v.retry_after, wait);
        let status = Status::with_metadata(Code::Unavailable, "draining", metadata);
        assert_eq!(classify(&status).unwrap().retry_after, wait);

        let mut metadata = MetadataMap::new();
        metadata.insert(PUSHBACK, "-1".parse().unwrap());
        let status = Status::with_metadata(Code::ResourceExhausted, "quota", metadata);
        assert_eq!(classify(&status).unwrap().retry_after, None);
    }

    #[test]
    fn a_refused_connection_was_never_reached() {
        let mut status = Status::unavailable("tcp connect error");
        status.set_source(Arc::new(io::Error::from(io::ErrorKind::ConnectionRefused)));
        let v = classify(&status).unwrap();
        assert_eq!(v.class, ErrorClass::ConnectionLost);
        assert!(v.never_reached);
        assert!(!classify(&Status::unavailable("x")).unwrap().never_reached);
    }
}
