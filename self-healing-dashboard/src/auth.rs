//! Who may see the dashboard: the admin token (as a bearer header or through the login cookie),
//! compared in constant time; with no token configured, loopback clients only, and never through
//! a proxy (a request with a forwarding header gets 403). Wrong tokens are limited per client
//! (see [`crate::throttle`]).
//!
//! The login cookie never holds the token: it names a session of this process (see
//! [`crate::session`]), so it expires, ends at logout, opens no other instance, cannot be
//! replayed as a bearer token, and every session ends when the token changes.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use crate::session::{Sessions, hex_decode};
use crate::state::DashboardState;
use crate::throttle::{Client, retry_after_secs};

/// The login cookie's name.
pub(crate) const COOKIE: &str = "self_healing_session";
/// The path the login cookie is sent to.
pub(crate) const COOKIE_PATH: &str = crate::BASE;

type HmacSha256 = Hmac<Sha256>;

/// A secret compared in constant time: only its SHA-256 is kept, so lengths do not leak either.
pub(crate) struct Secret {
    digest: [u8; 32],
}

impl Secret {
    pub(crate) fn new(secret: &[u8]) -> Self {
        Secret {
            digest: sha256(secret),
        }
    }

    /// Whether `presented` is the secret, in time independent of where they differ.
    pub(crate) fn matches(&self, presented: &[u8]) -> bool {
        sha256(presented).ct_eq(&self.digest).into()
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(data));
    out
}

/// The admin token: checks bearer tokens, issues and checks login cookies.
pub(crate) struct AdminAuth {
    token: Secret,
    sessions: Sessions,
}

impl AdminAuth {
    pub(crate) fn new(token: &[u8]) -> Self {
        AdminAuth {
            token: Secret::new(token),
            sessions: Sessions::new(token),
        }
    }

    pub(crate) fn token_matches(&self, presented: &[u8]) -> bool {
        self.token.matches(presented)
    }

    /// A new session's cookie value, valid until `now + ttl` unless logged out.
    pub(crate) fn session(&self, now: SystemTime, ttl: Duration) -> String {
        self.sessions.issue(now, ttl)
    }

    /// Whether `value` is the cookie of a live, unexpired session of this process.
    pub(crate) fn session_valid(&self, value: &str, now: SystemTime) -> bool {
        self.sessions.valid(value, now)
    }

    /// Ends the session of the cookie `value`.
    pub(crate) fn revoke(&self, value: &str) {
        self.sessions.revoke(value);
    }
}

/// The anti-CSRF token of the dashboard's forms (the circuit buttons): an HMAC of the session
/// they were rendered for, so a page of another site can neither read nor guess it.
///
/// With an admin token the key is the token (a token per login cookie, valid as long as the
/// cookie's session); without one, a random key of this process over the fixed session
/// `loopback`.
pub(crate) struct Csrf {
    mac: HmacSha256,
}

/// The session of a dashboard without an admin token (loopback clients only).
const LOOPBACK_SESSION: &str = "loopback";

impl Csrf {
    pub(crate) fn new(admin_token: Option<&[u8]>) -> Self {
        let key: Vec<u8> = match admin_token {
            Some(token) => token.to_vec(),
            None => {
                let mut key = vec![0u8; 32];
                crate::random::fill(&mut key);
                key
            }
        };
        Csrf {
            // HMAC takes keys of any length.
            mac: HmacSha256::new_from_slice(&key).unwrap_or_else(|_| unreachable!()),
        }
    }

    fn tag(&self, session: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(b"self-healing dashboard csrf v1|");
        mac.update(session.as_bytes());
        mac
    }

    /// The token of the forms on a page rendered for the request with these headers; `None`
    /// when the request has no session (bearer clients need none).
    pub(crate) fn token(&self, state: &DashboardState, headers: &HeaderMap) -> Option<String> {
        let session = session_of(state, headers)?;
        let tag = self.tag(session).finalize().into_bytes();
        Some(tag.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Whether `presented` is the token of the request's session (in constant time).
    pub(crate) fn check(
        &self,
        state: &DashboardState,
        headers: &HeaderMap,
        presented: &str,
    ) -> bool {
        match (session_of(state, headers), hex_decode(presented.trim())) {
            (Some(session), Some(tag)) => self.tag(session).verify_slice(&tag).is_ok(),
            _ => false,
        }
    }
}

/// What a form's token is bound to: the login cookie, or `loopback` without an admin token.
fn session_of<'h>(state: &DashboardState, headers: &'h HeaderMap) -> Option<&'h str> {
    match state.inner.admin {
        Some(_) => cookie(headers, COOKIE),
        None => Some(LOOPBACK_SESSION),
    }
}

