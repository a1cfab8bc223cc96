//! Event filters as the page, the API and the CLI accept them, with errors that name the
//! parameter and list what is allowed.

use std::str::FromStr;
use std::time::SystemTime;

use self_healing_runtime::diagnosis::{Fingerprint, Severity};
use self_healing_runtime::{Category, Outcome};
use self_healing_store::{EventCursor, EventFilter, MAX_PAGE};
use serde::Deserialize;

use crate::time_fmt;

/// Events a page shows unless `limit` says otherwise.
pub(crate) const DEFAULT_LIMIT: usize = 50;

/// Every severity, lowest first.
pub(crate) const SEVERITIES: [Severity; 4] = [
    Severity::Low,
    Severity::Medium,
    Severity::High,
    Severity::Critical,
];

/// The query string of `api/events` and of the page (every value optional; empty means unset).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct EventsQuery {
    pub(crate) source: Option<String>,
    pub(crate) category: Option<String>,
    pub(crate) outcome: Option<String>,
    pub(crate) severity: Option<String>,
    pub(crate) fingerprint: Option<String>,
    pub(crate) since: Option<String>,
    pub(crate) until: Option<String>,
    pub(crate) after: Option<String>,
    pub(crate) limit: Option<String>,
}

/// A checked [`EventsQuery`].
#[derive(Debug, Clone)]
pub(crate) struct ParsedQuery {
    pub(crate) filter: EventFilter,
    pub(crate) after: Option<EventCursor>,
    pub(crate) limit: usize,
}

fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Parses a severity name.
pub(crate) fn parse_severity(s: &str) -> Result<Severity, String> {
    SEVERITIES
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| {
            format!("invalid `severity` `{s}`: expected one of low, medium, high, critical")
        })
}

/// Parses an outcome name.
pub(crate) fn parse_outcome(s: &str) -> Result<Outcome, String> {
    Outcome::parse(s).ok_or_else(|| {
        let all: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        format!(
            "invalid `outcome` `{s}`: expected one of {}",
            all.join(", ")
        )
    })
}

impl EventsQuery {
    /// Whether any filter is set (pagination aside).
    pub(crate) fn is_filtered(&self) -> bool {
        [
            &self.source,
            &self.category,
            &self.outcome,
            &self.severity,
            &self.fingerprint,
            &self.since,
            &self.until,
        ]
        .into_iter()
        .any(|v| set(v).is_some())
    }

    /// Checks every parameter; `now` anchors ages such as `since=24h`.
    pub(crate) fn parse(&self, now: SystemTime) -> Result<ParsedQuery, String> {
        let time = |name: &str, v: &Option<String>| {
            set(v)
                .map(|s| time_fmt::parse_time(s, now).map_err(|e| format!("invalid `{name}`: {e}")))
                .transpose()
        };
        let filter = EventFilter {
            source: set(&self.source).map(str::to_owned),
            category: set(&self.category)
                .map(|c| Category::from_str(c).map_err(|e| format!("invalid `category`: {e}")))
                .transpose()?,
            outcome: set(&self.outcome).map(parse_outcome).transpose()?,
            severity: set(&self.severity).map(parse_severity).transpose()?,
            fingerprint: set(&self.fingerprint)
                .map(|f| {
                    Fingerprint::from_hex(f).ok_or_else(|| {
                        format!("invalid `fingerprint` `{f}`: expected 16 hexadecimal digits")
                    })
                })
                .transpose()?,
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
        };
        let after = set(&self.after)
            .map(|a| {
                a.parse::<EventCursor>()
                    .map_err(|e| format!("invalid `after`: {e}"))
            })
            .transpose()?;
        let limit = match set(&self.limit) {
            None => DEFAULT_LIMIT,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => {
                    return Err(format!(
                        "invalid `limit` `{l}`: expected a number from 1 to {MAX_PAGE}"
                    ));
                }
            },
        };
        Ok(ParsedQuery {
            filter,
            after,
            limit,
        })
    }

    /// The query string of the same filters with `after` set (the page's "older" link).
    pub(crate) fn with_after(&self, cursor: &EventCursor) -> String {
        let mut pairs: Vec<(&str, String)> = [
            ("source", &self.source),
            ("category", &self.category),
            ("outcome", &self.outcome),
            ("severity", &self.severity),
            ("fingerprint", &self.fingerprint),
            ("since", &self.since),
            ("until", &self.until),
            ("limit", &self.limit),
        ]
        .into_iter()
        .filter_map(|(k, v)| set(v).map(|v| (k, v.to_owned())))
        .collect();
        pairs.push(("after", cursor.to_string()));
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(f: impl FnOnce(&mut EventsQuery)) -> Result<ParsedQuery, String> {
        let mut q = EventsQuery::default();
        f(&mut q);
        q.parse(SystemTime::now())
    }

    #[test]
    fn bad_values_name_the_parameter_and_the_choices() {
        let e = q(|q| q.outcome = Some("fixed".into())).unwrap_err();
        assert!(e.contains("`outcome`") && e.contains("healed"), "{e}");
        let e = q(|q| q.category = Some("db".into())).unwrap_err();
        assert!(e.contains("`category`") && e.contains("database"), "{e}");
        let e = q(|q| q.limit = Some("0".into())).unwrap_err();
        assert!(e.contains("`limit`"), "{e}");
        let e = q(|q| q.after = Some("x".into())).unwrap_err();
        assert!(e.contains("`after`"), "{e}");
        let e = q(|q| q.since = Some("soon".into())).unwrap_err();
        assert!(e.contains("`since`"), "{e}");
    }

    #[test]
    fn empty_values_are_unset() {
        let p = q(|q| {
            q.source = Some(String::new());
            q.outcome = Some(" ".into());
        })
        .unwrap();
        assert_eq!(p.filter, EventFilter::default());
        assert_eq!(p.limit, DEFAULT_LIMIT);
    }

    #[test]
    fn the_older_link_keeps_the_filters() {
        let query = EventsQuery {
            source: Some("a b&c".into()),
            ..EventsQuery::default()
        };
        let cursor: EventCursor = "12.3".parse().unwrap();
        assert_eq!(query.with_after(&cursor), "source=a%20b%26c&after=12.3");
    }
}
