//! The circuit buttons: `POST /platform/system-health/circuits/{source}/{command}` needs the
//! admin, a same-origin request and the page's form token (or the bearer token); it steers
//! through the dashboard's healer (here and, through the store, every instance), or through
//! the store when the dashboard has no healer; the page shows every instance's circuits.
//! A binary of its own: it registers sites and opens circuits.

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use common::{TOKEN, TestDb, event, get, post_form, send};
use self_healing_dashboard::{DashboardState, router};
use self_healing_runtime::circuit_control::CircuitCommand;
use self_healing_runtime::event::EventStore;
use self_healing_runtime::fleet::{CircuitNotice, NoticeKind};
use self_healing_runtime::{CircuitState, Healer, Outcome};
use self_healing_store::EventFilter;

/// A POST of the circuit form, with the given headers.
fn steer(path: &str, csrf: Option<&str>, headers: &[(&str, &str)]) -> Request<Body> {
    let mut req = post_form(path, &csrf.map_or(String::new(), |t| format!("csrf={t}")));
    for (k, v) in headers {
        req.headers_mut().insert(
            header::HeaderName::from_bytes(k.as_bytes()).expect("a header name"),
            v.parse().expect("a header value"),
        );
    }
    req
}

/// The form token of a rendered page.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("the page has circuit forms")
        + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().unwrap().to_owned()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "not within 10 s: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const BASE: &str = "/platform/system-health";

async fn buttons_steer_the_fleet_through_the_healer(db: &TestDb) {
    let site = test_site!("steerPayments", Api);
    let store = db.store().await;
    let healer = Healer::builder()
        .instance_id("dash-1")
        .store(store.clone())
        .build()
        .unwrap();
    let app = router(
        DashboardState::builder(store.clone())
            .healer(healer.clone())
            .admin_token(TOKEN)
            .build()
            .unwrap(),
    );
    let login = send(
        &app,
        post_form(&format!("{BASE}/login"), &format!("token={TOKEN}")),
    )
    .await;
    let cookie = login
        .header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = send(&app, get(BASE, None, &[("cookie", &cookie)])).await;
    assert_eq!(page.status, StatusCode::OK);
    let open = format!("{BASE}/circuits/steerPayments/open");
    assert!(
        page.body
            .contains(&format!("<form method=\"post\" action=\"{open}\">")),
        "a button per command and row"
    );
    assert!(
        page.body.contains("(<code>dash-1</code>)"),
        "whose circuits"
    );
    let csrf = csrf_of(&page.body);
    assert_eq!(csrf.len(), 64, "an HMAC-SHA256 in hex");
    let browser = [
        ("cookie", cookie.as_str()),
        ("host", "dash.example:8080"),
        ("origin", "https://dash.example:8080"),
        ("sec-fetch-site", "same-origin"),
    ];

    // Refused: no login, no token, a stale token, another site.
    let anonymous = send(&app, steer(&open, Some(&csrf), &browser[1..])).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let no_token = send(&app, steer(&open, None, &browser)).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert!(
        no_token.body.contains("reload the page"),
        "{}",
        no_token.body
    );
    let forged = send(&app, steer(&open, Some(&"0".repeat(64)), &browser)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let cross_site = [
        browser[0],
        browser[1],
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ];
    let a = send(&app, steer(&open, Some(&csrf), &cross_site)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("cross-site request refused"), "{}", a.body);
    let evil_origin = [browser[0], browser[1], ("origin", "https://evil.example")];
    let a = send(&app, steer(&open, Some(&csrf), &evil_origin)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("https://evil.example"), "{}", a.body);
    assert_eq!(
        healer.circuit_of(site),
        CircuitState::Closed,
        "nothing refused changed anything"
    );

    // Bad input, named.
    let typo = send(
        &app,
        steer(
            &format!("{BASE}/circuits/steerPaymnts/open"),
            Some(&csrf),
            &browser,
        ),
    )
    .await;
    assert_eq!(typo.status, StatusCode::NOT_FOUND);
    assert!(
        typo.body.contains("did you mean `steerPayments`"),
        "{}",
        typo.body
    );
    let bad = send(
        &app,
        steer(
            &format!("{BASE}/circuits/steerPayments/explode"),
            Some(&csrf),
            &browser,
        ),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("explode"), "{}", bad.body);

    // Accepted: back to the page, the circuit is open by hand here, recorded, and published.
    let ok = send(&app, steer(&open, Some(&csrf), &browser)).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.header("location"), format!("{BASE}#circuits"));
    assert_eq!(healer.circuit_of(site), CircuitState::Open);
    assert!(
        healer
            .circuits()
            .iter()
            .any(|v| v.source == "steerPayments" && v.held_open)
    );
    healer.flush().await.expect("the events reached the store");
    store.flush().await.unwrap();
    let manual = store
        .events(
            &EventFilter {
                outcome: Some(Outcome::Manual),
                ..EventFilter::default()
            },
            None,
            10,
        )
        .await
        .unwrap()
        .events;
    assert!(
        manual
            .iter()
            .any(|e| e.source == "steerPayments"
                && e.message == "circuit opened by hand (dashboard)"),
        "{manual:?}"
    );
    eventually(
        "the command and the new state reach the store",
        async || {
            let notices = store.circuit_notices(0, 100).await.unwrap();
            let command = notices.iter().any(|n| {
                n.instance == "dash-1"
                    && n.kind
                        == NoticeKind::Command {
                            command: CircuitCommand::Open,
                            by: "dashboard".into(),
                        }
            });
            let moved =
                store.circuit_states().await.unwrap().iter().any(|r| {
                    r.instance == "dash-1" && r.state == CircuitState::Open && r.held_open
                });
            command && moved
        },
    )
    .await;
    let page = send(&app, get(BASE, None, &[("cookie", &cookie)]))
        .await
        .body;
    assert!(
        page.contains("<td><code>dash-1</code></td><td><span class=\"circuit c-open\">open</span> <em>by hand</em></td>"),
        "the per-instance table: {page}"
    );

    // A bearer client needs no form token (a browser never sends one on its own).
    let close = Request::builder()
        .method("POST")
        .uri(format!("{BASE}/circuits/steerPayments/close"))
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let a = send(&app, close).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(healer.circuit_of(site), CircuitState::Closed);
}

