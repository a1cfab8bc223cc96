//! The HTTP side: one question, one answer (with the `json_object` fallback), or why not.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::answer::LlmAnswer;
use super::config::LlmConfig;
use super::protocol::{
    Question, Reply, ResponseFormat, read_reply, rejects_json_schema, request_body,
};
use super::stats::{Counters, bump};

/// Replies larger than this are not protocol replies (and are not read further).
const MAX_REPLY_BYTES: usize = 1 << 20;

/// Why a question got no answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    Refused,
    Truncated,
    Malformed(String),
    RateLimited { retry_after: Option<Duration> },
    Http(u16),
    Transport(String),
}

/// A chat-completions client for one server and model.
#[derive(Debug)]
pub(crate) struct ChatClient {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    api_key: String,
    model: String,
    max_completion_tokens: u32,
    max_text_chars: usize,
    /// Set once the server rejected `json_schema`: later questions use `json_object` at once.
    json_schema_rejected: AtomicBool,
}

impl ChatClient {
    pub(crate) fn new(config: &LlmConfig) -> Result<ChatClient, String> {
        Ok(ChatClient {
            http: crate::http_client::http_client(config.timeout)?,
            endpoint: config.endpoint()?,
            api_key: config.api_key.clone(),
            model: config.model.clone(),
            max_completion_tokens: config.max_completion_tokens,
            max_text_chars: config.max_text_chars,
            json_schema_rejected: AtomicBool::new(false),
        })
    }

    pub(crate) fn model(&self) -> &str {
        &self.model
    }

    pub(crate) fn max_text_chars(&self) -> usize {
        self.max_text_chars
    }

    /// Asks about one family. The caller bounds the time it takes.
    pub(crate) async fn ask(
        &self,
        question: &Question,
        strategies: &[&'static str],
        counters: &Counters,
    ) -> Result<LlmAnswer, Failure> {
        let mut format = if self.json_schema_rejected.load(Ordering::Relaxed) {
            ResponseFormat::JsonObject
        } else {
            ResponseFormat::JsonSchema
        };
        loop {
            let body = request_body(
                &self.model,
                question,
                strategies,
                format,
                self.max_completion_tokens,
            );
            let response = self
                .http
                .post(self.endpoint.clone())
                .bearer_auth(&self.api_key)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string())
                .send()
                .await
                .map_err(transport)?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let bytes = read_capped(response).await?;
            if status == reqwest::StatusCode::BAD_REQUEST
                && format == ResponseFormat::JsonSchema
                && rejects_json_schema(&String::from_utf8_lossy(&bytes))
            {
                self.json_schema_rejected.store(true, Ordering::Relaxed);
                bump(&counters.schema_fallbacks);
                format = ResponseFormat::JsonObject;
                continue;
            }
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                return Err(Failure::RateLimited { retry_after });
            }
            if !status.is_success() {
                return Err(Failure::Http(status.as_u16()));
            }
            return match read_reply(&bytes) {
                Reply::Content(content) => {
                    LlmAnswer::parse(&content, strategies, self.max_text_chars)
                        .map_err(Failure::Malformed)
                }
                Reply::Refused => Err(Failure::Refused),
                Reply::Truncated => Err(Failure::Truncated),
                Reply::Malformed(why) => Err(Failure::Malformed(why)),
            };
        }
    }
}

/// A transport error without its URL (it may carry credentials in other deployments).
fn transport(e: reqwest::Error) -> Failure {
    Failure::Transport(e.without_url().to_string())
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(Failure::Malformed("reply larger than 1 MiB".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
