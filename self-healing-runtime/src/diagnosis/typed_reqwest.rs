//! Typed classification of reqwest errors and of [`HttpStatusError`] (feature `reqwest`).

use std::error::Error;
use std::time::SystemTime;

use super::typed::{TypedVerdict, verdict};
use super::{ErrorClass, Severity};
use crate::http_status::HttpStatusError;

pub(crate) fn classify(error: &(dyn Error + 'static)) -> Option<TypedVerdict> {
    if let Some(e) = error.downcast_ref::<HttpStatusError>() {
        let retry_after = e.retry_after().map(|r| r.delay_from(SystemTime::now()));
        return Some(classify_status(e.status().as_u16(), retry_after));
    }
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
        // `Response::error_for_status` drops the headers: no Retry-After here (see
        // `http_status::error_for_status`, which keeps it).
        return Some(classify_status(status.as_u16(), None));
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

/// What an error status says; `retry_after` is the response's own, which the healer waits for
/// a 429 and for a 5xx (a 503 asks for it as much as a 429 does).
fn classify_status(code: u16, retry_after: Option<std::time::Duration>) -> TypedVerdict {
    let v = match code {
        429 => verdict(
            ErrorClass::RateLimited { retry_after },
            Severity::Low,
            "http: 429",
        ),
        401 => verdict(ErrorClass::AuthExpired, Severity::High, "http: 401"),
        403 => verdict(ErrorClass::Permanent, Severity::High, "http: 403"),
        408 => verdict(ErrorClass::Timeout, Severity::Medium, "http: 408"),
        503 => verdict(ErrorClass::Transient, Severity::Medium, "http: 503"),
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
    };
    let retry_after = match v.class {
        ErrorClass::RateLimited { .. } | ErrorClass::Transient => retry_after,
        _ => None,
    };
    TypedVerdict { retry_after, ..v }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::StatusCode;

    use super::*;
    use crate::diagnosis::RetryAfter;

    fn status(code: u16, retry_after: Option<RetryAfter>) -> TypedVerdict {
        let e = HttpStatusError::new(StatusCode::from_u16(code).unwrap(), retry_after, "");
        classify(&e).unwrap()
    }

    #[test]
    fn statuses_and_their_waits() {
        let two = Some(RetryAfter::After(Duration::from_secs(2)));
        let v = status(429, two);
        assert_eq!(
            v.class,
            ErrorClass::RateLimited {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(v.retry_after, Some(Duration::from_secs(2)));
        let v = status(503, two);
        assert_eq!(v.class, ErrorClass::Transient);
        assert_eq!(v.retry_after, Some(Duration::from_secs(2)));
        assert_eq!(status(502, None).class, ErrorClass::Transient);
        assert_eq!(status(401, two).class, ErrorClass::AuthExpired);
        assert_eq!(status(401, two).retry_after, None);
        assert_eq!(status(408, None).class, ErrorClass::Timeout);
        assert_eq!(status(404, None).class, ErrorClass::Permanent);
        assert_eq!(status(422, None).class, ErrorClass::Permanent);
        assert!(!status(429, None).never_reached);
    }

    #[test]
    fn a_date_in_the_past_waits_nothing() {
        let past = RetryAfter::parse("Thu, 01 Jan 1970 00:01:00 GMT");
        assert_eq!(status(503, past).retry_after, Some(Duration::ZERO));
    }
}
