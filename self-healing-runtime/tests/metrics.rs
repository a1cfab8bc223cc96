//! With feature `metrics`: what a `metrics` recorder receives from a healer: outcomes by site,
//! strategy and class, heal times, circuit states, the event queue and the store's lag.
#![cfg(feature = "metrics")]

mod common;

use std::time::Duration;

use common::{Failure, Flaky};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use self_healing_runtime::metrics::{
    ANSWERED, CALLS, CIRCUIT, DROPPED, HEAL_SECONDS, QUEUE_DEPTH, STORE_LAG,
};
use self_healing_runtime::{Healer, InMemoryStore, WithHealerExt, heal};

/// The process's recorder: installed once, read by every test of this file.
fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: std::sync::OnceLock<Snapshotter> = std::sync::OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder of this process");
        snapshotter
    })
}

/// What the recorder holds now. (Reading it takes counters and histograms out: read once.)
struct Seen(Vec<(metrics_util::CompositeKey, DebugValue)>);

impl Seen {
    fn now() -> Seen {
        Seen(
            snapshotter()
                .snapshot()
                .into_vec()
                .into_iter()
                .map(|(key, _, _, value)| (key, value))
                .collect(),
        )
    }

    /// Every value recorded under `name` whose labels include `labels`.
    fn values(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&DebugValue> {
        self.0
            .iter()
            .filter(|(key, _)| {
                let key = key.key();
                key.name() == name
                    && labels
                        .iter()
                        .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
            })
            .map(|(_, value)| value)
            .collect()
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.values(name, labels)
            .into_iter()
            .map(|v| match v {
                DebugValue::Counter(n) => *n,
                other => panic!("{name} is a counter, not {other:?}"),
            })
            .sum()
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.values(name, labels).as_slice() {
            [DebugValue::Gauge(g)] => g.into_inner(),
            other => panic!("one {name} gauge, not {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn outcomes_latency_circuits_and_the_queue_reach_the_recorder() {
    let _ = snapshotter();
    let site = test_site!("meteredSite", Api);
    let healer = Healer::builder()
        .store(InMemoryStore::new())
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .unwrap();
    for _ in 0..3 {
        let db = Flaky::failing(1, "HTTP 503 Service Unavailable");
        let healed = heal(site, || async { db.call() })
            .with_healer(healer.clone())
            .await;
        assert!(healed.is_ok(), "{healed:?}");
    }
    let failed = heal(site, || async {
        Err::<u32, Failure>(Failure("HTTP 404 Not Found".into()))
    })
    .with_healer(healer.clone())
    .await;
    assert!(failed.is_err());
    healer.flush().await.expect("events written");

    let seen = Seen::now();
    assert_eq!(
        seen.counter(
            CALLS,
            &[
                ("source", "meteredSite"),
                ("category", "api"),
                ("outcome", "healed"),
                ("strategy", "retry"),
                ("class", "transient"),
            ]
        ),
        3
    );
    assert_eq!(
        seen.counter(
            CALLS,
            &[
                ("source", "meteredSite"),
                ("outcome", "failed"),
                ("class", "permanent")
            ]
        ),
        1,
        "the 404, escalated without a re-run"
    );
    let samples: usize = seen
        .values(
            HEAL_SECONDS,
            &[("source", "meteredSite"), ("outcome", "healed")],
        )
        .iter()
        .map(|v| match v {
            DebugValue::Histogram(samples) => samples.len(),
            other => panic!("a histogram, not {other:?}"),
        })
        .sum();
    assert_eq!(samples, 3, "one heal time per healed call");

    // The gauges and the answered counter come with the next publication.
    tokio::time::sleep(self_healing_runtime::metrics::PUBLISH_EVERY).await;
    tokio::task::yield_now().await;
    let seen = Seen::now();
    assert_eq!(
        seen.counter(ANSWERED, &[("source", "meteredSite")]),
        4,
        "the three healed calls were answered in the end, and the 404 is an answer too"
    );
    assert_eq!(
        seen.gauge(CIRCUIT, &[("source", "meteredSite")]),
        0.0,
        "closed"
    );
    // Everything was flushed: nothing waits, nothing was lost.
    assert_eq!(seen.gauge(QUEUE_DEPTH, &[]), 0.0);
    assert_eq!(seen.gauge(STORE_LAG, &[]), 0.0);
    assert_eq!(seen.values(DROPPED, &[]).len(), 1, "published");
    assert_eq!(seen.counter(DROPPED, &[]), 0);
}
