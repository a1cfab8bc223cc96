//! The cases run on both backends.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::QueryableByName;
use self_healing_runtime::diagnosis::{ErrorClass, Fingerprint, Severity};
use self_healing_runtime::event::StepResult;
use self_healing_runtime::selection::PatternTable;
use self_healing_runtime::{
    BreakerConfig, BudgetConfig, Category, EventStore, Healer, Outcome, Site, SiteInfo,
    SiteOptions, WithHealerExt, heal,
};
use self_healing_store::{
    Backend, DieselStore, ErrorKind, EventCursor, EventFilter, HealthCheckRecord, HealthStatus,
    NotificationRecord, NotificationStatus,
};

use super::harness::{ColumnInfo, TestDb, WriteLock, event};

const T0_US: u64 = 1_700_000_000_000_000;

fn at(us_after_t0: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(T0_US + us_after_t0)
}

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
        healer.flush().await;
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

pub(crate) async fn filters_and_keyset_pagination(db: &TestDb) {
    let store = db.store().await;
    let outcomes = [
        Outcome::Healed,
        Outcome::Failed,
        Outcome::FastFailed,
        Outcome::NotApplicable,
    ];
    let mut events = Vec::new();
    for i in 0..300u64 {
        let mut e = event(&format!("source{}", i % 3), i, outcomes[(i % 4) as usize]);
        // Five events share each timestamp: ties are broken by id.
        e.time = at((i / 5) * 1_000_000);
        e.severity = if i % 2 == 0 {
            Severity::High
        } else {
            Severity::Low
        };
        e.category = if i % 2 == 0 {
            Category::Database
        } else {
            Category::Api
        };
        events.push(e);
    }
    for chunk in events.chunks(64) {
        store.write_batch(chunk).await.unwrap();
    }
    store.flush().await.unwrap();

    let filter = EventFilter {
        source: Some("source1".into()),
        outcome: Some(Outcome::Failed),
        ..EventFilter::default()
    };
    let expected = events
        .iter()
        .filter(|e| e.source == "source1" && e.outcome == Outcome::Failed)
        .count();
    assert!(expected > 20);
    let mut seen = HashSet::new();
    let mut cursor = None;
    let mut last: Option<(SystemTime, i64)> = None;
    let mut pages = 0;
    loop {
        let page = store.events(&filter, cursor, 7).await.unwrap();
        pages += 1;
        for e in &page.events {
            assert_eq!((e.source.as_str(), e.outcome), ("source1", Outcome::Failed));
            assert!(seen.insert(e.id), "id {} seen twice", e.id);
            if let Some(prev) = last {
                assert!((e.time, e.id) < prev, "not newest first");
            }
            last = Some((e.time, e.id));
        }
        match page.next {
            Some(next) => {
                let text = next.to_string();
                assert_eq!(text.parse::<EventCursor>().unwrap(), next);
                cursor = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), expected);
    assert_eq!(pages, expected.div_ceil(7));
    assert!("nonsense".parse::<EventCursor>().is_err());

    let count = |f: EventFilter| {
        let store = store.clone();
        async move { store.events(&f, None, 1000).await.unwrap().events.len() }
    };
    assert_eq!(
        count(EventFilter {
            severity: Some(Severity::Low),
            category: Some(Category::Api),
            ..Default::default()
        })
        .await,
        150
    );
    assert_eq!(
        count(EventFilter {
            since: Some(at(10_000_000)),
            until: Some(at(20_000_000)),
            ..Default::default()
        })
        .await,
        50
    );
    assert_eq!(
        count(EventFilter {
            fingerprint: Some(events[2].fingerprint),
            ..Default::default()
        })
        .await,
        100
    );
}

pub(crate) async fn aggregations(db: &TestDb) {
    let store = db.store().await;
    let hour = 3_600_000_000u64;
    let base = (T0_US / hour + 1) * hour - T0_US; // the start of an hour, after T0
    let mut events = Vec::new();
    for (h, outcome, n) in [
        (0, Outcome::Healed, 3),
        (0, Outcome::Failed, 2),
        (1, Outcome::Failed, 4),
        (2, Outcome::Healed, 1),
    ] {
        for i in 0..n {
            let source = if outcome == Outcome::Failed && h == 1 {
                "sendEmail"
            } else {
                "createContact"
            };
            let mut e = event(source, i, outcome);
            e.time = at(base + h * hour + i * 1_000);
            events.push(e);
        }
    }
    let mut folded = event("sendEmail", 99, Outcome::Failed);
    folded.time = at(base + hour + 10);
    folded.count = 10;
    events.push(folded);
    store.write_batch(&events).await.unwrap();
    store.flush().await.unwrap();

    let counts = store
        .counts_per_hour(at(base), at(base + 3 * hour))
        .await
        .unwrap();
    let got: Vec<(u64, Outcome, u64)> = counts
        .iter()
        .map(|c| {
            let h = (c.hour.duration_since(UNIX_EPOCH).unwrap().as_micros() as u64 - T0_US - base)
                / hour;
            (h, c.outcome, c.calls)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, Outcome::Failed, 2),
            (0, Outcome::Healed, 3),
            (1, Outcome::Failed, 14),
            (2, Outcome::Healed, 1),
        ]
    );
    assert!(
        store
            .counts_per_hour(at(0), at(base))
            .await
            .unwrap()
            .is_empty()
    );

    let rates = store.heal_rate_by_strategy(None).await.unwrap();
    let retry = rates.iter().find(|r| r.strategy == "retry").unwrap();
    assert_eq!((retry.calls, retry.healed), (16, 0));
    let reconnect = rates.iter().find(|r| r.strategy == "reconnect").unwrap();
    assert_eq!((reconnect.calls, reconnect.healed), (4, 4));
    assert_eq!(reconnect.rate(), 1.0);
    assert_eq!(rates[0].strategy, "retry", "most calls first");

    let sources = store.top_failing_sources(Some(at(0)), 10).await.unwrap();
    assert_eq!(sources.len(), 2);
    assert_eq!(
        (sources[0].source.as_str(), sources[0].failures),
        ("sendEmail", 14)
    );
    assert_eq!(
        (sources[1].source.as_str(), sources[1].failures),
        ("createContact", 2)
    );
    assert_eq!(sources[0].last, at(base + hour + 3_000));
    assert_eq!(store.top_failing_sources(None, 1).await.unwrap().len(), 1);

    let fps = store.top_failing_fingerprints(None, 10).await.unwrap();
    assert_eq!(fps[0].failures, 14);
    assert_eq!(fps[0].source, "sendEmail");
    assert_eq!(fps[0].class, "connection_lost");
    assert!(fps[0].message.starts_with("connection reset by peer"));
    assert!(
        store
            .top_failing_fingerprints(Some(at(base + 10 * hour)), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

static CHECKLIST_A: Site = Site::new(SiteInfo {
    source: "checklistCreateContact",
    category: Category::Database,
    function: "create_contact",
    module_path: module_path!(),
    file: file!(),
    line: line!(),
    options: SiteOptions::new()
        .with_idempotent(false)
        .with_timeout(Duration::from_secs(2))
        .with_fallback("fallbacks::contact")
        .with_async(true),
});
#[self_healing_runtime::__private::linkme::distributed_slice(
    self_healing_runtime::__private::SITES
)]
#[linkme(crate = self_healing_runtime::__private::linkme)]
static CHECKLIST_A_ENTRY: &Site = &CHECKLIST_A;

static CHECKLIST_B: Site = Site::new(SiteInfo {
    source: "checklistSendEmail",
    category: Category::Api,
    function: "send_email",
    module_path: module_path!(),
    file: file!(),
    line: line!(),
    options: SiteOptions::new(),
});
#[self_healing_runtime::__private::linkme::distributed_slice(
    self_healing_runtime::__private::SITES
)]
#[linkme(crate = self_healing_runtime::__private::linkme)]
static CHECKLIST_B_ENTRY: &Site = &CHECKLIST_B;

