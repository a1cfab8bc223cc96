//! The failure families: the page's table, `api/families`, resolve / ignore / reopen guarded as
//! the circuit buttons are, and regression. On SQLite and (when
//! `SELF_HEALING_TEST_POSTGRES_URL` is set) PostgreSQL.

mod common;

use axum::http::StatusCode;
use common::{TOKEN, TestDb, XSS_SOURCE, event, get, post_form, seeded, send};
use self_healing_dashboard::{DashboardState, router};
use self_healing_runtime::Outcome;
use self_healing_runtime::diagnosis::{ErrorClass, Fingerprint};
use self_healing_runtime::event::EventStore;

const BASE: &str = "/platform/system-health";

/// The fingerprint `common::event` gives events of `source` with `message`.
fn fingerprint(source: &str, message: &str) -> String {
    Fingerprint::new(source, &ErrorClass::ConnectionLost, message).to_hex()
}

/// Logs in through the form: the session cookie.
async fn login(app: &axum::Router) -> String {
    let login = send(
        app,
        post_form(&format!("{BASE}/login"), &format!("token={TOKEN}")),
    )
    .await;
    login
        .header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// The form token of a rendered page.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("the page has forms")
        + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().unwrap().to_owned()
}

/// The `<tr>` of the family `fp` in the page's families table.
fn family_row<'p>(page: &'p str, fp: &str) -> &'p str {
    let section = &page[page
        .find("<section id=\"families\">")
        .expect("the families section")..];
    let section = &section[..section.find("</section>").unwrap()];
    let at = section
        .find(&format!("data-fingerprint=\"{fp}\""))
        .unwrap_or_else(|| panic!("no row for {fp}: {section}"));
    let row = &section[at..];
    &row[..row.find("</tr>").unwrap()]
}

