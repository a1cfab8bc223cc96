//! The dashboard in a real browser: Debian's headless Chromium, driven over the DevTools
//! protocol, logs in through the form, sees the feed (one-line messages, storms collapsed as
//! `×N`), the failure families and the charts, shows a hostile message as text without running
//! it, sees a new event arrive live (and the same one again collapse into its row), and
//! resolves a failure family with its button (the form posts, the page comes back with the
//! family resolved). Saves a screenshot to `target/browser/system-health.png`.
//!
//! Without Chromium the test prints one line and passes, unless `SELF_HEALING_REQUIRE_BROWSER`
//! is set (CI sets it).

mod common;
mod chromium {
    pub(crate) mod cdp;
    pub(crate) mod launch;
    pub(crate) mod ws;
}

use std::path::PathBuf;
use std::time::Duration;

use chromium::cdp::Page;
use chromium::launch::{Browser, find};
use common::{TOKEN, TestDb, XSS, XSS_SOURCE, seed};
use self_healing_dashboard::{DashboardState, LiveFeed, serve};
use self_healing_runtime::{Healer, WithHealerExt, heal};
use serde_json::json;

const REQUIRED_VAR: &str = "SELF_HEALING_REQUIRE_BROWSER";
/// The live event's message: hostile too.
const LIVE_XSS: &str = "<img src=x onerror=\"window.__xss = 3\"> payment gateway not found";

/// Where the screenshot goes: `<target dir>/browser/system-health.png`.
fn screenshot_path() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .map_or(tmp.clone(), PathBuf::from)
        .join("browser")
        .join("system-health.png")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium() {
    let Some(binary) = find() else {
        assert!(
            std::env::var_os(REQUIRED_VAR).is_none(),
            "{REQUIRED_VAR} is set but Chromium is missing: install Debian's `chromium` (apt-get install -y chromium)"
        );
        // Past libtest's capture: a skip must be seen.
        self_healing_testkit::skip_once(&format!(
            "skipped: browser test (no Chromium at /usr/bin/chromium; `apt-get install -y chromium`, or set {REQUIRED_VAR}=1 to make this a failure)"
        ));
        return;
    };

    // A seeded store, a healer feeding the live feed, the dashboard on a loopback port.
    let db = TestDb::sqlite();
    let store = db.store().await;
    let sites = vec![
        test_site!("createContact", Database),
        test_site!("sendInvoice", Api),
        test_site!("liveCheckout", Api),
        test_site!("neverCalled", Runtime),
    ];
    seed(&store, &sites).await;
    let feed = LiveFeed::new();
    let healer = Healer::builder()
        .store(store.clone())
        .observer(feed.clone())
        .max_attempts(1)
        .fold_window(Duration::from_millis(20))
        .build()
        .unwrap();
    let state = DashboardState::builder(store)
        .healer(healer.clone())
        .feed(feed)
        .admin_token(TOKEN)
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));

    // The browser is driven from a blocking thread; it asks this runtime to fail a call live.
    let runtime = tokio::runtime::Handle::current();
    let live_site = sites[2];
    let fail_live_call = move || {
        runtime.block_on(
            async {
                let _ = heal(live_site, || async {
                    Err::<(), _>(std::io::Error::other(LIVE_XSS))
                })
                .await;
            }
            .with_healer(healer.clone()),
        );
    };
    let base = format!("http://{addr}/platform/system-health");
    let outcome = tokio::task::spawn_blocking(move || drive(&binary, &base, fail_live_call))
        .await
        .expect("the browser driver panicked");
    let _ = stop.send(());
    let _ = server.await;
    if let Err(e) = outcome {
        panic!("browser test: {e}");
    }
}

