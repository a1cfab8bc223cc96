//! [`DieselStore`]: the bounded buffer behind `write_batch`, its counters, and the handle.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use self_healing_runtime::event::{BoxFuture, EventStore, HealingEvent};
use tokio::sync::{Notify, watch};

use crate::builder::StoreBuilder;
use crate::db::Db;
use crate::error::{ErrorKind, StoreError};
use crate::rows::{FoldKey, Pending};
use crate::url::{Backend, DatabaseUrl};

/// The writer's settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) buffer_capacity: usize,
    pub(crate) overflow_keys: usize,
    pub(crate) batch_size: usize,
    pub(crate) rows_per_statement: usize,
    pub(crate) write_timeout: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) migrations: bool,
    pub(crate) max_message_bytes: usize,
}

/// Records waiting for the database.
#[derive(Debug, Default)]
pub(crate) struct Buffer {
    /// In arrival order.
    pub(crate) queue: VecDeque<Pending>,
    /// Records folded while the buffer was full, by family.
    pub(crate) overflow: HashMap<FoldKey, Pending>,
    /// Calls the queued and folded records stand for.
    pub(crate) queued_calls: u64,
    /// Records and calls the writers took and have not committed yet.
    pub(crate) in_flight: usize,
    pub(crate) in_flight_calls: u64,
    /// Whether the last write attempt failed, and why.
    pub(crate) failing: bool,
    pub(crate) last_error: Option<String>,
    pub(crate) failed_attempts: u64,
}

impl Buffer {
    pub(crate) fn records(&self) -> usize {
        self.queue.len() + self.overflow.len() + self.in_flight
    }
}

/// Monotonic counters, in calls unless named otherwise.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) received_records: AtomicU64,
    pub(crate) written: AtomicU64,
    pub(crate) written_records: AtomicU64,
    pub(crate) folded: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) duplicate_batches: AtomicU64,
}

/// State shared by the handles and the writer task.
pub(crate) struct Shared {
    pub(crate) db: Db,
    pub(crate) url: DatabaseUrl,
    pub(crate) settings: Settings,
    pub(crate) instance: String,
    pub(crate) buffer: Mutex<Buffer>,
    /// Wakes the writer: records arrived, or the store is closing.
    pub(crate) wake: Notify,
    /// Cuts the writer's backoff short (a flush wants to know now).
    pub(crate) retry_now: Notify,
    /// Wakes the SQLite checkpointer: the writer committed, or stopped.
    pub(crate) checkpoint_due: Notify,
    /// Bumped after every write attempt and when the writer stops.
    pub(crate) progress: watch::Sender<u64>,
    pub(crate) counters: Counters,
    pub(crate) closing: AtomicBool,
    /// Writer tasks still running.
    pub(crate) writers_running: AtomicUsize,
    /// Circuit news: pollers' wake-ups, the PostgreSQL listener (see `circuits.rs`).
    pub(crate) circuits: crate::circuits::Circuits,
    /// The PostgreSQL writers' own connections (see `pg_writer.rs`).
    #[cfg(feature = "postgres")]
    pub(crate) pg_writers: crate::pg_writer::Connections,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the migrations once per set of connections (when enabled), and notes which
    /// SQLite file those connections opened.
    pub(crate) async fn ensure_ready(&self) -> Result<(), StoreError> {
        self.ready_connections().await.map(|_| ())
    }

    /// [`ensure_ready`](Self::ensure_ready), returning the connections it readied.
    pub(crate) async fn ready_connections(&self) -> Result<Arc<crate::db::Generation>, StoreError> {
        let generation = self.db.current();
        generation
            .ready
            .get_or_try_init(|| async {
                if self.settings.migrations {
                    self.db.migrate(&generation, &self.url).await?;
                }
                if let Some(id) = crate::file_watch::sqlite_file(&self.url)
                    .and_then(crate::file_watch::FileId::of)
                {
                    let _ = generation.file.set(id);
                }
                Ok::<(), StoreError>(())
            })
            .await?;
        Ok(generation)
    }

