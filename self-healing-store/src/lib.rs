//! Persistence for self-healing: a Diesel store for healing events, learned patterns, health
//! checks, call sites and notifications — SQLite embedded by default, PostgreSQL when several
//! instances share one store.
//!
//! [`DieselStore`] implements the runtime's [`EventStore`](self_healing_runtime::EventStore):
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use self_healing_runtime::Healer;
//! use self_healing_store::DieselStore;
//!
//! let store = DieselStore::connect("sqlite://self-healing.db").await?; // or postgres://…
//! store.sync_sites().await?; // the integration checklist, in `call_sites`
//! let healer = Healer::builder().store(store.clone()).build()?;
//! let names: Vec<&'static str> = healer.strategies().map(|s| s.name()).collect();
//! healer.patterns().merge(&store.load_patterns().await?, &names); // warm start
//! healer.install()?;
//! # Ok(()) }
//! ```
//!
//! # Database URLs
//!
//! | URL | backend |
//! |---|---|
//! | `self-healing.db`, `./data/x.db`, `sqlite://PATH`, `sqlite:PATH` | SQLite file, created if missing (WAL, busy timeout) |
//! | `sqlite::memory:` | SQLite in memory (one connection; gone at exit) |
//! | `postgres://USER:PASSWORD@HOST:PORT/DB`, `postgresql://…` | PostgreSQL (feature `postgres`; no libpq) |
//!
//! Anything else is refused with a [`StoreError`] naming the URL, password masked, and listing
//! these forms. [`DieselStore::builder_from_env`] reads `DATABASE_URL`, as does the store a healer
//! persists to when it was given none ([`DieselStore::open_default`], registered by the
//! `self-healing` facade); both default to [`DEFAULT_DATABASE_URL`].
//!
//! # Features
//!
//! `sqlite` (default) bundles SQLite; `postgres` adds PostgreSQL through diesel-async's
//! pure-Rust driver. Both can be on; the URL picks one at run time.
//!
//! # Tables
//!
//! `healing_events` (one row per failing call, or per folded family of calls with its `count`),
//! `healing_patterns` (fingerprint × strategy → tried, healed, failed, total duration, first and
//! last seen, last AI diagnosis), `health_checks`, `call_sites`, `notifications`,
//! `store_batches` (ids of committed writer batches), `circuit_notices` (the fleet's circuit
//! news: each instance's circuit changes and the commands given to all of them), and
//! `failure_families` (a failure family resolved or ignored, when, by whom), `outbox` (calls
//! of `queue_for_later` sites waiting for a replay, delivered, or given up), and
//! `event_postings` (which events of each written batch share a fingerprint, source, category,
//! outcome and severity: filtered event lists, family summaries and source look-ups read them,
//! so `healing_events` keeps only its time index and a batch of thousands of events adds a few
//! dozen posting rows instead of four index entries per event). On PostgreSQL that index is
//! the primary key, `(time_us, id)`; on SQLite the events' rowid is `id`. Times are
//! microseconds since the Unix epoch in `BIGINT` columns. The migrations are embedded, one
//! folder per backend (`migrations/{sqlite,postgres}`; PostgreSQL has one more, for its key),
//! and run at connect unless
//! [`StoreBuilder::run_migrations`] turns them off; several instances may connect at once.
//!
//! # Writing
//!
//! `write_batch` only moves events into the store's bounded buffer; writer tasks drain it in
//! batches of [`StoreBuilder::batch_size`] records, each batch one transaction: its events
//! (SQLite: prepared multi-row `VALUES` statements of 512, 128, 16 and 1 rows; PostgreSQL: one
//! binary `COPY … FROM STDIN` stream, on writer connections of their own beside the pool, since
//! Diesel's async connection cannot send `COPY`), their postings, and the learned statistics
//! they carry as atomic upserts (`tried = tried + excluded.tried`, …), so instances sharing a
//! database never lose an update. While a batch is written, the writer prepares the next one;
//! on SQLite a checkpointer copies the write-ahead log back into the database beside the
//! writer.
//!
//! Durability: a committed batch survives a crash of the process. On SQLite (WAL,
//! `synchronous = NORMAL`) a power loss may lose the last commits; on PostgreSQL the writer
//! commits with `synchronous_commit = off`, so a crash of the server may lose the last commits
//! (under a second). Neither ever loses part of a batch. Every `Healed`/`Failed` step of an
//! event counts as one try of its strategy on the event's fingerprint, times the event's
//! `count`.
//!
//! Sustained rates: about 150,000 events/s or more on either backend on a 2-vCPU machine (see
//! `BENCHMARKS.md`). At such rates PostgreSQL writes on the order of 100 MB/s of log, so with
//! its default `max_wal_size` (1 GB) it checkpoints every few seconds (7 in a 29-second
//! benchmark run); a server taking such load wants a larger `max_wal_size`.
//!
//! A batch is written exactly once: its id is inserted in the same transaction, so a batch
//! retried after a lost commit acknowledgement is recognised and skipped
//! ([`StoreStats::duplicate_batches`]).
//!
//! # When the database is down
//!
//! The caller's calls never wait or fail because of the store. The writer keeps the batch it
//! holds and retries it with jittered exponential backoff ([`StoreBuilder::backoff`]); new events
//! wait in the buffer and are written in arrival order once the database is back (with several
//! PostgreSQL writers, batches may commit slightly out of order). Past
//! [`StoreBuilder::buffer_capacity`] records (default 50,000), events are folded by (source,
//! fingerprint, strategy, outcome) into counted records (as the runtime folds), keeping their
//! statistics; [`StoreStats::folded`] counts the records that lost their detail. Only an event of a
//! new family arriving while [`StoreBuilder::overflow_keys`] families (default 4,096) are folded
//! already is dropped, and counted in [`StoreStats::dropped`].
//!
//! A process stopped while the database is down loses what is buffered: at most
//! `buffer_capacity` records plus `overflow_keys` folded records (each up to ~3 KB with message
//! and diagnosis: about 150 MB at the defaults, usually far less). [`DieselStore::close`] reports
//! them as dropped. [`StoreBuilder::connect_lazy`] lets a process start while the database is
//! unreachable: the writer connects and migrates when it comes back.
//!
//! # Text
//!
//! Messages are capped at [`StoreBuilder::max_message_bytes`] (default 2,048 bytes, as the
//! runtime caps them) on a character boundary and marked `…[truncated]`. Any Unicode text
//! round-trips, control characters included, except NUL, which PostgreSQL text cannot hold: it is
//! stored as U+2400 (␀) on both backends (in the diagnosis JSON it is escaped and round-trips).
//!
//! # Reading and retention
//!
//! [`DieselStore::events`] (filters, keyset pagination), [`DieselStore::counts_per_hour`],
//! [`DieselStore::heal_rate_by_strategy`], [`DieselStore::top_failing_sources`],
//! [`DieselStore::top_failing_fingerprints`], [`DieselStore::patterns`],
//! [`DieselStore::sites`], [`DieselStore::latest_health_checks`] serve the dashboard and the CLI;
//! [`DieselStore::families`] groups events by fingerprint as error trackers do (with the learned
//! strategy and what people decided: [`DieselStore::set_family_status`]);
//! [`DieselStore::prune`] deletes old rows in small batches so writers are never locked out.
//!
//! # Circuit news
//!
//! A fleet shares circuit news through the store (see the runtime's
//! [`fleet`](self_healing_runtime::fleet)): `EventStore::publish_circuit` appends to
//! `circuit_notices`, `EventStore::poll_circuits` reads what came after the last id seen. On
//! PostgreSQL every publish also `NOTIFY`s [`CHANNEL`], and a connection of the store's own
//! `LISTEN`s, so a waiting poller wakes as soon as news is committed; SQLite pollers read the
//! table (every second, from the runtime's worker). Tools use
//! [`DieselStore::publish_circuit_command`] (the CLI's `circuit open|close|reset`),
//! [`DieselStore::circuit_states`] (each instance's latest state per source, with its time) and
//! [`DieselStore::source_known`]. News is kept [`NOTICE_RETENTION`] (each instance's latest
//! state per source [`LATEST_STATE_RETENTION`]); publishing prunes it now and then, and so does
//! [`DieselStore::prune`]. Errors reach the runtime's worker, which logs them: a store outage
//! never fails a call.
//!
//! # Tests
//!
//! `cargo test -p self-healing-store` runs the suite on SQLite. With `--features postgres` and
//! `SELF_HEALING_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres` the same cases
//! run on PostgreSQL too, each in a fresh database; without the URL they print one line saying
//! they were skipped, and with `SELF_HEALING_REQUIRE_POSTGRES=1` they fail instead.

