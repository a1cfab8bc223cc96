//! The outbox of `queue_for_later` sites in `outbox`: what the runtime's `EventStore::outbox_*`
//! methods read and write, and what the CLI and the dashboard show and change.
//!
//! Claims are safe with several instances on one database. PostgreSQL takes the due entries with
//! `FOR UPDATE SKIP LOCKED` and moves them to the end of their lease in the same statement, so
//! two workers never take the same entry, and neither waits for the other. SQLite claims in one
//! immediate transaction: the write lock is taken before the due entries are read.
//!
//! Keys, sources and payloads are kept exactly as given (a replay needs them as they were); one
//! holding NUL, which is no JSON and which PostgreSQL text cannot hold, is refused rather than
//! changed. The failure text of a replay is capped like an event's message.

use std::time::{Duration, SystemTime};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use self_healing_runtime::event::{BoxFuture, StoreError as RuntimeStoreError};
use self_healing_runtime::outbox::{OutboxCounts, OutboxEntry, OutboxSettle, OutboxStatus};

use crate::db::with_conn;
use crate::error::{ErrorKind, StoreError};
use crate::rows::{clean_text, from_time_us, time_us, to_i64};
use crate::schema::outbox;
use crate::store::DieselStore;

/// Most entries one list returns.
pub const MAX_OUTBOX_PAGE: usize = 1_000;

/// An entry as stored.
#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = outbox)]
struct OutboxRow {
    id: i64,
    key: String,
    source: String,
    payload: String,
    status: String,
    attempts: i32,
    next_attempt_at_us: i64,
    created_at_us: i64,
    updated_at_us: i64,
    last_error: Option<String>,
}

/// A new entry's columns.
#[derive(Debug, Insertable)]
#[diesel(table_name = outbox)]
struct NewOutboxRow<'a> {
    key: &'a str,
    source: &'a str,
    payload: &'a str,
    status: &'static str,
    attempts: i32,
    next_attempt_at_us: i64,
    created_at_us: i64,
    updated_at_us: i64,
    last_error: Option<String>,
}

/// `SELECT status, COUNT(*)`.
#[derive(Debug, QueryableByName)]
struct StatusCount {
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

impl DieselStore {
    /// The error for a stored row this version cannot read.
    fn outbox_row(&self, r: OutboxRow) -> Result<OutboxEntry, StoreError> {
        let status = OutboxStatus::parse(&r.status)
            .ok_or_else(|| self.corrupt("outbox", "status", &r.status))?;
        Ok(OutboxEntry {
            key: r.key,
            source: r.source,
            payload: r.payload,
            status,
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            next_attempt_at: from_time_us(r.next_attempt_at_us),
            created_at: from_time_us(r.created_at_us),
            updated_at: from_time_us(r.updated_at_us),
            last_error: r.last_error,
        })
    }

    fn outbox_rows(&self, rows: Vec<OutboxRow>) -> Result<Vec<OutboxEntry>, StoreError> {
        rows.into_iter().map(|r| self.outbox_row(r)).collect()
    }

