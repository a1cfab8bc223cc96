//! Handler tests of what the dashboard serves: the page, the JSON API, `/health`, `/metrics` and
//! the live stream, through `tower::ServiceExt::oneshot` against a seeded store, on SQLite and
//! (when `SELF_HEALING_TEST_POSTGRES_URL` is set) PostgreSQL. Access control: `auth.rs`.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{
    OUTBOX_DEAD, OUTBOX_DELIVERED, OUTBOX_PENDING, TOKEN, TestDb, XSS, XSS_SOURCE, get,
    seed_outbox, seeded, send, state,
};
use http_body_util::BodyExt;
use self_healing_dashboard::{DashboardState, LiveFeed, router};
use self_healing_runtime::event::BoxFuture;
use self_healing_runtime::health::{
    CheckResult, HealthCheck, HealthContext, HealthMonitor, HealthStatus,
};
use self_healing_runtime::{Healer, WithHealerExt, heal};

async fn the_page_shows_everything_and_escapes_messages(db: &TestDb) {
    let (app, _, _) = seeded(db).await;
    let a = send(&app, get("/platform/system-health", Some(TOKEN), &[])).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), "text/html; charset=utf-8");
    let page = &a.body;
    // The feed, with details.
    assert!(page.contains("createContact") && page.contains("sendInvoice"));
    assert!(
        page.contains("connection reset by the server"),
        "the diagnosis"
    );
    assert!(page.contains("90%"), "the diagnosis confidence");
    // Charts, as inline SVG.
    for id in ["chart-hourly", "chart-strategies", "chart-sources"] {
        let at = page.find(&format!("id=\"{id}\"")).expect(id);
        assert!(page[at..].contains("<svg class=\"chart\""), "{id} renders");
    }
    assert!(
        page.contains("<title>retry: 5 of 8 calls healed</title>"),
        "heal rate per strategy"
    );
    // Checklist, health checks.
    assert!(page.contains("neverCalled") && page.contains("not exercised"));
    assert!(page.contains("1100 MiB resident"), "stored health checks");
    // The hostile message is text.
    assert!(page.contains(
        "&#60;script&#62;window.__xss = 1&#60;/script&#62;&#60;img src=x onerror=&#34;window.__xss = 2&#34;&#62; boom"
    ) || page.contains("&lt;script&gt;window.__xss = 1&lt;/script&gt;"), "escaped: {page}");
    assert!(!page.contains("<script>window"), "no script from a message");
    assert!(!page.contains("<img src=x"), "no element from a message");
    // No inline script: every <script> loads the embedded file.
    for (i, _) in page.match_indices("<script") {
        assert!(
            page[i..].starts_with("<script src=\"/platform/system-health/assets/app.js\""),
            "inline script at {i}"
        );
    }
    assert!(!page.contains("style=\""), "no inline style");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "nothing from elsewhere"
    );
    // Filters narrow the feed; a bad one is a clear 400.
    let f = send(
        &app,
        get(
            "/platform/system-health?source=sendInvoice&outcome=healed",
            Some(TOKEN),
            &[],
        ),
    )
    .await;
    assert_eq!(f.status, StatusCode::OK);
    assert!(
        !f.body
            .contains(&format!("<span class=\"source\">{XSS_SOURCE}"))
    );
    let bad = send(
        &app,
        get("/platform/system-health?outcome=fixed", Some(TOKEN), &[]),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("invalid `outcome`") || bad.body.contains("invalid &#96;outcome&#96;")
    );
}

