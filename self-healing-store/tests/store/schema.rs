//! Schema and set-up: `schema.rs` against the migrations, idempotent migrations, in-memory
//! SQLite, bad URLs. Every case runs on both backends.

use std::time::Duration;

use diesel::QueryableByName;
use self_healing_runtime::{EventStore, Outcome};
use self_healing_store::{Backend, DieselStore, ErrorKind, EventFilter};

use super::harness::{ColumnInfo, TestDb, event};

pub(crate) async fn schema_matches_migrations(db: &TestDb) {
    let store = db.store().await;
    drop(store);
    let schema = include_str!("../../src/schema.rs");
    let tables = parse_schema(schema);
    assert_eq!(tables.len(), 10);
    for (table, columns) in &tables {
        let sql = match db.backend {
            Backend::Sqlite => format!(
                "SELECT name, type AS ty, CASE WHEN \"notnull\" = 1 OR pk > 0 THEN 1 ELSE 0 END AS not_null \
                 FROM pragma_table_info('{table}') ORDER BY cid"
            ),
            Backend::Postgres => format!(
                "SELECT column_name::text AS name, data_type::text AS ty, \
                 CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END AS not_null \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position"
            ),
        };
        let actual: Vec<ColumnInfo> = db.load(&sql).await;
        let actual: Vec<(String, String, bool)> = actual
            .into_iter()
            .map(|c| (c.name, c.ty.to_ascii_lowercase(), c.not_null == 0))
            .collect();
        let expected: Vec<(String, String, bool)> = columns
            .iter()
            .map(|(name, ty, nullable)| {
                let sql_ty = match (db.backend, ty.as_str()) {
                    (Backend::Sqlite, "BigInt") if name == "id" => "integer",
                    (_, "BigInt") => "bigint",
                    (_, "Integer") => "integer",
                    (_, "Text") => "text",
                    (_, "Bool") => "boolean",
                    (_, other) => panic!("unmapped type {other}"),
                };
                (name.clone(), sql_ty.to_owned(), *nullable)
            })
            .collect();
        assert_eq!(actual, expected, "table {table} differs from src/schema.rs");
    }
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let sql = match db.backend {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '__diesel%' ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name NOT LIKE '__diesel%' ORDER BY table_name"
        }
    };
    let in_db: Vec<String> = db
        .load::<Name>(sql)
        .await
        .into_iter()
        .map(|n| n.name)
        .collect();
    let mut in_schema: Vec<String> = tables.iter().map(|(t, _)| t.clone()).collect();
    in_schema.sort();
    assert_eq!(in_db, in_schema);
}

/// A column of `schema.rs`: name, Diesel type, nullable.
type Column = (String, String, bool);

/// `(table, [(column, type, nullable)])` from the `diesel::table!` blocks of `schema.rs`.
fn parse_schema(src: &str) -> Vec<(String, Vec<Column>)> {
    let mut tables = Vec::new();
    let mut current: Option<(String, Vec<Column>)> = None;
    for line in src.lines().map(str::trim) {
        if line.starts_with("///") || line.starts_with("//") {
            continue;
        }
        if let Some((head, _)) = line.split_once(" (")
            && line.ends_with('{')
            && !head.contains(' ')
        {
            current = Some((head.to_owned(), Vec::new()));
        } else if let Some((name, ty)) = line.split_once(" -> ")
            && let Some((_, cols)) = current.as_mut()
        {
            let ty = ty.trim_end_matches(',');
            let (ty, nullable) = match ty.strip_prefix("Nullable<") {
                Some(inner) => (inner.trim_end_matches('>'), true),
                None => (ty, false),
            };
            cols.push((name.to_owned(), ty.to_owned(), nullable));
        } else if line == "}"
            && let Some(t) = current.take()
        {
            tables.push(t);
        }
    }
    tables
}

pub(crate) async fn migrations_are_idempotent(db: &TestDb) {
    let first = db.store().await;
    first
        .write_batch(&[event("m", 1, Outcome::Failed)])
        .await
        .unwrap();
    first.flush().await.unwrap();
    let second = db.store().await;
    second
        .write_batch(&[event("m", 2, Outcome::Failed)])
        .await
        .unwrap();
    second.flush().await.unwrap();
    // PostgreSQL has one more: events keyed by (time_us, id), as SQLite's rowid needs no key.
    let migrations = match db.backend {
        self_healing_store::Backend::Sqlite => 5,
        self_healing_store::Backend::Postgres => 6,
    };
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM __diesel_schema_migrations")
            .await,
        migrations,
        "the initial schema, circuit_notices, failure_families, the outbox, event_postings (and \
         the events' time key on PostgreSQL), each applied once"
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM healing_events").await, 2);
    // Opting out of migrations works on a migrated database.
    let third = db.builder().run_migrations(false).connect().await.unwrap();
    assert_eq!(
        third
            .events(&EventFilter::default(), None, 10)
            .await
            .unwrap()
            .events
            .len(),
        2
    );
}

