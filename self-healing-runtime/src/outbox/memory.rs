//! The outbox of an [`InMemoryStore`](crate::InMemoryStore): the reference for what a store's
//! outbox does (see the `outbox_*` methods of [`EventStore`](crate::EventStore)).

use std::time::{Duration, SystemTime};

use super::{OutboxCounts, OutboxEntry, OutboxSettle, OutboxStatus};

/// Entries in the order they were queued.
#[derive(Debug, Default)]
pub(crate) struct MemoryOutbox(Vec<OutboxEntry>);

impl MemoryOutbox {
    /// Queues `entry` unless its key is there already.
    pub(crate) fn put(&mut self, entry: &OutboxEntry) -> bool {
        let fresh = !self.0.iter().any(|e| e.key == entry.key);
        if fresh {
            self.0.push(entry.clone());
        }
        fresh
    }

    /// Claims the pending entries due at `now`, oldest due first.
    pub(crate) fn claim(
        &mut self,
        now: SystemTime,
        lease: Duration,
        limit: usize,
    ) -> Vec<OutboxEntry> {
        let mut due: Vec<&mut OutboxEntry> = self
            .0
            .iter_mut()
            .filter(|e| e.status == OutboxStatus::Pending && e.next_attempt_at <= now)
            .collect();
        due.sort_by_key(|e| e.next_attempt_at);
        due.into_iter()
            .take(limit)
            .map(|e| {
                e.attempts += 1;
                e.next_attempt_at = now + lease;
                e.updated_at = now;
                e.clone()
            })
            .collect()
    }

    /// Records how a replay of the pending entry `key` ended.
    pub(crate) fn settle(&mut self, key: &str, settle: &OutboxSettle, now: SystemTime) {
        let Some(e) = self
            .0
            .iter_mut()
            .find(|e| e.key == key && e.status == OutboxStatus::Pending)
        else {
            return;
        };
        e.updated_at = now;
        match settle {
            OutboxSettle::Delivered => e.status = OutboxStatus::Delivered,
            OutboxSettle::RetryAt { at, error } => {
                e.next_attempt_at = *at;
                e.last_error = Some(error.clone());
            }
            OutboxSettle::Dead { error } => {
                e.status = OutboxStatus::Dead;
                e.last_error = Some(error.clone());
            }
        }
    }

    /// Entries of `status` (or all), newest first.
    pub(crate) fn list(&self, status: Option<OutboxStatus>, limit: usize) -> Vec<OutboxEntry> {
        self.0
            .iter()
            .rev()
            .filter(|e| status.is_none_or(|s| s == e.status))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Makes a pending or dead entry due at `now`, its tries counted afresh.
    pub(crate) fn retry(&mut self, key: &str, now: SystemTime) -> bool {
        let Some(e) = self
            .0
            .iter_mut()
            .find(|e| e.key == key && e.status != OutboxStatus::Delivered)
        else {
            return false;
        };
        e.status = OutboxStatus::Pending;
        e.attempts = 0;
        e.next_attempt_at = now;
        e.updated_at = now;
        true
    }

    /// Removes an entry, whatever its status.
    pub(crate) fn remove(&mut self, key: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|e| e.key != key);
        self.0.len() != before
    }

    /// How many entries stand where.
    pub(crate) fn counts(&self) -> OutboxCounts {
        let mut counts = OutboxCounts::default();
        for e in &self.0 {
            match e.status {
                OutboxStatus::Pending => counts.pending += 1,
                OutboxStatus::Delivered => counts.delivered += 1,
                OutboxStatus::Dead => counts.dead += 1,
            }
        }
        counts
    }
}
