//! The CRM's own tables through diesel-async (SQLite embedded, or PostgreSQL with the
//! `postgres` feature), and the "pool" the reconnect hook rebuilds.

use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::error::CrmError;

/// One connection of whichever backend the CRM database URL names. Queries are written once
/// and compiled per backend by [`with_conn!`].
pub(crate) enum Conn {
    /// SQLite through diesel-async's `SyncConnectionWrapper` (queries run on the blocking pool).
    Sqlite(SyncConnectionWrapper<SqliteConnection>),
    /// PostgreSQL through `AsyncPgConnection` (no libpq); boxed, it is several times the size
    /// of the SQLite handle.
    #[cfg(feature = "postgres")]
    Postgres(Box<diesel_async::AsyncPgConnection>),
}

/// Where the CRM's tables live, parsed from `--crm-database`/`--database-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A SQLite file (or `:memory:`).
    Sqlite(String),
    /// A PostgreSQL URL.
    Postgres(String),
}

impl Target {
    /// `postgres://…`/`postgresql://…` is PostgreSQL; `sqlite://PATH`, `sqlite:PATH` or a plain
    /// path is SQLite.
    pub(crate) fn parse(url: &str) -> Result<Target, CrmError> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return Ok(Target::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() {
            return Err(CrmError::Setup(
                "the CRM database is empty: give a SQLite path or a postgres:// URL".into(),
            ));
        }
        if let Some((scheme, _)) = path.split_once("://") {
            return Err(CrmError::Setup(format!(
                "the CRM database `{scheme}://…` is neither SQLite (a path or sqlite://PATH) nor \
                 PostgreSQL (postgres://…)"
            )));
        }
        Ok(Target::Sqlite(path.to_owned()))
    }

    async fn connect(&self) -> Result<Conn, CrmError> {
        match self {
            Target::Sqlite(path) => Ok(Conn::Sqlite(
                SyncConnectionWrapper::<SqliteConnection>::establish(path)
                    .await
                    .map_err(|e| CrmError::Setup(format!("SQLite {path}: {e}")))?,
            )),
            #[cfg(feature = "postgres")]
            Target::Postgres(url) => Ok(Conn::Postgres(Box::new(
                diesel_async::AsyncPgConnection::establish(url)
                    .await
                    .map_err(|e| CrmError::Setup(format!("PostgreSQL: {e}")))?,
            ))),
            #[cfg(not(feature = "postgres"))]
            Target::Postgres(_) => Err(CrmError::Setup(
                "a postgres:// CRM database needs the `postgres` feature: \
                 cargo run -p self-healing-crm --features postgres -- --database-url postgres://…"
                    .into(),
            )),
        }
    }
}

/// Runs `$body` with `$c` bound to `&mut` the live connection of `$db`, whichever backend it is
/// (the body is compiled once per backend) and evaluates to the body's value. A closed pool
/// returns `CrmError::PoolClosed` from the enclosing function, as `?` inside the body does.
macro_rules! with_conn {
    ($db:expr, |$c:ident| $body:expr) => {{
        let mut guard = $db.conn().await?;
        match &mut *guard {
            $crate::db::Conn::Sqlite($c) => $body,
            #[cfg(feature = "postgres")]
            $crate::db::Conn::Postgres(boxed) => {
                let $c = &mut **boxed;
                $body
            }
        }
    }};
}
pub(crate) use with_conn;

#[allow(missing_docs, unreachable_pub)]
pub(crate) mod schema {
    diesel::table! {
        contacts (id) {
            id -> BigInt,
            org_id -> BigInt,
            name -> Text,
            email -> Text,
            request_id -> Text,
        }
    }
    diesel::table! {
        deals (id) {
            id -> BigInt,
            org_id -> BigInt,
            title -> Text,
            stage -> Text,
            amount -> BigInt,
            request_id -> Text,
        }
    }
    diesel::table! {
        credits (id) {
            id -> BigInt,
            org_id -> BigInt,
            delta -> BigInt,
            reason -> Text,
            request_id -> Text,
        }
    }
    diesel::table! {
        projects (id) {
            id -> BigInt,
            org_id -> BigInt,
            name -> Text,
            status -> Text,
            request_id -> Text,
        }
    }
    diesel::table! {
        templates (id) {
            id -> BigInt,
            name -> Text,
            body -> Text,
        }
    }
    diesel::table! {
        onboarding_sessions (id) {
            id -> BigInt,
            token -> Text,
            email -> Text,
            status -> Text,
            responses -> Text,
            request_id -> Text,
        }
    }
}

