//! Errors that declare what they are: the declaration wins over the message rules, its
//! Retry-After (seconds or HTTP-date) is honoured, "never reached" allows re-running a write,
//! and it is found anywhere in the `source()` chain.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use self_healing_runtime::diagnosis::{DeclaresFailure, ErrorClass, RetryAfter};
use self_healing_runtime::{Healer, InMemoryStore, Rejected, SiteOptions, WithHealerExt, heal};
use tokio::time::Instant;

/// A client error that knows what it is. Its messages alone would mislead the rules: "connection
/// reset" reads as a lost connection, "bad gateway" as a plain transient failure.
#[derive(Debug, Clone, PartialEq)]
enum ClientError {
    /// Declared permanent, although its message says "connection reset".
    Misleading,
    /// 429 or 503 with a Retry-After.
    Busy(RetryAfter),
    /// The request was never sent; the message does not say so.
    NotSent,
    /// Says nothing about itself: the rules decide.
    Plain,
    Rejected(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Misleading => f.write_str("connection reset by peer: invalid account"),
            ClientError::Busy(_) => f.write_str("bad gateway"),
            ClientError::NotSent => f.write_str("request failed"),
            ClientError::Plain => f.write_str("connection reset by peer"),
            ClientError::Rejected(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<Rejected> for ClientError {
    fn from(r: Rejected) -> Self {
        ClientError::Rejected(r.to_string())
    }
}

impl DeclaresFailure for ClientError {
    fn failure_class(&self) -> Option<ErrorClass> {
        match self {
            ClientError::Misleading => Some(ErrorClass::Permanent),
            ClientError::Busy(_) => Some(ErrorClass::Transient),
            ClientError::NotSent => Some(ErrorClass::ConnectionLost),
            ClientError::Plain | ClientError::Rejected(_) => None,
        }
    }
    fn retry_after(&self) -> Option<RetryAfter> {
        match self {
            ClientError::Busy(r) => Some(*r),
            _ => None,
        }
    }
    fn reached_other_side(&self) -> Option<bool> {
        matches!(self, ClientError::NotSent).then_some(false)
    }
}

self_healing_runtime::declare_failures!(ClientError);

/// A wrapper, as an application error type wraps a client's.
#[derive(Debug)]
struct AppError(ClientError);

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("saving the order failed")
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl From<Rejected> for AppError {
    fn from(r: Rejected) -> Self {
        AppError(ClientError::Rejected(r.to_string()))
    }
}

fn healer() -> Healer {
    Healer::builder()
        .store(InMemoryStore::new())
        .backoff(Duration::from_millis(10), Duration::from_millis(100))
        .build()
        .unwrap()
}

/// Fails with `error` `n` times, then answers 7; counts the runs.
async fn call<E: Clone>(runs: &AtomicU32, n: u32, error: E) -> Result<u32, E> {
    if runs.fetch_add(1, Ordering::SeqCst) < n {
        Err(error)
    } else {
        Ok(7)
    }
}

#[tokio::test(start_paused = true)]
async fn a_declared_class_wins_over_the_message() {
    let site = test_site!("declaredPermanent", Api);
    let runs = AtomicU32::new(0);
    let result = heal(site, || call(&runs, 1, ClientError::Misleading))
        .with_healer(healer())
        .await;
    assert_eq!(result, Err(ClientError::Misleading));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "a permanent failure is not re-run"
    );

    // The same message from an error that declares nothing reads as a lost connection: healed.
    let site = test_site!("declaredNothing", Api);
    let runs = AtomicU32::new(0);
    let result = heal(site, || call(&runs, 1, ClientError::Plain))
        .with_healer(healer())
        .await;
    assert_eq!(result, Ok(7));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_declared_retry_after_is_waited_in_seconds_or_as_a_date() {
    for (source, retry_after) in [
        (
            test_site!("declaredWaitSeconds", Api),
            RetryAfter::parse("3").unwrap(),
        ),
        (
            test_site!("declaredWaitDate", Api),
            // Dates are read on the system clock: four seconds from now, a little less by then.
            RetryAfter::At(SystemTime::now() + Duration::from_secs(4)),
        ),
    ] {
        let runs = AtomicU32::new(0);
        let start = Instant::now();
        let result = heal(source, || call(&runs, 1, ClientError::Busy(retry_after)))
            .with_healer(healer())
            .await;
        assert_eq!(result, Ok(7), "{}", source.source());
        assert!(
            start.elapsed() >= Duration::from_secs(3),
            "{}: re-run after {:?}, before the Retry-After",
            source.source(),
            start.elapsed()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn never_reached_lets_a_write_that_is_not_idempotent_run_again() {
    let site = test_site!(
        "declaredNotSent",
        Database,
        SiteOptions::new().with_idempotent(false)
    );
    let runs = AtomicU32::new(0);
    let result = heal(site, || call(&runs, 1, ClientError::NotSent))
        .with_healer(healer())
        .await;
    assert_eq!(result, Ok(7), "the request was never sent: safe to send");

    // Without the declaration, a lost connection on a write may have committed: not re-run.
    let site = test_site!(
        "undeclaredWrite",
        Database,
        SiteOptions::new().with_idempotent(false)
    );
    let runs = AtomicU32::new(0);
    let result = heal(site, || call(&runs, 1, ClientError::Plain))
        .with_healer(healer())
        .await;
    assert_eq!(result, Err(ClientError::Plain));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_declaration_deep_in_the_chain_is_found() {
    let site = test_site!("declaredInChain", Api);
    let runs = AtomicU32::new(0);
    let result = heal(site, || async {
        if runs.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(AppError(ClientError::Misleading))
        } else {
            Ok(7)
        }
    })
    .with_healer(healer())
    .await;
    assert!(result.is_err(), "declared permanent through the wrapper");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn retry_after_values() {
    assert_eq!(
        RetryAfter::parse("0"),
        Some(RetryAfter::After(Duration::ZERO))
    );
    assert_eq!(
        RetryAfter::parse("99999999999999999999999"),
        Some(RetryAfter::After(Duration::from_secs(u64::MAX))),
        "too large for u64 is still a wait, not an error"
    );
    assert_eq!(RetryAfter::parse("-1"), None);
    assert_eq!(RetryAfter::parse(""), None);
    assert_eq!(RetryAfter::parse("1.5"), None);
    let past = RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
    assert_eq!(past.delay_from(SystemTime::now()), Duration::ZERO);
}
