//! The fleet's circuit news in `circuit_notices`: what [`EventStore::publish_circuit`] writes
//! and [`EventStore::poll_circuits`] reads, the commands the CLI and the dashboard give, and the
//! latest circuit state of every instance.
//!
//! On PostgreSQL every publish also `NOTIFY`s [`CHANNEL`], and the store keeps one connection of
//! its own (outside the pool) that `LISTEN`s on it: a poller waiting for news wakes as soon as a
//! notice is committed, from any instance. SQLite has no such thing: pollers read the table
//! (the runtime's worker asks every second), and only notices published through the same store
//! handle wake them at once.
//!
//! [`EventStore::publish_circuit`]: self_healing_runtime::EventStore::publish_circuit
//! [`EventStore::poll_circuits`]: self_healing_runtime::EventStore::poll_circuits

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use self_healing_runtime::CircuitState;
use self_healing_runtime::circuit_control::CircuitCommand;
use self_healing_runtime::event::{BoxFuture, StoreError as RuntimeStoreError};
use self_healing_runtime::fleet::{CircuitNotice, NoticeKind};
use tokio::sync::watch;

use crate::db::with_conn;
use crate::error::{ErrorKind, StoreError};
use crate::rows::{clean_text, from_time_us, time_us};
use crate::schema::{call_sites, circuit_notices, event_postings};
use crate::store::{DieselStore, Shared};
use crate::url::Backend;

/// The PostgreSQL channel every publish notifies and every poller listens on.
pub const CHANNEL: &str = "self_healing_circuits";
/// How long circuit news is kept.
pub const NOTICE_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long each instance's latest state per source is kept (for the per-instance view), even
/// past [`NOTICE_RETENTION`].
pub const LATEST_STATE_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// At most this often, a publish prunes old news (in a task of its own).
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Notices returned by one poll at most; the rest come with the next one.
const POLL_LIMIT: i64 = 1_000;
/// Longest text kept in the `instance`, `source` and `requested_by` columns.
const MAX_NAME: usize = 256;

/// The store's side of circuit news: wakes pollers, remembers when it last pruned.
#[derive(Debug)]
pub(crate) struct Circuits {
    /// Bumped when news may have arrived: a publish through this store, a notification from
    /// PostgreSQL, or the listener (re)connecting (it may have missed some).
    news: watch::Sender<u64>,
    /// Whether a listener has been started (PostgreSQL).
    listener_started: AtomicBool,
    /// Whether the listener is connected and listening right now.
    listening: AtomicBool,
    /// When old news was last pruned.
    last_prune: Mutex<Option<Instant>>,
    /// Whether the last publish or poll failed (to log an outage once, and its end).
    failing: AtomicBool,
}

impl Default for Circuits {
    fn default() -> Self {
        Circuits {
            news: watch::Sender::new(0),
            listener_started: AtomicBool::new(false),
            listening: AtomicBool::new(false),
            last_prune: Mutex::new(None),
            failing: AtomicBool::new(false),
        }
    }
}

impl Circuits {
    fn bump(&self) {
        self.news.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Logs the start and the end of an outage once each.
    fn note<T>(&self, what: &str, result: &Result<T, StoreError>) {
        match result {
            Ok(_) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("self-healing store: circuit news flows again");
                }
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "self-healing store: could not {what} circuit news; retrying");
                }
            }
        }
    }
}

/// One instance's circuit of one source, as it last published it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CircuitRecord {
    /// The instance.
    pub instance: String,
    /// The site's source.
    pub source: String,
    /// The state it moved to.
    pub state: CircuitState,
    /// Opened by hand.
    pub held_open: bool,
    /// When it moved there (the instance's last change of this circuit).
    pub since: SystemTime,
    /// The notice's id.
    pub id: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = circuit_notices)]
struct NewNotice {
    time_us: i64,
    instance: String,
    source: String,
    kind: &'static str,
    state: Option<&'static str>,
    held_open: bool,
    command: Option<&'static str>,
    requested_by: Option<String>,
}

