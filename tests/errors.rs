//! Which error the caller gets when healing fails: the last attempt's, as tower, Polly and backon
//! return it. It describes the dependency as it is now (a deadlock that became a lost connection
//! is a lost connection); the healing event keeps the diagnosis of the whole call.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use self_healing::{Healer, InMemoryStore, Outcome, Rejected, WithHealerExt, self_healing};

#[derive(Debug, thiserror::Error)]
enum DbError {
    #[error("deadlock detected")]
    Deadlock,
    #[error("connection reset by peer")]
    Reset,
    #[error("replica unavailable")]
    ReplicaDown,
    #[error(transparent)]
    Rejected(#[from] Rejected),
}

fn healer() -> (Healer, InMemoryStore) {
    let store = InMemoryStore::new();
    let healer = Healer::builder()
        .store(store.clone())
        .backoff(Duration::from_millis(1), Duration::from_millis(2))
        .seed(3)
        .build()
        .expect("a valid healer");
    (healer, store)
}

static TWO: AtomicU32 = AtomicU32::new(0);

/// Two attempts, two different retryable errors.
#[self_healing(source = "errorsTwoFailures", category = "database", max_attempts = 2)]
async fn two_failures() -> Result<u32, DbError> {
    match TWO.fetch_add(1, Ordering::SeqCst) {
        0 => Err(DbError::Deadlock),
        _ => Err(DbError::Reset),
    }
}

#[tokio::test(start_paused = true)]
async fn after_failed_healing_the_caller_gets_the_last_attempts_error() {
    let (healer, store) = healer();
    let err = two_failures()
        .with_healer(healer.clone())
        .await
        .expect_err("both attempts fail");
    assert_eq!(
        TWO.load(Ordering::SeqCst),
        2,
        "healing re-ran the call once"
    );
    assert!(matches!(err, DbError::Reset), "not the last error: {err:?}");

    healer.flush().await.expect("flushed");
    let events = store.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, Outcome::Failed);
    assert_eq!(events[0].attempts, 2);
}

static WITH_FALLBACK: AtomicU32 = AtomicU32::new(0);
static REPLICA: AtomicU32 = AtomicU32::new(0);

async fn replica() -> Result<u32, DbError> {
    REPLICA.fetch_add(1, Ordering::SeqCst);
    Err(DbError::ReplicaDown)
}

/// Re-runs fail, then the fallback fails too.
#[self_healing(
    source = "errorsFailedFallback",
    category = "database",
    max_attempts = 2,
    fallback = replica
)]
async fn failed_fallback() -> Result<u32, DbError> {
    match WITH_FALLBACK.fetch_add(1, Ordering::SeqCst) {
        0 => Err(DbError::Deadlock),
        _ => Err(DbError::Reset),
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_fallback_returns_the_calls_last_error_not_the_fallbacks() {
    let (healer, _store) = healer();
    let err = failed_fallback()
        .with_healer(healer)
        .await
        .expect_err("everything fails");
    assert_eq!(WITH_FALLBACK.load(Ordering::SeqCst), 2);
    assert_eq!(REPLICA.load(Ordering::SeqCst), 1, "the fallback was tried");
    assert!(matches!(err, DbError::Reset), "{err:?}");
}
