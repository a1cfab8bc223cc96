//! Integration tests of the interceptor driving scripted flaky dependencies, one per healing
//! scenario. Time is tokio's paused clock (async) or a recording sleeper (sync): no real sleeps.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Failure, Flaky};
use self_healing_runtime::event::StepResult;
use self_healing_runtime::{
    BreakerConfig, BudgetConfig, Category, CircuitState, ErrorClass, ErrorOps, Healer,
    HealingEvent, InMemoryStore, Outcome, Rejected, SiteOptions, WithHealerExt, heal,
    heal_blocking, heal_with, with_healer,
};

fn healer(store: &InMemoryStore) -> self_healing_runtime::HealerBuilder {
    Healer::builder().store(store.clone()).seed(7)
}

async fn events(healer: &Healer, store: &InMemoryStore) -> Vec<HealingEvent> {
    healer.flush().await.expect("flushed");
    store.events()
}

#[tokio::test(start_paused = true)]
async fn transient_errors_are_healed_by_retry() {
    let store = InMemoryStore::new();
    let h = healer(&store).build().unwrap();
    let db = Flaky::failing(2, "deadlock detected");
    let site = test_site!("retryTransient", Database);
    let started = tokio::time::Instant::now();
    let value = heal(site, || async { db.call() })
        .with_healer(h.clone())
        .await;
    assert_eq!(value, Ok(3));
    assert_eq!(db.calls(), 3);
    assert!(
        started.elapsed() > Duration::ZERO,
        "backoff waited on the paused clock"
    );
    let events = events(&h, &store).await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.outcome, Outcome::Healed);
    assert_eq!(e.strategy.as_deref(), Some("retry"));
    assert_eq!(e.class, ErrorClass::Transient);
    assert_eq!(e.attempts, 3);
    assert_eq!(e.source, "retryTransient");
    assert_eq!(e.category, Category::Database);
    let tries: Vec<_> = e
        .diagnosis
        .steps
        .iter()
        .filter(|s| s.result != StepResult::Skipped)
        .collect();
    assert_eq!(tries.len(), 2, "two re-runs: {:?}", e.diagnosis.steps);
    assert_eq!(tries[1].result, StepResult::Healed);
}

#[tokio::test(start_paused = true)]
async fn lost_connection_is_healed_by_the_reconnect_hook() {
    let store = InMemoryStore::new();
    let reconnects = Arc::new(AtomicU32::new(0));
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let h = {
        let reconnects = reconnects.clone();
        let healthy = healthy.clone();
        healer(&store)
            .on_reconnect(Category::Database, move || {
                let reconnects = reconnects.clone();
                let healthy = healthy.clone();
                async move {
                    reconnects.fetch_add(1, Ordering::SeqCst);
                    healthy.store(true, Ordering::SeqCst);
                    Ok(())
                }
            })
            .build()
            .unwrap()
    };
    let site = test_site!("reconnectLost", Database);
    let calls = AtomicU32::new(0);
    let result = heal(site, || async {
        calls.fetch_add(1, Ordering::SeqCst);
        if healthy.load(Ordering::SeqCst) {
            Ok(1)
        } else {
            Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
        }
    })
    .with_healer(h.clone())
    .await;
    assert_eq!(result.unwrap(), 1);
    // A plain re-run costs less than rebuilding the pool, so it goes first; when it meets the
    // same broken connection, the reconnect hook runs and its re-run heals.
    assert_eq!(reconnects.load(Ordering::SeqCst), 1, "the hook ran once");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "a plain re-run, then one after the hook"
    );
    let e = &events(&h, &store).await[0];
    assert_eq!(e.strategy.as_deref(), Some("reconnect"));
    assert_eq!(e.first_actor(), Some("retry"));
    assert_eq!(e.class, ErrorClass::ConnectionLost);
    assert_eq!(e.outcome, Outcome::Healed);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_wait_for_retry_after() {
    let store = InMemoryStore::new();
    let h = healer(&store).build().unwrap();
    let api = Flaky::failing(1, "HTTP 429 Too Many Requests; retry-after: 3");
    let site = test_site!("rateLimited", Api);
    let started = tokio::time::Instant::now();
    let result = heal(site, || async { api.call() })
        .with_healer(h.clone())
        .await;
    assert_eq!(result, Ok(2));
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "waited {:?}",
        started.elapsed()
    );
    let e = &events(&h, &store).await[0];
    assert_eq!(e.strategy.as_deref(), Some("rate_limit_wait"));
    assert_eq!(
        e.class,
        ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        }
    );
}

