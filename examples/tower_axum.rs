//! An axum route healed by `HealingLayer`: its handler answers `503 Service Unavailable` now and
//! then, and has one longer outage. The route is called in-process with `ServiceExt::oneshot` (no
//! network); each answer is printed, then the healed and failed counts.
//!
//! Run: `cargo run --example tower_axum --features tower`; with `--features tower,metrics` it
//! also prints what a `metrics` recorder received (here metrics-util's debugging recorder; a
//! Prometheus or OpenTelemetry exporter receives the same).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use self_healing::tower::{BoxError, HealingLayer};
use self_healing::{Healer, InMemoryStore, Outcome, Rejected, site};
use tower::{ServiceBuilder, ServiceExt};

/// Calls of the handler so far.
static CALLS: AtomicU32 = AtomicU32::new(0);

/// The flaky inner handler: every third call is refused, and calls 12 to 20 hit an outage.
async fn quote() -> Response {
    let n = CALLS.fetch_add(1, Ordering::SeqCst);
    if n % 3 == 1 || (12..21).contains(&n) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "0")],
            "quotes are being reloaded",
        )
            .into_response();
    }
    "ACME 42.00".into_response()
}

/// Which responses are failures to heal: server errors, with their Retry-After.
fn server_error(resp: &Response) -> Option<String> {
    if !resp.status().is_server_error() {
        return None;
    }
    let retry_after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok());
    Some(match retry_after {
        Some(secs) => format!("HTTP {}; Retry-After: {secs}", resp.status()),
        None => format!("HTTP {}", resp.status()),
    })
}

/// A request axum hands the route is not `Clone` (its body is a stream). A GET has no body, so
/// it is rebuilt from its parts; any other method is sent once.
fn rebuild(req: &Request) -> Option<Request> {
    if req.method() != Method::GET {
        return None;
    }
    let mut copy = Request::new(Body::empty());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    Some(copy)
}

/// The layer's errors as responses (axum routes cannot fail): a refused call, or the handler's.
async fn refused(err: BoxError) -> (StatusCode, String) {
    match err.downcast_ref::<Rejected>() {
        Some(rejected) => (StatusCode::SERVICE_UNAVAILABLE, rejected.to_string()),
        None => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(feature = "metrics")]
    let snapshotter = {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install()?;
        snapshotter
    };
    let store = InMemoryStore::new();
    Healer::builder()
        .store(store.clone())
        .backoff(Duration::from_millis(10), Duration::from_millis(200))
        .build()?
        .install()?;

    let healing = HealingLayer::new(site!(source = "getQuote", category = "api"))
        .rerun_with(rebuild)
        .fail_when(server_error);
    let app = Router::new().route(
        "/quote",
        get(quote).layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(refused))
                .layer(healing),
        ),
    );

    let (mut healed, mut first_try, mut failed) = (0, 0, 0);
    for i in 1..=10 {
        let before = CALLS.load(Ordering::SeqCst);
        let req = Request::get("/quote").body(Body::empty())?;
        let resp = app.clone().oneshot(req).await?;
        let attempts = CALLS.load(Ordering::SeqCst) - before;
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1024).await?;
        let body = String::from_utf8_lossy(&body);
        let what = match (status.is_success(), attempts) {
            (true, 1) => {
                first_try += 1;
                "first try"
            }
            (true, _) => {
                healed += 1;
                "healed"
            }
            (false, _) => {
                failed += 1;
                "failed"
            }
        };
        println!("request {i:>2}: {status} {body:?} after {attempts} attempt(s): {what}");
    }
    println!("\nfirst try: {first_try}, healed: {healed}, failed: {failed}");

    let healer = Healer::current().expect("installed above");
    healer.flush().await?;
    // Events of the same kind close together are folded into one, with a count.
    let (mut healed_calls, mut other_calls) = (0, 0);
    for event in store.events() {
        match event.outcome {
            Outcome::Healed => healed_calls += event.count,
            _ => other_calls += event.count,
        }
    }
    println!("healing events: {healed_calls} calls healed, {other_calls} not healed");
    #[cfg(feature = "metrics")]
    {
        healer.publish_metrics();
        print_metrics(&snapshotter);
    }
    Ok(())
}

/// The recorder's series, one line each.
#[cfg(feature = "metrics")]
fn print_metrics(snapshotter: &metrics_util::debugging::Snapshotter) {
    use metrics_util::debugging::DebugValue;
    println!("\nmetrics:");
    let mut lines: Vec<String> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}=\"{}\"", l.key(), l.value()))
                .collect();
            let value = match value {
                DebugValue::Counter(n) => n.to_string(),
                DebugValue::Gauge(g) => g.to_string(),
                DebugValue::Histogram(samples) => {
                    let ms: Vec<String> = samples
                        .iter()
                        .map(|s| format!("{:.0}ms", s.into_inner() * 1000.0))
                        .collect();
                    format!("[{}]", ms.join(", "))
                }
            };
            format!("  {}{{{}}} {value}", key.name(), labels.join(","))
        })
        .collect();
    lines.sort();
    for line in lines {
        println!("{line}");
    }
}
