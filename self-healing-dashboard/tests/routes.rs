//! Handler tests: every route through `tower::ServiceExt::oneshot` against a seeded store, on
//! SQLite and (when `SELF_HEALING_TEST_POSTGRES_URL` is set) PostgreSQL.

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use common::{CRON, TOKEN, TestDb, XSS, XSS_SOURCE, get, post_form, seed, send, state};
use http_body_util::BodyExt;
use self_healing_dashboard::{DashboardState, LiveFeed, router};
use self_healing_runtime::event::BoxFuture;
use self_healing_runtime::health::{
    CheckResult, HealthCheck, HealthContext, HealthMonitor, HealthStatus,
};
use self_healing_runtime::{Healer, WithHealerExt, heal};

/// Every route that needs the admin token.
const ADMIN_ROUTES: [&str; 8] = [
    "/platform/system-health",
    "/platform/system-health/api/events",
    "/platform/system-health/api/summary",
    "/platform/system-health/api/patterns",
    "/platform/system-health/api/sites",
    "/platform/system-health/api/health",
    "/platform/system-health/api/stream",
    "/metrics",
];

/// The sites this binary registers (the integration checklist).
fn sites() -> Vec<&'static self_healing_runtime::Site> {
    vec![
        test_site!("createContact", Database),
        test_site!("sendInvoice", Api),
        test_site!("neverCalled", Runtime),
    ]
}

async fn seeded(db: &TestDb) -> (Router, DashboardState, LiveFeed) {
    let store = db.store().await;
    seed(&store, &sites()).await;
    let feed = LiveFeed::new();
    let state = state(&store, &feed);
    (router(state.clone()), state, feed)
}

/// The status of a GET without reading an endless body (the SSE stream).
async fn status_of(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap) {
    use tower::ServiceExt;
    let r = app.clone().oneshot(req).await.expect("infallible");
    (r.status(), r.headers().clone())
}

async fn every_admin_route_needs_the_token(db: &TestDb) {
    let (app, _, _) = seeded(db).await;
    for route in ADMIN_ROUTES {
        let (status, headers) = status_of(&app, get(route, None, &[])).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{route} without a token");
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"self-healing\"",
            "{route}"
        );
        let (status, _) = status_of(&app, get(route, Some("wrong-token-0123456789"), &[])).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{route} with a wrong token"
        );
        let (status, _) = status_of(&app, get(route, Some(&TOKEN[..TOKEN.len() - 1]), &[])).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{route} with a prefix of the token"
        );
        let forged = [("cookie", "self_healing_session=99999999999.00ff")];
        let (status, _) = status_of(&app, get(route, None, &forged)).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{route} with a forged cookie"
        );
        let (status, headers) = status_of(&app, get(route, Some(TOKEN), &[])).await;
        assert_eq!(status, StatusCode::OK, "{route} with the token");
        if route.ends_with("/stream") {
            assert_eq!(headers[header::CONTENT_TYPE], "text/event-stream");
        }
    }
    // Public routes answer without it.
    for route in [
        "/health",
        "/platform/system-health/login",
        "/platform/system-health/assets/app.js",
        "/platform/system-health/assets/app.css",
    ] {
        let a = send(&app, get(route, None, &[])).await;
        assert_eq!(a.status, StatusCode::OK, "{route}");
    }
    let a = send(&app, get("/platform/system-health/nope", Some(TOKEN), &[])).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

async fn browsers_get_the_login_form_and_a_strict_cookie(db: &TestDb) {
    let (app, _, _) = seeded(db).await;
    let a = send(
        &app,
        get("/platform/system-health", None, &[("accept", "text/html")]),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.body
            .contains("<form method=\"post\" action=\"/platform/system-health/login\">")
    );

    let wrong = send(
        &app,
        post_form("/platform/system-health/login", "token=not-the-token"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("That is not the admin token."));
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());

    let ok = send(
        &app,
        post_form("/platform/system-health/login", &format!("token={TOKEN}")),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.header("location"), "/platform/system-health");
    let cookie = ok.header("set-cookie").to_owned();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/platform/system-health",
        "Max-Age=",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains(TOKEN), "the cookie never holds the token");
    assert!(!cookie.contains("Secure"), "not Secure over plain HTTP");
    let pair = cookie.split(';').next().unwrap().to_owned();
    for route in ADMIN_ROUTES {
        let (status, _) = status_of(&app, get(route, None, &[("cookie", &pair)])).await;
        assert_eq!(status, StatusCode::OK, "{route} with the login cookie");
    }
    // The cookie is not a bearer token.
    let value = pair.split_once('=').unwrap().1;
    let (status, _) = status_of(&app, get(ADMIN_ROUTES[1], Some(value), &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let behind_tls = Request::builder()
        .method("POST")
        .uri("/platform/system-health/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-forwarded-proto", "https")
        .body(Body::from(format!("token={TOKEN}")))
        .unwrap();
    assert!(
        send(&app, behind_tls)
            .await
            .header("set-cookie")
            .contains("; Secure")
    );

    let out = send(&app, post_form("/platform/system-health/logout", "")).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.header("set-cookie").contains("Max-Age=0"));
}

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