/// Whether the request came with a valid bearer token (not a browser's ambient credentials, so
/// no CSRF token is needed).
pub(crate) fn by_bearer(state: &DashboardState, headers: &HeaderMap) -> bool {
    state
        .inner
        .admin
        .as_ref()
        .is_some_and(|admin| bearer(headers).is_some_and(|t| admin.token_matches(t)))
}

/// Refuses a state-changing request that a browser marks as coming from another site: a
/// `Sec-Fetch-Site` other than `same-origin`, or an `Origin` whose host is not the `Host` (or
/// `X-Forwarded-Host`) of the request. Requests with neither header (not from a browser) pass:
/// the form token or the bearer token protects them. `Origin: null` passes only with
/// `Sec-Fetch-Site: same-origin` (a form of the page under `Referrer-Policy: no-referrer`). The
/// error is a one-line reason.
///
/// Exported so that routes of your own next to the dashboard (an admin API, say) refuse
/// cross-site requests the same way:
///
/// ```
/// use axum::http::HeaderMap;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("host", "127.0.0.1:8080".parse().unwrap());
/// headers.insert("origin", "http://127.0.0.1:8080".parse().unwrap());
/// assert!(self_healing_dashboard::same_origin(&headers).is_ok());
/// headers.insert("origin", "https://evil.example".parse().unwrap());
/// assert!(self_healing_dashboard::same_origin(&headers).is_err());
/// ```
pub fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // Under `Referrer-Policy: no-referrer` (the dashboard's), browsers send `Origin: null` with
    // every form POST, same-origin ones included; `Sec-Fetch-Site: same-origin`, which no page
    // can set, vouches for those.
    if text("origin").is_some_and(|o| o.trim() == "null")
        && text("sec-fetch-site").is_some_and(|s| s.eq_ignore_ascii_case("same-origin"))
    {
        return Ok(());
    }
    if let Some(site) = text("sec-fetch-site")
        && !site.eq_ignore_ascii_case("same-origin")
    {
        return Err(format!(
            "cross-site request refused (Sec-Fetch-Site: {site})"
        ));
    }
    if let Some(origin) = text("origin") {
        let host = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let matches = |h: Option<&str>| {
            h.zip(host)
                .is_some_and(|(h, o)| h.trim().eq_ignore_ascii_case(o.trim_end_matches('/')))
        };
        if !(matches(text("host")) || matches(text("x-forwarded-host"))) {
            return Err(format!("cross-origin request refused (Origin: {origin})"));
        }
    }
    Ok(())
}

/// The token of an `Authorization: Bearer …` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

/// The value of the cookie `name`, if the request sends it.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// How a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// It may proceed.
    Granted,
    /// No valid token or cookie.
    Denied,
    /// No token is configured and the request is not from a loopback client to a loopback
    /// host name.
    NotLoopback,
    /// No token is configured and the request carries this forwarding header: it came through
    /// a proxy, so its loopback peer says nothing about the real client.
    Proxied(&'static str),
    /// The client sent too many wrong tokens lately: it may try again after this long.
    Throttled(Duration),
}

/// The headers a reverse proxy adds. A loopback peer with one of them is a proxy on the same
/// host relaying someone else (nginx's default `proxy_pass` even sends `Host: 127.0.0.1:PORT`),
/// so a dashboard without a token refuses them rather than trusting the proxy's address.
const FORWARDING_HEADERS: [&str; 5] = [
    "forwarded",
    "x-forwarded-for",
    "x-real-ip",
    "x-forwarded-host",
    "x-forwarded-proto",
];

/// The first forwarding header the request carries, if any.
fn forwarded_by(headers: &HeaderMap) -> Option<&'static str> {
    FORWARDING_HEADERS
        .into_iter()
        .find(|name| headers.contains_key(*name))
}

/// Decides whether the request may see the dashboard.
pub(crate) fn access(state: &DashboardState, req: &Request) -> Access {
    let headers = req.headers();
    match &state.inner.admin {
        Some(admin) => {
            // A session cookie cannot be guessed (its HMAC is checked first), so it skips the
            // throttle: a logged-in browser keeps working while its address is locked out.
            if cookie(headers, COOKIE).is_some_and(|v| admin.session_valid(v, SystemTime::now())) {
                return Access::Granted;
            }
            let Some(presented) = bearer(headers) else {
                return Access::Denied;
            };
            let client = Client::of(req.extensions());
            match state
                .inner
                .throttle
                .attempt(client, Instant::now(), || admin.token_matches(presented))
            {
                Ok(true) => Access::Granted,
                Ok(false) => Access::Denied,
                Err(wait) => Access::Throttled(wait),
            }
        }
        None => {
            if let Some(name) = forwarded_by(headers) {
                return Access::Proxied(name);
            }
            let peer_is_loopback = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .is_some_and(|ConnectInfo(addr)| addr.ip().is_loopback());
            if peer_is_loopback && host_is_loopback(headers) {
                Access::Granted
            } else {
                Access::NotLoopback
            }
        }
    }
}

