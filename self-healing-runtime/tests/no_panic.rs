//! Guards work for ordinary error types, and no input reaches a panic: each test here is a path
//! that used to silently do nothing or to panic inside the interceptor.

mod common;

use std::error::Error;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use self_healing_runtime::breaker::BreakerConfig;
use self_healing_runtime::diagnosis::Diagnosis;
use self_healing_runtime::strategy::{Context, Plan, Strategy};
use self_healing_runtime::{
    ErrorOps, Healer, InMemoryStore, Rejected, SiteOptions, WithHealerExt, heal, heal_with,
};

fn healer() -> self_healing_runtime::HealerBuilder {
    Healer::builder().store(InMemoryStore::new()).seed(3)
}

fn rejection(e: &std::io::Error) -> Option<&Rejected> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Rejected>())
}

/// Was: with `std::io::Error` (no `From<Rejected>`), an open circuit let every call through.
#[tokio::test(start_paused = true)]
async fn io_errors_fail_fast_when_the_circuit_is_open() {
    let h = common::opening_healer(5).build().unwrap();
    let site = test_site!("ioCircuit", Database);
    let runs = AtomicU32::new(0);
    let call = || {
        heal(site, || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Err::<u32, _>(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
        })
        .with_healer(h.clone())
    };
    for _ in 0..5 {
        assert!(call().await.is_err());
    }
    let err = call().await.unwrap_err();
    assert_eq!(runs.load(Ordering::SeqCst), 5, "the sixth call did not run");
    assert!(
        matches!(rejection(&err), Some(Rejected::CircuitOpen { .. })),
        "{err:?}"
    );
}

/// Was: a full bulkhead let `io::Error` calls through.
#[tokio::test(start_paused = true)]
async fn io_errors_are_shed_by_a_full_bulkhead() {
    let h = healer().bulkhead("ioBulkhead", 1).build().unwrap();
    let site = test_site!("ioBulkhead", Performance);
    let call = || {
        heal(site, || async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<u32, std::io::Error>(1)
        })
        .with_healer(h.clone())
    };
    let (a, b) = tokio::join!(call(), call());
    let shed: Vec<std::io::Error> = [a, b].into_iter().filter_map(Result::err).collect();
    assert_eq!(shed.len(), 1);
    assert!(matches!(rejection(&shed[0]), Some(Rejected::Shed { .. })));
}

/// Was: `heal(site!(.., timeout = ..), ..)` reached `panic!("… the error type cannot represent
/// it")` when an attempt timed out.
#[tokio::test(start_paused = true)]
async fn a_closure_site_with_a_timeout_times_out_with_an_error() {
    let h = healer().max_attempts(1).build().unwrap();
    let site = test_site!(
        "ioTimeout",
        Api,
        SiteOptions::new().with_timeout(Duration::from_millis(100))
    );
    let err = heal(site, || async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok::<u32, std::io::Error>(1)
    })
    .with_healer(h)
    .await
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(matches!(rejection(&err), Some(Rejected::TimedOut { .. })));
}

/// Boxed errors get fail-fast out of the box too.
#[tokio::test(start_paused = true)]
async fn boxed_errors_fail_fast_when_the_circuit_is_open() {
    let h = common::opening_healer(3).build().unwrap();
    let site = test_site!("boxedCircuit", Api);
    for _ in 0..3 {
        let r = heal_with(site, ErrorOps::boxed(), || async {
            Err::<u32, Box<dyn Error + Send + Sync>>("connection reset by peer".into())
        })
        .with_healer(h.clone())
        .await;
        assert!(r.is_err());
    }
    let err = heal_with(site, ErrorOps::boxed(), || async {
        Ok::<u32, Box<dyn Error + Send + Sync>>(1)
    })
    .with_healer(h)
    .await
    .unwrap_err();
    assert!(err.downcast_ref::<Rejected>().is_some(), "{err}");
}

