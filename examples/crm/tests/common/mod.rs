//! Shared by the CRM end-to-end tests (SQLite on a paused clock, PostgreSQL in real time): the
//! demo's test configuration and every check of a finished run.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::time::Duration;

use self_healing_crm::{Config, Demo, ProviderConfig};

/// Calls the load driver makes: enough that every fault class fires with seed 42.
pub const CALLS: u64 = 2500;

/// The test run: a fixed seed and number of calls, quick backoff, a busy email provider with
/// short-lived tokens.
pub fn config(store_url: String, crm_database: String) -> Config {
    Config {
        seed: 42,
        max_calls: Some(CALLS),
        // A backstop only: the run ends after `CALLS`.
        duration: Duration::from_secs(600),
        store_url,
        crm_database,
        progress: false,
        provider: ProviderConfig {
            token_ttl: Duration::from_millis(100),
            // The welcome mails share the quota with the test emails.
            rate_limit: 16,
            error_rate: 0.03,
            throttle_rate: 0.1,
            window: Duration::from_millis(200),
            primary_outage: (0.2, 0.32),
        },
        backoff: (Duration::from_millis(2), Duration::from_millis(20)),
        // Tolerant circuits, so that one busy second of the email provider does not hide the
        // expiring tokens behind an open circuit (the run is short). `outage.rs` checks the
        // circuit that the contacts outage opens.
        breaker: self_healing::BreakerConfig {
            failure_rate: 0.9,
            minimum_calls: 20,
            probe_after: Duration::from_millis(300),
            probe_max: Duration::from_millis(300),
            ..Default::default()
        },
        ..Config::default()
    }
}

/// Every strategy the demo's faults call for.
pub const ALL_HEALERS: [&str; 7] = [
    "retry",
    "reconnect",
    "timeout",
    "rate_limit_wait",
    "credential_refresh",
    "cached_value",
    "rollback",
];

