//! An HTTP error status as an error that keeps what the healer needs (feature `reqwest`).
//!
//! `reqwest::Response::error_for_status` drops the headers and the body: a 429's `Retry-After`
//! is lost, and so is the server's word on what went wrong. [`error_for_status`] keeps the
//! status, the `Retry-After` (seconds or HTTP-date) and the start of the body, and the
//! diagnosis recognises the error anywhere in a `source()` chain:
//!
//! | status | class | waits the `Retry-After` |
//! |---|---|---|
//! | 429 | `RateLimited` | yes |
//! | 503 | `Transient` | yes |
//! | other 5xx | `Transient` | yes, when there is one |
//! | 401 | `AuthExpired` | |
//! | 408 | `Timeout` | |
//! | other 4xx | `Permanent` | |
//!
//! ```no_run
//! use self_healing_runtime::http_status::{HttpStatusError, error_for_status};
//!
//! #[derive(Debug, thiserror::Error)]
//! enum ApiError {
//!     #[error(transparent)]
//!     Status(#[from] HttpStatusError),
//!     #[error(transparent)]
//!     Http(#[from] reqwest::Error),
//!     #[error(transparent)]
//!     Rejected(#[from] self_healing_runtime::Rejected),
//! }
//!
//! async fn fetch_invoice(client: &reqwest::Client, id: u64) -> Result<String, ApiError> {
//!     let response = client
//!         .get(format!("https://billing.example/invoices/{id}"))
//!         .send()
//!         .await?;
//!     Ok(error_for_status(response).await?.text().await?)
//! }
//! ```

use std::fmt;

use reqwest::{Response, StatusCode, header};

use crate::diagnosis::RetryAfter;

/// How much of an error response's body [`HttpStatusError`] keeps, in bytes.
pub const BODY_EXCERPT_BYTES: usize = 256;

/// Turns a client or server error (4xx, 5xx) into an [`HttpStatusError`] that keeps its status,
/// its `Retry-After` and the first [`BODY_EXCERPT_BYTES`] of its body; passes any other response
/// through, as `reqwest::Response::error_for_status` does.
///
/// The body of an error response is read up to the excerpt and the rest dropped with the
/// connection; a body that fails half-way keeps what arrived.
pub async fn error_for_status(response: Response) -> Result<Response, HttpStatusError> {
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(RetryAfter::parse);
    let body = excerpt(response).await;
    Err(HttpStatusError {
        status,
        retry_after,
        body,
    })
}

/// Reads the body up to [`BODY_EXCERPT_BYTES`], cut at a character boundary.
async fn excerpt(mut response: Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < BODY_EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(BODY_EXCERPT_BYTES);
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    // A multi-byte character cut by the limit reads as U+FFFD: drop it.
    if bytes.len() == BODY_EXCERPT_BYTES && text.ends_with('\u{FFFD}') {
        text.pop();
    }
    text.trim().to_owned()
}

/// A response whose status was not a success, with its `Retry-After` and the start of its body.
///
/// Made by [`error_for_status`], or by [`HttpStatusError::new`] for another HTTP client (and
/// for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpStatusError {
    status: StatusCode,
    retry_after: Option<RetryAfter>,
    body: String,
}

impl HttpStatusError {
    /// An error for `status`, with the response's `Retry-After` (see [`RetryAfter::parse`]) and
    /// body; the body is cut to [`BODY_EXCERPT_BYTES`].
    pub fn new(status: StatusCode, retry_after: Option<RetryAfter>, body: &str) -> Self {
        let mut end = body.len().min(BODY_EXCERPT_BYTES);
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        HttpStatusError {
            status,
            retry_after,
            body: body[..end].trim().to_owned(),
        }
    }

    /// The response's status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response's `Retry-After`, when it had a valid one.
    pub fn retry_after(&self) -> Option<RetryAfter> {
        self.retry_after
    }

    /// The start of the response's body (at most [`BODY_EXCERPT_BYTES`]), trimmed.
    pub fn body_excerpt(&self) -> &str {
        &self.body
    }
}

impl fmt::Display for HttpStatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if !self.body.is_empty() {
            write!(f, ": {}", self.body)?;
        }
        Ok(())
    }
}

impl std::error::Error for HttpStatusError {}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_body_is_cut_at_a_character_boundary() {
        let body = "é".repeat(BODY_EXCERPT_BYTES);
        let e = HttpStatusError::new(StatusCode::BAD_GATEWAY, None, &body);
        assert!(e.body_excerpt().len() <= BODY_EXCERPT_BYTES);
        assert!(e.body_excerpt().chars().all(|c| c == 'é'));
    }

    #[test]
    fn display_shows_the_status_and_the_body() {
        let e = HttpStatusError::new(
            StatusCode::TOO_MANY_REQUESTS,
            Some(RetryAfter::After(Duration::from_secs(2))),
            "  slow down\n",
        );
        assert_eq!(e.to_string(), "HTTP 429 Too Many Requests: slow down");
        let e = HttpStatusError::new(StatusCode::NOT_FOUND, None, "");
        assert_eq!(e.to_string(), "HTTP 404 Not Found");
    }
}
