//! Connection pools per backend, migrations, and turning driver errors into [`StoreError`]s.

use std::time::Duration;

use crate::error::{ErrorKind, StoreError};
use crate::url::{Backend, DatabaseUrl};

#[cfg(feature = "postgres")]
pub(crate) use diesel_async::AsyncPgConnection;
#[cfg(feature = "sqlite")]
pub(crate) type SqliteConn =
    diesel_async::sync_connection_wrapper::SyncConnectionWrapper<diesel::SqliteConnection>;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, bb8};

#[cfg(feature = "sqlite")]
pub(crate) type SqlitePool = bb8::Pool<SqliteConn>;
#[cfg(feature = "postgres")]
pub(crate) type PgPool = bb8::Pool<AsyncPgConnection>;

#[cfg(feature = "sqlite")]
const SQLITE_MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations/sqlite");
#[cfg(feature = "postgres")]
const POSTGRES_MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations/postgres");

/// Key of the advisory lock that serialises migrations of several instances on one PostgreSQL.
#[cfg(feature = "postgres")]
const MIGRATION_LOCK: i64 = 0x5345_4c46_4845_414c; // "SELFHEAL"

/// Settings the pools need.
#[derive(Debug, Clone)]
pub(crate) struct PoolSettings {
    pub(crate) max_size: u32,
    pub(crate) connect_timeout: Duration,
    pub(crate) busy_timeout: Duration,
}

/// The pool of the backend in use, and the last error its connection attempts met.
#[derive(Clone, Debug)]
pub(crate) struct Db {
    /// Replaced as a whole when the SQLite file is deleted or replaced under us.
    current: std::sync::Arc<std::sync::RwLock<std::sync::Arc<Generation>>>,
    last_connect_error: LastConnectError,
    connect_timeout: Duration,
    /// What it takes to open a new generation.
    url: DatabaseUrl,
    settings: PoolSettings,
}

/// One set of connections to one database file (or server), and whether its migrations ran.
#[derive(Debug)]
pub(crate) struct Generation {
    pub(crate) pools: Pools,
    /// Set once the migrations ran on these connections' database.
    pub(crate) ready: tokio::sync::OnceCell<()>,
    /// The SQLite file these connections opened, once known (see [`crate::file_watch`]).
    pub(crate) file: std::sync::OnceLock<crate::file_watch::FileId>,
}

/// Remembers the last error of a connection attempt: bb8 reports only "timed out" to the
/// waiting caller and sends the cause to its error sink.
#[derive(Clone, Debug, Default)]
struct LastConnectError(std::sync::Arc<std::sync::Mutex<Option<(std::time::Instant, String)>>>);

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl ::bb8::ErrorSink<diesel_async::pooled_connection::PoolError> for LastConnectError {
    fn sink(&self, error: diesel_async::pooled_connection::PoolError) {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *last = Some((std::time::Instant::now(), error.to_string()));
    }

    fn boxed_clone(&self) -> Box<dyn ::bb8::ErrorSink<diesel_async::pooled_connection::PoolError>> {
        Box::new(self.clone())
    }
}

impl LastConnectError {
    /// The last error, if it is recent.
    fn recent(&self, within: Duration) -> Option<String> {
        let last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        last.as_ref()
            .filter(|(at, _)| at.elapsed() <= within)
            .map(|(_, e)| e.clone())
    }
}

/// The pool of one backend.
#[derive(Clone)]
pub(crate) enum Pools {
    /// SQLite through diesel-async's `SyncConnectionWrapper`.
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
    /// PostgreSQL through `AsyncPgConnection` (no libpq).
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
}

impl std::fmt::Debug for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite(ref p) => f.debug_tuple("Sqlite").field(&p.state()).finish(),
            #[cfg(feature = "postgres")]
            Pools::Postgres(ref p) => f.debug_tuple("Postgres").field(&p.state()).finish(),
        }
    }
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend `$db` is, and
/// `$backend` naming its Diesel backend type. The body is compiled once per backend.
macro_rules! with_conn {
    ($shared:expr, |$conn:ident, $backend:ident| $body:expr) => {{
        let shared = &$shared;
        match shared.db.pools() {
            #[cfg(feature = "sqlite")]
            $crate::db::Pools::Sqlite(ref pool) => {
                #[allow(dead_code)]
                type $backend = ::diesel::sqlite::Sqlite;
                let mut pooled = pool.get().await.map_err(|e| shared.pool_error(e))?;
                let $conn = &mut *pooled;
                $body
            }
            #[cfg(feature = "postgres")]
            $crate::db::Pools::Postgres(ref pool) => {
                #[allow(dead_code)]
                type $backend = ::diesel::pg::Pg;
                let mut pooled = pool.get().await.map_err(|e| shared.pool_error(e))?;
                let $conn = &mut *pooled;
                $body
            }
        }
    }};
}
pub(crate) use with_conn;

