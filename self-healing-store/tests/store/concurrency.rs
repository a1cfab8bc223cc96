//! Concurrency: many writers, and several instances on the same pattern rows, with exact counts. Every case runs on both backends.

use self_healing_runtime::{EventStore, Outcome};

use super::harness::{TestDb, event};

pub(crate) async fn eight_writers_ten_thousand_events_each(db: &TestDb) {
    let store = db
        .builder()
        .buffer_capacity(100_000)
        .connect()
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let source = format!("writer-{w}");
            for chunk in 0..20u64 {
                let events: Vec<_> = (0..500u64)
                    .map(|i| event(&source, w * 10_000 + chunk * 500 + i, Outcome::Failed))
                    .collect();
                store.write_batch(&events).await.unwrap();
                tokio::task::yield_now().await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    store.flush().await.unwrap();
    let stats = store.stats();
    assert_eq!(
        (stats.received, stats.written, stats.folded, stats.dropped),
        (80_000, 80_000, 0, 0)
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM healing_events").await,
        80_000
    );
    assert_eq!(
        db.scalar("SELECT SUM(count) FROM healing_events").await,
        80_000
    );
    assert_eq!(
        db.scalar("SELECT COUNT(DISTINCT message) FROM healing_events")
            .await,
        80_000
    );
    for w in 0..8 {
        let n = db
            .scalar(&format!(
                "SELECT COUNT(*) FROM healing_events WHERE source = 'writer-{w}'"
            ))
            .await;
        assert_eq!(n, 10_000, "writer {w}");
    }
    let tried: u64 = store
        .load_patterns()
        .await
        .unwrap()
        .iter()
        .map(|r| r.stat.tried)
        .sum();
    assert_eq!(tried, 80_000);
}

pub(crate) async fn four_instances_bump_the_same_patterns(db: &TestDb) {
    // Create the schema once, then four independent stores (pools, writers) on one database.
    db.store().await.close().await;
    let mut stores = Vec::new();
    for i in 0..4 {
        stores.push(
            db.builder()
                .batch_size(50)
                .instance(format!("instance-{i}"))
                .connect()
                .await
                .unwrap(),
        );
    }
    let sources = ["alpha", "beta", "gamma"];
    let mut tasks = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..25u64 {
                let events: Vec<_> = (0..100u64)
                    .map(|k| {
                        let n = i as u64 * 100_000 + round * 100 + k;
                        let outcome = if k % 4 == 0 {
                            Outcome::Healed
                        } else {
                            Outcome::Failed
                        };
                        event(sources[(k % 3) as usize], n, outcome)
                    })
                    .collect();
                store.write_batch(&events).await.unwrap();
                tokio::task::yield_now().await;
            }
            store.flush().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // 4 instances × 2,500 events: each has a failed retry step, a quarter a healing reconnect.
    let rows = stores[0].load_patterns().await.unwrap();
    let sum = |s: &str, f: fn(&self_healing_runtime::selection::PatternStat) -> u64| -> u64 {
        rows.iter()
            .filter(|r| r.strategy == s)
            .map(|r| f(&r.stat))
            .sum()
    };
    assert_eq!(sum("retry", |s| s.tried), 10_000);
    assert_eq!(sum("retry", |s| s.failed), 10_000);
    assert_eq!(sum("reconnect", |s| s.healed), 2_500);
    assert_eq!(sum("reconnect", |s| s.tried), 2_500);
    assert_eq!(
        sum("retry", |s| s.total_duration.as_millis() as u64),
        30_000
    );
    assert_eq!(rows.len(), 6, "3 fingerprints × 2 strategies");
    for source in sources {
        let fp = event(source, 0, Outcome::Failed).fingerprint;
        let tried: u64 = rows
            .iter()
            .filter(|r| r.fingerprint == fp && r.strategy == "retry")
            .map(|r| r.stat.tried)
            .sum();
        let expected = 4
            * 25
            * (0..100u64)
                .filter(|k| sources[(k % 3) as usize] == source)
                .count() as u64;
        assert_eq!(tried, expected, "{source}");
    }
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM healing_events").await,
        10_000
    );
}
