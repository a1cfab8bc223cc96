//! Circuit news shared by a fleet: the notice log, commands, the per-instance view, pruning, and
//! three healers on one database that hear of each other's circuits, take commands, learn from
//! each other and outlive one of them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use self_healing_runtime::circuit_control::CircuitCommand;
use self_healing_runtime::event::EventStore;
use self_healing_runtime::fleet::{CircuitNotice, NoticeKind};
use self_healing_runtime::{
    BreakerConfig, BudgetConfig, Category, CircuitState, ErrorOps, Healer, Outcome, Site, SiteInfo,
    SiteOptions, WithHealerExt, heal_with,
};
use self_healing_store::{Backend, DieselStore, EventFilter};

use super::harness::TestDb;

/// Waits until `check` holds, polling; panics naming `what` after `within`.
async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const PATIENCE: Duration = Duration::from_secs(10);

fn moved(instance: &str, source: &str, state: CircuitState, held_open: bool) -> CircuitNotice {
    CircuitNotice::new(instance, source, NoticeKind::Moved { state, held_open })
}

/// The log: ids grow, `-1` answers only where the log stands, commands and moves round-trip,
/// the per-instance view keeps each instance's latest state, and sources are known.
pub(crate) async fn notices_round_trip(db: &TestDb) {
    let store = db.store().await;
    let dyn_store: &dyn EventStore = &store;
    assert!(
        dyn_store
            .poll_circuits(-1, Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "an empty log"
    );
    store
        .publish_circuit_notice(&moved("web-1", "chargeCard", CircuitState::Open, false))
        .await
        .unwrap();
    store
        .publish_circuit_notice(&moved("web-2", "chargeCard", CircuitState::HalfOpen, false))
        .await
        .unwrap();
    store
        .publish_circuit_command("cli", "chargeCard", CircuitCommand::Close, "alice")
        .await
        .unwrap();
    store
        .publish_circuit_notice(&moved("web-1", "chargeCard", CircuitState::Closed, false))
        .await
        .unwrap();
    store
        .publish_circuit_notice(&moved("web-1", "sendMail", CircuitState::Open, true))
        .await
        .unwrap();

    let latest = dyn_store.poll_circuits(-1, Duration::ZERO).await.unwrap();
    assert_eq!(latest.len(), 1, "only where the log stands: {latest:?}");
    assert_eq!(latest[0].source, "sendMail");
    let all = dyn_store.poll_circuits(0, Duration::ZERO).await.unwrap();
    assert_eq!(all.len(), 5, "{all:?}");
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    assert_eq!(all[4].id, latest[0].id);
    assert_eq!(
        all[2].kind,
        NoticeKind::Command {
            command: CircuitCommand::Close,
            by: "alice".into()
        }
    );
    assert_eq!(all[2].instance, "cli");
    assert!(
        all[0].at <= SystemTime::now() && all[0].at > SystemTime::now() - Duration::from_secs(60)
    );
    let rest = dyn_store
        .poll_circuits(all[1].id, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(rest, all[2..].to_vec());

    let states = store.circuit_states().await.unwrap();
    let view: Vec<(&str, &str, CircuitState, bool)> = states
        .iter()
        .map(|r| (&*r.source, &*r.instance, r.state, r.held_open))
        .collect();
    assert_eq!(
        view,
        vec![
            ("chargeCard", "web-1", CircuitState::Closed, false),
            ("chargeCard", "web-2", CircuitState::HalfOpen, false),
            ("sendMail", "web-1", CircuitState::Open, true),
        ]
    );
    assert_eq!(states[0].since, all[3].at);

    assert!(store.source_known("chargeCard").await.unwrap());
    assert!(!store.source_known("chargeCrad").await.unwrap());
    assert_eq!(
        store.known_sources().await.unwrap(),
        vec!["chargeCard".to_owned(), "sendMail".to_owned()]
    );

    // Old news goes; each instance's latest state stays for a week, for the view.
    let aged = |mut n: CircuitNotice, days: u64| {
        n.at = SystemTime::now() - Duration::from_secs(days * 24 * 3600);
        n
    };
    let old_command = || {
        aged(
            CircuitNotice::new(
                "cli",
                "pruneMe",
                NoticeKind::Command {
                    command: CircuitCommand::Open,
                    by: "carol".into(),
                },
            ),
            2,
        )
    };
    for n in [
        aged(moved("web-3", "pruneMe", CircuitState::Open, false), 2),
        aged(moved("web-3", "pruneMe", CircuitState::Closed, false), 2),
        old_command(),
        aged(moved("web-4", "pruneMe", CircuitState::Open, false), 8),
    ] {
        store.publish_circuit_notice(&n).await.unwrap();
    }
    let deleted = store.prune_circuit_notices().await.unwrap();
    assert_eq!(
        deleted, 3,
        "web-3's earlier move, the old command, web-4's week-old state"
    );
    let kept: Vec<(String, CircuitState)> = store
        .circuit_states()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.source == "pruneMe")
        .map(|r| (r.instance, r.state))
        .collect();
    assert_eq!(kept, vec![("web-3".to_owned(), CircuitState::Closed)]);
    assert_eq!(
        dyn_store
            .poll_circuits(0, Duration::ZERO)
            .await
            .unwrap()
            .len(),
        6,
        "the recent news is all there"
    );
    store.publish_circuit_notice(&old_command()).await.unwrap();
    let report = store.prune(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(report.circuit_notices, 1, "prune() prunes circuit news too");

    // A closed store neither publishes nor polls (the instance is gone), and says so.
    store.close().await;
    let e = store
        .publish_circuit_command("cli", "chargeCard", CircuitCommand::Open, "alice")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), self_healing_store::ErrorKind::Closed, "{e}");
}