    /// Queues a call: `Ok(false)` when an entry with its key is there already (nothing changes:
    /// a call is queued at most once).
    ///
    /// # Errors
    /// When the database cannot be written, or the key, source or payload holds NUL.
    pub async fn queue_outbox_entry(&self, entry: &OutboxEntry) -> Result<bool, StoreError> {
        for (what, text) in [
            ("key", &entry.key),
            ("source", &entry.source),
            ("payload", &entry.payload),
        ] {
            if text.contains('\0') {
                return Err(StoreError::new(
                    ErrorKind::Query,
                    &self.shared.url.masked,
                    format!("the outbox entry's {what} holds a NUL character"),
                )
                .with_hint("NUL is no JSON, and PostgreSQL text cannot hold it; queue the call's arguments as JSON text"));
            }
        }
        self.shared.ensure_ready().await?;
        let max = self.shared.settings.max_message_bytes;
        let row = NewOutboxRow {
            key: &entry.key,
            source: &entry.source,
            payload: &entry.payload,
            status: entry.status.as_str(),
            attempts: i32::try_from(entry.attempts).unwrap_or(i32::MAX),
            next_attempt_at_us: time_us(entry.next_attempt_at),
            created_at_us: time_us(entry.created_at),
            updated_at_us: time_us(entry.updated_at),
            last_error: entry.last_error.as_deref().map(|e| clean_text(e, max)),
        };
        let inserted: usize = with_conn!(self.shared, |conn, _B| {
            diesel::insert_into(outbox::table)
                .values(&row)
                .on_conflict(outbox::key)
                .do_nothing()
                .execute(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        Ok(inserted > 0)
    }

    /// Claims up to `limit` pending entries due at `now`, oldest due first: each one's attempts
    /// go up by one and its next replay moves to `now + lease`, so no other worker (of this
    /// instance or another) takes it until then. Returns them as they are after the claim, in
    /// the order they were due.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn claim_outbox_entries(
        &self,
        now: SystemTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let generation = self.shared.ready_connections().await?;
        let now_us = time_us(now);
        let until_us = now_us.saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX));
        let limit = to_i64(limit as u64);
        let rows: Vec<OutboxRow> = match generation.pools {
            #[cfg(feature = "sqlite")]
            crate::db::Pools::Sqlite(ref pool) => {
                let mut conn = pool.get().await.map_err(|e| self.shared.pool_error(e))?;
                conn.spawn_blocking(move |c| sqlite::claim(c, now_us, until_us, limit))
                    .await
                    .map_err(|e| self.shared.query_error(e))?
            }
            #[cfg(feature = "postgres")]
            crate::db::Pools::Postgres(ref pool) => {
                let mut conn = pool.get().await.map_err(|e| self.shared.pool_error(e))?;
                postgres::claim(&mut conn, now_us, until_us, limit)
                    .await
                    .map_err(|e| self.shared.query_error(e))?
            }
        };
        self.outbox_rows(rows)
    }

    /// Records how a replay of the pending entry `key` ended; nothing happens when it is not
    /// pending (dropped, or settled meanwhile).
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn settle_outbox_entry(
        &self,
        key: &str,
        settle: &OutboxSettle,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        use crate::schema::outbox::dsl as o;
        self.shared.ensure_ready().await?;
        let now_us = time_us(now);
        let max = self.shared.settings.max_message_bytes;
        let pending = o::outbox
            .filter(o::key.eq(key))
            .filter(o::status.eq(OutboxStatus::Pending.as_str()));
        with_conn!(self.shared, |conn, _B| {
            let done = match settle {
                OutboxSettle::Delivered => {
                    diesel::update(pending)
                        .set((
                            o::status.eq(OutboxStatus::Delivered.as_str()),
                            o::updated_at_us.eq(now_us),
                        ))
                        .execute(conn)
                        .await
                }
                OutboxSettle::RetryAt { at, error } => {
                    diesel::update(pending)
                        .set((
                            o::next_attempt_at_us.eq(time_us(*at)),
                            o::last_error.eq(clean_text(error, max)),
                            o::updated_at_us.eq(now_us),
                        ))
                        .execute(conn)
                        .await
                }
                OutboxSettle::Dead { error } => {
                    diesel::update(pending)
                        .set((
                            o::status.eq(OutboxStatus::Dead.as_str()),
                            o::last_error.eq(clean_text(error, max)),
                            o::updated_at_us.eq(now_us),
                        ))
                        .execute(conn)
                        .await
                }
            };
            done.map_err(|e| self.shared.query_error(e))?
        });
        Ok(())
    }

