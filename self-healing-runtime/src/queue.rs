//! The bounded event queue between callers and the store, and the background worker draining it.
//!
//! Callers never wait and never allocate: `push` puts the event in a preallocated ring (a
//! lock-free bounded queue) and wakes the worker. When the queue is full, the event is folded into an
//! overflow record with the same (source, fingerprint, strategy, outcome) and its count bumped;
//! only when the overflow table itself is full (more than `OVERFLOW_KEYS` distinct families at
//! once) is an event dropped, and then it is counted. The worker folds again within each batch,
//! so an error storm becomes a handful of rows with counts.

use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::event::{EventObserver, EventStore, FoldKey, HealingEvent};
use crate::selection::PatternTable;

/// Distinct event families the overflow table holds before events are dropped.
const OVERFLOW_KEYS: usize = 4096;
/// Events written per store call at most, and distinct families per fold window.
const BATCH: usize = 1024;
/// Store attempts per batch before it is counted as lost.
const STORE_ATTEMPTS: u32 = 3;

/// What callers and the worker share: the ring of events and the worker's wake-up.
struct Shared {
    events: ArrayQueue<HealingEvent>,
    wake: Notify,
    /// The worker is about to wait, or waiting, for events: only then does a push wake it, so
    /// callers in a storm (when the worker is busy) never touch the `Notify`'s waiter list.
    sleeping: AtomicBool,
    /// The healer is gone: the worker drains what is left and stops.
    closed: AtomicBool,
}

/// Counters of the event pipeline, readable at any time.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Calls whose events were handed to the queue (or folded/dropped on the way).
    pub(crate) recorded: AtomicU64,
    /// Records merged into another record (queue full, or folded within a batch).
    pub(crate) folded: AtomicU64,
    /// Events lost because the overflow table was full or the worker was gone.
    pub(crate) dropped: AtomicU64,
    /// Calls whose records reached the store (a folded record counts its `count`).
    pub(crate) written: AtomicU64,
    /// Records lost because the store failed `STORE_ATTEMPTS` times.
    pub(crate) lost_to_store: AtomicU64,
    /// Events waiting in the queue.
    pub(crate) depth: AtomicU64,
    /// `dropped` and `lost_to_store` as last reported by a flush, so each loss is reported once.
    reported_dropped: AtomicU64,
    reported_lost_to_store: AtomicU64,
}

/// A snapshot of the event pipeline's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Failing calls recorded since the healer was built.
    pub recorded: u64,
    /// Records folded into another record (they are still counted in its `count`).
    pub folded: u64,
    /// Events dropped (overflow table full, or no worker).
    pub dropped: u64,
    /// Failing calls whose records reached the store.
    pub written: u64,
    /// Failing calls whose records the store refused repeatedly.
    pub lost_to_store: u64,
    /// Events waiting in the queue now.
    pub depth: u64,
}

pub(crate) struct EventQueue {
    shared: Arc<Shared>,
    /// Flush requests: rare, so a channel of their own.
    flushes: mpsc::UnboundedSender<oneshot::Sender<()>>,
    overflow: Arc<Mutex<FxHashMap<FoldKey, HealingEvent>>>,
    pub(crate) counters: Arc<Counters>,
}

impl std::fmt::Debug for EventQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQueue")
            .field("queued", &self.shared.events.len())
            .field("capacity", &self.shared.events.capacity())
            .finish_non_exhaustive()
    }
}

