//! `queue_for_later`: a call that cannot succeed now is written to the outbox, the caller is
//! told, and the worker replays it (with the same call key) when the dependency is back:
//! delivered once, retried with backoff, dead-lettered after its tries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime};

use self_healing::outbox::{Delivery, OutboxConfig, OutboxStatus, track};
use self_healing::{
    EventStore, Healer, InMemoryStore, Outcome, Rejected, WithHealerExt, call_key, self_healing,
};

#[derive(Debug, thiserror::Error, PartialEq)]
enum MailError {
    #[error("mail provider unavailable (503)")]
    Unavailable,
    #[error("invalid address: {0}")]
    Invalid(String),
    #[error(transparent)]
    Rejected(#[from] Rejected),
}

/// A mail provider that dedupes by idempotency key, as real ones do.
struct Provider {
    up: AtomicBool,
    /// Delivered mails by key: a key delivered twice would show as a count of 2.
    delivered: Mutex<HashMap<String, (String, u32)>>,
}

static PROVIDER: LazyLock<Provider> = LazyLock::new(|| Provider {
    up: AtomicBool::new(false),
    delivered: Mutex::new(HashMap::new()),
});

#[self_healing(source = "sendWelcomeMail", category = "api", queue_for_later)]
async fn send_welcome(to: String, name: String) -> Result<(), MailError> {
    if to.contains(' ') {
        return Err(MailError::Invalid(to));
    }
    if !PROVIDER.up.load(Ordering::SeqCst) {
        return Err(MailError::Unavailable);
    }
    let key = call_key()
        .expect("queue_for_later calls are keyed")
        .to_string();
    let mut delivered = PROVIDER.delivered.lock().unwrap();
    let entry = delivered
        .entry(key)
        .or_insert((format!("{to}: hello {name}"), 0));
    entry.1 += 1;
    Ok(())
}

fn healer(store: &InMemoryStore) -> Healer {
    Healer::builder()
        .store(store.clone())
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .seed(11)
        .build()
        .unwrap()
}

// One test: the provider is process-wide state.
#[tokio::test(start_paused = true)]
async fn queued_calls_are_replayed_once_when_the_dependency_is_back() {
    let store = InMemoryStore::new();
    let healer = healer(&store);

    // The provider is down: re-runs fail, the call is queued, the caller is told.
    let (result, delivery) = track(send_welcome("ada@example.com".into(), "Ada".into()))
        .with_healer(healer.clone())
        .await;
    assert_eq!(result, Ok(()));
    let Delivery::Queued(key) = delivery else {
        panic!("expected the call to be queued, got {delivery:?}");
    };
    let queued = store.outbox_list(None, 10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].key, key.to_string());
    assert_eq!(queued[0].source, "sendWelcomeMail");
    assert_eq!(queued[0].status, OutboxStatus::Pending);
    assert!(queued[0].payload.contains("ada@example.com"));

    // A permanent failure is not queued: replaying it would fail the same way.
    let (invalid, delivery) = track(send_welcome("not an address".into(), "X".into()))
        .with_healer(healer.clone())
        .await;
    assert!(matches!(invalid, Err(MailError::Invalid(_))));
    assert_eq!(delivery, Delivery::Now);

    healer.flush().await.unwrap();
    let outcomes: Vec<_> = store.events().iter().map(|e| e.outcome).collect();
    assert!(outcomes.contains(&Outcome::Queued), "{outcomes:?}");

    // Still down: the replay fails, is not queued again, and backs off.
    let config = OutboxConfig {
        backoff: Duration::from_secs(10),
        max_tries: 3,
        ..OutboxConfig::default()
    };
    let now = SystemTime::now();
    let report = healer.replay_outbox_at(&config, now).await.unwrap();
    assert_eq!((report.claimed, report.retried), (1, 1));
    let entry = &store.outbox_list(None, 10).await.unwrap()[0];
    assert_eq!(entry.attempts, 1);
    // The backoff, jittered: between half of it and all of it.
    assert!(entry.next_attempt_at >= now + Duration::from_secs(5));
    assert!(entry.next_attempt_at <= now + Duration::from_secs(10));
    assert!(entry.last_error.as_deref().unwrap().contains("unavailable"));
    assert_eq!(
        store.outbox_list(None, 10).await.unwrap().len(),
        1,
        "not queued twice"
    );
    // Not due yet: nothing is claimed.
    let early = healer.replay_outbox_at(&config, now).await.unwrap();
    assert_eq!(early.claimed, 0);

    // Back up: replayed once, with the key the first call had.
    PROVIDER.up.store(true, Ordering::SeqCst);
    let later = now + Duration::from_secs(11);
    let report = healer.replay_outbox_at(&config, later).await.unwrap();
    assert_eq!((report.claimed, report.delivered), (1, 1));
    let delivered = PROVIDER.delivered.lock().unwrap().clone();
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[&key.to_string()],
        ("ada@example.com: hello Ada".to_owned(), 1)
    );
    assert_eq!(
        store.outbox_list(None, 10).await.unwrap()[0].status,
        OutboxStatus::Delivered
    );
    // Delivered entries are never replayed again.
    let again = healer
        .replay_outbox_at(&config, later + Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(again.claimed, 0);
    assert!(!store.outbox_retry(&key.to_string(), later).await.unwrap());

    // A call that keeps failing is dead-lettered after `max_tries` replays.
    PROVIDER.up.store(false, Ordering::SeqCst);
    let (_, delivery) = track(send_welcome("bob@example.com".into(), "Bob".into()))
        .with_healer(healer.clone())
        .await;
    let Delivery::Queued(bob) = delivery else {
        panic!("expected a queued call")
    };
    let mut at = later;
    for _ in 0..3 {
        at += Duration::from_secs(3600);
        healer.replay_outbox_at(&config, at).await.unwrap();
    }
    let dead = store
        .outbox_list(Some(OutboxStatus::Dead), 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].key, bob.to_string());
    assert_eq!(dead[0].attempts, 3);
    // `retry` revives it with its tries counted afresh; with the provider up it is delivered.
    PROVIDER.up.store(true, Ordering::SeqCst);
    assert!(store.outbox_retry(&bob.to_string(), at).await.unwrap());
    let report = healer.replay_outbox_at(&config, at).await.unwrap();
    assert_eq!(report.delivered, 1);
    assert_eq!(PROVIDER.delivered.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_worker_stops_when_the_healer_shuts_down() {
    let store = InMemoryStore::new();
    let healer = healer(&store);
    let worker = healer.spawn_outbox_worker(OutboxConfig {
        poll: Duration::from_millis(100),
        ..OutboxConfig::default()
    });
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(!worker.is_finished(), "it polls while the healer runs");
    healer.shutdown(Duration::from_secs(1)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), worker)
        .await
        .expect("the worker stopped at its next poll")
        .unwrap();
}
