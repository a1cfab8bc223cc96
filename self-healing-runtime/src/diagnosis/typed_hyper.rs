//! Typed classification of hyper errors (feature `hyper`).
//!
//! A hyper error that says nothing by its kind (an I/O failure, a user error) is left to the
//! next link of the chain: its cause, often an `io::Error`, is classified there.

use std::error::Error;

use super::typed::{TypedVerdict, verdict};
use super::{ErrorClass, Severity};

pub(crate) fn classify(error: &(dyn Error + 'static)) -> Option<TypedVerdict> {
    let e = error.downcast_ref::<hyper::Error>()?;
    let v = if e.is_timeout() {
        verdict(ErrorClass::Timeout, Severity::Medium, "hyper: timed out")
    } else if e.is_closed() || e.is_incomplete_message() || e.is_shutdown() {
        verdict(
            ErrorClass::ConnectionLost,
            Severity::High,
            "hyper: connection closed mid-message",
        )
    } else if e.is_canceled() {
        // Canceled before dispatch, or when the connection went away: not provably unsent.
        verdict(
            ErrorClass::Transient,
            Severity::Low,
            "hyper: request canceled",
        )
    } else if e.is_parse() {
        verdict(
            ErrorClass::Bug,
            Severity::High,
            "hyper: invalid HTTP message",
        )
    } else {
        return None;
    };
    Some(v)
}
