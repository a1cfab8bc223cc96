//! The writer task: drains the buffer in batches, one transaction each, retrying with backoff.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use crate::error::{ErrorKind, StoreError};
use crate::rows::{Batch, time_us};
use crate::store::Shared;

/// How a write attempt ended when it did not fail.
pub(crate) enum Written {
    /// Committed now.
    Committed,
    /// The batch id was already there: an earlier attempt committed it.
    Duplicate,
}

/// Runs until the store closes: takes batches in arrival order (plus whatever the fold table
/// holds) and writes each until it commits. While a batch is being written, the next one is
/// taken and prepared (statistics, posting groups) beside it, so that the database waits on the
/// writer as little as possible.
pub(crate) async fn run(shared: Arc<Shared>, writer_id: String) {
    let mut seq: u64 = 0;
    let mut prepared: Option<Arc<Batch>> = None;
    loop {
        let batch = match prepared.take() {
            Some(batch) => batch,
            None => {
                let Some(events) = take(&shared) else {
                    if shared.closing.load(Ordering::SeqCst) {
                        break;
                    }
                    shared.wake.notified().await;
                    continue;
                };
                // More may be waiting: let another writer take it.
                shared.wake.notify_one();
                seq += 1;
                Arc::new(Batch::new(format!("{writer_id}-{seq}"), events))
            }
        };
        let write = tokio::spawn(write_until_committed(shared.clone(), batch));
        if let Some(events) = take(&shared) {
            shared.wake.notify_one();
            seq += 1;
            prepared = Some(Arc::new(Batch::new(format!("{writer_id}-{seq}"), events)));
        }
        // A panic in the write is a bug; the batch is then lost like one written while closing.
        if !write.await.unwrap_or(false) {
            if let Some(batch) = prepared.take() {
                drop_taken(&shared, &batch);
            }
            break;
        }
    }
    shared.writers_running.fetch_sub(1, Ordering::SeqCst);
    // Wake the other writers so that they see the store closing too, and the checkpointer for
    // its last checkpoint.
    shared.wake.notify_one();
    shared.checkpoint_due.notify_one();
    shared.bump_progress();
}

/// Counts a batch taken but never written (the store closed while the database failed) as
/// dropped.
fn drop_taken(shared: &Shared, batch: &Batch) {
    let mut b = shared.lock();
    b.in_flight -= batch.events.len();
    b.in_flight_calls -= batch.calls;
    shared
        .counters
        .dropped
        .fetch_add(batch.calls, Ordering::Relaxed);
    tracing::error!(
        records = batch.events.len(),
        calls = batch.calls,
        "self-healing store: closed while the database is unavailable; a prepared batch is lost"
    );
}

/// Takes the next batch out of the buffer: up to `batch_size` records from the front of the
/// queue, plus every folded record.
fn take(shared: &Shared) -> Option<Vec<crate::rows::Pending>> {
    let mut guard = shared.lock();
    let b = &mut *guard;
    let n = b.queue.len().min(shared.settings.batch_size);
    if n == 0 && b.overflow.is_empty() {
        return None;
    }
    let mut events: Vec<_> = b.queue.drain(..n).collect();
    events.extend(b.overflow.drain().map(|(_, p)| p));
    let calls: u64 = events.iter().map(|e| e.count).sum();
    b.queued_calls -= calls;
    b.in_flight += events.len();
    b.in_flight_calls += calls;
    Some(events)
}

