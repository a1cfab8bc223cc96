//! The PostgreSQL writer: each batch in one transaction on a connection of the writers' own,
//! its events and postings sent with `COPY … FROM STDIN (FORMAT binary)`.
//!
//! `COPY` is the server's fastest way in: no statement to parse, plan or execute per row, and in
//! the binary format no array to decode (an `INSERT … SELECT FROM UNNEST` of 17 arrays spent a
//! quarter of the server's time decoding them, measured in `BENCHMARKS.md`). Diesel's async
//! connection cannot send `COPY`, so the writers keep `tokio-postgres` connections of their own,
//! beside the pool that serves reads. A connection that fails is dropped; the next attempt opens
//! a new one.

use std::io::Cursor;
use std::pin::pin;
use std::sync::Mutex;

use futures_util::SinkExt;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, Statement};

use crate::error::{ErrorKind, StoreError};
use crate::pg_copy::CopyRows;
use crate::postings::NewPosting;
use crate::rows::{Batch, Pending, to_i64};
use crate::url::DatabaseUrl;
use crate::writer::Written;

/// The batch marker: its primary key makes a retried batch fail as a duplicate.
const INSERT_MARKER: &str =
    "INSERT INTO store_batches (batch_id, time_us, records) VALUES ($1, $2, $3)";

/// The identity sequence of `healing_events`, looked up once per connection: looked up in the
/// id query, the planner evaluates it once per row (measured: a third of the server's time).
const EVENT_ID_SEQUENCE: &str =
    "SELECT pg_get_serial_sequence('healing_events', 'id')::regclass::oid";

/// Ids for the events of a batch, taken from the table's identity sequence up front so that
/// the postings can name them (other writers take theirs from the same sequence). One array
/// rather than a row per id: one message to send and to parse instead of thousands.
const TAKE_EVENT_IDS: &str = "SELECT array_agg(nextval($1::regclass)) FROM generate_series(1, $2)";

/// `COPY` writes the identity column as given, as `INSERT … OVERRIDING SYSTEM VALUE` would.
const COPY_EVENTS: &str = "COPY healing_events \
    (id, time_us, instance, source, category, fingerprint, class, message, severity, \
     strategy, outcome, attempts, duration_us, count, analyzer, diagnosis, call_key) \
    FROM STDIN (FORMAT binary)";

const COPY_POSTINGS: &str = "COPY event_postings \
    (fingerprint, source, category, outcome, severity, min_time_us, max_time_us, last_id, \
     events, calls, entries) \
    FROM STDIN (FORMAT binary)";

/// Pattern increments, one array per column (rows sorted by key, so that concurrent writers
/// lock them in the same order). Every counter is incremented by the database, so concurrent
/// writers never lose an update.
const UPSERT_PATTERNS: &str = "INSERT INTO healing_patterns \
    (fingerprint, strategy, tried, healed, failed, total_duration_us, first_seen_us, \
     last_seen_us, ai_diagnosis) \
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[], \
     $6::int8[], $7::int8[], $8::int8[], $9::text[]) \
    ON CONFLICT (fingerprint, strategy) DO UPDATE SET \
     tried = healing_patterns.tried + EXCLUDED.tried, \
     healed = healing_patterns.healed + EXCLUDED.healed, \
     failed = healing_patterns.failed + EXCLUDED.failed, \
     total_duration_us = healing_patterns.total_duration_us + EXCLUDED.total_duration_us, \
     first_seen_us = LEAST(healing_patterns.first_seen_us, EXCLUDED.first_seen_us), \
     last_seen_us = GREATEST(healing_patterns.last_seen_us, EXCLUDED.last_seen_us), \
     ai_diagnosis = COALESCE(EXCLUDED.ai_diagnosis, healing_patterns.ai_diagnosis)";

/// What writer connections are named in `pg_stat_activity`, unless the URL names them.
pub(crate) const APPLICATION_NAME: &str = "self-healing store writer";

/// Idle writer connections, taken by a write and given back when it succeeds.
pub(crate) struct Connections {
    /// How to connect, or why the URL cannot be used (reported by each attempt).
    config: Result<tokio_postgres::Config, String>,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle = self.idle.lock().map_or(0, |i| i.len());
        f.debug_struct("Connections").field("idle", &idle).finish()
    }
}