/// Everything the browser does; an error names the step that failed.
fn drive(binary: &std::path::Path, base: &str, fail_live_call: impl Fn()) -> Result<(), String> {
    let browser = Browser::start(binary)?;
    let mut page = Page::open(&browser.ws_url)?;
    let second = Duration::from_secs(1);

    // Not logged in: the login form, with the 401.
    page.navigate(base)?;
    page.wait_for(
        "!!document.querySelector('form input[name=token]')",
        5 * second,
    )?;
    if page.eval("!!document.getElementById('feed')")? == json!(true) {
        return Err("the dashboard showed without logging in".into());
    }

    // Log in through the form.
    page.eval(&format!(
        "document.getElementById('token').value = {}; document.querySelector('form').submit(); true",
        json!(TOKEN)
    ))?;
    page.wait_for(
        "!!document.getElementById('feed') && document.readyState === 'complete'",
        10 * second,
    )?;
    if page.eval("document.cookie")? != json!("") {
        return Err("the session cookie is readable from script: it must be HttpOnly".into());
    }

    // The live feed connects, the seeded events and the charts render.
    page.wait_for("document.body.dataset.live === 'connected'", 10 * second)?;
    // 12 seeded events; runs of 5, 2 and 2 identical ones collapse into one row each.
    let rows = page.eval("document.querySelectorAll('#feed > li').length")?;
    if rows != json!(6) {
        return Err(format!(
            "expected the 12 seeded events in 6 rows (storms collapsed), found {rows}"
        ));
    }
    let badges = page.eval(
        "[...document.querySelectorAll('#feed .repeats')].map(b => b.textContent).join(' ')",
    )?;
    if badges != json!("×2 ×5 ×2") {
        return Err(format!("expected the badges ×2 ×5 ×2, found {badges}"));
    }
    // Each row shows its message without being opened, on one line.
    let lines = page.eval(
        "[...document.querySelectorAll('#feed > li')].every(li => { \
         const m = li.querySelector('summary .msg'); \
         return m && m.textContent.length > 0 && m.getBoundingClientRect().height > 0 \
         && m.getBoundingClientRect().height < 30; })",
    )?;
    if lines != json!(true) {
        return Err("a feed row does not show its message on one visible line".into());
    }
    // The failure families: one row per fingerprint, with its learned strategy's heal rate.
    let families = page.eval("document.querySelectorAll('#families tbody tr.family').length")?;
    if families != json!(4) {
        return Err(format!("expected 4 failure families, found {families}"));
    }
    let contact = page.eval(
        "(() => { const tr = [...document.querySelectorAll('#families tr.family')] \
         .find(tr => tr.children[2].textContent === 'createContact'); \
         return tr ? [tr.querySelector('.fstate').textContent, tr.children[4].textContent, \
         tr.children[7].textContent, tr.children[8].textContent] : null; })()",
    )?;
    if contact != json!(["open", "7", "retry", "71% (5/7)"]) {
        return Err(format!("the createContact family reads {contact}"));
    }
    for chart in ["chart-hourly", "chart-strategies", "chart-sources"] {
        let rects = page.eval(&format!(
            "document.querySelectorAll('#{chart} svg.chart rect').length"
        ))?;
        if rects.as_u64().unwrap_or(0) == 0 {
            return Err(format!("the chart #{chart} drew nothing"));
        }
        let width = page.eval(&format!(
            "document.querySelector('#{chart} svg.chart').getBoundingClientRect().width"
        ))?;
        if width.as_f64().unwrap_or(0.0) < 100.0 {
            return Err(format!(
                "the chart #{chart} is not laid out (width {width})"
            ));
        }
    }
    let sites = page.eval("document.querySelectorAll('#checklist tbody tr').length")?;
    if sites.as_u64().unwrap_or(0) < 4 {
        return Err(format!(
            "the checklist shows {sites} sites, expected at least 4"
        ));
    }

    // The hostile message is text: shown verbatim, nothing ran, no element was made from it.
    let shown = page.eval(&format!(
        "[...document.querySelectorAll('#feed pre.message')].some(p => p.textContent === {0}) \
         && [...document.querySelectorAll('#feed summary .msg')].some(p => p.textContent === {0}) \
         && [...document.querySelectorAll('#families td.message')].some(td => td.textContent.endsWith({0}))",
        json!(XSS)
    ))?;
    if shown != json!(true) {
        return Err("the <script>/<img onerror> message is not shown verbatim as text".into());
    }
    no_script_ran(&mut page)?;

    // A new failure appears live, hostile message and all.
    fail_live_call();
    page.wait_for(
        "[...document.querySelectorAll('#feed > li .source')].some(s => s.textContent === 'liveCheckout')",
        15 * second,
    )?;
    let live = page.eval(&format!(
        "(() => {{ const li = document.querySelector('#feed > li'); \
           return li.querySelector('.source').textContent === 'liveCheckout' \
             && li.querySelector('pre.message').textContent === {0} \
             && li.querySelector('summary .msg').textContent === {0} \
             && document.getElementById('live-count').textContent === '1'; }})()",
        json!(LIVE_XSS)
    ))?;
    if live != json!(true) {
        return Err("the live event is not the first row with its message as text".into());
    }
    no_script_ran(&mut page)?;

    // The same failure again (past the healer's fold window): the live feed bumps the first
    // row to ×2 instead of adding one.
    let rows_before = page.eval("document.querySelectorAll('#feed > li').length")?;
    std::thread::sleep(Duration::from_millis(100));
    fail_live_call();
    page.wait_for(
        "document.getElementById('live-count').textContent === '2'",
        15 * second,
    )?;
    let storm = page.eval(
        "(() => { const li = document.querySelector('#feed > li'); \
           const b = li.querySelector('.repeats'); \
           return [li.querySelector('.source').textContent, b ? b.textContent : null, \
             document.querySelectorAll('#feed > li').length]; })()",
    )?;
    if storm != json!(["liveCheckout", "×2", rows_before]) {
        return Err(format!(
            "the repeated live failure did not collapse into the first row: {storm}"
        ));
    }

    // Resolve the createContact family with its button: the form posts (same origin, the
    // page's token), the page comes back with the family resolved and a reopen button.
    page.eval(
        "window.__beforeResolve = true; \
         [...document.querySelectorAll('#families tr.family')] \
           .find(tr => tr.children[2].textContent === 'createContact') \
           .querySelector('button.family-resolve').click(); true",
    )?;
    if let Err(e) = page.wait_for(
        "!window.__beforeResolve && document.readyState === 'complete' \
         && location.hash === '#families' && !!document.getElementById('families')",
        10 * second,
    ) {
        let at = page.eval("location.href + ' ' + document.body.innerText.slice(0, 300)")?;
        return Err(format!("{e}; the page is {at}"));
    }
    let resolved = page.eval(
        "(() => { const tr = [...document.querySelectorAll('#families tr.family')] \
           .find(tr => tr.children[2].textContent === 'createContact'); \
           return tr.querySelector('.fstate').textContent === 'resolved' \
             && !!tr.querySelector('button.family-reopen') \
             && !tr.querySelector('button.family-resolve'); })()",
    )?;
    if resolved != json!(true) {
        return Err("the resolve button did not resolve the family".into());
    }
    no_script_ran(&mut page)?;

    // Open the details of the live event and of the hostile stored one, for the screenshot.
    page.eval(&format!(
        "document.querySelector('#feed > li details').open = true; \
         [...document.querySelectorAll('#feed > li')].find(li => li.querySelector('.source').textContent === {}) \
           .querySelector('details').open = true; true",
        json!(XSS_SOURCE)
    ))?;
    let png = page.screenshot()?;
    let path = screenshot_path();
    std::fs::create_dir_all(path.parent().unwrap()).map_err(|e| e.to_string())?;
    std::fs::write(&path, &png).map_err(|e| e.to_string())?;
    eprintln!("browser test: screenshot saved to {}", path.display());

    // No script error, no CSP violation, no dialog along the way.
    let problems: Vec<String> = page
        .events
        .iter()
        .filter(|e| match e["method"].as_str() {
            Some("Runtime.exceptionThrown" | "Page.javascriptDialogOpening") => true,
            Some("Log.entryAdded") => {
                let entry = &e["params"]["entry"];
                entry["level"] == "error"
                    && (entry["source"] == "security" || entry["source"] == "javascript")
            }
            _ => false,
        })
        .map(|e| e.to_string())
        .collect();
    if !problems.is_empty() {
        return Err(format!("the page reported problems: {problems:#?}"));
    }
    Ok(())
}

fn no_script_ran(page: &mut Page) -> Result<(), String> {
    if page.eval("typeof window.__xss")? != json!("undefined") {
        return Err("a script from an event message ran".into());
    }
    let made =
        page.eval("document.querySelectorAll('#feed img, #feed script, [onerror]').length")?;
    if made != json!(0) {
        return Err(format!("{made} elements were made from event messages"));
    }
    Ok(())
}
