//! Healing events: what happened to one failing call, and the stores that keep them.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::Category;
use crate::diagnosis::{ErrorClass, Fingerprint, Severity};
use crate::outbox::{MemoryOutbox, OutboxCounts, OutboxEntry, OutboxSettle, OutboxStatus};
use crate::selection::{Advice, PatternRow};

/// What stores without an outbox answer a write to it.
const NO_OUTBOX: &str = "this store keeps no outbox (queue_for_later needs a store that does)";

/// How a failing call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// A strategy produced a good value of the function's own type.
    Healed,
    /// Strategies ran and the error went back to the caller (escalations included).
    Failed,
    /// The circuit was open: the call failed fast without reaching the dependency.
    FastFailed,
    /// A re-run would have been tried, but the site's retry budget was spent.
    BudgetExhausted,
    /// No strategy could act on this failure.
    NotApplicable,
    /// Not a call: someone changed the site's circuit by hand (opened, closed or reset it);
    /// the message says what and why. Never counted for or against a strategy.
    Manual,
    /// The call could not succeed now and was written to the outbox (`queue_for_later`): the
    /// caller got `Ok(())`, and the outbox worker replays it later.
    Queued,
    /// The work of a `skip` site was dropped: the caller got `Ok(())` without it.
    Skipped,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 8] = [
        Outcome::Healed,
        Outcome::Failed,
        Outcome::FastFailed,
        Outcome::BudgetExhausted,
        Outcome::NotApplicable,
        Outcome::Manual,
        Outcome::Queued,
        Outcome::Skipped,
    ];

    /// The snake_case name used in storage and the dashboard.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Outcome::Healed => "healed",
            Outcome::Failed => "failed",
            Outcome::FastFailed => "fast_failed",
            Outcome::BudgetExhausted => "budget_exhausted",
            Outcome::NotApplicable => "not_applicable",
            Outcome::Manual => "manual",
            Outcome::Queued => "queued",
            Outcome::Skipped => "skipped",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What events are folded by: source, fingerprint, first acting strategy, last acting strategy,
/// outcome (see [`HealingEvent::fold_key`]).
pub type FoldKey = (
    Cow<'static, str>,
    Fingerprint,
    Option<Cow<'static, str>>,
    Option<Cow<'static, str>>,
    Outcome,
);

/// One failing call and what healing did about it.
///
/// Under an error storm, events with the same site, fingerprint, first and last acting strategy
/// and outcome are folded into one record: `count` says how many calls it stands for, and
/// `duration` is their total.
#[derive(Debug, Clone, PartialEq)]
pub struct HealingEvent {
    /// When the call started.
    pub time: SystemTime,
    /// Which process produced it (see `HealerBuilder::instance_id`).
    pub instance: Arc<str>,
    /// The site's `source`.
    pub source: Cow<'static, str>,
    /// The site's category.
    pub category: Category,
    /// The family of the failure.
    pub fingerprint: Fingerprint,
    /// The kind of failure.
    pub class: ErrorClass,
    /// The error chain as one line, capped at 2 KiB; scrubbed of secrets by the event worker
    /// before any store or observer sees it.
    pub message: String,
    /// How bad it was (raised by escalation).
    pub severity: Severity,
    /// The strategy that healed it, or the last one tried; `None` when none applied.
    pub strategy: Option<Cow<'static, str>>,
    /// How the call ended.
    pub outcome: Outcome,
    /// Attempts made, the first one included (the maximum when folded).
    pub attempts: u32,
    /// Time from the call's start to its end (the total when folded).
    pub duration: Duration,
    /// How the failure was diagnosed.
    pub diagnosis: DiagnosisRecord,
    /// How many calls this record stands for (1 unless folded).
    pub count: u64,
    /// The idempotency key of the call (keyed and `queue_for_later` sites; the first call's
    /// when folded), as 32 hex digits.
    pub call_key: Option<String>,
}

