//! Shared by the dashboard's test binaries: test databases (a SQLite temp file; a fresh
//! PostgreSQL database per test from `SELF_HEALING_TEST_POSTGRES_URL`), seeded events, and
//! one-shot requests against the router.

#![allow(dead_code, unreachable_pub)]

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use self_healing_dashboard::{DashboardState, LiveFeed, router};
use self_healing_runtime::diagnosis::{ErrorClass, Fingerprint, Severity};
use self_healing_runtime::event::{DiagnosisRecord, EventStore, HealingEvent, Step, StepResult};
use self_healing_runtime::{Category, Outcome, Site};
use self_healing_store::{DieselStore, HealthCheckRecord, HealthStatus};
use self_healing_testkit::FreshPostgres;
use tower::ServiceExt;

pub const TOKEN: &str = "test-admin-token-0123456789";
pub const CRON: &str = "test-cron-secret-0123456789";
/// The message of the seeded event that tries to run script in the page.
pub const XSS: &str =
    "<script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\"> boom";
/// Its source.
pub const XSS_SOURCE: &str = "renderProfile";

/// A static call site registered in this test binary's site registry, as `site!` declares one.
#[macro_export]
macro_rules! test_site {
    ($source:literal, $category:ident) => {{
        #[linkme::distributed_slice(self_healing_runtime::__private::SITES)]
        static ENTRY: &self_healing_runtime::Site = &SITE;
        static SITE: self_healing_runtime::Site =
            self_healing_runtime::Site::new(self_healing_runtime::SiteInfo {
                source: $source,
                category: self_healing_runtime::Category::$category,
                function: "test",
                module_path: module_path!(),
                file: file!(),
                line: line!(),
                options: self_healing_runtime::SiteOptions::new(),
            });
        &SITE
    }};
}

/// A database for one test; dropping it removes it.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<FreshPostgres>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        TestDb {
            url,
            _dir: Some(dir),
            _pg: None,
        }
    }

    /// A fresh PostgreSQL database, or `None` (after one line on stderr) when
    /// `SELF_HEALING_TEST_POSTGRES_URL` is unset; a panic instead when
    /// `SELF_HEALING_REQUIRE_POSTGRES=1`.
    pub async fn postgres() -> Option<TestDb> {
        let pg = FreshPostgres::create(
            "sh_dash",
            "dashboard tests",
            cfg!(feature = "postgres"),
            "`--features postgres` (cargo test -p self-healing-dashboard --features postgres)",
        )
        .await?;
        Some(TestDb {
            url: pg.url().to_owned(),
            _dir: None,
            _pg: Some(pg),
        })
    }

    pub async fn store(&self) -> DieselStore {
        DieselStore::builder(self.url.clone())
            .backoff(Duration::from_millis(10), Duration::from_millis(200))
            .connect()
            .await
            .expect("connect to the test store")
    }
}

/// One test per backend: `on_both_backends!(case_a, case_b)` where each case is
/// `async fn case(db: &TestDb)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = $crate::common::TestDb::sqlite();
                    super::$case(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(db) = $crate::common::TestDb::postgres().await else { return };
                    super::$case(&db).await;
                }
            )*
        }
    };
}

/// A time `secs_ago` seconds ago, to the microsecond (what the store keeps).
pub fn ago(secs_ago: u64) -> SystemTime {
    let now = SystemTime::now() - Duration::from_secs(secs_ago);
    let micros = now.duration_since(UNIX_EPOCH).unwrap().as_micros() as u64;
    UNIX_EPOCH + Duration::from_micros(micros)
}

/// A healing event of `source` that ended with `outcome` through `strategy`.
pub fn event(
    source: &str,
    outcome: Outcome,
    strategy: &str,
    message: &str,
    secs_ago: u64,
) -> HealingEvent {
    let class = ErrorClass::ConnectionLost;
    let mut steps = vec![Step {
        strategy: Cow::Owned(strategy.to_owned()),
        result: if outcome == Outcome::Healed {
            StepResult::Healed
        } else {
            StepResult::Failed
        },
        took: Duration::from_millis(4),
        note: Cow::Borrowed("re-ran the call"),
    }];
    if outcome == Outcome::NotApplicable {
        steps.clear();
    }
    HealingEvent {
        time: ago(secs_ago),
        instance: Arc::from("test-instance"),
        source: Cow::Owned(source.to_owned()),
        category: Category::Database,
        fingerprint: Fingerprint::new(source, &class, message),
        class,
        message: message.to_owned(),
        severity: if outcome == Outcome::Healed {
            Severity::Medium
        } else {
            Severity::High
        },
        strategy: Some(Cow::Owned(strategy.to_owned())),
        outcome,
        attempts: 2,
        duration: Duration::from_millis(12),
        diagnosis: DiagnosisRecord {
            analyzer: Cow::Borrowed("rules"),
            confidence: 0.9,
            reason: Cow::Borrowed("connection reset by the server"),
            never_reached: false,
            steps,
        },
        count: 1,
        call_key: None,
    }
}

