//! Filtered event lists through the postings (see [`crate::postings`]): newest first, exact,
//! with the same keyset pagination as the unfiltered list.
//!
//! Postings are read newest first by their latest event; each names its events with their
//! times. Once `want` candidates are known and the next posting's latest event is older than the
//! `want`-th, no posting further down can change the page; only the page's rows are then read,
//! by id.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::with_conn;
use crate::error::StoreError;
use crate::postings::entries;
use crate::queries::EventRow;
use crate::records::{EventCursor, EventFilter};
use crate::rows::time_us;
use crate::store::DieselStore;

/// Postings read per query: enough for a page of a busy family in one round trip, few enough
/// that a rare family's page does not read much more than it needs.
const POSTINGS_PER_READ: i64 = 32;

impl EventFilter {
    /// Whether a column the events table has no index for narrows this filter: then the
    /// postings find its events.
    pub(crate) fn uses_postings(&self) -> bool {
        self.source.is_some()
            || self.category.is_some()
            || self.outcome.is_some()
            || self.severity.is_some()
            || self.fingerprint.is_some()
    }
}

impl DieselStore {
    /// The first `want` events matching `filter` after `after`, newest first (by time, then id).
    pub(crate) async fn events_by_postings(
        &self,
        filter: &EventFilter,
        after: Option<EventCursor>,
        want: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        let since = filter.since.map(time_us);
        let until = filter.until.map(time_us);
        let before = after.map(|c| (c.time_us, c.id));
        let matches = |t: i64, id: i64| {
            since.is_none_or(|s| t >= s)
                && until.is_none_or(|u| t < u)
                && before.is_none_or(|b| (t, id) < b)
        };
        // Best first; at most `want` kept.
        let mut found: Vec<(i64, i64)> = Vec::new();
        // Where the previous read stopped: (max_time_us, id) of its last posting.
        let mut read_to: Option<(i64, i64)> = None;
        loop {
            let postings = self
                .read_postings(filter, since, until, before, read_to)
                .await?;
            let Some(&(last_max, last_id, _)) = postings.last() else {
                break;
            };
            let exhausted = postings.len() < POSTINGS_PER_READ as usize;
            for (_, _, text) in &postings {
                found.extend(entries(text).filter(|&(t, id)| matches(t, id)));
            }
            found.sort_unstable_by(|a, b| b.cmp(a));
            found.dedup();
            found.truncate(want);
            read_to = Some((last_max, last_id));
            // Postings further down have no event newer than `last_max`.
            let settled = found.len() == want && found[want - 1].0 > last_max;
            if exhausted || settled {
                break;
            }
        }
        if found.is_empty() {
            return Ok(Vec::new());
        }
        // By time and id: PostgreSQL keys events by both (see the events_time_key migration).
        let times: Vec<i64> = found.iter().map(|&(t, _)| t).collect();
        let ids: Vec<i64> = found.iter().map(|&(_, id)| id).collect();
        let mut rows: Vec<EventRow> = with_conn!(self.shared, |conn, _B| {
            use crate::schema::healing_events::dsl as e;
            e::healing_events
                .select(EventRow::as_select())
                .filter(e::time_us.eq_any(&times).and(e::id.eq_any(&ids)))
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        // A posting may name an event pruned since (its other events are younger).
        rows.sort_unstable_by_key(|r| std::cmp::Reverse((r.time_us, r.id)));
        Ok(rows)
    }

    /// The next postings that may hold matching events, newest latest-event first.
    async fn read_postings(
        &self,
        filter: &EventFilter,
        since: Option<i64>,
        until: Option<i64>,
        before: Option<(i64, i64)>,
        read_to: Option<(i64, i64)>,
    ) -> Result<Vec<(i64, i64, String)>, StoreError> {
        use crate::schema::event_postings::dsl as p;
        Ok(with_conn!(self.shared, |conn, B| {
            let mut q = p::event_postings
                .select((p::max_time_us, p::id, p::entries))
                .into_boxed::<B>();
            if let Some(v) = &filter.source {
                q = q.filter(p::source.eq(v.clone()));
            }
            if let Some(v) = filter.category {
                q = q.filter(p::category.eq(v.as_str()));
            }
            if let Some(v) = filter.outcome {
                q = q.filter(p::outcome.eq(v.as_str()));
            }
            if let Some(v) = filter.severity {
                q = q.filter(p::severity.eq(v.as_str()));
            }
            if let Some(v) = filter.fingerprint {
                q = q.filter(p::fingerprint.eq(v.to_hex()));
            }
            if let Some(s) = since {
                q = q.filter(p::max_time_us.ge(s));
            }
            if let Some(u) = until {
                q = q.filter(p::min_time_us.lt(u));
            }
            if let Some((t, _)) = before {
                q = q.filter(p::min_time_us.le(t));
            }
            if let Some((t, id)) = read_to {
                q = q.filter(
                    p::max_time_us
                        .lt(t)
                        .or(p::max_time_us.eq(t).and(p::id.lt(id))),
                );
            }
            q.order((p::max_time_us.desc(), p::id.desc()))
                .limit(POSTINGS_PER_READ)
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        }))
    }
}
