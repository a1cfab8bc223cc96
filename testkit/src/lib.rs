//! Test support shared by the self-healing crates' test suites: a fresh PostgreSQL database per
//! test, created from `SELF_HEALING_TEST_POSTGRES_URL` and dropped afterwards.
//!
//! Without the variable a PostgreSQL test is skipped with one line on stderr for the whole test
//! binary; with `SELF_HEALING_REQUIRE_POSTGRES=1` (CI sets it) it fails instead, so a broken
//! set-up cannot pass as a skip.
//!
//! ```no_run
//! # async fn case() {
//! use self_healing_testkit::FreshPostgres;
//!
//! let Some(db) = FreshPostgres::create("sh_demo", "store tests", cfg!(feature = "postgres"), "--features postgres").await
//! else {
//!     return; // skipped, and said so once
//! };
//! println!("a database of its own: {}", db.url());
//! # }
//! ```

use std::io::Write as _;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The PostgreSQL server to create test databases on, e.g. `postgres://postgres@127.0.0.1:5432/postgres`.
pub const PG_URL_VAR: &str = "SELF_HEALING_TEST_POSTGRES_URL";
/// `1` (or `true`): a PostgreSQL test that cannot run fails instead of skipping.
pub const PG_REQUIRED_VAR: &str = "SELF_HEALING_REQUIRE_POSTGRES";

/// A PostgreSQL database created for one test; dropping the value drops the database.
#[derive(Debug)]
pub struct FreshPostgres {
    admin: String,
    name: String,
    url: String,
}

impl FreshPostgres {
    /// Creates a database named `{prefix}_{pid}_{n}_{random}` on the server of
    /// [`PG_URL_VAR`], or returns `None` after printing one line (once per test binary) naming
    /// `what` was skipped and why.
    ///
    /// `built_with_postgres` is the calling crate's `cfg!(feature = "postgres")`, and
    /// `feature_hint` says how to turn it on.
    ///
    /// # Panics
    /// When [`PG_REQUIRED_VAR`] is set and the tests cannot run, or when the server refuses
    /// `CREATE DATABASE`: a misconfigured server is an error, not a skip.
    pub async fn create(
        prefix: &str,
        what: &str,
        built_with_postgres: bool,
        feature_hint: &str,
    ) -> Option<FreshPostgres> {
        let required = std::env::var(PG_REQUIRED_VAR).is_ok_and(|v| v == "1" || v == "true");
        let admin = std::env::var(PG_URL_VAR)
            .ok()
            .filter(|u| !u.trim().is_empty());
        let Some(admin) = admin else {
            assert!(
                !required,
                "{PG_REQUIRED_VAR}=1 but {PG_URL_VAR} is not set: set it to a PostgreSQL URL such as postgres://postgres@127.0.0.1:5432/postgres"
            );
            skip_once(&format!(
                "skipped: {what} on PostgreSQL (set {PG_URL_VAR}=postgres://postgres@127.0.0.1:5432/postgres to run them)"
            ));
            return None;
        };
        if !built_with_postgres {
            assert!(
                !required,
                "{PG_REQUIRED_VAR}=1 but the tests were built without the `postgres` feature: add {feature_hint}"
            );
            skip_once(&format!(
                "skipped: {what} on PostgreSQL (built without the `postgres` feature: add {feature_hint})"
            ));
            return None;
        }
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{prefix}_{}_{}_{:08x}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        );
        if let Err(e) = execute(&admin, &format!("CREATE DATABASE {name}")).await {
            panic!(
                "the PostgreSQL server of {PG_URL_VAR} is unreachable or refused CREATE DATABASE ({e}); unset {PG_URL_VAR} to skip these tests"
            );
        }
        Some(FreshPostgres {
            url: with_database(&admin, &name),
            admin,
            name,
        })
    }

    /// The new database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server URL the database was created from.
    pub fn admin_url(&self) -> &str {
        &self.admin
    }
}

impl Drop for FreshPostgres {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // A thread of its own: this may run inside a runtime that is shutting down.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            let _ = rt.block_on(execute(
                &admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ));
        })
        .join();
    }
}

/// Runs one statement on `url` through a connection of its own.
///
/// # Errors
/// The connection's or the statement's error, as text.
pub async fn execute(url: &str, sql: &str) -> Result<(), String> {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut c = AsyncPgConnection::establish(url)
        .await
        .map_err(|e| e.to_string())?;
    diesel::sql_query(sql)
        .execute(&mut c)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// `url` with its database name replaced by `name` (query parameters kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Prints `line` once per test binary, on stderr past libtest's output capture (a skip must be
/// seen).
pub fn skip_once(line: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_swapped() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://u:p@h:5432/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t2"), "postgres://h/t2");
    }
}
