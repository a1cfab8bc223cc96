//! The CRM's HTTP API (axum), mounted next to the dashboard: its handlers call the wrapped
//! actions, so healing happens under real requests too.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::crm::{self, Crm};
use crate::db::schema::onboarding_sessions;
use crate::db::with_conn;
use crate::error::CrmError;

type Reply = Result<Json<Value>, (StatusCode, String)>;

fn fail(e: &CrmError) -> (StatusCode, String) {
    (StatusCode::BAD_GATEWAY, e.to_string())
}

/// `POST /api/onboarding/invite` (body: the client's email), `GET /api/onboarding/session/{token}`,
/// `POST /api/test-email` (body: the recipient), `POST /api/seed-templates`.
pub(crate) fn router(crm: Arc<Crm>) -> Router {
    Router::new()
        .route("/api/onboarding/invite", post(invite))
        .route("/api/onboarding/session/{token}", get(session))
        .route("/api/test-email", post(test_email))
        .route("/api/seed-templates", post(seed_templates))
        .with_state(crm)
}

async fn invite(State(crm): State<Arc<Crm>>, email: String) -> Reply {
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

async fn test_email(State(crm): State<Arc<Crm>>, to: String) -> Reply {
    crm::send_test_email(&crm, to.clone())
        .await
        .map_err(|e| fail(&e))?;
    Ok(Json(json!({ "sent": to })))
}

async fn seed_templates(State(crm): State<Arc<Crm>>) -> Reply {
    let inserted = crm::seed_templates(&crm).await.map_err(|e| fail(&e))?;
    Ok(Json(json!({ "inserted": inserted })))
}