impl HealingEvent {
    /// The key events are folded by: site, family, the strategy that acted first, the one that
    /// acted last, and the outcome. Calls that took different paths to the same end stay apart,
    /// so the records show how the choice of a strategy changed over time.
    pub fn fold_key(&self) -> FoldKey {
        (
            self.source.clone(),
            self.fingerprint,
            self.first_actor_cow(),
            self.strategy.clone(),
            self.outcome,
        )
    }

    /// The strategy that acted first (re-ran, served a fallback or a cached value), if any did.
    pub fn first_actor(&self) -> Option<&str> {
        self.diagnosis
            .steps
            .iter()
            .find(|s| s.result != StepResult::Skipped)
            .map(|s| &*s.strategy)
    }

    fn first_actor_cow(&self) -> Option<Cow<'static, str>> {
        self.diagnosis
            .steps
            .iter()
            .find(|s| s.result != StepResult::Skipped)
            .map(|s| s.strategy.clone())
    }

    /// Adds `other` (same fold key) into this record.
    pub fn absorb(&mut self, other: &HealingEvent) {
        self.count = self.count.saturating_add(other.count);
        self.duration = self.duration.saturating_add(other.duration);
        self.attempts = self.attempts.max(other.attempts);
        self.severity = self.severity.max(other.severity);
    }
}

/// How a failure was diagnosed, as stored with its event.
#[derive(Debug, Clone, PartialEq)]
pub struct DiagnosisRecord {
    /// Which analyzer decided (`"rules"`, `"llm"`).
    pub analyzer: Cow<'static, str>,
    /// Its confidence, 0 to 1.
    pub confidence: f32,
    /// The rule or reasoning, in one line.
    pub reason: Cow<'static, str>,
    /// Whether the call provably never reached the dependency.
    pub never_reached: bool,
    /// The strategies tried, in order, with what each did.
    pub steps: Vec<Step>,
}

/// One strategy decision within a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The strategy's name.
    pub strategy: Cow<'static, str>,
    /// Whether it acted, and how that ended.
    pub result: StepResult,
    /// Time from its action to the result (zero when skipped).
    pub took: Duration,
    /// What happened, in words: "healed", "not applicable: …", "refused: …".
    pub note: Cow<'static, str>,
}

/// How one strategy's turn ended. Learned statistics are exactly the `Healed`/`Failed` steps,
/// credited to the strategy that acted (so a store can rebuild them from events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepResult {
    /// It acted and the call produced a good value.
    Healed,
    /// It acted and the call failed again.
    Failed,
    /// It did not act (not applicable, refused, hook failed, or a terminal decision).
    Skipped,
}

impl StepResult {
    /// The snake_case name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            StepResult::Healed => "healed",
            StepResult::Failed => "failed",
            StepResult::Skipped => "skipped",
        }
    }
}

/// The error a store returns.
pub type StoreError = Box<dyn Error + Send + Sync>;