pub(crate) async fn sites_checklist(db: &TestDb) {
    let store = db.store().await;
    let registered = self_healing_runtime::sites().count();
    assert_eq!(store.sync_sites().await.unwrap(), registered);
    let first = store.sites().await.unwrap();
    assert_eq!(first.len(), registered);
    let a = first
        .iter()
        .find(|s| s.source == "checklistCreateContact")
        .unwrap();
    assert_eq!(a.function, "create_contact");
    assert_eq!(a.category, "database");
    assert_eq!(a.line, CHECKLIST_A.info().line);
    assert!(a.file.ends_with("cases.rs"));
    let options: serde_json::Value = serde_json::from_str(&a.options).unwrap();
    assert_eq!(options["idempotent"], false);
    assert_eq!(options["timeout_ms"], 2000);
    assert_eq!(options["fallback"], "fallbacks::contact");
    assert_eq!(options["async"], true);
    assert_eq!((a.last_error, a.last_healed, a.failures), (None, None, 0));
    assert_eq!(a.instance, store.instance());

    let mut failed = event("checklistCreateContact", 1, Outcome::Failed);
    failed.time = at(5_000_000);
    let mut healed = event("checklistCreateContact", 2, Outcome::Healed);
    healed.time = at(3_000_000);
    store.write_batch(&[failed, healed]).await.unwrap();
    store.flush().await.unwrap();

    // Upserting again keeps one row per site and its first registration time.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(store.sync_sites().await.unwrap(), registered);
    let second = store.sites().await.unwrap();
    assert_eq!(second.len(), registered);
    let a2 = second
        .iter()
        .find(|s| s.source == "checklistCreateContact")
        .unwrap();
    assert_eq!(a2.first_seen, a.first_seen);
    assert!(a2.last_seen > a.last_seen);
    assert_eq!(a2.last_error, Some(at(5_000_000)));
    assert_eq!(a2.last_healed, Some(at(3_000_000)));
    assert_eq!((a2.failures, a2.healed), (2, 1));
    let b = second
        .iter()
        .find(|s| s.source == "checklistSendEmail")
        .unwrap();
    assert_eq!((b.category.as_str(), b.failures), ("api", 0));
    let _ = (&CHECKLIST_A_ENTRY, &CHECKLIST_B_ENTRY);
}

