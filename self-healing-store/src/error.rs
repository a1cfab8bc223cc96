//! The store's error: what went wrong, at which database (password masked), and what to do.

use std::error::Error;
use std::fmt;

/// What kind of problem a [`StoreError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The URL is empty, malformed, or names an unsupported scheme.
    InvalidUrl,
    /// The URL names a backend this build was compiled without (features `sqlite`, `postgres`).
    MissingFeature,
    /// A builder setting is out of range.
    InvalidConfig,
    /// The database could not be reached or opened (server down, wrong host or port, missing
    /// directory, database does not exist).
    Connect,
    /// The database refused us: wrong credentials, or no permission on the file or schema.
    Permission,
    /// The embedded migrations failed.
    Migration,
    /// A query failed.
    Query,
    /// The database is unreachable right now: events wait in the store's buffer.
    Unavailable,
    /// The store was closed.
    Closed,
}

/// An error of the store.
///
/// Its `Display` names the database URL with any password replaced by `***`, says what went
/// wrong and what to do about it:
///
/// ```text
/// cannot connect to the self-healing store at `postgres://app:***@db:5432/app`: connection
/// refused (os error 111). Check that PostgreSQL is running and reachable at that host and port.
/// ```
pub struct StoreError {
    kind: ErrorKind,
    url: String,
    detail: String,
    hint: Option<&'static str>,
    source: Option<Box<dyn Error + Send + Sync>>,
}

impl StoreError {
    pub(crate) fn new(kind: ErrorKind, masked_url: &str, detail: impl Into<String>) -> Self {
        StoreError {
            kind,
            url: masked_url.to_owned(),
            detail: detail.into(),
            hint: None,
            source: None,
        }
    }

    pub(crate) fn with_hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }

    pub(crate) fn with_source(mut self, source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The database URL, password masked.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What went wrong, without the URL and the hint.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// What to do about it, if there is advice.
    pub fn hint(&self) -> Option<&'static str> {
        self.hint
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ErrorKind::InvalidUrl => "invalid database URL",
            ErrorKind::MissingFeature => "unsupported database",
            ErrorKind::InvalidConfig => "invalid store setting for",
            ErrorKind::Connect => "cannot connect to the self-healing store at",
            ErrorKind::Permission => "access denied to the self-healing store at",
            ErrorKind::Migration => "cannot migrate the self-healing store at",
            ErrorKind::Query => "query failed on the self-healing store at",
            ErrorKind::Unavailable => "the self-healing store is unavailable at",
            ErrorKind::Closed => "the self-healing store is closed at",
        };
        write!(f, "{what} `{}`: {}", self.url, self.detail)?;
        if let Some(hint) = self.hint {
            let hint = hint.strip_suffix('.').unwrap_or(hint);
            let mut chars = hint.chars();
            let first = chars
                .next()
                .map(|c| c.to_uppercase().to_string())
                .unwrap_or_default();
            write!(f, ". {first}{}.", chars.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreError")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("detail", &self.detail)
            .field("hint", &self.hint)
            .finish()
    }
}

impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}