/// One writer connection and its statements, prepared once.
pub(crate) struct Connection {
    client: Client,
    /// The OID of the event id sequence.
    id_sequence: u32,
    marker: Statement,
    take_ids: Statement,
    copy_events: Statement,
    copy_postings: Statement,
    upsert_patterns: Statement,
}

/// Why a write failed.
#[derive(Debug)]
pub(crate) enum Failure {
    Driver(tokio_postgres::Error),
    /// The id query returned another number of ids than the batch has events.
    Ids {
        got: usize,
        wanted: usize,
    },
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Driver(e)
    }
}

impl Failure {
    pub(crate) fn into_store_error(self, url: &DatabaseUrl) -> StoreError {
        match self {
            Failure::Driver(e) => error(url, ErrorKind::Unavailable, e),
            Failure::Ids { got, wanted } => StoreError::new(
                ErrorKind::Unavailable,
                &url.masked,
                format!("the event id sequence returned {got} ids for {wanted} events"),
            ),
        }
    }
}

impl Connections {
    /// No connections yet: the first write opens one to `target` (a PostgreSQL URL), waiting
    /// at most `connect_timeout` unless the URL sets its own.
    pub(crate) fn new(target: &str, connect_timeout: std::time::Duration) -> Self {
        let config = target
            .parse::<tokio_postgres::Config>()
            .map(|mut config| {
                if config.get_connect_timeout().is_none() {
                    config.connect_timeout(connect_timeout);
                }
                if config.get_application_name().is_none() {
                    config.application_name(APPLICATION_NAME);
                }
                config
            })
            .map_err(|e| e.to_string());
        Connections {
            config,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// An idle connection, or a new one (`url` names the database in errors).
    pub(crate) async fn take(&self, url: &DatabaseUrl) -> Result<Connection, StoreError> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match idle {
                // The server may have closed it while it was idle.
                Some(c) if c.client.is_closed() => continue,
                Some(c) => return Ok(c),
                None => break,
            }
        }
        let config = match &self.config {
            Ok(config) => config,
            Err(e) => {
                return Err(crate::db::classify(
                    url,
                    format!("invalid connection string: {e}"),
                    ErrorKind::InvalidUrl,
                ));
            }
        };
        Connection::open(config)
            .await
            .map_err(|e| error(url, ErrorKind::Connect, e))
    }

    /// Closes the idle connections (the store closed; a write still running keeps its own).
    pub(crate) fn close_idle(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Gives a connection back for the next write.
    pub(crate) fn give_back(&self, connection: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(connection);
    }
}

impl Connection {
    async fn open(config: &tokio_postgres::Config) -> Result<Self, tokio_postgres::Error> {
        let (client, connection) = config.connect(NoTls).await?;
        // Ends when the client is dropped or the server goes away; the next write then fails
        // and its connection is replaced.
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "self-healing store: writer connection closed");
            }
        });
        let (marker, take_ids, copy_events, copy_postings, upsert_patterns) = tokio::try_join!(
            client.prepare(INSERT_MARKER),
            client.prepare_typed(TAKE_EVENT_IDS, &[Type::OID, Type::INT8]),
            client.prepare(COPY_EVENTS),
            client.prepare(COPY_POSTINGS),
            client.prepare(UPSERT_PATTERNS),
        )?;
        let id_sequence = client.query_one(EVENT_ID_SEQUENCE, &[]).await?.try_get(0)?;
        Ok(Connection {
            client,
            id_sequence,
            marker,
            take_ids,
            copy_events,
            copy_postings,
            upsert_patterns,
        })
    }

    /// Writes `batch` in one transaction: its marker, its events, their postings and the
    /// pattern increments.
    pub(crate) async fn write(&mut self, batch: &Batch, now: i64) -> Result<Written, Failure> {
        let tx = self.client.transaction().await?;
        // The commit does not wait for the server to flush its log: a crash of the server may
        // lose the last commits (never part of one), as SQLite's `synchronous = NORMAL` may on
        // a power loss. Waiting for every batch's flush left the writers idle.
        tx.batch_execute("SET LOCAL synchronous_commit = off")
            .await?;
        let records = to_i64(batch.events.len() as u64);
        if let Err(e) = tx.execute(&self.marker, &[&batch.id, &now, &records]).await {
            if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                // Dropping the transaction rolls it back.
                return Ok(Written::Duplicate);
            }
            return Err(e.into());
        }
        // `array_agg` of no rows is NULL.
        let ids: Vec<i64> = tx
            .query_one(&self.take_ids, &[&self.id_sequence, &records])
            .await?
            .try_get::<_, Option<Vec<i64>>>(0)?
            .unwrap_or_default();
        if ids.len() != batch.events.len() {
            return Err(Failure::Ids {
                got: ids.len(),
                wanted: batch.events.len(),
            });
        }

        copy(&tx, &self.copy_events, event_rows(&batch.events, &ids)).await?;
        let postings = crate::postings::rows(&batch.events, &batch.groups, &ids);
        copy(&tx, &self.copy_postings, posting_rows(&postings)).await?;

        if !batch.patterns.is_empty() {
            fn col<'a, T>(
                patterns: &'a [crate::rows::NewPattern],
                f: impl Fn(&'a crate::rows::NewPattern) -> T,
            ) -> Vec<T> {
                patterns.iter().map(f).collect()
            }
            let p = &batch.patterns;
            tx.execute(
                &self.upsert_patterns,
                &[
                    &col(p, |r| r.fingerprint.as_str()),
                    &col(p, |r| r.strategy.as_str()),
                    &col(p, |r| r.tried),
                    &col(p, |r| r.healed),
                    &col(p, |r| r.failed),
                    &col(p, |r| r.total_duration_us),
                    &col(p, |r| r.first_seen_us),
                    &col(p, |r| r.last_seen_us),
                    &col(p, |r| r.ai_diagnosis.as_deref()),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Written::Committed)
    }
}

