//! Access control of the dashboard: the admin token on every admin route, the login form and its
//! cookie, security headers, the cron secret, loopback-only without a token, and secrets too
//! short to accept; on SQLite and (when `SELF_HEALING_TEST_POSTGRES_URL` is set) PostgreSQL.

mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use common::{
    ADMIN_ROUTES, CRON, TOKEN, TestDb, from_client, get, post_form, seeded, send, state, status_of,
};
use self_healing_dashboard::{DashboardState, LiveFeed, router};

async fn every_admin_route_needs_the_token(db: &TestDb) {
    let (app, _, _) = seeded(db).await;
    for (i, route) in (0u8..).zip(ADMIN_ROUTES) {
        // A client per route: wrong tokens from one client are limited (see the throttle test).
        let client = |req| from_client([192, 0, 2, i], req);
        let (status, headers) = status_of(&app, get(route, None, &[])).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{route} without a token");
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"self-healing\"",
            "{route}"
        );
        let (status, _) = status_of(
            &app,
            client(get(route, Some("wrong-token-0123456789"), &[])),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{route} with a wrong token"
        );
        let (status, _) = status_of(
            &app,
            client(get(route, Some(&TOKEN[..TOKEN.len() - 1]), &[])),
        )
        .await;
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

/// Behind a reverse proxy on the same host the peer is loopback and nginx's default
/// `proxy_pass` even sends `Host: 127.0.0.1:PORT`: without a token, any forwarding header means
/// "someone else, relayed", so the answer is 403 naming the setting that fixes it.
async fn without_a_token_proxied_requests_are_refused(db: &TestDb) {
    let store = db.store().await;
    let app = router(DashboardState::builder(store).build().unwrap());
    let relayed = |route: &str, forwarded: Option<(&str, &str)>| {
        let mut req = get(
            route,
            None,
            &[("host", "127.0.0.1:8080")]
                .into_iter()
                .chain(forwarded)
                .collect::<Vec<_>>(),
        );
        req.extensions_mut()
            .insert(ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                40000,
            ))));
        req
    };
    let direct = send(&app, relayed(ADMIN_ROUTES[2], None)).await;
    assert_eq!(direct.status, StatusCode::OK, "a direct loopback client");
    for header in [
        ("x-forwarded-for", "203.0.113.7"),
        ("forwarded", "for=203.0.113.7;proto=https"),
        ("x-real-ip", "203.0.113.7"),
        ("x-forwarded-host", "health.example.com"),
        ("x-forwarded-proto", "https"),
    ] {
        for route in ADMIN_ROUTES.iter().filter(|r| !r.ends_with("/stream")) {
            let a = send(&app, relayed(route, Some(header))).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{route} with {header:?}");
            let error = a.json()["error"].as_str().unwrap().to_owned();
            assert!(
                error.contains("SELF_HEALING_ADMIN_TOKEN") && error.contains(header.0),
                "{error}"
            );
            assert!(!error.contains('\n'), "one line: {error}");
        }
    }
    let mut page = relayed(ADMIN_ROUTES[0], Some(("x-forwarded-for", "203.0.113.7")));
    page.headers_mut()
        .insert(header::ACCEPT, "text/html".parse().unwrap());
    let page = send(&app, page).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.body.contains("SELF_HEALING_ADMIN_TOKEN"),
        "{}",
        page.body
    );
}

