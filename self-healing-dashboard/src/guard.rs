//! What every state-changing POST of the dashboard checks after the admin: a same-origin
//! request, and the page's form token bound to the session unless the request carries the
//! bearer token (ambient browser credentials need the token; a bearer client does not).
//!
//! The page is served with `Referrer-Policy: no-referrer`, under which browsers send
//! `Origin: null` with every form POST, same-origin ones included (the Fetch standard's
//! "serializing a request origin"); [`same_origin`] accepts those when the browser also says
//! `Sec-Fetch-Site: same-origin` (a header no page can set).

use axum::http::{HeaderMap, StatusCode};

use crate::auth::{by_bearer, same_origin};
use crate::state::DashboardState;

/// Why a POST is refused, for the error page or the JSON error.
pub(crate) type Refusal = (StatusCode, String);

/// `Ok` when the request may change something: same origin, and the bearer token or the form
/// token `presented`; `403` with a one-line reason otherwise.
pub(crate) fn check_post(
    state: &DashboardState,
    headers: &HeaderMap,
    presented: &str,
) -> Result<(), Refusal> {
    if let Err(why) = same_origin(headers) {
        return Err((StatusCode::FORBIDDEN, why));
    }
    if !by_bearer(state, headers) && !state.inner.csrf.check(state, headers, presented) {
        return Err((
            StatusCode::FORBIDDEN,
            "the form's token is missing or stale (the dashboard restarted, or you logged in again): reload the page and try again".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_form_of_this_page_passes_under_no_referrer() {
        let host = ("host", "127.0.0.1:8080");
        // Chromium's form POST under `Referrer-Policy: no-referrer`.
        assert!(
            same_origin(&headers(&[
                host,
                ("origin", "null"),
                ("sec-fetch-site", "same-origin")
            ]))
            .is_ok()
        );
        // A null origin from elsewhere (a sandboxed frame, a data: URL) or unvouched for.
        assert!(
            same_origin(&headers(&[
                host,
                ("origin", "null"),
                ("sec-fetch-site", "cross-site")
            ]))
            .is_err()
        );
        assert!(same_origin(&headers(&[host, ("origin", "null")])).is_err());
        assert!(
            same_origin(&headers(&[
                host,
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "same-origin")
            ]))
            .is_err()
        );
        assert!(same_origin(&headers(&[host, ("origin", "http://127.0.0.1:8080")])).is_ok());
        assert!(same_origin(&headers(&[host])).is_ok());
    }
}