impl Db {
    /// Builds the pool for `url` without connecting.
    pub(crate) fn open(url: &DatabaseUrl, settings: &PoolSettings) -> Result<Db, StoreError> {
        let last_connect_error = LastConnectError::default();
        let pools = Self::pools_for(url, settings, &last_connect_error)?;
        Ok(Db {
            current: std::sync::Arc::new(std::sync::RwLock::new(std::sync::Arc::new(
                Generation::new(pools),
            ))),
            last_connect_error,
            connect_timeout: settings.connect_timeout,
            url: url.clone(),
            settings: settings.clone(),
        })
    }

    /// The connections in use now.
    pub(crate) fn current(&self) -> std::sync::Arc<Generation> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The pool in use now (a cheap handle).
    pub(crate) fn pools(&self) -> Pools {
        self.current().pools.clone()
    }

    /// Replaces `stale` with fresh connections (and migrations to run again), unless another
    /// writer did it already.
    pub(crate) fn reopen(&self, stale: &std::sync::Arc<Generation>) -> Result<(), StoreError> {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if std::sync::Arc::ptr_eq(&current, stale) {
            let pools = Self::pools_for(&self.url, &self.settings, &self.last_connect_error)?;
            *current = std::sync::Arc::new(Generation::new(pools));
        }
        Ok(())
    }

    fn pools_for(
        url: &DatabaseUrl,
        settings: &PoolSettings,
        last_connect_error: &LastConnectError,
    ) -> Result<Pools, StoreError> {
        #[allow(unused_variables)]
        let sink = last_connect_error.clone();
        let pools = match url.backend {
            Backend::Sqlite => {
                #[cfg(feature = "sqlite")]
                {
                    Pools::Sqlite(sqlite::pool(url, settings, sink)?)
                }
                #[cfg(not(feature = "sqlite"))]
                {
                    return Err(missing_feature(url, "sqlite"));
                }
            }
            Backend::Postgres => {
                #[cfg(feature = "postgres")]
                {
                    Pools::Postgres(postgres::pool(url, settings, sink))
                }
                #[cfg(not(feature = "postgres"))]
                {
                    return Err(missing_feature(url, "postgres"));
                }
            }
        };
        Ok(pools)
    }

    /// Turns a pool error into a [`StoreError`] that says what to do; a timeout reports the
    /// error the connection attempts met, when there was one.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn pool_error(&self, url: &DatabaseUrl, e: bb8::RunError) -> StoreError {
        if let bb8::RunError::TimedOut = e
            && let Some(cause) = self
                .last_connect_error
                .recent(self.connect_timeout + Duration::from_secs(1))
        {
            return classify(url, cause, ErrorKind::Connect);
        }
        pool_error(url, e)
    }

    /// Runs the embedded migrations that are not applied yet. Several instances may do this at
    /// once: SQLite serialises them with an immediate transaction, PostgreSQL with an advisory lock.
    pub(crate) async fn migrate(
        &self,
        generation: &Generation,
        url: &DatabaseUrl,
    ) -> Result<(), StoreError> {
        match generation.pools {
            #[cfg(feature = "sqlite")]
            Pools::Sqlite(ref pool) => sqlite::migrate(self, pool, url).await,
            #[cfg(feature = "postgres")]
            Pools::Postgres(_) => postgres::migrate(url).await,
        }
    }

    /// Opens one connection and runs `SELECT 1`, to fail early with a clear error.
    pub(crate) async fn check(&self, url: &DatabaseUrl) -> Result<(), StoreError> {
        // PostgreSQL is asked directly, not through the pool: the pool keeps retrying a failed
        // connection until its timeout, so a missing database or role would wait it out.
        #[cfg(feature = "postgres")]
        if let Pools::Postgres(_) = self.pools() {
            return postgres::check(url, self.connect_timeout).await;
        }
        use diesel::IntoSql;
        use diesel::sql_types::Integer;
        use diesel_async::RunQueryDsl;
        let shared = Checker {
            db: self.clone(),
            url,
        };
        let one: i32 = with_conn!(shared, |conn, _B| {
            diesel::select(1_i32.into_sql::<Integer>())
                .get_result(conn)
                .await
                .map_err(|e| query_error(url, ErrorKind::Connect, e))?
        });
        debug_assert_eq!(one, 1);
        Ok(())
    }
}

