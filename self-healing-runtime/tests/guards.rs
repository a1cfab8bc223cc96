//! Bulkhead shedding, custom strategies as `dyn Strategy`, panics, and an error storm.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Failure, Flaky};
use self_healing_runtime::diagnosis::Diagnosis;
use self_healing_runtime::hooks::HookKind;
use self_healing_runtime::strategy::{Context, Plan, Strategy};
use self_healing_runtime::{
    ErrorOps, Healer, InMemoryStore, Outcome, Rejected, SiteOptions, WithHealerExt, heal,
    heal_blocking_with, heal_with, with_healer,
};

#[tokio::test(start_paused = true)]
async fn a_full_bulkhead_sheds_with_a_clear_error() {
    let store = InMemoryStore::new();
    let h = Healer::builder()
        .store(store.clone())
        .bulkhead("importCsv", 1)
        .build()
        .unwrap();
    let site = test_site!("importCsv", Performance);
    let running = Arc::new(AtomicU32::new(0));
    let call = || {
        let running = running.clone();
        heal_with(site, ErrorOps::boxed(), move || {
            let running = running.clone();
            async move {
                running.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            }
        })
        .with_healer(h.clone())
    };
    let (a, b) = tokio::join!(call(), call());
    let shed = [a, b]
        .into_iter()
        .filter_map(Result::err)
        .collect::<Vec<_>>();
    assert_eq!(shed.len(), 1, "one of two concurrent calls is shed");
    let rejected = shed[0]
        .downcast_ref::<Rejected>()
        .expect("a Rejected error");
    assert!(
        matches!(
            rejected,
            Rejected::Shed {
                max_concurrent: 1,
                ..
            }
        ),
        "{rejected}"
    );
    assert_eq!(running.load(Ordering::SeqCst), 1);
    assert!(shed[0].to_string().contains("bulkhead full"), "{}", shed[0]);
}

/// Serves a constant for one source: proves `dyn Strategy` plugs in and its plan is executed.
#[derive(Debug)]
struct AlwaysRerunOnce(Arc<AtomicU32>);

impl Strategy for AlwaysRerunOnce {
    fn name(&self) -> &'static str {
        "custom_rerun"
    }
    fn prior(&self, _: &Diagnosis) -> f64 {
        0.99
    }
    fn plan(&self, cx: &Context<'_>) -> Plan {
        self.0.fetch_add(1, Ordering::SeqCst);
        if cx.uses > 0 {
            return Plan::NotApplicable("once per call");
        }
        Plan::Rerun {
            delay: Duration::ZERO,
            hook: Some(HookKind::Custom("warm-cache")),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn custom_strategies_and_hooks_plug_in_as_dyn() {
    let planned = Arc::new(AtomicU32::new(0));
    let warmed = Arc::new(AtomicU32::new(0));
    let store = InMemoryStore::new();
    let h = {
        let warmed = warmed.clone();
        Healer::builder()
            .store(store.clone())
            .strategy(AlwaysRerunOnce(planned.clone()))
            .hook(HookKind::Custom("warm-cache"), "catalog", move || {
                let warmed = warmed.clone();
                async move {
                    warmed.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
            .build()
            .unwrap()
    };
    let boxed: Box<dyn Strategy> = Box::new(AlwaysRerunOnce(Arc::new(AtomicU32::new(0))));
    assert_eq!(boxed.name(), "custom_rerun");
    let site = test_site!("catalog", Runtime);
    let db = Flaky::failing(1, "stale catalog entry: invalid state");
    let value = heal(site, || async { db.call() })
        .with_healer(h.clone())
        .await;
    assert_eq!(value, Ok(2));
    assert_eq!(warmed.load(Ordering::SeqCst), 1);
    assert!(planned.load(Ordering::SeqCst) >= 1);
    h.flush().await.expect("flushed");
    assert_eq!(store.events()[0].strategy.as_deref(), Some("custom_rerun"));
}

#[test]
fn duplicate_strategy_names_are_a_config_error() {
    let err = Healer::builder()
        .strategy(AlwaysRerunOnce(Arc::new(AtomicU32::new(0))))
        .strategy(AlwaysRerunOnce(Arc::new(AtomicU32::new(0))))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("custom_rerun"), "{err}");
}

#[test]
fn bad_settings_name_the_setting() {
    let err = Healer::builder().max_attempts(0).build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid `max_attempts`: must be between 1 and 100 (the first call counts)"
    );
}

#[test]
fn caught_panics_become_errors_of_class_bug() {
    let store = InMemoryStore::new();
    let h = Healer::builder().store(store.clone()).build().unwrap();
    let site = test_site!(
        "panicky",
        Runtime,
        SiteOptions::new().with_catch_panic(true)
    );
    let ops = ErrorOps::<Failure>::of_error().with_reject(|r| Failure(r.to_string()));
    let result: Result<(), Failure> = with_healer(&h, || {
        heal_blocking_with(site, ops, || panic!("index out of bounds: the len is 0"))
    });
    let err = result.unwrap_err();
    assert!(err.0.contains("panicked"), "{err}");
    // The runtime keeps working after the panic.
    let ok: Result<u32, Failure> = with_healer(&h, || heal_blocking_with(site, ops, || Ok(1)));
    assert_eq!(ok, Ok(1));
}

#[test]
fn an_error_storm_is_folded_and_fully_counted() {
    const CALLS: u64 = 100_000;
    let store = InMemoryStore::new();
    let h = Healer::builder()
        .store(store.clone())
        .queue_capacity(1024)
        .build()
        .unwrap();
    // Every call runs and fails: the breaker must not answer for the body, or the storm would
    // be partly fast-failed instead of counted as failures.
    let site = test_site!(
        "stormSite",
        Runtime,
        SiteOptions::new().with_fail_fast(false)
    );
    let ops = ErrorOps::<Failure>::without_rejections(|e| e);
    with_healer(&h, || {
        for i in 0..CALLS {
            let _ = heal_blocking_with(site, ops, || {
                Err::<(), _>(Failure(format!("invariant broken for order {i}")))
            });
        }
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(h.flush()).expect("flushed");
    let stats = h.queue_stats();
    assert_eq!(stats.recorded, CALLS);
    assert_eq!(stats.dropped, 0);
    assert_eq!(
        store.total_count() + stats.lost_to_store,
        CALLS,
        "every failure is counted"
    );
    assert!(
        store.events().len() < 1000,
        "folded into few records: {}",
        store.events().len()
    );
    let odd: Vec<_> = store
        .events()
        .into_iter()
        .filter(|e| e.outcome != Outcome::Failed)
        .collect();
    assert!(odd.is_empty(), "{odd:#?}");
}

#[tokio::test(start_paused = true)]
async fn secrets_never_reach_the_store() {
    let store = InMemoryStore::new();
    let h = Healer::builder().store(store.clone()).build().unwrap();
    let site = test_site!("leakyConnect", Database);
    let result: Result<(), Failure> = heal(site, || async {
        Err(Failure(
            "invalid input: postgres://app:hunter2@db:5432/crm rejected token=abc123 for bob@example.com".into(),
        ))
    })
    .with_healer(h.clone())
    .await;
    assert!(
        result.unwrap_err().0.contains("hunter2"),
        "the caller gets its error untouched"
    );
    h.flush().await.expect("flushed");
    let message = &store.events()[0].message;
    for secret in ["hunter2", "abc123", "bob@example.com"] {
        assert!(!message.contains(secret), "{secret} leaked into: {message}");
    }
}
