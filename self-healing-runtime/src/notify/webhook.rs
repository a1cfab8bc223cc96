//! A generic JSON webhook, signed with HMAC-SHA256 so the receiver knows it came from us.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{Notification, Notifier, NotifyConfigError, NotifyError, post};
use crate::event::BoxFuture;

/// The header carrying the signature: `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Self-Healing-Signature";
/// The header naming the notification's kind (`alert`, `digest`).
pub const KIND_HEADER: &str = "X-Self-Healing-Kind";

/// POSTs [`Notification::to_json`] with a [`SIGNATURE_HEADER`].
///
/// A receiver recomputes HMAC-SHA256 over the raw body with the shared secret, compares it in
/// constant time, and may reject old `sent_at_ms` values to stop replays.
#[derive(Clone)]
pub struct SignedWebhook {
    url: reqwest::Url,
    secret: Vec<u8>,
    client: reqwest::Client,
}

impl fmt::Debug for SignedWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedWebhook")
            .field("url", &post::show(&self.url))
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `body`).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 2 * digest.len());
    out.push_str("sha256=");
    for byte in digest.iter() {
        out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
    }
    out
}

impl SignedWebhook {
    /// A channel posting to `url`, signing with `secret`.
    ///
    /// # Errors
    /// If `url` is not an http(s) URL, the secret is shorter than 16 bytes, or the HTTP client
    /// cannot be set up.
    pub fn new(url: &str, secret: impl Into<Vec<u8>>) -> Result<Self, NotifyConfigError> {
        let secret = secret.into();
        if secret.len() < 16 {
            return Err(NotifyConfigError {
                setting: "webhook secret",
                reason: "must be at least 16 bytes".to_owned(),
            });
        }
        Ok(SignedWebhook {
            url: post::parse_url("webhook URL", url)?,
            secret,
            client: post::client().map_err(|reason| NotifyConfigError {
                setting: "http client",
                reason,
            })?,
        })
    }
}

impl Notifier for SignedWebhook {
    fn name(&self) -> &str {
        "webhook"
    }

    fn send<'a>(
        &'a self,
        notification: &'a Notification,
    ) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            let body = notification.to_json().to_string().into_bytes();
            let request = self
                .client
                .post(self.url.clone())
                .header(SIGNATURE_HEADER, signature(&self.secret, &body))
                .header(KIND_HEADER, notification.kind.as_str());
            post::post_json(request, body).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::signature;

    #[test]
    fn rfc_4231_test_case_2() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