/// The error for a URL whose backend was compiled out.
#[allow(dead_code)]
fn missing_feature(url: &DatabaseUrl, feature: &str) -> StoreError {
    StoreError::new(
        ErrorKind::MissingFeature,
        &url.masked,
        format!("this build of self-healing-store has no `{feature}` feature"),
    )
    .with_hint(match feature {
        "postgres" => "enable the `postgres` feature of `self-healing` (or `self-healing-store`)",
        _ => "enable the `sqlite` feature of `self-healing` (or `self-healing-store`); it is on by default",
    })
}

impl Generation {
    fn new(pools: Pools) -> Generation {
        Generation {
            pools,
            ready: tokio::sync::OnceCell::new(),
            file: std::sync::OnceLock::new(),
        }
    }
}

/// Lets `with_conn!` run against a bare [`Db`].
struct Checker<'a> {
    db: Db,
    url: &'a DatabaseUrl,
}

impl Checker<'_> {
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn pool_error(&self, e: bb8::RunError) -> StoreError {
        self.db.pool_error(self.url, e)
    }
}

/// Turns a pool error into a [`StoreError`] that says what to do.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn pool_error(url: &DatabaseUrl, e: bb8::RunError) -> StoreError {
    use diesel_async::pooled_connection::PoolError;
    match e {
        bb8::RunError::TimedOut => StoreError::new(
            ErrorKind::Connect,
            &url.masked,
            "timed out waiting for a connection",
        )
        .with_hint(hint(url.backend, ErrorKind::Connect, "")),
        bb8::RunError::User(PoolError::ConnectionError(c)) => {
            let detail = c.to_string();
            classify(url, detail, ErrorKind::Connect).with_source(c)
        }
        bb8::RunError::User(PoolError::QueryError(q)) => query_error(url, ErrorKind::Connect, q),
    }
}

/// Turns a query error into a [`StoreError`].
pub(crate) fn query_error(
    url: &DatabaseUrl,
    kind: ErrorKind,
    e: diesel::result::Error,
) -> StoreError {
    let detail = e.to_string();
    classify(url, detail, kind).with_source(e)
}

/// Picks the kind and the advice from the driver's message.
pub(crate) fn classify(url: &DatabaseUrl, detail: String, default: ErrorKind) -> StoreError {
    let d = detail.to_ascii_lowercase();
    let kind = if d.contains("password authentication failed")
        || d.contains("no pg_hba.conf entry")
        || (d.contains("role") && d.contains("does not exist"))
        || d.contains("permission denied")
        || d.contains("readonly database")
        || d.contains("read-only")
    {
        ErrorKind::Permission
    } else if d.contains("invalid connection string") || d.contains("invalid configuration") {
        ErrorKind::InvalidUrl
    } else if d.contains("database is locked") {
        ErrorKind::Unavailable
    } else if d.contains("unable to open database file")
        || d.contains("error connecting")
        || d.contains("connection refused")
        || d.contains("does not exist")
        || d.contains("timed out")
    {
        ErrorKind::Connect
    } else {
        default
    };
    let advice = hint(url.backend, kind, &d);
    let detail = detail.trim_end_matches(['.', '\n']).replace('\n', " ");
    StoreError::new(kind, &url.masked, detail).with_hint(advice)
}