pub(crate) async fn health_checks_and_notifications(db: &TestDb) {
    let store = db.store().await;
    for (i, (name, status)) in [
        ("database", HealthStatus::Healthy),
        ("openai", HealthStatus::Unhealthy),
        ("database", HealthStatus::Degraded),
        ("database", HealthStatus::Healthy),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .record_health_check(&HealthCheckRecord {
                time: at(i as u64 * 1_000),
                name: name.into(),
                status,
                latency: Duration::from_micros(1500 + i as u64),
                message: format!("check {i}"),
                details: (i == 1).then(|| r#"{"status":401}"#.to_owned()),
            })
            .await
            .unwrap();
    }
    let latest = store.latest_health_checks().await.unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(latest[0].check.name, "database");
    assert_eq!(latest[0].check.status, HealthStatus::Healthy);
    assert_eq!(latest[0].check.message, "check 3");
    assert_eq!(latest[1].check.name, "openai");
    assert_eq!(
        latest[1].check.details.as_deref(),
        Some(r#"{"status":401}"#)
    );
    assert_eq!(latest[1].check.latency, Duration::from_micros(1501));
    assert_eq!(latest[1].instance, store.instance());
    let history = store.health_history("database", 10).await.unwrap();
    let statuses: Vec<_> = history.iter().map(|h| h.check.status).collect();
    assert_eq!(
        statuses,
        [
            HealthStatus::Healthy,
            HealthStatus::Degraded,
            HealthStatus::Healthy
        ]
    );

    let sent = NotificationRecord {
        time: at(1),
        channel: "slack".into(),
        severity: Severity::Critical,
        source: Some("createContact".into()),
        fingerprint: Some(Fingerprint(0xdead_beef)),
        title: "createContact keeps failing".into(),
        body: "12 failures in 5 minutes".into(),
        status: NotificationStatus::Sent,
        error: None,
    };
    let failed = NotificationRecord {
        time: at(2),
        channel: "webhook".into(),
        severity: Severity::High,
        source: None,
        fingerprint: None,
        title: "digest".into(),
        body: "…".into(),
        status: NotificationStatus::Failed,
        error: Some("HTTP 500".into()),
    };
    store.record_notification(&sent).await.unwrap();
    store.record_notification(&failed).await.unwrap();
    let recent = store.recent_notifications(10).await.unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0].notification, failed);
    assert_eq!(recent[1].notification, sent);
    assert_eq!(store.recent_notifications(1).await.unwrap().len(), 1);
}

