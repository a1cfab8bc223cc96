//! Event postings: filtered lists read through them agree with a scan of every event, across
//! many batches, late events and ties; retention trims them; the migration's backfill rebuilds
//! them. Every case runs on both backends.

use std::time::{Duration, SystemTime};

use diesel::QueryableByName;
use self_healing_runtime::diagnosis::Severity;
use self_healing_runtime::{EventStore, Outcome};
use self_healing_store::{DieselStore, EventFilter, EventRecord};

use super::harness::{TestDb, at, event};

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    v: i64,
}

/// Every page of `filter`, `page` events at a time, as (time, id).
async fn paged(store: &DieselStore, filter: &EventFilter, page: usize) -> Vec<(SystemTime, i64)> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let p = store.events(filter, cursor, page).await.unwrap();
        assert!(p.events.len() <= page);
        out.extend(p.events.iter().map(|e| (e.time, e.id)));
        match p.next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

/// What a scan of every event (the time index, no postings) says `filter` matches.
async fn scanned(
    store: &DieselStore,
    keep: impl Fn(&EventRecord) -> bool,
) -> Vec<(SystemTime, i64)> {
    let all = store
        .events(&EventFilter::default(), None, 1_000)
        .await
        .unwrap();
    assert!(
        all.next.is_none(),
        "the oracle reads every event in one page"
    );
    all.events
        .iter()
        .filter(|e| keep(e))
        .map(|e| (e.time, e.id))
        .collect()
}

async fn write_spread_out(db: &TestDb) -> DieselStore {
    // Small writer batches: the events land in dozens of batches, so a page spans postings.
    let store = db.builder().batch_size(16).connect().await.unwrap();
    let outcomes = [Outcome::Healed, Outcome::Failed, Outcome::BudgetExhausted];
    let mut events = Vec::new();
    for i in 0..400u64 {
        let mut e = event(&format!("source{}", i % 4), i, outcomes[(i % 3) as usize]);
        // Times out of order across batches (late arrivals), with ties every third event.
        let late = if i % 7 == 0 { 1_000 } else { 0 };
        e.time = at((i / 3 + 2_000 - late) * 1_000);
        e.severity = if i % 11 == 0 {
            Severity::Critical
        } else {
            Severity::Medium
        };
        events.push(e);
    }
    for chunk in events.chunks(16) {
        store.write_batch(chunk).await.unwrap();
        store.flush().await.unwrap();
    }
    store
}

/// What a filter should match, said independently of the store.
type Expect = Box<dyn Fn(&EventRecord) -> bool>;

async fn assert_lists_agree(store: &DieselStore) {
    let cases: Vec<(EventFilter, Expect)> = vec![
        (
            EventFilter {
                source: Some("source1".into()),
                ..Default::default()
            },
            Box::new(|e| e.source == "source1"),
        ),
        (
            EventFilter {
                outcome: Some(Outcome::BudgetExhausted),
                ..Default::default()
            },
            Box::new(|e| e.outcome == Outcome::BudgetExhausted),
        ),
        (
            EventFilter {
                severity: Some(Severity::Critical),
                since: Some(at(2_010_000)),
                until: Some(at(2_100_000)),
                ..Default::default()
            },
            Box::new(|e| {
                e.severity == Severity::Critical
                    && e.time >= at(2_010_000)
                    && e.time < at(2_100_000)
            }),
        ),
        (
            EventFilter {
                source: Some("source2".into()),
                outcome: Some(Outcome::Failed),
                ..Default::default()
            },
            Box::new(|e| e.source == "source2" && e.outcome == Outcome::Failed),
        ),
        (
            EventFilter {
                source: Some("nobody".into()),
                ..Default::default()
            },
            Box::new(|_| false),
        ),
    ];
    for (filter, keep) in &cases {
        let expected = scanned(store, keep).await;
        for page in [1, 5, 64, 1_000] {
            assert_eq!(
                paged(store, filter, page).await,
                expected,
                "{filter:?}, pages of {page}"
            );
        }
    }
}

pub(crate) async fn postings_lists_agree_with_a_scan(db: &TestDb) {
    let store = write_spread_out(db).await;
    assert!(db.scalar("SELECT COUNT(*) FROM event_postings").await > 25 * 4);
    assert_lists_agree(&store).await;
}

pub(crate) async fn the_migration_backfill_rebuilds_postings(db: &TestDb) {
    let store = write_spread_out(db).await;
    let families = store.families(100).await.unwrap();
    let deleted: Vec<Id> = db
        .load("DELETE FROM event_postings RETURNING id AS v")
        .await;
    assert!(!deleted.is_empty());
    let up = match db.backend {
        self_healing_store::Backend::Sqlite => {
            include_str!("../../migrations/sqlite/20261201000001_event_postings/up.sql")
        }
        self_healing_store::Backend::Postgres => {
            include_str!("../../migrations/postgres/20261201000001_event_postings/up.sql")
        }
    };
    let start = up.find("INSERT INTO event_postings").unwrap();
    let end = start + up[start..].find(';').unwrap();
    let rebuilt: Vec<Id> = db
        .load(&format!("{} RETURNING id AS v", &up[start..end]))
        .await;
    assert!(!rebuilt.is_empty() && rebuilt.iter().all(|r| r.v > 0));
    assert_lists_agree(&store).await;
    assert_eq!(store.families(100).await.unwrap(), families);
}

pub(crate) async fn retention_trims_postings(db: &TestDb) {
    let store = db.builder().batch_size(8).connect().await.unwrap();
    let old = SystemTime::now() - Duration::from_secs(10 * 86_400);
    let mut events = Vec::new();
    for i in 0..40u64 {
        let mut e = event("trim", i, Outcome::Failed);
        // Old and recent events alternate within each batch: every posting straddles the
        // cut-off.
        if i % 2 == 0 {
            e.time = old + Duration::from_secs(i);
        }
        e.count = 1 + i % 3;
        events.push(e);
    }
    store.write_batch(&events).await.unwrap();
    store.flush().await.unwrap();
    let report = store.prune(Duration::from_secs(86_400)).await.unwrap();
    assert_eq!(report.events, 20);
    let stored_calls = db.scalar("SELECT SUM(count) FROM healing_events").await;
    let family = &store.families(10).await.unwrap()[0];
    assert_eq!(
        family.count as i64, stored_calls,
        "family totals count kept events only"
    );
    assert!(family.first_seen > old + Duration::from_secs(86_400));
    assert_eq!(
        db.scalar("SELECT SUM(events) FROM event_postings").await,
        20
    );
    let trimmed = EventFilter {
        source: Some("trim".into()),
        ..Default::default()
    };
    assert_eq!(paged(&store, &trimmed, 3).await.len(), 20);
    // Everything old: postings go with their events.
    store.prune(Duration::ZERO).await.unwrap();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM event_postings").await, 0);
    assert!(store.families(10).await.unwrap().is_empty());
}
