//! Test databases (a SQLite temp file; a fresh PostgreSQL database per test), a loopback TCP
//! proxy that can cut connections, and builders of events.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Text};
use self_healing_runtime::diagnosis::{ErrorClass, Fingerprint, Severity};
use self_healing_runtime::event::{DiagnosisRecord, HealingEvent, Step, StepResult};
use self_healing_runtime::{Category, Outcome};
use self_healing_store::{Backend, DieselStore, StoreBuilder};
use self_healing_testkit::FreshPostgres;
pub(crate) use self_healing_testkit::{PG_URL_VAR, with_database};

/// A database for one test; dropping it removes it.
pub(crate) struct TestDb {
    pub(crate) backend: Backend,
    /// The URL the store is given.
    pub(crate) url: String,
    /// SQLite: the file path.
    pub(crate) path: Option<std::path::PathBuf>,
    _dir: Option<tempfile::TempDir>,
    /// PostgreSQL: the database, dropped with this value.
    _pg: Option<FreshPostgres>,
}

impl TestDb {
    pub(crate) fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.db");
        TestDb {
            backend: Backend::Sqlite,
            url: format!("sqlite://{}", path.display()),
            path: Some(path),
            _dir: Some(dir),
            _pg: None,
        }
    }

    /// A fresh PostgreSQL database, or `None` (with one line printed for the whole run) when
    /// `SELF_HEALING_TEST_POSTGRES_URL` is unset; panics instead when
    /// `SELF_HEALING_REQUIRE_POSTGRES=1` is set.
    pub(crate) async fn postgres() -> Option<TestDb> {
        let pg = FreshPostgres::create(
            "sh_test",
            "store tests",
            cfg!(feature = "postgres"),
            "`--features postgres` (cargo test -p self-healing-store --features postgres)",
        )
        .await?;
        Some(TestDb {
            backend: Backend::Postgres,
            url: pg.url().to_owned(),
            path: None,
            _dir: None,
            _pg: Some(pg),
        })
    }

    /// A builder with quick retries, for tests.
    pub(crate) fn builder(&self) -> StoreBuilder {
        DieselStore::builder(self.url.clone())
            .backoff(Duration::from_millis(10), Duration::from_millis(200))
            .connect_timeout(Duration::from_secs(2))
    }

    pub(crate) async fn store(&self) -> DieselStore {
        self.builder().connect().await.expect("connect")
    }

    /// One integer from a query on this database, through a connection of its own.
    pub(crate) async fn scalar(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct V {
            #[diesel(sql_type = BigInt)]
            v: i64,
        }
        let sql = format!("SELECT CAST(({sql}) AS BIGINT) AS v");
        let rows: Vec<V> = self.load(&sql).await;
        rows[0].v
    }

    /// Rows of a raw query.
    pub(crate) async fn load<T>(&self, sql: &str) -> Vec<T>
    where
        T: Send + 'static,
        T: QueryableByName<diesel::sqlite::Sqlite>,
        T: PgLoadable,
    {
        match self.backend {
            Backend::Sqlite => {
                use diesel::{Connection, RunQueryDsl};
                let path = self.path.clone().unwrap();
                let sql = sql.to_owned();
                tokio::task::spawn_blocking(move || {
                    use diesel::connection::SimpleConnection;
                    let mut c =
                        diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
                    c.batch_execute("PRAGMA busy_timeout = 10000;").unwrap();
                    diesel::sql_query(sql).load::<T>(&mut c).unwrap()
                })
                .await
                .unwrap()
            }
            Backend::Postgres => T::load_pg(&self.url, sql).await,
        }
    }
}

/// Raw queries on PostgreSQL (a no-op shim without the `postgres` feature).
pub(crate) trait PgLoadable: Sized {
    fn load_pg(url: &str, sql: &str) -> impl std::future::Future<Output = Vec<Self>> + Send;
}

#[cfg(feature = "postgres")]
impl<T> PgLoadable for T
where
    T: QueryableByName<diesel::pg::Pg> + Send + 'static,
{
    async fn load_pg(url: &str, sql: &str) -> Vec<T> {
        use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
        let mut c = AsyncPgConnection::establish(url).await.unwrap();
        diesel::sql_query(sql).load::<T>(&mut c).await.unwrap()
    }
}

#[cfg(not(feature = "postgres"))]
impl<T: Send> PgLoadable for T {
    async fn load_pg(_: &str, _: &str) -> Vec<T> {
        unreachable!("built without the postgres feature")
    }
}

/// `url` with its host and port replaced by `addr`.
pub(crate) fn with_host(url: &str, addr: SocketAddr) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let (head, rest) = url.split_at(start);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let userinfo = authority.rfind('@').map_or("", |at| &authority[..=at]);
    format!("{head}{userinfo}{addr}{}", &rest[end..])
}

/// The host and port of a PostgreSQL URL (default port 5432).
pub(crate) async fn pg_addr(url: &str) -> SocketAddr {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let hostport = authority
        .rfind('@')
        .map_or(authority, |at| &authority[at + 1..]);
    let hostport = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    tokio::net::lookup_host(hostport)
        .await
        .unwrap()
        .next()
        .unwrap()
}