/// A boxed future, for object-safe async traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where healing events go. Writes arrive in batches from the background worker, never from the
/// caller's path.
///
/// ```
/// use self_healing_runtime::event::{BoxFuture, EventStore, HealingEvent, StoreError};
///
/// /// Prints events instead of keeping them.
/// #[derive(Debug)]
/// struct Stdout;
///
/// impl EventStore for Stdout {
///     fn write_batch<'a>(&'a self, events: &'a [HealingEvent]) -> BoxFuture<'a, Result<(), StoreError>> {
///         Box::pin(async move {
///             for e in events {
///                 println!("{} {} {:?}", e.source, e.outcome, e.strategy);
///             }
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait EventStore: Send + Sync + fmt::Debug + 'static {
    /// Persists a batch. An error makes the worker retry the batch a few times, then count it as
    /// lost; it never reaches the caller of a wrapped function.
    fn write_batch<'a>(
        &'a self,
        events: &'a [HealingEvent],
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Persists an analyzer's advice for a family of failures (stores without a place for it
    /// keep nothing).
    fn write_advice<'a>(
        &'a self,
        fingerprint: Fingerprint,
        advice: &'a Advice,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = (fingerprint, advice);
        Box::pin(std::future::ready(Ok(())))
    }

    /// Learned statistics shared by every instance using this store (warm start and refresh).
    fn load_patterns(&self) -> BoxFuture<'_, Result<Vec<PatternRow>, StoreError>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// Advice stored for families of failures.
    fn load_advice(&self) -> BoxFuture<'_, Result<Vec<(Fingerprint, Advice)>, StoreError>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// Checks that the store answers (the `store` health check).
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Shares a circuit's news with the other instances using this store (see
    /// [`fleet`](crate::fleet)); stores that share nothing keep nothing.
    fn publish_circuit<'a>(
        &'a self,
        notice: &'a crate::fleet::CircuitNotice,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = notice;
        Box::pin(std::future::ready(Ok(())))
    }

    /// The circuit news published after `after` (an id; `-1` for "where does the log stand":
    /// the latest notice suffices), oldest first. A store may wait up to `wait` for news to
    /// arrive (PostgreSQL's `LISTEN`); the default answers at once with none.
    fn poll_circuits(
        &self,
        after: i64,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<crate::fleet::CircuitNotice>, StoreError>> {
        let _ = (after, wait);
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// Persists a health report (stores without a place for it keep nothing).
    fn write_health<'a>(
        &'a self,
        report: &'a crate::health::HealthReport,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = report;
        Box::pin(std::future::ready(Ok(())))
    }

    /// Queues a call of a `queue_for_later` site. `Ok(false)`: an entry with this key is there
    /// already, and nothing changed (a call is queued at most once). Stores without an outbox
    /// refuse, and the call fails with its own error.
    fn outbox_put<'a>(&'a self, entry: &'a OutboxEntry) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = entry;
        Box::pin(std::future::ready(Err(NO_OUTBOX.into())))
    }

    /// Claims up to `limit` pending entries due at `now`, oldest due first: each one's attempt
    /// count goes up by one and its next replay moves to `now + lease`, so no other worker takes
    /// it while this one replays it. Returns them as they are after the claim.
    fn outbox_claim(
        &self,
        now: SystemTime,
        lease: Duration,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<OutboxEntry>, StoreError>> {
        let _ = (now, lease, limit);
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// Records how a replay of the pending entry `key` ended (nothing when it is not pending:
    /// dropped or settled meanwhile).
    fn outbox_settle<'a>(
        &'a self,
        key: &'a str,
        settle: &'a OutboxSettle,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = (key, settle, now);
        Box::pin(std::future::ready(Err(NO_OUTBOX.into())))
    }

    /// Entries, newest first, of one status or all.
    fn outbox_list(
        &self,
        status: Option<OutboxStatus>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<OutboxEntry>, StoreError>> {
        let _ = (status, limit);
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// Makes a pending or dead entry due at `now` with its tries counted afresh. `Ok(false)`:
    /// no such entry, or it was delivered (a delivered call is never replayed).
    fn outbox_retry<'a>(
        &'a self,
        key: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = (key, now);
        Box::pin(std::future::ready(Err(NO_OUTBOX.into())))
    }

    /// Removes an entry whatever its status. `Ok(false)`: there was none.
    fn outbox_drop<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = key;
        Box::pin(std::future::ready(Err(NO_OUTBOX.into())))
    }

    /// How many entries stand where.
    fn outbox_counts(&self) -> BoxFuture<'_, Result<OutboxCounts, StoreError>> {
        Box::pin(std::future::ready(Ok(OutboxCounts::default())))
    }

    /// Waits until every batch handed to [`write_batch`](Self::write_batch) so far is durable.
    ///
    /// Stores that buffer (the Diesel store commits from a task of its own) wait for their
    /// buffer here, so a program can stop without losing events. The default is for stores
    /// whose `write_batch` is done when it returns: nothing to wait for.
    ///
    /// # Errors
    /// Why the events are not durable yet (the database is unreachable, the store is closed).
    fn flush(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Makes what was written durable and stops the store's background work: the last call a
    /// store gets (from `Healer::shutdown`). Batches written afterwards may be refused. The
    /// default is [`flush`](Self::flush).
    ///
    /// # Errors
    /// Why some events could not be made durable.
    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.flush()
    }
}

