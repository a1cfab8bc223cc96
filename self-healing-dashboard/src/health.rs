//! `GET /health` (the IETF health-check draft's `application/health+json`) and
//! `GET /api/cron/health-check` (runs the checks now, behind `CRON_SECRET`).
//!
//! Status: the monitor's overall status (`unhealthy` when more than two checks fail, `degraded`
//! when one or two do or any is degraded) mapped to `pass`/`warn`/`fail`; a circuit that is open
//! or half-open raises `pass` to `warn` and never causes `fail` on its own. `fail` answers 503,
//! `pass` and `warn` answer 200.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use self_healing_runtime::CircuitState;
use self_healing_runtime::health::{HealthReport, HealthStatus};
use serde_json::{Map, Value, json};

use crate::auth::{bearer, bearer_challenge};
use crate::checklist::open_circuits;
use crate::state::DashboardState;
use crate::time_fmt;

/// The media type of the draft.
pub(crate) const HEALTH_JSON: &str = "application/health+json";

/// The latest report of the monitor, running the checks first if they never ran.
pub(crate) async fn current_report(state: &DashboardState) -> HealthReport {
    match state.inner.monitor.latest() {
        Some(report) => report,
        None => state.inner.monitor.run_now().await,
    }
}

/// The overall status with the circuits of this process taken into account.
pub(crate) fn overall(report: &HealthReport, circuits: &[(&str, CircuitState)]) -> HealthStatus {
    if report.status == HealthStatus::Healthy && !circuits.is_empty() {
        HealthStatus::Degraded
    } else {
        report.status
    }
}

/// `(key, componentType, unit)` of the built-in checks, as the draft names measurements.
fn describe(name: &str) -> (String, &'static str, Option<&'static str>) {
    match name {
        "store" => ("store:responseTime".into(), "datastore", Some("ms")),
        "memory" => ("memory:utilization".into(), "system", Some("MiB")),
        "error_rate" => (
            "healing:errorRate".into(),
            "component",
            Some("failures/min"),
        ),
        other => (other.to_owned(), "component", None),
    }
}

/// The draft's body for `report` and the circuits of this process.
pub(crate) fn draft_body(state: &DashboardState, report: &HealthReport) -> Value {
    let circuits = open_circuits(crate::circuits::healer_of(state).as_ref());
    let status = overall(report, &circuits);
    let time = time_fmt::rfc3339(report.time);
    let mut checks = Map::new();
    for c in &report.checks {
        let (key, component_type, unit) = describe(&c.name);
        let mut entry = Map::new();
        entry.insert("componentId".into(), json!(c.name));
        entry.insert("componentType".into(), json!(component_type));
        entry.insert("status".into(), json!(c.result.status.as_draft_status()));
        if let Some(v) = c.result.value {
            entry.insert("observedValue".into(), json!(v));
            if let Some(u) = unit {
                entry.insert("observedUnit".into(), json!(u));
            }
        }
        entry.insert("time".into(), json!(time));
        if c.result.status != HealthStatus::Healthy {
            entry.insert("output".into(), json!(c.result.detail));
        }
        if let Some(h) = &c.healing {
            entry.insert("healing".into(), json!(h));
        }
        checks.insert(key, Value::Array(vec![Value::Object(entry)]));
    }
    for (source, circuit) in &circuits {
        checks.insert(
            format!("{source}:circuit"),
            json!([{
                "componentId": source,
                "componentType": "component",
                "observedValue": circuit.as_str(),
                "status": "warn",
                "time": time,
                "output": format!("the circuit of `{source}` is {}: calls fail fast", circuit.as_str()),
            }]),
        );
    }
    let mut body = json!({
        "status": status.as_draft_status(),
        "version": "1",
        "releaseId": env!("CARGO_PKG_VERSION"),
        "description": "self-healing",
        "checks": checks,
    });
    if let Some(h) = &state.inner.healer {
        body["serviceId"] = json!(h.instance_id());
    }
    if status != HealthStatus::Healthy {
        let failing: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| c.result.status != HealthStatus::Healthy)
            .map(|c| c.name.as_str())
            .chain(circuits.iter().map(|(s, _)| *s))
            .collect();
        body["output"] = json!(format!("needs attention: {}", failing.join(", ")));
    }
    body
}

fn health_json(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(HEALTH_JSON));
    r
}

/// `GET /health`.
pub(crate) async fn health(State(state): State<DashboardState>) -> Response {
    let report = current_report(&state).await;
    let body = draft_body(&state, &report);
    let status = if body["status"] == "fail" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    health_json(status, &body)
}

/// `GET /api/cron/health-check`: 503 when `CRON_SECRET` is not configured, 401 on a wrong or
/// missing secret, else runs every check now and answers the report (200, whatever it says).
pub(crate) async fn cron(
    State(state): State<DashboardState>,
    headers: axum::http::HeaderMap,
) -> Response {
    let Some(secret) = &state.inner.cron else {
        return crate::api::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "CRON_SECRET is not configured: set it (for instance to the output of `openssl rand -base64 32`) \
             and send it as `Authorization: Bearer <CRON_SECRET>` to run the health checks from a scheduler",
        );
    };
    match bearer(&headers) {
        None => return bearer_challenge("missing `Authorization: Bearer <CRON_SECRET>` header"),
        Some(presented) if !secret.matches(presented) => {
            return bearer_challenge("wrong cron secret");
        }
        Some(_) => {}
    }
    let report = state.inner.monitor.run_now().await;
    let body = draft_body(&state, &report);
    health_json(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use self_healing_runtime::CircuitState;
    use self_healing_runtime::health::{HealthReport, HealthStatus};

    use super::overall;

    fn report(status: HealthStatus) -> HealthReport {
        HealthReport {
            time: SystemTime::now(),
            status,
            checks: Vec::new(),
        }
    }

    #[test]
    fn circuits_warn_and_never_fail() {
        let open = [("pay", CircuitState::Open)];
        assert_eq!(
            overall(&report(HealthStatus::Healthy), &[]),
            HealthStatus::Healthy
        );
        assert_eq!(
            overall(&report(HealthStatus::Healthy), &open),
            HealthStatus::Degraded
        );
        assert_eq!(
            overall(&report(HealthStatus::Degraded), &open),
            HealthStatus::Degraded
        );
        assert_eq!(
            overall(&report(HealthStatus::Unhealthy), &open),
            HealthStatus::Unhealthy
        );
    }
}