/// Ops built without a rejection (`fail_fast = false`) on a site that asks for a timeout: the
/// call runs to its end rather than panic, and the checklist says guards could not fail fast.
#[tokio::test(start_paused = true)]
async fn a_timeout_without_a_way_to_say_so_lets_the_call_finish() {
    let h = healer().build().unwrap();
    let site = test_site!(
        "noRejectTimeout",
        Api,
        SiteOptions::new()
            .with_timeout(Duration::from_millis(100))
            .with_fail_fast(false)
    );
    let ops = ErrorOps::<std::num::ParseIntError>::without_rejections(|e| e);
    let n = heal_with(site, ops, || async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        "42".parse::<u32>()
    })
    .with_healer(h.clone())
    .await;
    assert_eq!(n, Ok(42));
    assert!(!h.report(site).can_fail_fast);
}

/// A Retry-After no call could wait out: refused at once, and no overflow.
#[tokio::test(start_paused = true)]
async fn an_absurd_retry_after_fails_at_once() {
    let h = healer().build().unwrap();
    let site = test_site!("absurdRetryAfter", Api);
    let runs = AtomicU32::new(0);
    let started = tokio::time::Instant::now();
    let err = heal(site, || async {
        runs.fetch_add(1, Ordering::SeqCst);
        Err::<u32, _>(common::Failure(
            "HTTP 429 Too Many Requests (retry-after: 99999999999999)".into(),
        ))
    })
    .with_healer(h)
    .await
    .unwrap_err();
    assert!(err.0.contains("429"), "{err:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "no re-run");
    assert_eq!(started.elapsed(), Duration::ZERO, "no wait");
}

/// A custom strategy that asks for an endless wait.
#[derive(Debug)]
struct WaitForever;

impl Strategy for WaitForever {
    fn name(&self) -> &'static str {
        "wait_forever"
    }
    fn prior(&self, _: &Diagnosis) -> f64 {
        0.99
    }
    fn plan(&self, _: &Context<'_>) -> Plan {
        Plan::Rerun {
            delay: Duration::MAX,
            hook: None,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_strategy_asking_for_an_endless_wait_is_refused_by_the_time_budget() {
    let h = healer().strategy(WaitForever).build().unwrap();
    let site = test_site!("waitForever", Runtime);
    let db = common::Flaky::failing(1, "deadlock detected");
    let result = heal(site, || async { db.call() }).with_healer(h).await;
    // The endless wait is refused; the next strategy (retry) heals.
    assert_eq!(result, Ok(2));
}

#[tokio::test(start_paused = true)]
async fn settings_at_their_extremes_do_not_panic() {
    // A breaker whose probes are as far away as a duration can say.
    let h = healer()
        .max_attempts(1)
        .bulkhead_wait(Duration::MAX)
        .breaker(BreakerConfig {
            minimum_calls: 1,
            probe_after: Duration::MAX,
            probe_max: Duration::MAX,
            ..BreakerConfig::default()
        })
        .build()
        .unwrap();
    let site = test_site!("extremeBreaker", Database);
    let call = || {
        heal(site, || async {
            Err::<u32, _>(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
        })
        .with_healer(h.clone())
    };
    assert!(
        rejection(&call().await.unwrap_err()).is_none(),
        "the first call ran"
    );
    let second = call().await.unwrap_err();
    assert!(matches!(
        rejection(&second),
        Some(Rejected::CircuitOpen { .. })
    ));

    // A backoff as long as a duration can say, and no time cap: the re-run waits (on the paused
    // clock) instead of overflowing.
    let h = healer()
        .max_attempts(2)
        .backoff(Duration::MAX, Duration::MAX)
        .max_elapsed(Duration::MAX)
        .build()
        .unwrap();
    let site = test_site!("extremeBackoff", Database);
    let waiting = tokio::time::timeout(
        Duration::from_secs(60),
        heal(site, || async {
            Err::<u32, _>(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
        })
        .with_healer(h),
    )
    .await;
    assert!(
        waiting.is_err(),
        "still waiting for its re-run after a minute"
    );
}
