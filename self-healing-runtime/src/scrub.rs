//! Scrubbing: secrets and personal data are replaced before a message is stored, shown, sent to an
//! LLM or put in a notification.
//!
//! [`scrub`] is applied to every event message. It finds, in one left-to-right pass:
//!
//! | what | example | becomes |
//! |---|---|---|
//! | passwords in URLs | `postgres://app:s3cret@db/crm` | `postgres://app:[redacted]@db/crm` |
//! | values of secret-looking keys | `password=x`, `"api_key": "x"`, `X-Api-Key: x`, `?token=x&` | `password=[redacted]` |
//! | credentials after an auth scheme | `Bearer abc.def.ghi`, `Basic dXNlcjpw` | `Bearer [redacted]` |
//! | JWTs | `eyJhbGciOi….eyJzdWIiOi….sig` | `[redacted:jwt]` |
//! | API keys | `sk-…`, `pk_live_…`, `ghp_…`, `xoxb-…`, `AIza…`, `AKIA…` | `[redacted:key]` |
//! | card numbers (Luhn-checked) | `4111 1111 1111 1111` | `[redacted:card]` |
//! | US social security numbers | `078-05-1120` | `[redacted:ssn]` |
//! | phone numbers | `+1 (415) 555-0123`, `+44 20 7946 0958`, `415-555-0123` | `[redacted:phone]` |
//! | IBANs (mod-97-checked) | `GB82 WEST 1234 5698 7654 32`, `DE89370400440532013000` | `[redacted:iban]` |
//! | PEM private keys, whole or cut before their END line | `-----BEGIN PRIVATE KEY-----…` | `[redacted:private_key]` |
//! | emails | `bob@example.com` | `[redacted:email]` |
//! | long random-looking strings | 40 hex digits, base64 key material | `[redacted:token]` |
//! | your own patterns | see [`Scrubber::with_pattern`] | `[redacted:<label>]` |
//!
//! Secret-looking keys are those whose name contains `password`, `secret`, `token`, `api_key`,
//! `access_key`, `private_key`, `session_id`, `credential`, `credit_card`, `authorization`,
//! `cookie`, `signature`, … or has a part such as `pwd`, `auth`, `session`, `ssn`, `cvv`, `pin`,
//! `otp` (`db_password`, `PGPASSWORD`, `x-api-key`, `sessionId`). Counters and settings *about*
//! secrets are left alone: `max_tokens`, `token_type`, `password_length`, `secret_name`.
//! UUIDs are kept: they identify records and are rarely secret on their own. So are timestamps,
//! durations, ports, ids, versions, status codes and byte counts: a phone number must start with
//! `+` or have the 3-3-4 North American shape, and an IBAN must pass its checksum.
//!
//! [`scrub_message`] is what events, notifications and LLM prompts go through: it scrubs the
//! whole message (up to a bounded window) first and cuts it to the cap second, so a secret
//! straddling the cap is redacted rather than halved.
//!
//! Scrubbing is idempotent (its output scrubs to itself) and never panics; both are checked by a
//! property test.
//!
//! # Why the `regex` crate
//!
//! Each shape is a regular expression in a table, which keeps the rules readable and makes user
//! patterns ([`Scrubber::with_pattern`]) use the syntax everyone knows. `regex` runs in linear
//! time whatever the pattern and input, so a user pattern cannot stall the error path; and the
//! runtime's workspace already depends on it. What a regular expression cannot say (the Luhn
//! check, "looks random", "this key name is secret") is a small function next to its rule.

mod checks;
mod iban;
mod keys;
mod pem;
mod phone;
mod rules;
mod window;

use std::fmt;
use std::sync::{LazyLock, OnceLock};

use regex::Regex;

use rules::{Rule, Verdict};
pub use window::{TRUNCATED, WINDOW_BYTES};

/// Replaces secrets and personal data in `message` with `[redacted]` / `[redacted:<kind>]`
/// markers, using the [installed](Scrubber::install) scrubber, or the built-in rules.
///
/// ```
/// use self_healing_runtime::scrub::scrub;
/// assert_eq!(
///     scrub("login failed for bob@example.com with password=hunter2"),
///     "login failed for [redacted:email] with password=[redacted]",
/// );
/// assert_eq!(
///     scrub(r#"{"user":"bob","password":"hunter2"}"#),
///     r#"{"user":"bob","password":"[redacted]"}"#,
/// );
/// ```
pub fn scrub(message: &str) -> String {
    Scrubber::current().scrub(message)
}

