//! `GET /metrics`: the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use self_healing_runtime::health::HealthStatus;
use self_healing_runtime::{CircuitState, sites};

use crate::state::DashboardState;

/// The exposition format's media type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value (`\`, `"` and newlines).
fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Writes the metrics text.
struct Writer(String);

impl Writer {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

fn health_value(s: HealthStatus) -> u8 {
    match s {
        HealthStatus::Healthy => 0,
        HealthStatus::Degraded => 1,
        HealthStatus::Unhealthy => 2,
    }
}

/// The metrics of this process.
pub(crate) fn render(state: &DashboardState) -> String {
    let mut w = Writer(String::new());
    let i = &state.inner;

    w.family(
        "self_healing_calls_total",
        "counter",
        "Failing calls seen by this process's healer, by source, strategy and outcome (healed, failed, fast_failed, budget_exhausted, not_applicable).",
    );
    for ((source, strategy, outcome), calls) in i.feed.call_counts() {
        w.sample(
            "self_healing_calls_total",
            &[
                ("source", &source),
                ("strategy", &strategy),
                ("outcome", outcome),
            ],
            calls,
        );
    }

    w.family(
        "self_healing_site_failures_total",
        "counter",
        "Failed attempts per registered site in this process.",
    );
    let healer = crate::circuits::healer_of(state);
    let reports: Vec<_> = sites()
        .map(|s| (s, crate::circuits::report(healer.as_ref(), s)))
        .collect();
    for (s, r) in &reports {
        w.sample(
            "self_healing_site_failures_total",
            &[("source", s.source()), ("category", s.category().as_str())],
            r.failures,
        );
    }
    w.family(
        "self_healing_site_healed_total",
        "counter",
        "Calls healed per registered site in this process.",
    );
    for (s, r) in &reports {
        w.sample(
            "self_healing_site_healed_total",
            &[("source", s.source()), ("category", s.category().as_str())],
            r.healed,
        );
    }
    w.family(
        "self_healing_circuit_state",
        "gauge",
        "The circuit breaker state per site: 1 for the current state, 0 for the others.",
    );
    for (s, r) in &reports {
        for state in [
            CircuitState::Closed,
            CircuitState::Open,
            CircuitState::HalfOpen,
        ] {
            w.sample(
                "self_healing_circuit_state",
                &[("source", s.source()), ("state", state.as_str())],
                u8::from(r.circuit == state),
            );
        }
    }
    w.single(
        "self_healing_sites",
        "gauge",
        "Sites registered in this process (the integration checklist).",
        reports.len(),
    );

    if let Some(h) = &i.healer {
        let q = h.queue_stats();
        w.single(
            "self_healing_queue_depth",
            "gauge",
            "Events waiting in the healer's queue.",
            q.depth,
        );
        w.single(
            "self_healing_events_recorded_total",
            "counter",
            "Failing calls recorded by the healer.",
            q.recorded,
        );
        w.single(
            "self_healing_events_folded_total",
            "counter",
            "Event records folded into another record (still counted in its count).",
            q.folded,
        );
        w.single(
            "self_healing_events_dropped_total",
            "counter",
            "Events dropped by the healer's queue.",
            q.dropped,
        );
        w.single(
            "self_healing_events_written_total",
            "counter",
            "Failing calls whose records the healer handed to the store.",
            q.written,
        );
        w.single(
            "self_healing_events_lost_to_store_total",
            "counter",
            "Failing calls whose records the store refused repeatedly.",
            q.lost_to_store,
        );
    }

    let s = i.store.stats();
    w.single(
        "self_healing_store_buffered_calls",
        "gauge",
        "Calls waiting in the store's buffer for the database.",
        s.buffered,
    );
    w.single(
        "self_healing_store_written_total",
        "counter",
        "Calls whose records the store committed.",
        s.written,
    );
    w.single(
        "self_healing_store_folded_total",
        "counter",
        "Records the store folded because its buffer was full.",
        s.folded,
    );
    w.single(
        "self_healing_store_dropped_total",
        "counter",
        "Calls the store lost (fold table full, or closed while the database was down).",
        s.dropped,
    );
    w.single(
        "self_healing_store_failed_writes_total",
        "counter",
        "Store write attempts that failed (each is retried).",
        s.failed_writes,
    );
    w.single(
        "self_healing_store_up",
        "gauge",
        "1 while the store's last write succeeded.",
        u8::from(!s.unavailable),
    );

    for (group, read) in &i.counters {
        for (name, value) in read() {
            let valid = name
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'));
            if !valid {
                continue;
            }
            // A status code is a gauge; everything else counts up.
            let (metric, kind) = if name.starts_with("last_") {
                (format!("self_healing_{group}_{name}"), "gauge")
            } else {
                (format!("self_healing_{group}_{name}_total"), "counter")
            };
            w.single(
                &metric,
                kind,
                &format!("The {group} counter `{name}`."),
                value,
            );
        }
    }

    if let Some(report) = i.monitor.latest() {
        w.family(
            "self_healing_health_check_status",
            "gauge",
            "The latest result of each health check: 0 healthy, 1 degraded, 2 unhealthy.",
        );
        for c in &report.checks {
            w.sample(
                "self_healing_health_check_status",
                &[("check", &c.name)],
                health_value(c.result.status),
            );
        }
        w.single(
            "self_healing_health_status",
            "gauge",
            "The overall health: 0 healthy, 1 degraded, 2 unhealthy.",
            health_value(report.status),
        );
    }
    w.0
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<DashboardState>) -> Response {
    let mut r = render(&state).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(super::label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
