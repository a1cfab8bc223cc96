//! Settings of the LLM analyzer: from the builder API, or from `OPENAI_*` variables.

use std::fmt;
use std::time::Duration;

/// The default `OPENAI_BASE_URL`.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// The default `OPENAI_MODEL`: a model with structured outputs.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

/// A setting the LLM analyzer cannot work with (the variable or builder method, and why).
pub type LlmConfigError = crate::SettingError;

/// How the LLM analyzer talks to an OpenAI-compatible server and how much it may ask.
///
/// ```
/// use std::time::Duration;
/// use self_healing_runtime::llm::LlmConfig;
///
/// let config = LlmConfig::new("sk-test")
///     .base_url("http://localhost:11434/v1") // Ollama
///     .model("llama3.1")
///     .timeout(Duration::from_secs(30))
///     .per_minute(10);
/// assert_eq!(config.model_name(), "llama3.1");
/// // The key never shows in logs.
/// assert!(!format!("{config:?}").contains("sk-test"));
/// ```
#[derive(Clone)]
pub struct LlmConfig {
    pub(crate) api_key: String,
    pub(crate) base_url: String,
    pub(crate) model: String,
    pub(crate) timeout: Duration,
    pub(crate) max_concurrent: usize,
    pub(crate) per_minute: u32,
    pub(crate) ttl: Duration,
    pub(crate) retry_failed_after: Duration,
    pub(crate) queue_capacity: usize,
    pub(crate) max_text_chars: usize,
    pub(crate) max_completion_tokens: u32,
}

impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmConfig")
            .field("api_key", &"[redacted]")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("max_concurrent", &self.max_concurrent)
            .field("per_minute", &self.per_minute)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl LlmConfig {
    /// Settings with this API key and the defaults: OpenAI's URL, [`DEFAULT_MODEL`], a 20 s
    /// timeout, 2 requests at once, 20 per minute, answers kept 24 h, failed questions asked
    /// again after 10 min.
    pub fn new(api_key: impl Into<String>) -> Self {
        LlmConfig {
            api_key: api_key.into(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            model: DEFAULT_MODEL.to_owned(),
            timeout: Duration::from_secs(20),
            max_concurrent: 2,
            per_minute: 20,
            ttl: Duration::from_secs(24 * 3600),
            retry_failed_after: Duration::from_secs(600),
            queue_capacity: 64,
            max_text_chars: 500,
            max_completion_tokens: 600,
        }
    }

    /// Reads `OPENAI_API_KEY`, `OPENAI_BASE_URL` and `OPENAI_MODEL`. No key (or an empty one)
    /// gives `Ok(None)`: rules only.
    ///
    /// # Errors
    /// An unusable `OPENAI_BASE_URL` or `OPENAI_MODEL`, naming the variable.
    pub fn from_env() -> Result<Option<Self>, LlmConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with another source of variables (tests, config files).
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, LlmConfigError> {
        let set = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let Some(key) = set("OPENAI_API_KEY") else {
            return Ok(None);
        };
        let mut config = LlmConfig::new(key);
        if let Some(url) = set("OPENAI_BASE_URL") {
            config.base_url = url;
            config.endpoint().map_err(|reason| LlmConfigError {
                setting: "OPENAI_BASE_URL",
                reason,
            })?;
        }
        if let Some(model) = set("OPENAI_MODEL") {
            config.model = model;
        }
        config.validate_as("OPENAI_MODEL")?;
        Ok(Some(config))
    }

    /// The server's base URL, up to `/v1` (default [`DEFAULT_BASE_URL`]; Ollama:
    /// `http://localhost:11434/v1`; vLLM: `http://host:8000/v1`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The model to ask (default [`DEFAULT_MODEL`]).
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// The model asked.
    pub fn model_name(&self) -> &str {
        &self.model
    }

    /// Time one question may take, the fallback to `json_object` included (default 20 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Questions in flight at once (default 2).
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n;
        self
    }

    /// Questions started per minute at most (default 20); the rest wait for a later batch.
    pub fn per_minute(mut self, n: u32) -> Self {
        self.per_minute = n;
        self
    }

    /// How long an answer stands before the family is asked about again (default 24 h).
    pub fn ttl(mut self, d: Duration) -> Self {
        self.ttl = d;
        self
    }

    /// How long after a failed question (timeout, HTTP error, malformed answer) the family may
    /// be asked about again (default 10 min).
    pub fn retry_failed_after(mut self, d: Duration) -> Self {
        self.retry_failed_after = d;
        self
    }

    /// Questions waiting for the analyzer's task at most (default 64); more are dropped and
    /// counted, and asked again with a later batch.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n;
        self
    }

    /// Characters kept of the diagnosis and reasoning texts (default 500).
    pub fn max_text_chars(mut self, n: usize) -> Self {
        self.max_text_chars = n;
        self
    }

    /// `max_completion_tokens` sent with each question (default 600).
    pub fn max_completion_tokens(mut self, n: u32) -> Self {
        self.max_completion_tokens = n;
        self
    }

    /// The chat-completions URL.
    pub(crate) fn endpoint(&self) -> Result<reqwest::Url, String> {
        let url = reqwest::Url::parse(self.base_url.trim())
            .map_err(|e| format!("`{}` is not a URL: {e}", self.base_url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{}` must be an http or https URL", self.base_url));
        }
        if url.cannot_be_a_base() || url.host().is_none() {
            return Err(format!("`{}` has no host", self.base_url));
        }
        let joined = format!("{}/chat/completions", url.as_str().trim_end_matches('/'));
        reqwest::Url::parse(&joined).map_err(|e| e.to_string())
    }

    /// Checks every setting; `model_setting` names the model's setting in the error.
    pub(crate) fn validate_as(&self, model_setting: &'static str) -> Result<(), LlmConfigError> {
        let invalid = |setting, reason: &str| LlmConfigError {
            setting,
            reason: reason.to_owned(),
        };
        if self.api_key.trim().is_empty() {
            return Err(invalid("api_key", "must not be empty"));
        }
        self.endpoint().map_err(|reason| LlmConfigError {
            setting: "base_url",
            reason,
        })?;
        if self.model.trim().is_empty() || self.model.chars().any(char::is_control) {
            return Err(invalid(model_setting, "must be a model name"));
        }
        if self.timeout.is_zero() {
            return Err(invalid("timeout", "must be longer than zero"));
        }
        if self.max_concurrent == 0 {
            return Err(invalid("max_concurrent", "must be at least 1"));
        }
        if self.per_minute == 0 {
            return Err(invalid("per_minute", "must be at least 1"));
        }
        if self.queue_capacity == 0 {
            return Err(invalid("queue_capacity", "must be at least 1"));
        }
        if self.max_text_chars < 16 {
            return Err(invalid("max_text_chars", "must be at least 16"));
        }
        if self.max_completion_tokens < 64 {
            return Err(invalid("max_completion_tokens", "must be at least 64"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn no_key_means_rules_only() {
        assert_eq!(
            LlmConfig::from_lookup(vars(&[])).unwrap().map(|c| c.model),
            None
        );
        let blank = LlmConfig::from_lookup(vars(&[("OPENAI_API_KEY", "  ")])).unwrap();
        assert!(blank.is_none());
    }

    #[test]
    fn defaults_and_overrides() {
        let c = LlmConfig::from_lookup(vars(&[("OPENAI_API_KEY", "k")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            c.endpoint().unwrap().as_str(),
            "https://api.openai.com/v1/chat/completions"
        );
        let c = LlmConfig::from_lookup(vars(&[
            ("OPENAI_API_KEY", "k"),
            ("OPENAI_BASE_URL", "http://localhost:11434/v1/"),
            ("OPENAI_MODEL", "llama3.1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            c.endpoint().unwrap().as_str(),
            "http://localhost:11434/v1/chat/completions"
        );
        assert_eq!(c.model, "llama3.1");
    }

    #[test]
    fn a_bad_url_names_the_variable() {
        for url in ["not a url", "ftp://host/v1", "mailto:x@y"] {
            let err = LlmConfig::from_lookup(move |name| match name {
                "OPENAI_API_KEY" => Some("k".into()),
                "OPENAI_BASE_URL" => Some(url.into()),
                _ => None,
            })
            .unwrap_err();
            assert_eq!(err.setting, "OPENAI_BASE_URL", "{url}: {err}");
            assert!(
                err.to_string().starts_with("invalid OPENAI_BASE_URL"),
                "{err}"
            );
        }
    }
}
