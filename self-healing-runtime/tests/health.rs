//! Health checks: timeouts, healing hooks on failure, the overall rule, the schedule; each of
//! the seven checks healthy, degraded and unhealthy; healing that helps; admins told about a
//! failing check, throttled. Time is tokio's paused clock, except against loopback servers,
//! where nothing asserts how long anything took.

// The loopback server needs tokio's `net` and `io-util`, which only the HTTP client brings.
#[cfg(any(feature = "llm", feature = "notify"))]
mod loopback;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use self_healing_runtime::event::{BoxFuture, EventStore, StoreError};
use self_healing_runtime::health::{
    CheckOutcome, CheckResult, DatabasePing, ErrorRate, HealthCheck, HealthCheckExt, HealthContext,
    HealthMonitor, HealthStatus, ProcessMemory, RequiredConfig, StorePing,
};
use self_healing_runtime::hooks::HookKind;
use self_healing_runtime::{Category, Healer, HealingEvent, InMemoryStore};

#[derive(Debug)]
struct Fixed(&'static str, HealthStatus, Option<HookKind>);

impl HealthCheck for Fixed {
    fn name(&self) -> &str {
        self.0
    }
    fn check<'a>(&'a self, _: &'a HealthContext) -> BoxFuture<'a, CheckResult> {
        Box::pin(std::future::ready(CheckResult::new(self.1, "scripted")))
    }
    fn healing_hook(&self) -> Option<HookKind> {
        self.2
    }
}

#[derive(Debug)]
struct Hangs;

impl HealthCheck for Hangs {
    fn name(&self) -> &str {
        "hangs"
    }
    fn check<'a>(&'a self, _: &'a HealthContext) -> BoxFuture<'a, CheckResult> {
        Box::pin(std::future::pending())
    }
    fn timeout(&self) -> Duration {
        Duration::from_millis(50)
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_check_runs_its_healing_hook_and_says_so() {
    let reconnects = Arc::new(AtomicU32::new(0));
    let hook_count = reconnects.clone();
    let healer = Healer::builder()
        .on_reconnect(Category::Database, move || {
            let n = hook_count.clone();
            async move {
                n.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .build()
        .unwrap();
    let monitor = HealthMonitor::new(
        healer,
        vec![
            Arc::new(Fixed(
                "db",
                HealthStatus::Unhealthy,
                Some(HookKind::Reconnect),
            )),
            Arc::new(Fixed("cache", HealthStatus::Healthy, None)),
            Arc::new(Hangs),
        ],
    );
    let report = monitor.run_now().await;
    assert_eq!(
        report.status,
        HealthStatus::Degraded,
        "two unhealthy of three: degraded"
    );
    assert_eq!(
        report.checks[0].healing.as_deref(),
        Some("reconnect hook ran; still unhealthy on re-check")
    );
    assert_eq!(report.checks[0].healed, Some(false));
    assert_eq!(reconnects.load(Ordering::SeqCst), 1);
    assert_eq!(
        report.checks[2].result.status,
        HealthStatus::Unhealthy,
        "a hung check times out"
    );
    assert!(report.checks[2].result.detail.contains("no answer"));
    assert_eq!(monitor.latest(), Some(report));
}

#[tokio::test(start_paused = true)]
async fn the_schedule_runs_every_interval() {
    let healer = Healer::builder().build().unwrap();
    let monitor = HealthMonitor::with_defaults(healer).every(Duration::from_secs(120));
    let task = monitor.spawn();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first = monitor.latest().expect("ran at start").time;
    tokio::time::sleep(Duration::from_secs(120)).await;
    let second = monitor.latest().unwrap().time;
    assert!(second > first, "ran again after the interval");
    task.abort();
}

fn healer() -> Healer {
    Healer::builder()
        .store(InMemoryStore::new())
        .build()
        .unwrap()
}

/// Runs `checks` once and returns their outcomes, in order.
async fn run(checks: Vec<Arc<dyn HealthCheck>>) -> Vec<CheckOutcome> {
    HealthMonitor::new(healer(), checks).run_now().await.checks
}

async fn run_one(check: impl HealthCheck) -> CheckOutcome {
    run(vec![Arc::new(check)]).await.remove(0)
}

#[derive(Debug)]
struct Unreachable;

/// A store that cannot be reached: only its ping matters here.
impl EventStore for Unreachable {
    fn write_batch<'a>(&'a self, _: &'a [HealingEvent]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(std::future::ready(Ok(())))
    }
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(std::future::ready(Err("connection refused".into())))
    }
}

#[tokio::test(start_paused = true)]
async fn store_ping_passes_and_fails() {
    let ok = run_one(StorePing).await;
    assert_eq!(ok.result.status, HealthStatus::Healthy);
    let healer = Healer::builder().store(Unreachable).build().unwrap();
    let report = HealthMonitor::new(healer, vec![Arc::new(StorePing)])
        .run_now()
        .await;
    assert_eq!(report.checks[0].result.status, HealthStatus::Unhealthy);
    assert!(
        report.checks[0]
            .result
            .detail
            .contains("connection refused")
    );
}

#[tokio::test(start_paused = true)]
async fn database_ping_passes_degrades_fails_and_times_out() {
    let quick = DatabasePing::new("crm", || async { Ok::<(), String>(()) });
    let slow = DatabasePing::new("slow", || async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        Ok::<(), String>(())
    })
    .degraded_after(Duration::from_millis(300));
    let broken = DatabasePing::new("broken", || async {
        Err::<(), _>(std::io::Error::other("connection reset by peer"))
    });
    let hung = DatabasePing::new("hung", std::future::pending::<Result<(), String>>)
        .timeout(Duration::from_secs(2));
    let checks = run(vec![
        Arc::new(quick),
        Arc::new(slow),
        Arc::new(broken),
        Arc::new(hung),
    ])
    .await;
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "database_crm",
            "database_slow",
            "database_broken",
            "database_hung"
        ]
    );
    let statuses: Vec<HealthStatus> = checks.iter().map(|c| c.result.status).collect();
    assert_eq!(
        statuses,
        [
            HealthStatus::Healthy,
            HealthStatus::Degraded,
            HealthStatus::Unhealthy,
            HealthStatus::Unhealthy
        ]
    );
    assert_eq!(checks[1].result.value, Some(400.0), "the latency in ms");
    assert_eq!(
        checks[2].result.detail,
        "ping failed: connection reset by peer"
    );
    assert_eq!(checks[3].result.detail, "no answer within 2s");
}

fn lookup(vars: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> + Send + Sync {
    let vars: HashMap<&str, &str> = vars.iter().copied().collect();
    move |name| vars.get(name).map(|v| (*v).to_owned())
}

#[tokio::test(start_paused = true)]
async fn required_config_names_what_is_missing_and_never_a_value() {
    let everything = RequiredConfig::env(["DATABASE_URL", "CRON_SECRET"])
        .recommended_env("SLACK_URL")
        .setting("smtp.host", || true)
        .lookup(lookup(&[
            ("DATABASE_URL", "postgres://app:hunter2@db/crm"),
            ("CRON_SECRET", "s3cret-value"),
            ("SLACK_URL", "https://hooks.example.com/T0"),
        ]));
    let ok = run_one(everything).await;
    assert_eq!(ok.name, "config");
    assert_eq!(ok.result.status, HealthStatus::Healthy);
    assert_eq!(ok.result.detail, "4 configured");

    let no_slack = RequiredConfig::env(["DATABASE_URL"])
        .recommended_env("SLACK_URL")
        .lookup(lookup(&[("DATABASE_URL", "postgres://app:hunter2@db/crm")]));
    let degraded = run_one(no_slack).await;
    assert_eq!(degraded.result.status, HealthStatus::Degraded);
    assert_eq!(degraded.result.detail, "recommended but missing: SLACK_URL");

    let broken = RequiredConfig::env(["DATABASE_URL", "CRON_SECRET", "API_KEY"])
        .recommended_env("SLACK_URL")
        .setting("smtp.host", || false)
        // Set but blank counts as missing.
        .lookup(lookup(&[
            ("DATABASE_URL", "postgres://app:hunter2@db/crm"),
            ("API_KEY", "  "),
        ]));
    let failed = run_one(broken).await;
    assert_eq!(failed.result.status, HealthStatus::Unhealthy);
    assert_eq!(
        failed.result.detail,
        "missing: CRON_SECRET, API_KEY, smtp.host; recommended but missing: SLACK_URL"
    );
    assert_eq!(failed.result.value, Some(4.0));
    assert!(!failed.result.detail.contains("hunter2"));
}

#[tokio::test(start_paused = true)]
async fn memory_thresholds_pass_degrade_and_fail() {
    // Whatever this process holds, it is above 0 MiB and below a petabyte.
    const HUGE: f64 = 1e12;
    let checks = run(vec![
        Arc::new(ProcessMemory::new(HUGE, HUGE)),
        Arc::new(ProcessMemory::new(0.0, HUGE)),
        Arc::new(ProcessMemory::new(0.0, 0.0)),
    ])
    .await;
    let statuses: Vec<HealthStatus> = checks.iter().map(|c| c.result.status).collect();
    if cfg!(target_os = "linux") {
        assert_eq!(
            statuses,
            [
                HealthStatus::Healthy,
                HealthStatus::Degraded,
                HealthStatus::Unhealthy
            ]
        );
    }
}

#[tokio::test(start_paused = true)]
async fn error_rate_thresholds_pass_degrade_and_fail() {
    // No failure at all: 0 a minute, which meets thresholds of 0.
    let window = Duration::from_secs(300);
    let checks = run(vec![
        Arc::new(ErrorRate::default()),
        Arc::new(ErrorRate::new(window, 0.0, 1.0)),
        Arc::new(ErrorRate::new(window, 0.0, 0.0)),
    ])
    .await;
    let statuses: Vec<HealthStatus> = checks.iter().map(|c| c.result.status).collect();
    assert_eq!(
        statuses,
        [
            HealthStatus::Healthy,
            HealthStatus::Degraded,
            HealthStatus::Unhealthy
        ]
    );
}

/// A pool that is broken until something rebuilds it.
#[derive(Debug, Clone, Default)]
struct Pool(Arc<AtomicBool>);

impl Pool {
    fn ping(&self) -> DatabasePing {
        let pool = self.clone();
        DatabasePing::new("crm", move || {
            let up = pool.0.load(Ordering::SeqCst);
            async move { if up { Ok(()) } else { Err("pool closed") } }
        })
    }
    fn rebuild(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn a_healing_action_that_heals_is_rechecked_and_reported() {
    let pool = Pool::default();
    let rebuilds = Arc::new(AtomicU32::new(0));
    let (p, n) = (pool.clone(), rebuilds.clone());
    let check = pool.ping().heal_with(move || {
        let (p, n) = (p.clone(), n.clone());
        async move {
            n.fetch_add(1, Ordering::SeqCst);
            p.rebuild();
            Ok(())
        }
    });
    let outcome = run_one(check).await;
    assert_eq!(rebuilds.load(Ordering::SeqCst), 1);
    assert_eq!(outcome.healed, Some(true));
    assert_eq!(
        outcome.result.status,
        HealthStatus::Healthy,
        "the re-check's result"
    );
    assert_eq!(
        outcome.healing.as_deref(),
        Some("healing action ran; healthy on re-check (was unhealthy: ping failed: pool closed)")
    );
}

#[tokio::test(start_paused = true)]
async fn a_registered_hook_that_heals_is_rechecked_and_reported() {
    let pool = Pool::default();
    let p = pool.clone();
    let healer = Healer::builder()
        .store(InMemoryStore::new())
        .on_reconnect(Category::Database, move || {
            let p = p.clone();
            async move {
                p.rebuild();
                Ok(())
            }
        })
        .build()
        .unwrap();
    let check = pool.ping().hook(HookKind::Reconnect);
    let report = HealthMonitor::new(healer, vec![Arc::new(check)])
        .run_now()
        .await;
    assert_eq!(report.status, HealthStatus::Healthy);
    assert_eq!(report.checks[0].healed, Some(true));
    assert!(
        report.checks[0]
            .healing
            .as_deref()
            .unwrap()
            .starts_with("reconnect hook ran; healthy on re-check")
    );
}

#[tokio::test(start_paused = true)]
async fn a_healing_action_that_fails_is_reported_without_a_recheck() {
    let pool = Pool::default();
    let check = pool
        .ping()
        .heal_with(|| async { Err("no connections left".into()) });
    let outcome = run_one(check).await;
    assert_eq!(outcome.healed, Some(false));
    assert_eq!(outcome.result.status, HealthStatus::Unhealthy);
    assert_eq!(
        outcome.healing.as_deref(),
        Some("healing action failed: no connections left")
    );
}

#[tokio::test(start_paused = true)]
async fn a_hook_that_is_not_registered_is_said_so_and_heals_nothing() {
    let outcome = run_one(Pool::default().ping().hook(HookKind::Reconnect)).await;
    assert_eq!(outcome.healed, None);
    assert_eq!(
        outcome.healing.as_deref(),
        Some("no reconnect hook registered")
    );
    assert_eq!(outcome.result.status, HealthStatus::Unhealthy);
}

#[cfg(any(feature = "llm", feature = "notify"))]
mod http {
    use super::loopback::{Reply, Server};
    use super::*;
    use self_healing_runtime::health::HttpCheck;

    #[tokio::test]
    async fn http_check_passes_degrades_and_fails() {
        let server = Server::start(|request, _| match request.path.as_str() {
            "/healthz" => Reply::text(200, "ok"),
            "/hang" => Reply::Hang,
            _ => Reply::text(503, "down"),
        })
        .await;
        let url = |path: &str| format!("{}{path}", server.url());
        let quick = HttpCheck::new("quick", &url("/healthz"))
            .unwrap()
            .degraded_after(Duration::from_secs(60));
        // Every answer takes at least no time: degraded from zero is always degraded.
        let slow = HttpCheck::new("slow", &url("/healthz"))
            .unwrap()
            .degraded_after(Duration::ZERO);
        let down = HttpCheck::new("down", &url("/status?token=abc")).unwrap();
        let hung = HttpCheck::new("hung", &url("/hang"))
            .unwrap()
            .timeout(Duration::from_millis(200));
        let checks = run(vec![
            Arc::new(quick),
            Arc::new(slow),
            Arc::new(down),
            Arc::new(hung),
        ])
        .await;
        let statuses: Vec<HealthStatus> = checks.iter().map(|c| c.result.status).collect();
        assert_eq!(
            statuses,
            [
                HealthStatus::Healthy,
                HealthStatus::Degraded,
                HealthStatus::Unhealthy,
                HealthStatus::Unhealthy
            ],
            "{checks:#?}"
        );
        assert_eq!(checks[0].name, "http_quick");
        assert!(checks[0].result.detail.starts_with("answered 200 in "));
        assert_eq!(checks[2].result.detail, "answered 503");
        assert!(checks[3].result.detail.starts_with("no answer within"));
        assert!(checks.iter().all(|c| !c.result.detail.contains("token")));
    }

    #[tokio::test]
    async fn http_check_refuses_a_url_it_cannot_use() {
        assert_eq!(
            HttpCheck::new("x", "ftp://example.com")
                .unwrap_err()
                .setting,
            "url"
        );
        assert!(HttpCheck::new("x", "not a url").is_err());
    }
}

#[cfg(feature = "llm")]
mod llm {
    use super::loopback::{Reply, Server};
    use super::*;
    use self_healing_runtime::health::LlmEndpoint;
    use self_healing_runtime::llm::LlmConfig;
    use serde_json::json;

    const KEY: &str = "sk-test-0123456789";

    /// An OpenAI-compatible server: the model list for the right key, 401 otherwise.
    async fn server() -> Server {
        Server::start(|request, _| {
            let authorized = request.header("authorization") == Some(&format!("Bearer {KEY}"));
            match (request.method.as_str(), request.path.as_str(), authorized) {
                ("GET", "/v1/models", true) => Reply::json(
                    200,
                    json!({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]}),
                ),
                ("GET", "/v1/models", false) => Reply::json(
                    401,
                    json!({"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}),
                ),
                _ => Reply::text(404, "not found"),
            }
        })
        .await
    }

    #[tokio::test]
    async fn llm_endpoint_passes_degrades_fails_and_skips() {
        let server = server().await;
        let base = format!("{}/v1", server.url());
        let config = |key: &str| LlmConfig::new(key).base_url(&base);
        let ok = LlmEndpoint::new(&config(KEY))
            .unwrap()
            .degraded_after(Duration::from_secs(60));
        let slow = LlmEndpoint::new(&config(KEY))
            .unwrap()
            .degraded_after(Duration::ZERO);
        let refused = LlmEndpoint::new(&config("sk-wrong-key-0000")).unwrap();
        let checks = run(vec![
            Arc::new(ok),
            Arc::new(slow),
            Arc::new(refused),
            Arc::new(LlmEndpoint::not_configured()),
        ])
        .await;
        let statuses: Vec<HealthStatus> = checks.iter().map(|c| c.result.status).collect();
        assert_eq!(
            statuses,
            [
                HealthStatus::Healthy,
                HealthStatus::Degraded,
                HealthStatus::Unhealthy,
                HealthStatus::Healthy
            ],
            "{checks:#?}"
        );
        assert_eq!(checks[0].name, "llm");
        assert_eq!(checks[2].result.detail, "the key was refused (401)");
        assert_eq!(checks[3].result.detail, "not configured (skipped)");
        assert!(checks.iter().all(|c| !c.result.detail.contains("sk-")));
        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        assert!(
            requests
                .iter()
                .all(|r| r.path == "/v1/models" && r.method == "GET")
        );
    }
}

#[cfg(feature = "notify")]
mod alerts {
    use std::sync::Mutex;

    use super::*;
    use self_healing_runtime::health::HealthAlerts;
    use self_healing_runtime::notify::{
        Notification, NotificationKind, Notifier, NotifyDispatcher, NotifyError,
    };

    /// Keeps every notification it is given.
    #[derive(Debug, Clone, Default)]
    struct Recording(Arc<Mutex<Vec<Notification>>>);

    impl Notifier for Recording {
        fn name(&self) -> &str {
            "recording"
        }
        fn send<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), NotifyError>> {
            self.0.lock().unwrap().push(n.clone());
            Box::pin(std::future::ready(Ok(())))
        }
    }

    impl Recording {
        fn kinds(&self) -> Vec<(NotificationKind, u64)> {
            self.0
                .lock()
                .unwrap()
                .iter()
                .map(|n| (n.kind, n.count))
                .collect()
        }
    }

    const WINDOW: Duration = Duration::from_secs(30 * 60);

    fn notifying(recording: &Recording) -> (Healer, NotifyDispatcher) {
        let dispatcher = NotifyDispatcher::builder()
            .notifier(recording.clone())
            .window(WINDOW)
            .build()
            .unwrap();
        let healer = Healer::builder()
            .store(InMemoryStore::new())
            .notify(dispatcher.clone())
            .build()
            .unwrap();
        (healer, dispatcher)
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_check_notifies_admins() {
        let recording = Recording::default();
        let (healer, dispatcher) = notifying(&recording);
        let monitor = HealthMonitor::new(
            healer,
            vec![
                Arc::new(Fixed("billing_db", HealthStatus::Unhealthy, None)),
                Arc::new(Fixed("cache", HealthStatus::Healthy, None)),
                Arc::new(Fixed("slow_api", HealthStatus::Degraded, None)),
            ],
        );
        monitor.run_now().await;
        dispatcher.idle().await;
        let sent = recording.0.lock().unwrap().clone();
        assert_eq!(sent.len(), 1, "only the unhealthy check: {sent:#?}");
        let n = &sent[0];
        assert_eq!(n.kind, NotificationKind::Alert);
        assert_eq!(n.health_check.as_deref(), Some("billing_db"));
        assert_eq!(n.source, "health:billing_db");
        assert_eq!(n.message, "scripted");
        assert_eq!(
            n.title(),
            "[self-healing] health check billing_db is unhealthy"
        );
        assert_eq!(n.to_json()["health_check"], "billing_db");
        assert!(
            n.text()
                .contains("\ncheck: billing_db\nfound: scripted\nhealing: none\n")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn two_failures_in_a_window_are_one_notification() {
        let recording = Recording::default();
        let (healer, dispatcher) = notifying(&recording);
        let monitor = HealthMonitor::new(
            healer,
            vec![Arc::new(Fixed("db", HealthStatus::Unhealthy, None))],
        );
        monitor.run_now().await;
        tokio::time::sleep(Duration::from_secs(120)).await;
        monitor.run_now().await;
        dispatcher.idle().await;
        assert_eq!(recording.kinds(), [(NotificationKind::Alert, 1)]);
        // A window after the first, the second failure goes out as a digest.
        tokio::time::sleep(WINDOW).await;
        dispatcher.idle().await;
        assert_eq!(
            recording.kinds(),
            [(NotificationKind::Alert, 1), (NotificationKind::Digest, 1)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn only_turning_bad_notifies_when_asked() {
        let recording = Recording::default();
        let (healer, dispatcher) = notifying(&recording);
        let monitor = HealthMonitor::new(
            healer,
            vec![Arc::new(Fixed("db", HealthStatus::Unhealthy, None))],
        )
        .alerts(HealthAlerts::default().while_failing(false));
        for _ in 0..3 {
            monitor.run_now().await;
            tokio::time::sleep(WINDOW * 2).await;
        }
        dispatcher.idle().await;
        assert_eq!(recording.kinds(), [(NotificationKind::Alert, 1)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_healed_tells_no_one() {
        let recording = Recording::default();
        let (healer, dispatcher) = notifying(&recording);
        let pool = Pool::default();
        let p = pool.clone();
        let check = pool.ping().heal_with(move || {
            p.rebuild();
            async { Ok(()) }
        });
        let report = HealthMonitor::new(healer, vec![Arc::new(check)])
            .run_now()
            .await;
        dispatcher.idle().await;
        assert_eq!(report.checks[0].healed, Some(true));
        assert!(recording.kinds().is_empty());
    }
}