/// Writes `batch` until it commits. Returns false when the store is closing and the database
/// failed: what is left is then counted as dropped.
async fn write_until_committed(shared: Arc<Shared>, batch: Arc<Batch>) -> bool {
    let (shared, batch) = (&*shared, &batch);
    let settings = &shared.settings;
    let mut delay = settings.backoff_min;
    loop {
        match write_once(shared, batch).await {
            Ok(written) => {
                let c = &shared.counters;
                c.written.fetch_add(batch.calls, Ordering::Relaxed);
                c.written_records
                    .fetch_add(batch.events.len() as u64, Ordering::Relaxed);
                c.batches.fetch_add(1, Ordering::Relaxed);
                if matches!(written, Written::Duplicate) {
                    c.duplicate_batches.fetch_add(1, Ordering::Relaxed);
                }
                {
                    let mut b = shared.lock();
                    if b.failing {
                        tracing::info!(url = %shared.url.masked, "self-healing store: database reachable again");
                    }
                    b.in_flight -= batch.events.len();
                    b.in_flight_calls -= batch.calls;
                    b.failing = false;
                    // The error described the outage that just ended: `stats` would otherwise
                    // show a recovered store as still failing for a reason.
                    b.last_error = None;
                }
                shared.bump_progress();
                return true;
            }
            Err(e) => {
                let closing = shared.closing.load(Ordering::SeqCst);
                {
                    let mut b = shared.lock();
                    if !b.failing {
                        tracing::warn!(error = %e, "self-healing store: write failed; buffering and retrying");
                    }
                    b.failing = true;
                    b.failed_attempts += 1;
                    b.last_error = Some(e.detail().to_owned());
                    if closing {
                        // This batch and whatever is still queued; other writers account for
                        // their own batches.
                        let lost = b.queued_calls + batch.calls;
                        let records = b.queue.len() + b.overflow.len() + batch.events.len();
                        b.queue.clear();
                        b.overflow.clear();
                        b.queued_calls = 0;
                        b.in_flight -= batch.events.len();
                        b.in_flight_calls -= batch.calls;
                        shared.counters.dropped.fetch_add(lost, Ordering::Relaxed);
                        tracing::error!(error = %e, records, calls = lost, "self-healing store: closed while the database is unavailable; buffered events lost");
                    }
                }
                shared.bump_progress();
                if closing {
                    return false;
                }
                let jittered = delay.mul_f64(0.5 + fastrand::f64() * 0.5);
                tokio::select! {
                    _ = tokio::time::sleep(jittered) => {}
                    _ = shared.retry_now.notified() => {}
                }
                delay = (delay * 2).min(settings.backoff_max);
            }
        }
    }
}

async fn write_once(shared: &Shared, batch: &Arc<Batch>) -> Result<Written, StoreError> {
    let generation = shared.ready_connections().await?;
    let now = time_us(SystemTime::now());
    match generation.pools {
        #[cfg(feature = "sqlite")]
        crate::db::Pools::Sqlite(ref pool) => {
            write_sqlite(shared, &generation, pool, batch, now).await
        }
        #[cfg(feature = "postgres")]
        crate::db::Pools::Postgres(_) => write_postgres(shared, batch, now).await,
    }
}

/// One attempt on SQLite, on a pooled connection's blocking thread.
#[cfg(feature = "sqlite")]
async fn write_sqlite(
    shared: &Shared,
    generation: &Arc<crate::db::Generation>,
    pool: &crate::db::SqlitePool,
    batch: &Arc<Batch>,
    now: i64,
) -> Result<Written, StoreError> {
    let rows = shared.settings.rows_per_statement;
    // No timeout here: SQLite waits at most its busy timeout for a lock, and a write abandoned
    // mid-way would keep the connection busy on its blocking thread.
    let mut conn = pool.get().await.map_err(|e| shared.pool_error(e))?;
    let batch = batch.clone();
    let result = conn
        .spawn_blocking(move |c| sqlite::write(c, &batch, rows, now))
        .await;
    match result {
        Ok(()) => {
            shared.check_file(generation)?;
            shared.checkpoint_due.notify_one();
            Ok(Written::Committed)
        }
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(Written::Duplicate),
        Err(e) => Err(crate::db::query_error(
            &shared.url,
            ErrorKind::Unavailable,
            e,
        )),
    }
}

