//! Rows: events as the store buffers them ([`Pending`]), and as Diesel inserts them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::prelude::*;
use self_healing_runtime::Outcome;
use self_healing_runtime::diagnosis::{Fingerprint, Severity};
use self_healing_runtime::event::{HealingEvent, StepResult};

use crate::schema::{healing_patterns, store_batches};

/// The key the store folds events by when its buffer is full: the runtime's fold key.
pub(crate) type FoldKey = (
    Cow<'static, str>,
    Fingerprint,
    Option<Cow<'static, str>>,
    Outcome,
);

/// What one strategy did for the calls a record stands for (the learned statistics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PatternDelta {
    pub(crate) strategy: Cow<'static, str>,
    pub(crate) healed: u64,
    pub(crate) failed: u64,
    pub(crate) duration_us: i64,
}

/// One event record waiting in the store's buffer, ready to insert.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) time_us: i64,
    pub(crate) instance: Arc<str>,
    pub(crate) source: Cow<'static, str>,
    pub(crate) category: &'static str,
    pub(crate) fingerprint: Fingerprint,
    pub(crate) fingerprint_hex: String,
    pub(crate) class: &'static str,
    pub(crate) message: String,
    pub(crate) severity: Severity,
    pub(crate) strategy: Option<Cow<'static, str>>,
    pub(crate) outcome: Outcome,
    pub(crate) attempts: u32,
    pub(crate) duration_us: i64,
    pub(crate) count: u64,
    /// The call's idempotency key (the first call's when folded).
    pub(crate) call_key: Option<String>,
    pub(crate) analyzer: Cow<'static, str>,
    pub(crate) diagnosis: String,
    /// The diagnosis as JSON when an analyzer other than the rules made it (kept on patterns).
    pub(crate) ai_diagnosis: Option<Arc<str>>,
    pub(crate) patterns: Vec<PatternDelta>,
}

impl Pending {
    /// Converts an event: message capped at `max_message_bytes` (on a character boundary) and NUL
    /// characters replaced by U+2400 (PostgreSQL text cannot hold NUL); learned statistics taken
    /// from the steps that acted, multiplied by the event's `count`.
    pub(crate) fn from_event(e: &HealingEvent, max_message_bytes: usize) -> Self {
        let count = e.count.max(1);
        let mut patterns: Vec<PatternDelta> = Vec::new();
        for step in &e.diagnosis.steps {
            let (healed, failed) = match step.result {
                StepResult::Healed => (count, 0),
                StepResult::Failed => (0, count),
                StepResult::Skipped => continue,
            };
            let duration_us = duration_us(step.took).saturating_mul(count as i64);
            match patterns.iter_mut().find(|p| p.strategy == step.strategy) {
                Some(p) => {
                    p.healed += healed;
                    p.failed += failed;
                    p.duration_us = p.duration_us.saturating_add(duration_us);
                }
                None => patterns.push(PatternDelta {
                    strategy: step.strategy.clone(),
                    healed,
                    failed,
                    duration_us,
                }),
            }
        }
        let diagnosis = diagnosis_json(e);
        let ai_diagnosis = (e.diagnosis.analyzer != "rules" && !patterns.is_empty())
            .then(|| Arc::from(diagnosis.as_str()));
        Pending {
            time_us: time_us(e.time),
            instance: e.instance.clone(),
            source: e.source.clone(),
            category: e.category.as_str(),
            fingerprint: e.fingerprint,
            fingerprint_hex: e.fingerprint.to_hex(),
            class: e.class.as_str(),
            message: clean_text(&e.message, max_message_bytes),
            severity: e.severity,
            strategy: e.strategy.clone(),
            outcome: e.outcome,
            attempts: e.attempts,
            duration_us: duration_us(e.duration),
            count,
            call_key: e.call_key.as_deref().map(|k| clean_text(k, MAX_CALL_KEY)),
            analyzer: e.diagnosis.analyzer.clone(),
            diagnosis,
            ai_diagnosis,
            patterns,
        }
    }

