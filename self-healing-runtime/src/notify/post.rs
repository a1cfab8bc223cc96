//! One HTTP POST of a JSON body, and what its outcome means for retrying.

use std::time::Duration;

use super::NotifyError;

/// The shared client of the HTTP channels.
pub(crate) fn client() -> Result<reqwest::Client, String> {
    super::http_client::http_client(Duration::from_secs(10))
}

/// Checks a channel URL: http or https, with a host. `setting` names it in the error.
pub(crate) fn parse_url(
    setting: &'static str,
    url: &str,
) -> Result<reqwest::Url, super::NotifyConfigError> {
    let invalid = |reason: String| super::NotifyConfigError { setting, reason };
    // The URL may hold a secret (Slack's does): errors show only its scheme and host.
    let parsed =
        reqwest::Url::parse(url.trim()).map_err(|e| invalid(format!("not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(invalid(
            "must be an http or https URL with a host".to_owned(),
        ));
    }
    Ok(parsed)
}

/// The scheme and host of a URL, safe to show.
pub(crate) fn show(url: &reqwest::Url) -> String {
    format!("{}://{}/…", url.scheme(), url.host_str().unwrap_or("?"))
}

/// POSTs `body`; 2xx is delivered, 408/429/5xx and transport errors may pass, other statuses do
/// not.
pub(crate) async fn post_json(
    request: reqwest::RequestBuilder,
    body: Vec<u8>,
) -> Result<(), NotifyError> {
    let response = request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| NotifyError::retryable(e.without_url().to_string()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let message = format!("HTTP {status}");
    if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        Err(NotifyError::retryable(message))
    } else {
        Err(NotifyError::permanent(message))
    }
}