/// Sends one binary `COPY` stream.
async fn copy(
    tx: &tokio_postgres::Transaction<'_>,
    statement: &Statement,
    rows: Vec<u8>,
) -> Result<(), tokio_postgres::Error> {
    let sink = tx.copy_in(statement).await?;
    let mut sink = pin!(sink);
    sink.as_mut().send(Cursor::new(rows)).await?;
    sink.as_mut().finish().await?;
    Ok(())
}

/// The events with their ids as rows of [`COPY_EVENTS`], in its column order.
fn event_rows(events: &[Pending], ids: &[i64]) -> Vec<u8> {
    // Texts dominate: the message and the diagnosis, ~60 bytes of short texts, 17 lengths.
    let bytes: usize = events
        .iter()
        .map(|e| e.message.len() + e.diagnosis.len() + 200)
        .sum();
    let mut rows = CopyRows::with_capacity(bytes);
    for (e, &id) in events.iter().zip(ids) {
        rows.row(17);
        rows.int8(id);
        rows.int8(e.time_us);
        rows.text(&e.instance);
        rows.text(&e.source);
        rows.text(e.category);
        rows.text(&e.fingerprint_hex);
        rows.text(e.class);
        rows.text(&e.message);
        rows.text(e.severity.as_str());
        rows.opt_text(e.strategy.as_deref());
        rows.text(e.outcome.as_str());
        rows.int4(i32::try_from(e.attempts).unwrap_or(i32::MAX));
        rows.int8(e.duration_us);
        rows.int8(to_i64(e.count));
        rows.text(&e.analyzer);
        rows.text(&e.diagnosis);
        rows.opt_text(e.call_key.as_deref());
    }
    rows.finish()
}

/// Postings as rows of [`COPY_POSTINGS`], in its column order.
fn posting_rows(postings: &[NewPosting]) -> Vec<u8> {
    let bytes: usize = postings.iter().map(|p| p.entries.len() + 200).sum();
    let mut rows = CopyRows::with_capacity(bytes);
    for p in postings {
        rows.row(11);
        rows.text(&p.fingerprint);
        rows.text(&p.source);
        rows.text(&p.category);
        rows.text(&p.outcome);
        rows.text(&p.severity);
        rows.int8(p.min_time_us);
        rows.int8(p.max_time_us);
        rows.int8(p.last_id);
        rows.int8(p.events);
        rows.int8(p.calls);
        rows.text(&p.entries);
    }
    rows.finish()
}

/// Turns a driver error into a [`StoreError`] that says what to do.
pub(crate) fn error(url: &DatabaseUrl, kind: ErrorKind, e: tokio_postgres::Error) -> StoreError {
    // The driver's own text is "db error" alone; the server's message is in its source.
    let detail = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    };
    crate::db::classify(url, detail, kind).with_source(e)
}