/// Writes a known set of events (12 in all: 7 healed, 5 not), health checks and sites.
pub async fn seed(store: &DieselStore, sites: &[&'static Site]) {
    let mut events = Vec::new();
    for i in 0..5 {
        events.push(event(
            "createContact",
            Outcome::Healed,
            "retry",
            "connection reset by peer",
            3600 + i * 60,
        ));
    }
    for i in 0..2 {
        events.push(event(
            "createContact",
            Outcome::Failed,
            "retry",
            "connection reset by peer",
            7200 + i * 60,
        ));
    }
    for i in 0..2 {
        events.push(event(
            "sendInvoice",
            Outcome::Healed,
            "reconnect",
            "server closed the connection unexpectedly",
            600 + i * 60,
        ));
    }
    events.push(event(
        "sendInvoice",
        Outcome::Failed,
        "reconnect",
        "server closed the connection unexpectedly",
        300,
    ));
    events.push(event(
        "syncDeals",
        Outcome::FastFailed,
        "circuit_breaker",
        "circuit open",
        120,
    ));
    events.push(event(XSS_SOURCE, Outcome::Failed, "retry", XSS, 60));
    store.write_batch(&events).await.expect("write");
    store.flush().await.expect("flush");
    store
        .upsert_sites(sites.iter().copied())
        .await
        .expect("sites");
    for (name, status, message) in [
        ("store", HealthStatus::Healthy, "store answered in 1.0 ms"),
        ("memory", HealthStatus::Degraded, "1100 MiB resident"),
    ] {
        store
            .record_health_check(&HealthCheckRecord {
                time: ago(30),
                name: name.into(),
                status,
                latency: Duration::from_millis(1),
                message: message.into(),
                details: None,
            })
            .await
            .expect("health check");
    }
}

/// Keys of the outbox entries [`seed_outbox`] queues.
pub const OUTBOX_PENDING: &str = "0123456789abcdef0123456789abcd01";
pub const OUTBOX_DEAD: &str = "0123456789abcdef0123456789abcd02";
pub const OUTBOX_DELIVERED: &str = "0123456789abcdef0123456789abcd03";

/// Queues three calls of `createContact` and takes them through a replay each: one is pending
/// again (its replay failed with [`XSS`] as the error), one dead (the same error), one
/// delivered.
pub async fn seed_outbox(store: &DieselStore) {
    use self_healing_runtime::outbox::{OutboxEntry, OutboxSettle};
    let now = ago(0);
    for key in [OUTBOX_DELIVERED, OUTBOX_DEAD, OUTBOX_PENDING] {
        let entry = OutboxEntry::new(key, "createContact", r#"{"name":"Ada"}"#, ago(120));
        assert!(store.outbox_put(&entry).await.expect("queue"));
    }
    let claimed = store
        .outbox_claim(now, Duration::from_secs(60), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 3);
    let retry = OutboxSettle::RetryAt {
        at: now + Duration::from_secs(30),
        error: XSS.into(),
    };
    let dead = OutboxSettle::Dead { error: XSS.into() };
    for (key, settle) in [
        (OUTBOX_PENDING, retry),
        (OUTBOX_DEAD, dead),
        (OUTBOX_DELIVERED, OutboxSettle::Delivered),
    ] {
        store
            .outbox_settle(key, &settle, now)
            .await
            .expect("settle");
    }
}

/// The dashboard's state with the test token and cron secret.
pub fn state(store: &DieselStore, feed: &LiveFeed) -> DashboardState {
    DashboardState::builder(store.clone())
        .feed(feed.clone())
        .admin_token(TOKEN)
        .cron_secret(CRON)
        .build()
        .expect("state")
}

/// A response, its body read to the end (not for the SSE stream).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends `req` to the router and reads the whole answer.
pub async fn send(app: &Router, req: Request<Body>) -> Answer {
    let response = app.clone().oneshot(req).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A GET with optional `Authorization: Bearer` and extra headers.
pub fn get(uri: &str, bearer: Option<&str>, extra: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder().uri(uri);
    if let Some(t) = bearer {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).expect("request")
}

/// `req` as if it came from a client at `ip` (the `ConnectInfo` a server records): the loopback
/// check and the per-client limit on wrong tokens read it.
pub fn from_client(ip: [u8; 4], mut req: Request<Body>) -> Request<Body> {
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            ip, 40000,
        ))));
    req
}

/// A form POST.
pub fn post_form(uri: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_owned()))
        .expect("request")
}

/// Every route that needs the admin token.
pub const ADMIN_ROUTES: [&str; 10] = [
    "/platform/system-health",
    "/platform/system-health/api/events",
    "/platform/system-health/api/summary",
    "/platform/system-health/api/patterns",
    "/platform/system-health/api/sites",
    "/platform/system-health/api/health",
    "/platform/system-health/api/stream",
    "/metrics",
    "/platform/system-health/api/families",
    "/platform/system-health/api/outbox",
];

/// The sites this binary registers (the integration checklist).
pub fn sites() -> Vec<&'static self_healing_runtime::Site> {
    vec![
        test_site!("createContact", Database),
        test_site!("sendInvoice", Api),
        test_site!("neverCalled", Runtime),
    ]
}

pub async fn seeded(db: &TestDb) -> (Router, DashboardState, LiveFeed) {
    let store = db.store().await;
    seed(&store, &sites()).await;
    let feed = LiveFeed::new();
    let state = state(&store, &feed);
    (router(state.clone()), state, feed)
}

/// The status of a GET without reading an endless body (the SSE stream).
pub async fn status_of(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap) {
    use tower::ServiceExt;
    let r = app.clone().oneshot(req).await.expect("infallible");
    (r.status(), r.headers().clone())
}