// A build with one backend (or none) leaves the other's helpers unused.
#![cfg_attr(
    not(all(feature = "sqlite", feature = "postgres")),
    allow(
        dead_code,
        unused_imports,
        unused_macros,
        unused_mut,
        unreachable_code,
        unused_variables,
        clippy::never_loop
    )
)]

mod builder;
mod checkpoint;
mod circuits;
mod db;
mod default_store;
mod error;
mod families;
mod file_watch;
mod maintenance;
mod outbox;
#[cfg(feature = "postgres")]
mod pg_copy;
#[cfg(feature = "postgres")]
mod pg_writer;
mod posting_queries;
mod postings;
mod queries;
mod records;
mod rows;
mod runtime_hooks;
mod schema;
mod store;
mod url;
mod writer;

pub use builder::{
    DEFAULT_BATCH_SIZE, DEFAULT_BUFFER_CAPACITY, DEFAULT_OVERFLOW_KEYS, StoreBuilder,
};
pub use circuits::{CHANNEL, CircuitRecord, LATEST_STATE_RETENTION, NOTICE_RETENTION};
pub use default_store::DEFAULT_DATABASE_URL;
pub use error::{ErrorKind, StoreError};
pub use families::{FamilyRecord, FamilyStatus, LearnedStrategy};
pub use outbox::MAX_OUTBOX_PAGE;
pub use queries::MAX_PAGE;
pub use records::{
    EventCursor, EventFilter, EventPage, EventRecord, FailingFingerprint, FailingSource,
    HealthCheckRecord, HealthStatus, HourlyCount, InvalidCursor, NotificationRecord,
    NotificationStatus, PatternRecord, PruneReport, SiteRecord, StoredHealthCheck,
    StoredNotification, StrategyRate,
};
pub use store::{DieselStore, StoreStats};
pub use url::{Backend, mask_password};
