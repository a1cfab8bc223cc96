//! Guards through the attribute, for the error types people use: fail-fast and shedding with
//! `anyhow::Error` and `std::io::Error`, and a cache site whose circuit is open with nothing
//! cached for the arguments (which used to panic inside the interceptor).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use self_healing::{BreakerConfig, Healer, InMemoryStore, Rejected, WithHealerExt, self_healing};

static DOWN: AtomicBool = AtomicBool::new(true);
static RUNS: AtomicU32 = AtomicU32::new(0);

#[self_healing(source = "guardsAnyhow", category = "api")]
async fn fetch_quote(symbol: String) -> anyhow::Result<u32> {
    RUNS.fetch_add(1, Ordering::SeqCst);
    if DOWN.load(Ordering::SeqCst) {
        anyhow::bail!("connection refused by quotes.example.com");
    }
    Ok(symbol.len() as u32)
}

static CACHE_DOWN: AtomicBool = AtomicBool::new(false);

#[self_healing(source = "guardsCache", category = "database", cache = "30s")]
fn load_profile(id: u64) -> Result<u64, std::io::Error> {
    if CACHE_DOWN.load(Ordering::SeqCst) {
        return Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    }
    Ok(id * 10)
}

fn opening_healer() -> Healer {
    Healer::builder()
        .store(InMemoryStore::new())
        .max_attempts(1)
        .breaker(BreakerConfig {
            minimum_calls: 3,
            ..BreakerConfig::default()
        })
        .build()
        .expect("a healer")
}

#[tokio::test(start_paused = true)]
async fn anyhow_errors_fail_fast_when_the_circuit_is_open() {
    let h = opening_healer();
    for _ in 0..3 {
        assert!(
            fetch_quote("ACME".into())
                .with_healer(h.clone())
                .await
                .is_err()
        );
    }
    let before = RUNS.load(Ordering::SeqCst);
    let err = fetch_quote("ACME".into())
        .with_healer(h.clone())
        .await
        .unwrap_err();
    assert_eq!(
        RUNS.load(Ordering::SeqCst),
        before,
        "refused without running"
    );
    assert!(
        matches!(
            err.downcast_ref::<Rejected>(),
            Some(Rejected::CircuitOpen { .. })
        ),
        "{err:#}"
    );
    // The dependency is back: the first probe after about a second closes the circuit.
    DOWN.store(false, Ordering::SeqCst);
    tokio::time::advance(Duration::from_millis(1300)).await;
    assert_eq!(fetch_quote("ACME".into()).with_healer(h).await.unwrap(), 4);
}

#[test]
fn a_cache_site_with_an_open_circuit_and_nothing_cached_returns_the_refusal() {
    let h = opening_healer();
    self_healing::with_healer(&h, || {
        assert_eq!(load_profile(1).unwrap(), 10, "cached for id 1");
        CACHE_DOWN.store(true, Ordering::SeqCst);
        for id in 100..103 {
            assert!(load_profile(id).is_err());
        }
        // Open: id 1 is answered from the cache, id 7 has nothing cached and gets the refusal as
        // an `io::Error` (this used to panic).
        assert_eq!(load_profile(1).unwrap(), 10);
        let err = load_profile(7).unwrap_err();
        let refusal = err.get_ref().and_then(|e| e.downcast_ref::<Rejected>());
        assert!(
            matches!(refusal, Some(Rejected::CircuitOpen { .. })),
            "{err:?}"
        );
    });
}
