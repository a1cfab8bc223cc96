//! Counters of the LLM analyzer, readable at any time (dashboard, `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

/// What became of the questions the analyzer asked, since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LlmStats {
    /// Questions handed to the analyzer's task.
    pub queued: u64,
    /// Questions dropped because its queue was full (asked again with a later batch).
    pub dropped: u64,
    /// Questions not sent because of the per-minute limit or a server's `Retry-After`.
    pub throttled: u64,
    /// Questions sent to the server.
    pub asked: u64,
    /// Well-formed answers (the diagnosis is stored as advice).
    pub answered: u64,
    /// Answers that recommended one of the healer's strategies (it became a prior).
    pub advised: u64,
    /// Answers that named a strategy the healer does not have (the name was ignored).
    pub unknown_strategy: u64,
    /// Refusals (`refusal` set, or `finish_reason: "content_filter"`).
    pub refused: u64,
    /// Answers cut at the token limit (`finish_reason: "length"`).
    pub truncated: u64,
    /// Replies or answers that were not the JSON asked for.
    pub malformed: u64,
    /// HTTP 429 replies.
    pub rate_limited: u64,
    /// Other non-success HTTP replies.
    pub http_errors: u64,
    /// The status of the last non-success reply (0 if none).
    pub last_http_status: u64,
    /// Questions that took longer than the timeout.
    pub timeouts: u64,
    /// Connection and transfer errors.
    pub transport_errors: u64,
    /// Times the server rejected `json_schema` and `json_object` was used instead.
    pub schema_fallbacks: u64,
    /// Advice the store failed to keep (the healer still uses it).
    pub store_errors: u64,
}

impl LlmStats {
    /// Every counter by a stable snake_case name, for metrics exporters.
    pub fn pairs(&self) -> [(&'static str, u64); 17] {
        [
            ("queued", self.queued),
            ("dropped", self.dropped),
            ("throttled", self.throttled),
            ("asked", self.asked),
            ("answered", self.answered),
            ("advised", self.advised),
            ("unknown_strategy", self.unknown_strategy),
            ("refused", self.refused),
            ("truncated", self.truncated),
            ("malformed", self.malformed),
            ("rate_limited", self.rate_limited),
            ("http_errors", self.http_errors),
            ("last_http_status", self.last_http_status),
            ("timeouts", self.timeouts),
            ("transport_errors", self.transport_errors),
            ("schema_fallbacks", self.schema_fallbacks),
            ("store_errors", self.store_errors),
        ]
    }
}

/// The live counters behind [`LlmStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) queued: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) throttled: AtomicU64,
    pub(crate) asked: AtomicU64,
    pub(crate) answered: AtomicU64,
    pub(crate) advised: AtomicU64,
    pub(crate) unknown_strategy: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) truncated: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) http_errors: AtomicU64,
    pub(crate) last_http_status: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) transport_errors: AtomicU64,
    pub(crate) schema_fallbacks: AtomicU64,
    pub(crate) store_errors: AtomicU64,
}

/// Adds one.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> LlmStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LlmStats {
            queued: get(&self.queued),
            dropped: get(&self.dropped),
            throttled: get(&self.throttled),
            asked: get(&self.asked),
            answered: get(&self.answered),
            advised: get(&self.advised),
            unknown_strategy: get(&self.unknown_strategy),
            refused: get(&self.refused),
            truncated: get(&self.truncated),
            malformed: get(&self.malformed),
            rate_limited: get(&self.rate_limited),
            http_errors: get(&self.http_errors),
            last_http_status: get(&self.last_http_status),
            timeouts: get(&self.timeouts),
            transport_errors: get(&self.transport_errors),
            schema_fallbacks: get(&self.schema_fallbacks),
            store_errors: get(&self.store_errors),
        }
    }
}