#[derive(Debug, Queryable, QueryableByName)]
#[diesel(table_name = circuit_notices)]
struct NoticeRow {
    id: i64,
    time_us: i64,
    instance: String,
    source: String,
    kind: String,
    state: Option<String>,
    held_open: bool,
    command: Option<String>,
    requested_by: Option<String>,
}

fn parse_state(s: &str) -> Option<CircuitState> {
    [
        CircuitState::Closed,
        CircuitState::Open,
        CircuitState::HalfOpen,
    ]
    .into_iter()
    .find(|c| c.as_str() == s)
}

impl NoticeRow {
    /// The runtime's notice; `None` for a row no version of this crate writes.
    fn into_notice(self) -> Option<CircuitNotice> {
        let kind = match self.kind.as_str() {
            "moved" => NoticeKind::Moved {
                state: parse_state(self.state.as_deref()?)?,
                held_open: self.held_open,
            },
            "command" => NoticeKind::Command {
                command: self.command.as_deref()?.parse().ok()?,
                by: self.requested_by.unwrap_or_default(),
            },
            _ => return None,
        };
        let mut notice = CircuitNotice::new(self.instance, self.source, kind);
        notice.id = self.id;
        notice.at = from_time_us(self.time_us);
        Some(notice)
    }

    fn into_record(self) -> Option<CircuitRecord> {
        Some(CircuitRecord {
            state: parse_state(self.state.as_deref()?)?,
            held_open: self.held_open,
            since: from_time_us(self.time_us),
            id: self.id,
            instance: self.instance,
            source: self.source,
        })
    }
}

impl NewNotice {
    fn from_notice(n: &CircuitNotice) -> NewNotice {
        let (kind, state, held_open, command, by) = match &n.kind {
            NoticeKind::Moved { state, held_open } => {
                ("moved", Some(state.as_str()), *held_open, None, None)
            }
            NoticeKind::Command { command, by } => (
                "command",
                None,
                false,
                Some(command.as_str()),
                Some(clean_text(by, MAX_NAME)),
            ),
        };
        NewNotice {
            time_us: time_us(n.at),
            instance: clean_text(&n.instance, MAX_NAME),
            source: clean_text(&n.source, MAX_NAME),
            kind,
            state,
            held_open,
            command,
            requested_by: by,
        }
    }
}

impl DieselStore {
    /// Publishes a circuit notice for every instance sharing this store (PostgreSQL: committed,
    /// then `NOTIFY`ed on [`CHANNEL`]). Old news is pruned now and then, in a task of its own.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn publish_circuit_notice(&self, notice: &CircuitNotice) -> Result<(), StoreError> {
        self.refuse_if_closed()?;
        self.shared.ensure_ready().await?;
        let row = NewNotice::from_notice(notice);
        let postgres = self.backend() == Backend::Postgres;
        with_conn!(self.shared, |conn, _B| {
            diesel::insert_into(circuit_notices::table)
                .values(&row)
                .execute(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?;
            if postgres {
                diesel::sql_query(format!("NOTIFY {CHANNEL}"))
                    .execute(conn)
                    .await
                    .map_err(|e| self.shared.query_error(e))?;
            }
        });
        self.shared.circuits.bump();
        self.prune_now_and_then();
        Ok(())
    }

    /// Asks every instance sharing this store to apply `command` to the circuit of `source`
    /// (they do within about a second): what `self-healing circuit open|close|reset` does.
    /// `from` names the publisher (`cli`, `dashboard`), `by` who asked; both end up in the
    /// `manual` event each instance records. The source is not checked: see
    /// [`source_known`](Self::source_known).
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn publish_circuit_command(
        &self,
        from: &str,
        source: &str,
        command: CircuitCommand,
        by: &str,
    ) -> Result<(), StoreError> {
        let notice = CircuitNotice::new(
            from,
            source,
            NoticeKind::Command {
                command,
                by: by.to_owned(),
            },
        );
        self.publish_circuit_notice(&notice).await
    }

