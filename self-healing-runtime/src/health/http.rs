//! An HTTP endpoint: `GET` a URL, healthy on 2xx within the timeout, degraded when slow
//! (features `notify` or `llm`, which bring the HTTP client).

use std::time::Duration;

use tokio::time::Instant;

use super::{CheckResult, HealthCheck, HealthContext, HealthStatus, by_latency, millis};
use crate::SettingError;
use crate::event::BoxFuture;
use crate::hooks::HookKind;
use crate::http_client::http_client;

/// `GET`s a URL: healthy on a 2xx answer, degraded when it takes `degraded_after` or longer
/// (1 s by default), unhealthy on any other status, a transport error, or no answer within the
/// timeout (5 s by default). Redirects are followed (up to 10).
///
/// Named `http_<name>`. Details name the status and latency, never the URL: a query string may
/// hold a token.
///
/// ```
/// use std::time::Duration;
/// use self_healing_runtime::health::HttpCheck;
///
/// # fn run() -> Result<(), self_healing_runtime::SettingError> {
/// let billing = HttpCheck::new("billing", "https://billing.example.com/healthz")?
///     .degraded_after(Duration::from_millis(500))
///     .timeout(Duration::from_secs(3));
/// # let _ = billing;
/// # Ok(()) }
/// # run().unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct HttpCheck {
    name: String,
    url: reqwest::Url,
    client: reqwest::Client,
    degraded_after: Duration,
    timeout: Duration,
    hook: Option<HookKind>,
}

impl HttpCheck {
    /// A check named `http_<name>` of `url` (http or https).
    ///
    /// # Errors
    /// A [`SettingError`] when `url` is not an http(s) URL with a host, or the HTTP client
    /// cannot be set up.
    pub fn new(name: &str, url: &str) -> Result<Self, SettingError> {
        let url = parse_url(url, "url")?;
        let timeout = Duration::from_secs(5);
        Ok(HttpCheck {
            name: format!("http_{name}"),
            url,
            client: client(timeout)?,
            degraded_after: Duration::from_secs(1),
            timeout,
            hook: None,
        })
    }

    /// Degraded when the answer takes this long or longer (default 1 s).
    pub fn degraded_after(mut self, latency: Duration) -> Self {
        self.degraded_after = latency;
        self
    }

    /// Unhealthy without an answer within this (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The registered hook to run when the endpoint is unhealthy (none by default).
    pub fn hook(mut self, kind: HookKind) -> Self {
        self.hook = Some(kind);
        self
    }
}

impl HealthCheck for HttpCheck {
    fn name(&self) -> &str {
        &self.name
    }

    fn check<'a>(&'a self, _cx: &'a HealthContext) -> BoxFuture<'a, CheckResult> {
        Box::pin(async move {
            match probe(self.client.get(self.url.clone())).await {
                Ok((status, elapsed)) if status.is_success() => {
                    latency_result(status, elapsed, self.degraded_after)
                }
                Ok((status, _)) => CheckResult::new(
                    HealthStatus::Unhealthy,
                    format!("answered {}", status.as_u16()),
                )
                .with_value(f64::from(status.as_u16())),
                Err(why) => CheckResult::new(HealthStatus::Unhealthy, why),
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

/// Parses an http(s) URL with a host; `setting` names it in the error.
pub(crate) fn parse_url(url: &str, setting: &'static str) -> Result<reqwest::Url, SettingError> {
    let invalid = |reason: String| SettingError { setting, reason };
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| invalid(format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("must be an http or https URL".to_owned()));
    }
    if parsed.cannot_be_a_base() || parsed.host().is_none() {
        return Err(invalid("has no host".to_owned()));
    }
    Ok(parsed)
}

/// The client of the health checks; connecting may take the whole check's timeout.
pub(crate) fn client(connect_timeout: Duration) -> Result<reqwest::Client, SettingError> {
    http_client(connect_timeout).map_err(|reason| SettingError {
        setting: "http client",
        reason,
    })
}

/// Sends `request` and times it to the response's head; the error is without the URL.
pub(crate) async fn probe(
    request: reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, Duration), String> {
    let started = Instant::now();
    match request.send().await {
        Ok(response) => Ok((response.status(), started.elapsed())),
        Err(e) => Err(format!("request failed: {}", e.without_url())),
    }
}

/// A 2xx answer: healthy, or degraded when slow; the value is the latency in milliseconds.
pub(crate) fn latency_result(
    status: reqwest::StatusCode,
    elapsed: Duration,
    degraded_after: Duration,
) -> CheckResult {
    let ms = millis(elapsed);
    CheckResult::new(
        by_latency(elapsed, degraded_after),
        format!("answered {} in {ms:.1} ms", status.as_u16()),
    )
    .with_value(ms)
}
