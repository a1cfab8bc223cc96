//! Persistence by default and nothing lost at exit: a healer built without a store writes to the
//! Diesel store at `DATABASE_URL` (else `./self-healing.db`), and `flush` / `shutdown` return once
//! every recorded event is committed, so a new store on the same database finds them all.
//!
//! The tests that build a healer with `Healer::builder().build()` and the process environment run
//! in a child process (this test binary, run again on one test), with `DATABASE_URL` and a
//! temporary working directory of their own: environment variables are process-wide, and nothing
//! may be written into the repository.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use self_healing::store::{EventFilter, MAX_PAGE};
use self_healing::{DieselStore, Healer, HealerBuilder, WithHealerExt, self_healing};

/// Failing calls each test records.
const CALLS: u64 = 25;
/// Set in the child process: which way it ends (`flush` or `shutdown`).
const CHILD: &str = "SELF_HEALING_TEST_PERSIST_CHILD";

/// A permanent failure: diagnosed and recorded at once, never re-run.
#[self_healing(source = "persistProbe", category = "database", idempotent = false)]
async fn probe(n: u64) -> Result<u64, std::io::Error> {
    Err(std::io::Error::other(format!(
        "duplicate key value violates unique constraint \"probe_{n}_key\""
    )))
}

async fn record(healer: &Healer) {
    for n in 0..CALLS {
        assert!(probe(n).with_healer(healer.clone()).await.is_err());
    }
}

/// The calls whose events a new store on `url` finds (a folded record counts its calls).
async fn committed_calls(url: &str) -> u64 {
    let store = DieselStore::connect(url).await.expect("reopen the store");
    let page = store
        .events(&EventFilter::default(), None, MAX_PAGE)
        .await
        .expect("read the events");
    assert!(page.next.is_none(), "more events than one page");
    page.events.iter().map(|e| e.count).sum()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The child's side of [`a_default_healer_persists_and_nothing_is_lost_at_exit`]: nothing unless
/// run as the child.
#[test]
fn child_process() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    runtime().block_on(async {
        // Exactly the quick start: no store given.
        let healer = Healer::builder().build().expect("a valid DATABASE_URL");
        println!("store: {:?}", healer.store());
        record(&healer).await;
        match mode.as_str() {
            "flush" => healer.flush().await.expect("flushed"),
            "shutdown" => healer
                .shutdown(Duration::from_secs(60))
                .await
                .expect("shut down"),
            other => panic!("unknown child mode {other}"),
        }
    });
    // No destructor runs: what `flush` or `shutdown` committed is all there is.
    std::process::exit(0);
}

fn run_child(mode: &str, dir: &Path, database_url: Option<&str>) -> String {
    let mut child = Command::new(std::env::current_exe().expect("this test binary"));
    child
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, mode)
        .current_dir(dir);
    match database_url {
        Some(url) => child.env("DATABASE_URL", url),
        None => child.env_remove("DATABASE_URL"),
    };
    let out = child.output().expect("the child runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child ({mode}) failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The store registered by the facade was found, in a program that never names it.
    assert!(stdout.contains("store: DieselStore"), "{stdout}");
    stdout
}

#[test]
fn a_default_healer_persists_and_nothing_is_lost_at_exit() {
    let rt = runtime();
    for mode in ["flush", "shutdown"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("events.db");
        let url = format!("sqlite://{}", db.display());
        run_child(mode, dir.path(), Some(&url));
        assert_eq!(rt.block_on(committed_calls(&url)), CALLS, "{mode}");
        assert!(
            !dir.path().join("self-healing.db").exists(),
            "DATABASE_URL was ignored"
        );
    }
}

#[test]
fn without_database_url_events_go_to_self_healing_db_where_the_cli_looks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stdout = run_child("flush", dir.path(), None);
    assert!(stdout.contains("sqlite://self-healing.db"), "{stdout}");
    let file = dir.path().join("self-healing.db");
    assert!(
        file.exists(),
        "no ./self-healing.db in the working directory"
    );
    // The CLI and the dashboard default to the same URL.
    assert_eq!(
        self_healing::store::DEFAULT_DATABASE_URL,
        "sqlite://self-healing.db"
    );
    let url = format!("sqlite://{}", file.display());
    assert_eq!(runtime().block_on(committed_calls(&url)), CALLS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_commits_every_event_to_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("flush.db").display());
    let healer = Healer::builder()
        .database_url(&url)
        .build()
        .expect("a valid URL");
    record(&healer).await;
    healer.flush().await.expect("flushed");
    assert_eq!(committed_calls(&url).await, CALLS);
    // A second round: flush waits for the new events too.
    record(&healer).await;
    healer.flush().await.expect("flushed");
    assert_eq!(committed_calls(&url).await, 2 * CALLS);
    healer
        .shutdown(Duration::from_secs(60))
        .await
        .expect("shut down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_commits_every_event_to_postgres() {
    let Some(pg) = self_healing_testkit::FreshPostgres::create(
        "sh_persist",
        "default store tests",
        cfg!(feature = "postgres"),
        "`--features postgres` (cargo test -p self-healing --features postgres --test persist)",
    )
    .await
    else {
        return;
    };
    // `DATABASE_URL` as `from_env` reads it, without touching this process's environment.
    let url = pg.url().to_owned();
    let healer = HealerBuilder::from_lookup(|name| (name == "DATABASE_URL").then(|| url.clone()))
        .expect("a valid environment")
        .build()
        .expect("a valid URL");
    assert!(format!("{:?}", healer.store()).contains("Postgres"));
    record(&healer).await;
    healer.flush().await.expect("flushed");
    assert_eq!(committed_calls(&url).await, CALLS);
    healer
        .shutdown(Duration::from_secs(60))
        .await
        .expect("shut down");
}

#[test]
fn a_bad_database_url_is_an_error_naming_the_variable() {
    for url in ["mysql://root:hunter2@db/app", "sqlite://"] {
        let e = HealerBuilder::from_lookup(|name| (name == "DATABASE_URL").then(|| url.to_owned()))
            .expect("DATABASE_URL is only opened by build")
            .build()
            .expect_err("a bad URL");
        let shown = e.to_string();
        assert!(shown.contains("`DATABASE_URL`"), "{shown}");
        assert!(!shown.contains("hunter2"), "the password leaked: {shown}");
    }
    let e = Healer::builder()
        .database_url("ftp://x")
        .build()
        .expect_err("a bad URL");
    assert!(e.to_string().contains("`database_url`"), "{e}");
}

#[cfg(not(feature = "postgres"))]
#[test]
fn a_postgres_url_without_the_feature_says_which_feature() {
    let e = Healer::builder()
        .database_url("postgres://postgres@127.0.0.1:5432/postgres")
        .build()
        .expect_err("no postgres feature");
    assert!(e.to_string().contains("postgres"), "{e}");
}

#[test]
fn a_healer_built_outside_a_runtime_persists_through_a_runtime_of_the_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("sync.db").display());
    // A synchronous program: no runtime when the healer and its store are built.
    let healer = Healer::builder()
        .database_url(&url)
        .build()
        .expect("a valid URL");
    let rt = runtime();
    rt.block_on(async {
        record(&healer).await;
        healer.flush().await.expect("flushed");
        assert_eq!(committed_calls(&url).await, CALLS);
    });
}