async fn events_api_filters_and_paginates(db: &TestDb) {
    let (app, _, _) = seeded(db).await;
    let api = "/platform/system-health/api/events";
    let all = send(&app, get(api, Some(TOKEN), &[])).await.json();
    assert_eq!(all["events"].as_array().unwrap().len(), 12);
    assert!(all["next"].is_null());
    let newest = &all["events"][0];
    assert_eq!(newest["source"], XSS_SOURCE);
    assert_eq!(
        newest["message"], XSS,
        "the API returns the message as data"
    );
    assert_eq!(
        newest["diagnosis"]["confidence"].as_f64().unwrap() as f32,
        0.9
    );
    assert_eq!(newest["fingerprint"].as_str().unwrap().len(), 16);

    // Keyset pages: disjoint, complete, in order.
    let mut seen = Vec::new();
    let mut uri = format!("{api}?limit=5");
    loop {
        let page = send(&app, get(&uri, Some(TOKEN), &[])).await.json();
        for e in page["events"].as_array().unwrap() {
            seen.push(e["id"].as_i64().unwrap());
        }
        match page["next"].as_str() {
            Some(next) => uri = format!("{api}?limit=5&after={next}"),
            None => break,
        }
    }
    let all_ids: Vec<i64> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(seen, all_ids);

    let healed = send(
        &app,
        get(
            &format!("{api}?outcome=healed&source=createContact"),
            Some(TOKEN),
            &[],
        ),
    )
    .await
    .json();
    let list = healed["events"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    assert!(list.iter().all(|e| e["outcome"] == "healed"));
    let recent = send(&app, get(&format!("{api}?since=15m"), Some(TOKEN), &[]))
        .await
        .json();
    assert_eq!(recent["events"].as_array().unwrap().len(), 5);

    for (query, names) in [
        ("outcome=fixed", "`outcome`"),
        ("category=db", "`category`"),
        ("severity=meh", "`severity`"),
        ("fingerprint=xyz", "`fingerprint`"),
        ("after=nope", "`after`"),
        ("limit=0", "`limit`"),
        ("since=soon", "`since`"),
    ] {
        let a = send(&app, get(&format!("{api}?{query}"), Some(TOKEN), &[])).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}");
        let e = a.json()["error"].as_str().unwrap().to_owned();
        assert!(e.contains(names), "{query}: {e}");
    }
}

async fn summary_patterns_sites_and_health_apis(db: &TestDb) {
    let (app, _, _) = seeded(db).await;
    let s = send(
        &app,
        get("/platform/system-health/api/summary", Some(TOKEN), &[]),
    )
    .await
    .json();
    assert_eq!(s["calls"], 12);
    assert_eq!(s["healed"], 7);
    assert_eq!(s["by_outcome"]["fast_failed"], 1);
    assert_eq!(s["strategies"][0]["strategy"], "retry");
    assert_eq!(s["strategies"][0]["calls"], 8);
    assert_eq!(s["top_failing_sources"][0]["source"], "createContact");
    assert_eq!(s["store"]["available"], true);
    let bad = send(
        &app,
        get(
            "/platform/system-health/api/summary?hours=0",
            Some(TOKEN),
            &[],
        ),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let p = send(
        &app,
        get("/platform/system-health/api/patterns", Some(TOKEN), &[]),
    )
    .await
    .json();
    let patterns = p["patterns"].as_array().unwrap();
    assert!(
        patterns
            .iter()
            .any(|p| p["strategy"] == "retry" && p["healed"] == 5 && p["failed"] == 2),
        "{patterns:?}"
    );

    let sites = send(
        &app,
        get("/platform/system-health/api/sites", Some(TOKEN), &[]),
    )
    .await
    .json();
    let sites = sites["sites"].as_array().unwrap();
    let row = |source: &str| {
        sites
            .iter()
            .find(|s| s["source"] == source)
            .unwrap()
            .clone()
    };
    assert_eq!(row("createContact")["failures"], 7);
    assert_eq!(row("createContact")["healed"], 5);
    assert_eq!(row("createContact")["category"], "database");
    assert_eq!(row("createContact")["exercised"], true);
    assert_eq!(row("neverCalled")["exercised"], false);
    assert_eq!(row("neverCalled")["circuit"], "closed");

    let h = send(
        &app,
        get("/platform/system-health/api/health", Some(TOKEN), &[]),
    )
    .await
    .json();
    assert!(
        ["pass", "warn"].contains(&h["status"].as_str().unwrap()),
        "{h}"
    );
    let stored = h["stored"].as_array().unwrap();
    assert_eq!(stored.len(), 2);
}

#[derive(Debug)]
struct Broken(&'static str);

impl HealthCheck for Broken {
    fn name(&self) -> &str {
        self.0
    }
    fn check<'a>(&'a self, _cx: &'a HealthContext) -> BoxFuture<'a, CheckResult> {
        Box::pin(async { CheckResult::new(HealthStatus::Unhealthy, "down: <b>refused</b>") })
    }
}

async fn health_json_follows_the_draft(db: &TestDb) {
    let (app, _, _) = seeded(db).await;
    let a = send(&app, get("/health", None, &[])).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), "application/health+json");
    let body = a.json();
    assert!(
        ["pass", "warn"].contains(&body["status"].as_str().unwrap()),
        "{body}"
    );
    assert_eq!(body["releaseId"], env!("CARGO_PKG_VERSION"));
    let checks = body["checks"].as_object().unwrap();
    let store = &checks["store:responseTime"][0];
    assert_eq!(store["componentType"], "datastore");
    assert_eq!(store["status"], "pass");
    assert_eq!(store["observedUnit"], "ms");
    assert!(store["observedValue"].is_number());
    assert!(store["time"].as_str().unwrap().ends_with('Z'));
    assert!(store.get("output").is_none(), "no output on pass");
    assert!(checks.contains_key("memory:utilization"));

    // Three unhealthy checks: fail, 503, each with its output.
    let store = db.store().await;
    let healer = Healer::builder().store(store.clone()).build().unwrap();
    let monitor = HealthMonitor::new(
        healer,
        vec![
            std::sync::Arc::new(Broken("billing")),
            std::sync::Arc::new(Broken("search")),
            std::sync::Arc::new(Broken("mail")),
        ],
    );
    let app = router(
        DashboardState::builder(store)
            .monitor(monitor)
            .admin_token(TOKEN)
            .build()
            .unwrap(),
    );
    let a = send(&app, get("/health", None, &[])).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = a.json();
    assert_eq!(body["status"], "fail");
    assert_eq!(body["checks"]["billing"][0]["status"], "fail");
    assert_eq!(
        body["checks"]["billing"][0]["output"],
        "down: <b>refused</b>"
    );
    assert!(body["output"].as_str().unwrap().contains("billing"));
}