    /// Circuit notices with an id above `after`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn circuit_notices(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<CircuitNotice>, StoreError> {
        self.shared.ensure_ready().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<NoticeRow> = with_conn!(self.shared, |conn, _B| {
            circuit_notices::table
                .filter(circuit_notices::id.gt(after))
                .order(circuit_notices::id.asc())
                .limit(limit)
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        Ok(rows
            .into_iter()
            .filter_map(NoticeRow::into_notice)
            .collect())
    }

    /// The latest notice, if any: where the log stands.
    async fn last_notice(&self) -> Result<Vec<CircuitNotice>, StoreError> {
        self.shared.ensure_ready().await?;
        let rows: Vec<NoticeRow> = with_conn!(self.shared, |conn, _B| {
            circuit_notices::table
                .order(circuit_notices::id.desc())
                .limit(1)
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        // A row of an unknown kind still says where the log stands.
        Ok(rows
            .into_iter()
            .map(|r| {
                let id = r.id;
                r.into_notice().unwrap_or_else(|| {
                    let mut n = CircuitNotice::new(
                        "",
                        "",
                        NoticeKind::Moved {
                            state: CircuitState::Closed,
                            held_open: false,
                        },
                    );
                    n.id = id;
                    n
                })
            })
            .collect())
    }

    /// What [`EventStore::poll_circuits`](self_healing_runtime::EventStore::poll_circuits)
    /// answers: the notices after `after` (the latest one only for a negative `after`). When
    /// there are none yet it waits up to `wait` for news: PostgreSQL notifications, or (any
    /// backend) a publish through this store.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn poll_circuit_notices(
        &self,
        after: i64,
        wait: Duration,
    ) -> Result<Vec<CircuitNotice>, StoreError> {
        self.refuse_if_closed()?;
        if after < 0 {
            return self.last_notice().await;
        }
        if self.backend() == Backend::Postgres {
            self.start_listener();
        }
        // Subscribed before reading, so news committed after the read still wakes us.
        let mut news = self.shared.circuits.news.subscribe();
        let found = self.circuit_notices(after, POLL_LIMIT as usize).await?;
        if !found.is_empty() || wait.is_zero() {
            return Ok(found);
        }
        match tokio::time::timeout(wait, news.changed()).await {
            Ok(Ok(())) => self.circuit_notices(after, POLL_LIMIT as usize).await,
            _ => Ok(Vec::new()),
        }
    }

    /// A closed store neither publishes nor hears circuit news: the instance is gone.
    fn refuse_if_closed(&self) -> Result<(), StoreError> {
        if AtomicBool::load(&self.shared.closing, Ordering::SeqCst) {
            return Err(StoreError::new(
                ErrorKind::Closed,
                &self.shared.url.masked,
                "the store is closed: no circuit news goes in or out",
            )
            .with_hint("open a new store"));
        }
        Ok(())
    }

    /// Whether PostgreSQL notifications reach this store right now (always `false` on SQLite).
    pub fn listening_for_circuits(&self) -> bool {
        AtomicBool::load(&self.shared.circuits.listening, Ordering::Relaxed)
    }

    /// The latest circuit state each instance published for each source, by source then
    /// instance. Instances that stopped keep their last row (with its time) until it is a week
    /// old.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn circuit_states(&self) -> Result<Vec<CircuitRecord>, StoreError> {
        self.shared.ensure_ready().await?;
        let rows: Vec<NoticeRow> = with_conn!(self.shared, |conn, _B| {
            diesel::sql_query(
                "SELECT * FROM circuit_notices WHERE id IN \
                 (SELECT MAX(id) FROM circuit_notices WHERE kind = 'moved' GROUP BY instance, source) \
                 ORDER BY source, instance",
            )
            .load(conn)
            .await
            .map_err(|e| self.shared.query_error(e))?
        });
        Ok(rows
            .into_iter()
            .filter_map(NoticeRow::into_record)
            .collect())
    }

    /// Whether the store has seen `source`: a registered call site, an event, or circuit news.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn source_known(&self, source: &str) -> Result<bool, StoreError> {
        use diesel::dsl::exists;
        self.shared.ensure_ready().await?;
        let known: (bool, bool, bool) = with_conn!(self.shared, |conn, _B| {
            diesel::select((
                exists(call_sites::table.filter(call_sites::source.eq(source))),
                exists(event_postings::table.filter(event_postings::source.eq(source))),
                exists(circuit_notices::table.filter(circuit_notices::source.eq(source))),
            ))
            .get_result(conn)
            .await
            .map_err(|e| self.shared.query_error(e))?
        });
        Ok(known.0 || known.1 || known.2)
    }

