//! Classification by message, when no link of the chain has a type we know: the integration
//! guide's rules (connection, timeout, deadlock, rate limit, ECONNREFUSED, null/undefined, …).

use std::sync::LazyLock;
use std::time::Duration;

use aho_corasick::AhoCorasick;

use super::{ErrorClass, Severity};

/// One rule: any of `needles` in the message, in any ASCII case, decides.
struct Rule {
    needles: &'static [&'static str],
    class: ErrorClass,
    severity: Severity,
    never_reached: bool,
    reason: &'static str,
}

const fn rule(
    needles: &'static [&'static str],
    class: ErrorClass,
    severity: Severity,
    reason: &'static str,
) -> Rule {
    Rule {
        needles,
        class,
        severity,
        never_reached: false,
        reason,
    }
}

/// First match wins, so the specific rules come before the general ones.
const RULES: &[Rule] = &[
    rule(
        &[
            "out of memory",
            "disk full",
            "no space left",
            "data loss",
            "corrupt",
        ],
        ErrorClass::ResourceExhausted,
        Severity::Critical,
        "rule: resources critically exhausted",
    ),
    Rule {
        never_reached: true,
        ..rule(
            &[
                "connection refused",
                "econnrefused",
                "could not connect",
                "failed to connect",
            ],
            ErrorClass::ConnectionLost,
            Severity::High,
            "rule: connection refused",
        )
    },
    rule(
        &[
            "rate limit",
            "ratelimit",
            "too many requests",
            "429",
            "quota exceeded",
            "throttl",
        ],
        ErrorClass::RateLimited { retry_after: None },
        Severity::Low,
        "rule: rate limited",
    ),
    rule(
        &[
            "unauthorized",
            "401",
            "token expired",
            "expired token",
            "jwt expired",
            "invalid token",
            "token has expired",
            "credentials expired",
            "authentication failed",
        ],
        ErrorClass::AuthExpired,
        Severity::High,
        "rule: credentials expired",
    ),
    rule(
        &[
            "connection reset",
            "connection closed",
            "connection lost",
            "broken pipe",
            "server closed the connection",
            "terminating connection",
            "econnreset",
            "connection aborted",
            "not connected",
            "lost connection",
        ],
        ErrorClass::ConnectionLost,
        Severity::High,
        "rule: connection lost",
    ),
    rule(
        &["timed out", "timeout", "deadline exceeded", "etimedout"],
        ErrorClass::Timeout,
        Severity::Medium,
        "rule: timeout",
    ),
    rule(
        &[
            "deadlock",
            "serialization failure",
            "could not serialize",
            "database is locked",
            "database table is locked",
            "lock wait",
            "try again",
            "temporarily unavailable",
            "service unavailable",
            "bad gateway",
            "gateway timeout",
            "503",
            "502",
            "504",
            "transaction",
            "econnaborted",
        ],
        ErrorClass::Transient,
        Severity::Low,
        "rule: transient",
    ),
    rule(
        &[
            "too many connections",
            "pool exhausted",
            "pool timed out",
            "resource exhausted",
            "overloaded",
            "capacity",
            "too many open files",
            "backpressure",
        ],
        ErrorClass::ResourceExhausted,
        Severity::High,
        "rule: resource exhausted",
    ),
    rule(
        &[
            "null",
            "undefined",
            "unwrap",
            "index out of bounds",
            "panicked",
            "overflow",
            "invariant",
            "unreachable",
            "assertion",
        ],
        ErrorClass::Bug,
        Severity::High,
        "rule: program defect",
    ),
    rule(
        &[
            "not found",
            "404",
            "unique constraint",
            "duplicate key",
            "already exists",
            "violates",
            "permission denied",
            "forbidden",
            "403",
            "bad request",
            "400",
            "invalid",
            "validation",
            "insufficient",
        ],
        ErrorClass::Permanent,
        Severity::Medium,
        "rule: permanent",
    ),
];

/// What a message rule concluded.
pub(crate) struct MessageVerdict {
    pub(crate) class: ErrorClass,
    pub(crate) severity: Severity,
    pub(crate) never_reached: bool,
    pub(crate) reason: &'static str,
}

/// Applies the rules to a message, ignoring ASCII case. Allocates nothing once the automaton
/// is built (on first use).
pub(crate) fn classify_message(message: &str) -> Option<MessageVerdict> {
    // One pass over the message finds every needle of every rule; the earliest rule wins.
    let (automaton, owners) = NEEDLES.as_ref()?;
    let rule = automaton
        .find_overlapping_iter(message)
        .filter(|m| {
            let needle = &message.as_bytes()[m.start()..m.end()];
            !needle.iter().all(u8::is_ascii_digit) || is_status_at(message, m.start(), m.end())
        })
        .filter_map(|m| owners.get(m.pattern().as_usize()).copied())
        .min()
        .and_then(|i| RULES.get(i))?;
    let class = match rule.class {
        ErrorClass::RateLimited { .. } => ErrorClass::RateLimited {
            retry_after: retry_after(message),
        },
        other => other,
    };
    Some(MessageVerdict {
        class,
        severity: rule.severity,
        never_reached: rule.never_reached,
        reason: rule.reason,
    })
}