impl Drop for EventQueue {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

impl EventQueue {
    /// A queue of `capacity` events and its worker, spawned on the current tokio runtime, or on a
    /// thread of its own when there is none.
    pub(crate) fn start(
        capacity: usize,
        window: Duration,
        store: Arc<dyn EventStore>,
        observers: Vec<Arc<dyn EventObserver>>,
        patterns: PatternTable,
        strategies: Vec<&'static str>,
    ) -> Self {
        let shared = Arc::new(Shared {
            events: ArrayQueue::new(capacity.max(1)),
            wake: Notify::new(),
            sleeping: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let (flushes, flush_requests) = mpsc::unbounded_channel();
        let overflow = Arc::new(Mutex::new(FxHashMap::default()));
        let counters = Arc::new(Counters::default());
        let worker = Worker {
            shared: shared.clone(),
            flush_requests,
            window,
            observers,
            patterns,
            strategies,
            store,
            overflow: overflow.clone(),
            counters: counters.clone(),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(worker.run());
            }
            Err(_) => {
                let spawned = std::thread::Builder::new()
                    .name("self-healing-worker".into())
                    .spawn(move || {
                        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                            Ok(rt) => rt.block_on(worker.run()),
                            Err(e) => tracing::error!(error = %e, "self-healing: event worker could not start"),
                        }
                    });
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "self-healing: event worker thread could not start");
                }
            }
        }
        EventQueue {
            shared,
            flushes,
            overflow,
            counters,
        }
    }

    /// Hands an event over without waiting.
    pub(crate) fn push(&self, event: HealingEvent) {
        self.counters
            .recorded
            .fetch_add(event.count, Ordering::Relaxed);
        // After a shutdown no worker drains the ring: count the event as dropped rather than
        // let it wait there for ever.
        if self.shared.closed.load(Ordering::Relaxed) {
            self.counters
                .dropped
                .fetch_add(event.count, Ordering::Relaxed);
            return;
        }
        match self.shared.events.push(event) {
            Ok(()) => {
                self.counters.depth.fetch_add(1, Ordering::Relaxed);
                // The push and this swap pair with the worker's store and re-check in `wait`.
                if self.shared.sleeping.swap(false, Ordering::SeqCst) {
                    self.shared.wake.notify_one();
                }
            }
            Err(event) => self.overflow(event),
        }
    }

    fn overflow(&self, event: HealingEvent) {
        let mut table = self.overflow.lock().unwrap_or_else(|p| p.into_inner());
        let len = table.len();
        match table.entry(event.fold_key()) {
            std::collections::hash_map::Entry::Occupied(mut slot) => {
                slot.get_mut().absorb(&event);
                self.counters.folded.fetch_add(1, Ordering::Relaxed);
            }
            std::collections::hash_map::Entry::Vacant(slot) if len < OVERFLOW_KEYS => {
                slot.insert(event);
            }
            std::collections::hash_map::Entry::Vacant(_) => {
                self.counters
                    .dropped
                    .fetch_add(event.count, Ordering::Relaxed);
            }
        }
    }

    /// Waits until every event pushed before this call reached the store (or was given up on).
    /// False when no worker answered: it is gone (its tokio runtime shut down, or the queue was
    /// closed and the worker finished).
    pub(crate) async fn flush(&self) -> bool {
        let (done, wait) = oneshot::channel();
        if self.flushes.send(done).is_err() {
            return false;
        }
        self.shared.wake.notify_one();
        wait.await.is_ok()
    }

    /// Stops taking events: the worker writes what is queued, then ends. Events pushed later are
    /// counted as dropped.
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }

    /// Whether [`close`](Self::close) was called (or the healer is gone).
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Calls dropped by the queue and calls the store refused, since the last call of this
    /// function: what a flush reports as lost.
    pub(crate) fn unreported_losses(&self) -> (u64, u64) {
        let c = &self.counters;
        let since = |total: &AtomicU64, reported: &AtomicU64| {
            let now = total.load(Ordering::Relaxed);
            now.saturating_sub(reported.swap(now, Ordering::Relaxed))
        };
        (
            since(&c.dropped, &c.reported_dropped),
            since(&c.lost_to_store, &c.reported_lost_to_store),
        )
    }

    pub(crate) fn stats(&self) -> QueueStats {
        let c = &self.counters;
        QueueStats {
            recorded: c.recorded.load(Ordering::Relaxed),
            folded: c.folded.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            written: c.written.load(Ordering::Relaxed),
            lost_to_store: c.lost_to_store.load(Ordering::Relaxed),
            depth: c.depth.load(Ordering::Relaxed),
        }
    }
}