/// Sees every batch of events the worker wrote (notifiers, background analyzers, live feeds).
///
/// Called on the event worker, after the store: it must return quickly. Do slow work (HTTP, an
/// LLM) in a task of your own, fed by a bounded channel, so a slow receiver can never stall the
/// worker.
pub trait EventObserver: Send + Sync + fmt::Debug + 'static {
    /// A batch was written.
    fn observe(&self, batch: Observed<'_>);
}

/// A written batch and the healer's shared state, as an [`EventObserver`] sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Observed<'a> {
    /// The records written (folded records stand for `count` calls).
    pub events: &'a [HealingEvent],
    /// The healer's learned statistics; analyzers put their advice here.
    pub patterns: &'a crate::selection::PatternTable,
    /// The healer's store (to persist advice, for instance).
    pub store: &'a Arc<dyn EventStore>,
    /// The names of the healer's strategies (advice naming anything else is ignored).
    pub strategies: &'a [&'static str],
}

/// Records an [`InMemoryStore`] keeps unless told otherwise: about 10,000 × 1–3 KB, tens of MB at
/// most.
pub const DEFAULT_IN_MEMORY_CAPACITY: usize = 10_000;

/// An event store in memory, for tests and for programs that only want the dashboard's live view.
///
/// It keeps the newest [`DEFAULT_IN_MEMORY_CAPACITY`] records (or the number given to
/// [`with_capacity`](Self::with_capacity)): when full, the oldest record makes room and is
/// counted in [`dropped`](Self::dropped), so a long-running process never grows without bound.
/// Cloning shares the events.
///
/// ```
/// let store = self_healing_runtime::InMemoryStore::with_capacity(100);
/// assert!(store.events().is_empty());
/// assert_eq!((store.capacity(), store.dropped()), (100, 0));
/// ```
#[derive(Debug, Clone)]
pub struct InMemoryStore {
    inner: Arc<Mutex<Kept>>,
}

/// The records of an [`InMemoryStore`], oldest first, and what made room for newer ones.
#[derive(Debug)]
struct Kept {
    events: VecDeque<HealingEvent>,
    capacity: usize,
    dropped: u64,
    /// The outbox, in the order entries were queued.
    outbox: MemoryOutbox,
}

impl Default for InMemoryStore {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_IN_MEMORY_CAPACITY)
    }
}