async fn the_families_table_groups_events_by_fingerprint(db: &TestDb) {
    let empty = router(
        DashboardState::builder(db.store().await)
            .admin_token(TOKEN)
            .build()
            .unwrap(),
    );
    let page = send(&empty, get(BASE, Some(TOKEN), &[])).await.body;
    assert!(page.contains("No failure family yet"), "{page}");

    let (app, _, _) = seeded(db).await;
    let a = send(&app, get(BASE, Some(TOKEN), &[])).await;
    assert_eq!(a.status, StatusCode::OK);
    // createContact: 7 events (5 healed by retry), one family.
    let contact = family_row(
        &a.body,
        &fingerprint("createContact", "connection reset by peer"),
    );
    assert!(
        contact.contains("<span class=\"fstate\">open</span>"),
        "{contact}"
    );
    assert!(
        contact.contains("<td class=\"num\">7</td>"),
        "calls: {contact}"
    );
    assert!(
        contact.contains("<td>retry</td>"),
        "learned strategy: {contact}"
    );
    assert!(contact.contains("71% (5/7)"), "heal rate: {contact}");
    assert!(
        contact.contains("connection reset by peer"),
        "message: {contact}"
    );
    assert!(contact.contains("/resolve\"") && contact.contains("/ignore\""));
    // syncDeals: the circuit breaker fast-failed it, nothing learned: `—`.
    let deals = family_row(&a.body, &fingerprint("syncDeals", "circuit open"));
    assert!(deals.contains("<td>circuit_breaker</td>") || deals.contains("<td>—</td>"));
    // The hostile message is escaped in the families table too.
    let xss = family_row(&a.body, &fingerprint(XSS_SOURCE, common::XSS));
    assert!(!xss.contains("<script>") && !xss.contains("<img"), "{xss}");
    assert!(
        xss.contains("&#60;script&#62;") || xss.contains("&lt;script&gt;"),
        "{xss}"
    );

    let api = send(&app, get(&format!("{BASE}/api/families"), Some(TOKEN), &[])).await;
    assert_eq!(api.status, StatusCode::OK);
    let families = api.json()["families"].as_array().unwrap().clone();
    assert_eq!(families.len(), 4, "one per fingerprint: {families:#?}");
    let c = families
        .iter()
        .find(|f| f["sources"][0] == "createContact")
        .unwrap();
    assert_eq!(c["count"], 7);
    assert_eq!(c["state"], "open");
    assert_eq!(c["strategy"], "retry");
    assert_eq!(
        (c["tried"].as_u64(), c["healed"].as_u64()),
        (Some(7), Some(5))
    );
    assert!(c["resolved_at"].is_null());
    assert_eq!(
        families[0]["sources"][0], XSS_SOURCE,
        "most recently seen first"
    );
    let bad = send(
        &app,
        get(&format!("{BASE}/api/families?limit=0"), Some(TOKEN), &[]),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let anonymous = send(&app, get(&format!("{BASE}/api/families"), None, &[])).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

async fn families_are_resolved_ignored_reopened_and_regress(db: &TestDb) {
    let (app, _, _) = seeded(db).await;
    let store = db.store().await;
    let cookie = login(&app).await;
    let page = send(&app, get(BASE, None, &[("cookie", &cookie)])).await;
    let csrf = csrf_of(&page.body);
    let fp = fingerprint("sendInvoice", "server closed the connection unexpectedly");
    let resolve = format!("{BASE}/families/{fp}/resolve");
    assert!(
        page.body
            .contains(&format!("<form method=\"post\" action=\"{resolve}\">")),
        "a resolve button"
    );
    let browser = |req: axum::http::Request<axum::body::Body>, extra: &[(&str, &str)]| {
        let mut req = req;
        for (k, v) in [("cookie", cookie.as_str()), ("host", "dash.example")]
            .iter()
            .chain(extra)
        {
            req.headers_mut().insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).expect("a header name"),
                v.parse().expect("a header value"),
            );
        }
        req
    };

    // Refused: no login, no token, a forged token, another site; bad action, fingerprint.
    let anonymous = send(&app, post_form(&resolve, &format!("csrf={csrf}"))).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let no_token = send(&app, browser(post_form(&resolve, ""), &[])).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert!(
        no_token.body.contains("reload the page"),
        "{}",
        no_token.body
    );
    let forged = send(
        &app,
        browser(
            post_form(&resolve, &format!("csrf={}", "0".repeat(64))),
            &[],
        ),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let cross = send(
        &app,
        browser(
            post_form(&resolve, &format!("csrf={csrf}")),
            &[
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
        ),
    )
    .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let body = format!("csrf={csrf}");
    for (path, status) in [
        (
            format!("{BASE}/families/{fp}/delete"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("{BASE}/families/xyz/resolve"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("{BASE}/families/0000000000000001/resolve"),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let a = send(&app, browser(post_form(&path, &body), &[])).await;
        assert_eq!(a.status, status, "{path}: {}", a.body);
    }
    let api = send(&app, get(&format!("{BASE}/api/families"), Some(TOKEN), &[])).await;
    assert!(
        api.json()["families"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["state"] == "open"),
        "nothing changed by a refused request"
    );

    // Resolved from the page: 303 back, the row says so and offers to reopen.
    let ok = send(
        &app,
        browser(
            post_form(&resolve, &body),
            &[
                ("origin", "http://dash.example"),
                ("sec-fetch-site", "same-origin"),
            ],
        ),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.header("location"), format!("{BASE}#families"));
    let page = send(&app, get(BASE, None, &[("cookie", &cookie)])).await;
    let row = family_row(&page.body, &fp);
    assert!(
        row.contains("<span class=\"fstate\">resolved</span>"),
        "{row}"
    );
    assert!(row.contains("by dashboard"), "{row}");
    assert!(
        row.contains("/reopen\"") && !row.contains("/resolve\""),
        "{row}"
    );

    // It fails again: regressed, open again.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store
        .write_batch(&[event(
            "sendInvoice",
            Outcome::Failed,
            "reconnect",
            "server closed the connection unexpectedly",
            0,
        )])
        .await
        .unwrap();
    store.flush().await.unwrap();
    let page = send(&app, get(BASE, None, &[("cookie", &cookie)])).await;
    let row = family_row(&page.body, &fp);
    assert!(
        row.contains("<span class=\"fstate\">regressed</span>"),
        "{row}"
    );
    assert!(row.contains("/resolve\""), "can be resolved again: {row}");

    // The JSON route, as a script would call it (bearer, no form token).
    let json_path = format!("{BASE}/api/families/{fp}/ignore");
    let mut req = post_form(&json_path, "");
    req.headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let a = send(&app, req).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json()["status"], "ignored");
    assert_eq!(a.json()["fingerprint"], fp);
    let a = send(&app, post_form(&json_path, "")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = send(
        &app,
        browser(
            post_form(&format!("{BASE}/api/families/{fp}/nope"), &body),
            &[],
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.json()["error"]
            .as_str()
            .unwrap()
            .contains("unknown action")
    );
    let api = send(&app, get(&format!("{BASE}/api/families"), Some(TOKEN), &[])).await;
    let f = api.json()["families"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fingerprint"] == fp)
        .unwrap()
        .clone();
    assert_eq!(
        (f["state"].as_str(), f["changed_by"].as_str()),
        (Some("ignored"), Some("dashboard"))
    );
    assert!(f["resolved_at"].is_string());

    // Reopened with the page's form.
    let a = send(
        &app,
        browser(
            post_form(&format!("{BASE}/families/{fp}/reopen"), &body),
            &[],
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let page = send(&app, get(BASE, None, &[("cookie", &cookie)])).await;
    assert!(family_row(&page.body, &fp).contains("<span class=\"fstate\">open</span>"));
}

on_both_backends!(
    the_families_table_groups_events_by_fingerprint,
    families_are_resolved_ignored_reopened_and_regress,
);
