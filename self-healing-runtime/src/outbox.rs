//! The outbox: calls of `queue_for_later` sites that could not succeed now, kept durably by the
//! store and replayed by the healer's outbox worker when the dependency is back.
//!
//! An entry is the call's key (the same [`CallKey`](crate::CallKey) its body saw), the site's
//! `source`, and its arguments as JSON. The store keeps at most one entry per key, so a call
//! queued twice (a retried request) is replayed once. Replays are claimed with a lease: two
//! instances sharing a store never replay the same entry at once, and an entry whose replay
//! died with its process comes back when the lease ends.

use std::fmt;
use std::time::{Duration, SystemTime};

mod memory;
mod replay;
mod track;
mod worker;

pub(crate) use memory::MemoryOutbox;
#[doc(hidden)]
pub use replay::{REPLAYERS, ReplayFn, ReplayFuture, Replayer};
pub(crate) use track::note_queued;
pub use track::{Delivery, Track, track};
pub use worker::ReplayReport;

/// Where an outbox entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxStatus {
    /// Waiting for its next replay.
    Pending,
    /// A replay succeeded: done, never replayed again.
    Delivered,
    /// Given up after too many failed replays (or a permanent error); only `retry` revives it.
    Dead,
}

impl OutboxStatus {
    /// Every status.
    pub const ALL: [OutboxStatus; 3] = [
        OutboxStatus::Pending,
        OutboxStatus::Delivered,
        OutboxStatus::Dead,
    ];

    /// The name used in storage, the CLI and the dashboard.
    pub const fn as_str(&self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Dead => "dead",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<OutboxStatus> {
        OutboxStatus::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl fmt::Display for OutboxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One queued call, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The call's key: unique in the outbox.
    pub key: String,
    /// The `source` of the site that queued it (which function replays it).
    pub source: String,
    /// The call's arguments, as JSON.
    pub payload: String,
    /// Where it stands.
    pub status: OutboxStatus,
    /// Replays started so far.
    pub attempts: u32,
    /// When the next replay may start (pending entries; the lease's end while one runs).
    pub next_attempt_at: SystemTime,
    /// When it was queued.
    pub created_at: SystemTime,
    /// When it last changed.
    pub updated_at: SystemTime,
    /// Why the last replay failed (scrubbed), if one did.
    pub last_error: Option<String>,
}

impl OutboxEntry {
    /// A new pending entry, due at once.
    pub fn new(
        key: impl Into<String>,
        source: impl Into<String>,
        payload: impl Into<String>,
        now: SystemTime,
    ) -> Self {
        OutboxEntry {
            key: key.into(),
            source: source.into(),
            payload: payload.into(),
            status: OutboxStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
            updated_at: now,
            last_error: None,
        }
    }
}

/// How a replay ended, for [`EventStore::outbox_settle`](crate::EventStore::outbox_settle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxSettle {
    /// It succeeded: the entry is delivered.
    Delivered,
    /// It failed; replay again at `at`.
    RetryAt {
        /// When the next replay may start.
        at: SystemTime,
        /// Why it failed (scrubbed).
        error: String,
    },
    /// It failed for good (too many tries, or an error no replay can fix).
    Dead {
        /// Why (scrubbed).
        error: String,
    },
}

/// How many entries stand where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting for a replay.
    pub pending: u64,
    /// Replayed successfully.
    pub delivered: u64,
    /// Given up.
    pub dead: u64,
}

/// What the outbox worker does: how often it looks, how it backs off, when it gives up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutboxConfig {
    /// How often the worker asks the store for due entries.
    pub poll: Duration,
    /// How long a claimed replay may run before another instance may take the entry over.
    pub lease: Duration,
    /// The wait after the first failed replay; doubled after each further one.
    pub backoff: Duration,
    /// The longest wait between replays.
    pub max_backoff: Duration,
    /// Replays before an entry is dead-lettered.
    pub max_tries: u32,
    /// Entries claimed per poll.
    pub batch: usize,
    /// Replays run side by side, at most (a slow one does not hold the others back; many at
    /// once would meet the dependency's quota together).
    pub concurrency: usize,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            poll: Duration::from_millis(500),
            lease: Duration::from_secs(60),
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            max_tries: 8,
            batch: 32,
            concurrency: 4,
        }
    }
}

impl OutboxConfig {
    /// The wait before the replay after `attempts` failed ones: half of [`backoff_after`]
    /// plus a random part of the other half (`random` in [0, 1)), so entries that failed
    /// together do not come back together.
    ///
    /// [`backoff_after`]: Self::backoff_after
    pub fn jittered_backoff_after(&self, attempts: u32, random: f64) -> Duration {
        let full = self.backoff_after(attempts);
        full / 2 + full.mul_f64(random.clamp(0.0, 1.0) / 2.0)
    }

    /// The longest wait before the replay after `attempts` failed ones (at least one).
    pub fn backoff_after(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in OutboxStatus::ALL {
            assert_eq!(OutboxStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OutboxStatus::parse("queued"), None);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let c = OutboxConfig {
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            ..OutboxConfig::default()
        };
        let waits: Vec<u64> = (1..=6).map(|n| c.backoff_after(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert_eq!(c.backoff_after(u32::MAX), Duration::from_secs(10));
        assert_eq!(c.jittered_backoff_after(3, 0.0), Duration::from_secs(2));
        assert_eq!(c.jittered_backoff_after(3, 7.0), Duration::from_secs(4));
    }
}
