//! Your own database, through a ping you write (`SELECT 1` on a connection of your pool).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{CheckResult, HealthCheck, HealthContext, HealthStatus, by_latency, millis};
use crate::event::BoxFuture;
use crate::hooks::HookKind;
use crate::scrub::scrub_message;

type Ping = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Pings the application's own database with an async closure of yours: healthy when it
/// answers `Ok` quickly, degraded when it takes `degraded_after` or longer (1 s by default),
/// unhealthy when it fails or takes longer than its timeout (5 s by default).
///
/// The check is named `database_<name>`. The error's text is scrubbed before it reaches the
/// report: connection strings and passwords stay out of it.
///
/// ```
/// use std::time::Duration;
/// use self_healing_runtime::health::DatabasePing;
/// use self_healing_runtime::hooks::HookKind;
///
/// # #[derive(Clone)] struct Pool;
/// # impl Pool { async fn select_one(&self) -> Result<(), std::io::Error> { Ok(()) } }
/// let pool = Pool;
/// let check = DatabasePing::new("crm", move || {
///     let pool = pool.clone();
///     async move { pool.select_one().await }
/// })
/// .degraded_after(Duration::from_millis(300))
/// .timeout(Duration::from_secs(2))
/// // When it fails, run the reconnect hook registered on the healer.
/// .hook(HookKind::Reconnect);
/// assert_eq!(self_healing_runtime::health::HealthCheck::name(&check), "database_crm");
/// ```
#[derive(Clone)]
pub struct DatabasePing {
    name: String,
    ping: Ping,
    degraded_after: Duration,
    timeout: Duration,
    hook: Option<HookKind>,
}

impl fmt::Debug for DatabasePing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabasePing")
            .field("name", &self.name)
            .field("degraded_after", &self.degraded_after)
            .field("timeout", &self.timeout)
            .field("hook", &self.hook)
            .finish_non_exhaustive()
    }
}

impl DatabasePing {
    /// A check named `database_<name>` that runs `ping`; its error only needs `Display`.
    pub fn new<F, Fut, E>(name: &str, ping: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        DatabasePing {
            name: format!("database_{name}"),
            ping: Arc::new(move || {
                let answer = ping();
                // The error becomes text at once: the check keeps no error type around.
                Box::pin(async move { answer.await.map_err(|e| e.to_string()) })
            }),
            degraded_after: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            hook: None,
        }
    }

    /// Degraded when the ping takes this long or longer (default 1 s).
    pub fn degraded_after(mut self, latency: Duration) -> Self {
        self.degraded_after = latency;
        self
    }

    /// Unhealthy when the ping takes longer than this (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The registered hook to run when the ping is unhealthy (none by default), e.g.
    /// [`HookKind::Reconnect`].
    pub fn hook(mut self, kind: HookKind) -> Self {
        self.hook = Some(kind);
        self
    }
}

impl HealthCheck for DatabasePing {
    fn name(&self) -> &str {
        &self.name
    }

    fn check<'a>(&'a self, _cx: &'a HealthContext) -> BoxFuture<'a, CheckResult> {
        Box::pin(async move {
            let started = Instant::now();
            match (self.ping)().await {
                Ok(()) => {
                    let elapsed = started.elapsed();
                    let ms = millis(elapsed);
                    CheckResult::new(
                        by_latency(elapsed, self.degraded_after),
                        format!("answered in {ms:.1} ms"),
                    )
                    .with_value(ms)
                }
                Err(e) => CheckResult::new(
                    HealthStatus::Unhealthy,
                    format!("ping failed: {}", scrub_message(&e)),
                ),
            }
        })
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn healing_hook(&self) -> Option<HookKind> {
        self.hook
    }
}