/// A poller waiting for news wakes when another store on the same database publishes:
/// PostgreSQL at once (`LISTEN`), SQLite at the next read of the table.
pub(crate) async fn a_waiting_poller_wakes_on_news(db: &TestDb) {
    let listener = db.store().await;
    let publisher = db.store().await;
    let start = listener
        .poll_circuit_notices(-1, Duration::ZERO)
        .await
        .unwrap();
    assert!(start.is_empty());
    if db.backend == Backend::Postgres {
        // A first poll starts the listener.
        let _ = listener
            .poll_circuit_notices(0, Duration::from_millis(10))
            .await
            .unwrap();
        eventually("the listener connects", PATIENCE, || async {
            listener.listening_for_circuits()
        })
        .await;
    }
    let waiting = {
        let listener = listener.clone();
        tokio::spawn(async move {
            let asked = Instant::now();
            let found = listener
                .poll_circuit_notices(0, Duration::from_secs(30))
                .await
                .unwrap();
            (found, asked.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    publisher
        .publish_circuit_notice(&moved("web-9", "chargeCard", CircuitState::Open, false))
        .await
        .unwrap();
    match db.backend {
        Backend::Postgres => {
            let (found, took) = waiting.await.unwrap();
            assert_eq!(found.len(), 1, "{found:?}");
            assert!(
                took < Duration::from_secs(20),
                "woken by the notification, not by the 30 s wait ({took:?})"
            );
        }
        Backend::Sqlite => {
            // Another process's publish does not wake a SQLite poller: the runtime reads again
            // within a second. One through the same store does.
            waiting.abort();
            let same = listener.clone();
            let waiting = tokio::spawn(async move {
                same.poll_circuit_notices(1, Duration::from_secs(30))
                    .await
                    .unwrap()
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
            listener
                .publish_circuit_command("cli", "chargeCard", CircuitCommand::Reset, "bob")
                .await
                .unwrap();
            let found = tokio::time::timeout(Duration::from_secs(20), waiting)
                .await
                .expect("woken by the publish")
                .unwrap();
            assert_eq!(found.len(), 1, "{found:?}");
        }
    }
}

/// The dependency of the fleet test: fails while unhealthy, counts the calls that reach it.
#[derive(Debug, Default)]
struct Dependency {
    healthy: AtomicBool,
    calls: AtomicUsize,
}

impl Dependency {
    fn call(&self) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.healthy.load(Ordering::SeqCst) {
            Ok(1)
        } else {
            Err("service unavailable (503)".into())
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

macro_rules! registered_site {
    ($source:literal, $category:ident) => {{
        #[linkme::distributed_slice(self_healing_runtime::__private::SITES)]
        static ENTRY: &Site = &SITE;
        static SITE: Site = Site::new(SiteInfo {
            source: $source,
            category: Category::$category,
            function: "fleet_test",
            module_path: module_path!(),
            file: file!(),
            line: line!(),
            options: SiteOptions::new(),
        });
        &SITE
    }};
}

fn fleet_healer(store: DieselStore, id: &str) -> Healer {
    Healer::builder()
        .instance_id(id)
        .store(store)
        .max_attempts(2)
        .backoff(Duration::from_millis(1), Duration::from_millis(2))
        .seed(11)
        .learning_refresh(Some(Duration::from_millis(200)))
        .breaker(BreakerConfig {
            failure_rate: 0.9,
            minimum_calls: 5,
            probe_after: Duration::from_secs(600),
            probe_max: Duration::from_secs(600),
            ..BreakerConfig::default()
        })
        .retry_budget(BudgetConfig {
            ratio: 1.0,
            floor_per_sec: 1_000.0,
            max_tokens: 1_000.0,
        })
        .build()
        .expect("a healer")
}

async fn call(
    healer: &Healer,
    site: &'static Site,
    dep: &Arc<Dependency>,
) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    let dep = dep.clone();
    heal_with(site, ErrorOps::boxed(), move || {
        let dep = dep.clone();
        async move { dep.call() }
    })
    .with_healer(healer.clone())
    .await
}

/// `(instance, state, held_open)` of `source` in the store's per-instance view.
async fn view(store: &DieselStore, source: &str) -> Vec<(String, CircuitState, bool)> {
    store
        .circuit_states()
        .await
        .expect("circuit states")
        .into_iter()
        .filter(|r| r.source == source)
        .map(|r| (r.instance, r.state, r.held_open))
        .collect()
}

fn all_in(healers: &[&Healer], site: &'static Site, state: CircuitState) -> bool {
    healers.iter().all(|h| h.circuit_of(site) == state)
}

/// Three healers, each with its own store, on one database (the fleet of the README).
pub(crate) async fn three_instances_share_circuits_commands_and_learning(db: &TestDb) {
    // One site per backend: both variants run at once in this binary, and a site's call
    // counters are process-wide.
    let (site, learning_site): (&'static Site, &'static Site) = match db.backend {
        Backend::Sqlite => (
            registered_site!("fleetPaymentsSqlite", Api),
            registered_site!("fleetLedgerSqlite", Database),
        ),
        Backend::Postgres => (
            registered_site!("fleetPaymentsPg", Api),
            registered_site!("fleetLedgerPg", Database),
        ),
    };
    let source = site.source();
    let dep = Arc::new(Dependency::default());
    let (store_a, store_b, store_c, cli) = (
        db.store().await,
        db.store().await,
        db.store().await,
        db.store().await,
    );
    let a = fleet_healer(store_a.clone(), "fleet-a");
    let b = fleet_healer(store_b.clone(), "fleet-b");
    let c = fleet_healer(store_c.clone(), "fleet-c");
    // Let every worker learn where the log stands (its first poll) before anything happens.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // (a) A's circuit opens from failures; B and C suspect the dependency.
    for _ in 0..20 {
        if a.circuit_of(site) == CircuitState::Open {
            break;
        }
        assert!(call(&a, site, &dep).await.is_err());
    }
    assert_eq!(
        a.circuit_of(site),
        CircuitState::Open,
        "A opened from failures"
    );
    eventually(
        "B and C suspect the dependency A found down",
        PATIENCE,
        || async { all_in(&[&b, &c], site, CircuitState::Open) },
    )
    .await;
    // B has never called it: its next call is the probe, and its failure opens B's circuit at
    // once, far below B's minimum of 5 calls.
    let before = dep.calls();
    assert!(call(&b, site, &dep).await.is_err());
    assert!(dep.calls() > before, "B's probe reached the dependency");
    assert_eq!(b.circuit_of(site), CircuitState::Open, "one failed probe");
    let before = dep.calls();
    assert!(call(&b, site, &dep).await.is_err());
    assert_eq!(dep.calls(), before, "B now fails fast");
    // C's probe finds the dependency back: C closes.
    dep.healthy.store(true, Ordering::SeqCst);
    let before = dep.calls();
    assert_eq!(call(&c, site, &dep).await.unwrap(), 1);
    assert_eq!(dep.calls(), before + 1);
    assert_eq!(
        c.circuit_of(site),
        CircuitState::Closed,
        "C's probe closed it"
    );
    assert_eq!(
        a.circuit_of(site),
        CircuitState::Open,
        "a closing elsewhere does not close A"
    );

    // (b) Commands through the store (what the CLI does) reach every instance.
    cli.publish_circuit_command("cli", source, CircuitCommand::Close, "ops")
        .await
        .unwrap();
    eventually("everyone closed", PATIENCE, || async {
        all_in(&[&a, &b, &c], site, CircuitState::Closed)
    })
    .await;
    eventually("everyone published closed", PATIENCE, || async {
        let v = view(&cli, source).await;
        v.len() == 3
            && v.iter()
                .all(|(_, s, held)| *s == CircuitState::Closed && !held)
    })
    .await;
    cli.publish_circuit_command("cli", source, CircuitCommand::Open, "ops")
        .await
        .unwrap();
    eventually("everyone opened by hand", PATIENCE, || async {
        [&a, &b, &c].iter().all(|h| {
            h.circuits()
                .iter()
                .any(|v| v.source == source && v.state == CircuitState::Open && v.held_open)
        })
    })
    .await;
    let before = dep.calls();
    assert!(call(&b, site, &dep).await.is_err(), "held open");
    assert!(call(&c, site, &dep).await.is_err(), "held open");
    assert_eq!(
        dep.calls(),
        before,
        "nothing reaches a circuit opened by hand"
    );
    eventually("everyone published open", PATIENCE, || async {
        let v = view(&cli, source).await;
        v.len() == 3
            && v.iter()
                .all(|(_, s, held)| *s == CircuitState::Open && *held)
    })
    .await;
    cli.publish_circuit_command("cli", source, CircuitCommand::Reset, "ops")
        .await
        .unwrap();
    eventually("everyone reset", PATIENCE, || async {
        all_in(&[&a, &b, &c], site, CircuitState::Closed)
    })
    .await;
    assert_eq!(call(&b, site, &dep).await.unwrap(), 1);
    b.flush().await.expect("the events reached the store");
    store_b.flush().await.unwrap();
    let manual = store_b
        .events(
            &EventFilter {
                outcome: Some(Outcome::Manual),
                source: Some(source.to_owned()),
                ..EventFilter::default()
            },
            None,
            50,
        )
        .await
        .unwrap()
        .events;
    let b_manual: Vec<&str> = manual
        .iter()
        .filter(|e| e.instance == "fleet-b")
        .map(|e| e.message.as_str())
        .collect();
    assert!(
        b_manual.contains(&"circuit closed by hand (ops, via cli)")
            && b_manual.contains(&"circuit opened by hand (ops, via cli)")
            && b_manual.contains(&"circuit reset by hand (ops, via cli)"),
        "B recorded each command: {b_manual:?}"
    );

    // (c) What A learns, B knows after a refresh.
    let flaky = Arc::new(FlakyOnce::default());
    for _ in 0..10 {
        let flaky = flaky.clone();
        let healed = heal_with(learning_site, ErrorOps::boxed(), move || {
            let flaky = flaky.clone();
            async move { flaky.call() }
        })
        .with_healer(a.clone())
        .await;
        assert_eq!(healed.unwrap(), 7);
    }
    let learned = a
        .patterns()
        .snapshot()
        .into_iter()
        .find(|r| r.stat.healed >= 10)
        .expect("A learned what heals the flaky ledger");
    a.flush().await.expect("the events reached the store");
    store_a.flush().await.unwrap();
    eventually("B refreshed A's statistics", PATIENCE, || async {
        b.patterns().snapshot().iter().any(|r| {
            r.fingerprint == learned.fingerprint
                && r.strategy == learned.strategy
                && r.stat.healed >= 10
        })
    })
    .await;

    // (d) A dies; B and C carry on, and the view still shows A's last state and its time.
    eventually("A published its reset", PATIENCE, || async {
        view(&cli, source)
            .await
            .iter()
            .any(|(i, s, _)| i == "fleet-a" && *s == CircuitState::Closed)
    })
    .await;
    store_a.close().await;
    drop(a);
    let died = SystemTime::now();
    cli.publish_circuit_command("cli", source, CircuitCommand::Open, "ops")
        .await
        .unwrap();
    eventually("B and C opened by hand", PATIENCE, || async {
        all_in(&[&b, &c], site, CircuitState::Open)
    })
    .await;
    eventually("B and C published it", PATIENCE, || async {
        let v = view(&cli, source).await;
        ["fleet-b", "fleet-c"].iter().all(|id| {
            v.iter()
                .any(|(i, s, held)| i == id && *s == CircuitState::Open && *held)
        })
    })
    .await;
    let records = cli.circuit_states().await.unwrap();
    let a_last = records
        .iter()
        .find(|r| r.instance == "fleet-a" && r.source == source)
        .expect("A's last state is still listed");
    assert_eq!(a_last.state, CircuitState::Closed);
    assert!(a_last.since <= died, "with the time A last changed it");
    cli.publish_circuit_command("cli", source, CircuitCommand::Close, "ops")
        .await
        .unwrap();
    eventually("B and C closed", PATIENCE, || async {
        all_in(&[&b, &c], site, CircuitState::Closed)
    })
    .await;
    assert_eq!(call(&b, site, &dep).await.unwrap(), 1, "B keeps working");
    assert_eq!(call(&c, site, &dep).await.unwrap(), 1, "C keeps working");
}

/// Fails every other call: a retry heals it.
#[derive(Debug, Default)]
struct FlakyOnce {
    calls: AtomicUsize,
}

impl FlakyOnce {
    fn call(&self) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
        if self.calls.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            Err("ledger temporarily unavailable (503)".into())
        } else {
            Ok(7)
        }
    }
}