/// [`scrub`]s a message and cuts the result to [`MAX_MESSAGE_BYTES`](crate::diagnosis::MAX_MESSAGE_BYTES),
/// [`TRUNCATED`] included: what events, notifications and LLM prompts hold.
///
/// The whole message is scrubbed before it is cut, so a secret straddling the cap is redacted,
/// not halved. The work is bounded: at most [`WINDOW_BYTES`] of `message` are read, cut where no
/// secret can straddle the cut.
///
/// ```
/// use self_healing_runtime::diagnosis::MAX_MESSAGE_BYTES;
/// use self_healing_runtime::scrub::{TRUNCATED, scrub_message};
///
/// let long = format!("{}postgres://admin:S3cr3tPass@db/crm", "x ".repeat(1010));
/// let stored = scrub_message(&long);
/// assert!(stored.len() <= MAX_MESSAGE_BYTES && stored.ends_with(TRUNCATED));
/// assert!(!stored.contains("S3cr"));
/// ```
pub fn scrub_message(message: &str) -> String {
    Scrubber::current().scrub_message(message)
}

static DEFAULT: LazyLock<Scrubber> = LazyLock::new(Scrubber::new);
static INSTALLED: OnceLock<Scrubber> = OnceLock::new();

/// A set of scrubbing rules: the built-in ones, plus patterns and key names of your own.
///
/// ```
/// use self_healing_runtime::scrub::Scrubber;
///
/// let scrubber = Scrubber::new()
///     .with_pattern("customer", r"\bCUST-[0-9]{6}\b")?
///     // Only the `secret` group is replaced when the pattern has one.
///     .with_pattern("pin", r"\bPIN (?P<secret>[0-9]{4})\b")?
///     .with_key("tenant_passkey");
/// assert_eq!(
///     scrubber.scrub("CUST-123456 entered PIN 1234, tenant_passkey=abc"),
///     "[redacted:customer] entered PIN [redacted:pin], tenant_passkey=[redacted]",
/// );
/// // To make it apply to every event message: `scrubber.install()`.
/// # Ok::<(), self_healing_runtime::scrub::ScrubError>(())
/// ```
#[derive(Clone)]
pub struct Scrubber {
    /// Shapes with a structure (keys, URLs, prefixes, checksums) and the user's patterns.
    shapes: Vec<Rule>,
    /// Randomness, judged on what the shapes left: a run of characters only counts as random
    /// once the shapes inside it are gone, so scrubbing twice changes nothing.
    late: Vec<Rule>,
    extra_keys: Vec<String>,
}

impl Default for Scrubber {
    fn default() -> Self {
        Scrubber::new()
    }
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let custom: Vec<&str> = self.shapes.iter().filter_map(Rule::custom_label).collect();
        f.debug_struct("Scrubber")
            .field("custom_patterns", &custom)
            .field("extra_keys", &self.extra_keys)
            .finish_non_exhaustive()
    }
}

/// A pattern or label that [`Scrubber::with_pattern`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScrubError {
    /// The pattern is not a valid regular expression.
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// What the regex parser said.
        reason: String,
    },
    /// The label must be 1 to 32 characters among `a-z`, `0-9`, `_` and `-`.
    InvalidLabel(String),
    /// The pattern matches the empty string, so it would match everywhere.
    MatchesEmpty(String),
}

impl fmt::Display for ScrubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScrubError::InvalidPattern { pattern, reason } => {
                write!(f, "invalid scrub pattern `{pattern}`: {reason}")
            }
            ScrubError::InvalidLabel(label) => write!(
                f,
                "invalid scrub label `{label}`: use 1 to 32 characters among a-z, 0-9, `_` and `-`"
            ),
            ScrubError::MatchesEmpty(pattern) => {
                write!(f, "scrub pattern `{pattern}` matches the empty string")
            }
        }
    }
}

impl std::error::Error for ScrubError {}

impl Scrubber {
    /// The built-in rules (see the [module docs](self)).
    pub fn new() -> Self {
        let (shapes, late) = rules::builtin();
        Scrubber {
            shapes,
            late,
            extra_keys: Vec::new(),
        }
    }

    /// Adds a pattern of your own (a [`regex`](https://docs.rs/regex) pattern). Each match is
    /// replaced by `[redacted:<label>]`; when the pattern has a capture group named `secret`, only
    /// that group is. Built-in rules win where both match at the same place.
    ///
    /// Keep `[` and `]` out of what the pattern can match, so scrubbed text stays as it is when
    /// scrubbed again.
    ///
    /// # Errors
    /// [`ScrubError`] if the pattern does not parse, matches the empty string, or the label is not
    /// 1 to 32 characters among `a-z`, `0-9`, `_` and `-`.
    pub fn with_pattern(mut self, label: &str, pattern: &str) -> Result<Self, ScrubError> {
        let label_ok = (1..=32).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !label_ok {
            return Err(ScrubError::InvalidLabel(label.to_owned()));
        }
        let regex = Regex::new(pattern).map_err(|e| ScrubError::InvalidPattern {
            pattern: pattern.to_owned(),
            reason: e.to_string(),
        })?;
        if regex.is_match("") {
            return Err(ScrubError::MatchesEmpty(pattern.to_owned()));
        }
        self.shapes.push(Rule::custom(label, regex));
        Ok(self)
    }

    /// Treats values of keys whose name contains `name` as secret (compared without case and
    /// without `_`, `-`, `.` separators: `with_key("pass_key")` also covers `PassKey=…`).
    pub fn with_key(mut self, name: &str) -> Self {
        let normalized = keys::glue(name);
        if !normalized.is_empty() {
            self.extra_keys.push(normalized);
        }
        self
    }

