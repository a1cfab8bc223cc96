//! Fault injection: every kind of fault, on tokio's paused clock, through wrapped sites, with and
//! without a healer; determinism; and the settings `build` refuses.
#![cfg(feature = "chaos")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::Failure;
use self_healing_runtime::chaos::{Chaos, ChaosError, Fault, RetryAfter, WithChaosExt, with_chaos};
use self_healing_runtime::{
    Category, ErrorClass, FaultKind, Healer, InMemoryStore, Rejected, WithHealerExt, heal,
    heal_blocking,
};
use tokio::time::Instant;

fn healer(store: &InMemoryStore) -> Healer {
    Healer::builder()
        .store(store.clone())
        .seed(7)
        .build()
        .expect("a healer")
}

/// A chaos layer with one rule.
fn chaos_on(target: impl Into<self_healing_runtime::chaos::Target>, fault: Fault) -> Chaos {
    Chaos::builder()
        .fault(target, fault)
        .build()
        .expect("a valid rule")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The fault an error carries, if it is an injected one.
fn injected(e: &Failure) -> bool {
    e.0.starts_with("`") && e.0.contains("injected")
}

#[tokio::test(start_paused = true)]
async fn a_users_own_error_comes_back_as_itself() {
    let site = test_site!("chaosOwnError", Database);
    let chaos = chaos_on(
        "chaosOwnError",
        Fault::error(1.0, || Failure("deadlock detected".into())),
    );
    let runs = AtomicU32::new(0);
    let result = heal(site, || async {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok::<u32, Failure>(1)
    })
    .with_chaos(chaos.clone())
    .await;
    assert_eq!(
        result,
        Err(Failure("deadlock detected".into())),
        "exactly the error made"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0, "the body did not run");
    assert_eq!(chaos.stats("chaosOwnError").injected, 1);
}

#[tokio::test(start_paused = true)]
async fn an_error_of_another_type_travels_as_an_injected_rejection() {
    let site = test_site!("chaosOtherError", Api);
    let chaos = chaos_on(
        "chaosOtherError",
        Fault::error(1.0, || std::io::Error::other("upstream said no")),
    );
    let err = heal(site, || async { Ok::<u32, Failure>(1) })
        .with_chaos(chaos)
        .await
        .unwrap_err();
    assert!(injected(&err), "{err:?}");
    assert!(err.0.contains("upstream said no"), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn without_a_healer_faults_still_strike_and_nothing_heals() {
    // The "no healing" baseline of the lab: a wrapped function with chaos and no healer.
    let site = test_site!("chaosNoHealer", Database);
    let chaos = chaos_on("chaosNoHealer", Fault::outage().between(secs(1), secs(2)));
    let call = || heal(site, || async { Ok::<u32, Failure>(1) }).with_chaos(chaos.clone());
    assert_eq!(call().await, Ok(1), "before the window");
    tokio::time::advance(secs(1)).await;
    let err = call().await.unwrap_err();
    assert!(err.0.contains("connection refused"), "{err:?}");
    tokio::time::advance(secs(1)).await;
    assert_eq!(call().await, Ok(1), "after the window");
    assert_eq!(chaos.stats("chaosNoHealer").calls, 3);
    assert_eq!(chaos.stats("chaosNoHealer").injected, 1);
}

#[tokio::test(start_paused = true)]
async fn latency_delays_calls_on_tokios_clock() {
    let site = test_site!("chaosLatency", Api);
    let chaos = chaos_on(
        "chaosLatency",
        Fault::latency(1.0, Duration::from_millis(300)),
    );
    let started = Instant::now();
    let result = heal(site, || async { Ok::<u32, Failure>(1) })
        .with_chaos(chaos.clone())
        .await;
    assert_eq!(result, Ok(1));
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    assert_eq!(chaos.stats("chaosLatency").delayed, 1);
}

#[tokio::test(start_paused = true)]
async fn a_broken_connection_is_repaired_by_the_reconnect_hook() {
    let store = InMemoryStore::new();
    let reconnects = Arc::new(AtomicU32::new(0));
    let h = {
        let reconnects = reconnects.clone();
        Healer::builder()
            .store(store.clone())
            .on_reconnect(Category::Database, move || {
                let reconnects = reconnects.clone();
                async move {
                    reconnects.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
            .build()
            .unwrap()
    };
    let site = test_site!("chaosBroken", Database);
    let chaos = chaos_on("chaosBroken", Fault::broken_connection());
    for _ in 0..5 {
        let result = heal(site, || async { Ok::<u32, Failure>(1) })
            .with_healer(h.clone())
            .with_chaos(chaos.clone())
            .await;
        assert_eq!(result, Ok(1), "healed");
    }
    assert_eq!(
        reconnects.load(Ordering::SeqCst),
        1,
        "one reconnect repaired it for good"
    );
    assert_eq!(
        chaos.stats("chaosBroken").injected,
        2,
        "a plain re-run first, then the hook"
    );
}

#[tokio::test(start_paused = true)]
async fn an_expired_token_is_renewed_by_the_refresh_hook() {
    let store = InMemoryStore::new();
    let h = Healer::builder()
        .store(store.clone())
        .on_refresh_credentials(Category::Api, || async { Ok(()) })
        .build()
        .unwrap();
    let site = test_site!("chaosToken", Api);
    let chaos = chaos_on("chaosToken", Fault::expiring_token(secs(10)));
    let call = || {
        heal(site, || async { Ok::<u32, Failure>(1) })
            .with_healer(h.clone())
            .with_chaos(chaos.clone())
    };
    assert_eq!(call().await, Ok(1));
    tokio::time::advance(secs(10)).await;
    assert_eq!(call().await, Ok(1), "expired, refreshed, re-run");
    assert_eq!(call().await, Ok(1), "the new token is good");
    assert_eq!(chaos.stats("chaosToken").injected, 1);
    h.flush().await.expect("flushed");
    let event = &store.events()[0];
    assert_eq!(event.class, ErrorClass::AuthExpired);
    assert_eq!(event.strategy.as_deref(), Some("credential_refresh"));
}

#[tokio::test(start_paused = true)]
async fn rate_limits_say_when_to_come_back_and_the_healer_listens() {
    let store = InMemoryStore::new();
    let h = healer(&store);
    let site = test_site!("chaosLimited", Api);
    let chaos = chaos_on(
        "chaosLimited",
        Fault::rate_limit(1, secs(1)).retry_after(RetryAfter::Exact),
    );
    let call = || {
        heal(site, || async { Ok::<u32, Failure>(1) })
            .with_healer(h.clone())
            .with_chaos(chaos.clone())
    };
    assert_eq!(call().await, Ok(1));
    let started = Instant::now();
    assert_eq!(call().await, Ok(1), "a 429, a wait, a re-run");
    assert!(
        started.elapsed() >= secs(1),
        "waited out the Retry-After: {:?}",
        started.elapsed()
    );
    let stats = chaos.stats("chaosLimited");
    assert_eq!(stats.injected, 1);
    assert_eq!(stats.early_reruns, 0, "no re-run before the Retry-After");
}

#[tokio::test(start_paused = true)]
async fn one_bad_backend_of_two_fails_each_calls_first_attempt() {
    let store = InMemoryStore::new();
    let h = healer(&store);
    let site = test_site!("chaosBackend", Database);
    let chaos = chaos_on("chaosBackend", Fault::bad_backend(2));
    for _ in 0..100 {
        let result = heal(site, || async { Ok::<u32, Failure>(1) })
            .with_healer(h.clone())
            .with_chaos(chaos.clone())
            .await;
        assert_eq!(result, Ok(1), "every call heals with default settings");
    }
    let stats = chaos.stats("chaosBackend");
    assert_eq!((stats.calls, stats.injected), (200, 100));
}

#[tokio::test(start_paused = true)]
async fn a_stale_connection_hangs_then_times_out() {
    let site = test_site!("chaosStale", Database);
    let chaos = chaos_on(
        "chaosStale",
        Fault::stale_connection(Duration::from_millis(500)),
    );
    let started = Instant::now();
    let err = heal(site, || async { Ok::<u32, Failure>(1) })
        .with_chaos(chaos)
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_millis(500));
    assert!(err.0.contains("timed out"), "{err:?}");
}

#[test]
fn sync_sites_take_faults_too() {
    let site = test_site!("chaosSync", Runtime);
    let chaos = chaos_on("chaosSync", Fault::unavailable(1.0));
    let result = with_chaos(&chaos, || heal_blocking(site, || Ok::<u32, Failure>(1)));
    let err = result.unwrap_err();
    assert!(err.0.contains("503"), "{err:?}");
}

#[test]
fn io_errors_carry_the_kind_of_the_fault() {
    let site = test_site!("chaosIo", Database);
    let chaos = chaos_on("chaosIo", Fault::broken_connection());
    let err = with_chaos(&chaos, || {
        heal_blocking(site, || Ok::<u32, std::io::Error>(1))
    })
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    let rejected = err.get_ref().and_then(|e| e.downcast_ref::<Rejected>());
    assert!(
        matches!(rejected, Some(Rejected::Injected { fault, .. }) if fault.kind() == FaultKind::ConnectionReset),
        "{rejected:?}"
    );
}

#[test]
fn the_same_seed_gives_the_same_faults() {
    let site = test_site!("chaosSeeded", Api);
    let run = |seed| {
        let chaos = Chaos::builder()
            .seed(seed)
            .fault("chaosSeeded", Fault::unavailable(0.3))
            .build()
            .unwrap();
        with_chaos(&chaos, || {
            (0..200)
                .map(|_| heal_blocking(site, || Ok::<u32, Failure>(1)).is_err())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
}

#[test]
fn targets_by_category_and_the_rest_untouched() {
    let db = test_site!("chaosCategoryDb", Database);
    let api = test_site!("chaosCategoryApi", Api);
    let chaos = chaos_on(Category::Database, Fault::unavailable(1.0));
    with_chaos(&chaos, || {
        assert!(heal_blocking(db, || Ok::<u32, Failure>(1)).is_err());
        assert_eq!(heal_blocking(api, || Ok::<u32, Failure>(1)), Ok(1));
    });
    assert_eq!(
        chaos.stats("chaosCategoryApi").calls,
        0,
        "not targeted, not counted"
    );
}

#[test]
fn bad_rules_are_refused_naming_what_is_wrong() {
    let _site = test_site!("chaosNamedSource", Runtime);
    let err = Chaos::builder()
        .fault("chaosNamedSorce", Fault::outage())
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        ChaosError::UnknownSource {
            source: "chaosNamedSorce".into(),
            did_you_mean: Some("chaosNamedSource"),
        }
    );
    assert!(
        err.to_string().contains("did you mean `chaosNamedSource`"),
        "{err}"
    );
    let err = Chaos::builder()
        .fault(Category::Api, Fault::unavailable(1.5))
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("rate 1.5 is not between 0 and 1"),
        "{err}"
    );
    let err = Chaos::builder()
        .fault(Category::Api, Fault::outage().between(secs(5), secs(1)))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("ends"), "{err}");
}

#[test]
fn a_site_no_rule_targets_keeps_its_plain_success_path() {
    let untouched = test_site!("chaosUntouched", Runtime);
    let _chaos = Chaos::builder().fault("chaosNoHealer", Fault::outage());
    let _ = heal_blocking(untouched, || Ok::<u32, Failure>(1));
    assert!(self_healing_runtime::__private::is_fast(untouched));
}