    /// Every source the store has seen (call sites, events, circuit news), sorted. Reads the
    /// source of every event posting (a few per written batch): meant for error messages and
    /// tools, not for a hot path.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn known_sources(&self) -> Result<Vec<String>, StoreError> {
        self.shared.ensure_ready().await?;
        let mut all: Vec<String> = with_conn!(self.shared, |conn, _B| {
            let mut all: Vec<String> = call_sites::table
                .select(call_sites::source)
                .distinct()
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?;
            all.extend(
                event_postings::table
                    .select(event_postings::source)
                    .distinct()
                    .load::<String>(conn)
                    .await
                    .map_err(|e| self.shared.query_error(e))?,
            );
            all.extend(
                circuit_notices::table
                    .select(circuit_notices::source)
                    .distinct()
                    .load::<String>(conn)
                    .await
                    .map_err(|e| self.shared.query_error(e))?,
            );
            all
        });
        all.sort();
        all.dedup();
        Ok(all)
    }

    /// Deletes circuit news older than [`NOTICE_RETENTION`], keeping each instance's latest
    /// state per source until it is [`LATEST_STATE_RETENTION`] old. Returns the rows deleted.
    /// Publishing does this now and then on its own; [`prune`](Self::prune) does it too.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn prune_circuit_notices(&self) -> Result<u64, StoreError> {
        self.shared.ensure_ready().await?;
        let now = SystemTime::now();
        let cutoff = |age: Duration| time_us(now.checked_sub(age).unwrap_or(std::time::UNIX_EPOCH));
        let (news, latest) = (cutoff(NOTICE_RETENTION), cutoff(LATEST_STATE_RETENTION));
        let sql = format!(
            "DELETE FROM circuit_notices WHERE time_us < {news} AND (time_us < {latest} OR id NOT IN \
             (SELECT MAX(id) FROM circuit_notices WHERE kind = 'moved' GROUP BY instance, source))"
        );
        let deleted: usize = with_conn!(self.shared, |conn, _B| {
            diesel::sql_query(sql.as_str())
                .execute(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        Ok(deleted as u64)
    }

    /// Prunes old news in a task of its own, at most every [`PRUNE_EVERY`].
    fn prune_now_and_then(&self) {
        {
            let mut last = self
                .shared
                .circuits
                .last_prune
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < PRUNE_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let store = self.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = store.prune_circuit_notices().await {
                    tracing::debug!(error = %e, "self-healing store: could not prune circuit news");
                }
            });
        }
    }

    /// Starts the PostgreSQL listener once per store.
    fn start_listener(&self) {
        #[cfg(feature = "postgres")]
        {
            if self
                .shared
                .circuits
                .listener_started
                .swap(true, Ordering::SeqCst)
            {
                return;
            }
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(listener::run(Arc::downgrade(&self.shared)));
            } else {
                self.shared
                    .circuits
                    .listener_started
                    .store(false, Ordering::SeqCst);
            }
        }
    }
}

#[cfg(feature = "postgres")]
mod listener {
    //! One connection of the store's own, outside the pool (a pooled connection is shared and
    //! recycled, and `LISTEN` belongs to a session), that turns notifications into news.

    use std::pin::Pin;
    use std::sync::Weak;

    use diesel_async::{AsyncConnection, AsyncPgConnection};
    use futures_core::Stream;

    use super::*;

    /// How often the listener checks that the store is still open.
    const TICK: Duration = Duration::from_secs(2);
    /// How often an idle listener checks its connection (a silent network drop sends nothing).
    const PING_EVERY: Duration = Duration::from_secs(30);
    /// Longest wait for a connection or a ping.
    const TIMEOUT: Duration = Duration::from_secs(5);

    fn open(shared: &Weak<Shared>) -> Option<Arc<Shared>> {
        shared
            .upgrade()
            .filter(|s| !AtomicBool::load(&s.closing, Ordering::SeqCst))
    }

