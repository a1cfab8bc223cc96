//! What the page's figures say: the activity rows (a one-line message, storms collapsed as
//! `×N`), `—` instead of `0%` without calls, and a status badge that agrees with the figures.
//! On SQLite and (when `SELF_HEALING_TEST_POSTGRES_URL` is set) PostgreSQL.

mod common;

use common::{TOKEN, TestDb, XSS_SOURCE, event, get, seeded, send};
use self_healing_dashboard::{DashboardState, router};
use self_healing_runtime::Outcome;
use self_healing_runtime::event::EventStore;

const BASE: &str = "/platform/system-health";

async fn activity_rows_show_the_message_and_collapse_storms(db: &TestDb) {
    let (app, _, _) = seeded(db).await;
    let page = send(&app, get(BASE, Some(TOKEN), &[])).await.body;
    // 12 events: 5 + 2 + 2 identical in a row become three rows.
    assert_eq!(page.matches("<li class=\"event ").count(), 6, "{page}");
    assert!(
        page.contains("data-repeats=\"5\" data-calls=\"5\""),
        "5 healed createContact"
    );
    assert!(page.contains(">×5</b>") && page.contains(">×2</b>"));
    assert_eq!(page.matches(">×").count(), 3, "one badge per collapsed run");
    // The message on the row, escaped.
    assert!(page.contains("<span class=\"msg\">circuit open</span>"));
    let line_at = page
        .find(&format!("<span class=\"source\">{XSS_SOURCE}</span>"))
        .unwrap();
    let line = &page[line_at..];
    let line = &line[line.find("<span class=\"msg\">").unwrap()..];
    let line = &line[..line.find("</span>").unwrap()];
    assert!(
        line.contains("&#60;script&#62;") || line.contains("&lt;script&gt;"),
        "escaped: {line}"
    );
    assert!(!page.contains("<script>window"), "no script from a message");
}

async fn no_calls_reads_a_dash_and_the_badge_agrees_with_the_figures(db: &TestDb) {
    // No call at all: `—`, not `0%`.
    let store = db.store().await;
    let app = router(
        DashboardState::builder(store.clone())
            .admin_token(TOKEN)
            .build()
            .unwrap(),
    );
    let page = send(&app, get(BASE, Some(TOKEN), &[])).await.body;
    assert!(
        page.contains("<div class=\"tile o-healed\"><div class=\"n\">—</div>"),
        "{page}"
    );
    assert!(!page.contains(">0%<"));

    // Calls failing now and none healed: not healthy, whatever the checks say.
    store
        .write_batch(&[
            event("chargeCard", Outcome::Failed, "retry", "card declined", 30),
            event("chargeCard", Outcome::Failed, "retry", "card declined", 20),
        ])
        .await
        .unwrap();
    store.flush().await.unwrap();
    let page = send(&app, get(BASE, Some(TOKEN), &[])).await.body;
    assert!(
        page.contains("<span id=\"overall\" class=\"status s-unhealthy\">unhealthy</span>"),
        "{}",
        &page[..page.find("</header>").unwrap()]
    );
    assert!(page.contains("<div class=\"tile o-healed\"><div class=\"n\">0%</div>"));

    // Some of them healed: degraded at least.
    store
        .write_batch(&[event(
            "chargeCard",
            Outcome::Healed,
            "retry",
            "card declined",
            10,
        )])
        .await
        .unwrap();
    store.flush().await.unwrap();
    let page = send(&app, get(BASE, Some(TOKEN), &[])).await.body;
    assert!(
        !page.contains("id=\"overall\" class=\"status s-healthy\""),
        "no HEALTHY badge while calls fail: {}",
        &page[..page.find("</section>").unwrap()]
    );
    assert!(page.contains("<div class=\"tile o-healed\"><div class=\"n\">33%</div>"));
}

on_both_backends!(
    activity_rows_show_the_message_and_collapse_storms,
    no_calls_reads_a_dash_and_the_badge_agrees_with_the_figures,
);
