//! Errors that say what they are: an error type declares its class, its Retry-After and whether
//! the call reached the other side, and that declaration wins over every rule.
//!
//! The diagnosis walks the error's `source()` chain as `dyn Error`, where a trait cannot be
//! looked up; so a type that implements [`DeclaresFailure`] is registered once, at link time,
//! with [`declare_failures!`](crate::declare_failures), the way wrapped functions register
//! their sites.

use std::error::Error;
use std::time::{Duration, SystemTime};

use super::typed::TypedVerdict;
use super::{ErrorClass, Severity};

/// An error type that knows what kind of failure it is.
///
/// Every method has a default that says "no opinion": a type declares only what it knows, and
/// returning `None` from [`failure_class`](Self::failure_class) lets the built-in
/// classification and the message rules decide as if the type were unknown.
///
/// ```
/// use std::time::Duration;
/// use self_healing_runtime::diagnosis::{DeclaresFailure, ErrorClass, RetryAfter};
///
/// #[derive(Debug, thiserror::Error)]
/// enum PaymentError {
///     #[error("the provider is throttling us")]
///     Throttled { retry_after: Option<RetryAfter> },
///     #[error("card declined")]
///     Declined,
///     #[error("the request was never sent")]
///     NotSent,
/// }
///
/// impl DeclaresFailure for PaymentError {
///     fn failure_class(&self) -> Option<ErrorClass> {
///         Some(match self {
///             PaymentError::Throttled { .. } => ErrorClass::RateLimited { retry_after: None },
///             PaymentError::Declined => ErrorClass::Permanent,
///             PaymentError::NotSent => ErrorClass::ConnectionLost,
///         })
///     }
///     fn retry_after(&self) -> Option<RetryAfter> {
///         match self {
///             PaymentError::Throttled { retry_after } => *retry_after,
///             _ => None,
///         }
///     }
///     fn reached_other_side(&self) -> Option<bool> {
///         Some(!matches!(self, PaymentError::NotSent))
///     }
/// }
///
/// // Once per type, anywhere in the program:
/// self_healing_runtime::declare_failures!(PaymentError);
///
/// let throttled = PaymentError::Throttled { retry_after: RetryAfter::parse("2") };
/// assert_eq!(throttled.retry_after(), Some(RetryAfter::After(Duration::from_secs(2))));
/// ```
pub trait DeclaresFailure: Error + 'static {
    /// What kind of failure this is; `None` lets the other classifications decide.
    fn failure_class(&self) -> Option<ErrorClass> {
        None
    }

    /// How long the other side asked us to wait (its `Retry-After`), for any class: a 503 may
    /// ask for a wait as well as a 429.
    fn retry_after(&self) -> Option<RetryAfter> {
        None
    }

    /// Whether the call reached the other side: `Some(false)` when it provably did not (a
    /// refused connection, a request never sent), which makes a re-run safe even for a write
    /// that is not idempotent.
    fn reached_other_side(&self) -> Option<bool> {
        None
    }

    /// How bad it is; by default, what is usual for its class.
    fn severity(&self) -> Option<Severity> {
        None
    }
}

/// A `Retry-After`: a delay in seconds or an HTTP-date (RFC 9110, section 10.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryAfter {
    /// Wait this long.
    After(Duration),
    /// Wait until then.
    At(SystemTime),
}

impl RetryAfter {
    /// Parses a `Retry-After` header value: whole seconds (`120`) or an HTTP-date
    /// (`Wed, 21 Oct 2026 07:28:00 GMT`). `None` for anything else.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use self_healing_runtime::diagnosis::RetryAfter;
    ///
    /// assert_eq!(RetryAfter::parse(" 120 "), Some(RetryAfter::After(Duration::from_secs(120))));
    /// assert_eq!(
    ///     RetryAfter::parse("Thu, 01 Jan 1970 00:01:00 GMT"),
    ///     Some(RetryAfter::At(UNIX_EPOCH + Duration::from_secs(60)))
    /// );
    /// assert_eq!(RetryAfter::parse("soon"), None);
    /// ```
    pub fn parse(value: &str) -> Option<RetryAfter> {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            // More digits than a u64 holds is still "a very long time".
            let secs = value.parse::<u64>().unwrap_or(u64::MAX);
            return Some(RetryAfter::After(Duration::from_secs(secs)));
        }
        httpdate::parse_http_date(value).ok().map(RetryAfter::At)
    }

    /// The wait this asks for, counted from `now` (zero for a date already past).
    pub fn delay_from(&self, now: SystemTime) -> Duration {
        match *self {
            RetryAfter::After(d) => d,
            RetryAfter::At(at) => at.duration_since(now).unwrap_or(Duration::ZERO),
        }
    }
}

