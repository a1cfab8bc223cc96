//! Outages: the database goes away mid-load and comes back. The calls of the application never
//! wait or fail because of it, and afterwards the stored events plus the folded counts account
//! for every failure produced.

use std::time::{Duration, Instant};

use self_healing_runtime::{
    Category, ErrorOps, EventStore, Healer, Outcome, Site, SiteInfo, SiteOptions, WithHealerExt,
    heal_with,
};
use self_healing_store::{DieselStore, ErrorKind};

use super::harness::{Proxy, TestDb, WriteLock, flush_within, pg_addr, with_host};

static OUTAGE_SITE: Site = Site::new(SiteInfo {
    source: "outageLoad",
    category: Category::Database,
    function: "closure",
    module_path: module_path!(),
    file: file!(),
    line: line!(),
    // Every call runs and fails: an open circuit answering for the body would turn most of the
    // load into one family of fast failures instead of `FAMILIES` families.
    options: SiteOptions::new().with_fail_fast(false),
});

/// Failing calls through a real healer: `calls` of them, calling `at(i)` before call `i`.
/// The errors belong to `FAMILIES` families (distinct fingerprints), so the healer's own folding
/// leaves many records for the store. Returns the slowest call.
async fn produce_failures(healer: &Healer, calls: u32, mut at: impl AsyncFnMut(u32)) -> Duration {
    let mut slowest = Duration::ZERO;
    for i in 0..calls {
        at(i).await;
        let started = Instant::now();
        let table = family_name(i % FAMILIES);
        let ops = ErrorOps::<std::io::Error>::without_rejections(|e| e);
        let result: Result<(), std::io::Error> = heal_with(&OUTAGE_SITE, ops, || {
            let table = table.clone();
            async move {
                Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("constraint violation: duplicate key in table {table}"),
                ))
            }
        })
        .with_healer(healer.clone())
        .await;
        assert!(result.is_err());
        slowest = slowest.max(started.elapsed());
        if i % 1_000 == 999 {
            // Hand what the healer holds to the store every 1,000 calls, as its worker's
            // 500 ms tick would: the outage then spans several deliveries, so the store's
            // buffer overflows and folds whatever the scheduling. During the outage the flush
            // reports that the store could not commit: expected here.
            let _ = healer.flush().await;
        } else if i % 100 == 99 {
            tokio::task::yield_now().await;
        }
    }
    slowest
}

/// Distinct error families in the load.
const FAMILIES: u32 = 1_000;

/// A word without digits (digits would be normalised away by the fingerprint).
fn family_name(mut n: u32) -> String {
    let mut name = String::from("t");
    loop {
        name.push((b'a' + (n % 26) as u8) as char);
        n /= 26;
        if n == 0 {
            return name;
        }
    }
}

/// Checks that everything the healer recorded is in the database or counted as folded.
async fn assert_all_accounted(db: &TestDb, store: &DieselStore, healer: &Healer, produced: u64) {
    let q = healer.queue_stats();
    assert_eq!(q.recorded, produced);
    assert_eq!(q.dropped + q.lost_to_store, 0, "{q:?}");
    let s = store.stats();
    assert_eq!(s.received, produced, "{s:?}");
    assert_eq!(
        (s.written, s.dropped, s.buffered),
        (produced, 0, 0),
        "{s:?}"
    );
    let calls = db.scalar("SELECT SUM(count) FROM healing_events").await as u64;
    let rows = db.scalar("SELECT COUNT(*) FROM healing_events").await as u64;
    assert_eq!(calls, produced, "stored calls");
    assert_eq!(rows + s.folded, s.received_records, "rows + folded records");
    eprintln!(
        "outage figures ({:?}): produced {produced} failures; runtime folded {} records; \
         store received {} records, folded {} while the database was down, wrote {} rows \
         standing for {calls} calls; {} failed write attempts, {} duplicate batches skipped, dropped {}",
        db.backend,
        q.folded,
        s.received_records,
        s.folded,
        rows,
        s.failed_writes,
        s.duplicate_batches,
        s.dropped
    );
}

/// SQLite "made unwritable": the tests run as root, for whom permission bits do not stop writes,
/// so `chmod` cannot do it. A write lock held by another connection (`BEGIN EXCLUSIVE`) makes
/// every write of the store fail with SQLITE_BUSY ("database is locked") once its busy timeout
/// passes, which is what the writer sees when the file cannot be written; and it can be lifted
/// at a precise point.
pub(crate) async fn sqlite_locked(db: &TestDb) {
    let store = db
        .builder()
        .buffer_capacity(200)
        .busy_timeout(Duration::from_millis(50))
        .connect()
        .await
        .unwrap();
    let healer = Healer::builder()
        .store(store.clone())
        .max_attempts(1)
        .build()
        .unwrap();
    let mut lock = None;
    let total = 20_000;
    let slowest = produce_failures(&healer, total, async |i| {
        if i == 5_000 {
            let _ = healer.flush().await; // the store may be down
            lock = Some(WriteLock::hold(db).await);
        }
        if i == 10_000 {
            let _ = healer.flush().await; // the store may be down
            let e = store.flush().await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
            assert!(e.to_string().contains("database is locked"), "{e}");
            assert!(store.stats().unavailable);
        }
        if i == 15_000 {
            let _ = healer.flush().await; // the store may be down
            lock.take().unwrap().release().await;
        }
    })
    .await;
    assert!(
        slowest < Duration::from_millis(250),
        "a call waited {slowest:?}"
    );
    let _ = healer.flush().await; // the store may be down
    flush_within(&store, Duration::from_secs(30)).await;
    let s = store.stats();
    assert!(s.failed_writes > 0 && s.folded > 0, "{s:?}");
    // Recovered: the outage's error is history, not the store's state.
    assert!(!s.unavailable && s.last_error.is_none(), "{s:?}");
    assert_all_accounted(db, &store, &healer, u64::from(total)).await;
}

