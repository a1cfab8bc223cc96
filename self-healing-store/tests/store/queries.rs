//! Reading: filters and keyset pagination, aggregations, the sites checklist, health checks and
//! notifications, retention. Every case runs on both backends.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use self_healing_runtime::diagnosis::{Fingerprint, Severity};
use self_healing_runtime::{Category, EventStore, Outcome, Site, SiteInfo, SiteOptions};
use self_healing_store::{
    EventCursor, EventFilter, HealthCheckRecord, HealthStatus, NotificationRecord,
    NotificationStatus,
};

use super::harness::{T0_US, TestDb, at, event};

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
    assert!(a.file.ends_with("queries.rs"), "{}", a.file);
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