/// One attempt on PostgreSQL, on a writer connection of its own (see `pg_writer.rs`). The
/// connection goes back for the next batch only when the attempt ended cleanly: after an error
/// or a timeout its state is unknown, and dropping it closes it.
#[cfg(feature = "postgres")]
async fn write_postgres(
    shared: &Shared,
    batch: &Arc<Batch>,
    now: i64,
) -> Result<Written, StoreError> {
    let attempt = async {
        let mut conn = shared.pg_writers.take(&shared.url).await?;
        let written = conn
            .write(batch, now)
            .await
            .map_err(|f| f.into_store_error(&shared.url))?;
        shared.pg_writers.give_back(conn);
        Ok(written)
    };
    match tokio::time::timeout(shared.settings.write_timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::new(
            ErrorKind::Unavailable,
            &shared.url.masked,
            format!(
                "writing a batch took longer than {:?}",
                shared.settings.write_timeout
            ),
        )),
    }
}

/// The `ON CONFLICT` clause of the pattern upsert: every counter is incremented atomically by
/// the database, so concurrent writers never lose an update.
macro_rules! pattern_upsert {
    ($chunk:expr) => {{
        use crate::schema::healing_patterns::dsl::*;
        use diesel::prelude::*;
        use diesel::upsert::excluded;
        diesel::insert_into(healing_patterns)
            .values($chunk)
            .on_conflict((fingerprint, strategy))
            .do_update()
            .set((
                tried.eq(tried + excluded(tried)),
                healed.eq(healed + excluded(healed)),
                failed.eq(failed + excluded(failed)),
                total_duration_us.eq(total_duration_us + excluded(total_duration_us)),
                first_seen_us.eq(diesel::dsl::case_when(
                    excluded(first_seen_us).lt(first_seen_us),
                    excluded(first_seen_us),
                )
                .otherwise(first_seen_us)),
                last_seen_us.eq(diesel::dsl::case_when(
                    excluded(last_seen_us).gt(last_seen_us),
                    excluded(last_seen_us),
                )
                .otherwise(last_seen_us)),
                ai_diagnosis.eq(crate::writer::coalesce(
                    excluded(ai_diagnosis),
                    ai_diagnosis,
                )),
            ))
    }};
}