/// PostgreSQL through a loopback proxy: the connections are cut mid-load, new ones refused,
/// then the proxy forwards again.
pub(crate) async fn postgres_cut(db: &TestDb) {
    let proxy = Proxy::start(pg_addr(&db.url).await).await;
    let store = DieselStore::builder(with_host(&db.url, proxy.addr))
        .buffer_capacity(200)
        .backoff(Duration::from_millis(10), Duration::from_millis(200))
        .connect_timeout(Duration::from_secs(1))
        .write_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    let healer = Healer::builder()
        .store(store.clone())
        .max_attempts(1)
        .build()
        .unwrap();
    let total = 20_000;
    let slowest = produce_failures(&healer, total, async |i| {
        if i == 5_000 {
            proxy.cut();
        }
        if i == 10_000 {
            let _ = healer.flush().await; // the store may be down
            let e = store.flush().await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
            assert!(store.stats().unavailable);
        }
        if i == 15_000 {
            proxy.restore();
        }
    })
    .await;
    assert!(
        slowest < Duration::from_millis(250),
        "a call waited {slowest:?}"
    );
    let _ = healer.flush().await; // the store may be down
    flush_within(&store, Duration::from_secs(30)).await;
    let s = store.stats();
    assert!(s.failed_writes > 0 && s.folded > 0, "{s:?}");
    assert_all_accounted(db, &store, &healer, u64::from(total)).await;
}

/// A process that starts while PostgreSQL is down: `connect_lazy` buffers at once; the writer
/// connects and migrates when the database comes back.
pub(crate) async fn postgres_lazy_start(db: &TestDb) {
    let proxy = Proxy::start(pg_addr(&db.url).await).await;
    proxy.cut();
    let url = with_host(&db.url, proxy.addr);
    let e = DieselStore::builder(url.clone())
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    let store = DieselStore::builder(url)
        .backoff(Duration::from_millis(10), Duration::from_millis(100))
        .connect_timeout(Duration::from_secs(1))
        .connect_lazy()
        .unwrap();
    let healer = Healer::builder()
        .store(store.clone())
        .max_attempts(1)
        .build()
        .unwrap();
    produce_failures(&healer, 500, async |_| {}).await;
    let _ = healer.flush().await; // the store may be down
    assert_eq!(
        store.flush().await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    proxy.restore();
    flush_within(&store, Duration::from_secs(30)).await;
    assert_all_accounted(db, &store, &healer, 500).await;
}

/// The SQLite file deleted, then replaced, while the store has it open: the store notices after
/// the next commit, opens the path again (creating and migrating a new file) and writes that
/// batch there, so the events that follow are in the file at the path, none lost.
pub(crate) async fn sqlite_file_deleted_or_replaced(db: &TestDb) {
    let path = db.path.clone().expect("a SQLite file");
    let store = db.store().await;
    let write = async |from: u64| {
        let events: Vec<_> = (from..from + 10)
            .map(|n| super::harness::event("fileWatched", n, Outcome::Failed))
            .collect();
        store.write_batch(&events).await.unwrap();
        // The flush that meets the moved file reports it; the writer has reopened the file
        // and rewrites the batch, which the next flush sees committed.
        if let Err(e) = store.flush().await {
            assert!(e.to_string().contains("while the store had it open"), "{e}");
            store
                .flush()
                .await
                .expect("written to the file at the path");
        }
    };
    let count = || db.scalar("SELECT COUNT(*) AS v FROM healing_events");

    write(0).await;
    assert_eq!(count().await, 10);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    // Noticed by the next write, or before it by a health check.
    let e = store.ping().await.unwrap_err();
    assert!(
        e.to_string().contains("was deleted"),
        "a health check tells: {e}"
    );
    store.ping().await.expect("the path opened again");
    write(10).await;
    assert_eq!(
        count().await,
        10,
        "the 10 events after the deletion, in a new file"
    );

    // A backup restored over the path: the store writes into it from then on.
    let backup = path.with_file_name("backup.db");
    {
        let writer = DieselStore::connect(&format!("sqlite://{}", backup.display()))
            .await
            .unwrap();
        writer
            .write_batch(&[super::harness::event("restored", 0, Outcome::Healed)])
            .await
            .unwrap();
        writer.close().await;
    }
    // Its last connection checkpoints the WAL into the file and removes it as it closes.
    let wal = format!("{}-wal", backup.display());
    for _ in 0..1_000 {
        if !std::path::Path::new(&wal).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!std::path::Path::new(&wal).exists(), "the backup is closed");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    std::fs::rename(&backup, &path).unwrap();
    let failed_before = store.stats().failed_writes;
    write(20).await;
    assert_eq!(
        count().await,
        11,
        "the restored event and the 10 written after"
    );
    // The batch that went to the replaced file counted as a failed write (its error is cleared
    // once the rewrite succeeds).
    assert!(store.stats().failed_writes > failed_before, "noticed");
}
