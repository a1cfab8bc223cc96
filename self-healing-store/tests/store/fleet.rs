//! Learning shared by a fleet: what one instance learned is what the next one starts from.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use self_healing_runtime::diagnosis::Fingerprint;
use self_healing_runtime::event::EventStore;
use self_healing_runtime::health::HealthMonitor;
use self_healing_runtime::selection::Advice;
use self_healing_runtime::{
    BreakerConfig, BudgetConfig, Category, Healer, Rejected, Site, SiteInfo, SiteOptions,
    WithHealerExt, heal,
};

use super::harness::TestDb;

#[derive(Debug)]
enum DealError {
    Deadlock,
    /// A call the healer refused: `heal` needs the error type to represent one.
    Rejected(Rejected),
}

impl std::fmt::Display for DealError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DealError::Deadlock => f.write_str("deadlock detected while updating deals"),
            DealError::Rejected(r) => r.fmt(f),
        }
    }
}

impl std::error::Error for DealError {}

impl From<Rejected> for DealError {
    fn from(rejected: Rejected) -> Self {
        DealError::Rejected(rejected)
    }
}

/// A connection that is broken before every call and only works after a reconnect: retry never
/// heals it, reconnect always does (the rule table would try retry first for a deadlock).
#[derive(Debug, Default)]
struct Connection {
    healthy: AtomicBool,
}

impl Connection {
    fn call(&self) -> Result<u32, DealError> {
        if self.healthy.swap(false, Ordering::SeqCst) {
            Ok(1)
        } else {
            Err(DealError::Deadlock)
        }
    }
}

fn healer(store: self_healing_store::DieselStore, conn: &Arc<Connection>, id: &str) -> Healer {
    let conn = conn.clone();
    Healer::builder()
        .instance_id(id)
        .store(store)
        .max_attempts(4)
        .backoff(Duration::from_millis(1), Duration::from_millis(2))
        .seed(7)
        // This test is about learning: keep the breaker and the retry budget out of the way.
        .breaker(BreakerConfig {
            minimum_calls: 10_000,
            ..BreakerConfig::default()
        })
        .retry_budget(BudgetConfig {
            ratio: 1.0,
            floor_per_sec: 1_000.0,
            max_tokens: 1_000.0,
        })
        .on_reconnect(Category::Database, move || {
            let conn = conn.clone();
            async move {
                conn.healthy.store(true, Ordering::SeqCst);
                Ok(())
            }
        })
        .build()
        .expect("a healer")
}

/// The fleet test of issue 5: a second instance started against the same database immediately
/// prefers the strategy that healed best for a fingerprint.
pub(crate) async fn a_second_instance_prefers_what_the_first_learned(db: &TestDb) {
    static SITE: Site = Site::new(SiteInfo {
        source: "moveDeal",
        category: Category::Database,
        function: "move_deal",
        module_path: module_path!(),
        file: file!(),
        line: line!(),
        options: SiteOptions::new(),
    });
    let conn = Arc::new(Connection::default());

    // Instance A learns: early calls try retry first (the rule table's choice for a deadlock)
    // and may fail; once reconnect has healed, it leads.
    let store_a = db.store().await;
    let a = healer(store_a.clone(), &conn, "instance-a");
    let mut results = Vec::new();
    for _ in 0..30 {
        results.push(
            heal(&SITE, || async { conn.call() })
                .with_healer(a.clone())
                .await
                .is_ok(),
        );
    }
    assert!(
        results[20..].iter().all(|ok| *ok),
        "learned by call 20: {results:?}"
    );
    a.flush().await.expect("flushed");
    store_a.flush().await.expect("flushed");
    let learned = a.patterns().snapshot();
    assert!(
        learned
            .iter()
            .any(|r| r.strategy == "reconnect" && r.stat.healed >= 15),
        "instance A learned reconnect: {learned:?}"
    );

    // Instance B: a new process against the same database, warm-started from it.
    let store_b = db.store().await;
    let b = healer(store_b.clone(), &conn, "instance-b");
    b.refresh_from_store().await.expect("refreshed");
    let result = heal(&SITE, || async { conn.call() })
        .with_healer(b.clone())
        .await;
    assert!(result.is_ok());
    b.flush().await.expect("flushed");
    store_b.flush().await.expect("flushed");
    let first = &store_b
        .events(&self_healing_store::EventFilter::default(), None, 10)
        .await
        .expect("events")
        .events
        .into_iter()
        .find(|e| e.instance == "instance-b")
        .expect("instance B recorded its call");
    assert_eq!(first.strategy.as_deref(), Some("reconnect"));
    assert_eq!(
        first.attempts, 2,
        "B went straight to reconnect: no retry first"
    );
}

/// Advice, health reports and pings go through the runtime's `EventStore` trait.
pub(crate) async fn advice_health_and_ping_round_trip(db: &TestDb) {
    let store = db.store().await;
    let dyn_store: &dyn EventStore = &store;
    dyn_store.ping().await.expect("ping");
    let advice = Advice {
        strategy: "reconnect".into(),
        confidence: 0.8,
        diagnosis: "the pool holds dead connections".into(),
        analyzer: "llm".into(),
    };
    dyn_store
        .write_advice(Fingerprint(0xfeed), &advice)
        .await
        .expect("advice written");
    let loaded = dyn_store.load_advice().await.expect("advice loaded");
    assert_eq!(loaded, vec![(Fingerprint(0xfeed), advice)]);
    assert!(
        dyn_store
            .load_patterns()
            .await
            .expect("patterns")
            .iter()
            .all(|r| !r.strategy.is_empty()),
        "the advice row is not a statistic"
    );

    let healer = Healer::builder()
        .store(store.clone())
        .build()
        .expect("a healer");
    let report = HealthMonitor::with_defaults(healer).run_now().await;
    let stored = store.latest_health_checks().await.expect("checks");
    assert_eq!(stored.len(), report.checks.len(), "{stored:?}");
    assert!(stored.iter().any(|c| c.check.name == "store"));
}
