//! The CRM's HTTP API (axum), mounted next to the dashboard: its handlers call the wrapped
//! actions, so healing happens under real requests too.
//!
//! Every route is guarded by the dashboard's own admin rules ([`require_admin`]): with an admin
//! token (`SELF_HEALING_ADMIN_TOKEN`) it needs `Authorization: Bearer <token>` (or the
//! dashboard's login session), wrong tokens limited per client; without one it only answers
//! loopback clients that name a loopback host and are not behind a proxy. A request a browser marks as coming from
//! another origin is refused (403), and a `POST` must say `Content-Type: application/json`
//! (415 otherwise): a page of another site can neither read the answers nor send a form or a
//! `text/plain` "simple request" that skips the browser's preflight.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use self_healing::dashboard::{DashboardState, require_admin, same_origin};
use serde_json::{Value, json};

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
/// the dashboard's [`require_admin`] (`dashboard`: the state of the dashboard they sit next to)
/// and then [`origin_and_json`].
pub(crate) fn router(crm: Arc<Crm>, dashboard: DashboardState) -> Router {
    Router::new()
        .route("/api/onboarding/invite", post(invite))
        .route("/api/onboarding/session/{token}", get(session))
        .route("/api/test-email", post(test_email))
        .route("/api/seed-templates", post(seed_templates))
        // Layers run outermost first: authentication (401, 429), then origin and body.
        .route_layer(from_fn(origin_and_json))
        .route_layer(from_fn_with_state(dashboard, require_admin))
        .with_state(crm)
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Same origin only (403), and a JSON body for `POST` (415).
async fn origin_and_json(req: Request, next: Next) -> Response {
    let headers = req.headers();
    if let Err(why) = same_origin(headers) {
        return refuse(StatusCode::FORBIDDEN, &why);
    }
    if req.method() == Method::POST && !is_json(headers) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with `Content-Type: application/json`",
        );
    }
    next.run(req).await
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
    let token = crm::start_onboarding(&crm, email)
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
    fn addresses() {
        assert!(is_email("lead@example.com"));
        assert!(!is_email("a\",\"bcc\":\"x@evil"));
        assert!(!is_email("a b@example.com"));
        assert!(!is_email("nobody"));
    }
}
