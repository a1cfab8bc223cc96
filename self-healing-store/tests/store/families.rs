//! Failure families: events grouped by fingerprint with the learned strategy, resolved and
//! ignored by hand, regressed when seen again. Every case runs on both backends.

use std::time::Duration;

use self_healing_runtime::diagnosis::Fingerprint;
use self_healing_runtime::{EventStore, Outcome};
use self_healing_store::FamilyStatus;

use super::harness::{TestDb, at, event};

pub(crate) async fn families_group_events_by_fingerprint(db: &TestDb) {
    let store = db.store().await;
    assert!(store.families(10).await.unwrap().is_empty());
    // Family A: three events in two sources' names (one fingerprint), one folded (count 4).
    let mut a1 = event("createContact", 1, Outcome::Failed);
    a1.time = at(1_000_000);
    let mut a2 = event("createContact", 2, Outcome::Healed);
    a2.time = at(2_000_000);
    a2.count = 4;
    let mut a3 = event("createContact", 3, Outcome::Healed);
    a3.time = at(3_000_000);
    a3.source = "createContactV2".into(); // same family, another source
    a3.message = "connection reset by peer (latest)".into();
    // Family B: one event, later.
    let mut b = event("sendEmail", 4, Outcome::Failed);
    b.time = at(5_000_000);
    store
        .write_batch(&[a1, a2, a3.clone(), b.clone()])
        .await
        .unwrap();
    store.flush().await.unwrap();

    let families = store.families(10).await.unwrap();
    assert_eq!(families.len(), 2);
    let (fb, fa) = (&families[0], &families[1]);
    assert_eq!(fb.fingerprint, b.fingerprint, "newest first");
    assert_eq!(fa.fingerprint, a3.fingerprint);
    assert_eq!(fa.count, 6, "the sum of the events' count");
    assert_eq!(fa.first_seen, at(1_000_000));
    assert_eq!(fa.last_seen, at(3_000_000));
    assert_eq!(fa.sources, ["createContact", "createContactV2"]);
    assert_eq!(fa.message, "connection reset by peer (latest)");
    assert_eq!(fa.class, "connection_lost");
    // Every event tried retry (failed); the healed ones healed with reconnect (5 calls).
    let learned = fa.learned.as_ref().expect("a learned strategy");
    assert_eq!(learned.strategy, "reconnect");
    assert_eq!((learned.tried, learned.healed), (5, 5));
    assert_eq!(learned.heal_rate(), Some(1.0));
    let b_learned = fb.learned.as_ref().unwrap();
    assert_eq!(
        (b_learned.strategy.as_str(), b_learned.healed),
        ("retry", 0)
    );
    assert_eq!(b_learned.heal_rate(), Some(0.0));
    assert_eq!((fa.state(), fa.status), ("open", FamilyStatus::Open));
    assert!(fa.needs_attention());
    assert_eq!(fa.resolved_at, None);
    assert_eq!(store.families(1).await.unwrap().len(), 1, "the limit");
}

pub(crate) async fn resolved_families_regress_when_seen_again(db: &TestDb) {
    let store = db.store().await;
    let mut old = event("chargeCard", 1, Outcome::Failed);
    old.time = at(0);
    let mut other = event("refund", 2, Outcome::Failed);
    other.time = at(0);
    store
        .write_batch(&[old.clone(), other.clone()])
        .await
        .unwrap();
    store.flush().await.unwrap();
    let fp = old.fingerprint;
    let find = |families: Vec<self_healing_store::FamilyRecord>, fp: Fingerprint| {
        families.into_iter().find(|f| f.fingerprint == fp).unwrap()
    };

    store
        .set_family_status(fp, FamilyStatus::Resolved, "alice")
        .await
        .unwrap();
    store
        .set_family_status(other.fingerprint, FamilyStatus::Ignored, "bob")
        .await
        .unwrap();
    let f = find(store.families(10).await.unwrap(), fp);
    assert_eq!((f.state(), f.regressed), ("resolved", false));
    assert_eq!(f.changed_by.as_deref(), Some("alice"));
    let resolved_at = f.resolved_at.expect("resolved_at");
    assert!(resolved_at > at(0));
    assert!(!f.needs_attention());
    let o = find(store.families(10).await.unwrap(), other.fingerprint);
    assert_eq!(o.state(), "ignored");

    // It fails again after it was resolved: regressed, open again. Ignored stays ignored.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let again = event("chargeCard", 3, Outcome::Failed);
    let other_again = event("refund", 4, Outcome::Failed);
    assert!(again.time > resolved_at);
    store.write_batch(&[again, other_again]).await.unwrap();
    store.flush().await.unwrap();
    let f = find(store.families(10).await.unwrap(), fp);
    assert_eq!(
        (f.state(), f.status, f.regressed),
        ("regressed", FamilyStatus::Resolved, true)
    );
    assert!(f.needs_attention());
    assert_eq!(f.resolved_at, Some(resolved_at), "the row is kept");
    assert_eq!(
        find(store.families(10).await.unwrap(), other.fingerprint).state(),
        "ignored"
    );

    // Resolved again, then reopened by hand.
    store
        .set_family_status(fp, FamilyStatus::Resolved, "alice")
        .await
        .unwrap();
    assert_eq!(
        find(store.families(10).await.unwrap(), fp).state(),
        "resolved"
    );
    store
        .set_family_status(fp, FamilyStatus::Open, "carol")
        .await
        .unwrap();
    let f = find(store.families(10).await.unwrap(), fp);
    assert_eq!((f.state(), f.resolved_at), ("open", None));
    assert_eq!(f.changed_by.as_deref(), Some("carol"));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM failure_families").await, 2);
}