/// Whether the `Host` header names a loopback host (against DNS rebinding); a request without
/// one (HTTP/1.0) passes.
fn host_is_loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Middleware of every dashboard and API route: 401 unless the dashboard's rules grant access
/// (the admin token as a bearer token or a login session; without a token, loopback clients
/// naming a loopback host and not behind a proxy), with wrong tokens limited per client (429).
/// Browsers asking for a page get the login form with the 401.
///
/// Exported to guard routes of your own with the same rules:
///
/// ```no_run
/// use axum::{Router, middleware::from_fn_with_state, routing::post};
/// use self_healing_dashboard::{DashboardState, require_admin};
///
/// fn admin_api(state: DashboardState) -> Router {
///     Router::new()
///         .route("/api/reindex", post(|| async { "started" }))
///         .route_layer(from_fn_with_state(state, require_admin))
/// }
/// ```
pub async fn require_admin(
    State(state): State<DashboardState>,
    req: Request,
    next: Next,
) -> Response {
    match access(&state, &req) {
        Access::Granted => next.run(req).await,
        denied => unauthorized(&req, denied),
    }
}

fn unauthorized(req: &Request, why: Access) -> Response {
    let (status, message) = match why {
        Access::NotLoopback => (
            StatusCode::UNAUTHORIZED,
            "no admin token is configured, so the dashboard only answers loopback clients: \
             set SELF_HEALING_ADMIN_TOKEN to reach it from elsewhere"
                .to_owned(),
        ),
        Access::Proxied(name) => (
            StatusCode::FORBIDDEN,
            format!(
                "this request came through a proxy ({name} header) and no admin token is \
                 configured: set SELF_HEALING_ADMIN_TOKEN to serve the dashboard behind a proxy"
            ),
        ),
        Access::Throttled(wait) => (
            StatusCode::TOO_MANY_REQUESTS,
            throttled_message(wait),
        ),
        _ => (
            StatusCode::UNAUTHORIZED,
            "authentication required: send `Authorization: Bearer <SELF_HEALING_ADMIN_TOKEN>` or log in"
                .to_owned(),
        ),
    };
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let mut response = if wants_html && why == Access::Denied {
        crate::pages::login_page(StatusCode::UNAUTHORIZED, None)
    } else if wants_html {
        crate::pages::error_page(status, &message)
    } else {
        crate::api::error(status, &message)
    };
    if let Access::Throttled(wait) = why {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after_secs(wait).into());
    }
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"self-healing\""),
        );
    }
    response
}

/// What a client locked out by the throttle is told.
pub(crate) fn throttled_message(wait: Duration) -> String {
    format!(
        "too many wrong tokens from your address: try again in {} s",
        retry_after_secs(wait)
    )
}

/// The `Set-Cookie` value of a new login.
pub(crate) fn login_cookie(state: &DashboardState, admin: &AdminAuth, secure: bool) -> String {
    let ttl = state.inner.session_ttl;
    let value = admin.session(SystemTime::now(), ttl);
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={value}; Path={COOKIE_PATH}; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        ttl.as_secs()
    )
}

/// The `Set-Cookie` value that ends a login.
pub(crate) fn logout_cookie() -> String {
    format!("{COOKIE}=; Path={COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Strict")
}

/// `401`, with `WWW-Authenticate`, for a wrong or missing secret.
pub(crate) fn bearer_challenge(message: &'static str) -> Response {
    let mut r = crate::api::error(StatusCode::UNAUTHORIZED, message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"self-healing\""),
    );
    r.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_value_only() {
        let s = Secret::new(b"cron-secret-0123456789");
        assert!(s.matches(b"cron-secret-0123456789"));
        assert!(!s.matches(b"cron-secret-012345678"));
        assert!(!s.matches(b""));
    }

    #[test]
    fn bearer_and_cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer(&h), Some(&b"abc"[..]));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; self_healing_session=x.y"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("x.y"));
    }

    #[test]
    fn loopback_hosts() {
        let host = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static(v));
            host_is_loopback(&h)
        };
        assert!(host("localhost:8080"));
        assert!(host("127.0.0.1:8080"));
        assert!(host("[::1]:8080"));
        assert!(!host("evil.example:8080"));
        assert!(!host("192.168.1.2"));
    }
}