async fn security_headers_on_every_route(db: &TestDb) {
    let (app, _, _) = seeded(db).await;
    let routes = ADMIN_ROUTES
        .iter()
        .filter(|r| !r.ends_with("/stream"))
        .copied()
        .chain(["/health", "/platform/system-health/login"]);
    for route in routes {
        let a = send(&app, get(route, Some(TOKEN), &[])).await;
        let csp = a.header("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{route}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{route}: {csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(a.header("x-content-type-options"), "nosniff", "{route}");
        assert_eq!(a.header("x-frame-options"), "DENY", "{route}");
        assert_eq!(a.header("referrer-policy"), "no-referrer", "{route}");
    }
    let a = send(
        &app,
        get("/platform/system-health/api/events", Some(TOKEN), &[]),
    )
    .await;
    assert_eq!(a.header("cache-control"), "no-store");
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

async fn cron_needs_its_secret(db: &TestDb) {
    let store = db.store().await;
    let feed = LiveFeed::new();
    let unset = router(
        DashboardState::builder(store.clone())
            .admin_token(TOKEN)
            .build()
            .unwrap(),
    );
    let a = send(&unset, get("/api/cron/health-check", Some(CRON), &[])).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        a.json()["error"]
            .as_str()
            .unwrap()
            .contains("CRON_SECRET is not configured")
    );

    let state = state(&store, &feed);
    let app = router(state.clone());
    let missing = send(&app, get("/api/cron/health-check", None, &[])).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(
        missing.json()["error"]
            .as_str()
            .unwrap()
            .contains("missing")
    );
    let wrong = send(
        &app,
        get(
            "/api/cron/health-check",
            Some("wrong-secret-0123456789"),
            &[],
        ),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.json()["error"].as_str().unwrap().contains("wrong"));
    let admin = send(&app, get("/api/cron/health-check", Some(TOKEN), &[])).await;
    assert_eq!(
        admin.status,
        StatusCode::UNAUTHORIZED,
        "the admin token is not the cron secret"
    );
    assert!(state.monitor().latest().is_none());

    let ok = send(&app, get("/api/cron/health-check", Some(CRON), &[])).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.header("content-type"), "application/health+json");
    let body = ok.json();
    assert_eq!(body["checks"]["store:responseTime"][0]["status"], "pass");
    let report = state.monitor().latest().expect("the checks ran");
    assert_eq!(
        report.checks.len(),
        2,
        "store and memory (no healer, no error rate)"
    );
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
    healer.flush().await;
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

async fn without_a_token_only_loopback_clients_get_in(db: &TestDb) {
    let store = db.store().await;
    let state = DashboardState::builder(store).build().unwrap();
    assert!(!state.has_admin_token());
    let app = router(state.clone());
    let from = |ip: [u8; 4], host: &str| {
        let mut req = get(
            "/platform/system-health/api/summary",
            None,
            &[("host", host)],
        );
        req.extensions_mut()
            .insert(ConnectInfo(std::net::SocketAddr::from((ip, 40000))));
        req
    };
    assert_eq!(
        send(&app, from([127, 0, 0, 1], "127.0.0.1:8080"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, from([127, 0, 0, 1], "localhost:8080"))
            .await
            .status,
        StatusCode::OK
    );
    let remote = send(&app, from([10, 0, 0, 5], "127.0.0.1:8080")).await;
    assert_eq!(remote.status, StatusCode::UNAUTHORIZED);
    assert!(
        remote.json()["error"]
            .as_str()
            .unwrap()
            .contains("SELF_HEALING_ADMIN_TOKEN")
    );
    let rebound = send(&app, from([127, 0, 0, 1], "evil.example:8080")).await;
    assert_eq!(rebound.status, StatusCode::UNAUTHORIZED, "DNS rebinding");
    let unknown = send(&app, get("/platform/system-health/api/summary", None, &[])).await;
    assert_eq!(
        unknown.status,
        StatusCode::UNAUTHORIZED,
        "no client address: refused"
    );

    let public_addr: std::net::SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let e = state.check_bind(public_addr).unwrap_err().to_string();
    assert!(
        e.contains("0.0.0.0:8080") && e.contains("SELF_HEALING_ADMIN_TOKEN"),
        "{e}"
    );
    assert!(state.check_bind("127.0.0.1:8080".parse().unwrap()).is_ok());
    assert!(state.check_bind("[::1]:8080".parse().unwrap()).is_ok());
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let refused = self_healing_dashboard::serve(listener, state, std::future::pending()).await;
    assert!(matches!(
        refused,
        Err(self_healing_dashboard::ServeError::NoAdminToken { .. })
    ));
}

on_both_backends!(
    every_admin_route_needs_the_token,
    browsers_get_the_login_form_and_a_strict_cookie,
    the_page_shows_everything_and_escapes_messages,
    security_headers_on_every_route,
    events_api_filters_and_paginates,
    summary_patterns_sites_and_health_apis,
    cron_needs_its_secret,
    health_json_follows_the_draft,
    metrics_are_prometheus_text,
    the_stream_sends_live_events,
    without_a_token_only_loopback_clients_get_in,
);

#[tokio::test]
async fn secrets_that_are_too_short_are_refused_by_name() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let e = DashboardState::builder(store.clone())
        .admin_token("tiny-tok")
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("SELF_HEALING_ADMIN_TOKEN") && e.contains("16"),
        "{e}"
    );
    assert!(!e.contains("tiny-tok"), "the value is not repeated: {e}");
    let e = DashboardState::builder(store)
        .admin_token(TOKEN)
        .cron_secret("tiny")
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("CRON_SECRET"), "{e}");
}