fn hint(backend: Backend, kind: ErrorKind, detail: &str) -> &'static str {
    match (backend, kind) {
        (_, ErrorKind::InvalidUrl) => {
            "DATABASE_URL is not a valid URL: use `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (bracket IPv6 hosts: `[::1]`), or a file path or `sqlite://PATH` for SQLite"
        }
        (_, ErrorKind::Migration) => {
            "the embedded migrations failed: check that the database user may create tables and indexes, or run them once as the owner (`run_migrations(false)` skips them)"
        }
        (Backend::Postgres, ErrorKind::Permission) if detail.contains("permission denied") => {
            "grant the user CREATE and USAGE on the schema (or run the migrations as its owner), or set another user in DATABASE_URL"
        }
        (Backend::Postgres, ErrorKind::Permission) => {
            "check the user name and password in DATABASE_URL and the server's pg_hba.conf"
        }
        (Backend::Postgres, ErrorKind::Connect)
            if detail.contains("database") && detail.contains("does not exist") =>
        {
            "create the database first (`createdb NAME` or `CREATE DATABASE name`), or name an existing one in DATABASE_URL"
        }
        (Backend::Postgres, _) => {
            "check that PostgreSQL is running and reachable at that host and port, and that DATABASE_URL is right; events wait in the store's buffer meanwhile"
        }
        (Backend::Sqlite, ErrorKind::Permission) => {
            "make the database file and its directory writable by this process, or choose another path"
        }
        (Backend::Sqlite, ErrorKind::Unavailable) => {
            "another process holds a write lock on the database; it is retried (raise `busy_timeout` to wait longer)"
        }
        (Backend::Sqlite, _) => {
            "check that the directory exists and is writable by this process, or choose another path"
        }
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, SqliteConnection};
    use diesel_async::pooled_connection::{ManagerConfig, RecyclingMethod};
    use diesel_migrations::MigrationHarness;

    pub(super) fn pool(
        url: &DatabaseUrl,
        settings: &PoolSettings,
        sink: LastConnectError,
    ) -> Result<SqlitePool, StoreError> {
        if !url.is_memory() && !url.target.starts_with("file:") {
            let path = std::path::Path::new(&url.target);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                && !dir.is_dir()
            {
                return Err(StoreError::new(
                    ErrorKind::Connect,
                    &url.masked,
                    format!("the directory `{}` does not exist", dir.display()),
                )
                .with_hint("create the directory first, or choose another path"));
            }
        }
        // WAL with `synchronous = NORMAL`: a commit is not fsynced; it survives a crash of the
        // process, and a power loss may lose the last commits (the WAL is synced at checkpoints).
        // Checkpoints run beside the writer (`checkpoint.rs`); the automatic one, which would
        // run inside a commit, is only a safety net at `wal_autocheckpoint = 25000` pages
        // (~200 MB of log). Durability is the same. A new database gets 8 KiB pages (an
        // existing one keeps its own): fewer pages per batch, ~8 % more events/s than 4 KiB in
        // the throughput bench, where 16 KiB gained nothing more.
        let pragmas = format!(
            "PRAGMA busy_timeout = {}; PRAGMA page_size = 8192; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 25000;",
            settings.busy_timeout.as_millis()
        );
        let mut config = ManagerConfig::<SqliteConn>::default();
        config.recycling_method = RecyclingMethod::Verified;
        config.custom_setup = Box::new(move |target| {
            let target = target.to_owned();
            let pragmas = pragmas.clone();
            Box::pin(async move {
                let conn = tokio::task::spawn_blocking(move || {
                    let mut conn = SqliteConnection::establish(&target)?;
                    conn.batch_execute(&pragmas)
                        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                    Ok::<_, diesel::ConnectionError>(conn)
                })
                .await
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))??;
                Ok(SqliteConn::new(conn))
            })
        });
        let manager = AsyncDieselConnectionManager::new_with_config(url.target.clone(), config);
        // An in-memory database lives in one connection: more would each see their own.
        let max_size = if url.is_memory() {
            1
        } else {
            settings.max_size.max(1)
        };
        Ok(bb8::Pool::builder()
            .max_size(max_size)
            .min_idle(if url.is_memory() { Some(1) } else { None })
            .idle_timeout(if url.is_memory() {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if url.is_memory() {
                None
            } else {
                Some(Duration::from_secs(1800))
            })
            .connection_timeout(settings.connect_timeout)
            .retry_connection(false)
            .test_on_check_out(true)
            .error_sink(Box::new(sink))
            .build_unchecked(manager))
    }

    pub(super) async fn migrate(
        db: &Db,
        pool: &SqlitePool,
        url: &DatabaseUrl,
    ) -> Result<(), StoreError> {
        let mut conn = pool.get().await.map_err(|e| db.pool_error(url, e))?;
        let outcome = conn
            .spawn_blocking(|c| {
                Ok(c.immediate_transaction(|c| {
                    c.run_pending_migrations(SQLITE_MIGRATIONS)
                        .map(|_| ())
                        .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e })
                })
                .map_err(|e| e.to_string()))
            })
            .await
            .map_err(|e| query_error(url, ErrorKind::Migration, e))?;
        outcome.map_err(|e| classify(url, e, ErrorKind::Migration))
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use diesel::Connection;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
    use diesel_async::pooled_connection::{ManagerConfig, RecyclingMethod};
    use diesel_migrations::MigrationHarness;

    /// Adds `connect_timeout` (whole seconds) unless the URL sets one.
    fn with_connect_timeout(url: &str, timeout: Duration) -> String {
        if url.contains("connect_timeout=") {
            return url.to_owned();
        }
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}connect_timeout={}", timeout.as_secs().max(1))
    }

    pub(super) fn pool(
        url: &DatabaseUrl,
        settings: &PoolSettings,
        sink: LastConnectError,
    ) -> PgPool {
        let mut config = ManagerConfig::<AsyncPgConnection>::default();
        config.recycling_method = RecyclingMethod::Verified;
        let manager = AsyncDieselConnectionManager::new_with_config(
            with_connect_timeout(&url.target, settings.connect_timeout),
            config,
        );
        bb8::Pool::builder()
            .max_size(settings.max_size.max(1))
            .idle_timeout(Some(Duration::from_secs(600)))
            .max_lifetime(Some(Duration::from_secs(1800)))
            .connection_timeout(settings.connect_timeout)
            .retry_connection(false)
            .test_on_check_out(true)
            .error_sink(Box::new(sink))
            .build_unchecked(manager)
    }

    /// One connection of its own and `SELECT 1`: its error comes back at once, and only a
    /// server that does not answer waits `timeout`.
    pub(super) async fn check(url: &DatabaseUrl, timeout: Duration) -> Result<(), StoreError> {
        use diesel::IntoSql;
        use diesel::sql_types::Integer;
        use diesel_async::{AsyncConnection, RunQueryDsl};
        let target = with_connect_timeout(&url.target, timeout);
        let attempt = async {
            let mut conn = AsyncPgConnection::establish(&target).await.map_err(|c| {
                let detail = c.to_string();
                classify(url, detail, ErrorKind::Connect).with_source(c)
            })?;
            diesel::select(1_i32.into_sql::<Integer>())
                .get_result::<i32>(&mut conn)
                .await
                .map_err(|e| query_error(url, ErrorKind::Connect, e))
        };
        // The driver's own `connect_timeout` has whole seconds; a second more covers rounding.
        match tokio::time::timeout(timeout + Duration::from_secs(1), attempt).await {
            Ok(result) => result.map(|_| ()),
            Err(_) => Err(StoreError::new(
                ErrorKind::Connect,
                &url.masked,
                "timed out waiting for a connection",
            )
            .with_hint(hint(url.backend, ErrorKind::Connect, ""))),
        }
    }

    pub(super) async fn migrate(url: &DatabaseUrl) -> Result<(), StoreError> {
        let target = url.target.clone();
        let outcome = tokio::task::spawn_blocking(
            move || -> Result<Result<(), String>, diesel::ConnectionError> {
                // The sync wrapper drives the async connection on this blocking thread, so this
                // works on current-thread runtimes too.
                let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&target)?;
                let run =
                    |conn: &mut AsyncConnectionWrapper<AsyncPgConnection>| -> Result<(), String> {
                        use diesel::RunQueryDsl;
                        diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                            .execute(conn)
                            .map_err(|e| e.to_string())?;
                        let result = conn
                            .run_pending_migrations(POSTGRES_MIGRATIONS)
                            .map(|_| ())
                            .map_err(|e| e.to_string());
                        let _ = diesel::sql_query(format!(
                            "SELECT pg_advisory_unlock({MIGRATION_LOCK})"
                        ))
                        .execute(conn);
                        result
                    };
                Ok(run(&mut conn))
            },
        )
        .await
        .map_err(|e| StoreError::new(ErrorKind::Migration, &url.masked, e.to_string()))?
        .map_err(|c| {
            let detail = c.to_string();
            classify(url, detail, ErrorKind::Connect).with_source(c)
        })?;
        outcome.map_err(|e| classify(url, e, ErrorKind::Migration))
    }
}
