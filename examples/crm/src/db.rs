//! The CRM's own tables on SQLite through diesel-async, and the "pool" the reconnect hook rebuilds.

use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::error::CrmError;

pub(crate) type Conn = SyncConnectionWrapper<SqliteConnection>;

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

const SCHEMA: &str = "
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

/// A single SQLite connection behind a lock, which a fault can drop and the reconnect hook rebuilds.
pub(crate) struct Db {
    url: String,
    conn: Mutex<Option<Conn>>,
    rebuilds: AtomicU64,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Db {
    pub(crate) async fn open(url: &str) -> Result<Db, CrmError> {
        let mut conn = Conn::establish(url)
            .await
            .map_err(|e| CrmError::Setup(e.to_string()))?;
        conn.batch_execute(SCHEMA).await?;
        Ok(Db {
            url: url.to_owned(),
            conn: Mutex::new(Some(conn)),
            rebuilds: AtomicU64::new(0),
        })
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
        let conn = Conn::establish(&self.url)
            .await
            .map_err(|e| CrmError::Setup(e.to_string()))?;
        *self.conn.lock().await = Some(conn);
        self.rebuilds.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn rebuilds(&self) -> u64 {
        self.rebuilds.load(Ordering::Relaxed)
    }
}
