//! The demo path end to end on SQLite: a fixed number of calls with a fixed seed, then every
//! check of `common::check_demo` (fault classes, strategies, no duplicated writes, the bug
//! notified once, store and dashboard API equal to the summary).
//!
//! The clock is tokio's paused clock: the healing waits (backoff, Retry-After, slow reads cut
//! by `timeout`, the circuit's open interval) and the provider's token expiry and rate window
//! all run on virtual time: they cost no real time, and a busy machine cannot turn a query into
//! a timeout. Time advances only while every task waits on a timer; SQLite's queries run on the
//! blocking pool, which holds the clock still, and the loopback provider answers within the same
//! runtime. The four clients share one connection, so how they interleave (and the exact counts)
//! still varies between runs: the checks are about fault classes and invariants, not counts.

mod common;

#[tokio::test(start_paused = true)]
async fn crm_demo_heals_every_fault_class() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = common::config(
        format!("sqlite://{}", dir.path().join("store.db").display()),
        dir.path().join("crm.db").display().to_string(),
    );
    let demo = self_healing_crm::run(config).await?;
    common::check_demo(&demo, &common::ALL_HEALERS).await
}