/// Every needle of every rule in one case-insensitive automaton, and the rule each needle
/// belongs to.
///
/// `None` only if the automaton could not be built, which these few plain needles never cause
/// (a unit test builds it): the message rules then say nothing rather than panic on a caller's
/// error path.
static NEEDLES: LazyLock<Option<(AhoCorasick, Vec<usize>)>> = LazyLock::new(|| {
    let (needles, owners): (Vec<&str>, Vec<usize>) = RULES
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.needles.iter().map(move |n| (*n, i)))
        .unzip();
    let automaton = case_insensitive(needles)?;
    Some((automaton, owners))
});

/// An automaton for `needles` that ignores ASCII case, so messages are matched as they are
/// instead of lower-cased into a copy first. The needles are ASCII and lower case.
fn case_insensitive(needles: impl IntoIterator<Item = &'static str>) -> Option<AhoCorasick> {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(needles)
        .ok()
}

/// Whether the number at `start..end` of `haystack` reads as an HTTP status.
fn is_status_at(haystack: &str, start: usize, end: usize) -> bool {
    let before = &haystack[..start];
    let after = &haystack[end..];
    let whole = !before
        .bytes()
        .next_back()
        .is_some_and(|b| b.is_ascii_digit())
        && !after.bytes().next().is_some_and(|b| b.is_ascii_digit());
    whole && reads_as_status(before, after)
}

/// Words that, right before a number, make it an HTTP status.
const STATUS_WORDS: &[&str] = &[
    "status",
    "http",
    "code",
    "error",
    "returned",
    "got",
    "responded",
    "statuscode",
    "status_code",
    "http/1.1",
    "http/2",
    "received",
];

/// Numeric needles are HTTP status codes: they match only as a whole number that reads as a
/// status (after "status", "http", "code", "error", "returned", "got", "responded", a colon, or in
/// brackets), so ids such as "order 401" are not taken for one. Words compare ignoring ASCII case.
fn reads_as_status(before: &str, after: &str) -> bool {
    let before = before.trim_end();
    if before.ends_with(['(', '[', ':', '=']) || after.starts_with([')', ']']) {
        return true;
    }
    let previous = before
        .rsplit(|c: char| c.is_whitespace())
        .next()
        .unwrap_or("")
        .trim_matches(|c: char| !c.is_alphanumeric() && c != '/');
    STATUS_WORDS
        .iter()
        .any(|w| previous.eq_ignore_ascii_case(w))
        || starts_with_ignore_case(previous, "http/")
}

