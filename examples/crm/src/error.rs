//! The CRM's error type: what the wrapped functions return.

/// Everything a CRM action can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    /// A Diesel error from a real query.
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
    /// SQLite said the database is locked (a transient fault).
    #[error("database is locked")]
    Locked,
    /// PostgreSQL aborted the transaction under contention (the same transient fault there).
    #[error("could not serialize access due to concurrent update")]
    SerializationFailure,
    /// The connection died mid-call.
    #[error("connection reset by peer")]
    ConnectionLost,
    /// The pool is down until the reconnect hook rebuilds it.
    #[error("connection refused: the connection pool is closed")]
    PoolClosed,
    /// The contacts replica is in an outage window.
    #[error("contacts replica: 503 service unavailable")]
    Unavailable,
    /// The email provider answered 429.
    #[error("email provider: HTTP 429 Too Many Requests (retry-after: {0}s)")]
    RateLimited(String),
    /// The email provider answered 401: our token expired.
    #[error("email provider: HTTP 401 Unauthorized: token expired")]
    TokenExpired,
    /// The email provider answered a 5xx.
    #[error("email provider: HTTP {0} server error")]
    Provider(u16),
    /// The provider could not be reached or answered nonsense.
    #[error("email provider: {0}")]
    Http(String),
    /// A programming error in the CRM itself.
    #[error("invariant violated: {0}")]
    Bug(String),
    /// A business rule said no (not a fault).
    #[error("rejected: {0}")]
    Rule(String),
    /// Start-up failed.
    #[error("setup failed: {0}")]
    Setup(String),
    /// The healing runtime rejected or cut the call (timeout, open circuit, shed).
    #[error(transparent)]
    Rejected(#[from] self_healing::Rejected),
}
