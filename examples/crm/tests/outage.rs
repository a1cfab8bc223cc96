//! The contacts outage alone, on tokio's paused clock: no other fault is injected and the email
//! provider is healthy, so every failure is the outage's. The circuit of `getContacts` opens,
//! and every call it refuses, like every call that met the outage, is served from the cached
//! contact list: the caller sees no error.

mod common;

use std::time::Duration;

use self_healing_crm::{FaultRates, ProviderConfig};

#[tokio::test(start_paused = true)]
async fn the_outage_opens_the_circuit_and_the_cache_serves_every_call() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = common::config(
        format!("sqlite://{}", dir.path().join("store.db").display()),
        dir.path().join("crm.db").display().to_string(),
    );
    config.max_calls = Some(1200);
    config.faults = FaultRates {
        locked: 0.0,
        lost_connection: 0.0,
        reset_after_commit: 0.0,
        slow: 0.0,
        ..FaultRates::default()
    };
    config.provider = ProviderConfig {
        token_ttl: Duration::from_secs(3600),
        rate_limit: u32::MAX,
        error_rate: 0.0,
        throttle_rate: 0.0,
        ..ProviderConfig::default()
    };
    config.outage = (0.3, 0.7);
    config.breaker = self_healing::BreakerConfig {
        minimum_calls: 10,
        window: Duration::from_millis(300),
        probe_after: Duration::from_millis(200),
        probe_max: Duration::from_millis(200),
        ..Default::default()
    };
    let demo = self_healing_crm::run(config).await?;
    let s = &demo.summary;
    println!("{s}");

    let contacts = s
        .sources
        .iter()
        .find(|r| r.source == "getContacts")
        .expect("getContacts was called");
    assert_eq!(contacts.errors, 0, "the cache served every call:\n{s}");
    let (refused, healed) = s
        .circuit_refused
        .get("getContacts")
        .copied()
        .unwrap_or_default();
    assert!(refused > 0, "the outage opened the circuit:\n{s}");
    assert_eq!(healed, refused, "every refused call served from cache");
    assert_eq!(
        s.healed_by("cached_value"),
        contacts.healed,
        "the cache healed all of getContacts' failures"
    );
    // The only other failures are the demo's genuine bug and business rules: no circuit but
    // the contacts' opened.
    assert_eq!(
        s.circuit_refused.keys().collect::<Vec<_>>(),
        ["getContacts"],
        "{s}"
    );
    Ok(())
}
