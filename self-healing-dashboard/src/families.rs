//! The failure-families view: events grouped by fingerprint as error trackers show them, with
//! the learned strategy, and the resolve / ignore / reopen actions (a form on the page, and a
//! JSON route).
//!
//! A family is `open` until someone resolves or ignores it; a resolved family seen again after
//! its `resolved_at` is `regressed` (open again); an ignored one stays ignored.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use self_healing_runtime::diagnosis::Fingerprint;
use self_healing_store::{EventFilter, FamilyRecord, FamilyStatus};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::circuits::SteerForm;
use crate::state::DashboardState;
use crate::time_fmt;

/// Families the page shows, and `api/families` returns by default.
pub(crate) const PAGE_FAMILIES: usize = 50;

/// Who the dashboard's decisions are recorded as.
const BY: &str = "dashboard";

/// One failure family, as the page and `api/families` show it. Text is shown as text: the page
/// escapes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct FamilyView {
    /// 16 hex digits.
    pub(crate) fingerprint: String,
    /// `open`, `regressed`, `resolved` or `ignored`.
    pub(crate) state: &'static str,
    /// The stored decision: `open`, `resolved` or `ignored`.
    pub(crate) status: &'static str,
    /// Calls in all its events.
    pub(crate) count: u64,
    /// RFC 3339.
    pub(crate) first_seen: String,
    /// RFC 3339.
    pub(crate) last_seen: String,
    pub(crate) sources: Vec<String>,
    pub(crate) class: String,
    /// The latest event's message.
    pub(crate) message: String,
    /// The learned strategy, with its tries and heals on this family.
    pub(crate) strategy: Option<String>,
    pub(crate) tried: u64,
    pub(crate) healed: u64,
    /// `healed / tried`; `null` when nothing was tried.
    pub(crate) heal_rate: Option<f64>,
    /// When it was resolved or ignored (RFC 3339).
    pub(crate) resolved_at: Option<String>,
    pub(crate) changed_by: Option<String>,
}

impl From<&FamilyRecord> for FamilyView {
    fn from(f: &FamilyRecord) -> Self {
        let learned = f.learned.as_ref();
        FamilyView {
            fingerprint: f.fingerprint.to_hex(),
            state: f.state(),
            status: f.status.as_str(),
            count: f.count,
            first_seen: time_fmt::rfc3339(f.first_seen),
            last_seen: time_fmt::rfc3339(f.last_seen),
            sources: f.sources.clone(),
            class: f.class.clone(),
            message: f.message.clone(),
            strategy: learned.map(|l| l.strategy.clone()),
            tried: learned.map_or(0, |l| l.tried),
            healed: learned.map_or(0, |l| l.healed),
            heal_rate: learned.and_then(|l| l.heal_rate()),
            resolved_at: f.resolved_at.map(time_fmt::rfc3339),
            changed_by: f.changed_by.clone(),
        }
    }
}

/// A family's button: a form posting to `path`.
pub(crate) struct FamilyAction {
    pub(crate) label: &'static str,
    pub(crate) path: String,
}

impl FamilyView {
    /// The first seen time for people.
    pub(crate) fn first_label(&self) -> String {
        time_fmt::label_of_rfc3339(&self.first_seen)
    }

    /// The last seen time for people.
    pub(crate) fn last_label(&self) -> String {
        time_fmt::label_of_rfc3339(&self.last_seen)
    }

    /// When it was resolved or ignored, for people.
    pub(crate) fn resolved_label(&self) -> Option<String> {
        self.resolved_at.as_deref().map(time_fmt::label_of_rfc3339)
    }

    /// The learned strategy, or `—`.
    pub(crate) fn strategy_label(&self) -> &str {
        self.strategy.as_deref().unwrap_or("—")
    }

    /// The heal rate as a percentage with its counts (`80% (4/5)`), or `—` when nothing was
    /// tried.
    pub(crate) fn heal_rate_label(&self) -> String {
        match self.heal_rate {
            Some(r) => format!("{} ({}/{})", time_fmt::percent(r), self.healed, self.tried),
            None => "—".to_owned(),
        }
    }

    /// The sources, comma-separated.
    pub(crate) fn sources_label(&self) -> String {
        self.sources.join(", ")
    }

    /// The message on one line, truncated.
    pub(crate) fn message_line(&self) -> String {
        time_fmt::one_line(&self.message, MESSAGE_CHARS)
    }

    /// The buttons that make sense in its state.
    pub(crate) fn actions(&self) -> Vec<FamilyAction> {
        let verbs: &[&'static str] = match self.state {
            "resolved" | "ignored" => &["reopen"],
            _ => &["resolve", "ignore"],
        };
        verbs
            .iter()
            .map(|&v| FamilyAction {
                label: v,
                path: action(&self.fingerprint, v),
            })
            .collect()
    }
}

/// Characters of a message the families table shows.
const MESSAGE_CHARS: usize = 120;

/// The path of the form that applies `verb` to the family `fingerprint` (16 hex digits: nothing
/// to encode).
pub(crate) fn action(fingerprint: &str, verb: &str) -> String {
    format!("{}/families/{fingerprint}/{verb}", crate::BASE)
}

/// The status a verb sets.
fn status_of(verb: &str) -> Option<FamilyStatus> {
    match verb {
        "resolve" => Some(FamilyStatus::Resolved),
        "ignore" => Some(FamilyStatus::Ignored),
        "reopen" => Some(FamilyStatus::Open),
        _ => None,
    }
}

