//! Idempotency keys and rolled-back attempts: the two things that make re-running a
//! non-idempotent write safe.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use self_healing::rollback::{Saga, mark_rolled_back};
use self_healing::{
    CallKey, Healer, InMemoryStore, Outcome, Rejected, WithHealerExt, call_key, self_healing,
};

#[derive(Debug, thiserror::Error, PartialEq)]
enum DbError {
    #[error("connection reset by peer")]
    ConnectionLost,
    #[error("could not serialize access due to concurrent update")]
    Serialization,
    #[error(transparent)]
    Rejected(#[from] Rejected),
}

fn healer() -> (Healer, InMemoryStore) {
    let store = InMemoryStore::new();
    let healer = Healer::builder()
        .store(store.clone())
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .blocking_sleep(|_| {})
        .seed(3)
        .build()
        .unwrap();
    (healer, store)
}

/// A table with a unique request id, like `INSERT … ON CONFLICT (request_id) DO NOTHING`.
#[derive(Default)]
struct Table {
    rows: Mutex<HashMap<String, String>>,
    /// Commits that lose their connection after committing, still to come.
    resets_after_commit: Mutex<u32>,
    keys_seen: Mutex<Vec<Option<CallKey>>>,
}

impl Table {
    fn insert_keyed(&self, name: &str) -> Result<String, DbError> {
        let key = call_key();
        self.keys_seen.lock().unwrap().push(key);
        let key = key.expect("a keyed site gives its body a key").to_string();
        // ON CONFLICT DO NOTHING: the second attempt finds the first one's row.
        self.rows
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_insert_with(|| name.to_owned());
        let mut resets = self.resets_after_commit.lock().unwrap();
        if *resets > 0 {
            *resets -= 1;
            return Err(DbError::ConnectionLost);
        }
        Ok(key)
    }
}

#[self_healing(
    source = "createContactKeyed",
    category = "database",
    idempotent = "keyed"
)]
async fn create_contact(table: &Table, name: String) -> Result<String, DbError> {
    tokio::task::yield_now().await;
    table.insert_keyed(&name)
}

#[self_healing(
    source = "createContactPlain",
    category = "database",
    idempotent = false
)]
async fn create_contact_unkeyed(table: &Table, name: String) -> Result<(), DbError> {
    let mut rows = table.rows.lock().unwrap();
    let n = rows.len();
    rows.insert(format!("row-{n}"), name);
    drop(rows);
    let mut resets = table.resets_after_commit.lock().unwrap();
    if *resets > 0 {
        *resets -= 1;
        return Err(DbError::ConnectionLost);
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_keyed_write_heals_a_lost_commit_without_a_duplicate() {
    let (healer, store) = healer();
    let table = Table::default();
    *table.resets_after_commit.lock().unwrap() = 1;
    let key = create_contact(&table, "Ada".into())
        .with_healer(healer.clone())
        .await
        .expect("healed by a re-run");
    assert_eq!(table.rows.lock().unwrap().len(), 1, "one row, not two");
    let seen = table.keys_seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "two attempts");
    assert_eq!(seen[0], seen[1], "the same key in every attempt of a call");
    assert_eq!(seen[0].unwrap().to_string(), key);
    assert_eq!(call_key(), None, "no key outside the body");

    healer.flush().await.unwrap();
    let events = store.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, Outcome::Healed);
    assert_eq!(events[0].call_key.as_deref(), Some(key.as_str()));
}

#[tokio::test(start_paused = true)]
async fn calls_get_different_keys() {
    let (healer, _) = healer();
    let table = Table::default();
    let a = create_contact(&table, "A".into())
        .with_healer(healer.clone())
        .await
        .unwrap();
    let b = create_contact(&table, "B".into())
        .with_healer(healer.clone())
        .await
        .unwrap();
    assert_ne!(a, b);
    assert_eq!(table.rows.lock().unwrap().len(), 2);
    // Without a healer, the body still gets a key.
    let c = create_contact(&table, "C".into()).await.unwrap();
    assert!(c.parse::<CallKey>().is_ok());
}

#[tokio::test(start_paused = true)]
async fn an_unkeyed_write_is_not_re_run_after_a_lost_commit() {
    let (healer, store) = healer();
    let table = Table::default();
    *table.resets_after_commit.lock().unwrap() = 1;
    let result = create_contact_unkeyed(&table, "Ada".into())
        .with_healer(healer.clone())
        .await;
    assert_eq!(result, Err(DbError::ConnectionLost));
    assert_eq!(table.rows.lock().unwrap().len(), 1);
    healer.flush().await.unwrap();
    let steps = &store.events()[0].diagnosis.steps;
    assert!(
        steps.iter().any(|s| s.note.contains("not idempotent")),
        "{steps:?}"
    );
}

