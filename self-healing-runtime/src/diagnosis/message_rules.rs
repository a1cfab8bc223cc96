//! Classification by message, when no link of the chain has a type we know: the integration
//! guide's rules (connection, timeout, deadlock, rate limit, ECONNREFUSED, null/undefined, …).

use std::time::Duration;

use super::{ErrorClass, Severity};

/// One rule: any of `needles` in the lower-cased message decides.
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

/// Applies the rules to a lower-cased message.
pub(crate) fn classify_message(lower: &str) -> Option<MessageVerdict> {
    // One pass over the message finds every needle of every rule; the earliest rule wins.
    let (automaton, owners) = &*NEEDLES;
    let rule = automaton
        .find_overlapping_iter(lower)
        .filter(|m| {
            let needle = &lower[m.start()..m.end()];
            !needle.bytes().all(|b| b.is_ascii_digit()) || is_status_at(lower, m.start(), m.end())
        })
        .map(|m| owners[m.pattern().as_usize()])
        .min()
        .map(|i| &RULES[i])?;
    let class = match rule.class {
        ErrorClass::RateLimited { .. } => ErrorClass::RateLimited {
            retry_after: retry_after(lower),
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

/// Every needle of every rule in one automaton, and the rule each needle belongs to.
static NEEDLES: std::sync::LazyLock<(aho_corasick::AhoCorasick, Vec<usize>)> =
    std::sync::LazyLock::new(|| {
        let (needles, owners): (Vec<&str>, Vec<usize>) = RULES
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.needles.iter().map(move |n| (*n, i)))
            .unzip();
        let automaton =
            aho_corasick::AhoCorasick::new(needles).expect("the rule needles are plain strings");
        (automaton, owners)
    });

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

/// Numeric needles are HTTP status codes: they match only as a whole number that reads as a
/// status (after "status", "http", "code", "error", "returned", "got", "responded", a colon, or in
/// brackets), so ids such as "order 401" are not taken for one.
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
    matches!(
        previous,
        "status"
            | "http"
            | "code"
            | "error"
            | "returned"
            | "got"
            | "responded"
            | "statuscode"
            | "status_code"
            | "http/1.1"
            | "http/2"
            | "received"
    ) || previous.starts_with("http/")
}

/// A `retry after N` / `retry-after: N` / `retry in Ns` hint in a message, in seconds or ms.
pub(crate) fn retry_after(lower: &str) -> Option<Duration> {
    for key in [
        "retry-after:",
        "retry-after",
        "retry after",
        "retry in",
        "try again in",
    ] {
        if let Some(pos) = lower.find(key) {
            let rest = lower[pos + key.len()..].trim_start_matches([' ', ':', '=']);
            let digits: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let value: f64 = digits.parse().ok()?;
            let unit = rest[digits.len()..].trim_start();
            let seconds = if unit.starts_with("ms") || unit.starts_with("millisecond") {
                value / 1000.0
            } else {
                value
            };
            return Duration::try_from_secs_f64(seconds).ok();
        }
    }
    None
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
            let verdict = classify_message(&message.to_lowercase()).expect(message);
            assert_eq!(verdict.class.as_str(), class, "{message}");
        }
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
}