    /// After a commit: an error when the SQLite file the connections write to was deleted or
    /// replaced meanwhile. New connections are opened then, and the batch must be written again.
    pub(crate) fn check_file(
        &self,
        generation: &Arc<crate::db::Generation>,
    ) -> Result<(), StoreError> {
        let Some(file) = generation.file.get() else {
            return Ok(());
        };
        let Some(why) = file.moved() else {
            return Ok(());
        };
        self.db.reopen(generation)?;
        Err(StoreError::new(
            ErrorKind::Unavailable,
            &self.url.masked,
            format!(
                "the database file `{}` {why} while the store had it open",
                file.path().display()
            ),
        )
        .with_hint("the store opens the file again (creating it if needed) and writes the last batch there; events written before were in the old file"))
    }

    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn pool_error(
        &self,
        e: diesel_async::pooled_connection::bb8::RunError,
    ) -> StoreError {
        self.db.pool_error(&self.url, e)
    }

    pub(crate) fn query_error(&self, e: diesel::result::Error) -> StoreError {
        crate::db::query_error(&self.url, ErrorKind::Query, e)
    }

    pub(crate) fn writer_done(&self) -> bool {
        self.writers_running.load(Ordering::SeqCst) == 0
    }

    pub(crate) fn bump_progress(&self) {
        self.progress.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Takes the events into the buffer; past its capacity, folds them.
    fn enqueue(&self, events: &[HealingEvent]) {
        let pending: Vec<Pending> = events
            .iter()
            .map(|e| Pending::from_event(e, self.settings.max_message_bytes))
            .collect();
        let calls: u64 = pending.iter().map(|p| p.count).sum();
        let c = &self.counters;
        c.received.fetch_add(calls, Ordering::Relaxed);
        c.received_records
            .fetch_add(pending.len() as u64, Ordering::Relaxed);
        let (mut folded, mut dropped) = (0u64, 0u64);
        {
            let mut guard = self.lock();
            let b = &mut *guard;
            for p in pending {
                if b.queue.len() + b.in_flight < self.settings.buffer_capacity {
                    b.queued_calls += p.count;
                    b.queue.push_back(p);
                    continue;
                }
                let overflow_len = b.overflow.len();
                match b.overflow.entry(p.fold_key()) {
                    std::collections::hash_map::Entry::Occupied(mut slot) => {
                        folded += 1;
                        let n = p.count;
                        slot.get_mut().absorb(p);
                        b.queued_calls += n;
                    }
                    std::collections::hash_map::Entry::Vacant(slot)
                        if overflow_len < self.settings.overflow_keys =>
                    {
                        let n = p.count;
                        slot.insert(p);
                        b.queued_calls += n;
                    }
                    std::collections::hash_map::Entry::Vacant(_) => dropped += p.count,
                }
            }
        }
        if folded > 0 {
            c.folded.fetch_add(folded, Ordering::Relaxed);
        }
        if dropped > 0 {
            c.dropped.fetch_add(dropped, Ordering::Relaxed);
            tracing::warn!(
                dropped,
                "self-healing store: buffer and fold table full; events dropped"
            );
        }
        self.wake.notify_one();
    }
}

/// Signals the writer to finish when the last handle goes away.
struct Guard(Arc<Shared>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.closing.store(true, Ordering::SeqCst);
        self.0.wake.notify_waiters();
        self.0.wake.notify_one();
        self.0.retry_now.notify_waiters();
        self.0.retry_now.notify_one();
    }
}

/// A persistent [`EventStore`] on SQLite (embedded, the default) or PostgreSQL (shared by
/// several instances), through Diesel and diesel-async.
///
/// `write_batch` only moves events into the store's own bounded buffer and returns at once; a
/// writer task drains the buffer in batches, each one transaction of multi-row `INSERT`s plus
/// atomic pattern increments. When the database is unreachable, the writer keeps the events,
/// retries with backoff and writes them in order once it is back; past
/// [`buffer_capacity`](StoreBuilder::buffer_capacity) events are folded into counted records.
///
/// # What an outage can lose
///
/// Nothing while the process keeps running, unless more than
/// [`overflow_keys`](StoreBuilder::overflow_keys) distinct event families arrive while the
/// buffer is full (those events are counted in [`StoreStats::dropped`]). A process that stops
/// while the database is down loses what is buffered: at most `buffer_capacity` records
/// (50,000 by default, each up to ~3 KB with its message and diagnosis) plus `overflow_keys`
/// folded records; [`close`](DieselStore::close) reports that number.
///
/// Cloning shares the store. Dropping the last clone lets the writer finish what it holds.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use self_healing_runtime::Healer;
/// use self_healing_store::DieselStore;
///
/// let store = DieselStore::connect("sqlite://self-healing.db").await?;
/// store.sync_sites().await?; // the integration checklist
/// let healer = Healer::builder().store(store.clone()).build()?;
/// let names: Vec<&'static str> = healer.strategies().map(|s| s.name()).collect();
/// healer.patterns().merge(&store.load_patterns().await?, &names); // warm start
/// healer.install()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DieselStore {
    pub(crate) shared: Arc<Shared>,
    _guard: Arc<Guard>,
}