/// The `name=value` pair of a successful login's `Set-Cookie`.
async fn log_in(app: &axum::Router) -> String {
    let ok = send(
        app,
        post_form("/platform/system-health/login", &format!("token={TOKEN}")),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    ok.header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// Logging out ends the session on the server: a copy of the old cookie is refused at once, not
/// 12 hours later. And cookies are not port-scoped, so another dashboard on the same host with
/// the same token must not take this one's cookie.
async fn logout_revokes_the_cookie_and_cookies_open_only_their_instance(db: &TestDb) {
    let (app, state, feed) = seeded(db).await;
    let route = ADMIN_ROUTES[1];
    let pair = log_in(&app).await;
    let kept = log_in(&app).await;
    assert_eq!(
        status_of(&app, get(route, None, &[("cookie", &pair)]))
            .await
            .0,
        StatusCode::OK
    );
    let mut out = post_form("/platform/system-health/logout", "");
    out.headers_mut()
        .insert(header::COOKIE, pair.parse().unwrap());
    let out = send(&app, out).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    for route in ADMIN_ROUTES {
        let (status, _) = status_of(&app, get(route, None, &[("cookie", &pair)])).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{route} after logout");
    }
    assert_eq!(
        status_of(&app, get(route, None, &[("cookie", &kept)]))
            .await
            .0,
        StatusCode::OK,
        "another login goes on"
    );

    // Another instance: same store, same token, its own process state.
    let other = router(common::state(state.store(), &feed));
    assert_eq!(
        status_of(&other, get(route, None, &[("cookie", &kept)]))
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "a cookie of one instance does not open another"
    );
    let theirs = log_in(&other).await;
    assert_eq!(
        status_of(&other, get(route, None, &[("cookie", &theirs)]))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&app, get(route, None, &[("cookie", &theirs)]))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

on_both_backends!(
    logout_revokes_the_cookie_and_cookies_open_only_their_instance,
    without_a_token_proxied_requests_are_refused,
    every_admin_route_needs_the_token,
    browsers_get_the_login_form_and_a_strict_cookie,
    security_headers_on_every_route,
    cron_needs_its_secret,
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

/// Wrong admin tokens are limited per client, through the login form and the bearer header
/// alike: 10 a minute (the documented default), then 429 with `Retry-After` until the minute has
/// passed. On tokio's paused clock: nothing here depends on how fast the machine is.
#[tokio::test]
async fn wrong_tokens_are_limited_per_client_then_429_until_the_window_passes() {
    const LIMIT: usize = 10;
    const LOGIN: &str = "/platform/system-health/login";
    let db = TestDb::sqlite();
    let (app, _, _) = seeded(&db).await;
    let from = from_client;
    let wrong_login = |ip| from(ip, post_form(LOGIN, "token=not-the-token-0123456789"));
    let right_login = |ip| from(ip, post_form(LOGIN, &format!("token={TOKEN}")));
    let wrong_bearer = |ip| {
        from(
            ip,
            get(ADMIN_ROUTES[1], Some("wrong-token-0123456789"), &[]),
        )
    };
    let (a, b) = ([198, 51, 100, 1], [198, 51, 100, 2]);
    tokio::time::pause();

    for i in 0..LIMIT {
        let r = send(&app, wrong_login(a)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "wrong login {i}");
    }
    let locked = send(&app, wrong_login(a)).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.header("retry-after"), "60");
    assert!(
        locked.body.contains("too many wrong tokens"),
        "{}",
        locked.body
    );
    // Locked out even with the right token: otherwise a right guess would still show.
    let right = send(&app, right_login(a)).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(right.headers.get(header::SET_COOKIE).is_none());
    // The bearer header shares the client's budget.
    let by_bearer = send(&app, wrong_bearer(a)).await;
    assert_eq!(by_bearer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(by_bearer.header("retry-after"), "60");
    assert!(
        by_bearer.json()["error"]
            .as_str()
            .unwrap()
            .contains("try again in 60 s")
    );

    // Another client is not affected, and a right token costs no time at all.
    let before = tokio::time::Instant::now();
    let ok = send(&app, right_login(b)).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(
        tokio::time::Instant::now(),
        before,
        "a successful login is not slowed"
    );
    let session = ok
        .header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    for i in 0..LIMIT {
        let r = send(&app, wrong_bearer(b)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "wrong bearer {i}");
    }
    assert_eq!(
        send(&app, wrong_bearer(b)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&app, from(b, get(ADMIN_ROUTES[1], Some(TOKEN), &[])))
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS,
        "the right bearer token too, while locked out"
    );

    tokio::time::advance(std::time::Duration::from_secs(30)).await;
    let half = send(&app, wrong_login(a)).await;
    assert_eq!(half.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(half.header("retry-after"), "30");
    tokio::time::advance(std::time::Duration::from_secs(30)).await;
    assert_eq!(
        send(&app, wrong_login(a)).await.status,
        StatusCode::UNAUTHORIZED,
        "a new window"
    );
    assert_eq!(
        send(&app, right_login(a)).await.status,
        StatusCode::SEE_OTHER
    );

    // The store is only queried from here on, on the running clock.
    tokio::time::resume();
    let (status, _) = status_of(&app, from(b, get(ADMIN_ROUTES[1], Some(TOKEN), &[]))).await;
    assert_eq!(status, StatusCode::OK, "b's window has passed too");
    let (status, _) = status_of(
        &app,
        from(a, get(ADMIN_ROUTES[1], None, &[("cookie", &session)])),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "session cookies are never throttled"
    );
}
