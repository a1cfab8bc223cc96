//! The LLM endpoint of the `llm` analyzer: `GET {base}/models` with the key (feature `llm`).

use std::time::Duration;

use super::http::{client, latency_result, parse_url, probe};
use super::{CheckResult, HealthCheck, HealthContext, HealthStatus};
use crate::event::BoxFuture;
use crate::llm::{LlmConfig, LlmConfigError};

/// Asks the OpenAI-compatible endpoint of an [`LlmConfig`] for its models (`GET {base}/models`
/// with the key: no tokens spent): healthy on 2xx, degraded when it takes `degraded_after` or
/// longer (2 s by default) or answers 429 (reachable, but rate-limited), unhealthy when the key
/// is refused (401, 403), on any other status, or without an answer within the timeout (10 s
/// by default). Without a configuration it passes as "not configured": no LLM is no failure.
///
/// Named `llm`. Details never hold the key or the URL.
///
/// ```
/// use self_healing_runtime::health::LlmEndpoint;
/// use self_healing_runtime::llm::LlmConfig;
///
/// # fn run() -> Result<(), self_healing_runtime::llm::LlmConfigError> {
/// // From OPENAI_API_KEY (and OPENAI_BASE_URL); "not configured" when unset.
/// let from_env = LlmEndpoint::from_env()?;
/// let ollama = LlmEndpoint::new(&LlmConfig::new("unused").base_url("http://localhost:11434/v1"))?;
/// # let _ = (from_env, ollama);
/// # Ok(()) }
/// # run().unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct LlmEndpoint {
    target: Option<Target>,
    degraded_after: Duration,
    timeout: Duration,
}

#[derive(Clone)]
struct Target {
    models: reqwest::Url,
    api_key: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("models", &self.models.as_str())
            .field("api_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl LlmEndpoint {
    /// A check of `config`'s endpoint.
    ///
    /// # Errors
    /// An [`LlmConfigError`] when the base URL or key is unusable, or the HTTP client cannot be
    /// set up.
    pub fn new(config: &LlmConfig) -> Result<Self, LlmConfigError> {
        if config.api_key.trim().is_empty() {
            return Err(LlmConfigError {
                setting: "api_key",
                reason: "must not be empty".to_owned(),
            });
        }
        let base = parse_url(&config.base_url, "base_url")?;
        let models = parse_url(
            &format!("{}/models", base.as_str().trim_end_matches('/')),
            "base_url",
        )?;
        let timeout = Duration::from_secs(10);
        Ok(LlmEndpoint {
            target: Some(Target {
                models,
                api_key: config.api_key.clone(),
                client: client(timeout)?,
            }),
            degraded_after: Duration::from_secs(2),
            timeout,
        })
    }

    /// A check that passes as "not configured".
    pub fn not_configured() -> Self {
        LlmEndpoint {
            target: None,
            degraded_after: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
        }
    }

    /// The check of the environment's configuration ([`LlmConfig::from_env`]), or
    /// [`not_configured`](Self::not_configured) when `OPENAI_API_KEY` is unset.
    ///
    /// # Errors
    /// As [`LlmConfig::from_env`] and [`new`](Self::new).
    pub fn from_env() -> Result<Self, LlmConfigError> {
        match LlmConfig::from_env()? {
            Some(config) => Self::new(&config),
            None => Ok(Self::not_configured()),
        }
    }

    /// Degraded when the answer takes this long or longer (default 2 s).
    pub fn degraded_after(mut self, latency: Duration) -> Self {
        self.degraded_after = latency;
        self
    }

    /// Unhealthy without an answer within this (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl HealthCheck for LlmEndpoint {
    fn name(&self) -> &str {
        "llm"
    }

    fn check<'a>(&'a self, _cx: &'a HealthContext) -> BoxFuture<'a, CheckResult> {
        Box::pin(async move {
            let Some(target) = &self.target else {
                return CheckResult::healthy("not configured (skipped)");
            };
            let request = target
                .client
                .get(target.models.clone())
                .bearer_auth(&target.api_key);
            match probe(request).await {
                Ok((status, elapsed)) if status.is_success() => {
                    latency_result(status, elapsed, self.degraded_after)
                }
                Ok((status, _)) => {
                    let code = status.as_u16();
                    let (health, why) = match code {
                        401 | 403 => (HealthStatus::Unhealthy, "the key was refused"),
                        429 => (HealthStatus::Degraded, "rate-limited"),
                        _ => (HealthStatus::Unhealthy, "unexpected answer"),
                    };
                    CheckResult::new(health, format!("{why} ({code})")).with_value(f64::from(code))
                }
                Err(why) => CheckResult::new(HealthStatus::Unhealthy, why),
            }
        })
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }
}