#[tokio::test(start_paused = true)]
async fn expired_credentials_are_refreshed() {
    let store = InMemoryStore::new();
    let token = Arc::new(Mutex::new("old"));
    let h = {
        let token = token.clone();
        healer(&store)
            .on_refresh_credentials("callCrm", move || {
                let token = token.clone();
                async move {
                    *token.lock().unwrap() = "new";
                    Ok(())
                }
            })
            .build()
            .unwrap()
    };
    let site = test_site!("callCrm", Api);
    let result = heal(site, || async {
        match *token.lock().unwrap() {
            "new" => Ok("ok"),
            _ => Err(Failure("401 Unauthorized: token expired".into())),
        }
    })
    .with_healer(h.clone())
    .await;
    assert_eq!(result, Ok("ok"));
    let e = &events(&h, &store).await[0];
    assert_eq!(e.strategy.as_deref(), Some("credential_refresh"));
    assert_eq!(e.class, ErrorClass::AuthExpired);
}

#[tokio::test(start_paused = true)]
async fn hard_outage_opens_the_breaker_then_a_probe_closes_it() {
    let store = InMemoryStore::new();
    let h = healer(&store)
        .max_attempts(1)
        .breaker(BreakerConfig {
            minimum_calls: 5,
            probe_after: Duration::from_secs(10),
            probe_max: Duration::from_secs(10),
            half_open_probes: 1,
            ..BreakerConfig::default()
        })
        .build()
        .unwrap();
    let site = test_site!("outage", Api);
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let calls = Arc::new(AtomicU32::new(0));
    // Box<dyn Error + Send + Sync> converts from `Rejected`, so the breaker can fail fast.
    let call = || {
        let down = down.clone();
        let calls = calls.clone();
        heal_with(site, ErrorOps::boxed(), move || {
            let down = down.clone();
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                if down.load(Ordering::SeqCst) {
                    Err::<u32, Box<dyn std::error::Error + Send + Sync>>(
                        "service unavailable (503)".into(),
                    )
                } else {
                    Ok(7)
                }
            }
        })
        .with_healer(h.clone())
    };
    for _ in 0..5 {
        assert!(call().await.is_err());
    }
    assert_eq!(h.circuit_of(site), CircuitState::Open);
    let before = calls.load(Ordering::SeqCst);
    let err = call().await.unwrap_err();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before,
        "open circuit: the body did not run"
    );
    assert!(
        err.downcast_ref::<Rejected>().is_some(),
        "failed fast with Rejected: {err}"
    );
    // Recovery: after `probe_after` (±20 %), one probe runs, succeeds and closes the circuit.
    down.store(false, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(12)).await;
    assert_eq!(call().await.unwrap(), 7);
    assert_eq!(h.circuit_of(site), CircuitState::Closed);
    let events = events(&h, &store).await;
    let fast_failed = events
        .iter()
        .find(|e| e.outcome == Outcome::FastFailed)
        .expect("a fast-failed event");
    // Named for what happened: the circuit refused it; no connection was lost.
    assert_eq!(fast_failed.class, ErrorClass::CircuitOpen);
    assert!(fast_failed.diagnosis.never_reached);
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_meets_an_expired_credential_refreshes_it_and_closes_the_circuit() {
    // The dependency was down long enough to open the circuit; meanwhile our token expired.
    // Every probe would meet the stale token and reopen the circuit for ever, unless the probe
    // that failed with 401 gets its credential refreshed and one repaired re-run as a probe.
    let store = InMemoryStore::new();
    let token = Arc::new(Mutex::new("old"));
    let refreshes = Arc::new(AtomicU32::new(0));
    let h = {
        let (token, refreshes) = (token.clone(), refreshes.clone());
        healer(&store)
            .max_attempts(2)
            .breaker(BreakerConfig {
                minimum_calls: 5,
                probe_after: Duration::from_secs(10),
                probe_max: Duration::from_secs(10),
                half_open_probes: 1,
                ..BreakerConfig::default()
            })
            .on_refresh_credentials("probeCrm", move || {
                let (token, refreshes) = (token.clone(), refreshes.clone());
                async move {
                    refreshes.fetch_add(1, Ordering::SeqCst);
                    *token.lock().unwrap() = "new";
                    Ok(())
                }
            })
            .build()
            .unwrap()
    };
    let site = test_site!("probeCrm", Api);
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let call = || {
        let (down, token) = (down.clone(), token.clone());
        heal_with(site, ErrorOps::boxed(), move || {
            let (down, token) = (down.clone(), token.clone());
            async move {
                if down.load(Ordering::SeqCst) {
                    return Err::<u32, Box<dyn std::error::Error + Send + Sync>>(
                        "service unavailable (503)".into(),
                    );
                }
                match *token.lock().unwrap() {
                    "new" => Ok(7),
                    _ => Err("401 Unauthorized: token expired".into()),
                }
            }
        })
        .with_healer(h.clone())
    };
    for _ in 0..5 {
        assert!(call().await.is_err());
    }
    assert_eq!(h.circuit_of(site), CircuitState::Open);

    down.store(false, Ordering::SeqCst);
    // A call the open circuit refuses never ran: it repairs nothing and runs no hook.
    let refused = call().await.unwrap_err();
    assert!(refused.downcast_ref::<Rejected>().is_some(), "{refused}");
    assert_eq!(refreshes.load(Ordering::SeqCst), 0);

    tokio::time::advance(Duration::from_secs(12)).await;
    assert_eq!(call().await.unwrap(), 7, "the probe healed");
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(h.circuit_of(site), CircuitState::Closed);
    let healed = events(&h, &store)
        .await
        .into_iter()
        .find(|e| e.outcome == Outcome::Healed)
        .expect("a healed event");
    assert_eq!(healed.strategy.as_deref(), Some("credential_refresh"));
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_sites_are_not_rerun() {
    let store = InMemoryStore::new();
    let h = healer(&store).build().unwrap();
    let site = test_site!("chargeCard", Api, SiteOptions::new().with_idempotent(false));
    let api = Flaky::failing(1, "503 service unavailable");
    let result = heal(site, || async { api.call() })
        .with_healer(h.clone())
        .await;
    assert!(result.is_err());
    assert_eq!(api.calls(), 1, "the write was not repeated");
    let e = &events(&h, &store).await[0];
    assert!(
        e.diagnosis
            .steps
            .iter()
            .any(|s| s.note.contains("not idempotent")),
        "{:?}",
        e.diagnosis.steps
    );
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_sites_rerun_when_the_call_never_left() {
    let store = InMemoryStore::new();
    let h = healer(&store).build().unwrap();
    let site = test_site!(
        "chargeCardRefused",
        Api,
        SiteOptions::new().with_idempotent(false)
    );
    let calls = AtomicU32::new(0);
    let result = heal(site, || async {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
        } else {
            Ok(())
        }
    })
    .with_healer(h.clone())
    .await;
    assert!(
        result.is_ok(),
        "a refused connection never reached the server: safe to re-run"
    );
}

#[tokio::test(start_paused = true)]
async fn nested_sites_do_not_multiply_reruns() {
    let store = InMemoryStore::new();
    let h = healer(&store).max_attempts(3).build().unwrap();
    let inner_site = test_site!("nestedInner", Database);
    let outer_site = test_site!("nestedOuter", Database);
    let db = Flaky::failing(100, "deadlock detected");
    let result: Result<u32, Failure> = heal(outer_site, || async {
        heal(inner_site, || async { db.call() }).await
    })
    .with_healer(h.clone())
    .await;
    assert!(result.is_err());
    // B re-runs during A's first attempt (3 calls); A's 2 re-runs call B once each: 5, not 3 × 3.
    assert_eq!(
        db.calls(),
        5,
        "attempts(A) + attempts(B) - 1, never the product"
    );
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_budget_is_recorded() {
    let store = InMemoryStore::new();
    let h = healer(&store)
        .retry_budget(BudgetConfig {
            ratio: 0.0,
            floor_per_sec: 1.0,
            max_tokens: 1.0,
        })
        .build()
        .unwrap();
    let site = test_site!("budgeted", Database);
    let db = Flaky::failing(100, "deadlock detected");
    for _ in 0..3 {
        let _ = heal(site, || async { db.call() })
            .with_healer(h.clone())
            .await;
    }
    let outcomes: Vec<Outcome> = events(&h, &store).await.iter().map(|e| e.outcome).collect();
    assert!(outcomes.contains(&Outcome::BudgetExhausted), "{outcomes:?}");
    assert!(
        db.calls() < 9,
        "the budget stopped re-runs: {} calls",
        db.calls()
    );
}

#[tokio::test(start_paused = true)]
async fn bugs_are_escalated_without_rerun() {
    let store = InMemoryStore::new();
    let h = healer(&store).build().unwrap();
    let site = test_site!("computeInvoice", Runtime);
    let calls = AtomicU32::new(0);
    let result: Result<(), Failure> = heal(site, || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err(Failure("called unwrap on a None value".into()))
    })
    .with_healer(h.clone())
    .await;
    assert!(result.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let e = &events(&h, &store).await[0];
    assert_eq!(e.class, ErrorClass::Bug);
    assert_eq!(e.strategy.as_deref(), Some("escalate"));
    assert_eq!(e.outcome, Outcome::Failed);
    assert_eq!(
        e.severity,
        self_healing_runtime::Severity::Critical,
        "high raised to critical"
    );
}

#[tokio::test(start_paused = true)]
async fn timeouts_cancel_the_attempt_and_rerun() {
    let store = InMemoryStore::new();
    let h = healer(&store).build().unwrap();
    let site = test_site!(
        "slowReport",
        Performance,
        SiteOptions::new().with_timeout(Duration::from_millis(100))
    );
    let calls = AtomicU32::new(0);
    let ops = ErrorOps::<Failure>::of_error().with_reject(|r| Failure(r.to_string()));
    let result = heal_with(site, ops, || async {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        Ok::<_, Failure>("report")
    })
    .with_healer(h.clone())
    .await;
    assert_eq!(result, Ok("report"));
    let e = &events(&h, &store).await[0];
    assert_eq!(e.class, ErrorClass::Timeout);
    assert_eq!(e.strategy.as_deref(), Some("timeout"));
}

#[test]
fn sync_sites_heal_with_the_blocking_sleeper() {
    let store = InMemoryStore::new();
    let slept = Arc::new(Mutex::new(Vec::new()));
    let h = {
        let slept = slept.clone();
        healer(&store)
            .blocking_sleep(move |d| slept.lock().unwrap().push(d))
            .build()
            .unwrap()
    };
    let site = test_site!("syncTransient", Database);
    let db = Flaky::failing(2, "database is locked");
    let result = with_healer(&h, || heal_blocking(site, || db.call()));
    assert_eq!(result, Ok(3));
    assert_eq!(
        slept.lock().unwrap().len(),
        2,
        "two backoffs, recorded instead of slept"
    );
}

#[test]
fn without_a_healer_errors_pass_through_untouched() {
    let site = test_site!("noHealer", Database);
    let db = Flaky::failing(1, "deadlock detected");
    assert_eq!(
        heal_blocking(site, || db.call()),
        Err(Failure("deadlock detected".into()))
    );
    assert_eq!(db.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn learning_credits_the_strategy_that_healed() {
    let store = InMemoryStore::new();
    let h = healer(&store)
        .on_reconnect(Category::Database, || async { Ok(()) })
        .build()
        .unwrap();
    let site = test_site!("learnedSite", Database);
    // One broken connection: the plain re-run (cheaper than the reconnect hook) heals it, and
    // only it is credited.
    let db = Flaky::failing(1, "connection reset by peer");
    heal(site, || async { db.call() })
        .with_healer(h.clone())
        .await
        .unwrap();
    let rows = h.patterns().snapshot();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].strategy, "retry");
    assert_eq!((rows[0].stat.tried, rows[0].stat.healed), (1, 1));
}
