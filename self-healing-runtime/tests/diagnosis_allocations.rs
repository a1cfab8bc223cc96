//! Diagnosing a failure allocates nothing once its message is built, and building the message
//! allocates once: counted with a counting global allocator (a count, not a time, so it is
//! stable on any machine). This keeps the error path of a call healed by one re-run within its
//! allocation budget.

mod common;
mod counting;

use std::hint::black_box;
use std::io;
use std::time::Duration;

use counting::allocations;
use self_healing_runtime::diagnosis::{
    Analyzer, ErrorClass, Failure, Fingerprint, MAX_MESSAGE_BYTES, RuleAnalyzer, chain_message_of,
};

/// Allocations made by `f`, and what it returned.
fn counted<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = allocations();
    let value = black_box(f());
    (allocations() - before, value)
}

/// Messages for every rule, status contexts, wait hints, every placeholder of the normaliser,
/// mixed case, non-ASCII text, and ones no rule knows.
const MESSAGES: &[&str] = &[
    "deadlock detected on row 42",
    "DEADLOCK DETECTED",
    "Connection Refused: connect ECONNREFUSED 10.0.0.7:5432",
    "HTTP 429 Too Many Requests; Retry-After: 3",
    "rate limit exceeded, try again in 500ms",
    "HTTP/1.1 503 Service Unavailable, Retry-After: 2",
    "upstream responded (502)",
    "order 14290 shipped",
    "Order 401 Shipped",
    "JWT Expired for user bob@example.com",
    "server closed the connection unexpectedly",
    "Timed out after 250ms waiting for https://api.example.com/v1/rates?id=3",
    "pool exhausted: 32 of 32 connections busy",
    "Out Of Memory",
    "called `Option::unwrap()` on a `None` value",
    "invariant broken: order 550e8400-e29b-41d4-a716-446655440000 has no lines",
    "duplicate key value violates unique constraint \"contacts_email_key\"",
    "commit a1b2c3d4e5 missing at 0xdeadbeef",
    "Ünïcödé 42 ✓ 名前 'ß' RETRY IN 1.5 S",
    "something odd",
    "",
];

/// An error wrapping another, as application errors wrap a driver's.
#[derive(Debug)]
struct Wrapped {
    context: &'static str,
    source: io::Error,
}

impl std::fmt::Display for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "could not save contact ({})", self.context)
    }
}

impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[test]
fn rule_analyzer_allocates_nothing_given_the_message() {
    let site = test_site!("diagnosisAllocations", Database);
    let analyzer = RuleAnalyzer::new();
    let mut errors: Vec<Box<dyn std::error::Error>> = MESSAGES
        .iter()
        .map(|m| Box::new(io::Error::other(*m)) as Box<dyn std::error::Error>)
        .collect();
    // Typed classification walks a chain; a wrapped `Other` falls through to the message rules.
    errors.push(Box::new(Wrapped {
        context: "id 7",
        source: io::Error::from(io::ErrorKind::ConnectionRefused),
    }));
    errors.push(Box::new(Wrapped {
        context: "id 8",
        source: io::Error::other("connection reset by peer"),
    }));
    let messages: Vec<String> = errors.iter().map(|e| chain_message_of(&**e)).collect();
    let failures: Vec<Failure<'_>> = errors
        .iter()
        .zip(&messages)
        .map(|(error, message)| Failure {
            site,
            error: &**error,
            message,
            attempt: 1,
            elapsed: Duration::ZERO,
        })
        .collect();
    // The rule automata are built on first use.
    for failure in &failures {
        black_box(analyzer.analyze(failure));
    }
    for failure in &failures {
        let (n, diagnosis) = counted(|| analyzer.analyze(failure));
        assert_eq!(n, 0, "{:?} allocated ({:?})", failure.message, diagnosis);
    }
    // And the diagnoses are what the rules say.
    let d = analyzer.analyze(&failures[5]);
    assert_eq!(d.class, ErrorClass::Transient);
    assert_eq!(d.retry_after, Some(Duration::from_secs(2)));
}

#[test]
fn fingerprints_allocate_nothing() {
    let long = "user 42 not found; ".repeat(200);
    let classes = [
        ErrorClass::Transient,
        ErrorClass::RateLimited { retry_after: None },
        ErrorClass::Bug,
    ];
    let messages = MESSAGES.iter().copied().chain([long.as_str()]);
    for message in messages {
        for class in &classes {
            let (n, _) = counted(|| Fingerprint::new("createContact", class, message));
            assert_eq!(n, 0, "{message:?}");
        }
    }
}

#[test]
fn a_chain_message_is_one_allocation() {
    let two_links = Wrapped {
        context: "id 7",
        source: io::Error::other("connection reset by peer"),
    };
    let (n, message) = counted(|| chain_message_of(&two_links));
    assert_eq!(
        message,
        "could not save contact (id 7): connection reset by peer"
    );
    assert_eq!(n, 1);

    // A link the previous one repeats is skipped without costing an allocation of its own.
    let repeated = Wrapped {
        context: "connection reset by peer",
        source: io::Error::other("connection reset by peer"),
    };
    let (n, message) = counted(|| chain_message_of(&repeated));
    assert_eq!(message, "could not save contact (connection reset by peer)");
    assert_eq!(n, 1);

    // A message past the cap is cut, still in one allocation.
    let huge = Wrapped {
        context: "id 9",
        source: io::Error::other("x".repeat(10 * MAX_MESSAGE_BYTES)),
    };
    let (n, message) = counted(|| chain_message_of(&huge));
    assert_eq!(message.len(), MAX_MESSAGE_BYTES);
    assert_eq!(n, 1);
}
