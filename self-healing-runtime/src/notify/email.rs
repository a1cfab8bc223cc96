//! Email through an HTTP email API (Resend-style: `POST {base}/emails` with a bearer key).

use std::fmt;

use serde_json::json;

use super::{Notification, Notifier, NotifyConfigError, NotifyError, post};
use crate::event::BoxFuture;

/// The default sender; most providers want a verified domain, so set your own.
pub const DEFAULT_FROM: &str = "self-healing <noreply@localhost>";

/// Sends `{"from", "to", "subject", "text"}` to `{base}/emails`, authorised by a bearer key
/// (Resend's API; other providers with the same shape work too).
#[derive(Clone)]
pub struct EmailApi {
    endpoint: reqwest::Url,
    api_key: String,
    from: String,
    to: Vec<String>,
    client: reqwest::Client,
}

impl fmt::Debug for EmailApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailApi")
            .field("endpoint", &post::show(&self.endpoint))
            .field("api_key", &"[redacted]")
            .field("from", &self.from)
            .field("to", &self.to.len())
            .finish()
    }
}

impl EmailApi {
    /// A channel sending through the API at `base_url` (e.g. `https://api.resend.com`) to `to`.
    ///
    /// # Errors
    /// If the URL is unusable, the key empty, or a recipient is not an address.
    pub fn new(
        base_url: &str,
        api_key: impl Into<String>,
        to: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, NotifyConfigError> {
        let base = post::parse_url("email API URL", base_url)?;
        let endpoint =
            reqwest::Url::parse(&format!("{}/emails", base.as_str().trim_end_matches('/')))
                .map_err(|e| NotifyConfigError {
                    setting: "email API URL",
                    reason: e.to_string(),
                })?;
        let api_key = api_key.into();
        if api_key.trim().is_empty() {
            return Err(NotifyConfigError {
                setting: "email API key",
                reason: "must not be empty".to_owned(),
            });
        }
        let to: Vec<String> = to.into_iter().map(|a| a.into().trim().to_owned()).collect();
        if to.is_empty() || to.iter().any(|a| !looks_like_address(a)) {
            return Err(NotifyConfigError {
                setting: "admin emails",
                reason: "need at least one address, each like name@example.com".to_owned(),
            });
        }
        Ok(EmailApi {
            endpoint,
            api_key,
            from: DEFAULT_FROM.to_owned(),
            to,
            client: post::client().map_err(|reason| NotifyConfigError {
                setting: "http client",
                reason,
            })?,
        })
    }

    /// The sender (default [`DEFAULT_FROM`]).
    pub fn from_address(mut self, from: impl Into<String>) -> Self {
        self.from = from.into();
        self
    }

    /// The request body.
    pub fn payload(&self, notification: &Notification) -> serde_json::Value {
        json!({
            "from": self.from,
            "to": self.to,
            "subject": notification.title(),
            "text": notification.text(),
        })
    }
}

fn looks_like_address(a: &str) -> bool {
    a.split_once('@').is_some_and(|(user, host)| {
        !user.is_empty() && host.contains('.') && !a.contains(char::is_whitespace)
    })
}

impl Notifier for EmailApi {
    fn name(&self) -> &str {
        "email"
    }

    fn send<'a>(
        &'a self,
        notification: &'a Notification,
    ) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            let body = self.payload(notification).to_string().into_bytes();
            let request = self
                .client
                .post(self.endpoint.clone())
                .bearer_auth(&self.api_key);
            post::post_json(request, body).await
        })
    }
}
