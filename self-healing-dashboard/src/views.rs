//! [`EventView`]: one healing event as the page, the JSON API, the live feed and the CLI show it.

use std::time::SystemTime;

use self_healing_runtime::event::{DiagnosisRecord, HealingEvent};
use self_healing_runtime::selection::Advice;
use self_healing_store::EventRecord;
use serde::Serialize;

use crate::time_fmt;

/// One healing event, ready to show or serialize. Every text field is shown as text: the page
/// escapes it, the live feed inserts it with `textContent`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventView {
    /// The store's row id (`None` for live events not read from the store).
    pub id: Option<i64>,
    /// When the call started, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// The same instant in milliseconds since the Unix epoch.
    pub time_unix_ms: u64,
    /// The process that produced it.
    pub instance: String,
    /// The site's `source`.
    pub source: String,
    /// The site's category.
    pub category: String,
    /// The error class.
    pub class: String,
    /// The severity.
    pub severity: String,
    /// The strategy that healed the call, or the last one tried.
    pub strategy: Option<String>,
    /// How the call ended (`healed`, `failed`, …).
    pub outcome: String,
    /// Attempts made.
    pub attempts: u32,
    /// Time the call took (the total of folded calls), in milliseconds.
    pub duration_ms: f64,
    /// How many calls this record stands for.
    pub count: u64,
    /// The failure family, 16 hex digits.
    pub fingerprint: String,
    /// The scrubbed error message.
    pub message: String,
    /// How the failure was diagnosed.
    pub diagnosis: DiagnosisView,
    /// An analyzer's advice for this failure family, when there is some.
    pub advice: Option<AdviceView>,
}

/// How a failure was diagnosed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiagnosisView {
    /// `rules` or `llm`.
    pub analyzer: String,
    /// 0 to 1.
    pub confidence: f32,
    /// The rule or reasoning.
    pub reason: String,
    /// Whether the call provably never reached the dependency.
    pub never_reached: bool,
    /// The strategies tried, in order.
    pub steps: Vec<StepView>,
}

/// One strategy's turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepView {
    /// The strategy.
    pub strategy: String,
    /// `healed`, `failed` or `skipped`.
    pub result: String,
    /// Milliseconds from its action to the result.
    pub took_ms: f64,
    /// What happened.
    pub note: String,
}

/// An analyzer's advice for a failure family.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdviceView {
    /// The recommended strategy.
    pub strategy: String,
    /// 0 to 1.
    pub confidence: f32,
    /// The analyzer's diagnosis.
    pub diagnosis: String,
    /// Which analyzer gave it.
    pub analyzer: String,
}

impl From<&Advice> for AdviceView {
    fn from(a: &Advice) -> Self {
        AdviceView {
            strategy: a.strategy.clone(),
            confidence: a.confidence,
            diagnosis: a.diagnosis.clone(),
            analyzer: a.analyzer.clone(),
        }
    }
}

impl From<&DiagnosisRecord> for DiagnosisView {
    fn from(d: &DiagnosisRecord) -> Self {
        DiagnosisView {
            analyzer: d.analyzer.to_string(),
            confidence: d.confidence,
            reason: d.reason.to_string(),
            never_reached: d.never_reached,
            steps: d
                .steps
                .iter()
                .map(|s| StepView {
                    strategy: s.strategy.to_string(),
                    result: s.result.as_str().to_owned(),
                    took_ms: time_fmt::millis(s.took),
                    note: s.note.to_string(),
                })
                .collect(),
        }
    }
}

fn times(t: SystemTime) -> (String, u64) {
    (time_fmt::rfc3339(t), time_fmt::unix_ms(t))
}

impl EventView {
    /// A stored event, with the advice known for its family.
    pub fn from_record(e: &EventRecord, advice: Option<&Advice>) -> Self {
        let (time, time_unix_ms) = times(e.time);
        EventView {
            id: Some(e.id),
            time,
            time_unix_ms,
            instance: e.instance.clone(),
            source: e.source.clone(),
            category: e.category.as_str().to_owned(),
            class: e.class.clone(),
            severity: e.severity.as_str().to_owned(),
            strategy: e.strategy.clone(),
            outcome: e.outcome.as_str().to_owned(),
            attempts: e.attempts,
            duration_ms: time_fmt::millis(e.duration),
            count: e.count,
            fingerprint: e.fingerprint.to_hex(),
            message: e.message.clone(),
            diagnosis: (&e.diagnosis).into(),
            advice: advice.map(Into::into),
        }
    }

    /// An event as the healer recorded it, with the advice known for its family.
    pub fn from_event(e: &HealingEvent, advice: Option<&Advice>) -> Self {
        let (time, time_unix_ms) = times(e.time);
        EventView {
            id: None,
            time,
            time_unix_ms,
            instance: e.instance.to_string(),
            source: e.source.to_string(),
            category: e.category.as_str().to_owned(),
            class: e.class.as_str().to_owned(),
            severity: e.severity.as_str().to_owned(),
            strategy: e.strategy.as_deref().map(str::to_owned),
            outcome: e.outcome.as_str().to_owned(),
            attempts: e.attempts,
            duration_ms: time_fmt::millis(e.duration),
            count: e.count,
            fingerprint: e.fingerprint.to_hex(),
            message: e.message.clone(),
            diagnosis: (&e.diagnosis).into(),
            advice: advice.map(Into::into),
        }
    }

    /// The time as people read it (`2025-11-28 14:03:12Z`).
    pub fn time_label(&self) -> String {
        time_fmt::label_of_rfc3339(&self.time)
    }

    /// The duration as people read it.
    pub fn duration_label(&self) -> String {
        time_fmt::duration(std::time::Duration::from_secs_f64(
            self.duration_ms.max(0.0) / 1_000.0,
        ))
    }

    /// The strategy, or `—`.
    pub fn strategy_label(&self) -> &str {
        self.strategy.as_deref().unwrap_or("—")
    }

    /// The diagnosis confidence as a percentage.
    pub fn confidence_label(&self) -> String {
        time_fmt::percent(f64::from(self.diagnosis.confidence))
    }
}

impl StepView {
    /// The step's time as people read it.
    pub fn took_label(&self) -> String {
        time_fmt::duration(std::time::Duration::from_secs_f64(
            self.took_ms.max(0.0) / 1_000.0,
        ))
    }
}

impl AdviceView {
    /// The confidence as a percentage.
    pub fn confidence_label(&self) -> String {
        time_fmt::percent(f64::from(self.confidence))
    }
}
