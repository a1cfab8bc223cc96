//! Loopback services the demo runs: an email provider in two regions (tokens that expire, 429
//! with Retry-After, occasional 500s, an outage of the primary region; mails deduplicated by
//! their `Idempotency-Key`, as real providers do) and the admins' webhook receiver.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

/// Settings of the fake-but-real email provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// How long an access token lives.
    pub token_ttl: Duration,
    /// Emails accepted per window before 429.
    pub rate_limit: u32,
    /// The rate-limit window.
    pub window: Duration,
    /// Probability of a 500.
    pub error_rate: f64,
    /// Probability of a 429 under the limit (the provider is busy with other customers).
    pub throttle_rate: f64,
    /// When the primary region is down (503), as fractions of the run (calls or time).
    pub primary_outage: (f64, f64),
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            token_ttl: Duration::from_secs(5),
            rate_limit: 25,
            window: Duration::from_secs(1),
            error_rate: 0.06,
            throttle_rate: 0.03,
            primary_outage: (0.20, 0.32),
        }
    }
}

#[derive(Debug)]
struct ProviderState {
    config: ProviderConfig,
    tokens: Mutex<HashMap<String, Instant>>,
    window: Mutex<(Instant, u32)>,
    rng: Mutex<fastrand::Rng>,
    stats: Arc<ProviderStats>,
}

/// What the provider answered.
#[derive(Debug, Default)]
pub struct ProviderStats {
    /// Emails accepted.
    pub sent: AtomicU64,
    /// 429 answers.
    pub rate_limited: AtomicU64,
    /// 401 answers (expired token).
    pub unauthorized: AtomicU64,
    /// 500 answers.
    pub server_errors: AtomicU64,
    /// Tokens issued.
    pub tokens_issued: AtomicU64,
    /// 503 answers of the primary region during its outage.
    pub primary_down_answers: AtomicU64,
    /// Mails sent again under an `Idempotency-Key` already delivered (answered 200, not sent).
    pub duplicates: AtomicU64,
    /// Keys of the keyed mails sent (a request under a key sent already is not sent again).
    pub by_key: Mutex<std::collections::HashSet<String>>,
    /// Mails sent, by recipient: every address of the demo is used once, so a count above 1 is
    /// a mail delivered twice (a retry or a replay under a new key).
    pub by_recipient: Mutex<HashMap<String, u32>>,
    /// Whether the primary region is down right now (driven by the load's schedule).
    pub primary_down: std::sync::atomic::AtomicBool,
}

impl ProviderStats {
    /// Recipients who were sent more than one mail (must be empty).
    pub fn delivered_twice(&self) -> Vec<String> {
        let by_recipient = self.by_recipient.lock().expect("by_recipient");
        let mut twice: Vec<String> = by_recipient
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, _)| k.clone())
            .collect();
        twice.sort();
        twice
    }
}

/// The provider's two regions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Regions {
    pub(crate) primary: SocketAddr,
    pub(crate) standby: SocketAddr,
}

pub(crate) async fn spawn_provider(
    config: ProviderConfig,
    seed: u64,
) -> std::io::Result<(Regions, Arc<ProviderStats>)> {
    let stats = Arc::new(ProviderStats::default());
    let state = Arc::new(ProviderState {
        config,
        tokens: Mutex::new(HashMap::new()),
        window: Mutex::new((Instant::now(), 0)),
        rng: Mutex::new(fastrand::Rng::with_seed(seed ^ 0xe3a1)),
        stats: stats.clone(),
    });
    // One account, two regions: tokens and quotas are shared, outages are not.
    let mut addrs = Vec::new();
    for primary in [true, false] {
        let app = Router::new()
            .route("/token", post(issue_token))
            .route("/emails", post(send_email))
            .with_state((state.clone(), primary));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        addrs.push(listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    let regions = Regions {
        primary: addrs[0],
        standby: addrs[1],
    };
    Ok((regions, stats))
}

async fn issue_token(State((s, _)): State<(Arc<ProviderState>, bool)>) -> String {
    let n = s.stats.tokens_issued.fetch_add(1, Ordering::Relaxed);
    let token = format!("tok_{n}_{:08x}", s.rng.lock().expect("rng").u32(..));
    s.tokens
        .lock()
        .expect("tokens")
        .insert(token.clone(), Instant::now() + s.config.token_ttl);
    token
}

async fn send_email(
    State((s, primary)): State<(Arc<ProviderState>, bool)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if primary && s.stats.primary_down.load(Ordering::Relaxed) {
        s.stats.primary_down_answers.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::SERVICE_UNAVAILABLE, "region down").into_response();
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let valid = s
        .tokens
        .lock()
        .expect("tokens")
        .get(token)
        .is_some_and(|exp| *exp > Instant::now());
    if !valid {
        s.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::UNAUTHORIZED, "token expired").into_response();
    }
    {
        let mut w = s.window.lock().expect("window");
        if w.0.elapsed() >= s.config.window {
            *w = (Instant::now(), 0);
        }
        w.1 += 1;
        let busy = s.rng.lock().expect("rng").f64() < s.config.throttle_rate;
        if w.1 > s.config.rate_limit || busy {
            s.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            // Retry-After: when the window resets (seconds, with decimals for short windows).
            let wait = s.config.window.saturating_sub(w.0.elapsed());
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(
                    header::RETRY_AFTER,
                    format!("{:.2}", wait.as_secs_f64().max(0.01)),
                )],
                "slow down",
            )
                .into_response();
        }
    }
    if s.rng.lock().expect("rng").f64() < s.config.error_rate {
        s.stats.server_errors.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    }
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    // Sent already under this key: a retried request is acknowledged, not sent again.
    if let Some(key) = key
        && !s
            .stats
            .by_key
            .lock()
            .expect("by_key")
            .insert(key.to_owned())
    {
        s.stats.duplicates.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::OK, "already sent").into_response();
    }
    let to = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("to").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_default();
    *s.stats
        .by_recipient
        .lock()
        .expect("by_recipient")
        .entry(to)
        .or_default() += 1;
    s.stats.sent.fetch_add(1, Ordering::Relaxed);
    (StatusCode::ACCEPTED, "queued").into_response()
}

/// Notifications the admins' webhook received.
#[derive(Debug, Default)]
pub struct Inbox {
    /// Raw JSON bodies, in arrival order.
    pub bodies: Mutex<Vec<String>>,
}

/// The admins' webhook: keeps every body; prints each title above the progress bar when one is
/// given.
pub(crate) async fn spawn_webhook_receiver(
    print_to: Option<indicatif::ProgressBar>,
) -> std::io::Result<(SocketAddr, Arc<Inbox>)> {
    let inbox = Arc::new(Inbox::default());
    let app = Router::new()
        .route(
            "/hooks/healing",
            post(
                move |State(inbox): State<Arc<Inbox>>, body: String| async move {
                    if let Some(bar) = &print_to {
                        let title = serde_json::from_str::<serde_json::Value>(&body)
                            .ok()
                            .and_then(|v| {
                                v.get("title").and_then(|t| t.as_str()).map(str::to_owned)
                            })
                            .unwrap_or_else(|| body.chars().take(160).collect());
                        bar.suspend(|| println!("[admin webhook] {title}"));
                    }
                    inbox.bodies.lock().expect("inbox").push(body);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, inbox))
}
