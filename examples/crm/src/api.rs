//! The CRM's HTTP API (axum), mounted next to the dashboard: its handlers call the wrapped
//! actions, so healing happens under real requests too.
//!
//! Every route is guarded as the dashboard's admin routes are: with an admin token
//! (`SELF_HEALING_ADMIN_TOKEN`) it needs `Authorization: Bearer <token>`; without one it only
//! answers loopback clients that name a loopback host. A request a browser marks as coming from
//! another origin is refused (403), and a `POST` must say `Content-Type: application/json`
//! (415 otherwise): a page of another site can neither read the answers nor send a form or a
//! `text/plain` "simple request" that skips the browser's preflight.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::crm::{self, Crm};
use crate::db::schema::onboarding_sessions;
use crate::db::with_conn;
use crate::error::CrmError;

type Reply = Result<Json<Value>, (StatusCode, String)>;

fn fail(e: &CrmError) -> (StatusCode, String) {
    (StatusCode::BAD_GATEWAY, e.to_string())
}

/// `POST /api/onboarding/invite` (body: `{"email": "…"}`), `GET /api/onboarding/session/{token}`,
/// `POST /api/test-email` (body: `{"to": "…"}`), `POST /api/seed-templates` (body: `{}`), behind
/// [`guard`]. `admin_token`: the dashboard's admin token, if it has one.
pub(crate) fn router(crm: Arc<Crm>, admin_token: Option<&str>) -> Router {
    let guard_state = Arc::new(Guard {
        token: admin_token.map(|t| t.as_bytes().to_vec()),
    });
    Router::new()
        .route("/api/onboarding/invite", post(invite))
        .route("/api/onboarding/session/{token}", get(session))
        .route("/api/test-email", post(test_email))
        .route("/api/seed-templates", post(seed_templates))
        .route_layer(from_fn_with_state(guard_state, guard))
        .with_state(crm)
}

/// Who may call the API.
struct Guard {
    /// The admin token, when one is configured.
    token: Option<Vec<u8>>,
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let mut r = (status, Json(json!({ "error": message }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"self-healing\""),
        );
    }
    r
}

/// The API's middleware: same origin (403), then authentication (401), then a JSON body for
/// `POST` (415).
async fn guard(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    if let Err(why) = same_origin(headers) {
        return refuse(StatusCode::FORBIDDEN, &why);
    }
    match &g.token {
        Some(token) => {
            let presented = bearer(headers).unwrap_or_default();
            // `ct_eq` on slices of different lengths is false without comparing: only the
            // length can leak, and tokens are at least 16 bytes of random anyway.
            if !bool::from(presented.ct_eq(token.as_slice())) {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "authentication required: send `Authorization: Bearer <SELF_HEALING_ADMIN_TOKEN>`",
                );
            }
        }
        None => {
            let peer_is_loopback = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .is_some_and(|ConnectInfo(addr)| addr.ip().is_loopback());
            if !(peer_is_loopback && host_is_loopback(headers)) {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "no admin token is configured, so the CRM API only answers loopback clients: \
                     set SELF_HEALING_ADMIN_TOKEN to reach it from elsewhere",
                );
            }
        }
    }
    if req.method() == Method::POST && !is_json(headers) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with `Content-Type: application/json`",
        );
    }
    next.run(req).await
}

/// Refuses what a browser marks as sent by another site: a `Sec-Fetch-Site` other than
/// `same-origin` (or `none`, typed by the user), or an `Origin` that is not this `Host`.
/// Requests with neither header do not come from a page: authentication protects them.
fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site")
        && !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none"))
    {
        return Err(format!(
            "cross-site request refused (Sec-Fetch-Site: {site})"
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .map(|h| h.trim_end_matches('/'));
        let same = host
            .zip(text("host"))
            .is_some_and(|(o, h)| o.eq_ignore_ascii_case(h.trim()));
        if !same {
            return Err(format!("cross-origin request refused (Origin: {origin})"));
        }
    }
    Ok(())
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
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

/// `Content-Type: application/json`, parameters (`; charset=utf-8`) allowed.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The string field `name` of a JSON body, as an email address.
fn email_field(body: &Value, name: &str) -> Result<String, (StatusCode, String)> {
    let value = body
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| {
            (
                StatusCode::BAD_REQUEST,
                format!("expected a JSON object with a string field `{name}`"),
            )
        })?
        .trim();
    if !is_email(value) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("`{name}` is not an email address"),
        ));
    }
    Ok(value.to_owned())
}

/// A plain `local@domain` address: one `@`, both sides non-empty, no spaces, quotes, angle
/// brackets, separators or control characters, at most 254 bytes.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && s.chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && !"\"'<>,;:\\()[]`".contains(c))
}

async fn invite(State(crm): State<Arc<Crm>>, Json(body): Json<Value>) -> Reply {
    let email = email_field(&body, "email")?;
    let token = crm::start_onboarding(&crm, email, crm.request_id())
        .await
        .map_err(|e| fail(&e))?;
    Ok(Json(json!({ "token": token })))
}

async fn session(State(crm): State<Arc<Crm>>, Path(token): Path<String>) -> Reply {
    match session_row(&crm, &token).await.map_err(|e| fail(&e))? {
        Some((email, status, responses)) => Ok(Json(json!({
            "token": token,
            "email": email,
            "status": status,
            "responses": serde_json::from_str::<Value>(&responses).unwrap_or(Value::Null),
        }))),
        None => Err((StatusCode::NOT_FOUND, "no such session".to_owned())),
    }
}

/// (email, status, responses) of one onboarding session.
async fn session_row(crm: &Crm, token: &str) -> Result<Option<(String, String, String)>, CrmError> {
    if crm.db.conn().await.is_err() {
        crm.db.rebuild().await?;
    }
    Ok(with_conn!(crm.db, |c| {
        onboarding_sessions::table
            .filter(onboarding_sessions::token.eq(token))
            .select((
                onboarding_sessions::email,
                onboarding_sessions::status,
                onboarding_sessions::responses,
            ))
            .first(c)
            .await
            .optional()?
    }))
}

async fn test_email(State(crm): State<Arc<Crm>>, Json(body): Json<Value>) -> Reply {
    let to = email_field(&body, "to")?;
    crm::send_test_email(&crm, to.clone())
        .await
        .map_err(|e| fail(&e))?;
    Ok(Json(json!({ "sent": to })))
}

async fn seed_templates(State(crm): State<Arc<Crm>>) -> Reply {
    let inserted = crm::seed_templates(&crm).await.map_err(|e| fail(&e))?;
    Ok(Json(json!({ "inserted": inserted })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_origins() {
        assert!(is_email("lead@example.com"));
        assert!(!is_email("a\",\"bcc\":\"x@evil"));
        assert!(!is_email("a b@example.com"));
        assert!(!is_email("nobody"));
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3000"));
        assert!(same_origin(&h).is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:3000"),
        );
        assert!(same_origin(&h).is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(same_origin(&h).is_err());
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(same_origin(&h).is_err());
    }
}
