//! Typed classification of reqwest errors (feature `reqwest`).

use std::error::Error;

use super::typed::{TypedVerdict, verdict};
use super::{ErrorClass, Severity};

pub(crate) fn classify(error: &(dyn Error + 'static)) -> Option<TypedVerdict> {
    let e = error.downcast_ref::<reqwest::Error>()?;
    if e.is_timeout() {
        return Some(verdict(
            ErrorClass::Timeout,
            Severity::Medium,
            "http: timed out",
        ));
    }
    if e.is_connect() {
        return Some(TypedVerdict {
            // The connection was never established: the request was not sent.
            never_reached: true,
            ..verdict(
                ErrorClass::ConnectionLost,
                Severity::High,
                "http: could not connect",
            )
        });
    }
    if let Some(status) = e.status() {
        let code = status.as_u16();
        return Some(match code {
            429 => verdict(
                ErrorClass::RateLimited { retry_after: None },
                Severity::Low,
                "http: 429",
            ),
            401 => verdict(ErrorClass::AuthExpired, Severity::High, "http: 401"),
            403 => verdict(ErrorClass::Permanent, Severity::High, "http: 403"),
            408 => verdict(ErrorClass::Timeout, Severity::Medium, "http: 408"),
            500..=599 => verdict(
                ErrorClass::Transient,
                Severity::Medium,
                "http: server error",
            ),
            _ => verdict(
                ErrorClass::Permanent,
                Severity::Medium,
                "http: client error",
            ),
        });
    }
    if e.is_decode() || e.is_builder() {
        return Some(verdict(
            ErrorClass::Bug,
            Severity::High,
            "http: request or decode defect",
        ));
    }
    if e.is_body() || e.is_request() {
        return Some(verdict(
            ErrorClass::Transient,
            Severity::Medium,
            "http: request failed",
        ));
    }
    None
}
