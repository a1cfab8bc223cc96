//! What a site answers with when healing cannot produce its value (`default`, `skip`), the
//! repairs that come before (`clear_cache`, `switch_endpoint`), and strategies written with the
//! public API only.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use self_healing::endpoints::Endpoints;
use self_healing::hooks::{HookContext, HookKind};
use self_healing::strategy::{Context, Plan, Strategy};
use self_healing::{
    Category, Diagnosis, ErrorClass, Healer, HealerBuilder, InMemoryStore, Outcome, Rejected,
    WithHealerExt, self_healing,
};

#[derive(Debug, thiserror::Error, PartialEq, Clone)]
enum AppError {
    #[error("service unavailable (503)")]
    Unavailable,
    #[error("record 7 not found")]
    NotFound,
    #[error("connection refused")]
    Refused,
    #[error(transparent)]
    Rejected(#[from] Rejected),
}

fn builder(store: &InMemoryStore) -> HealerBuilder {
    Healer::builder()
        .store(store.clone())
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .blocking_sleep(|_| {})
        .seed(5)
}

async fn only_event(healer: &Healer, store: &InMemoryStore) -> self_healing::HealingEvent {
    healer.flush().await.unwrap();
    let events = store.events();
    assert_eq!(events.len(), 1, "{events:?}");
    events.into_iter().next().unwrap()
}

// ----- default and skip -----

#[self_healing(source = "recommendations", category = "api", default = Vec::new())]
async fn recommendations(calls: &AtomicU32) -> Result<Vec<String>, AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Unavailable)
}

#[tokio::test(start_paused = true)]
async fn a_declared_default_answers_after_the_re_runs() {
    let store = InMemoryStore::new();
    let healer = builder(&store).build().unwrap();
    let calls = AtomicU32::new(0);
    let value = recommendations(&calls).with_healer(healer.clone()).await;
    assert_eq!(value, Ok(Vec::new()));
    assert!(calls.load(Ordering::SeqCst) > 1, "re-runs came first");
    let e = only_event(&healer, &store).await;
    assert_eq!(e.outcome, Outcome::Healed);
    assert_eq!(e.strategy.as_deref(), Some("default_value"));
}

#[self_healing(source = "trackPageView", category = "api", skip)]
fn track_page_view(calls: &AtomicU32) -> Result<(), AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Unavailable)
}

#[test]
fn skipped_work_is_recorded_as_skipped() {
    let store = InMemoryStore::new();
    let healer = builder(&store).build().unwrap();
    let calls = AtomicU32::new(0);
    let result = self_healing::with_healer(&healer, || track_page_view(&calls));
    assert_eq!(result, Ok(()));
    assert!(calls.load(Ordering::SeqCst) > 1, "re-runs came first");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let e = rt.block_on(only_event(&healer, &store));
    assert_eq!(e.outcome, Outcome::Skipped, "never silently: {e:?}");
    assert_eq!(e.strategy.as_deref(), Some("skip"));
}

