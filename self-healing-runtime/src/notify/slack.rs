//! Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat, Discord's `/slack`).

use std::fmt;

use serde_json::json;

use super::{Notification, Notifier, NotifyConfigError, NotifyError, post};
use crate::event::BoxFuture;

/// Posts `{"text": …, "blocks": […]}` to an incoming-webhook URL.
///
/// The URL is a secret (whoever has it can post): it never shows in logs or errors.
#[derive(Clone)]
pub struct SlackWebhook {
    url: reqwest::Url,
    client: reqwest::Client,
}

impl fmt::Debug for SlackWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackWebhook")
            .field("url", &post::show(&self.url))
            .finish()
    }
}

impl SlackWebhook {
    /// A channel posting to `url`.
    ///
    /// # Errors
    /// If `url` is not an http(s) URL, or the HTTP client cannot be set up.
    pub fn new(url: &str) -> Result<Self, NotifyConfigError> {
        Ok(SlackWebhook {
            url: post::parse_url("slack webhook URL", url)?,
            client: post::client().map_err(|reason| NotifyConfigError {
                setting: "http client",
                reason,
            })?,
        })
    }

    /// The message Slack gets. Text from errors is escaped, so a message holding `<!channel>`
    /// cannot ping anyone.
    pub fn payload(notification: &Notification) -> serde_json::Value {
        let n = notification;
        let title = escape(&n.title());
        let details = format!(
            "*{title}*\n`{}`\nclass `{}` · severity `{}` · outcome `{}` · strategy `{}` · {} call{} · fingerprint `{}` · {}",
            escape(&n.message).replace('`', "'"),
            n.class,
            n.severity,
            n.outcome,
            escape(n.strategy.as_deref().unwrap_or("none")),
            n.count,
            if n.count == 1 { "" } else { "s" },
            n.fingerprint,
            escape(&n.instance),
        );
        json!({
            "text": title,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": details}}]
        })
    }
}

/// Slack's escaping of `&`, `<` and `>` (the characters of links and mentions).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Notifier for SlackWebhook {
    fn name(&self) -> &str {
        "slack"
    }

    fn send<'a>(
        &'a self,
        notification: &'a Notification,
    ) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            let body = Self::payload(notification).to_string().into_bytes();
            post::post_json(self.client.post(self.url.clone()), body).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn mentions_in_error_text_are_escaped() {
        assert_eq!(
            escape("<!channel> & <@U123>"),
            "&lt;!channel&gt; &amp; &lt;@U123&gt;"
        );
    }
}