    /// Entries of one status (or all), newest first, `limit` at most (capped at
    /// [`MAX_OUTBOX_PAGE`]).
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn outbox_entries(
        &self,
        status: Option<OutboxStatus>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        use crate::schema::outbox::dsl as o;
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.shared.ensure_ready().await?;
        let limit = to_i64(limit.min(MAX_OUTBOX_PAGE) as u64);
        let rows: Vec<OutboxRow> = with_conn!(self.shared, |conn, B| {
            let mut q = o::outbox.select(OutboxRow::as_select()).into_boxed::<B>();
            if let Some(s) = status {
                q = q.filter(o::status.eq(s.as_str()));
            }
            // `id` follows the order entries were queued in.
            q.order(o::id.desc())
                .limit(limit)
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        self.outbox_rows(rows)
    }

    /// The entry with this key, if there is one.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn outbox_entry(&self, key: &str) -> Result<Option<OutboxEntry>, StoreError> {
        use crate::schema::outbox::dsl as o;
        self.shared.ensure_ready().await?;
        let rows: Vec<OutboxRow> = with_conn!(self.shared, |conn, _B| {
            o::outbox
                .filter(o::key.eq(key))
                .select(OutboxRow::as_select())
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        rows.into_iter()
            .next()
            .map(|r| self.outbox_row(r))
            .transpose()
    }

    /// Makes the pending or dead entry `key` due at `now`, its tries counted afresh (its last
    /// error stays, until a replay replaces it). `Ok(false)`: there is no such entry, or it was
    /// delivered (a delivered call is never replayed).
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn retry_outbox_entry(&self, key: &str, now: SystemTime) -> Result<bool, StoreError> {
        use crate::schema::outbox::dsl as o;
        self.shared.ensure_ready().await?;
        let now_us = time_us(now);
        let changed: usize = with_conn!(self.shared, |conn, _B| {
            diesel::update(
                o::outbox
                    .filter(o::key.eq(key))
                    .filter(o::status.ne(OutboxStatus::Delivered.as_str())),
            )
            .set((
                o::status.eq(OutboxStatus::Pending.as_str()),
                o::attempts.eq(0),
                o::next_attempt_at_us.eq(now_us),
                o::updated_at_us.eq(now_us),
            ))
            .execute(conn)
            .await
            .map_err(|e| self.shared.query_error(e))?
        });
        Ok(changed > 0)
    }

    /// Removes the entry `key`, whatever its status: it is never replayed. `Ok(false)`: there
    /// was none.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn drop_outbox_entry(&self, key: &str) -> Result<bool, StoreError> {
        use crate::schema::outbox::dsl as o;
        self.shared.ensure_ready().await?;
        let deleted: usize = with_conn!(self.shared, |conn, _B| {
            diesel::delete(o::outbox.filter(o::key.eq(key)))
                .execute(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        Ok(deleted > 0)
    }

    /// How many entries are pending, delivered and dead.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn count_outbox_entries(&self) -> Result<OutboxCounts, StoreError> {
        self.shared.ensure_ready().await?;
        let rows: Vec<StatusCount> = with_conn!(self.shared, |conn, _B| {
            diesel::sql_query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        let mut counts = OutboxCounts::default();
        for r in rows {
            let n = u64::try_from(r.n).unwrap_or(0);
            match OutboxStatus::parse(&r.status) {
                Some(OutboxStatus::Pending) => counts.pending = n,
                Some(OutboxStatus::Delivered) => counts.delivered = n,
                Some(OutboxStatus::Dead) => counts.dead = n,
                None => return Err(self.corrupt("outbox", "status", &r.status)),
            }
        }
        Ok(counts)
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use diesel::prelude::*;

    use super::OutboxRow;
    use crate::schema::outbox::dsl as o;
    use self_healing_runtime::outbox::OutboxStatus;

    /// One immediate transaction: the write lock comes first, so no other connection can claim
    /// the entries read here before they are moved.
    pub(super) fn claim(
        c: &mut SqliteConnection,
        now: i64,
        until: i64,
        limit: i64,
    ) -> QueryResult<Vec<OutboxRow>> {
        c.immediate_transaction(|c| {
            let due: Vec<OutboxRow> = o::outbox
                .filter(o::status.eq(OutboxStatus::Pending.as_str()))
                .filter(o::next_attempt_at_us.le(now))
                .order((o::next_attempt_at_us.asc(), o::id.asc()))
                .limit(limit)
                .select(OutboxRow::as_select())
                .load(c)?;
            let ids: Vec<i64> = due.iter().map(|r| r.id).collect();
            diesel::update(o::outbox.filter(o::id.eq_any(&ids)))
                .set((
                    o::attempts.eq(o::attempts + 1),
                    o::next_attempt_at_us.eq(until),
                    o::updated_at_us.eq(now),
                ))
                .execute(c)?;
            Ok(due
                .into_iter()
                .map(|mut r| {
                    r.attempts = r.attempts.saturating_add(1);
                    r.next_attempt_at_us = until;
                    r.updated_at_us = now;
                    r
                })
                .collect())
        })
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use diesel::QueryableByName;
    use diesel::sql_types::BigInt;
    use diesel_async::{AsyncPgConnection, RunQueryDsl};

    use super::OutboxRow;

    /// Takes the due entries nobody holds (`SKIP LOCKED`: an entry another worker is claiming
    /// right now is left to it, without waiting) and moves them to the end of the lease, in one
    /// statement. An entry claimed by a transaction that commits meanwhile is checked again
    /// after its lock is released: it is no longer due, so it is not taken twice.
    const CLAIM: &str = "WITH due AS ( \
            SELECT id, next_attempt_at_us AS due_us FROM outbox \
            WHERE status = 'pending' AND next_attempt_at_us <= $1 \
            ORDER BY next_attempt_at_us, id LIMIT $2 \
            FOR UPDATE SKIP LOCKED) \
        UPDATE outbox SET attempts = outbox.attempts + 1, next_attempt_at_us = $3, updated_at_us = $1 \
        FROM due WHERE outbox.id = due.id \
        RETURNING outbox.id, outbox.key, outbox.source, outbox.payload, outbox.status, \
            outbox.attempts, outbox.next_attempt_at_us, outbox.created_at_us, \
            outbox.updated_at_us, outbox.last_error, due.due_us";

    /// A claimed row and when it was due.
    #[derive(QueryableByName)]
    struct Claimed {
        // Not `row`: the derive's own parameter has that name.
        #[diesel(embed)]
        entry: OutboxRow,
        #[diesel(sql_type = BigInt)]
        due_us: i64,
    }

    pub(super) async fn claim(
        c: &mut AsyncPgConnection,
        now: i64,
        until: i64,
        limit: i64,
    ) -> diesel::QueryResult<Vec<OutboxRow>> {
        let mut claimed: Vec<Claimed> = diesel::sql_query(CLAIM)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(limit)
            .bind::<BigInt, _>(until)
            .load(c)
            .await?;
        // `RETURNING` follows no order.
        claimed.sort_by_key(|c| (c.due_us, c.entry.id));
        Ok(claimed.into_iter().map(|c| c.entry).collect())
    }
}

/// Boxes a store error for the runtime's trait.
fn boxed(e: StoreError) -> RuntimeStoreError {
    Box::new(e)
}

/// `EventStore::outbox_put`.
pub(crate) fn put<'a>(
    store: &'a DieselStore,
    entry: &'a OutboxEntry,
) -> BoxFuture<'a, Result<bool, RuntimeStoreError>> {
    Box::pin(async move { store.queue_outbox_entry(entry).await.map_err(boxed) })
}

/// `EventStore::outbox_claim`.
pub(crate) fn claim(
    store: &DieselStore,
    now: SystemTime,
    lease: Duration,
    limit: usize,
) -> BoxFuture<'_, Result<Vec<OutboxEntry>, RuntimeStoreError>> {
    Box::pin(async move {
        store
            .claim_outbox_entries(now, lease, limit)
            .await
            .map_err(boxed)
    })
}

/// `EventStore::outbox_settle`.
pub(crate) fn settle<'a>(
    store: &'a DieselStore,
    key: &'a str,
    settle: &'a OutboxSettle,
    now: SystemTime,
) -> BoxFuture<'a, Result<(), RuntimeStoreError>> {
    Box::pin(async move {
        store
            .settle_outbox_entry(key, settle, now)
            .await
            .map_err(boxed)
    })
}

/// `EventStore::outbox_list`.
pub(crate) fn list(
    store: &DieselStore,
    status: Option<OutboxStatus>,
    limit: usize,
) -> BoxFuture<'_, Result<Vec<OutboxEntry>, RuntimeStoreError>> {
    Box::pin(async move { store.outbox_entries(status, limit).await.map_err(boxed) })
}

/// `EventStore::outbox_retry`.
pub(crate) fn retry<'a>(
    store: &'a DieselStore,
    key: &'a str,
    now: SystemTime,
) -> BoxFuture<'a, Result<bool, RuntimeStoreError>> {
    Box::pin(async move { store.retry_outbox_entry(key, now).await.map_err(boxed) })
}

/// `EventStore::outbox_drop`.
pub(crate) fn drop_entry<'a>(
    store: &'a DieselStore,
    key: &'a str,
) -> BoxFuture<'a, Result<bool, RuntimeStoreError>> {
    Box::pin(async move { store.drop_outbox_entry(key).await.map_err(boxed) })
}

/// `EventStore::outbox_counts`.
pub(crate) fn counts(
    store: &DieselStore,
) -> BoxFuture<'_, Result<OutboxCounts, RuntimeStoreError>> {
    Box::pin(async move { store.count_outbox_entries().await.map_err(boxed) })
}