/// `haystack` starts with the ASCII `prefix`, ignoring ASCII case.
fn starts_with_ignore_case(haystack: &str, prefix: &str) -> bool {
    haystack
        .as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// The phrases that introduce a wait, in order of preference: the first phrase found anywhere in
/// the message decides, wherever the others are.
const RETRY_KEYS: &[&str] = &[
    "retry-after:",
    "retry-after",
    "retry after",
    "retry in",
    "try again in",
];

/// [`RETRY_KEYS`] in one case-insensitive automaton; `None` as for [`NEEDLES`].
static RETRY_HINTS: LazyLock<Option<AhoCorasick>> =
    LazyLock::new(|| case_insensitive(RETRY_KEYS.iter().copied()));

/// A `retry after N` / `Retry-After: N` / `retry in Ns` / `try again in N ms` hint in a message,
/// in seconds or milliseconds, ignoring ASCII case. Parsed in place: allocates nothing once the
/// automaton is built.
pub(crate) fn retry_after(message: &str) -> Option<Duration> {
    // Every key contains "try": most messages have none, and this check costs a fraction of a
    // search.
    if !message
        .as_bytes()
        .windows(3)
        .any(|w| w.eq_ignore_ascii_case(b"try"))
    {
        return None;
    }
    let automaton = RETRY_HINTS.as_ref()?;
    // The first occurrence of the most preferred key. Overlapping matches come in order of
    // their end, so a key's first report is its leftmost occurrence.
    let mut best: Option<(usize, usize)> = None;
    for m in automaton.find_overlapping_iter(message) {
        let key = m.pattern().as_usize();
        if best.is_none_or(|(k, _)| key < k) {
            best = Some((key, m.end()));
            if key == 0 {
                break;
            }
        }
    }
    let (_, end) = best?;
    let rest = message[end..].trim_start_matches([' ', ':', '=']);
    let digits = rest
        .bytes()
        .position(|b| !(b.is_ascii_digit() || b == b'.'))
        .unwrap_or(rest.len());
    let value: f64 = rest[..digits].parse().ok()?;
    let unit = rest[digits..].trim_start();
    let seconds =
        if starts_with_ignore_case(unit, "ms") || starts_with_ignore_case(unit, "millisecond") {
            value / 1000.0
        } else {
            value
        };
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guide_rules() {
        let cases = [
            ("Connection timeout", "timeout"),
            ("deadlock detected", "transient"),
            ("Rate limit exceeded", "rate_limited"),
            ("connect ECONNREFUSED 127.0.0.1:5432", "connection_lost"),
            ("Cannot read properties of undefined", "bug"),
            ("null value in column \"id\"", "bug"),
            ("HTTP 429 Too Many Requests", "rate_limited"),
            ("jwt expired", "auth_expired"),
            (
                "duplicate key value violates unique constraint",
                "permanent",
            ),
        ];
        for (message, class) in cases {
            // As written, lower-cased and upper-cased: case never changes the verdict.
            for variant in [
                message.to_owned(),
                message.to_lowercase(),
                message.to_uppercase(),
            ] {
                let verdict = classify_message(&variant).expect(message);
                assert_eq!(verdict.class.as_str(), class, "{variant}");
            }
        }
    }

    #[test]
    fn the_automata_build() {
        assert!(NEEDLES.is_some());
        assert!(RETRY_HINTS.is_some());
    }

    #[test]
    fn mixed_case_messages() {
        let cases = [
            ("Deadlock Detected", "transient"),
            ("ECONNREFUSED", "connection_lost"),
            ("Connection Refused by peer", "connection_lost"),
            ("RATE LIMIT exceeded", "rate_limited"),
            ("JWT Expired", "auth_expired"),
            (
                "Server Closed The Connection unexpectedly",
                "connection_lost",
            ),
            ("Service Unavailable", "transient"),
            ("Pool Exhausted", "resource_exhausted"),
            ("Called `Option::unwrap()` on a `None` value", "bug"),
            ("Duplicate Key value", "permanent"),
            ("Out Of Memory", "resource_exhausted"),
        ];
        for (message, class) in cases {
            let verdict = classify_message(message).expect(message);
            assert_eq!(verdict.class.as_str(), class, "{message}");
        }
        assert!(classify_message("Everything Is Fine").is_none());
    }

    #[test]
    fn mixed_case_status_contexts() {
        assert!(classify_message("Got 429 From Upstream").is_some());
        assert!(classify_message("HTTP 401 for /me").is_some());
        assert!(classify_message("Status 503").is_some());
        assert!(classify_message("STATUS_CODE 502").is_some());
        assert!(classify_message("HTTP/1.1 503 Service Unavailable").is_some());
        assert!(classify_message("Http/3 504").is_some());
        assert!(classify_message("Order 401 Shipped").is_none());
        assert_eq!(
            classify_message("Returned 401").map(|v| v.class),
            Some(ErrorClass::AuthExpired)
        );
    }

    #[test]
    fn mixed_case_rate_limits_carry_the_wait() {
        let verdict = classify_message("HTTP 429 Too Many Requests; Retry-After: 7").unwrap();
        assert_eq!(
            verdict.class,
            ErrorClass::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
    }

    #[test]
    fn status_codes_need_a_status_context() {
        assert!(classify_message("order 14290 shipped").is_none());
        assert!(classify_message("order 401 shipped").is_none());
        assert!(classify_message("got 429 from upstream").is_some());
        assert!(classify_message("upstream responded (503)").is_some());
        assert!(classify_message("http 401 for /me").is_some());
    }

    #[test]
    fn retry_after_hints() {
        assert_eq!(
            retry_after("429: retry-after: 3"),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after("slow down, retry in 250ms"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(retry_after("rate limited"), None);
    }

    #[test]
    fn retry_after_hints_ignore_case() {
        assert_eq!(
            retry_after("503 Service Unavailable, Retry-After: 2"),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after("RETRY AFTER 1.5"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after("Busy: Try Again In 500MS"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            retry_after("Retry In 250 Milliseconds"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(retry_after("RETRY-AFTER: soon"), None);
    }

    #[test]
    fn the_preferred_hint_wins_wherever_it_is() {
        // As before matching ignored case: the key order decides, not the position.
        assert_eq!(
            retry_after("retry in 5s (Retry-After: 3)"),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after("try again in 9, or retry after 4"),
            Some(Duration::from_secs(4))
        );
        // The first occurrence of that key.
        assert_eq!(
            retry_after("retry after 1, retry after 2"),
            Some(Duration::from_secs(1))
        );
    }
}
