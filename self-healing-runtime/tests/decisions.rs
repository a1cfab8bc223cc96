//! The healing decisions the lab judges, pinned down one at a time: Retry-After as a floor, the
//! retry budget, what the circuit counts and how it probes, hooks and learning.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Failure, Flaky};
use self_healing_runtime::{
    Category, CircuitState, Healer, HealerBuilder, InMemoryStore, Outcome, WithHealerExt, heal,
};
use tokio::time::Instant;

fn healer() -> HealerBuilder {
    Healer::builder().store(InMemoryStore::new()).seed(5)
}

#[tokio::test(start_paused = true)]
async fn a_503_with_retry_after_is_waited_out() {
    let h = healer().build().unwrap();
    let site = test_site!("unavailableRetryAfter", Api);
    let db = Flaky::failing(
        1,
        "upstream responded 503 Service Unavailable, retry-after: 2",
    );
    let started = Instant::now();
    assert_eq!(
        heal(site, || async { db.call() }).with_healer(h).await,
        Ok(2)
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn every_429_is_waited_out_whichever_strategy_re_runs() {
    let h = healer().max_attempts(4).build().unwrap();
    let site = test_site!("repeated429", Api);
    let times = Arc::new(std::sync::Mutex::new(Vec::new()));
    let calls = AtomicU32::new(0);
    let result = heal(site, || {
        let times = times.clone();
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            times.lock().unwrap().push(Instant::now());
            if n < 3 {
                Err(Failure(
                    "HTTP 429 Too Many Requests (retry-after: 3)".into(),
                ))
            } else {
                Ok(n)
            }
        }
    })
    .with_healer(h)
    .await;
    assert_eq!(result, Ok(3));
    let times = times.lock().unwrap();
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_secs(3),
            "a re-run came {:?} after a 429 asking for 3 s",
            pair[1] - pair[0]
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_longer_than_the_calls_budget_fails_at_once() {
    let store = InMemoryStore::new();
    let h = healer()
        .store(store.clone())
        .max_elapsed(Duration::from_secs(5))
        .build()
        .unwrap();
    let site = test_site!("longRetryAfter", Api);
    let db = Flaky::failing(5, "HTTP 429 Too Many Requests (retry-after: 20)");
    let started = Instant::now();
    let err = heal(site, || async { db.call() })
        .with_healer(h.clone())
        .await
        .unwrap_err();
    assert!(err.0.contains("429"));
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "no wait, no early re-run"
    );
    assert_eq!(db.calls(), 1);
    h.flush().await.expect("flushed");
    let notes: Vec<String> = store.events()[0]
        .diagnosis
        .steps
        .iter()
        .map(|s| s.note.to_string())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("Retry-After does not fit")),
        "{notes:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn expired_credentials_without_a_refresh_hook_are_not_re_run() {
    let h = healer().build().unwrap();
    let site = test_site!("noRefreshHook", Api);
    let api = Flaky::failing(3, "HTTP 401 Unauthorized: token expired");
    assert!(
        heal(site, || async { api.call() })
            .with_healer(h)
            .await
            .is_err()
    );
    assert_eq!(api.calls(), 1, "the same expired token fails the same way");
}

#[tokio::test(start_paused = true)]
async fn a_failing_hook_counts_against_its_strategy() {
    let h = healer()
        .on_reconnect(Category::Database, || async {
            Err("the pool cannot be rebuilt".into())
        })
        .build()
        .unwrap();
    let site = test_site!("failingHook", Database);
    let db = Flaky::failing(3, "connection reset by peer");
    let _ = heal(site, || async { db.call() })
        .with_healer(h.clone())
        .await;
    let reconnect = h
        .patterns()
        .snapshot()
        .into_iter()
        .find(|r| r.strategy == "reconnect")
        .expect("the hook's failure was recorded");
    assert_eq!((reconnect.stat.tried, reconnect.stat.failed), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn fail_once_traffic_heals_and_keeps_the_circuit_closed_with_default_settings() {
    let h = healer().build().unwrap();
    let site = test_site!("failOnce", Database);
    for i in 0..1_000u32 {
        let failed = AtomicU32::new(0);
        let result = heal(site, || async {
            if failed.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(Failure("HTTP 502 Bad Gateway".into()))
            } else {
                Ok(i)
            }
        })
        .with_healer(h.clone())
        .await;
        assert_eq!(result, Ok(i), "call {i}");
    }
    assert_eq!(h.circuit_of(site), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_and_expired_credentials_never_open_the_circuit() {
    let h = common::opening_healer(5).build().unwrap();
    let site = test_site!("answeredNo", Api);
    for i in 0..50 {
        let message = if i % 2 == 0 {
            "HTTP 429 Too Many Requests"
        } else {
            "HTTP 401 Unauthorized: token expired"
        };
        let api = Flaky::failing(1, message);
        assert!(
            heal(site, || async { api.call() })
                .with_healer(h.clone())
                .await
                .is_err()
        );
    }
    assert_eq!(
        h.circuit_of(site),
        CircuitState::Closed,
        "a busy or picky dependency is up"
    );
}

#[tokio::test(start_paused = true)]
async fn successes_before_the_first_failure_count() {
    let h = common::opening_healer(5).build().unwrap();
    let site = test_site!("busySite", Database);
    for _ in 0..200 {
        tokio::time::advance(Duration::from_millis(25)).await;
        assert!(
            heal(site, || async { Ok::<u32, Failure>(1) })
                .with_healer(h.clone())
                .await
                .is_ok()
        );
    }
    for _ in 0..10 {
        let db = Flaky::failing(1, "connection refused");
        assert!(
            heal(site, || async { db.call() })
                .with_healer(h.clone())
                .await
                .is_err()
        );
    }
    assert_eq!(
        h.circuit_of(site),
        CircuitState::Closed,
        "10 failures among 210 calls are 5 %, not 100 %"
    );
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_probes_after_about_a_second_and_backs_off() {
    let store = InMemoryStore::new();
    let h = common::opening_healer(3)
        .store(store.clone())
        .build()
        .unwrap();
    let site = test_site!("probedSite", Database);
    let runs = Arc::new(AtomicU32::new(0));
    let call = || {
        let runs = runs.clone();
        heal(site, move || {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Err::<u32, _>(Failure("connection refused".into()))
            }
        })
        .with_healer(h.clone())
    };
    for _ in 0..3 {
        let _ = call().await;
    }
    assert_eq!(h.circuit_of(site), CircuitState::Open);
    // Calls every 100 ms for 10 s: the dependency sees only the probes, about 1, 2, 4 s apart
    // (±20 %): at most 4 of them in 10 s.
    let before = runs.load(Ordering::SeqCst);
    for _ in 0..100 {
        tokio::time::advance(Duration::from_millis(100)).await;
        let _ = call().await;
    }
    let probes = runs.load(Ordering::SeqCst) - before;
    assert!((3..=4).contains(&probes), "{probes} probes in 10 s");
    h.flush().await.expect("flushed");
    assert!(
        store
            .events()
            .iter()
            .any(|e| e.outcome == Outcome::FastFailed)
    );
}