#[tokio::test(start_paused = true)]
async fn without_a_healer_nothing_is_answered_for_the_function() {
    let calls = AtomicU32::new(0);
    assert_eq!(recommendations(&calls).await, Err(AppError::Unavailable));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

// ----- clear_cache -----

#[self_healing(source = "priceOfCachedItem", category = "database")]
async fn price(cache: &Mutex<Option<u32>>) -> Result<u32, AppError> {
    match *cache.lock().unwrap() {
        // A stale id from the cache: the row is gone.
        Some(_) => Err(AppError::NotFound),
        None => Ok(42),
    }
}

#[tokio::test(start_paused = true)]
async fn the_clear_cache_hook_runs_before_one_re_run() {
    let store = InMemoryStore::new();
    let cache = Arc::new(Mutex::new(Some(7)));
    let cleared = cache.clone();
    let healer = builder(&store)
        .on_clear_cache(Category::Database, move || {
            let cleared = cleared.clone();
            async move {
                *cleared.lock().unwrap() = None;
                Ok(())
            }
        })
        .build()
        .unwrap();
    assert_eq!(price(&cache).with_healer(healer.clone()).await, Ok(42));
    let e = only_event(&healer, &store).await;
    assert_eq!(e.class, ErrorClass::Permanent);
    assert_eq!(e.strategy.as_deref(), Some("clear_cache"));
    assert_eq!(e.outcome, Outcome::Healed);
}

// ----- switch_endpoint -----

#[self_healing(source = "sendSms", category = "api")]
async fn send_sms(providers: &Endpoints, down: &str) -> Result<String, AppError> {
    let endpoint = providers.current();
    if endpoint.url() == down {
        return Err(AppError::Refused);
    }
    Ok(endpoint.url().to_owned())
}

#[tokio::test(start_paused = true)]
async fn a_failing_endpoint_is_switched_for_the_next_healthy_one() {
    let store = InMemoryStore::new();
    let providers = Endpoints::new("https://primary.example").or("https://standby.example");
    let healer = builder(&store)
        .endpoints(self_healing::HookScope::source("sendSms"), &providers)
        .build()
        .unwrap();
    let served = send_sms(&providers, "https://primary.example")
        .with_healer(healer.clone())
        .await;
    assert_eq!(served.as_deref(), Ok("https://standby.example"));
    let e = only_event(&healer, &store).await;
    assert_eq!(e.strategy.as_deref(), Some("switch_endpoint"));
    // The next call goes to the standby at once: the primary is cooling down.
    assert_eq!(
        send_sms(&providers, "https://primary.example")
            .with_healer(healer.clone())
            .await
            .as_deref(),
        Ok("https://standby.example")
    );
    let report = providers.report();
    assert!(report[0].down);
    assert_eq!(report[0].failed, 1, "switched away once");
    assert_eq!((report[1].served, report[1].failed), (2, 0));
}

// ----- strategies of one's own, with the public API only -----

/// Compensates a failed "publish" through a hook that sees the call, then lets it fail.
#[derive(Debug)]
struct Compensate;

impl Strategy for Compensate {
    fn name(&self) -> &'static str {
        "compensate"
    }

    fn prior(&self, diagnosis: &Diagnosis) -> f64 {
        if diagnosis.class == ErrorClass::Permanent {
            1.0
        } else {
            0.0
        }
    }

    fn plan(&self, cx: &Context<'_>) -> Plan {
        // The strategy sees the error itself, not only its diagnosis.
        match cx.error.downcast_ref::<AppError>() {
            Some(AppError::NotFound) if cx.site.source() == "publishPost" => {
                Plan::RunHookThenFail(HookKind::Custom("unpublish"))
            }
            _ => Plan::NotApplicable("only a missing record of publishPost"),
        }
    }
}

#[self_healing(source = "publishPost", category = "api", idempotent = "keyed")]
async fn publish() -> Result<(), AppError> {
    Err(AppError::NotFound)
}

#[tokio::test(start_paused = true)]
async fn a_custom_strategy_sees_the_error_and_its_hook_sees_the_call() {
    let store = InMemoryStore::new();
    let seen: Arc<Mutex<Vec<HookContext>>> = Arc::default();
    let log = seen.clone();
    let healer = builder(&store)
        .strategy(Compensate)
        .hook_with_context(
            HookKind::Custom("unpublish"),
            self_healing::HookScope::source("publishPost"),
            move |cx: HookContext| {
                log.lock().unwrap().push(cx);
                async { Ok(()) }
            },
        )
        .build()
        .unwrap();
    assert_eq!(
        publish().with_healer(healer.clone()).await,
        Err(AppError::NotFound),
        "the hook ran, then the call failed with its own error"
    );
    let e = only_event(&healer, &store).await;
    assert_eq!(e.strategy.as_deref(), Some("compensate"));
    assert_eq!(e.outcome, Outcome::Failed);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let cx = &seen[0];
    assert_eq!(cx.site.map(|s| s.source()), Some("publishPost"));
    assert_eq!(cx.asked_by, "compensate");
    assert_eq!(cx.class, Some(ErrorClass::Permanent));
    assert_eq!(cx.attempt, 1);
    assert_eq!(
        cx.call_key.map(|k| k.to_string()),
        e.call_key,
        "the hook saw the call's key"
    );
}