/// Every check of a finished run: fault classes, each of `healers` healed some, no duplicated
/// writes, the bug escalated and notified once, store and dashboard API equal to the summary,
/// and the CRM's own routes.
pub async fn check_demo(demo: &Demo, healers: &[&str]) -> anyhow::Result<()> {
    let s = &demo.summary;
    println!("{s}\nprovider: {:?}", demo.provider);

    // Every injected fault class fired...
    for (fault, n) in &s.injected {
        assert!(*n > 0, "fault {fault} was never injected");
    }
    // ...and produced events of the matching error class.
    let mut classes: BTreeMap<String, u64> = BTreeMap::new();
    for ((_, class), n) in &s.classes {
        *classes.entry(class.clone()).or_default() += n;
    }
    for class in [
        "transient",
        "connection_lost",
        "timeout",
        "rate_limited",
        "auth_expired",
        "bug",
    ] {
        assert!(
            classes.get(class).copied().unwrap_or(0) > 0,
            "no {class} events: {classes:?}"
        );
    }
    // The expected strategies healed them.
    for strategy in healers {
        assert!(s.healed_by(strategy) > 0, "{strategy} healed nothing:\n{s}");
    }
    assert!(s.reconnects > 0 && s.token_refreshes > 1);

    // Mails the provider could not take were queued, then delivered once each.
    let queued = s
        .strategies
        .iter()
        .find(|r| r.strategy == "queue_for_later")
        .map_or(0, |r| r.deferred);
    assert!(queued > 0, "no mail was queued:\n{s}");
    assert_eq!(
        s.queued, queued,
        "the callers were told of every queued mail"
    );
    // Every queued mail is accounted for, and most were delivered. This test's provider is
    // hostile on purpose (a tight quota, tokens that live 100 ms): on a loaded machine, in real
    // time, some mails exhaust their 20 replays and are dead-lettered (the outbox doing its
    // job), or are still waiting when the drain gives up. That every queued mail is delivered
    // is the default run's target, measured on the demo's own provider.
    assert!(
        s.outbox.delivered + s.outbox.dead + s.outbox.pending >= queued,
        "{s}"
    );
    assert!(s.outbox.delivered * 2 >= queued, "{s}");
    assert!(s.mails_delivered_twice.is_empty(), "{s}");

    // The primary region's outage moved calls to the standby. (Whether the switched call then
    // healed depends on this test's provider, busy on purpose: its quota and short-lived
    // tokens fail many calls in either region.)
    assert!(
        s.endpoints[0].failed > 0 && s.endpoints[1].served > 0,
        "no failover:\n{s}"
    );

    // Non-idempotent writes were never duplicated.
    for (table, ids) in &demo.crm_check.duplicated {
        assert!(
            ids.is_empty(),
            "{table}: request ids written twice: {ids:?}"
        );
    }

    // The bug was escalated, never healed, and the admins were told once (throttled).
    let bug = s
        .classes
        .get(&("moveDeal".to_owned(), "bug".to_owned()))
        .copied()
        .unwrap_or(0);
    assert!(bug > 1, "moveDeal's bug fired {bug} times");
    let escalated: u64 = demo
        .tally
        .rows()
        .iter()
        .filter(|((source, strategy, outcome), _)| {
            source == "moveDeal" && strategy == "escalate" && outcome == "failed"
        })
        .map(|(_, n)| n)
        .sum();
    assert_eq!(escalated, bug, "every bug escalated");
    let bug_notes = demo
        .inbox
        .bodies
        .lock()
        .unwrap()
        .iter()
        .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .filter(|v| v["class"] == "bug" && v["source"] == "moveDeal")
        .count();
    assert_eq!(bug_notes, 1, "the bug is notified once, then throttled");

    // The store holds what the summary counted.
    let mut stored: BTreeMap<String, u64> = BTreeMap::new();
    let mut after = None;
    loop {
        let page = demo
            .store
            .events(&self_healing::store::EventFilter::default(), after, 1000)
            .await?;
        for e in &page.events {
            *stored.entry(e.outcome.as_str().to_owned()).or_default() += e.count;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(stored, s.outcomes, "store vs summary");

    // So does the dashboard's JSON API.
    let (addr, stop, server) = serve(demo, None).await?;
    let client = reqwest::Client::new();
    let mut api: BTreeMap<String, u64> = BTreeMap::new();
    let mut after = String::new();
    loop {
        let url = format!("http://{addr}/platform/system-health/api/events?limit=1000{after}");
        let body: serde_json::Value =
            serde_json::from_str(&client.get(url).send().await?.text().await?)?;
        for e in body["events"].as_array().expect("events") {
            *api.entry(e["outcome"].as_str().unwrap().to_owned())
                .or_default() += e["count"].as_u64().unwrap();
        }
        match body["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(api, s.outcomes, "dashboard API vs summary");

    // The CRM's own routes, served next to the dashboard.
    // The fault layer is still on: a client retries a 502 (a failed non-idempotent write was
    // not re-run by the healer, and nothing was duplicated).
    let mut invite = serde_json::Value::Null;
    for _ in 0..10 {
        let r = client
            .post(format!("http://{addr}/api/onboarding/invite"))
            .header("content-type", "application/json")
            .body(r#"{"email": "new.client@example.com"}"#)
            .send()
            .await?;
        if r.status().is_success() {
            invite = serde_json::from_str(&r.text().await?)?;
            break;
        }
    }
    let token = invite["token"].as_str().expect("an invite within 10 tries");
    let session: serde_json::Value = serde_json::from_str(
        &client
            .get(format!("http://{addr}/api/onboarding/session/{token}"))
            .send()
            .await?
            .text()
            .await?,
    )?;
    assert_eq!(session["email"], "new.client@example.com");
    assert_eq!(session["status"], "started");
    // Seeding templates is idempotent by construction: a second seed inserts nothing.
    let mut seeded = Vec::new();
    for _ in 0..2 {
        for _ in 0..10 {
            let r = client
                .post(format!("http://{addr}/api/seed-templates"))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await?;
            if r.status().is_success() {
                let v: serde_json::Value = serde_json::from_str(&r.text().await?)?;
                seeded.push(v["inserted"].as_u64().unwrap_or(u64::MAX));
                break;
            }
        }
    }
    assert_eq!(
        seeded.last(),
        Some(&0),
        "the second seed adds nothing: {seeded:?}"
    );
    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// Serves the run's dashboard and CRM API (as the binary does) on a loopback port: the address,
/// the sender that stops the server, and the server's task.
pub async fn serve(
    demo: &Demo,
    admin_token: Option<&str>,
) -> anyhow::Result<(
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
)> {
    let dashboard = demo.dashboard(admin_token)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    dashboard.state.check_bind(addr)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let state = dashboard.state.clone();
        let app = dashboard.app.clone();
        // Keeps the health monitor running as long as the server.
        let _dashboard = dashboard;
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
            state.close_streams();
        })
        .await
    });
    Ok((addr, stop, server))
}
