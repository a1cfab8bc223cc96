//! Event postings: which events of one committed batch share a fingerprint, source, category,
//! outcome and severity.
//!
//! The writer adds one row per such group to `event_postings` in the batch's transaction. Lists
//! of events filtered by those columns, family summaries and source look-ups read postings, so
//! `healing_events` needs no secondary index but its time index: four B-tree inserts per event
//! (most of the writer's time, measured in `BENCHMARKS.md`) become a few dozen rows per batch.

use std::collections::HashMap;

use diesel::prelude::*;
use self_healing_runtime::Outcome;
use self_healing_runtime::diagnosis::{Fingerprint, Severity};

use crate::rows::{Pending, to_i64};
use crate::schema::event_postings;

/// One posting to insert.
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = event_postings)]
pub(crate) struct NewPosting {
    pub(crate) fingerprint: String,
    pub(crate) source: String,
    pub(crate) category: String,
    pub(crate) outcome: String,
    pub(crate) severity: String,
    pub(crate) min_time_us: i64,
    pub(crate) max_time_us: i64,
    pub(crate) last_id: i64,
    pub(crate) events: i64,
    pub(crate) calls: i64,
    pub(crate) entries: String,
}

/// Events of a batch that share a fingerprint, source, category, outcome and severity: what
/// becomes one posting once the events have ids. Grouped before the batch's transaction, so
/// that the writer only formats the entries while it holds the database.
#[derive(Debug)]
pub(crate) struct Group {
    /// Indexes of the events in the batch, in batch order.
    members: Vec<usize>,
    min_time_us: i64,
    max_time_us: i64,
    calls: i64,
}

/// Events per posting at most. About 25 bytes each, so that a posting stays under PostgreSQL's
/// 2 kB TOAST threshold (no compression or out-of-line storage when it is written) and takes
/// part of a SQLite page.
pub(crate) const MAX_ENTRIES: usize = 64;

/// Groups `events` (in order of first appearance), `MAX_ENTRIES` per group at most.
pub(crate) fn group(events: &[Pending]) -> Vec<Group> {
    // Keyed by the fixed-size part of the group; source and category are compared on a hit
    // (a fingerprint is derived from its source, so they differ only on a hash collision).
    let mut index: HashMap<(Fingerprint, Outcome, Severity), Vec<usize>> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let same = index
            .entry((e.fingerprint, e.outcome, e.severity))
            .or_default();
        let found = same.iter().copied().find(|&g| {
            let first = &events[groups[g].members[0]];
            groups[g].members.len() < MAX_ENTRIES
                && first.source == e.source
                && first.category == e.category
        });
        let g = found.unwrap_or_else(|| {
            same.push(groups.len());
            groups.push(Group {
                members: Vec::new(),
                min_time_us: e.time_us,
                max_time_us: e.time_us,
                calls: 0,
            });
            groups.len() - 1
        });
        let g = &mut groups[g];
        g.members.push(i);
        g.min_time_us = g.min_time_us.min(e.time_us);
        g.max_time_us = g.max_time_us.max(e.time_us);
        g.calls = g.calls.saturating_add(to_i64(e.count));
    }
    groups
}

/// The postings of `groups`, once `events[i]` has been stored with id `ids[i]`.
pub(crate) fn rows(events: &[Pending], groups: &[Group], ids: &[i64]) -> Vec<NewPosting> {
    debug_assert_eq!(events.len(), ids.len());
    groups
        .iter()
        .map(|g| {
            let first = &events[g.members[0]];
            let pairs = g.members.iter().map(|&m| (events[m].time_us, ids[m]));
            let last_id = g.members.iter().map(|&m| ids[m]).max().unwrap_or(i64::MIN);
            NewPosting {
                fingerprint: first.fingerprint_hex.clone(),
                source: first.source.to_string(),
                category: first.category.to_owned(),
                outcome: first.outcome.as_str().to_owned(),
                severity: first.severity.as_str().to_owned(),
                min_time_us: g.min_time_us,
                max_time_us: g.max_time_us,
                last_id,
                events: to_i64(g.members.len() as u64),
                calls: g.calls,
                entries: write_entries(pairs),
            }
        })
        .collect()
}