// ----- rolled-back attempts -----

#[derive(Default)]
struct Ledger {
    balance: Mutex<i64>,
    conflicts: Mutex<u32>,
    undone: Mutex<u32>,
}

/// A non-idempotent debit in a "transaction": a serialization failure rolls it back whole.
#[self_healing(
    source = "debitInTransaction",
    category = "database",
    idempotent = false
)]
async fn debit(ledger: &Ledger, amount: i64) -> Result<i64, DbError> {
    let before = *ledger.balance.lock().unwrap();
    *ledger.balance.lock().unwrap() -= amount;
    let mut conflicts = ledger.conflicts.lock().unwrap();
    if *conflicts > 0 {
        *conflicts -= 1;
        // What the database does on a serialization failure, and what
        // `rollback::transaction` then tells the interceptor.
        *ledger.balance.lock().unwrap() = before;
        mark_rolled_back();
        return Err(DbError::Serialization);
    }
    Ok(*ledger.balance.lock().unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_rolled_back_transaction_is_re_run_whole() {
    let (healer, store) = healer();
    let ledger = Ledger::default();
    *ledger.balance.lock().unwrap() = 100;
    *ledger.conflicts.lock().unwrap() = 1;
    let balance = debit(&ledger, 30).with_healer(healer.clone()).await;
    assert_eq!(balance, Ok(70), "debited once, after a rolled-back attempt");
    // A second call with two conflicts is healed too, whichever re-run wins the ranking.
    *ledger.conflicts.lock().unwrap() = 2;
    let balance = debit(&ledger, 30).with_healer(healer.clone()).await;
    assert_eq!(balance, Ok(40));
    healer.flush().await.unwrap();
    let events = store.events();
    let e = &events[0];
    assert_eq!(e.outcome, Outcome::Healed);
    assert_eq!(e.strategy.as_deref(), Some("rollback"));
    assert_eq!(e.attempts, 2);
    assert_eq!(events[1].outcome, Outcome::Healed);
    assert_eq!(events[1].first_actor(), Some("rollback"));
}

/// Two steps that are not one transaction, each undone by a compensation.
#[self_healing(source = "bookTrip", category = "api", idempotent = false)]
async fn book(ledger: &Ledger, fail_charge: &Mutex<u32>) -> Result<(), DbError> {
    let mut saga = Saga::new();
    saga.step(async {
        *ledger.balance.lock().unwrap() -= 10;
        Ok::<_, DbError>(())
    })
    .await?;
    let undone = &ledger.undone;
    let balance = &ledger.balance;
    // The compensation must be 'static: it records through shared state.
    let undo_log = std::sync::Arc::new(Mutex::new(0u32));
    let log = undo_log.clone();
    saga.compensate("refund", move || async move {
        *log.lock().unwrap() += 1;
        Ok(())
    });
    let charged = saga
        .step(async {
            let mut left = fail_charge.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Err(DbError::ConnectionLost);
            }
            Ok(())
        })
        .await;
    if charged.is_err() {
        // The refund ran: put the money back where this test can see it.
        *balance.lock().unwrap() += 10;
        *undone.lock().unwrap() += *undo_log.lock().unwrap();
    }
    charged?;
    saga.complete();
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_compensated_saga_is_re_run_whole() {
    let (healer, store) = healer();
    let ledger = Ledger::default();
    *ledger.balance.lock().unwrap() = 100;
    let fail_charge = Mutex::new(1);
    book(&ledger, &fail_charge)
        .with_healer(healer.clone())
        .await
        .expect("healed");
    assert_eq!(*ledger.balance.lock().unwrap(), 90, "charged once");
    assert_eq!(
        *ledger.undone.lock().unwrap(),
        1,
        "the first attempt was compensated"
    );
    healer.flush().await.unwrap();
    assert_eq!(store.events()[0].strategy.as_deref(), Some("rollback"));
}

#[self_healing(
    source = "createInvoiceSync",
    category = "database",
    idempotent = "keyed"
)]
fn create_invoice(table: &Table, name: &str) -> Result<String, DbError> {
    table.insert_keyed(name)
}

#[test]
fn a_sync_keyed_write_heals_with_one_key_and_records_it() {
    let (healer, store) = healer();
    let table = Table::default();
    *table.resets_after_commit.lock().unwrap() = 1;
    let key = self_healing::with_healer(&healer, || create_invoice(&table, "Ada")).unwrap();
    assert_eq!(table.rows.lock().unwrap().len(), 1, "one row, not two");
    let seen = table.keys_seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], seen[1]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(healer.flush()).unwrap();
    let events = store.events();
    assert_eq!(events[0].call_key.as_deref(), Some(key.as_str()));
}
