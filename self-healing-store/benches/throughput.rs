//! Sustained events/s through the whole store path: `write_batch` (the runtime worker's call,
//! 1,024 events at a time) → the store's buffer → its writer → the database, until `flush`
//! returns. One iteration writes `EVENTS` distinct events (no folding: the buffer holds them all).
//!
//! ```text
//! cargo bench -p self-healing-store --bench throughput                      # SQLite
//! SELF_HEALING_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo bench -p self-healing-store --features postgres --bench throughput  # both
//! ```
//!
//! PostgreSQL runs in a fresh database `sh_bench_<pid>`, dropped at the end.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use self_healing_runtime::diagnosis::{ErrorClass, Fingerprint, Severity};
use self_healing_runtime::event::{DiagnosisRecord, HealingEvent, Step, StepResult};
use self_healing_runtime::{Category, EventStore, Outcome};
use self_healing_store::DieselStore;

/// Events per iteration.
const EVENTS: usize = 50_000;
/// Events per `write_batch` call: the runtime worker's batch.
const RUNTIME_BATCH: usize = 1_024;

fn events() -> Vec<HealingEvent> {
    let instance: Arc<str> = Arc::from("bench-1");
    (0..EVENTS)
        .map(|i| {
            let source = format!("source{}", i % 20);
            let class = ErrorClass::ConnectionLost;
            let healed = i % 3 == 0;
            HealingEvent {
                time: SystemTime::now(),
                instance: instance.clone(),
                source: Cow::Owned(source.clone()),
                category: Category::Database,
                fingerprint: Fingerprint::new(&source, &class, "connection reset by peer"),
                class,
                message: format!(
                    "connection reset by peer while querying contacts (request {i}); pool size 10, 3 idle"
                ),
                severity: Severity::High,
                strategy: Some(Cow::Borrowed(if healed { "reconnect" } else { "retry" })),
                outcome: if healed { Outcome::Healed } else { Outcome::Failed },
                attempts: 2,
                duration: Duration::from_millis(12),
                diagnosis: DiagnosisRecord {
                    analyzer: Cow::Borrowed("rules"),
                    confidence: 0.9,
                    reason: Cow::Borrowed("connection reset"),
                    never_reached: false,
                    steps: vec![
                        Step {
                            strategy: Cow::Borrowed("retry"),
                            result: StepResult::Failed,
                            took: Duration::from_millis(3),
                            note: Cow::Borrowed("failed again"),
                        },
                        Step {
                            strategy: Cow::Borrowed("reconnect"),
                            result: if healed { StepResult::Healed } else { StepResult::Failed },
                            took: Duration::from_millis(5),
                            note: Cow::Borrowed("reconnected"),
                        },
                    ],
                },
                count: 1,
                call_key: None,
            }
        })
        .collect()
}

/// Gives the events fresh, increasing times, as events arriving now have (so index inserts
/// land where they would in production: at the end).
fn restamp(events: &mut [HealingEvent]) {
    let now = SystemTime::now();
    for (i, e) in events.iter_mut().enumerate() {
        e.time = now + Duration::from_micros(i as u64);
    }
}

/// Runs `iters` iterations and returns the time they took (re-stamping is not timed).
async fn write_all(store: &DieselStore, events: &mut [HealingEvent], iters: u64) -> Duration {
    let mut took = Duration::ZERO;
    for _ in 0..iters {
        restamp(events);
        let start = Instant::now();
        for chunk in events.chunks(RUNTIME_BATCH) {
            store.write_batch(chunk).await.expect("write_batch");
        }
        store.flush().await.expect("flush");
        took += start.elapsed();
    }
    let stats = store.stats();
    assert_eq!(
        (stats.folded, stats.dropped),
        (0, 0),
        "a benchmark must not fold"
    );
    took
}

fn throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut events = events();
    let mut group = c.benchmark_group("store_throughput");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));

    let dir = tempfile::tempdir().expect("temp dir");
    for batch in [1_024, 4_096] {
        let path = dir.path().join(format!("bench-{batch}.db"));
        let store = rt
            .block_on(
                DieselStore::builder(format!("sqlite://{}", path.display()))
                    .buffer_capacity(EVENTS)
                    .batch_size(batch)
                    .connect(),
            )
            .expect("sqlite store");
        group.bench_function(BenchmarkId::new("sqlite", format!("batch {batch}")), |b| {
            b.iter_custom(|iters| rt.block_on(write_all(&store, &mut events, iters)));
        });
        rt.block_on(store.close());
        // Gigabytes were written: removing the files drops their pages still waiting to be
        // written back, which would otherwise compete for the disk with the next configuration.
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[cfg(feature = "postgres")]
    if let Some(admin) = std::env::var("SELF_HEALING_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    {
        let name = format!("sh_bench_{}", std::process::id());
        rt.block_on(pg::execute(&admin, &format!("CREATE DATABASE {name}")));
        let url = pg::with_database(&admin, &name);
        for (batch, writers) in [(4_096, 1), (1_024, 2), (4_096, 2)] {
            let store = rt
                .block_on(
                    DieselStore::builder(url.clone())
                        .buffer_capacity(EVENTS)
                        .batch_size(batch)
                        .writers(writers)
                        .connect(),
                )
                .expect("postgres store");
            group.bench_function(
                BenchmarkId::new("postgres", format!("batch {batch}, {writers} writers")),
                |b| b.iter_custom(|iters| rt.block_on(write_all(&store, &mut events, iters))),
            );
            rt.block_on(store.close());
        }
        rt.block_on(pg::execute(
            &admin,
            &format!("DROP DATABASE {name} WITH (FORCE)"),
        ));
    }
    #[cfg(not(feature = "postgres"))]
    eprintln!(
        "postgres: not benchmarked (build with --features postgres and set SELF_HEALING_TEST_POSTGRES_URL)"
    );
    group.finish();
}

#[cfg(feature = "postgres")]
mod pg {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

    pub(crate) async fn execute(url: &str, sql: &str) {
        let mut c = AsyncPgConnection::establish(url)
            .await
            .expect("connect to PostgreSQL");
        diesel::sql_query(sql).execute(&mut c).await.expect(sql);
    }

    pub(crate) fn with_database(url: &str, name: &str) -> String {
        let start = url.find("://").map_or(0, |i| i + 3);
        let (head, rest) = url.split_at(start);
        let path_start = rest.find('/').unwrap_or(rest.len());
        let query = rest.find('?').map_or("", |q| &rest[q..]);
        format!("{head}{}/{name}{query}", &rest[..path_start])
    }
}

criterion_group!(benches, throughput);
criterion_main!(benches);