    pub(crate) fn fold_key(&self) -> FoldKey {
        (
            self.source.clone(),
            self.fingerprint,
            self.strategy.clone(),
            self.outcome,
        )
    }

    /// Adds `other` (same fold key) into this record, as `HealingEvent::absorb` does, and adds
    /// its learned statistics so none are lost.
    pub(crate) fn absorb(&mut self, other: Pending) {
        self.count += other.count;
        self.duration_us = self.duration_us.saturating_add(other.duration_us);
        self.attempts = self.attempts.max(other.attempts);
        self.severity = self.severity.max(other.severity);
        self.time_us = self.time_us.min(other.time_us);
        // The record stands for the first call: its key stays (as the runtime folds).
        if self.call_key.is_none() {
            self.call_key = other.call_key;
        }
        if other.ai_diagnosis.is_some() {
            self.ai_diagnosis = other.ai_diagnosis;
        }
        for delta in other.patterns {
            match self
                .patterns
                .iter_mut()
                .find(|p| p.strategy == delta.strategy)
            {
                Some(p) => {
                    p.healed += delta.healed;
                    p.failed += delta.failed;
                    p.duration_us = p.duration_us.saturating_add(delta.duration_us);
                }
                None => self.patterns.push(delta),
            }
        }
    }

    pub(crate) fn as_new(&self) -> NewEvent<'_> {
        NewEvent {
            time_us: self.time_us,
            instance: &self.instance,
            source: &self.source,
            category: self.category,
            fingerprint: &self.fingerprint_hex,
            class: self.class,
            message: &self.message,
            severity: self.severity.as_str(),
            strategy: self.strategy.as_deref(),
            outcome: self.outcome.as_str(),
            attempts: i32::try_from(self.attempts).unwrap_or(i32::MAX),
            duration_us: self.duration_us,
            count: i64::try_from(self.count).unwrap_or(i64::MAX),
            analyzer: &self.analyzer,
            diagnosis: &self.diagnosis,
            call_key: self.call_key.as_deref(),
        }
    }
}

/// An event row to insert: the columns of `healing_events` but `id`, as the SQLite writer binds
/// them.
#[derive(Debug)]
pub(crate) struct NewEvent<'a> {
    pub(crate) time_us: i64,
    pub(crate) instance: &'a str,
    pub(crate) source: &'a str,
    pub(crate) category: &'a str,
    pub(crate) fingerprint: &'a str,
    pub(crate) class: &'a str,
    pub(crate) message: &'a str,
    pub(crate) severity: &'a str,
    pub(crate) strategy: Option<&'a str>,
    pub(crate) outcome: &'a str,
    pub(crate) attempts: i32,
    pub(crate) duration_us: i64,
    pub(crate) count: i64,
    pub(crate) analyzer: &'a str,
    pub(crate) diagnosis: &'a str,
    pub(crate) call_key: Option<&'a str>,
}

/// Columns of [`NewEvent`]: bound parameters per inserted row.
pub(crate) const EVENT_COLUMNS: usize = 16;

/// Longest call key kept (the runtime's are 32 hex digits; anything longer is not one of them).
pub(crate) const MAX_CALL_KEY: usize = 128;

/// A pattern row to upsert: increments, not totals.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = healing_patterns)]
pub(crate) struct NewPattern {
    pub(crate) fingerprint: String,
    pub(crate) strategy: String,
    pub(crate) tried: i64,
    pub(crate) healed: i64,
    pub(crate) failed: i64,
    pub(crate) total_duration_us: i64,
    pub(crate) first_seen_us: i64,
    pub(crate) last_seen_us: i64,
    pub(crate) ai_diagnosis: Option<String>,
}

/// The marker row of a committed batch.
#[derive(Debug, Insertable)]
#[diesel(table_name = store_batches)]
pub(crate) struct NewBatch<'a> {
    pub(crate) batch_id: &'a str,
    pub(crate) time_us: i64,
    pub(crate) records: i64,
}