const SQLITE_SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA busy_timeout = 5000;
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, org_id BIGINT NOT NULL, name TEXT NOT NULL,
    email TEXT NOT NULL, request_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deals (
    id INTEGER PRIMARY KEY AUTOINCREMENT, org_id BIGINT NOT NULL, title TEXT NOT NULL,
    stage TEXT NOT NULL, amount BIGINT NOT NULL, request_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS credits (
    id INTEGER PRIMARY KEY AUTOINCREMENT, org_id BIGINT NOT NULL, delta BIGINT NOT NULL,
    reason TEXT NOT NULL, request_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT, org_id BIGINT NOT NULL, name TEXT NOT NULL,
    status TEXT NOT NULL, request_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS templates (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS onboarding_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, token TEXT NOT NULL, email TEXT NOT NULL,
    status TEXT NOT NULL, responses TEXT NOT NULL, request_id TEXT NOT NULL);
";

/// The same tables on PostgreSQL. Several demo instances may start at once against one
/// database: the advisory lock serialises their `CREATE TABLE IF NOT EXISTS` (which can
/// otherwise race on the catalog's unique index).
#[cfg(feature = "postgres")]
const POSTGRES_SCHEMA: &str = "
SELECT pg_advisory_lock(7243105);
CREATE TABLE IF NOT EXISTS contacts (
    id BIGSERIAL PRIMARY KEY, org_id BIGINT NOT NULL, name TEXT NOT NULL,
    email TEXT NOT NULL, request_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deals (
    id BIGSERIAL PRIMARY KEY, org_id BIGINT NOT NULL, title TEXT NOT NULL,
    stage TEXT NOT NULL, amount BIGINT NOT NULL, request_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS credits (
    id BIGSERIAL PRIMARY KEY, org_id BIGINT NOT NULL, delta BIGINT NOT NULL,
    reason TEXT NOT NULL, request_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS projects (
    id BIGSERIAL PRIMARY KEY, org_id BIGINT NOT NULL, name TEXT NOT NULL,
    status TEXT NOT NULL, request_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS templates (
    id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS onboarding_sessions (
    id BIGSERIAL PRIMARY KEY, token TEXT NOT NULL, email TEXT NOT NULL,
    status TEXT NOT NULL, responses TEXT NOT NULL, request_id TEXT NOT NULL);
SELECT pg_advisory_unlock(7243105);
";

/// Keyed writes: a request id is written once (`INSERT … ON CONFLICT (request_id) DO NOTHING`),
/// on either backend. Duplicates an older demo left behind are folded first, or the unique
/// indexes could not exist.
const KEYED_REQUESTS: &str = "
DELETE FROM contacts WHERE id NOT IN (SELECT MIN(id) FROM contacts GROUP BY request_id);
DELETE FROM deals WHERE id NOT IN (SELECT MIN(id) FROM deals GROUP BY request_id);
DELETE FROM credits WHERE id NOT IN (SELECT MIN(id) FROM credits GROUP BY request_id);
DELETE FROM projects WHERE id NOT IN (SELECT MIN(id) FROM projects GROUP BY request_id);
DELETE FROM onboarding_sessions WHERE id NOT IN (SELECT MIN(id) FROM onboarding_sessions GROUP BY request_id);
CREATE UNIQUE INDEX IF NOT EXISTS contacts_request_id ON contacts (request_id);
CREATE UNIQUE INDEX IF NOT EXISTS deals_request_id ON deals (request_id);
CREATE UNIQUE INDEX IF NOT EXISTS credits_request_id ON credits (request_id);
CREATE UNIQUE INDEX IF NOT EXISTS projects_request_id ON projects (request_id);
CREATE UNIQUE INDEX IF NOT EXISTS onboarding_sessions_request_id ON onboarding_sessions (request_id);
";

/// A single connection behind a lock, which a fault can drop and the reconnect hook rebuilds.
pub(crate) struct Db {
    target: Target,
    conn: Mutex<Option<Conn>>,
    rebuilds: AtomicU64,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.target {
            Target::Sqlite(_) => "sqlite",
            Target::Postgres(_) => "postgres",
        };
        f.debug_struct("Db")
            .field("backend", &backend)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Connects and creates the tables.
    pub(crate) async fn open(url: &str) -> Result<Db, CrmError> {
        let target = Target::parse(url)?;
        let mut conn = target.connect().await?;
        match &mut conn {
            Conn::Sqlite(c) => {
                c.batch_execute(SQLITE_SCHEMA).await?;
                c.batch_execute(KEYED_REQUESTS).await?;
            }
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => {
                c.batch_execute(POSTGRES_SCHEMA).await?;
                // Under the same lock as the tables, for the same reason.
                c.batch_execute(&format!(
                    "SELECT pg_advisory_lock(7243105); {KEYED_REQUESTS} SELECT pg_advisory_unlock(7243105);"
                ))
                .await?;
            }
        }
        Ok(Db {
            target,
            conn: Mutex::new(Some(conn)),
            rebuilds: AtomicU64::new(0),
        })
    }

    /// Whether the tables are on PostgreSQL (the fault layer speaks its dialect).
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.target, Target::Postgres(_))
    }

    /// The connection, or "connection refused" while the pool is down.
    pub(crate) async fn conn(&self) -> Result<MappedMutexGuard<'_, Conn>, CrmError> {
        let guard = self.conn.lock().await;
        MutexGuard::try_map(guard, |c| c.as_mut()).map_err(|_| CrmError::PoolClosed)
    }

    /// A lost connection: the pool is gone until someone rebuilds it.
    pub(crate) async fn lose_connection(&self) {
        *self.conn.lock().await = None;
    }

    /// Rebuilds the pool (the reconnect hook).
    pub(crate) async fn rebuild(&self) -> Result<(), CrmError> {
        let conn = self.target.connect().await?;
        *self.conn.lock().await = Some(conn);
        self.rebuilds.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn rebuilds(&self) -> u64 {
        self.rebuilds.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn crm_database_urls_name_their_backend() {
        assert_eq!(
            Target::parse("crm.db").unwrap(),
            Target::Sqlite("crm.db".into())
        );
        assert_eq!(
            Target::parse("sqlite://data/crm.db").unwrap(),
            Target::Sqlite("data/crm.db".into())
        );
        assert_eq!(
            Target::parse("postgresql://u@h/db").unwrap(),
            Target::Postgres("postgresql://u@h/db".into())
        );
        let err = Target::parse("mysql://h/db").unwrap_err().to_string();
        assert!(err.contains("mysql://"), "{err}");
        assert!(Target::parse("  ").is_err());
    }
}