pub(crate) async fn retention_prunes_in_batches(db: &TestDb) {
    let store = db.store().await;
    let old = SystemTime::now() - Duration::from_secs(10 * 86_400);
    let mut events = Vec::new();
    for i in 0..30u64 {
        let mut e = event("prune", i, Outcome::Failed);
        if i < 23 {
            e.time = old + Duration::from_secs(i);
        }
        events.push(e);
    }
    store.write_batch(&events).await.unwrap();
    store.flush().await.unwrap();
    for t in [old, old, SystemTime::now()] {
        store
            .record_health_check(&HealthCheckRecord {
                time: t,
                name: "database".into(),
                status: HealthStatus::Healthy,
                latency: Duration::ZERO,
                message: String::new(),
                details: None,
            })
            .await
            .unwrap();
    }
    let report = store
        .prune_in_batches(Duration::from_secs(86_400), 5)
        .await
        .unwrap();
    assert_eq!(report.events, 23);
    assert_eq!(report.health_checks, 2);
    assert_eq!(report.notifications, 0);
    assert_eq!(report.batches, 0, "markers are kept for a week");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM healing_events").await, 7);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM health_checks").await, 1);
    // Patterns are kept: they are what the healer learned.
    assert_eq!(store.load_patterns().await.unwrap()[0].stat.tried, 30);
    assert_eq!(
        store
            .prune(Duration::from_secs(86_400))
            .await
            .unwrap()
            .events,
        0
    );
}

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

pub(crate) async fn schema_matches_migrations(db: &TestDb) {
    let store = db.store().await;
    drop(store);
    let schema = include_str!("../../src/schema.rs");
    let tables = parse_schema(schema);
    assert_eq!(tables.len(), 6);
    for (table, columns) in &tables {
        let sql = match db.backend {
            Backend::Sqlite => format!(
                "SELECT name, type AS ty, CASE WHEN \"notnull\" = 1 OR pk > 0 THEN 1 ELSE 0 END AS not_null \
                 FROM pragma_table_info('{table}') ORDER BY cid"
            ),
            Backend::Postgres => format!(
                "SELECT column_name::text AS name, data_type::text AS ty, \
                 CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END AS not_null \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position"
            ),
        };
        let actual: Vec<ColumnInfo> = db.load(&sql).await;
        let actual: Vec<(String, String, bool)> = actual
            .into_iter()
            .map(|c| (c.name, c.ty.to_ascii_lowercase(), c.not_null == 0))
            .collect();
        let expected: Vec<(String, String, bool)> = columns
            .iter()
            .map(|(name, ty, nullable)| {
                let sql_ty = match (db.backend, ty.as_str()) {
                    (Backend::Sqlite, "BigInt") if name == "id" => "integer",
                    (_, "BigInt") => "bigint",
                    (_, "Integer") => "integer",
                    (_, "Text") => "text",
                    (_, other) => panic!("unmapped type {other}"),
                };
                (name.clone(), sql_ty.to_owned(), *nullable)
            })
            .collect();
        assert_eq!(actual, expected, "table {table} differs from src/schema.rs");
    }
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let sql = match db.backend {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '__diesel%' ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name NOT LIKE '__diesel%' ORDER BY table_name"
        }
    };
    let in_db: Vec<String> = db
        .load::<Name>(sql)
        .await
        .into_iter()
        .map(|n| n.name)
        .collect();
    let mut in_schema: Vec<String> = tables.iter().map(|(t, _)| t.clone()).collect();
    in_schema.sort();
    assert_eq!(in_db, in_schema);
}

/// A column of `schema.rs`: name, Diesel type, nullable.
type Column = (String, String, bool);