impl InMemoryStore {
    /// An empty store keeping the newest [`DEFAULT_IN_MEMORY_CAPACITY`] records.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store keeping the newest `capacity` records. Zero keeps none (every record
    /// is only counted in [`dropped`](Self::dropped)).
    pub fn with_capacity(capacity: usize) -> Self {
        InMemoryStore {
            inner: Arc::new(Mutex::new(Kept {
                // Grows as records come: a large capacity costs nothing until it is used.
                events: VecDeque::with_capacity(capacity.min(1024)),
                capacity,
                dropped: 0,
                outbox: MemoryOutbox::default(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of every record kept, oldest first.
    pub fn events(&self) -> Vec<HealingEvent> {
        self.lock().events.iter().cloned().collect()
    }

    /// The number of calls the kept records stand for (folded records count their `count`).
    pub fn total_count(&self) -> u64 {
        self.lock().events.iter().map(|e| e.count).sum()
    }

    /// The most records kept at once.
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// Records removed to make room for newer ones since the store was created (records, not
    /// calls: a folded record counts once). [`clear`](Self::clear) does not reset it.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Forgets every record.
    pub fn clear(&self) {
        self.lock().events.clear();
    }
}

impl EventStore for InMemoryStore {
    fn write_batch<'a>(
        &'a self,
        events: &'a [HealingEvent],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut kept = self.lock();
        let kept = &mut *kept;
        // Only the newest `capacity` of the batch can stay: skip the rest without cloning them.
        let skip = events.len().saturating_sub(kept.capacity);
        let overflow = (kept.events.len() + events.len() - skip).saturating_sub(kept.capacity);
        kept.events.drain(..overflow);
        kept.events.extend(events[skip..].iter().cloned());
        kept.dropped += (skip + overflow) as u64;
        Box::pin(std::future::ready(Ok(())))
    }

    fn outbox_put<'a>(&'a self, entry: &'a OutboxEntry) -> BoxFuture<'a, Result<bool, StoreError>> {
        ready(Ok(self.lock().outbox.put(entry)))
    }

    fn outbox_claim(
        &self,
        now: SystemTime,
        lease: Duration,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<OutboxEntry>, StoreError>> {
        ready(Ok(self.lock().outbox.claim(now, lease, limit)))
    }

    fn outbox_settle<'a>(
        &'a self,
        key: &'a str,
        settle: &'a OutboxSettle,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.lock().outbox.settle(key, settle, now);
        ready(Ok(()))
    }

    fn outbox_list(
        &self,
        status: Option<OutboxStatus>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<OutboxEntry>, StoreError>> {
        ready(Ok(self.lock().outbox.list(status, limit)))
    }

    fn outbox_retry<'a>(
        &'a self,
        key: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        ready(Ok(self.lock().outbox.retry(key, now)))
    }

    fn outbox_drop<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        ready(Ok(self.lock().outbox.remove(key)))
    }

    fn outbox_counts(&self) -> BoxFuture<'_, Result<OutboxCounts, StoreError>> {
        ready(Ok(self.lock().outbox.counts()))
    }
}

/// A future that is ready with `value`.
fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> HealingEvent {
        HealingEvent {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(n),
            instance: Arc::from("test"),
            source: Cow::Borrowed("site"),
            category: Category::Runtime,
            fingerprint: Fingerprint(7),
            class: ErrorClass::Transient,
            message: format!("event {n}"),
            severity: Severity::Low,
            strategy: None,
            outcome: Outcome::Failed,
            attempts: 1,
            duration: Duration::ZERO,
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

    fn write(store: &InMemoryStore, range: std::ops::Range<u64>) {
        let batch: Vec<HealingEvent> = range.map(event).collect();
        let done = store.write_batch(&batch);
        drop(done);
    }

    fn kept(store: &InMemoryStore) -> Vec<String> {
        store.events().into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn the_default_capacity_is_bounded() {
        let store = InMemoryStore::new();
        assert_eq!(store.capacity(), DEFAULT_IN_MEMORY_CAPACITY);
        write(&store, 0..DEFAULT_IN_MEMORY_CAPACITY as u64 + 5);
        assert_eq!(store.events().len(), DEFAULT_IN_MEMORY_CAPACITY);
        assert_eq!(store.dropped(), 5);
        assert_eq!(store.events()[0].message, "event 5");
    }

    #[test]
    fn a_full_store_drops_the_oldest_and_counts_them() {
        let store = InMemoryStore::with_capacity(3);
        write(&store, 0..2);
        assert_eq!((kept(&store).len(), store.dropped()), (2, 0));
        write(&store, 2..4);
        assert_eq!(kept(&store), ["event 1", "event 2", "event 3"]);
        assert_eq!(store.dropped(), 1);
        // A batch larger than the store keeps its newest records only.
        write(&store, 4..9);
        assert_eq!(kept(&store), ["event 6", "event 7", "event 8"]);
        assert_eq!(store.dropped(), 6);
        assert_eq!(store.total_count(), 3);
        // Clearing forgets the records, not the count of those dropped.
        store.clear();
        assert!(store.events().is_empty());
        assert_eq!(store.dropped(), 6);
        // Clones share everything.
        let clone = store.clone();
        write(&clone, 9..10);
        assert_eq!(kept(&store), ["event 9"]);
    }

    #[test]
    fn zero_capacity_keeps_nothing_and_counts_everything() {
        let store = InMemoryStore::with_capacity(0);
        write(&store, 0..4);
        assert!(store.events().is_empty());
        assert_eq!(store.dropped(), 4);
    }
}
