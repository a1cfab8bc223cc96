//! [`StoreBuilder`]: the store's settings, checked, and the start of its writer tasks.

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use self_healing_runtime::diagnosis::MAX_MESSAGE_BYTES;
use tokio::sync::{Notify, watch};

use crate::db::{Db, PoolSettings};
use crate::error::{ErrorKind, StoreError};
use crate::store::{Buffer, Counters, DieselStore, Settings, Shared};
use crate::url::{Backend, DatabaseUrl};

/// Default [`StoreBuilder::buffer_capacity`].
pub const DEFAULT_BUFFER_CAPACITY: usize = 50_000;
/// Default [`StoreBuilder::overflow_keys`].
pub const DEFAULT_OVERFLOW_KEYS: usize = 4_096;
/// Default [`StoreBuilder::batch_size`].
pub const DEFAULT_BATCH_SIZE: usize = 4_096;

/// Configures and opens a [`DieselStore`].
///
/// ```no_run
/// # async fn demo() -> Result<(), self_healing_store::StoreError> {
/// use std::time::Duration;
/// use self_healing_store::DieselStore;
///
/// let store = DieselStore::builder("postgres://app:secret@db:5432/app")
///     .buffer_capacity(20_000)
///     .backoff(Duration::from_millis(200), Duration::from_secs(30))
///     .connect()
///     .await?;
/// # let _ = store; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct StoreBuilder {
    url: String,
    buffer_capacity: usize,
    overflow_keys: usize,
    batch_size: usize,
    rows_per_statement: Option<usize>,
    pool_size: u32,
    connect_timeout: Duration,
    write_timeout: Duration,
    busy_timeout: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    migrations: bool,
    max_message_bytes: usize,
    instance: Option<String>,
    writers: Option<usize>,
}

impl StoreBuilder {
    pub(crate) fn new(url: impl Into<String>) -> Self {
        StoreBuilder {
            url: url.into(),
            buffer_capacity: DEFAULT_BUFFER_CAPACITY,
            overflow_keys: DEFAULT_OVERFLOW_KEYS,
            batch_size: DEFAULT_BATCH_SIZE,
            rows_per_statement: None,
            pool_size: 4,
            connect_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
            busy_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            migrations: true,
            max_message_bytes: MAX_MESSAGE_BYTES,
            instance: None,
            writers: None,
        }
    }

    /// Writer tasks committing batches concurrently, each on its own connection. PostgreSQL
    /// default 2 (so the server can use two cores), each with a connection of its own beside the
    /// pool (the store then holds up to `pool_size + writers` connections; `pg_stat_activity`
    /// names them `self-healing store writer` unless the URL sets `application_name`), closed
    /// by [`DieselStore::close`](crate::DieselStore::close); SQLite always 1,
    /// since it has one write lock. With more than one, batches may commit out of arrival order
    /// (events keep their times).
    pub fn writers(mut self, writers: usize) -> Self {
        self.writers = Some(writers);
        self
    }

    /// Event records held in memory while they wait for the database (default 50,000). Past it,
    /// events are folded by (source, fingerprint, strategy, outcome) into counted records; see
    /// [`overflow_keys`](Self::overflow_keys).
    pub fn buffer_capacity(mut self, records: usize) -> Self {
        self.buffer_capacity = records;
        self
    }

    /// Distinct event families the fold table holds once the buffer is full (default 4,096).
    /// Only an event of a new family arriving while this table is full too is dropped, and
    /// counted in [`StoreStats::dropped`](crate::StoreStats::dropped).
    pub fn overflow_keys(mut self, keys: usize) -> Self {
        self.overflow_keys = keys;
        self
    }

    /// Records the writer commits per transaction at most (default 4,096).
    pub fn batch_size(mut self, records: usize) -> Self {
        self.batch_size = records;
        self
    }

    /// Rows per `INSERT` statement at most, on SQLite. SQLite inserts with prepared multi-row
    /// `VALUES` statements of 512, 128, 16 and 1 rows (each prepared once per connection), the
    /// largest that fits both what is left of the batch and this bound (default 2,000, so 512).
    /// PostgreSQL copies each batch in one binary `COPY` stream and ignores it.
    pub fn rows_per_statement(mut self, rows: usize) -> Self {
        self.rows_per_statement = Some(rows);
        self
    }

    /// Connections in the pool (default 4; an in-memory SQLite database always uses 1).
    pub fn pool_size(mut self, connections: u32) -> Self {
        self.pool_size = connections;
        self
    }