impl std::fmt::Debug for DieselStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DieselStore")
            .field("url", &self.shared.url.masked)
            .field("backend", &self.shared.url.backend)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl DieselStore {
    /// Connects with the default settings; see [`StoreBuilder::connect`].
    ///
    /// The URL picks the backend: a file path, `sqlite://PATH` or `sqlite::memory:` for SQLite
    /// (the file is created if missing, in WAL mode with a busy timeout), `postgres://…` for
    /// PostgreSQL.
    ///
    /// # Errors
    /// See [`StoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<DieselStore, StoreError> {
        Self::builder(url).connect().await
    }

    /// The handle of a store whose writers run on `shared`.
    pub(crate) fn from_shared(shared: Arc<Shared>) -> DieselStore {
        DieselStore {
            _guard: Arc::new(Guard(shared.clone())),
            shared,
        }
    }

    /// A builder for `url`.
    pub fn builder(url: impl Into<String>) -> StoreBuilder {
        StoreBuilder::new(url)
    }

    /// A builder for `$DATABASE_URL`, or [`DEFAULT_DATABASE_URL`](crate::DEFAULT_DATABASE_URL)
    /// (`sqlite://self-healing.db`) when it is unset.
    pub fn builder_from_env() -> StoreBuilder {
        let url = std::env::var("DATABASE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| crate::DEFAULT_DATABASE_URL.to_owned());
        StoreBuilder::new(url)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.shared.url.backend
    }

    /// The database URL, password masked.
    pub fn url(&self) -> &str {
        &self.shared.url.masked
    }

    /// The id of this process in the tables that record it.
    pub fn instance(&self) -> &str {
        &self.shared.instance
    }

    /// The counters of the buffer and the writer.
    pub fn stats(&self) -> StoreStats {
        let c = &self.shared.counters;
        let b = self.shared.lock();
        StoreStats {
            received: c.received.load(Ordering::Relaxed),
            received_records: c.received_records.load(Ordering::Relaxed),
            written: c.written.load(Ordering::Relaxed),
            written_records: c.written_records.load(Ordering::Relaxed),
            buffered: b.queued_calls + b.in_flight_calls,
            buffered_records: b.records() as u64,
            folded: c.folded.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            failed_writes: b.failed_attempts,
            duplicate_batches: c.duplicate_batches.load(Ordering::Relaxed),
            unavailable: b.failing,
            last_error: b.last_error.clone(),
        }
    }

    /// Waits until every event handed to the store so far is committed, or until a write
    /// attempt fails (a pending backoff is cut short, so this does not wait for it).
    ///
    /// # Errors
    /// [`ErrorKind::Unavailable`] when the database could not be written (the events stay in
    /// the buffer and are retried), [`ErrorKind::Closed`] when the writer has stopped.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let shared = &self.shared;
        let mut progress = shared.progress.subscribe();
        let start = shared.lock().failed_attempts;
        shared.wake.notify_one();
        shared.retry_now.notify_one();
        loop {
            if shared.writer_done() {
                return Err(self.closed_error());
            }
            {
                let b = shared.lock();
                if b.records() == 0 {
                    return Ok(());
                }
                if b.failed_attempts > start {
                    return Err(StoreError::new(
                        ErrorKind::Unavailable,
                        &shared.url.masked,
                        format!(
                            "{} buffered records could not be written: {}",
                            b.records(),
                            b.last_error.as_deref().unwrap_or("unknown error")
                        ),
                    )
                    .with_hint("the writer keeps them and retries with backoff; check that the database is reachable"));
                }
            }
            if progress.changed().await.is_err() {
                return Err(self.closed_error());
            }
        }
    }

    /// Stops accepting events, writes what is buffered (one attempt per batch if the database
    /// fails), and stops the writer. Returns the final counters; records that could not be
    /// written are counted in [`StoreStats::dropped`].
    pub async fn close(&self) -> StoreStats {
        let shared = &self.shared;
        let mut progress = shared.progress.subscribe();
        shared.closing.store(true, Ordering::SeqCst);
        shared.wake.notify_one();
        shared.retry_now.notify_one();
        while !shared.writer_done() {
            if progress.changed().await.is_err() {
                break;
            }
        }
        // The writers have stopped: their connections are not needed any more.
        #[cfg(feature = "postgres")]
        shared.pg_writers.close_idle();
        self.stats()
    }

    fn closed_error(&self) -> StoreError {
        StoreError::new(
            ErrorKind::Closed,
            &self.shared.url.masked,
            "the writer has stopped",
        )
        .with_hint("open a new store; events given to a closed store are refused")
    }
}