    /// Makes this the scrubber that [`scrub`] (and so every event message) uses in this process.
    ///
    /// # Errors
    /// Gives the scrubber back if one was installed already.
    pub fn install(self) -> Result<(), Scrubber> {
        INSTALLED.set(self)
    }

    /// The installed scrubber, or the built-in one.
    pub fn current() -> &'static Scrubber {
        INSTALLED.get().unwrap_or(&DEFAULT)
    }

    /// Replaces secrets and personal data in `text`.
    pub fn scrub(&self, text: &str) -> String {
        let shaped = self.scan(text, &self.shapes);
        self.scan(&shaped, &self.late)
    }

    /// [`scrub_message`] with these rules: scrubs a bounded window of `text`, then cuts the
    /// result to [`MAX_MESSAGE_BYTES`](crate::diagnosis::MAX_MESSAGE_BYTES) with [`TRUNCATED`].
    pub fn scrub_message(&self, text: &str) -> String {
        // A message this function cut already is scrubbed again without its marker, so that
        // scrubbing it twice leaves one marker, not two.
        let (text, was_cut) = match text.strip_suffix(TRUNCATED) {
            Some(head) => (head, true),
            None => (text, false),
        };
        let (head, cut) = window::window(text);
        window::cap(
            self.scrub(head),
            crate::diagnosis::MAX_MESSAGE_BYTES,
            was_cut || cut,
        )
    }

    /// One left-to-right pass: at each place the earliest match wins (ties go to the rule listed
    /// first); a match its rule rejects is looked for again one character further on.
    fn scan(&self, text: &str, rules: &[Rule]) -> String {
        let mut out = String::with_capacity(text.len());
        // The next match of each rule at or after `pos`, found lazily.
        let mut next: Vec<Option<regex::Captures<'_>>> =
            rules.iter().map(|r| r.regex.captures_at(text, 0)).collect();
        let mut pos = 0;
        loop {
            let mut best: Option<(usize, usize)> = None; // (start, rule index)
            for (i, rule) in rules.iter().enumerate() {
                let stale = next[i]
                    .as_ref()
                    .is_some_and(|c| c.get(0).is_some_and(|m| m.start() < pos));
                if stale {
                    next[i] = rule.regex.captures_at(text, pos);
                }
                let start = next[i].as_ref().and_then(|c| c.get(0)).map(|m| m.start());
                if let Some(start) = start
                    && best.is_none_or(|(s, _)| start < s)
                {
                    best = Some((start, i));
                }
            }
            let Some((start, i)) = best else { break };
            let Some(caps) = next[i].take() else { break };
            let rule = &rules[i];
            match rule.judge(&caps, text, pos, &self.extra_keys) {
                Verdict::Reject => {
                    // Look for this rule again one character further on.
                    let step = text[start..].chars().next().map_or(1, char::len_utf8);
                    next[i] = (start + step <= text.len())
                        .then(|| rule.regex.captures_at(text, start + step))
                        .flatten();
                }
                Verdict::Keep { end } => {
                    out.push_str(&text[pos..end]);
                    pos = end;
                    next[i] = rule.regex.captures_at(text, pos);
                }
                Verdict::Pass { scan, end } => {
                    out.push_str(&text[pos..scan.start]);
                    out.push_str(&self.scan(&text[scan.clone()], rules));
                    out.push_str(&text[scan.end..end]);
                    pos = end;
                    next[i] = rule.regex.captures_at(text, pos);
                }
                Verdict::Redact { scan, secret } => {
                    out.push_str(&text[pos..scan.start]);
                    if !scan.is_empty() {
                        out.push_str(&self.scan(&text[scan.clone()], rules));
                    }
                    out.push_str(&text[scan.end..secret.start]);
                    match &rule.label {
                        Some(label) => {
                            out.push_str("[redacted:");
                            out.push_str(label);
                            out.push(']');
                        }
                        None => out.push_str(rule.kind.marker()),
                    }
                    pos = secret.end;
                    next[i] = rule.regex.captures_at(text, pos);
                }
            }
        }
        out.push_str(&text[pos..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_patterns_are_validated() {
        assert!(matches!(
            Scrubber::new().with_pattern("x", "("),
            Err(ScrubError::InvalidPattern { .. })
        ));
        assert!(matches!(
            Scrubber::new().with_pattern("Bad Label", "x"),
            Err(ScrubError::InvalidLabel(_))
        ));
        assert!(matches!(
            Scrubber::new().with_pattern("x", "a*"),
            Err(ScrubError::MatchesEmpty(_))
        ));
    }

    #[test]
    fn debug_shows_configuration_not_rules() {
        let s = Scrubber::new()
            .with_pattern("acme", "ACME-[0-9]+")
            .unwrap()
            .with_key("passkey");
        let shown = format!("{s:?}");
        assert!(
            shown.contains("acme") && shown.contains("passkey"),
            "{shown}"
        );
    }
}