async fn metrics_are_prometheus_text(db: &TestDb) {
    let store = db.store().await;
    let feed = LiveFeed::new();
    let healer = Healer::builder()
        .store(store.clone())
        .observer(feed.clone())
        .max_attempts(1)
        .build()
        .unwrap();
    let site = test_site!("chargeCard", Api);
    let result: Result<(), std::io::Error> = heal(site, || async {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "card \"x\" not found",
        ))
    })
    .with_healer(healer.clone())
    .await;
    assert!(result.is_err());
    healer.flush().await.expect("flushed");
    let state = DashboardState::builder(store.clone())
        .healer(healer)
        .feed(feed)
        .admin_token(TOKEN)
        .counters("llm", || vec![("asked", 3), ("last_http_status", 429)])
        .build()
        .unwrap();
    let app = router(state);
    assert_eq!(
        send(&app, get("/metrics", None, &[])).await.status,
        StatusCode::UNAUTHORIZED
    );
    let a = send(&app, get("/metrics", Some(TOKEN), &[])).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = &a.body;
    for family in [
        "# TYPE self_healing_calls_total counter",
        "# TYPE self_healing_circuit_state gauge",
        "# TYPE self_healing_queue_depth gauge",
        "# TYPE self_healing_events_folded_total counter",
        "# TYPE self_healing_events_dropped_total counter",
        "# TYPE self_healing_store_buffered_calls gauge",
        "self_healing_circuit_state{source=\"chargeCard\",state=\"closed\"} 1",
        "self_healing_events_recorded_total 1",
        "# TYPE self_healing_llm_asked_total counter\nself_healing_llm_asked_total 3",
        "# TYPE self_healing_llm_last_http_status gauge\nself_healing_llm_last_http_status 429",
    ] {
        assert!(text.contains(family), "{family} in\n{text}");
    }
    assert!(
        text.lines().any(
            |l| l.starts_with("self_healing_calls_total{source=\"chargeCard\"")
                && l.ends_with(" 1")
        ),
        "{text}"
    );
    let page = send(&app, get("/platform/system-health", Some(TOKEN), &[])).await;
    assert!(
        page.body.contains("<th colspan=\"2\">llm</th>"),
        "the page lists added counters"
    );
    let bad = DashboardState::builder(store.clone())
        .counters("LLM calls", Vec::new)
        .build()
        .unwrap_err();
    assert!(bad.to_string().contains("`counters`"), "{bad}");
    let public = router(
        DashboardState::builder(store)
            .admin_token(TOKEN)
            .public_metrics(true)
            .build()
            .unwrap(),
    );
    assert_eq!(
        send(&public, get("/metrics", None, &[])).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(
            &public,
            get("/platform/system-health/api/events", None, &[])
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
}

async fn the_stream_sends_live_events(db: &TestDb) {
    use tower::ServiceExt;
    let store = db.store().await;
    let feed = LiveFeed::new();
    let healer = Healer::builder()
        .store(store.clone())
        .observer(feed.clone())
        .max_attempts(1)
        .fold_window(Duration::from_millis(10))
        .build()
        .unwrap();
    let app = router(state(&store, &feed));
    let response = app
        .oneshot(get("/platform/system-health/api/stream", Some(TOKEN), &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut next = async || {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("a frame within 10 s")
            .expect("the stream is open")
            .expect("a frame");
        String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
    };
    assert!(next().await.starts_with("event: ready"));
    let site = test_site!("liveProbe", Runtime);
    let _ = heal(site, || async {
        Err::<(), _>(std::io::Error::other(
            "<img src=x onerror=alert(1)> not found",
        ))
    })
    .with_healer(healer.clone())
    .await;
    let mut text = next().await;
    while text.starts_with(':') {
        text = next().await;
    }
    assert!(text.starts_with("event: healing\ndata: {"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(text.trim_start_matches("event: healing\ndata: ").trim()).unwrap();
    assert_eq!(json["source"], "liveProbe");
    assert!(json["message"].as_str().unwrap().contains("<img src=x"));
}

async fn the_outbox_panel_and_api_escape_entries(db: &TestDb) {
    let (app, state, _) = seeded(db).await;
    let page = send(&app, get("/platform/system-health", Some(TOKEN), &[])).await;
    assert_eq!(page.status, StatusCode::OK);
    let at = page
        .body
        .find("<section id=\"outbox\">")
        .expect("the panel");
    assert!(
        page.body[at..].contains("No call is queued"),
        "an empty outbox says so"
    );
    let api = "/platform/system-health/api/outbox";
    let empty = send(&app, get(api, Some(TOKEN), &[])).await.json();
    assert_eq!(empty["counts"]["pending"], 0);
    assert!(empty["pending"].as_array().unwrap().is_empty());

    seed_outbox(state.store()).await;
    let page = send(&app, get("/platform/system-health", Some(TOKEN), &[])).await;
    assert_eq!(page.status, StatusCode::OK);
    let at = page
        .body
        .find("<section id=\"outbox\">")
        .expect("the panel");
    let end = at + page.body[at..].find("</section>").unwrap();
    let panel = &page.body[at..end];
    assert!(
        panel.contains("<div class=\"n\" id=\"outbox-pending\">1</div>"),
        "{panel}"
    );
    assert!(
        panel.contains("<div class=\"n\" id=\"outbox-delivered\">1</div>"),
        "{panel}"
    );
    assert!(
        panel.contains("<div class=\"n\" id=\"outbox-dead\">1</div>"),
        "{panel}"
    );
    let table = |class: &str| {
        let start = panel
            .find(&format!("<table class=\"{class}\">"))
            .unwrap_or_else(|| panic!("{class} in {panel}"));
        let end = start + panel[start..].find("</table>").unwrap();
        panel[start..end].to_owned()
    };
    let pending = table("outbox-pending");
    assert!(pending.contains(OUTBOX_PENDING) && pending.contains("createContact"));
    assert!(!pending.contains(OUTBOX_DEAD) && !pending.contains(OUTBOX_DELIVERED));
    let dead = table("outbox-dead");
    assert!(dead.contains(OUTBOX_DEAD) && !dead.contains(OUTBOX_PENDING));
    // The error of a replay is text.
    for t in [&pending, &dead] {
        assert!(
            t.contains("&#60;script&#62;window.__xss = 1&#60;/script&#62;")
                || t.contains("&lt;script&gt;window.__xss = 1&lt;/script&gt;"),
            "escaped: {t}"
        );
        assert!(!t.contains("<script>") && !t.contains("<img src=x"), "{t}");
    }
    assert!(
        !page.body.contains("<script>window"),
        "no script from an entry"
    );
    assert!(!panel.contains("Ada"), "payloads stay out of the page");

    let body = send(&app, get(api, Some(TOKEN), &[])).await.json();
    assert_eq!(body["counts"]["pending"], 1);
    assert_eq!(body["counts"]["delivered"], 1);
    assert_eq!(body["counts"]["dead"], 1);
    let pending = &body["pending"][0];
    assert_eq!(pending["key"], OUTBOX_PENDING);
    assert_eq!(pending["source"], "createContact");
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["attempts"], 1);
    assert_eq!(
        pending["last_error"], XSS,
        "the API returns the error as data"
    );
    assert!(pending["next_attempt_at"].as_str().unwrap().ends_with('Z'));
    assert!(
        pending.get("payload").is_none(),
        "payloads stay out of the API"
    );
    assert_eq!(body["dead"][0]["key"], OUTBOX_DEAD);
    assert!(body["dead"][0]["next_attempt_at"].is_null());
    let bad = send(&app, get(&format!("{api}?limit=0"), Some(TOKEN), &[])).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["error"].as_str().unwrap().contains("`limit`"));
}

on_both_backends!(
    the_outbox_panel_and_api_escape_entries,
    the_page_shows_everything_and_escapes_messages,
    events_api_filters_and_paginates,
    summary_patterns_sites_and_health_apis,
    health_json_follows_the_draft,
    metrics_are_prometheus_text,
    the_stream_sends_live_events,
);
