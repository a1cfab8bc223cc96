//! Writing: events and patterns round trip, a healer end to end, long messages, closing, and a
//! full buffer folding. Every case runs on both backends.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use self_healing_runtime::diagnosis::{ErrorClass, Fingerprint, Severity};
use self_healing_runtime::event::StepResult;
use self_healing_runtime::selection::PatternTable;
use self_healing_runtime::{
    BreakerConfig, BudgetConfig, Category, EventStore, Healer, Outcome, Site, SiteInfo,
    SiteOptions, WithHealerExt, heal,
};
use self_healing_store::{Backend, ErrorKind, EventFilter};

use super::harness::{TestDb, WriteLock, at, event};

pub(crate) async fn events_round_trip(db: &TestDb) {
    let store = db.store().await;
    let mut a = event("createContact", 1, Outcome::Healed);
    a.time = at(1);
    let mut b = event("sendEmail", 2, Outcome::Failed);
    b.time = at(1_000_000);
    b.count = 5;
    b.strategy = None;
    b.category = Category::Api;
    b.severity = Severity::Critical;
    b.class = ErrorClass::RateLimited {
        retry_after: Some(Duration::from_secs(3)),
    };
    b.diagnosis.analyzer = Cow::Borrowed("llm");
    b.diagnosis.confidence = 0.25;
    b.diagnosis.never_reached = true;
    b.diagnosis.steps[0].result = StepResult::Skipped;
    b.diagnosis.steps[0].took = Duration::ZERO;
    b.diagnosis.steps[0].note = Cow::Borrowed("not applicable: \"quoted\" \\ path");
    store.write_batch(&[a.clone(), b.clone()]).await.unwrap();
    store.flush().await.unwrap();

    let page = store
        .events(&EventFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(page.events.len(), 2);
    assert!(page.next.is_none());
    for (got, want) in page.events.iter().zip([&b, &a]) {
        assert_eq!(got.time, want.time);
        assert_eq!(got.instance, &*want.instance);
        assert_eq!(got.source, want.source);
        assert_eq!(got.category, want.category);
        assert_eq!(got.fingerprint, want.fingerprint);
        assert_eq!(got.class, want.class.as_str());
        assert_eq!(got.message, want.message);
        assert_eq!(got.severity, want.severity);
        assert_eq!(got.strategy.as_deref(), want.strategy.as_deref());
        assert_eq!(got.outcome, want.outcome);
        assert_eq!(got.attempts, want.attempts);
        assert_eq!(got.duration, want.duration);
        assert_eq!(got.count, want.count);
        assert_eq!(got.diagnosis, want.diagnosis);
    }
    assert!(page.events[0].id > page.events[1].id);
    let stats = store.stats();
    assert_eq!((stats.received, stats.written, stats.buffered), (6, 6, 0));
    assert_eq!((stats.received_records, stats.written_records), (2, 2));
    assert_eq!(store.backend(), db.backend);
}

pub(crate) async fn patterns_are_incremented_from_steps(db: &TestDb) {
    let store = db.store().await;
    let healed = event("createContact", 1, Outcome::Healed); // retry failed, reconnect healed
    let mut failed = event("createContact", 2, Outcome::Failed); // retry failed
    failed.count = 3;
    failed.time = healed.time + Duration::from_secs(1);
    let fp = healed.fingerprint;
    // Two transactions: the second one increments the rows the first created.
    store
        .write_batch(std::slice::from_ref(&healed))
        .await
        .unwrap();
    store.flush().await.unwrap();
    store.write_batch(&[failed.clone()]).await.unwrap();
    let mut llm = event("createContact", 3, Outcome::Failed);
    llm.diagnosis.analyzer = Cow::Borrowed("llm");
    llm.diagnosis.reason = Cow::Borrowed("the pool is exhausted");
    store.write_batch(&[llm]).await.unwrap();
    store.flush().await.unwrap();

    let rows = store.load_patterns().await.unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let get = |s: &str| rows.iter().find(|r| r.strategy == s).unwrap();
    let retry = get("retry");
    assert_eq!(retry.fingerprint, fp);
    assert_eq!(
        (retry.stat.tried, retry.stat.healed, retry.stat.failed),
        (5, 0, 5)
    );
    assert_eq!(retry.stat.total_duration, Duration::from_millis(3 * 5));
    let reconnect = get("reconnect");
    assert_eq!(
        (
            reconnect.stat.tried,
            reconnect.stat.healed,
            reconnect.stat.failed
        ),
        (1, 1, 0)
    );
    assert_eq!(reconnect.stat.total_duration, Duration::from_millis(5));

    let records = store.patterns(Some(fp)).await.unwrap();
    let retry = records.iter().find(|r| r.row.strategy == "retry").unwrap();
    assert_eq!(retry.first_seen, healed.time);
    assert!(retry.last_seen >= failed.time);
    let ai = retry
        .ai_diagnosis
        .as_deref()
        .expect("the llm diagnosis is kept");
    assert!(ai.contains("the pool is exhausted"), "{ai}");
    assert!(
        store
            .patterns(Some(Fingerprint(1)))
            .await
            .unwrap()
            .is_empty()
    );

    // A healer warm-starts from them.
    let table = PatternTable::new();
    table.merge(&rows, &["retry", "reconnect"]);
    assert_eq!(table.get(fp, "retry").failed, 5);
    assert_eq!(table.get(fp, "reconnect").healed, 1);
}

/// One site per backend: a site's breaker and retry budget are process-wide, and both
/// backends' tests run in this process at once.
static E2E_SITES: [Site; 2] = [
    e2e_site("storeEndToEndSqlite"),
    e2e_site("storeEndToEndPostgres"),
];

const fn e2e_site(source: &'static str) -> Site {
    Site::new(SiteInfo {
        source,
        category: Category::Database,
        function: "closure",
        module_path: module_path!(),
        file: file!(),
        line: line!(),
        options: SiteOptions::new(),
    })
}

pub(crate) async fn healer_end_to_end(db: &TestDb) {
    let store = db.store().await;
    let site = &E2E_SITES[usize::from(db.backend == Backend::Postgres)];
    let healer = Healer::builder()
        .store(store.clone())
        .backoff(Duration::from_millis(1), Duration::from_millis(2))
        .max_attempts(3)
        // Keep the breaker closed and the budget open: this test is about what gets stored.
        .breaker(BreakerConfig {
            minimum_calls: 10_000,
            ..BreakerConfig::default()
        })
        .retry_budget(BudgetConfig {
            ratio: 10.0,
            floor_per_sec: 1_000.0,
            max_tokens: 1_000.0,
        })
        .build()
        .unwrap();
    let mut ok = 0;
    for i in 0..40u32 {
        let attempts = AtomicU32::new(0);
        let result = heal(site, || {
            let n = attempts.fetch_add(1, Ordering::SeqCst);
            async move {
                if i % 2 == 0 && n >= 1 {
                    Ok(i)
                } else {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "connection reset by peer",
                    ))
                }
            }
        })
        .with_healer(healer.clone())
        .await;
        ok += u32::from(result.is_ok());
        // One event per runtime batch: nothing is folded, so its statistics are exact.
        healer.flush().await.expect("flushed");
    }
    assert!(ok > 0);
    store.flush().await.unwrap();
    let q = healer.queue_stats();
    assert_eq!(q.recorded, q.written);
    assert_eq!(q.dropped + q.lost_to_store, 0);
    assert_eq!(
        db.scalar("SELECT SUM(count) FROM healing_events").await as u64,
        q.recorded
    );
    let healed = db
        .scalar("SELECT SUM(count) FROM healing_events WHERE outcome = 'healed'")
        .await;
    assert_eq!(healed as u32, ok);

    // The statistics the store derived from the events equal what the healer learned.
    let key = |r: &self_healing_runtime::selection::PatternRow| {
        (
            r.fingerprint,
            r.strategy.clone(),
            r.stat.tried,
            r.stat.healed,
            r.stat.failed,
        )
    };
    let mut from_store: Vec<_> = store
        .load_patterns()
        .await
        .unwrap()
        .iter()
        .map(key)
        .collect();
    let mut learned: Vec<_> = healer.patterns().snapshot().iter().map(key).collect();
    from_store.sort();
    learned.sort();
    assert!(!learned.is_empty());
    assert_eq!(from_store, learned);
}

