//! Storms in the activity list: consecutive events of the same failure family, outcome and
//! strategy become one row marked `×N` (the live feed does the same in `assets/app.js`).

use crate::time_fmt;
use crate::views::EventView;

/// Characters of a message a row shows on its one line.
pub(crate) const MESSAGE_CHARS: usize = 160;

/// A row of the activity list: the newest event of a run of identical ones.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FeedRow {
    /// The newest event of the run (the one whose details the row opens to).
    pub(crate) event: EventView,
    /// Events in the run (1 when alone).
    pub(crate) repeats: usize,
    /// Calls in the run (the sum of the events' `count`).
    pub(crate) calls: u64,
}

impl FeedRow {
    /// The event the row shows.
    pub(crate) fn event(&self) -> &EventView {
        &self.event
    }

    /// `×N` for a run of N > 1 events, else nothing.
    pub(crate) fn repeats_label(&self) -> Option<String> {
        (self.repeats > 1).then(|| format!("×{}", self.repeats))
    }

    /// The message on one line, truncated (the page escapes it).
    pub(crate) fn message_line(&self) -> String {
        time_fmt::one_line(&self.event.message, MESSAGE_CHARS)
    }
}

/// Whether `a` and `b` are the same thing happening again.
fn same(a: &EventView, b: &EventView) -> bool {
    a.fingerprint == b.fingerprint && a.outcome == b.outcome && a.strategy == b.strategy
}

/// `events` (newest first) with each run of identical consecutive events as one row.
pub(crate) fn collapse(events: Vec<EventView>) -> Vec<FeedRow> {
    let mut rows: Vec<FeedRow> = Vec::new();
    for e in events {
        match rows.last_mut() {
            Some(last) if same(&last.event, &e) => {
                last.repeats += 1;
                last.calls += e.count;
            }
            _ => rows.push(FeedRow {
                calls: e.count,
                repeats: 1,
                event: e,
            }),
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::DiagnosisView;

    fn ev(fingerprint: &str, outcome: &str, strategy: Option<&str>, count: u64) -> EventView {
        EventView {
            id: None,
            time: String::new(),
            time_unix_ms: 0,
            instance: String::new(),
            source: "s".into(),
            category: "api".into(),
            class: "transient".into(),
            severity: "high".into(),
            strategy: strategy.map(str::to_owned),
            outcome: outcome.into(),
            attempts: 1,
            duration_ms: 1.0,
            count,
            fingerprint: fingerprint.into(),
            message: "boom".into(),
            diagnosis: DiagnosisView {
                analyzer: "rules".into(),
                confidence: 1.0,
                reason: String::new(),
                never_reached: false,
                steps: Vec::new(),
            },
            advice: None,
        }
    }

    #[test]
    fn consecutive_identical_rows_collapse() {
        let rows = collapse(vec![
            ev("a", "failed", Some("retry"), 1),
            ev("a", "failed", Some("retry"), 3),
            ev("a", "failed", Some("retry"), 1),
            ev("a", "healed", Some("retry"), 1),
            ev("a", "healed", Some("reconnect"), 1),
            ev("b", "healed", Some("reconnect"), 1),
            ev("a", "failed", Some("retry"), 1),
        ]);
        let shape: Vec<(usize, u64, Option<String>)> = rows
            .iter()
            .map(|r| (r.repeats, r.calls, r.repeats_label()))
            .collect();
        assert_eq!(
            shape,
            [
                (3, 5, Some("×3".into())),
                (1, 1, None),
                (1, 1, None),
                (1, 1, None),
                (1, 1, None),
            ],
            "only consecutive runs of the same fingerprint, outcome and strategy"
        );
        assert!(collapse(Vec::new()).is_empty());
    }
}