    pub(super) async fn run(weak: Weak<Shared>) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let Some(shared) = open(&weak) else { return };
            let target = shared.url.target.clone();
            drop(shared);
            match connect(&target).await {
                Ok(mut conn) => {
                    backoff = Duration::from_millis(200);
                    let Some(shared) = open(&weak) else { return };
                    shared.circuits.listening.store(true, Ordering::Relaxed);
                    // Notices may have been published while we were not listening.
                    shared.circuits.bump();
                    drop(shared);
                    let end = listen(&weak, &mut conn).await;
                    if let Some(shared) = weak.upgrade() {
                        shared.circuits.listening.store(false, Ordering::Relaxed);
                    }
                    match end {
                        End::Closed => return,
                        End::Lost(e) => tracing::debug!(
                            error = %e,
                            "self-healing store: the circuit listener lost its connection; reconnecting"
                        ),
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "self-healing store: the circuit listener cannot connect; retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
            // Wait before reconnecting, but not past the store's end.
            let deadline = tokio::time::Instant::now() + backoff;
            while tokio::time::Instant::now() < deadline {
                if open(&weak).is_none() {
                    return;
                }
                tokio::time::sleep(TICK.min(backoff)).await;
            }
        }
    }

    async fn connect(target: &str) -> Result<AsyncPgConnection, String> {
        let mut conn = tokio::time::timeout(TIMEOUT, AsyncPgConnection::establish(target))
            .await
            .map_err(|_| "timed out connecting".to_owned())?
            .map_err(|e| e.to_string())?;
        diesel::sql_query(format!("LISTEN {CHANNEL}"))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(conn)
    }

    enum End {
        /// The store was closed or dropped.
        Closed,
        /// The connection broke.
        Lost(String),
    }

    async fn listen(weak: &Weak<Shared>, conn: &mut AsyncPgConnection) -> End {
        let mut idle = Duration::ZERO;
        loop {
            let next = {
                let mut stream = std::pin::pin!(conn.notifications_stream());
                tokio::time::timeout(
                    TICK,
                    std::future::poll_fn(|cx| Pin::as_mut(&mut stream).poll_next(cx)),
                )
                .await
            };
            let Some(shared) = open(weak) else {
                return End::Closed;
            };
            match next {
                Ok(Some(Ok(_))) => {
                    // Several notices may be waiting: one bump wakes pollers for all of them.
                    shared.circuits.bump();
                    idle = Duration::ZERO;
                }
                Ok(Some(Err(e))) => return End::Lost(e.to_string()),
                Ok(None) => return End::Lost("the connection closed".to_owned()),
                Err(_) => {
                    idle += TICK;
                    if idle >= PING_EVERY {
                        idle = Duration::ZERO;
                        drop(shared);
                        let ping = tokio::time::timeout(
                            TIMEOUT,
                            diesel::sql_query("SELECT 1").execute(conn),
                        )
                        .await;
                        match ping {
                            Ok(Ok(_)) => {}
                            Ok(Err(e)) => return End::Lost(e.to_string()),
                            Err(_) => return End::Lost("the connection stopped answering".into()),
                        }
                    }
                }
            }
        }
    }
}

/// Boxes a store error for the runtime's trait.
fn boxed(e: StoreError) -> RuntimeStoreError {
    Box::new(e)
}

/// `EventStore::publish_circuit`.
pub(crate) fn publish<'a>(
    store: &'a DieselStore,
    notice: &'a CircuitNotice,
) -> BoxFuture<'a, Result<(), RuntimeStoreError>> {
    Box::pin(async move {
        let result = store.publish_circuit_notice(notice).await;
        store.shared.circuits.note("publish", &result);
        result.map_err(boxed)
    })
}

/// `EventStore::poll_circuits`.
pub(crate) fn poll(
    store: &DieselStore,
    after: i64,
    wait: Duration,
) -> BoxFuture<'_, Result<Vec<CircuitNotice>, RuntimeStoreError>> {
    Box::pin(async move {
        let result = store.poll_circuit_notices(after, wait).await;
        store.shared.circuits.note("read", &result);
        result.map_err(boxed)
    })
}
