//! Typed classification of sqlx errors (feature `sqlx`): by variant, and a database's error by
//! its SQLSTATE (PostgreSQL, MySQL) or result code (SQLite).

use std::error::Error;

use sqlx_core::error::{DatabaseError, Error as SqlxError, ErrorKind};

use super::typed::{TypedVerdict, classify_io, verdict};
use super::{ErrorClass, Severity};

pub(crate) fn classify(error: &(dyn Error + 'static)) -> Option<TypedVerdict> {
    let e = error.downcast_ref::<SqlxError>()?;
    let v = match e {
        SqlxError::Database(db) => return classify_database(db.as_ref()),
        SqlxError::Io(io) => classify_io(io).unwrap_or(verdict(
            ErrorClass::ConnectionLost,
            Severity::High,
            "sqlx: i/o error",
        )),
        SqlxError::Tls(_) => TypedVerdict {
            // The handshake failed: no statement was sent.
            never_reached: true,
            ..verdict(
                ErrorClass::ConnectionLost,
                Severity::High,
                "sqlx: tls handshake failed",
            )
        },
        SqlxError::PoolTimedOut => TypedVerdict {
            // No connection was free: the statement was never sent.
            never_reached: true,
            ..verdict(
                ErrorClass::ResourceExhausted,
                Severity::High,
                "sqlx: pool timed out",
            )
        },
        SqlxError::PoolClosed => TypedVerdict {
            never_reached: true,
            ..verdict(ErrorClass::Permanent, Severity::High, "sqlx: pool closed")
        },
        SqlxError::WorkerCrashed | SqlxError::BeginFailed => verdict(
            ErrorClass::ConnectionLost,
            Severity::High,
            "sqlx: connection broken",
        ),
        SqlxError::RowNotFound => verdict(ErrorClass::Permanent, Severity::Low, "sqlx: no row"),
        SqlxError::Configuration(_) => verdict(
            ErrorClass::Permanent,
            Severity::Critical,
            "sqlx: invalid configuration",
        ),
        SqlxError::Protocol(_) => verdict(ErrorClass::Bug, Severity::High, "sqlx: protocol error"),
        SqlxError::InvalidArgument(_)
        | SqlxError::TypeNotFound { .. }
        | SqlxError::ColumnIndexOutOfBounds { .. }
        | SqlxError::ColumnNotFound(_)
        | SqlxError::ColumnDecode { .. }
        | SqlxError::Encode(_)
        | SqlxError::Decode(_)
        | SqlxError::AnyDriverError(_)
        | SqlxError::InvalidSavePointStatement => verdict(
            ErrorClass::Bug,
            Severity::High,
            "sqlx: query or mapping defect",
        ),
        // New variants, and those behind sqlx features we do not enable (migrations).
        _ => return None,
    };
    Some(v)
}

/// A database's own error, by its code; `None` for a code we do not know, so that the message
/// rules read it.
fn classify_database(e: &dyn DatabaseError) -> Option<TypedVerdict> {
    if let Some(v) = classify_kind(e.kind()) {
        return Some(v);
    }
    let code = e.code()?;
    if code.len() == 5 && code.is_ascii() {
        classify_sqlstate(&code)
    } else {
        classify_sqlite(&code)
    }
}

fn classify_kind(kind: ErrorKind) -> Option<TypedVerdict> {
    match kind {
        ErrorKind::UniqueViolation
        | ErrorKind::ForeignKeyViolation
        | ErrorKind::NotNullViolation
        | ErrorKind::CheckViolation
        | ErrorKind::ExclusionViolation => Some(verdict(
            ErrorClass::Permanent,
            Severity::Medium,
            "sqlx: constraint violation",
        )),
        _ => None,
    }
}

/// SQLSTATE, as PostgreSQL and MySQL report it (PostgreSQL's appendix A names them).
fn classify_sqlstate(code: &str) -> Option<TypedVerdict> {
    let never_reached = |v: TypedVerdict| TypedVerdict {
        never_reached: true,
        ..v
    };
    let v = match code {
        // serialization_failure, deadlock_detected
        "40001" | "40P01" => verdict(
            ErrorClass::Transient,
            Severity::Low,
            "sqlx: serialization failure or deadlock",
        ),
        // lock_not_available (NOWAIT, lock_timeout)
        "55P03" => verdict(
            ErrorClass::Transient,
            Severity::Low,
            "sqlx: lock not available",
        ),
        // query_canceled: statement_timeout
        "57014" => verdict(
            ErrorClass::Timeout,
            Severity::Medium,
            "sqlx: statement timeout",
        ),
        // too_many_connections: refused before any statement
        "53300" => never_reached(verdict(
            ErrorClass::ResourceExhausted,
            Severity::High,
            "sqlx: too many connections",
        )),
        // cannot_connect_now (starting up), unable to establish, connection rejected
        "57P03" | "08001" | "08004" => never_reached(verdict(
            ErrorClass::ConnectionLost,
            Severity::High,
            "sqlx: could not connect",
        )),
        // admin_shutdown, crash_shutdown
        "57P01" | "57P02" => verdict(
            ErrorClass::ConnectionLost,
            Severity::High,
            "sqlx: server shut down",
        ),
        // invalid_password, invalid_authorization_specification
        "28P01" | "28000" => verdict(
            ErrorClass::AuthExpired,
            Severity::High,
            "sqlx: authentication failed",
        ),
        // read_only_sql_transaction: a replica or a failed-over primary
        "25006" => verdict(
            ErrorClass::Permanent,
            Severity::High,
            "sqlx: read-only transaction",
        ),
        _ => match &code[..2] {
            // integrity_constraint_violation
            "23" => verdict(
                ErrorClass::Permanent,
                Severity::Medium,
                "sqlx: constraint violation",
            ),
            // connection_exception
            "08" => verdict(
                ErrorClass::ConnectionLost,
                Severity::High,
                "sqlx: connection exception",
            ),
            // insufficient_resources (disk full, out of memory)
            "53" => verdict(
                ErrorClass::ResourceExhausted,
                Severity::High,
                "sqlx: insufficient resources",
            ),
            // data_exception
            "22" => verdict(
                ErrorClass::Permanent,
                Severity::Medium,
                "sqlx: invalid data",
            ),
            // syntax_error_or_access_rule_violation: undefined table, column, …
            "42" => verdict(ErrorClass::Bug, Severity::High, "sqlx: invalid statement"),
            _ => return None,
        },
    };
    Some(v)
}

/// SQLite's result code: the primary code is the low byte of an extended one.
fn classify_sqlite(code: &str) -> Option<TypedVerdict> {
    let code: u32 = code.parse().ok()?;
    match code & 0xff {
        // SQLITE_BUSY, SQLITE_LOCKED
        5 | 6 => Some(verdict(
            ErrorClass::Transient,
            Severity::Low,
            "sqlx: database busy or locked",
        )),
        // SQLITE_FULL
        13 => Some(verdict(
            ErrorClass::ResourceExhausted,
            Severity::High,
            "sqlx: database full",
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::fmt;

    use super::*;

    /// A database error as a driver reports it.
    #[derive(Debug)]
    struct Db {
        code: &'static str,
        kind: fn() -> ErrorKind,
    }

    impl fmt::Display for Db {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "database error {}", self.code)
        }
    }

    impl Error for Db {}

    impl DatabaseError for Db {
        fn message(&self) -> &str {
            "database error"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.code))
        }
        fn as_error(&self) -> &(dyn Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            (self.kind)()
        }
    }

    fn db(code: &'static str) -> Option<TypedVerdict> {
        classify(&SqlxError::from(Db {
            code,
            kind: || ErrorKind::Other,
        }))
    }

    fn class(code: &'static str) -> ErrorClass {
        db(code).unwrap().class
    }

    #[test]
    fn sqlstates() {
        assert_eq!(class("40001"), ErrorClass::Transient);
        assert_eq!(class("40P01"), ErrorClass::Transient);
        assert_eq!(class("23505"), ErrorClass::Permanent);
        assert_eq!(class("23503"), ErrorClass::Permanent);
        assert_eq!(class("57P01"), ErrorClass::ConnectionLost);
        assert_eq!(class("08006"), ErrorClass::ConnectionLost);
        assert_eq!(class("53300"), ErrorClass::ResourceExhausted);
        assert!(db("53300").unwrap().never_reached);
        assert!(db("08001").unwrap().never_reached);
        assert!(!db("08006").unwrap().never_reached);
        assert_eq!(class("57014"), ErrorClass::Timeout);
        assert_eq!(class("28P01"), ErrorClass::AuthExpired);
        assert_eq!(class("42P01"), ErrorClass::Bug);
        // Unknown: the message rules decide.
        assert_eq!(db("XX000"), None);
    }

    #[test]
    fn sqlite_codes_and_kinds() {
        assert_eq!(class("5"), ErrorClass::Transient);
        assert_eq!(class("517"), ErrorClass::Transient); // SQLITE_BUSY_SNAPSHOT
        let unique = SqlxError::from(Db {
            code: "2067",
            kind: || ErrorKind::UniqueViolation,
        });
        assert_eq!(classify(&unique).unwrap().class, ErrorClass::Permanent);
        assert_eq!(db("1"), None);
    }

    #[test]
    fn variants() {
        let v = classify(&SqlxError::PoolTimedOut).unwrap();
        assert_eq!(v.class, ErrorClass::ResourceExhausted);
        assert!(v.never_reached);
        assert_eq!(
            classify(&SqlxError::RowNotFound).unwrap().class,
            ErrorClass::Permanent
        );
        let refused = SqlxError::Io(std::io::ErrorKind::ConnectionRefused.into());
        let v = classify(&refused).unwrap();
        assert_eq!(v.class, ErrorClass::ConnectionLost);
        assert!(v.never_reached);
        let other = SqlxError::Io(std::io::Error::other("odd"));
        assert_eq!(classify(&other).unwrap().class, ErrorClass::ConnectionLost);
        assert_eq!(
            classify(&SqlxError::ColumnNotFound("id".into()))
                .unwrap()
                .class,
            ErrorClass::Bug
        );
        assert_eq!(
            classify(&SqlxError::WorkerCrashed).unwrap().class,
            ErrorClass::ConnectionLost
        );
    }
}