#[diesel::declare_sql_function]
extern "SQL" {
    /// `COALESCE(a, b)` on nullable text.
    fn coalesce(
        a: diesel::sql_types::Nullable<diesel::sql_types::Text>,
        b: diesel::sql_types::Nullable<diesel::sql_types::Text>,
    ) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use diesel::prelude::*;
    use diesel::query_builder::{AstPass, QueryFragment, QueryId};
    use diesel::sql_types::{BigInt, Integer, Nullable, Text};
    use diesel::sqlite::Sqlite;

    use crate::rows::{Batch, NewEvent, Pending};
    use crate::schema::{event_postings, store_batches};

    /// The first id after every event id ever used (`sqlite_sequence` remembers deleted ones).
    const NEXT_EVENT_ID: &str = "SELECT MAX(\
        COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'healing_events'), 0), \
        COALESCE((SELECT MAX(id) FROM healing_events), 0)) + 1 AS next";

    #[derive(QueryableByName)]
    struct NextId {
        #[diesel(sql_type = BigInt)]
        next: i64,
    }

    /// Rows per `INSERT` statement on SQLite: the largest of these that fits what is left (and
    /// `rows_per_statement`) is used. Each size is its own statement, prepared once and cached by
    /// Diesel under a static query id, so a batch only binds values. A `VALUES` list whose length
    /// is known only at run time is instead rebuilt as SQL text, hashed and looked up for every
    /// statement: about a fifth of the writer's time in a profile with 2,000-row statements.
    const STATEMENT_ROWS: [usize; 4] = [512, 128, 16, 1];

    /// One immediate transaction: the batch marker, the events in multi-row `INSERT`s, their
    /// postings, and the pattern upserts. Sync Diesel on the wrapped connection: multi-row inserts through
    /// diesel-async do not compile for SQLite (diesel_async#277).
    pub(super) fn write(
        c: &mut SqliteConnection,
        batch: &Batch,
        rows: usize,
        now: i64,
    ) -> QueryResult<()> {
        c.immediate_transaction(|c| {
            diesel::insert_into(store_batches::table)
                .values(batch.marker(now))
                .execute(c)?;
            let events: Vec<NewEvent<'_>> = batch.events.iter().map(Pending::as_new).collect();
            // The transaction is immediate: no other connection writes until it commits, so
            // the ids after the largest ever used are ours (explicit ids keep AUTOINCREMENT's
            // never-reused guarantee: SQLite moves the sequence past them).
            let first = diesel::sql_query(NEXT_EVENT_ID)
                .get_result::<NextId>(c)?
                .next;
            let ids: Vec<i64> = (first..).take(events.len()).collect();
            let mut rest: &[NewEvent<'_>] = &events;
            let mut rest_ids: &[i64] = &ids;
            while !rest.is_empty() {
                let n = STATEMENT_ROWS
                    .into_iter()
                    .find(|&n| n <= rest.len() && n <= rows)
                    .unwrap_or(1);
                let (head, tail) = rest.split_at(n);
                let (head_ids, tail_ids) = rest_ids.split_at(n);
                match n {
                    512 => InsertEvents::<512>(head, head_ids).execute(c)?,
                    128 => InsertEvents::<128>(head, head_ids).execute(c)?,
                    16 => InsertEvents::<16>(head, head_ids).execute(c)?,
                    _ => InsertEvents::<1>(head, head_ids).execute(c)?,
                };
                rest = tail;
                rest_ids = tail_ids;
            }
            let postings = crate::postings::rows(&batch.events, &batch.groups, &ids);
            // One row per statement: the statement is prepared once per connection, where a
            // multi-row one would be built and prepared anew for every batch.
            for posting in &postings {
                diesel::insert_into(event_postings::table)
                    .values(posting)
                    .execute(c)?;
            }
            // Diesel has no multi-row upsert for SQLite; the rows are few (one per fingerprint ×
            // strategy in the batch) and the statement is prepared once.
            for row in &batch.patterns {
                pattern_upsert!(row).execute(c)?;
            }
            Ok(())
        })
    }

    /// `INSERT INTO healing_events (…) VALUES (…), …` of exactly `N` rows (the caller passes
    /// `N`). Diesel's own multi-row insert cannot be cached by type for borrowed rows (its query
    /// id would have to be `'static`), hence this small query of our own.
    struct InsertEvents<'a, const N: usize>(&'a [NewEvent<'a>], &'a [i64]);

    /// The statement cache key of [`InsertEvents`]: one prepared statement per `N`.
    struct InsertEventsId<const N: usize>;

    impl<const N: usize> QueryId for InsertEvents<'_, N> {
        type QueryId = InsertEventsId<N>;
        const HAS_STATIC_QUERY_ID: bool = true;
    }

    impl<const N: usize> QueryFragment<Sqlite> for InsertEvents<'_, N> {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
            if self.0.len() != N || self.1.len() != N {
                return Err(diesel::result::Error::QueryBuilderError(
                    format!(
                        "{} rows and {} ids for a statement of {N}",
                        self.0.len(),
                        self.1.len()
                    )
                    .into(),
                ));
            }
            out.push_sql(
                "INSERT INTO healing_events (id, time_us, instance, source, category, fingerprint, \
                 class, message, severity, strategy, outcome, attempts, duration_us, count, \
                 analyzer, diagnosis, call_key) VALUES ",
            );
            for (i, (r, id)) in self.0.iter().zip(self.1).enumerate() {
                out.push_sql(if i == 0 { "(" } else { ", (" });
                out.push_bind_param::<BigInt, _>(id)?;
                out.push_sql(", ");
                out.push_bind_param::<BigInt, _>(&r.time_us)?;
                for text in [
                    r.instance,
                    r.source,
                    r.category,
                    r.fingerprint,
                    r.class,
                    r.message,
                    r.severity,
                ] {
                    out.push_sql(", ");
                    out.push_bind_param::<Text, _>(text)?;
                }
                out.push_sql(", ");
                out.push_bind_param::<Nullable<Text>, _>(&r.strategy)?;
                out.push_sql(", ");
                out.push_bind_param::<Text, _>(r.outcome)?;
                out.push_sql(", ");
                out.push_bind_param::<Integer, _>(&r.attempts)?;
                out.push_sql(", ");
                out.push_bind_param::<BigInt, _>(&r.duration_us)?;
                out.push_sql(", ");
                out.push_bind_param::<BigInt, _>(&r.count)?;
                out.push_sql(", ");
                out.push_bind_param::<Text, _>(r.analyzer)?;
                out.push_sql(", ");
                out.push_bind_param::<Text, _>(r.diagnosis)?;
                out.push_sql(", ");
                out.push_bind_param::<Nullable<Text>, _>(&r.call_key)?;
                out.push_sql(")");
            }
            Ok(())
        }
    }

    impl<const N: usize> RunQueryDsl<SqliteConnection> for InsertEvents<'_, N> {}
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use self_healing_runtime::Outcome;

    use super::*;
    use crate::rows::{Pending, test_event};

    fn batch(id: &str) -> Arc<Batch> {
        Arc::new(Batch::new(
            id.into(),
            vec![Pending::from_event(
                &test_event("dedupe", Outcome::NotApplicable),
                2048,
            )],
        ))
    }

    async fn stored(store: &crate::DieselStore) -> usize {
        let filter = crate::EventFilter::default();
        store.events(&filter, None, 10).await.unwrap().events.len()
    }

    /// A batch whose commit acknowledgement was lost is retried; the retry must find its marker
    /// and write nothing.
    async fn retried_batch_is_not_written_twice(store: &crate::DieselStore) {
        let batch = batch("unit-1");
        let first = write_once(&store.shared, &batch).await.unwrap();
        assert!(matches!(first, Written::Committed));
        let again = write_once(&store.shared, &batch).await.unwrap();
        assert!(matches!(again, Written::Duplicate));
        assert_eq!(stored(store).await, 1);
    }

    // Regression guard for the batch marker, on each backend.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retried_batch_is_not_written_twice() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let store = crate::DieselStore::connect(&url).await.unwrap();
        retried_batch_is_not_written_twice(&store).await;
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retried_batch_is_not_written_twice_on_postgres() {
        let Some(pg) = self_healing_testkit::FreshPostgres::create(
            "sh_writer",
            "writer unit tests",
            true,
            "`--features postgres`",
        )
        .await
        else {
            return;
        };
        let store = crate::DieselStore::builder(pg.url())
            .writers(1)
            .connect()
            .await
            .unwrap();
        retried_batch_is_not_written_twice(&store).await;
        // The duplicate rolled its transaction back and left the connection usable.
        let next = write_once(&store.shared, &batch("unit-2")).await.unwrap();
        assert!(matches!(next, Written::Committed));
        assert_eq!(stored(&store).await, 2);

        // A writer connection the server closed is replaced by the next write: the first
        // attempt may fail on it, and a retry (as the writer's loop makes) commits.
        let killed = pg_scalar(
            pg.url(),
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .await;
        assert!(killed >= 1, "the writer's connection was open");
        let retried = batch("unit-3");
        if write_once(&store.shared, &retried).await.is_err() {
            let second = write_once(&store.shared, &retried).await.unwrap();
            assert!(matches!(second, Written::Committed));
        }
        assert_eq!(stored(&store).await, 3);

        // Closing the store closes its writer connection (named for `pg_stat_activity`).
        let writers = format!(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = '{}'",
            crate::pg_writer::APPLICATION_NAME
        );
        assert_eq!(pg_scalar(pg.url(), &writers).await, 1);
        store.close().await;
        let mut open = 1;
        for _ in 0..100 {
            open = pg_scalar(pg.url(), &writers).await;
            if open == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(open, 0, "the writer connection outlived the store");
    }

    #[cfg(feature = "postgres")]
    async fn pg_scalar(url: &str, sql: &str) -> i64 {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client.query_one(sql, &[]).await.unwrap().get(0)
    }
}
