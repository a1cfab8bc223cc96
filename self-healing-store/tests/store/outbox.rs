//! The outbox of `queue_for_later` sites through the runtime's `EventStore` methods: queueing
//! once per key, claims with a lease (and concurrent claims that never share an entry),
//! settling, listing, retrying, dropping, counting, pruning, outages; and the call key of
//! events. Every case runs on both backends.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use self_healing_runtime::outbox::{OutboxCounts, OutboxEntry, OutboxSettle, OutboxStatus};
use self_healing_runtime::{EventStore, Outcome};
use self_healing_store::{Backend, DieselStore, EventFilter};

use super::harness::{Proxy, TestDb, WriteLock, at, event, pg_addr, with_host};

/// A lease long enough that no claim of a case outlives it by accident.
const LEASE: Duration = Duration::from_secs(60);

/// A pending entry queued at `at(us)`, due then.
fn entry(key: &str, source: &str, us: u64) -> OutboxEntry {
    OutboxEntry::new(
        key,
        source,
        format!(r#"{{"contact":{{"name":"Ada","n":{us}}}}}"#),
        at(us),
    )
}

fn keys(entries: &[OutboxEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.key.as_str()).collect()
}

fn counts(pending: u64, delivered: u64, dead: u64) -> OutboxCounts {
    OutboxCounts {
        pending,
        delivered,
        dead,
    }
}

pub(crate) async fn outbox_put_is_once_per_key_and_round_trips(db: &TestDb) {
    let store = db.store().await;
    assert_eq!(store.outbox_counts().await.unwrap(), counts(0, 0, 0));
    // Text of every kind round-trips: quotes, line breaks, non-ASCII, markup.
    let mut first = entry("k-1", "createContact", 1_000);
    first.payload = "{\"name\":\"Zoë \\\"<b>\\\"\\n\",\"tags\":[\"ü\",\"日本\"]}".into();
    assert!(store.outbox_put(&first).await.unwrap(), "inserted");
    let mut again = entry("k-1", "otherSource", 5_000);
    again.payload = "{}".into();
    assert!(
        !store.outbox_put(&again).await.unwrap(),
        "a second put of the same key changes nothing"
    );
    let listed = store.outbox_list(None, 10).await.unwrap();
    assert_eq!(listed, vec![first.clone()], "stored exactly as queued");
    assert_eq!(
        store.outbox_entry("k-1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.outbox_entry("k-nope").await.unwrap(), None);
    assert_eq!(store.outbox_counts().await.unwrap(), counts(1, 0, 0));

    // NUL is no JSON (and PostgreSQL text cannot hold it): refused, not changed.
    let mut nul = entry("k-nul", "createContact", 1_000);
    nul.payload = "{\"a\":\"\0\"}".into();
    let e = store.outbox_put(&nul).await.unwrap_err();
    assert!(e.to_string().contains("NUL"), "{e}");
    assert_eq!(store.outbox_entry("k-nul").await.unwrap(), None);
}

pub(crate) async fn outbox_claims_due_entries_oldest_first_with_a_lease(db: &TestDb) {
    let store = db.store().await;
    // Queued in this order; due at 3 s, 1 s, 2 s, and one not due until 100 s.
    for (key, due) in [("c", 3), ("a", 1), ("b", 2), ("later", 100)] {
        let mut e = entry(key, "syncDeals", 0);
        e.next_attempt_at = at(due * 1_000_000);
        assert!(store.outbox_put(&e).await.unwrap());
    }
    let now = at(10_000_000);
    assert!(
        store.outbox_claim(now, LEASE, 0).await.unwrap().is_empty(),
        "a limit of 0 claims nothing"
    );
    let first = store.outbox_claim(now, LEASE, 2).await.unwrap();
    assert_eq!(
        keys(&first),
        ["a", "b"],
        "oldest due first, at most the limit"
    );
    for e in &first {
        assert_eq!(e.attempts, 1);
        assert_eq!(e.next_attempt_at, now + LEASE, "the lease's end");
        assert_eq!(e.updated_at, now);
        assert_eq!(e.status, OutboxStatus::Pending);
    }
    let rest = store.outbox_claim(now, LEASE, 10).await.unwrap();
    assert_eq!(
        keys(&rest),
        ["c"],
        "claimed entries are not claimed again, and `later` is not due"
    );
    assert!(store.outbox_claim(now, LEASE, 10).await.unwrap().is_empty());
    // Stored as returned.
    assert_eq!(store.outbox_entry("a").await.unwrap().unwrap(), first[0]);

    // Before the lease ends nothing comes back; after it, the entries whose replay never
    // settled (a worker that died) are due again, with their tries counted.
    let during = now + LEASE - Duration::from_micros(1);
    assert!(
        store
            .outbox_claim(during, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let later = now + LEASE + Duration::from_secs(200);
    let again = store.outbox_claim(later, LEASE, 10).await.unwrap();
    // a, b and c were due at the same instant (the lease's end): in the order they were queued.
    assert_eq!(keys(&again), ["c", "a", "b", "later"]);
    assert_eq!(
        again.iter().map(|e| e.attempts).collect::<Vec<_>>(),
        [2, 2, 2, 1]
    );
}

pub(crate) async fn outbox_settles_pending_entries_only(db: &TestDb) {
    let store = db.store().await;
    for key in ["ok", "again", "dead", "dropped"] {
        store
            .outbox_put(&entry(key, "sendInvoice", 0))
            .await
            .unwrap();
    }
    let now = at(1_000_000);
    assert_eq!(store.outbox_claim(now, LEASE, 10).await.unwrap().len(), 4);
    let settled = at(2_000_000);

    store
        .outbox_settle("ok", &OutboxSettle::Delivered, settled)
        .await
        .unwrap();
    let ok = store.outbox_entry("ok").await.unwrap().unwrap();
    assert_eq!(ok.status, OutboxStatus::Delivered);
    assert_eq!(ok.updated_at, settled);
    assert_eq!(ok.last_error, None);

    let retry_at = at(30_000_000);
    let error = "503 Service Unavailable: <html>\"maintenance\"</html>\nline two".to_owned();
    store
        .outbox_settle(
            "again",
            &OutboxSettle::RetryAt {
                at: retry_at,
                error: error.clone(),
            },
            settled,
        )
        .await
        .unwrap();
    let again = store.outbox_entry("again").await.unwrap().unwrap();
    assert_eq!(again.status, OutboxStatus::Pending);
    assert_eq!(again.next_attempt_at, retry_at);
    assert_eq!(again.last_error.as_deref(), Some(error.as_str()));
    assert_eq!(again.attempts, 1);
    assert!(
        store
            .outbox_claim(at(29_000_000), LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "not before its retry time"
    );

    store
        .outbox_settle(
            "dead",
            &OutboxSettle::Dead {
                error: "400 Bad Request: invalid e-mail".into(),
            },
            settled,
        )
        .await
        .unwrap();
    let dead = store.outbox_entry("dead").await.unwrap().unwrap();
    assert_eq!(dead.status, OutboxStatus::Dead);
    assert_eq!(
        dead.last_error.as_deref(),
        Some("400 Bad Request: invalid e-mail")
    );

    // Settling what is not pending changes nothing: a delivered call stays delivered, a dead
    // one dead, and a dropped key stays gone.
    store
        .outbox_settle(
            "ok",
            &OutboxSettle::Dead {
                error: "late".into(),
            },
            at(3_000_000),
        )
        .await
        .unwrap();
    assert_eq!(store.outbox_entry("ok").await.unwrap().unwrap(), ok);
    store
        .outbox_settle("dead", &OutboxSettle::Delivered, at(3_000_000))
        .await
        .unwrap();
    assert_eq!(store.outbox_entry("dead").await.unwrap().unwrap(), dead);
    assert!(store.outbox_drop("dropped").await.unwrap());
    store
        .outbox_settle("dropped", &OutboxSettle::Delivered, at(3_000_000))
        .await
        .unwrap();
    assert_eq!(store.outbox_entry("dropped").await.unwrap(), None);
    assert_eq!(store.outbox_counts().await.unwrap(), counts(1, 1, 1));

    // A replay's error is capped like an event's message.
    store
        .outbox_put(&entry("long", "sendInvoice", 0))
        .await
        .unwrap();
    store
        .outbox_settle(
            "long",
            &OutboxSettle::Dead {
                error: "x".repeat(10_000),
            },
            settled,
        )
        .await
        .unwrap();
    let long = store.outbox_entry("long").await.unwrap().unwrap();
    let kept = long.last_error.unwrap();
    assert!(
        kept.len() <= 2_048 && kept.ends_with("…[truncated]"),
        "{}",
        kept.len()
    );
}

pub(crate) async fn outbox_lists_retries_and_drops(db: &TestDb) {
    let store = db.store().await;
    // Queued in this order (the list is newest first, whatever the entries' times).
    for (i, key) in ["p1", "d1", "x1", "p2", "d2"].iter().enumerate() {
        store
            .outbox_put(&entry(key, "chargeCard", 1_000 * (5 - i as u64)))
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .outbox_claim(at(1_000_000), LEASE, 10)
            .await
            .unwrap()
            .len(),
        5
    );
    let now = at(2_000_000);
    for key in ["d1", "d2"] {
        let dead = OutboxSettle::Dead {
            error: "gave up".into(),
        };
        store.outbox_settle(key, &dead, now).await.unwrap();
    }
    store
        .outbox_settle("x1", &OutboxSettle::Delivered, now)
        .await
        .unwrap();

    let all = store.outbox_list(None, 10).await.unwrap();
    assert_eq!(keys(&all), ["d2", "p2", "x1", "d1", "p1"], "newest first");
    let pending = store
        .outbox_list(Some(OutboxStatus::Pending), 10)
        .await
        .unwrap();
    assert_eq!(keys(&pending), ["p2", "p1"]);
    let dead = store
        .outbox_list(Some(OutboxStatus::Dead), 1)
        .await
        .unwrap();
    assert_eq!(keys(&dead), ["d2"], "the limit");
    let delivered = store
        .outbox_list(Some(OutboxStatus::Delivered), 10)
        .await
        .unwrap();
    assert_eq!(keys(&delivered), ["x1"]);
    assert!(store.outbox_list(None, 0).await.unwrap().is_empty());
    assert_eq!(store.outbox_counts().await.unwrap(), counts(2, 1, 2));

    // Retry: a dead entry is pending again, due now, its tries counted afresh.
    let later = at(9_000_000);
    assert!(store.outbox_retry("d1", later).await.unwrap());
    let d1 = store.outbox_entry("d1").await.unwrap().unwrap();
    assert_eq!(d1.status, OutboxStatus::Pending);
    assert_eq!(d1.attempts, 0);
    assert_eq!(d1.next_attempt_at, later);
    assert_eq!(d1.updated_at, later);
    assert_eq!(
        d1.last_error.as_deref(),
        Some("gave up"),
        "kept until a replay"
    );
    let claimed = store.outbox_claim(later, LEASE, 10).await.unwrap();
    assert_eq!(keys(&claimed), ["d1"], "due at once (p1 and p2 are leased)");
    assert_eq!(claimed[0].attempts, 1);
    // A pending (leased) entry is made due now too.
    assert!(store.outbox_retry("p1", later).await.unwrap());
    assert_eq!(
        keys(&store.outbox_claim(later, LEASE, 10).await.unwrap()),
        ["p1"]
    );
    // A delivered call is never replayed; an unknown key is no entry.
    assert!(!store.outbox_retry("x1", later).await.unwrap());
    assert_eq!(
        store.outbox_entry("x1").await.unwrap().unwrap().status,
        OutboxStatus::Delivered
    );
    assert!(!store.outbox_retry("nope", later).await.unwrap());

    // Drop: whatever the status; a second drop finds nothing.
    for key in ["x1", "d2", "p2"] {
        assert!(store.outbox_drop(key).await.unwrap(), "{key}");
        assert_eq!(store.outbox_entry(key).await.unwrap(), None);
    }
    assert!(!store.outbox_drop("p2").await.unwrap());
    assert!(!store.outbox_drop("nope").await.unwrap());
    assert_eq!(store.outbox_counts().await.unwrap(), counts(2, 0, 0));
}

/// Prune removes delivered entries older than the retention (counted from their delivery),
/// never pending or dead ones whatever their age.
pub(crate) async fn outbox_prune_removes_old_delivered_entries_only(db: &TestDb) {
    let store = db.store().await;
    let now = SystemTime::now();
    let old = now - Duration::from_secs(10 * 86_400);
    for (key, queued) in [
        ("old-delivered", old),
        ("new-delivered", old),
        ("old-pending", old),
        ("old-dead", old),
    ] {
        store
            .outbox_put(&OutboxEntry::new(key, "syncDeals", "{}", queued))
            .await
            .unwrap();
    }
    assert_eq!(store.outbox_claim(old, LEASE, 10).await.unwrap().len(), 4);
    store
        .outbox_settle("old-delivered", &OutboxSettle::Delivered, old)
        .await
        .unwrap();
    // Queued long ago, delivered just now: kept.
    store
        .outbox_settle("new-delivered", &OutboxSettle::Delivered, now)
        .await
        .unwrap();
    let dead = OutboxSettle::Dead {
        error: "gave up".into(),
    };
    store.outbox_settle("old-dead", &dead, old).await.unwrap();

    let report = store
        .prune_in_batches(Duration::from_secs(86_400), 1)
        .await
        .unwrap();
    assert_eq!(report.outbox, 1);
    let left = store.outbox_list(None, 10).await.unwrap();
    assert_eq!(keys(&left), ["old-dead", "old-pending", "new-delivered"]);
    assert_eq!(
        store
            .prune(Duration::from_secs(86_400))
            .await
            .unwrap()
            .outbox,
        0
    );
    assert_eq!(store.prune(Duration::ZERO).await.unwrap().outbox, 1);
    assert_eq!(store.outbox_counts().await.unwrap(), counts(1, 0, 1));
}

/// Four workers on two stores (two pools: as two instances) claim 200 entries at once, a few at
/// a time: every entry is claimed exactly once.
pub(crate) async fn concurrent_claims_never_share_an_entry(db: &TestDb) {
    const ENTRIES: usize = 200;
    let stores = [db.store().await, db.store().await];
    for i in 0..ENTRIES {
        let e = entry(&format!("k{i:03}"), "syncDeals", i as u64);
        assert!(stores[i % 2].outbox_put(&e).await.unwrap());
    }
    let now = at(10_000_000);
    let mut workers = Vec::new();
    for w in 0..4 {
        let store: DieselStore = stores[w % 2].clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store.outbox_claim(now, LEASE, 7).await.unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed.into_iter().map(|e| e.key));
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut all = Vec::new();
    let mut busy = 0;
    for w in workers {
        let mine = w.await.unwrap();
        busy += usize::from(!mine.is_empty());
        all.extend(mine);
    }
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "an entry was claimed twice");
    assert_eq!(all.len(), ENTRIES, "every entry was claimed");
    assert!(busy >= 2, "the workers ran side by side");
    let listed = stores[0].outbox_list(None, ENTRIES).await.unwrap();
    assert!(listed.iter().all(|e| e.attempts == 1), "claimed once each");
}

/// The database unreachable (PostgreSQL: connections cut) or locked by another writer (SQLite):
/// every outbox method answers an error, none panics, and the store works again after.
pub(crate) async fn outbox_outage_is_an_error(db: &TestDb) {
    let now = at(1_000_000);
    match db.backend {
        Backend::Postgres => {
            let proxy = Proxy::start(pg_addr(&db.url).await).await;
            let store = DieselStore::builder(with_host(&db.url, proxy.addr))
                .connect_timeout(Duration::from_secs(1))
                .connect()
                .await
                .unwrap();
            assert!(store.outbox_put(&entry("before", "s", 0)).await.unwrap());
            proxy.cut();
            assert!(store.outbox_put(&entry("k", "s", 0)).await.is_err());
            assert!(store.outbox_claim(now, LEASE, 10).await.is_err());
            assert!(
                store
                    .outbox_settle("before", &OutboxSettle::Delivered, now)
                    .await
                    .is_err()
            );
            assert!(store.outbox_list(None, 10).await.is_err());
            assert!(store.outbox_retry("before", now).await.is_err());
            assert!(store.outbox_drop("before").await.is_err());
            assert!(store.outbox_counts().await.is_err());
            proxy.restore();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while store.outbox_counts().await.is_err() {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "back after the outage"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(
                keys(&store.outbox_claim(now, LEASE, 10).await.unwrap()),
                ["before"]
            );
        }
        Backend::Sqlite => {
            let store = db
                .builder()
                .busy_timeout(Duration::from_millis(100))
                .connect()
                .await
                .unwrap();
            assert!(store.outbox_put(&entry("before", "s", 0)).await.unwrap());
            let lock = WriteLock::hold(db).await;
            let e = store.outbox_put(&entry("k", "s", 0)).await.unwrap_err();
            assert!(e.to_string().contains("locked"), "{e}");
            assert!(store.outbox_claim(now, LEASE, 10).await.is_err());
            assert!(
                store
                    .outbox_settle("before", &OutboxSettle::Delivered, now)
                    .await
                    .is_err()
            );
            assert!(store.outbox_retry("before", now).await.is_err());
            assert!(store.outbox_drop("before").await.is_err());
            // Readers are not blocked by a writer (WAL).
            assert_eq!(store.outbox_counts().await.unwrap(), counts(1, 0, 0));
            lock.release().await;
            assert_eq!(
                keys(&store.outbox_claim(now, LEASE, 10).await.unwrap()),
                ["before"]
            );
        }
    }
}

/// The call key of an event is stored and read back (folded records keep the first call's).
pub(crate) async fn events_keep_their_call_key(db: &TestDb) {
    let store = db.store().await;
    let mut keyed = event("createContact", 1, Outcome::Healed);
    keyed.call_key = Some("0123456789abcdef0123456789abcdef".into());
    let unkeyed = event("sendInvoice", 2, Outcome::Failed);
    store.write_batch(&[keyed, unkeyed]).await.unwrap();
    store.flush().await.unwrap();
    let page = store
        .events(&EventFilter::default(), None, 10)
        .await
        .unwrap();
    let key_of = |source: &str| {
        page.events
            .iter()
            .find(|e| e.source == source)
            .unwrap()
            .call_key
            .clone()
    };
    assert_eq!(
        key_of("createContact").as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(key_of("sendInvoice"), None);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM healing_events WHERE call_key IS NULL")
            .await,
        1
    );
}