pub(crate) async fn in_memory() {
    let store = DieselStore::connect("sqlite::memory:").await.unwrap();
    store
        .write_batch(&[event("memory", 1, Outcome::Healed)])
        .await
        .unwrap();
    store.flush().await.unwrap();
    let page = store
        .events(&EventFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(store.load_patterns().await.unwrap().len(), 2);
}

pub(crate) async fn bad_urls() {
    let e = DieselStore::connect("mysql://root:hunter2@localhost/app")
        .await
        .unwrap_err();
    let shown = e.to_string();
    assert_eq!(e.kind(), ErrorKind::InvalidUrl);
    assert!(
        shown.contains("`mysql://root:***@localhost/app`"),
        "{shown}"
    );
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("unsupported scheme `mysql://`"), "{shown}");
    assert!(
        shown.contains("sqlite://PATH") && shown.contains("postgres://"),
        "{shown}"
    );

    let e = DieselStore::connect("sqlite:///nonexistent-dir-for-tests/x/store.db")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect);
    let shown = e.to_string();
    assert!(shown.contains("/nonexistent-dir-for-tests/x"), "{shown}");
    assert!(shown.contains("Create the directory first"), "{shown}");

    let e = DieselStore::builder("sqlite::memory:")
        .buffer_capacity(0)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("buffer_capacity"));

    // Nothing listens on port 1: the error names the URL, password masked, and what to do.
    let e = DieselStore::builder("postgres://app:s3cret@127.0.0.1:1/app")
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    let shown = e.to_string();
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(
        shown.contains("postgres://app:***@127.0.0.1:1/app"),
        "{shown}"
    );
    if cfg!(feature = "postgres") {
        assert_eq!(e.kind(), ErrorKind::Connect, "{shown}");
        assert!(shown.contains("PostgreSQL is running"), "{shown}");
    } else {
        assert_eq!(e.kind(), ErrorKind::MissingFeature, "{shown}");
        assert!(shown.contains("`postgres` feature"), "{shown}");
    }

    if let Some(url) = std::env::var(super::harness::PG_URL_VAR)
        .ok()
        .filter(|_| cfg!(feature = "postgres"))
    {
        let missing = super::harness::with_database(&url, "sh_test_database_that_does_not_exist");
        let e = DieselStore::connect(&missing).await.unwrap_err();
        let shown = e.to_string();
        assert_eq!(e.kind(), ErrorKind::Connect, "{shown}");
        assert!(
            shown.contains("does not exist") && shown.contains("createdb"),
            "{shown}"
        );
    }
}

/// A missing database, a missing role and an unparsable URL are answered at once with their
/// cause: only a server that does not answer waits the connect timeout. The timeout here is an
/// hour, so a store that waited it out would hit the test's own limit instead.
pub(crate) async fn permanent_postgres_errors() {
    if !cfg!(feature = "postgres") {
        return;
    }
    const PATIENCE: Duration = Duration::from_secs(3600);
    let connect = |url: String| async move {
        tokio::time::timeout(
            Duration::from_secs(60),
            DieselStore::builder(&url)
                .connect_timeout(PATIENCE)
                .connect(),
        )
        .await
        .expect("answered without waiting the connect timeout")
        .unwrap_err()
    };

    let e = connect("postgres://[::1".to_owned()).await;
    let shown = e.to_string();
    assert_eq!(e.kind(), ErrorKind::InvalidUrl, "{shown}");
    assert!(shown.contains("invalid connection string"), "{shown}");
    assert!(!shown.contains("PostgreSQL is running"), "{shown}");

    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let url = db.url.clone();
    let missing = super::harness::with_database(&url, "sh_test_database_that_does_not_exist");
    let e = connect(missing).await;
    let shown = e.to_string();
    assert_eq!(e.kind(), ErrorKind::Connect, "{shown}");
    assert!(
        shown.contains("does not exist") && shown.contains("createdb"),
        "{shown}"
    );

    let stranger = url.replacen("postgres://postgres@", "postgres://sh_no_such_role@", 1);
    assert_ne!(
        stranger, url,
        "the test URL names the user `postgres`: {url}"
    );
    let e = connect(stranger).await;
    let shown = e.to_string();
    assert_eq!(e.kind(), ErrorKind::Permission, "{shown}");
    assert!(shown.contains("sh_no_such_role"), "{shown}");
}