/// `(table, [(column, type, nullable)])` from the `diesel::table!` blocks of `schema.rs`.
fn parse_schema(src: &str) -> Vec<(String, Vec<Column>)> {
    let mut tables = Vec::new();
    let mut current: Option<(String, Vec<Column>)> = None;
    for line in src.lines().map(str::trim) {
        if line.starts_with("///") || line.starts_with("//") {
            continue;
        }
        if let Some((head, _)) = line.split_once(" (")
            && line.ends_with('{')
            && !head.contains(' ')
        {
            current = Some((head.to_owned(), Vec::new()));
        } else if let Some((name, ty)) = line.split_once(" -> ")
            && let Some((_, cols)) = current.as_mut()
        {
            let ty = ty.trim_end_matches(',');
            let (ty, nullable) = match ty.strip_prefix("Nullable<") {
                Some(inner) => (inner.trim_end_matches('>'), true),
                None => (ty, false),
            };
            cols.push((name.to_owned(), ty.to_owned(), nullable));
        } else if line == "}"
            && let Some(t) = current.take()
        {
            tables.push(t);
        }
    }
    tables
}

pub(crate) async fn migrations_are_idempotent(db: &TestDb) {
    let first = db.store().await;
    first
        .write_batch(&[event("m", 1, Outcome::Failed)])
        .await
        .unwrap();
    first.flush().await.unwrap();
    let second = db.store().await;
    second
        .write_batch(&[event("m", 2, Outcome::Failed)])
        .await
        .unwrap();
    second.flush().await.unwrap();
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM __diesel_schema_migrations")
            .await,
        1
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM healing_events").await, 2);
    // Opting out of migrations works on a migrated database.
    let third = db.builder().run_migrations(false).connect().await.unwrap();
    assert_eq!(
        third
            .events(&EventFilter::default(), None, 10)
            .await
            .unwrap()
            .events
            .len(),
        2
    );
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

pub(crate) async fn in_memory() {
    let store = DieselStore::connect("sqlite::memory:").await.unwrap();
    store
        .write_batch(&[event("memory", 1, Outcome::Healed)])
        .await
        .unwrap();
    store.flush().await.unwrap();
    let page = store
        .events(&EventFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(store.load_patterns().await.unwrap().len(), 2);
}

pub(crate) async fn bad_urls() {
    let e = DieselStore::connect("mysql://root:hunter2@localhost/app")
        .await
        .unwrap_err();
    let shown = e.to_string();
    assert_eq!(e.kind(), ErrorKind::InvalidUrl);
    assert!(
        shown.contains("`mysql://root:***@localhost/app`"),
        "{shown}"
    );
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("unsupported scheme `mysql://`"), "{shown}");
    assert!(
        shown.contains("sqlite://PATH") && shown.contains("postgres://"),
        "{shown}"
    );

    let e = DieselStore::connect("sqlite:///nonexistent-dir-for-tests/x/store.db")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect);
    let shown = e.to_string();
    assert!(shown.contains("/nonexistent-dir-for-tests/x"), "{shown}");
    assert!(shown.contains("Create the directory first"), "{shown}");

    let e = DieselStore::builder("sqlite::memory:")
        .buffer_capacity(0)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("buffer_capacity"));

    // Nothing listens on port 1: the error names the URL, password masked, and what to do.
    let e = DieselStore::builder("postgres://app:s3cret@127.0.0.1:1/app")
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    let shown = e.to_string();
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(
        shown.contains("postgres://app:***@127.0.0.1:1/app"),
        "{shown}"
    );
    if cfg!(feature = "postgres") {
        assert_eq!(e.kind(), ErrorKind::Connect, "{shown}");
        assert!(shown.contains("PostgreSQL is running"), "{shown}");
    } else {
        assert_eq!(e.kind(), ErrorKind::MissingFeature, "{shown}");
        assert!(shown.contains("`postgres` feature"), "{shown}");
    }

    if let Some(url) = std::env::var(super::harness::PG_URL_VAR)
        .ok()
        .filter(|_| cfg!(feature = "postgres"))
    {
        let missing = super::harness::with_database(&url, "sh_test_database_that_does_not_exist");
        let e = DieselStore::connect(&missing).await.unwrap_err();
        let shown = e.to_string();
        assert_eq!(e.kind(), ErrorKind::Connect, "{shown}");
        assert!(
            shown.contains("does not exist") && shown.contains("createdb"),
            "{shown}"
        );
    }
}