pub(crate) async fn long_messages_are_capped_and_text_round_trips(db: &TestDb) {
    let store = db.store().await;
    let mut huge = event("bigMessage", 1, Outcome::Failed);
    huge.message = "x".repeat(10 * 1024 * 1024);
    let tricky_text = "héllo wörld ✓ 日本語 🎉 quote\" backslash\\ tab\t newline\n cr\r bell\u{7} del\u{7f} nul\0 end";
    let mut tricky = event("ünïcødé/源", 2, Outcome::Failed);
    tricky.message = tricky_text.to_owned();
    tricky.diagnosis.steps[0].note = Cow::Owned(tricky_text.to_owned());
    tricky.diagnosis.reason = Cow::Borrowed("règle «connexion»");
    let mut multibyte = event("multibyte", 3, Outcome::Failed);
    multibyte.message = "日".repeat(5_000);
    store.write_batch(&[huge, tricky, multibyte]).await.unwrap();
    store.flush().await.unwrap();

    let page = store
        .events(&EventFilter::default(), None, 10)
        .await
        .unwrap();
    let by = |s: &str| page.events.iter().find(|e| e.source == s).unwrap();
    let stored = &by("bigMessage").message;
    assert!(stored.len() <= 2048, "{}", stored.len());
    assert!(stored.ends_with("…[truncated]"));
    let cut = &by("multibyte").message;
    assert!(cut.len() <= 2048);
    assert!(
        cut.trim_end_matches("…[truncated]")
            .chars()
            .all(|c| c == '日')
    );

    let t = by("ünïcødé/源");
    // NUL cannot be stored in PostgreSQL text: it becomes U+2400 on both backends.
    assert_eq!(t.message, tricky_text.replace('\0', "\u{2400}"));
    // In the diagnosis JSON it is escaped, so it round-trips exactly.
    assert_eq!(t.diagnosis.steps[0].note, tricky_text);
    assert_eq!(t.diagnosis.reason, "règle «connexion»");
    let filtered = store
        .events(
            &EventFilter {
                source: Some("ünïcødé/源".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(filtered.events.len(), 1);
}

pub(crate) async fn close_reports_and_refuses(db: &TestDb) {
    let store = db.store().await;
    let events: Vec<_> = (0..10)
        .map(|i| event("close", i, Outcome::Failed))
        .collect();
    store.write_batch(&events).await.unwrap();
    let stats = store.close().await;
    assert_eq!((stats.written, stats.dropped, stats.buffered), (10, 0, 0));
    assert!(store.write_batch(&events).await.is_err());
    let e = store.flush().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM healing_events").await, 10);
}

pub(crate) async fn full_buffer_folds_and_counts(db: &TestDb) {
    let store = db
        .builder()
        .buffer_capacity(10)
        .overflow_keys(2)
        .busy_timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    store
        .write_batch(&[event("warmup", 0, Outcome::Failed)])
        .await
        .unwrap();
    store.flush().await.unwrap();

    let lock = WriteLock::hold(db).await;
    // The writer takes this one and waits for the lock with it.
    store
        .write_batch(&[event("first", 1, Outcome::Failed)])
        .await
        .unwrap();
    while store.stats().buffered_records == 0 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let nine: Vec<_> = (0..9)
        .map(|i| event("queued", i, Outcome::Failed))
        .collect();
    store.write_batch(&nine).await.unwrap();
    // The buffer is full: two families are folded, a third has no room and is dropped.
    let storm: Vec<_> = (0..100)
        .map(|i| event("familyA", i, Outcome::Failed))
        .chain((0..100).map(|i| event("familyB", i, Outcome::Healed)))
        .chain((0..50).map(|i| event("familyC", i, Outcome::Failed)))
        .collect();
    let started = std::time::Instant::now();
    store.write_batch(&storm).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "write_batch must not wait"
    );
    let stats = store.stats();
    assert_eq!((stats.folded, stats.dropped), (198, 50), "{stats:?}");
    assert_eq!(stats.buffered, 1 + 9 + 200);
    assert_eq!(stats.buffered_records, 1 + 9 + 2);
    lock.release().await;
    store.flush().await.unwrap();

    let stats = store.stats();
    assert_eq!(stats.received, 1 + 1 + 9 + 250);
    assert_eq!(stats.written + stats.dropped, stats.received);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM healing_events").await,
        1 + 1 + 9 + 2
    );
    assert_eq!(
        db.scalar("SELECT SUM(count) FROM healing_events").await,
        1 + 1 + 9 + 200
    );
    assert_eq!(
        db.scalar("SELECT SUM(count) FROM healing_events WHERE source = 'familyA'")
            .await,
        100
    );
    // Folded events keep their learned statistics.
    let tried: u64 = store
        .load_patterns()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.strategy == "retry")
        .map(|r| r.stat.tried)
        .sum();
    assert_eq!(tried, 211);
}