/// A batch the writer commits in one transaction: event rows, the pattern increments they
/// carry (one row per fingerprint × strategy, sorted so that concurrent writers lock rows in the
/// same order), and an id that makes a retried batch idempotent.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) id: String,
    pub(crate) events: Vec<Pending>,
    pub(crate) patterns: Vec<NewPattern>,
    /// The events grouped as their postings will list them.
    pub(crate) groups: Vec<crate::postings::Group>,
    pub(crate) calls: u64,
}

impl Batch {
    pub(crate) fn new(id: String, events: Vec<Pending>) -> Self {
        let mut agg: HashMap<(&str, &str), NewPattern> = HashMap::new();
        for e in &events {
            for d in &e.patterns {
                let row = agg
                    .entry((e.fingerprint_hex.as_str(), d.strategy.as_ref()))
                    .or_insert_with(|| NewPattern {
                        fingerprint: e.fingerprint_hex.clone(),
                        strategy: d.strategy.to_string(),
                        tried: 0,
                        healed: 0,
                        failed: 0,
                        total_duration_us: 0,
                        first_seen_us: e.time_us,
                        last_seen_us: e.time_us,
                        ai_diagnosis: None,
                    });
                let (healed, failed) = (to_i64(d.healed), to_i64(d.failed));
                row.healed = row.healed.saturating_add(healed);
                row.failed = row.failed.saturating_add(failed);
                row.tried = row.tried.saturating_add(healed.saturating_add(failed));
                row.total_duration_us = row.total_duration_us.saturating_add(d.duration_us);
                row.first_seen_us = row.first_seen_us.min(e.time_us);
                row.last_seen_us = row.last_seen_us.max(e.time_us);
                if let Some(ai) = &e.ai_diagnosis {
                    row.ai_diagnosis = Some(ai.to_string());
                }
            }
        }
        let mut patterns: Vec<NewPattern> = agg.into_values().collect();
        patterns.sort_by(|a, b| (&a.fingerprint, &a.strategy).cmp(&(&b.fingerprint, &b.strategy)));
        let calls = events.iter().map(|e| e.count).sum();
        let groups = crate::postings::group(&events);
        Batch {
            id,
            events,
            patterns,
            groups,
            calls,
        }
    }

    pub(crate) fn marker(&self, now_us: i64) -> NewBatch<'_> {
        NewBatch {
            batch_id: &self.id,
            time_us: now_us,
            records: i64::try_from(self.events.len()).unwrap_or(i64::MAX),
        }
    }
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Microseconds since the Unix epoch (negative before it).
pub(crate) fn time_us(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => duration_us(d),
        Err(e) => -duration_us(e.duration()),
    }
}

/// The time `us` microseconds after the Unix epoch.
pub(crate) fn from_time_us(us: i64) -> SystemTime {
    if us >= 0 {
        UNIX_EPOCH + Duration::from_micros(us as u64)
    } else {
        UNIX_EPOCH - Duration::from_micros(us.unsigned_abs())
    }
}