    /// How long to wait for a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one batch write may take on PostgreSQL before it is abandoned and retried
    /// (default 30 s). A retried batch is never written twice.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// How long SQLite waits for another process's write lock (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Delay before retrying a failed write: starts at `min`, doubles up to `max`, with jitter
    /// (default 100 ms to 10 s).
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max;
        self
    }

    /// Whether to run the embedded migrations when connecting (default true).
    pub fn run_migrations(mut self, run: bool) -> Self {
        self.migrations = run;
        self
    }

    /// Longest message stored, in bytes (default 2,048, as the runtime caps it); longer ones
    /// are cut on a character boundary and marked `…[truncated]`.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// The id of this process in `call_sites`, `health_checks` and `notifications`
    /// (default: host name and process id).
    pub fn instance(mut self, id: impl Into<String>) -> Self {
        self.instance = Some(id.into());
        self
    }

    /// Connects: checks that the database is reachable, runs the migrations (unless turned
    /// off), and starts the writer task on the current tokio runtime.
    ///
    /// # Errors
    /// A [`StoreError`] naming the URL (password masked) and what to do when the URL is bad,
    /// the backend's feature is off, the database is unreachable or refuses us, or the
    /// migrations fail.
    pub async fn connect(self) -> Result<DieselStore, StoreError> {
        let store = self.open()?;
        store.shared.db.check(&store.shared.url).await?;
        store.shared.ensure_ready().await?;
        Ok(store)
    }

    /// Like [`connect`](Self::connect), but does not touch the database: the store starts
    /// buffering at once and the writer connects (and migrates) when the database is reachable.
    /// For programs that must start while the database is down.
    ///
    /// # Errors
    /// Only for a bad URL, a missing backend feature or an invalid setting.
    pub fn connect_lazy(self) -> Result<DieselStore, StoreError> {
        self.open()
    }

    fn open(self) -> Result<DieselStore, StoreError> {
        let url = DatabaseUrl::parse(&self.url)?;
        let invalid =
            |what: &str| StoreError::new(ErrorKind::InvalidConfig, &url.masked, what.to_owned());
        if self.buffer_capacity == 0 {
            return Err(invalid("`buffer_capacity` must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(invalid("`batch_size` must be at least 1"));
        }
        if self.rows_per_statement == Some(0) {
            return Err(invalid("`rows_per_statement` must be at least 1"));
        }
        if self.backoff_min.is_zero() || self.backoff_min > self.backoff_max {
            return Err(invalid("`backoff` needs 0 < min <= max"));
        }
        if self.writers == Some(0) {
            return Err(invalid("`writers` must be at least 1"));
        }
        if self.max_message_bytes < 64 {
            return Err(invalid("`max_message_bytes` must be at least 64"));
        }
        let db = Db::open(
            &url,
            &PoolSettings {
                max_size: self.pool_size,
                connect_timeout: self.connect_timeout,
                busy_timeout: self.busy_timeout,
            },
        )?;
        // SQLite binds at most 32,766 values per statement; PostgreSQL copies and ignores it.
        let rows_per_statement = self
            .rows_per_statement
            .unwrap_or(2_000)
            .min(32_766 / crate::rows::EVENT_COLUMNS);
        let writers = match url.backend {
            Backend::Sqlite => 1,
            Backend::Postgres => self.writers.unwrap_or(2),
        };
        #[cfg(feature = "postgres")]
        let pg_writers = crate::pg_writer::Connections::new(&url.target, self.connect_timeout);
        let (progress, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            db,
            url,
            settings: Settings {
                buffer_capacity: self.buffer_capacity,
                overflow_keys: self.overflow_keys,
                batch_size: self.batch_size,
                rows_per_statement,
                write_timeout: self.write_timeout,
                backoff_min: self.backoff_min,
                backoff_max: self.backoff_max,
                migrations: self.migrations,
                max_message_bytes: self.max_message_bytes,
            },
            instance: self.instance.unwrap_or_else(default_instance),
            buffer: Mutex::new(Buffer::default()),
            wake: Notify::new(),
            retry_now: Notify::new(),
            checkpoint_due: Notify::new(),
            progress,
            counters: Counters::default(),
            closing: AtomicBool::new(false),
            writers_running: AtomicUsize::new(writers),
            circuits: Default::default(),
            #[cfg(feature = "postgres")]
            pg_writers,
        });
        let run_id = format!("{:016x}", fastrand::u64(..));
        for w in 0..writers {
            tokio::spawn(crate::writer::run(shared.clone(), format!("{run_id}-{w}")));
        }
        if shared.url.backend == Backend::Sqlite && !shared.url.is_memory() {
            tokio::spawn(crate::checkpoint::run(shared.clone()));
        }
        Ok(DieselStore::from_shared(shared))
    }
}

fn default_instance() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}
