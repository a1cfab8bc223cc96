//! The JSON API under `/platform/system-health/api/`: `events`, `summary`, `patterns`, `sites`,
//! `health`, and the live `stream` (server-sent events).

mod filter;
mod stream;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use self_healing_store::StoreError;
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) use filter::{EventsQuery, ParsedQuery, SEVERITIES};
pub(crate) use stream::stream;

use crate::checklist::checklist;
use crate::health::{current_report, draft_body};
use crate::state::DashboardState;
use crate::summary::{DEFAULT_HOURS, MAX_HOURS, Summary};
use crate::time_fmt;
use crate::views::EventView;

/// A JSON error: `{"error": "…"}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// 503 for a store that could not be queried. The store's message names the database with any
/// password masked; it is shown to authenticated admins only.
pub(crate) fn store_error(e: &StoreError) -> Response {
    tracing::warn!(error = %e, "self-healing dashboard: store query failed");
    error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

/// Events with their advice, when the healer knows some.
pub(crate) fn event_views(
    state: &DashboardState,
    events: &[self_healing_store::EventRecord],
) -> Vec<EventView> {
    events
        .iter()
        .map(|e| {
            let advice = state
                .inner
                .healer
                .as_ref()
                .and_then(|h| h.patterns().advice(e.fingerprint));
            EventView::from_record(e, advice.as_ref())
        })
        .collect()
}

/// `GET api/events`: filters (`source`, `category`, `outcome`, `severity`, `fingerprint`,
/// `since`, `until`), `limit` (default 50, at most 1,000) and `after` (the `next` cursor of the
/// previous page). Newest first.
pub(crate) async fn events(
    State(state): State<DashboardState>,
    Query(q): Query<EventsQuery>,
) -> Response {
    let ParsedQuery {
        filter,
        after,
        limit,
    } = match q.parse(std::time::SystemTime::now()) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match state.inner.store.events(&filter, after, limit).await {
        Ok(page) => Json(json!({
            "events": event_views(&state, &page.events),
            "next": page.next.map(|c| c.to_string()),
        }))
        .into_response(),
        Err(e) => store_error(&e),
    }
}

/// The `hours` parameter of `api/summary`.
#[derive(Debug, Deserialize)]
pub(crate) struct SummaryQuery {
    hours: Option<u32>,
}

/// `GET api/summary?hours=24`: calls by outcome and hour, heal rate per strategy, top failing
/// sources and fingerprints, and the pipeline's counters.
pub(crate) async fn summary(
    State(state): State<DashboardState>,
    Query(q): Query<SummaryQuery>,
) -> Response {
    let hours = q.hours.unwrap_or(DEFAULT_HOURS);
    if !(1..=MAX_HOURS).contains(&hours) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("invalid `hours`: expected 1 to {MAX_HOURS}"),
        );
    }
    let summary = match Summary::load(&state.inner.store, hours).await {
        Ok(s) => s,
        Err(e) => return store_error(&e),
    };
    let mut body = summary.to_json();
    let report = current_report(&state).await;
    body["status"] = draft_body(&state, &report)["status"].clone();
    if let Some(h) = &state.inner.healer {
        let q = h.queue_stats();
        body["queue"] = json!({
            "recorded": q.recorded, "folded": q.folded, "dropped": q.dropped,
            "written": q.written, "lost_to_store": q.lost_to_store, "depth": q.depth,
        });
    }
    let s = state.inner.store.stats();
    body["store"] = json!({
        "backend": state.inner.store.backend().as_str(),
        "buffered": s.buffered, "written": s.written, "folded": s.folded,
        "dropped": s.dropped, "failed_writes": s.failed_writes, "available": !s.unavailable,
    });
    Json(body).into_response()
}

/// `GET api/patterns`: learned statistics per failure family and strategy, with the stored AI
/// diagnosis and the healer's current advice.
pub(crate) async fn patterns(State(state): State<DashboardState>) -> Response {
    let rows = match state.inner.store.patterns(None).await {
        Ok(rows) => rows,
        Err(e) => return store_error(&e),
    };
    let patterns: Vec<Value> = rows
        .iter()
        .map(|p| {
            let stat = &p.row.stat;
            let advice = state
                .inner
                .healer
                .as_ref()
                .and_then(|h| h.patterns().advice(p.row.fingerprint))
                .map(|a| crate::views::AdviceView::from(&a));
            let ai = p.ai_diagnosis.as_deref().map(|d| {
                serde_json::from_str::<Value>(d).unwrap_or_else(|_| Value::String(d.to_owned()))
            });
            json!({
                "fingerprint": p.row.fingerprint.to_hex(),
                "strategy": p.row.strategy,
                "tried": stat.tried,
                "healed": stat.healed,
                "failed": stat.failed,
                "heal_rate": if stat.tried == 0 { 0.0 } else { stat.healed as f64 / stat.tried as f64 },
                "mean_duration_ms": if stat.tried == 0 { 0.0 } else { time_fmt::millis(stat.total_duration) / stat.tried as f64 },
                "first_seen": time_fmt::rfc3339(p.first_seen),
                "last_seen": time_fmt::rfc3339(p.last_seen),
                "ai_diagnosis": ai,
                "advice": advice,
            })
        })
        .collect();
    Json(json!({ "patterns": patterns })).into_response()
}

/// `GET api/sites`: the integration checklist.
pub(crate) async fn sites(State(state): State<DashboardState>) -> Response {
    match state.inner.store.sites().await {
        Ok(stored) => {
            let healer = crate::circuits::healer_of(&state);
            Json(json!({ "sites": checklist(&stored, healer.as_ref()) })).into_response()
        }
        Err(e) => store_error(&e),
    }
}

/// `GET api/health`: this process's latest report in the health-check draft's shape, plus the
/// latest stored result of each check (from every instance).
pub(crate) async fn health(State(state): State<DashboardState>) -> Response {
    let report = current_report(&state).await;
    let mut body = draft_body(&state, &report);
    match state.inner.store.latest_health_checks().await {
        Ok(stored) => {
            body["stored"] = stored
                .iter()
                .map(|s| {
                    json!({
                        "name": s.check.name,
                        "instance": s.instance,
                        "status": s.check.status.as_str(),
                        "time": time_fmt::rfc3339(s.check.time),
                        "latency_ms": time_fmt::millis(s.check.latency),
                        "message": s.check.message,
                    })
                })
                .collect();
        }
        Err(e) => return store_error(&e),
    }
    Json(body).into_response()
}