pub(crate) fn duration_us(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

pub(crate) fn from_duration_us(us: i64) -> Duration {
    Duration::from_micros(us.max(0) as u64)
}

/// The marker appended to a message cut at the cap.
pub(crate) const TRUNCATED: &str = "…[truncated]";

/// Caps `s` at `max` bytes on a character boundary (marking the cut) and replaces NUL, which
/// PostgreSQL text cannot store, with U+2400 SYMBOL FOR NULL. Every other character, control
/// characters included, is kept as it is.
pub(crate) fn clean_text(s: &str, max: usize) -> String {
    let needs_cut = s.len() > max;
    let limit = if needs_cut {
        let mut end = max.saturating_sub(TRUNCATED.len());
        while end > 0 && !s.is_char_boundary(end) {
            end -= 1;
        }
        end
    } else {
        s.len()
    };
    let head = &s[..limit];
    let mut out = if head.contains('\0') {
        head.replace('\0', "\u{2400}")
    } else {
        head.to_owned()
    };
    if needs_cut {
        out.push_str(TRUNCATED);
    }
    out
}

/// Appends `s` to `out` as a JSON string literal.
pub(crate) fn json_str(out: &mut String, s: &str) {
    out.push('"');
    // Runs of characters that need no escape are copied whole (every character that does is
    // ASCII, so a byte search finds them on character boundaries).
    let mut rest = s;
    while let Some(at) = rest
        .bytes()
        .position(|b| b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f)
    {
        out.push_str(&rest[..at]);
        match rest.as_bytes()[at] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            // NUL is escaped too, so the JSON text itself never holds one.
            b => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

/// The diagnosis of an event as JSON:
/// `{"analyzer":…,"confidence":…,"reason":…,"never_reached":…,"steps":[{"strategy":…,"result":…,"took_us":…,"note":…}]}`.
fn diagnosis_json(e: &HealingEvent) -> String {
    let d = &e.diagnosis;
    let mut out = String::with_capacity(128 + 96 * d.steps.len());
    out.push_str("{\"analyzer\":");
    json_str(&mut out, &d.analyzer);
    let confidence = if d.confidence.is_finite() {
        d.confidence
    } else {
        0.0
    };
    let _ = write!(out, ",\"confidence\":{confidence}");
    out.push_str(",\"reason\":");
    json_str(&mut out, &d.reason);
    let _ = write!(out, ",\"never_reached\":{}", d.never_reached);
    out.push_str(",\"steps\":[");
    for (i, s) in d.steps.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"strategy\":");
        json_str(&mut out, &s.strategy);
        let _ = write!(
            out,
            ",\"result\":\"{}\",\"took_us\":{},\"note\":",
            s.result.as_str(),
            duration_us(s.took)
        );
        json_str(&mut out, &s.note);
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// A plain failing event for the crate's unit tests: `source`, a transient error, no steps.
#[cfg(test)]
pub(crate) fn test_event(source: &'static str, outcome: Outcome) -> HealingEvent {
    use self_healing_runtime::Category;
    use self_healing_runtime::diagnosis::ErrorClass;
    use self_healing_runtime::event::DiagnosisRecord;
    HealingEvent {
        time: SystemTime::now(),
        instance: Arc::from("unit"),
        source: Cow::Borrowed(source),
        category: Category::Database,
        fingerprint: Fingerprint::new(source, &ErrorClass::Transient, "boom"),
        class: ErrorClass::Transient,
        message: "boom".into(),
        severity: Severity::Medium,
        strategy: None,
        outcome,
        attempts: 1,
        duration: Duration::from_millis(1),
        diagnosis: DiagnosisRecord {
            analyzer: Cow::Borrowed("rules"),
            confidence: 1.0,
            reason: Cow::Borrowed("test"),
            never_reached: false,
            steps: Vec::new(),
        },
        count: 1,
        call_key: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_capped_on_a_char_boundary_and_nul_is_replaced() {
        assert_eq!(clean_text("abc", 10), "abc");
        assert_eq!(clean_text("a\0b", 10), "a\u{2400}b");
        let long = "é".repeat(100);
        let cut = clean_text(&long, 51);
        assert!(cut.len() <= 51, "{}", cut.len());
        assert!(cut.ends_with(TRUNCATED));
        assert!(cut.trim_end_matches(TRUNCATED).chars().all(|c| c == 'é'));
    }

    #[test]
    fn json_strings_escape_quotes_and_controls() {
        let mut out = String::new();
        json_str(&mut out, "a\"b\\c\n\u{1}\0é");
        assert_eq!(out, r#""a\"b\\c\n\u0001\u0000é""#);
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed.as_str().unwrap(), "a\"b\\c\n\u{1}\0é");
    }

    #[test]
    fn times_round_trip() {
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(from_time_us(time_us(t)), t);
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(from_time_us(time_us(before)), before);
    }
}
