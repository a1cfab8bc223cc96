//! An open circuit alone makes `/health` warn, not fail; the page and `/metrics` show it. A
//! binary of its own: the open circuit is process-wide and would leak into other tests.

mod common;

use std::time::Duration;

use common::{TOKEN, TestDb, get, send};
use self_healing_dashboard::{DashboardState, router};
use self_healing_runtime::{
    BreakerConfig, CircuitState, ErrorOps, Healer, WithHealerExt, heal_with,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_circuit_alone_warns() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let healer = Healer::builder()
        .store(store.clone())
        .max_attempts(1)
        .breaker(BreakerConfig {
            minimum_calls: 5,
            probe_after: Duration::from_secs(600),
            probe_max: Duration::from_secs(600),
            ..BreakerConfig::default()
        })
        .build()
        .unwrap();
    let site = test_site!("paymentsApi", Api);
    for _ in 0..6 {
        let r = heal_with(site, ErrorOps::boxed(), || async {
            Err::<(), Box<dyn std::error::Error + Send + Sync>>("service unavailable (503)".into())
        })
        .with_healer(healer.clone())
        .await;
        assert!(r.is_err());
    }
    assert_eq!(healer.circuit_of(site), CircuitState::Open);
    assert_eq!(
        site.circuit(),
        CircuitState::Closed,
        "outside the healer's scope no healer is in effect: the dashboard must ask its own"
    );

    let app = router(
        DashboardState::builder(store)
            .healer(healer)
            .admin_token(TOKEN)
            .build()
            .unwrap(),
    );
    let a = send(&app, get("/health", None, &[])).await;
    assert_eq!(a.status, axum::http::StatusCode::OK, "warn answers 200");
    let body = a.json();
    assert_eq!(body["status"], "warn", "{body}");
    let circuit = &body["checks"]["paymentsApi:circuit"][0];
    assert_eq!(circuit["status"], "warn");
    assert_eq!(circuit["observedValue"], "open");
    assert!(body["output"].as_str().unwrap().contains("paymentsApi"));
    for (name, check) in body["checks"].as_object().unwrap() {
        if !name.ends_with(":circuit") {
            assert_eq!(check[0]["status"], "pass", "{name}: only the circuit warns");
        }
    }

    let metrics = send(&app, get("/metrics", Some(TOKEN), &[])).await.body;
    assert!(
        metrics.contains("self_healing_circuit_state{source=\"paymentsApi\",state=\"open\"} 1")
    );
    let page = send(&app, get("/platform/system-health", Some(TOKEN), &[]))
        .await
        .body;
    assert!(page.contains("<span class=\"circuit c-open\">open</span>"));
    assert!(
        page.contains("class=\"status s-degraded\""),
        "the overall status is degraded"
    );
}