async fn without_a_healer_commands_go_through_the_store(db: &TestDb) {
    let store = db.store().await;
    // Sources the store has seen: an event of another process, and circuit news.
    store
        .write_batch(&[event(
            "remoteLedger",
            Outcome::Failed,
            "retry",
            "connection reset by peer",
            60,
        )])
        .await
        .unwrap();
    store.flush().await.unwrap();
    store
        .publish_circuit_notice(&CircuitNotice::new(
            "web-7",
            "remoteLedger",
            NoticeKind::Moved {
                state: CircuitState::Open,
                held_open: false,
            },
        ))
        .await
        .unwrap();
    // No admin token: loopback clients only, with a form token of this process.
    let app = router(DashboardState::builder(store.clone()).build().unwrap());
    let local = |mut req: Request<Body>| {
        req.extensions_mut()
            .insert(ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                40000,
            ))));
        req.headers_mut()
            .insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        req
    };
    let page = send(&app, local(get(BASE, None, &[]))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(
            "<td><code>web-7</code></td><td><span class=\"circuit c-open\">open</span></td>"
        ),
        "every instance's circuits: {}",
        page.body
    );
    let csrf = csrf_of(&page.body);
    let reset = format!("{BASE}/circuits/remoteLedger/reset");
    let a = send(&app, local(steer(&reset, Some("00"), &[]))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "a wrong token");
    let a = send(
        &app,
        local(steer(
            &reset,
            Some(&csrf),
            &[("origin", "http://127.0.0.1:8080")],
        )),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let notices = store.circuit_notices(0, 100).await.unwrap();
    assert!(
        notices.iter().any(|n| n.instance == "dashboard"
            && n.source == "remoteLedger"
            && n.kind
                == NoticeKind::Command {
                    command: CircuitCommand::Reset,
                    by: "dashboard".into(),
                }),
        "{notices:?}"
    );
    let typo = send(
        &app,
        local(steer(
            &format!("{BASE}/circuits/remoteLeger/open"),
            Some(&csrf),
            &[],
        )),
    )
    .await;
    assert_eq!(typo.status, StatusCode::NOT_FOUND);
    assert!(
        typo.body.contains("did you mean `remoteLedger`"),
        "{}",
        typo.body
    );
    // Another machine never gets that far.
    let mut remote = steer(&reset, Some(&csrf), &[("host", "127.0.0.1:8080")]);
    remote
        .extensions_mut()
        .insert(ConnectInfo(std::net::SocketAddr::from((
            [10, 0, 0, 5],
            40000,
        ))));
    assert_eq!(send(&app, remote).await.status, StatusCode::UNAUTHORIZED);
}

on_both_backends!(
    buttons_steer_the_fleet_through_the_healer,
    without_a_healer_commands_go_through_the_store,
);