/// One registered type's view: `None` when the link is of another type.
#[doc(hidden)]
pub type Declarer = fn(&(dyn Error + 'static)) -> Option<Declaration>;

/// What a registered type declared about one error.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Declaration {
    class: Option<ErrorClass>,
    retry_after: Option<RetryAfter>,
    reached: Option<bool>,
    severity: Option<Severity>,
}

/// The declarer of `T`, for [`declare_failures!`](crate::declare_failures).
#[doc(hidden)]
pub fn declarer_of<T: DeclaresFailure>(error: &(dyn Error + 'static)) -> Option<Declaration> {
    let e = error.downcast_ref::<T>()?;
    Some(Declaration {
        class: e.failure_class(),
        retry_after: e.retry_after(),
        reached: e.reached_other_side(),
        severity: e.severity(),
    })
}

/// Every type registered with [`declare_failures!`](crate::declare_failures).
#[doc(hidden)]
#[linkme::distributed_slice]
pub static DECLARERS: [Declarer];

/// Registers error types that implement [`DeclaresFailure`], so that the diagnosis finds them
/// anywhere in an error's `source()` chain. Once per type, at item level, anywhere in the
/// program:
///
/// ```
/// # use self_healing_runtime::diagnosis::DeclaresFailure;
/// #[derive(Debug, thiserror::Error)]
/// #[error("quota exceeded")]
/// struct QuotaExceeded;
/// impl DeclaresFailure for QuotaExceeded {}
///
/// self_healing_runtime::declare_failures!(QuotaExceeded);
/// ```
#[macro_export]
macro_rules! declare_failures {
    ($($ty:ty),+ $(,)?) => {
        $(
            const _: () = {
                #[$crate::__private::linkme::distributed_slice($crate::diagnosis::DECLARERS)]
                #[linkme(crate = $crate::__private::linkme)]
                static DECLARER: $crate::diagnosis::Declarer = $crate::diagnosis::declarer_of::<$ty>;
            };
        )+
    };
}

/// What a registered type declared about this link, as a verdict; `None` when no registered
/// type matches or the type declared no class.
pub(crate) fn classify(error: &(dyn Error + 'static)) -> Option<TypedVerdict> {
    let d = DECLARERS.iter().find_map(|declare| declare(error))?;
    let class = d.class?;
    let retry_after = d
        .retry_after
        .map(|r| r.delay_from(SystemTime::now()))
        .or(match class {
            ErrorClass::RateLimited { retry_after } => retry_after,
            _ => None,
        });
    let class = match class {
        ErrorClass::RateLimited { .. } => ErrorClass::RateLimited { retry_after },
        other => other,
    };
    Some(TypedVerdict {
        class,
        severity: d.severity.unwrap_or_else(|| usual_severity(&class)),
        never_reached: d.reached == Some(false),
        reason: "declared by the error type",
        retry_after,
    })
}

/// The severity a failure of this class usually has.
fn usual_severity(class: &ErrorClass) -> Severity {
    match class {
        ErrorClass::RateLimited { .. } | ErrorClass::Transient => Severity::Low,
        ErrorClass::Timeout | ErrorClass::Permanent => Severity::Medium,
        ErrorClass::ConnectionLost
        | ErrorClass::AuthExpired
        | ErrorClass::ResourceExhausted
        | ErrorClass::Bug
        | ErrorClass::CircuitOpen => Severity::High,
    }
}
