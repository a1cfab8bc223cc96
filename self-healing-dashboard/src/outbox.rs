//! The outbox panel: how many calls of `queue_for_later` sites are pending, delivered and dead,
//! and the newest pending and dead entries (on the page, and as `api/outbox`).
//!
//! An entry's payload (the call's arguments) is left out: it may hold personal data, and the
//! CLI's `queue list --json` shows it to operators who ask. Every text is shown as text: the
//! page escapes it.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use self_healing_runtime::outbox::{OutboxEntry, OutboxStatus};
use self_healing_store::{DieselStore, MAX_OUTBOX_PAGE, StoreError};
use serde::{Deserialize, Serialize};

use crate::state::DashboardState;
use crate::time_fmt;

/// Pending and dead entries the page shows, and `api/outbox` returns by default.
pub(crate) const PANEL_ENTRIES: usize = 10;

/// Characters of a last error the page shows.
const ERROR_CHARS: usize = 160;

/// One outbox entry, without its payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct OutboxEntryView {
    /// The call's key (32 hex digits).
    pub(crate) key: String,
    /// The site that queued it.
    pub(crate) source: String,
    /// `pending`, `delivered` or `dead`.
    pub(crate) status: &'static str,
    /// Replays started so far.
    pub(crate) attempts: u32,
    /// When the next replay may start (RFC 3339); `null` unless pending.
    pub(crate) next_attempt_at: Option<String>,
    /// When it was queued (RFC 3339).
    pub(crate) created_at: String,
    /// When it last changed (RFC 3339).
    pub(crate) updated_at: String,
    /// Why the last replay failed (scrubbed), if one did.
    pub(crate) last_error: Option<String>,
}

impl From<&OutboxEntry> for OutboxEntryView {
    fn from(e: &OutboxEntry) -> Self {
        OutboxEntryView {
            key: e.key.clone(),
            source: e.source.clone(),
            status: e.status.as_str(),
            attempts: e.attempts,
            next_attempt_at: (e.status == OutboxStatus::Pending)
                .then(|| time_fmt::rfc3339(e.next_attempt_at)),
            created_at: time_fmt::rfc3339(e.created_at),
            updated_at: time_fmt::rfc3339(e.updated_at),
            last_error: e.last_error.clone(),
        }
    }
}

impl OutboxEntryView {
    /// The next attempt for people, or `—`.
    pub(crate) fn next_label(&self) -> String {
        self.next_attempt_at
            .as_deref()
            .map_or_else(|| "—".to_owned(), time_fmt::label_of_rfc3339)
    }

    /// When it last changed, for people (a dead entry: when it was given up).
    pub(crate) fn updated_label(&self) -> String {
        time_fmt::label_of_rfc3339(&self.updated_at)
    }

    /// The last error on one line, truncated, or `—`.
    pub(crate) fn error_line(&self) -> String {
        self.last_error
            .as_deref()
            .map_or_else(|| "—".to_owned(), |e| time_fmt::one_line(e, ERROR_CHARS))
    }
}

/// Entries per status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct OutboxCountsView {
    pub(crate) pending: u64,
    pub(crate) delivered: u64,
    pub(crate) dead: u64,
}

/// What the panel and `api/outbox` show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct OutboxPanel {
    pub(crate) counts: OutboxCountsView,
    /// The newest pending entries.
    pub(crate) pending: Vec<OutboxEntryView>,
    /// The newest dead entries.
    pub(crate) dead: Vec<OutboxEntryView>,
}

impl OutboxPanel {
    /// Reads the counts and the newest `entries` pending and dead entries.
    pub(crate) async fn load(store: &DieselStore, entries: usize) -> Result<Self, StoreError> {
        let (counts, pending, dead) = tokio::try_join!(
            store.count_outbox_entries(),
            store.outbox_entries(Some(OutboxStatus::Pending), entries),
            store.outbox_entries(Some(OutboxStatus::Dead), entries),
        )?;
        Ok(OutboxPanel {
            counts: OutboxCountsView {
                pending: counts.pending,
                delivered: counts.delivered,
                dead: counts.dead,
            },
            pending: pending.iter().map(OutboxEntryView::from).collect(),
            dead: dead.iter().map(OutboxEntryView::from).collect(),
        })
    }

    /// Whether nothing was ever queued (or all of it was pruned).
    pub(crate) fn is_empty(&self) -> bool {
        let c = self.counts;
        c.pending + c.delivered + c.dead == 0
    }
}

/// The `limit` parameter of `api/outbox`.
#[derive(Debug, Deserialize)]
pub(crate) struct OutboxQuery {
    limit: Option<usize>,
}

/// `GET api/outbox?limit=10`: the outbox's counts per status and its newest pending and dead
/// entries, `limit` of each (1–1000), payloads left out.
pub(crate) async fn outbox(
    State(state): State<DashboardState>,
    Query(q): Query<OutboxQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(PANEL_ENTRIES);
    if !(1..=MAX_OUTBOX_PAGE).contains(&limit) {
        return crate::api::error(
            StatusCode::BAD_REQUEST,
            format!("invalid `limit`: expected 1 to {MAX_OUTBOX_PAGE}"),
        );
    }
    match OutboxPanel::load(&state.inner.store, limit).await {
        Ok(panel) => Json(panel).into_response(),
        Err(e) => crate::api::store_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn labels() {
        let t = UNIX_EPOCH + Duration::from_secs(1_764_338_592);
        let mut e = OutboxEntry::new("0123", "createContact", "{}", t);
        let v = OutboxEntryView::from(&e);
        assert_eq!(v.next_label(), "2025-11-28 14:03:12Z");
        assert_eq!(v.error_line(), "—");
        e.status = OutboxStatus::Dead;
        e.last_error = Some(format!("line one\nline two {}", "x".repeat(300)));
        let v = OutboxEntryView::from(&e);
        assert_eq!(v.next_attempt_at, None, "a dead entry waits for nothing");
        assert_eq!(v.next_label(), "—");
        assert!(v.error_line().starts_with("line one line two x"));
        assert!(v.error_line().ends_with('…'));
        assert!(v.error_line().chars().count() <= ERROR_CHARS + 1);
        assert_eq!(v.updated_label(), "2025-11-28 14:03:12Z");
    }
}
