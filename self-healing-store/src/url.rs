//! Database URLs: which backend a URL names, and how to show it without its password.

use crate::error::{ErrorKind, StoreError};

/// The backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite, embedded: a file path, `sqlite://PATH` or `:memory:`.
    Sqlite,
    /// PostgreSQL: `postgres://…` or `postgresql://…`.
    Postgres,
}

impl Backend {
    /// `"sqlite"` or `"postgres"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed database URL.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct DatabaseUrl {
    pub(crate) backend: Backend,
    /// What the driver is given: the file path for SQLite, the URL for PostgreSQL.
    pub(crate) target: String,
    /// The URL as given, password masked: the only form that appears in errors and logs.
    pub(crate) masked: String,
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseUrl")
            .field("backend", &self.backend)
            .field("url", &self.masked)
            .finish()
    }
}

impl DatabaseUrl {
    /// Parses a URL: `postgres://…`/`postgresql://…`, `sqlite://PATH`, `sqlite:PATH`, `:memory:`,
    /// or a plain file path. Any other `scheme://` is refused with an error that lists these.
    pub(crate) fn parse(url: &str) -> Result<Self, StoreError> {
        let trimmed = url.trim();
        let masked = mask_password(trimmed);
        let fail = |detail: String| {
            StoreError::new(ErrorKind::InvalidUrl, &masked, detail).with_hint(
                "use a file path or `sqlite://PATH` for SQLite (the default), or \
                 `postgres://USER:PASSWORD@HOST:PORT/DATABASE` for PostgreSQL",
            )
        };
        if trimmed.is_empty() {
            return Err(fail("the database URL is empty".into()));
        }
        let lower = trimmed.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            let rest = &trimmed[trimmed.find("://").map_or(0, |i| i + 3)..];
            if rest.is_empty() || rest.starts_with('/') && rest.len() == 1 {
                return Err(fail("the PostgreSQL URL names no host".into()));
            }
            return Ok(DatabaseUrl {
                backend: Backend::Postgres,
                target: trimmed.to_owned(),
                masked,
            });
        }
        let sqlite_path = if let Some(rest) = strip_prefix_ci(trimmed, "sqlite://") {
            Some(rest)
        } else if let Some(rest) = strip_prefix_ci(trimmed, "sqlite:") {
            Some(rest)
        } else if let Some(scheme) = scheme_of(trimmed) {
            return Err(fail(format!("unsupported scheme `{scheme}://`")));
        } else {
            Some(trimmed)
        };
        let path = sqlite_path.unwrap_or_default();
        if path.is_empty() {
            return Err(fail("the SQLite URL names no file".into()));
        }
        Ok(DatabaseUrl {
            backend: Backend::Sqlite,
            target: path.to_owned(),
            masked,
        })
    }

    /// Whether this is an in-memory SQLite database (one connection only, gone at exit).
    pub(crate) fn is_memory(&self) -> bool {
        self.backend == Backend::Sqlite
            && (self.target == ":memory:" || self.target.contains("mode=memory"))
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// The scheme of `scheme://…`, if the string has that shape.
fn scheme_of(s: &str) -> Option<&str> {
    let i = s.find("://")?;
    let scheme = &s[..i];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// The URL with any password replaced by `***`: the userinfo password (`user:pw@host`) and
/// `password=` query parameters.
pub fn mask_password(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let authority_end = out[start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..authority_end].rfind('@').map(|i| start + i)
            && let Some(colon) = out[start..at].find(':').map(|i| start + i)
        {
            out.replace_range(colon + 1..at, "***");
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{head}{}", masked.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_are_recognised() {
        let p = DatabaseUrl::parse("postgres://u:pw@localhost:5432/db").unwrap();
        assert_eq!(p.backend, Backend::Postgres);
        assert_eq!(p.masked, "postgres://u:***@localhost:5432/db");
        assert_eq!(
            DatabaseUrl::parse("postgresql://h/db").unwrap().backend,
            Backend::Postgres
        );
        for (url, path) in [
            ("sqlite:///var/lib/x.db", "/var/lib/x.db"),
            ("sqlite://x.db", "x.db"),
            ("sqlite:x.db", "x.db"),
            ("SQLITE://x.db", "x.db"),
            ("./data/healing.db", "./data/healing.db"),
            (":memory:", ":memory:"),
            ("sqlite::memory:", ":memory:"),
        ] {
            let parsed = DatabaseUrl::parse(url).unwrap();
            assert_eq!(parsed.backend, Backend::Sqlite, "{url}");
            assert_eq!(parsed.target, path, "{url}");
        }
        assert!(DatabaseUrl::parse(":memory:").unwrap().is_memory());
    }

    #[test]
    fn wrong_schemes_are_refused_with_the_url_masked() {
        let e = DatabaseUrl::parse("mysql://root:hunter2@db/app").unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains("mysql://root:***@db/app"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("unsupported scheme `mysql://`"), "{shown}");
        assert!(shown.contains("postgres://"), "{shown}");
        assert_eq!(e.kind(), ErrorKind::InvalidUrl);
        assert_eq!(
            DatabaseUrl::parse("  ").unwrap_err().kind(),
            ErrorKind::InvalidUrl
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://").unwrap_err().kind(),
            ErrorKind::InvalidUrl
        );
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(mask_password("postgres://u:p@h/d"), "postgres://u:***@h/d");
        assert_eq!(mask_password("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(
            mask_password("postgres://u:p:q@h:1/d?x=1"),
            "postgres://u:***@h:1/d?x=1"
        );
        assert_eq!(
            mask_password("postgres://h/d?user=u&password=secret&sslmode=disable"),
            "postgres://h/d?user=u&password=***&sslmode=disable"
        );
        assert_eq!(mask_password("/tmp/a@b:c.db"), "/tmp/a@b:c.db");
    }
}