/// SQLite: checkpoints run beside the writer. The automatic checkpoint is only a safety net at
/// 25,000 pages of log; without the checkpointer this load leaves a log of ~100 MB, with it
/// the log stays short and is emptied once the writer is quiet.
pub(crate) async fn sqlite_log_stays_short_under_steady_writes(db: &TestDb) {
    let store = db.builder().batch_size(64).connect().await.unwrap();
    assert_eq!(
        db.scalar("SELECT page_size FROM pragma_page_size()").await,
        8192,
        "a new database has 8 KiB pages"
    );
    let wal = {
        let mut p = db.path.clone().unwrap().into_os_string();
        p.push("-wal");
        std::path::PathBuf::from(p)
    };
    let log = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let mut n = 0u64;
    let mut longest = 0;
    for _ in 0..600 {
        let batch: Vec<_> = (0..64)
            .map(|_| {
                n += 1;
                event(&format!("wal{}", n % 7), n, Outcome::Failed)
            })
            .collect();
        store.write_batch(&batch).await.unwrap();
        store.flush().await.unwrap();
        longest = longest.max(log());
    }
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM healing_events").await,
        600 * 64
    );
    // 11–35 MB in runs on an idle machine, ~150 MB without the checkpointer: a loose bound
    // here; the emptied log below is the sharp check.
    assert!(
        longest < 128 << 20,
        "the log grew to {longest} bytes: checkpoints did not keep up"
    );
    // A quiet moment: the checkpointer empties the log (waits up to 10 s on a loaded machine).
    let mut waited = 0;
    while log() > 0 && waited < 200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(
        log(),
        0,
        "the log was not emptied while the writer was quiet"
    );
    store.close().await;
}