/// Checks and applies a decision; the error is a status and a one-line reason.
async fn decide(
    state: &DashboardState,
    headers: &HeaderMap,
    presented: &str,
    fingerprint: &str,
    verb: &str,
) -> Result<(Fingerprint, FamilyStatus), (StatusCode, String)> {
    crate::guard::check_post(state, headers, presented)?;
    let status = status_of(verb).ok_or_else(|| {
        (
            StatusCode::BAD_REQUEST,
            format!("unknown action `{verb}`: expected resolve, ignore or reopen"),
        )
    })?;
    let fp = Some(fingerprint)
        .filter(|f| f.len() == 16 && f.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(Fingerprint::from_hex)
        .ok_or_else(|| {
            (
                StatusCode::BAD_REQUEST,
                format!("invalid fingerprint `{fingerprint}`: expected 16 hexadecimal digits"),
            )
        })?;
    let store = &state.inner.store;
    let unavailable = |e: self_healing_store::StoreError| {
        tracing::warn!(error = %e, "self-healing dashboard: could not change a failure family");
        (StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    };
    let filter = EventFilter {
        fingerprint: Some(fp),
        ..EventFilter::default()
    };
    if store
        .events(&filter, None, 1)
        .await
        .map_err(unavailable)?
        .events
        .is_empty()
    {
        return Err((
            StatusCode::NOT_FOUND,
            format!("no failure family `{}` in the store", fp.to_hex()),
        ));
    }
    store
        .set_family_status(fp, status, BY)
        .await
        .map_err(unavailable)?;
    Ok((fp, status))
}

/// `POST /platform/system-health/families/{fingerprint}/{resolve|ignore|reopen}` (admin; same
/// origin; the page's form token unless the request carries the bearer token): records the
/// decision, then redirects back to the page's families (303). `400` for an unknown action or
/// a malformed fingerprint, `403` for a cross-site request or a missing or stale token, `404`
/// for a family the store has no event of, `503` when the store cannot take it.
pub(crate) async fn act(
    State(state): State<DashboardState>,
    Path((fingerprint, verb)): Path<(String, String)>,
    headers: HeaderMap,
    form: Result<Form<SteerForm>, FormRejection>,
) -> Response {
    let presented = form.map(|Form(f)| f.csrf).unwrap_or_default();
    match decide(&state, &headers, &presented, &fingerprint, &verb).await {
        Ok(_) => Redirect::to(&format!("{}#families", crate::BASE)).into_response(),
        Err((status, why)) => crate::pages::error_page(status, &why),
    }
}

/// `POST /platform/system-health/api/families/{fingerprint}/{resolve|ignore|reopen}`: as
/// [`act`], answering JSON: `{"fingerprint", "status"}`, or `{"error"}` with the same codes.
pub(crate) async fn api_act(
    State(state): State<DashboardState>,
    Path((fingerprint, verb)): Path<(String, String)>,
    headers: HeaderMap,
    form: Result<Form<SteerForm>, FormRejection>,
) -> Response {
    let presented = form.map(|Form(f)| f.csrf).unwrap_or_default();
    match decide(&state, &headers, &presented, &fingerprint, &verb).await {
        Ok((fp, status)) => Json(json!({
            "fingerprint": fp.to_hex(),
            "status": status.as_str(),
        }))
        .into_response(),
        Err((status, why)) => crate::api::error(status, why),
    }
}

/// The `limit` parameter of `api/families`.
#[derive(Debug, Deserialize)]
pub(crate) struct FamiliesQuery {
    limit: Option<usize>,
}

/// `GET api/families?limit=50`: the failure families with the most recent events, newest first
/// (`limit` 1–1000).
pub(crate) async fn families(
    State(state): State<DashboardState>,
    Query(q): Query<FamiliesQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(PAGE_FAMILIES);
    if !(1..=self_healing_store::MAX_PAGE).contains(&limit) {
        return crate::api::error(
            StatusCode::BAD_REQUEST,
            format!(
                "invalid `limit`: expected 1 to {}",
                self_healing_store::MAX_PAGE
            ),
        );
    }
    match state.inner.store.families(limit).await {
        Ok(rows) => {
            let views: Vec<FamilyView> = rows.iter().map(FamilyView::from).collect();
            Json(json!({ "families": views })).into_response()
        }
        Err(e) => crate::api::store_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(state: &'static str, heal_rate: Option<f64>) -> FamilyView {
        FamilyView {
            fingerprint: "0123456789abcdef".into(),
            state,
            status: "open",
            count: 3,
            first_seen: "2025-11-28T14:03:12.123Z".into(),
            last_seen: "2025-11-28T15:03:12.123Z".into(),
            sources: vec!["a".into(), "b".into()],
            class: "transient".into(),
            message: "line one\nline two".into(),
            strategy: heal_rate.map(|_| "retry".into()),
            tried: 5,
            healed: 4,
            heal_rate,
            resolved_at: None,
            changed_by: None,
        }
    }

    #[test]
    fn labels_and_actions() {
        let v = view("open", Some(0.8));
        assert_eq!(v.heal_rate_label(), "80% (4/5)");
        assert_eq!(v.sources_label(), "a, b");
        assert_eq!(v.message_line(), "line one line two");
        assert_eq!(v.last_label(), "2025-11-28 15:03:12Z");
        let labels = |v: &FamilyView| v.actions().iter().map(|a| a.label).collect::<Vec<_>>();
        assert_eq!(labels(&v), ["resolve", "ignore"]);
        assert_eq!(
            v.actions()[0].path,
            "/platform/system-health/families/0123456789abcdef/resolve"
        );
        let untried = view("regressed", None);
        assert_eq!(untried.heal_rate_label(), "—");
        assert_eq!(untried.strategy_label(), "—");
        assert_eq!(labels(&untried), ["resolve", "ignore"]);
        assert_eq!(labels(&view("resolved", None)), ["reopen"]);
        assert_eq!(status_of("resolve"), Some(FamilyStatus::Resolved));
        assert_eq!(status_of("delete"), None);
    }
}
