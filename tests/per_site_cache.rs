//! The cache of last-good values: its size is a per-site setting, and each healer keeps its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use self_healing::settings::Tuning;
use self_healing::{Healer, InMemoryStore, Rejected, WithHealerExt, self_healing};

#[derive(Debug, thiserror::Error, PartialEq)]
enum RateError {
    #[error("rates service: 503 service unavailable")]
    Unavailable,
    #[error(transparent)]
    Rejected(#[from] Rejected),
}

static DOWN: AtomicBool = AtomicBool::new(false);

#[self_healing(source = "getRate", category = "api", cache = "30s", max_attempts = 1)]
async fn get_rate(currency: u32) -> Result<u32, RateError> {
    if DOWN.load(Ordering::SeqCst) {
        return Err(RateError::Unavailable);
    }
    Ok(currency * 10)
}

fn healer(capacity: usize) -> Healer {
    Healer::builder()
        .store(InMemoryStore::new())
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .source("getRate", Tuning::new().cache_capacity(capacity))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_cache_keeps_as_many_values_as_the_site_is_configured_for_per_healer() {
    let h = healer(2);
    let other = healer(2);
    for currency in 1..=3 {
        assert_eq!(
            get_rate(currency).with_healer(h.clone()).await,
            Ok(currency * 10)
        );
        // The oldest value is the one evicted: let each be stored at its own instant.
        tokio::time::advance(Duration::from_millis(1)).await;
    }
    DOWN.store(true, Ordering::SeqCst);
    // Two values fit: the oldest (currency 1) made room for currency 3.
    assert_eq!(
        get_rate(1).with_healer(h.clone()).await,
        Err(RateError::Unavailable)
    );
    assert_eq!(get_rate(2).with_healer(h.clone()).await, Ok(20));
    assert_eq!(get_rate(3).with_healer(h.clone()).await, Ok(30));
    // Another healer never saw a good value: nothing to serve.
    assert_eq!(
        get_rate(3).with_healer(other.clone()).await,
        Err(RateError::Unavailable)
    );
    DOWN.store(false, Ordering::SeqCst);
}