/// A posting's `entries`: `(time_us, id)` pairs as space-separated `time_us:id`.
pub(crate) fn write_entries(pairs: impl ExactSizeIterator<Item = (i64, i64)>) -> String {
    // At most 20 + 1 + 20 characters and a space per pair; ~25 for today's times and ids.
    let mut out = String::with_capacity(pairs.len() * 26);
    let mut digits = itoa::Buffer::new();
    for (t, id) in pairs {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(digits.format(t));
        out.push(':');
        out.push_str(digits.format(id));
    }
    out
}

/// The `(time_us, id)` pairs of a posting's `entries`. A malformed pair is skipped: it can only
/// come from a hand-edited row, and the events it would name are still listed unfiltered.
pub(crate) fn entries(text: &str) -> impl Iterator<Item = (i64, i64)> + '_ {
    text.split_ascii_whitespace().filter_map(|pair| {
        let (t, id) = pair.split_once(':')?;
        Some((t.parse().ok()?, id.parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::rows::test_event;

    fn pending(source: &'static str, outcome: Outcome, count: u64, at_us: u64) -> Pending {
        let mut event = test_event(source, outcome);
        event.time = SystemTime::UNIX_EPOCH + Duration::from_micros(at_us);
        event.count = count;
        Pending::from_event(&event, 1024)
    }

    #[test]
    fn events_are_grouped_by_family_and_kind_with_their_times_ids_and_calls() {
        let events = [
            pending("a", Outcome::Failed, 1, 30),
            pending("b", Outcome::Failed, 1, 10),
            pending("a", Outcome::Failed, 4, 20),
            pending("a", Outcome::Healed, 1, 40),
        ];
        let postings = rows(&events, &group(&events), &[7, 8, 9, 10]);
        assert_eq!(postings.len(), 3);
        let a = &postings[0];
        assert_eq!(
            (a.source.as_str(), a.outcome.as_str(), a.category.as_str()),
            ("a", "failed", "database")
        );
        assert_eq!((a.min_time_us, a.max_time_us, a.last_id), (20, 30, 9));
        assert_eq!((a.events, a.calls), (2, 5));
        assert_eq!(entries(&a.entries).collect::<Vec<_>>(), [(30, 7), (20, 9)]);
        assert_eq!(postings[1].source, "b");
        assert_eq!(postings[2].outcome, "healed");
        assert_eq!(
            entries(&postings[2].entries).collect::<Vec<_>>(),
            [(40, 10)]
        );
    }

    #[test]
    fn a_large_group_is_split_into_postings_of_at_most_max_entries() {
        let events: Vec<Pending> = (0..(2 * MAX_ENTRIES + 1) as u64)
            .map(|i| pending("a", Outcome::Failed, 1, 1_764_000_000_000_000 + i))
            .collect();
        let ids: Vec<i64> = (10_000_000..).take(events.len()).collect();
        let postings = rows(&events, &group(&events), &ids);
        let sizes: Vec<i64> = postings.iter().map(|p| p.events).collect();
        assert_eq!(sizes, [MAX_ENTRIES as i64, MAX_ENTRIES as i64, 1]);
        let listed: Vec<i64> = postings
            .iter()
            .flat_map(|p| entries(&p.entries).map(|(_, id)| id).collect::<Vec<_>>())
            .collect();
        assert_eq!(listed, ids);
        assert!(postings.iter().all(|p| p.entries.len() < 2_000));
    }

    #[test]
    fn malformed_entries_are_skipped() {
        let pairs: Vec<_> = entries("1:2  x:3 4 -5:6 7:y 8:9").collect();
        assert_eq!(pairs, [(1, 2), (-5, 6), (8, 9)]);
    }
}