struct Worker {
    shared: Arc<Shared>,
    flush_requests: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
    window: Duration,
    observers: Vec<Arc<dyn EventObserver>>,
    patterns: PatternTable,
    strategies: Vec<&'static str>,
    store: Arc<dyn EventStore>,
    overflow: Arc<Mutex<FxHashMap<FoldKey, HealingEvent>>>,
    counters: Arc<Counters>,
}

impl Worker {
    async fn run(mut self) {
        // Flush requests wait until everything queued before them is written, which may take
        // more than one batch.
        let mut flushes = Vec::new();
        loop {
            // Wait for something to do, then keep collecting for one fold window so a storm of
            // identical failures becomes one record with a count.
            let mut closed = if flushes.is_empty() {
                self.wait(&mut flushes).await
            } else {
                self.shared.closed.load(Ordering::Acquire)
            };
            let mut batch = Fold::default();
            let deadline = tokio::time::Instant::now() + self.window;
            loop {
                self.drain(&mut batch, &mut flushes);
                closed |= self.shared.closed.load(Ordering::Acquire);
                if closed || !flushes.is_empty() || batch.len() >= BATCH {
                    break;
                }
                tokio::select! {
                    () = self.shared.wake.notified() => {}
                    request = self.flush_requests.recv() => match request {
                        Some(done) => flushes.push(done),
                        None => closed = true,
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            self.drain(&mut batch, &mut flushes);
            self.write(batch).await;
            if self.shared.events.is_empty() {
                for done in flushes.drain(..) {
                    let _ = done.send(());
                }
                if closed {
                    return;
                }
            }
        }
    }

    /// Waits for queued events, a flush request or the end; true at the end.
    async fn wait(&mut self, flushes: &mut Vec<oneshot::Sender<()>>) -> bool {
        loop {
            if self.shared.closed.load(Ordering::Acquire) {
                return true;
            }
            // Say we sleep, then look again: a push that came before this store is seen by the
            // check, one that comes after it sees the flag and rings.
            self.shared.sleeping.store(true, Ordering::SeqCst);
            if !self.shared.events.is_empty() {
                self.shared.sleeping.store(false, Ordering::SeqCst);
                return false;
            }
            let woke = tokio::select! {
                () = self.shared.wake.notified() => None,
                request = self.flush_requests.recv() => Some(request),
            };
            self.shared.sleeping.store(false, Ordering::SeqCst);
            match woke {
                None => {}
                Some(Some(done)) => {
                    flushes.push(done);
                    return false;
                }
                Some(None) => return true,
            }
        }
    }

    /// Moves the queued events into the batch (and late flush requests into `flushes`).
    fn drain(&mut self, batch: &mut Fold, flushes: &mut Vec<oneshot::Sender<()>>) {
        while let Ok(done) = self.flush_requests.try_recv() {
            flushes.push(done);
        }
        while batch.len() < BATCH {
            let Some(e) = self.shared.events.pop() else {
                break;
            };
            self.counters.depth.fetch_sub(1, Ordering::Relaxed);
            batch.add(e, &self.counters);
        }
    }

    /// Folds the overflow table into the batch and writes it.
    async fn write(&self, mut batch: Fold) {
        let overflow: Vec<HealingEvent> = {
            let mut table = self.overflow.lock().unwrap_or_else(|p| p.into_inner());
            table.drain().map(|(_, e)| e).collect()
        };
        for e in overflow {
            batch.add(e, &self.counters);
        }
        // Secrets and personal data leave no trace past this point: the store, the observers
        // (notifiers, the LLM analyzer, the live feed) only ever see scrubbed text. Folding came
        // first, so a storm costs one scrub per record, not per failure. Messages arrive longer
        // than the cap and are cut only once scrubbed, so no secret is halved by the cut.
        for e in &mut batch.events {
            e.message = crate::scrub::scrub_message(&e.message);
            for step in &mut e.diagnosis.steps {
                if let std::borrow::Cow::Owned(note) = &step.note {
                    step.note = std::borrow::Cow::Owned(crate::scrub::scrub_message(note));
                }
            }
        }
        for chunk in batch.events.chunks(BATCH) {
            self.write_chunk(chunk).await;
        }
        if !batch.events.is_empty() {
            for observer in &self.observers {
                observer.observe(crate::event::Observed {
                    events: &batch.events,
                    patterns: &self.patterns,
                    store: &self.store,
                    strategies: &self.strategies,
                });
            }
        }
    }

    async fn write_chunk(&self, chunk: &[HealingEvent]) {
        let calls: u64 = chunk.iter().map(|e| e.count).sum();
        for attempt in 1..=STORE_ATTEMPTS {
            match self.store.write_batch(chunk).await {
                Ok(()) => {
                    self.counters.written.fetch_add(calls, Ordering::Relaxed);
                    return;
                }
                Err(e) if attempt < STORE_ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "self-healing: store write failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, records = chunk.len(), calls, "self-healing: store write failed; events lost");
                }
            }
        }
        self.counters
            .lost_to_store
            .fetch_add(calls, Ordering::Relaxed);
    }
}

/// Events of one fold window, merged by family, in order of first appearance.
#[derive(Default)]
struct Fold {
    events: Vec<HealingEvent>,
    index: FxHashMap<FoldKey, usize>,
}

impl Fold {
    fn len(&self) -> usize {
        self.events.len()
    }

    fn add(&mut self, e: HealingEvent, counters: &Counters) {
        // Before folding: each call's own duration reaches the histogram.
        #[cfg(feature = "metrics")]
        crate::metrics::record(&e);
        match self.index.get(&e.fold_key()) {
            Some(&i) => {
                self.events[i].absorb(&e);
                counters.folded.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                self.index.insert(e.fold_key(), self.events.len());
                self.events.push(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::SystemTime;

    use super::*;
    use crate::Category;
    use crate::diagnosis::{ErrorClass, Fingerprint, MAX_MESSAGE_BYTES, Severity};
    use crate::event::{DiagnosisRecord, InMemoryStore, Outcome, Step, StepResult};

    /// A message whose URL password straddles the cap, as the interceptor now hands it over:
    /// longer than the cap.
    fn straddling() -> String {
        let pad = "p ".repeat((MAX_MESSAGE_BYTES - 20) / 2);
        format!("{pad}postgres://admin:S3cr3tPassw0rd@db/crm and more")
    }

    /// The worker scrubs an event's message and its fallback note whole, then cuts them: what
    /// the store, notifiers and the LLM analyzer receive holds no half of a secret.
    #[tokio::test]
    async fn messages_and_notes_are_scrubbed_whole_then_cut() {
        let store = InMemoryStore::new();
        let queue = EventQueue::start(
            16,
            Duration::ZERO,
            Arc::new(store.clone()),
            Vec::new(),
            PatternTable::new(),
            Vec::new(),
        );
        queue.push(HealingEvent {
            time: SystemTime::UNIX_EPOCH,
            instance: Arc::from("test"),
            source: Cow::Borrowed("site"),
            category: Category::Database,
            fingerprint: Fingerprint(1),
            class: ErrorClass::Permanent,
            message: straddling(),
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
                steps: vec![Step {
                    strategy: Cow::Borrowed("fallback"),
                    result: StepResult::Failed,
                    took: Duration::ZERO,
                    note: Cow::Owned(format!("fallback failed too: {}", straddling())),
                }],
            },
            count: 1,
            call_key: None,
        });
        assert!(queue.flush().await);
        let events = store.events();
        let note = &events[0].diagnosis.steps[0].note;
        for text in [events[0].message.as_str(), note] {
            assert!(text.len() <= MAX_MESSAGE_BYTES, "{}", text.len());
            assert!(!text.contains("S3cr"), "{}", &text[text.len() - 80..]);
        }
    }
}