/// A loopback TCP proxy the test controls: `cut` closes every connection and refuses new ones
/// until `restore`.
pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub(crate) async fn start(target: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let accept = {
            let (up, conns) = (up.clone(), conns.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    if !up.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    conns.lock().unwrap().push(task.abort_handle());
                }
            })
        };
        Proxy {
            addr,
            up,
            conns,
            accept,
        }
    }

    /// Closes every open connection and refuses new ones.
    pub(crate) fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// Forwards again.
    pub(crate) fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// A healing event with one failed retry and, when `outcome` is healed, a healing one.
pub(crate) fn event(source: &str, n: u64, outcome: Outcome) -> HealingEvent {
    let class = ErrorClass::ConnectionLost;
    let message = format!("connection reset by peer (event {n})");
    let mut steps = vec![Step {
        strategy: Cow::Borrowed("retry"),
        result: StepResult::Failed,
        took: Duration::from_millis(3),
        note: Cow::Borrowed("failed again"),
    }];
    if outcome == Outcome::Healed {
        steps.push(Step {
            strategy: Cow::Borrowed("reconnect"),
            result: StepResult::Healed,
            took: Duration::from_millis(5),
            note: Cow::Borrowed("healed"),
        });
    }
    // The store keeps microseconds.
    let now = SystemTime::now();
    let micros = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    HealingEvent {
        time: std::time::UNIX_EPOCH + Duration::from_micros(micros),
        instance: Arc::from("test-instance"),
        source: Cow::Owned(source.to_owned()),
        category: Category::Database,
        fingerprint: Fingerprint::new(source, &class, "connection reset by peer"),
        class,
        message,
        severity: Severity::High,
        strategy: Some(Cow::Borrowed(if outcome == Outcome::Healed {
            "reconnect"
        } else {
            "retry"
        })),
        outcome,
        attempts: 2,
        duration: Duration::from_millis(10),
        diagnosis: DiagnosisRecord {
            analyzer: Cow::Borrowed("rules"),
            confidence: 0.9,
            reason: Cow::Borrowed("connection reset"),
            never_reached: false,
            steps,
        },
        count: 1,
        call_key: None,
    }
}

/// Rows of `SELECT name, ty, not_null` describing a table's columns.
#[derive(Debug, QueryableByName, PartialEq, Eq)]
pub(crate) struct ColumnInfo {
    #[diesel(sql_type = Text)]
    pub(crate) name: String,
    #[diesel(sql_type = Text)]
    pub(crate) ty: String,
    #[diesel(sql_type = Integer)]
    pub(crate) not_null: i32,
}

/// Waits until `store.flush()` succeeds, for at most `within`.
pub(crate) async fn flush_within(store: &DieselStore, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match store.flush().await {
            Ok(()) => return,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!(
                "store did not recover within {within:?}: {e}; stats {:?}",
                store.stats()
            ),
        }
    }
}

/// A write lock held by a connection of the test's own: every write of the store waits for it
/// (PostgreSQL: `LOCK TABLE healing_events`; SQLite: `BEGIN EXCLUSIVE`, which makes writes fail
/// with "database is locked" once the busy timeout passes).
pub(crate) struct WriteLock {
    release: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl WriteLock {
    pub(crate) async fn hold(db: &TestDb) -> WriteLock {
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let (held_tx, held) = tokio::sync::oneshot::channel::<()>();
        let done = match db.backend {
            Backend::Sqlite => {
                let path = db.path.clone().unwrap();
                tokio::task::spawn_blocking(move || {
                    use diesel::Connection;
                    use diesel::connection::SimpleConnection;
                    let mut c =
                        diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
                    c.batch_execute("PRAGMA busy_timeout = 10000; BEGIN EXCLUSIVE;")
                        .unwrap();
                    let _ = held_tx.send(());
                    let _ = wait.blocking_recv();
                    c.batch_execute("COMMIT;").unwrap();
                })
            }
            Backend::Postgres => {
                let url = db.url.clone();
                tokio::spawn(pg_hold_lock(url, held_tx, wait))
            }
        };
        held.await.expect("lock taken");
        WriteLock {
            release: Some(release),
            done: Some(done),
        }
    }

    pub(crate) async fn release(mut self) {
        if let Some(r) = self.release.take() {
            let _ = r.send(());
        }
        if let Some(d) = self.done.take() {
            d.await.unwrap();
        }
    }
}

#[cfg(feature = "postgres")]
async fn pg_hold_lock(
    url: String,
    held: tokio::sync::oneshot::Sender<()>,
    wait: tokio::sync::oneshot::Receiver<()>,
) {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let mut c = AsyncPgConnection::establish(&url).await.unwrap();
    c.batch_execute("BEGIN; LOCK TABLE healing_events IN ACCESS EXCLUSIVE MODE;")
        .await
        .unwrap();
    let _ = held.send(());
    let _ = wait.await;
    c.batch_execute("COMMIT;").await.unwrap();
}

#[cfg(not(feature = "postgres"))]
async fn pg_hold_lock(
    _: String,
    _: tokio::sync::oneshot::Sender<()>,
    _: tokio::sync::oneshot::Receiver<()>,
) {
    unreachable!()
}

/// Microseconds since the epoch of the cases' time zero.
pub(crate) const T0_US: u64 = 1_700_000_000_000_000;

/// `us_after_t0` microseconds after the cases' time zero.
pub(crate) fn at(us_after_t0: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(T0_US + us_after_t0)
}
