//! `Healer::flush` and `Healer::shutdown` report why not every recorded event is committed: the
//! store's error, events lost on the way (once each), a worker that is gone, a deadline. Time is
//! tokio's paused clock.

mod common;

use std::time::Duration;

use common::Failure;
use self_healing_runtime::event::{BoxFuture, EventStore, HealingEvent, StoreError};
use self_healing_runtime::{FlushError, Healer, InMemoryStore, WithHealerExt, heal};

/// A store that answers as told.
#[derive(Debug, Default)]
struct Scripted {
    refuse_writes: bool,
    flush_error: Option<&'static str>,
    never_closes: bool,
}

impl EventStore for Scripted {
    fn write_batch<'a>(
        &'a self,
        _events: &'a [HealingEvent],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let result = match self.refuse_writes {
            true => Err("database is down".into()),
            false => Ok(()),
        };
        Box::pin(std::future::ready(result))
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        let result = match self.flush_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        };
        Box::pin(std::future::ready(result))
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        match self.never_closes {
            true => Box::pin(std::future::pending()),
            false => self.flush(),
        }
    }
}

/// One failing call (a permanent error: recorded at once, never re-run).
async fn fail_once(healer: &Healer) {
    let site = test_site!("flushProbe", Database);
    let result: Result<u32, Failure> = heal(site, || async {
        Err(Failure(
            "duplicate key value violates unique constraint".into(),
        ))
    })
    .with_healer(healer.clone())
    .await;
    assert!(result.is_err());
}

fn healer_with(store: impl EventStore) -> Healer {
    Healer::builder()
        .store(store)
        .build()
        .expect("a valid healer")
}

#[tokio::test(start_paused = true)]
async fn flush_and_shutdown_succeed_when_everything_is_committed() {
    let store = InMemoryStore::new();
    let healer = healer_with(store.clone());
    fail_once(&healer).await;
    healer.flush().await.expect("flushed");
    assert_eq!(store.total_count(), 1);
    fail_once(&healer).await;
    healer
        .shutdown(Duration::from_secs(5))
        .await
        .expect("shut down");
    assert_eq!(store.total_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn flush_reports_the_stores_error() {
    let healer = healer_with(Scripted {
        flush_error: Some("could not commit: disk full"),
        ..Scripted::default()
    });
    fail_once(&healer).await;
    let e = healer.flush().await.expect_err("the store failed");
    assert!(matches!(e, FlushError::Store(_)), "{e:?}");
    assert!(e.to_string().contains("disk full"), "{e}");
    assert!(std::error::Error::source(&e).is_some());
}

#[tokio::test(start_paused = true)]
async fn events_the_store_refused_are_reported_once() {
    let healer = healer_with(Scripted {
        refuse_writes: true,
        ..Scripted::default()
    });
    fail_once(&healer).await;
    let e = healer
        .flush()
        .await
        .expect_err("the store refused the batch");
    assert!(
        matches!(
            e,
            FlushError::Lost {
                dropped: 0,
                lost_to_store: 1
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("refused by the store"), "{e}");
    // Reported: the next flush has nothing new to say.
    healer.flush().await.expect("nothing lost since");
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_at_its_deadline() {
    let healer = healer_with(Scripted {
        never_closes: true,
        ..Scripted::default()
    });
    fail_once(&healer).await;
    let e = healer
        .shutdown(Duration::from_secs(5))
        .await
        .expect_err("the store never closes");
    assert!(
        matches!(e, FlushError::TimedOut { deadline } if deadline == Duration::from_secs(5)),
        "{e:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn events_recorded_after_shutdown_are_reported_as_dropped() {
    let store = InMemoryStore::new();
    let healer = healer_with(store.clone());
    healer
        .shutdown(Duration::from_secs(5))
        .await
        .expect("shut down");
    fail_once(&healer).await;
    let e = healer.flush().await.expect_err("no worker after shutdown");
    assert!(
        matches!(
            e,
            FlushError::Lost {
                dropped: 1,
                lost_to_store: 0
            }
        ),
        "{e:?}"
    );
    assert_eq!(store.total_count(), 0);
}

#[test]
fn flush_after_the_workers_runtime_ended_says_the_worker_is_gone() {
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The worker is spawned on the runtime the healer is built in, and ends with it.
    let healer = first.block_on(async { healer_with(InMemoryStore::new()) });
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    second.block_on(async {
        fail_once(&healer).await;
        let e = healer.flush().await.expect_err("no worker");
        assert!(matches!(e, FlushError::WorkerGone { queued: 1 }), "{e:?}");
        assert!(e.to_string().contains("1 queued events"), "{e}");
    });
}
