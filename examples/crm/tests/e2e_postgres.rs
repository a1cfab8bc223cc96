//! The demo path end to end with everything on PostgreSQL: the healing store and the CRM's own
//! tables in one fresh database (what `--database-url postgres://…` does), with the checks of
//! `common::check_demo`.
//!
//! This one runs on the real clock: the queries go to a PostgreSQL server outside the runtime,
//! and a paused clock would jump past every timeout while a query is in flight. Nothing here
//! asserts a duration, and the strategies whose success depends on the clock are left to the
//! paused-clock run.
//!
//! Skipped (one line) without `SELF_HEALING_TEST_POSTGRES_URL`; failed instead when
//! `SELF_HEALING_REQUIRE_POSTGRES=1`.

mod common;

use self_healing_testkit::FreshPostgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_demo_on_postgres_heals_every_fault_class() -> anyhow::Result<()> {
    let Some(db) = FreshPostgres::create(
        "sh_crm",
        "the CRM end-to-end test",
        cfg!(feature = "postgres"),
        "`--features postgres` (cargo test -p self-healing-crm --features postgres)",
    )
    .await
    else {
        return Ok(());
    };
    let config = common::config(db.url().to_owned(), db.url().to_owned());
    let demo = self_healing_crm::run(config).await?;
    // `timeout` and `rate_limit_wait` heal on the clock: on a loaded machine a re-run of a slow
    // read can be slow again, so whether they healed is checked by the paused-clock run
    // (e2e.rs); here their faults must still be diagnosed (the error-class checks).
    common::check_demo(
        &demo,
        &["retry", "reconnect", "credential_refresh", "cached_value"],
    )
    .await?;
    // The CRM's tables are in PostgreSQL, next to the healing tables.
    assert!(
        demo.crm_check.rows.get("contacts").copied().unwrap_or(0) > 0,
        "{:?}",
        demo.crm_check.rows
    );
    Ok(())
}