impl EventStore for DieselStore {
    /// Moves the events into the store's buffer and returns at once: the database is written by
    /// the store's own writer task, so this never waits for it.
    fn write_batch<'a>(
        &'a self,
        events: &'a [HealingEvent],
    ) -> BoxFuture<'a, Result<(), self_healing_runtime::event::StoreError>> {
        if self.shared.closing.load(Ordering::SeqCst) {
            let e: self_healing_runtime::event::StoreError = Box::new(self.closed_error());
            return Box::pin(std::future::ready(Err(e)));
        }
        self.shared.enqueue(events);
        Box::pin(std::future::ready(Ok(())))
    }

    fn write_advice<'a>(
        &'a self,
        fingerprint: self_healing_runtime::diagnosis::Fingerprint,
        advice: &'a self_healing_runtime::selection::Advice,
    ) -> BoxFuture<'a, Result<(), self_healing_runtime::event::StoreError>> {
        crate::runtime_hooks::write_advice(self, fingerprint, advice)
    }

    fn load_patterns(
        &self,
    ) -> BoxFuture<
        '_,
        Result<
            Vec<self_healing_runtime::selection::PatternRow>,
            self_healing_runtime::event::StoreError,
        >,
    > {
        crate::runtime_hooks::load_patterns(self)
    }

    fn load_advice(
        &self,
    ) -> BoxFuture<
        '_,
        Result<
            Vec<(
                self_healing_runtime::diagnosis::Fingerprint,
                self_healing_runtime::selection::Advice,
            )>,
            self_healing_runtime::event::StoreError,
        >,
    > {
        crate::runtime_hooks::load_advice(self)
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), self_healing_runtime::event::StoreError>> {
        crate::runtime_hooks::ping(self)
    }

    fn write_health<'a>(
        &'a self,
        report: &'a self_healing_runtime::health::HealthReport,
    ) -> BoxFuture<'a, Result<(), self_healing_runtime::event::StoreError>> {
        crate::runtime_hooks::write_health(self, report)
    }

    /// [`DieselStore::flush`]: waits until the buffer is committed, or a write attempt fails.
    fn flush(&self) -> BoxFuture<'_, Result<(), self_healing_runtime::event::StoreError>> {
        Box::pin(async move { DieselStore::flush(self).await.map_err(Into::into) })
    }

    /// [`DieselStore::close`]: writes what is buffered (one attempt per batch) and stops the
    /// writer; an error counts the calls that could not be written.
    fn close(&self) -> BoxFuture<'_, Result<(), self_healing_runtime::event::StoreError>> {
        Box::pin(async move {
            let before = self.stats().dropped;
            let after = DieselStore::close(self).await;
            let lost = after.dropped.saturating_sub(before);
            if lost == 0 {
                return Ok(());
            }
            let e = StoreError::new(
                ErrorKind::Unavailable,
                &self.shared.url.masked,
                format!(
                    "{lost} buffered calls could not be written before the store closed: {}",
                    after.last_error.as_deref().unwrap_or("unknown error")
                ),
            )
            .with_hint("check that the database is reachable; flush before stopping");
            Err(e.into())
        })
    }

    fn publish_circuit<'a>(
        &'a self,
        notice: &'a self_healing_runtime::fleet::CircuitNotice,
    ) -> BoxFuture<'a, Result<(), self_healing_runtime::event::StoreError>> {
        crate::circuits::publish(self, notice)
    }

    fn poll_circuits(
        &self,
        after: i64,
        wait: Duration,
    ) -> BoxFuture<
        '_,
        Result<
            Vec<self_healing_runtime::fleet::CircuitNotice>,
            self_healing_runtime::event::StoreError,
        >,
    > {
        crate::circuits::poll(self, after, wait)
    }

    /// [`DieselStore::queue_outbox_entry`].
    fn outbox_put<'a>(
        &'a self,
        entry: &'a self_healing_runtime::outbox::OutboxEntry,
    ) -> BoxFuture<'a, Result<bool, self_healing_runtime::event::StoreError>> {
        crate::outbox::put(self, entry)
    }

    /// [`DieselStore::claim_outbox_entries`]: safe with several instances on one database.
    fn outbox_claim(
        &self,
        now: std::time::SystemTime,
        lease: Duration,
        limit: usize,
    ) -> BoxFuture<
        '_,
        Result<
            Vec<self_healing_runtime::outbox::OutboxEntry>,
            self_healing_runtime::event::StoreError,
        >,
    > {
        crate::outbox::claim(self, now, lease, limit)
    }

    /// [`DieselStore::settle_outbox_entry`].
    fn outbox_settle<'a>(
        &'a self,
        key: &'a str,
        settle: &'a self_healing_runtime::outbox::OutboxSettle,
        now: std::time::SystemTime,
    ) -> BoxFuture<'a, Result<(), self_healing_runtime::event::StoreError>> {
        crate::outbox::settle(self, key, settle, now)
    }

    /// [`DieselStore::outbox_entries`].
    fn outbox_list(
        &self,
        status: Option<self_healing_runtime::outbox::OutboxStatus>,
        limit: usize,
    ) -> BoxFuture<
        '_,
        Result<
            Vec<self_healing_runtime::outbox::OutboxEntry>,
            self_healing_runtime::event::StoreError,
        >,
    > {
        crate::outbox::list(self, status, limit)
    }

    /// [`DieselStore::retry_outbox_entry`].
    fn outbox_retry<'a>(
        &'a self,
        key: &'a str,
        now: std::time::SystemTime,
    ) -> BoxFuture<'a, Result<bool, self_healing_runtime::event::StoreError>> {
        crate::outbox::retry(self, key, now)
    }

    /// [`DieselStore::drop_outbox_entry`].
    fn outbox_drop<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, self_healing_runtime::event::StoreError>> {
        crate::outbox::drop_entry(self, key)
    }

    /// [`DieselStore::count_outbox_entries`].
    fn outbox_counts(
        &self,
    ) -> BoxFuture<
        '_,
        Result<self_healing_runtime::outbox::OutboxCounts, self_healing_runtime::event::StoreError>,
    > {
        crate::outbox::counts(self)
    }
}

/// Counters of a [`DieselStore`]. Calls are what the runtime counts (a folded record stands for
/// `count` calls); at any time `received == written + buffered + dropped`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Calls handed to `write_batch`.
    pub received: u64,
    /// Records handed to `write_batch`.
    pub received_records: u64,
    /// Calls whose records are committed.
    pub written: u64,
    /// Rows committed to `healing_events`.
    pub written_records: u64,
    /// Calls waiting in the buffer (including the batch being written).
    pub buffered: u64,
    /// Records waiting in the buffer.
    pub buffered_records: u64,
    /// Records merged into another record because the buffer was full: their detail is gone,
    /// their calls are still counted in that record's `count`.
    pub folded: u64,
    /// Calls lost: the fold table was full, or the store closed while the database was down.
    pub dropped: u64,
    /// Transactions committed.
    pub batches: u64,
    /// Write attempts that failed (each is retried).
    pub failed_writes: u64,
    /// Retried batches found already committed (their acknowledgement had been lost).
    pub duplicate_batches: u64,
    /// Whether the last write attempt failed.
    pub unavailable: bool,
    /// The error of the last write attempt while writes are failing; `None` once a write
    /// succeeds again.
    pub last_error: Option<String>,
}
