//! Every finding of the scrubbing security issue (rows 1 and 7) and of its property tests, as a
//! fixed case: the input that leaked or misbehaved, and what must hold now.

use self_healing_runtime::diagnosis::MAX_MESSAGE_BYTES;
use self_healing_runtime::scrub::{TRUNCATED, WINDOW_BYTES, scrub, scrub_message};

/// What must hold for a finding's input.
enum Expect {
    /// `scrub` gives exactly this.
    Scrubs(&'static str),
    /// `scrub_message` keeps none of these pieces, and stays within the cap.
    StoredWithout(&'static [&'static str]),
    /// `scrub` gives the same text when applied to its own output.
    Idempotent,
}

struct Finding {
    id: &'static str,
    input: String,
    expect: Expect,
}

/// `secret` starting `before` bytes ahead of `edge`, after spaces and words.
fn at_edge(secret: &str, edge: usize, before: usize) -> String {
    let start = edge - before;
    let mut text = "word ".repeat(start / 5);
    while text.len() < start {
        text.push(' ');
    }
    text.truncate(start);
    format!("{text}{secret} and more words after it")
}

/// Like [`at_edge`] for the scrubber's window, after JWTs that shrink to markers so that the
/// edge's text reaches the stored message.
fn at_window_edge(secret: &str, before: usize) -> String {
    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U ";
    let start = WINDOW_BYTES - before;
    let mut text = JWT.repeat(start / JWT.len());
    while text.len() < start {
        text.push(' ');
    }
    format!("{text}{secret} tail")
}

fn findings() -> Vec<Finding> {
    use Expect::*;
    let f = |id, input: String, expect| Finding { id, input, expect };
    vec![
        // Row 1: cut before scrubbing, half a secret was stored and sent.
        f(
            "row 1: URL password straddling the cap",
            at_edge("postgres://admin:S3cr3tPassw0rd@db/crm", MAX_MESSAGE_BYTES, 20),
            StoredWithout(&["S3cr", "admin:S"]),
        ),
        f(
            "row 1: API key straddling the cap",
            at_edge("sk-proj-Abc123Def456Ghi789Jkl0", MAX_MESSAGE_BYTES, 15),
            StoredWithout(&["Abc123", "sk-proj-A"]),
        ),
        f(
            "row 1: 12 of 16 card digits",
            at_edge("4111 1111 1111 1111", MAX_MESSAGE_BYTES, 14),
            StoredWithout(&["4111 1111", "1111 1111"]),
        ),
        f(
            "row 1: JWT claims",
            at_edge(
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiZW1haWwiOiJib2JAZXhhbXBsZS5jb20ifQ.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                MAX_MESSAGE_BYTES,
                60,
            ),
            StoredWithout(&["eyJzdWIi", "ZW1haWwi"]),
        ),
        // Row 1, the window's own edge: a raw cut there must split no secret either.
        f(
            "row 1: spaced card at the window's edge",
            at_window_edge("5555 5555 5555 4444", 8),
            StoredWithout(&["5555 5555", "5555"]),
        ),
        f(
            "row 1: spaced card 70 bytes before the window's edge",
            at_window_edge("5555 5555 5555 4444", 70),
            StoredWithout(&["5555 5555", "5555"]),
        ),
        f(
            "row 1: IBAN in groups at the window's edge",
            at_window_edge("GB82 WEST 1234 5698 7654 32", 10),
            StoredWithout(&["GB82", "WEST 1234"]),
        ),
        f(
            "row 1: quoted passphrase at the window's edge",
            at_window_edge(r#"{"password": "correct horse battery staple"}"#, 35),
            StoredWithout(&["correct", "horse"]),
        ),
        f(
            "row 1: PEM block at the window's edge",
            at_window_edge(
                "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7\nAgEAAkEAq7BFUpkGp3\n-----END PRIVATE KEY-----",
                50,
            ),
            StoredWithout(&["MIIBVQ", "AgEAAk"]),
        ),
        // Row 7: phone numbers.
        f(
            "row 7: +1 (415) 555-0123",
            "sms +1 (415) 555-0123 failed".into(),
            Scrubs("sms [redacted:phone] failed"),
        ),
        f(
            "row 7: +14155550123",
            "sms +14155550123 failed".into(),
            Scrubs("sms [redacted:phone] failed"),
        ),
        f(
            "row 7: 415-555-0123",
            "sms 415-555-0123 failed".into(),
            Scrubs("sms [redacted:phone] failed"),
        ),
        f(
            "row 7: +44 20 7946 0958",
            "sms +44 20 7946 0958 failed".into(),
            Scrubs("sms [redacted:phone] failed"),
        ),
        // Row 7: IBANs.
        f(
            "row 7: GB82 WEST 1234 5698 7654 32",
            "to GB82 WEST 1234 5698 7654 32.".into(),
            Scrubs("to [redacted:iban]."),
        ),
        f(
            "row 7: DE89370400440532013000",
            "to DE89370400440532013000.".into(),
            Scrubs("to [redacted:iban]."),
        ),
        f(
            "row 7: IBAN failing mod 97 is kept",
            "ref DE89370400440532013001".into(),
            Scrubs("ref DE89370400440532013001"),
        ),
        // Row 7: PEM private keys.
        f(
            "row 7: PRIVATE KEY",
            "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----".into(),
            Scrubs("[redacted:private_key]"),
        ),
        f(
            "row 7: RSA PRIVATE KEY",
            "k: -----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- !".into(),
            Scrubs("k: [redacted:private_key] !"),
        ),
        f(
            "row 7: EC PRIVATE KEY",
            "-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----".into(),
            Scrubs("[redacted:private_key]"),
        ),
        f(
            "row 7: OPENSSH PRIVATE KEY",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----".into(),
            Scrubs("[redacted:private_key]"),
        ),
        f(
            "row 7: block cut before its END line",
            "key -----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8w".into(),
            Scrubs("key [redacted:private_key]"),
        ),
        // Row 7: no false positives.
        f(
            "row 7: timestamps, durations, ports, ids, versions, statuses, byte counts",
            "at 2026-12-01 04:05:06 request 12345 to :5432 took 250ms, v1.2.3, HTTP 503, 1048576 bytes".into(),
            Scrubs("at 2026-12-01 04:05:06 request 12345 to :5432 took 250ms, v1.2.3, HTTP 503, 1048576 bytes"),
        ),
        // Found by the property tests: scrubbing twice changed the text.
        f(
            "props: phone touching a PEM block",
            "+1 (415) 555-0123-----BEGIN PRIVATE KEY-----".into(),
            Idempotent,
        ),
        f(
            "props: phone before a dot and a random token",
            "+1 (415) 555-0123.415-555-0123eyJhbGciOiJIUzI1NiJ9.eyJzdWIipassword".into(),
            Idempotent,
        ),
        f(
            "props: unclosed quote whose closing quote was redacted",
            "password=\\\"@postgres://u:p@h/dbpassword='\"".into(),
            Idempotent,
        ),
    ]
}

#[test]
fn every_finding_is_fixed() {
    let mut failures = Vec::new();
    for finding in findings() {
        let Finding { id, input, expect } = finding;
        let problem = match expect {
            Expect::Scrubs(expected) => {
                let got = scrub(&input);
                (got != expected).then(|| format!("expected {expected:?}, got {got:?}"))
            }
            Expect::StoredWithout(pieces) => {
                let stored = scrub_message(&input);
                let kept: Vec<&&str> = pieces.iter().filter(|p| stored.contains(**p)).collect();
                if stored.len() > MAX_MESSAGE_BYTES {
                    Some(format!("{} bytes stored", stored.len()))
                } else if !kept.is_empty() {
                    let tail =
                        &stored[stored.floor_char_boundary(stored.len().saturating_sub(160))..];
                    Some(format!("kept {kept:?}: …{tail}"))
                } else if input.len() > MAX_MESSAGE_BYTES
                    && !stored.ends_with(TRUNCATED)
                    && !stored.contains("[redacted")
                {
                    Some("cut without the marker".to_owned())
                } else {
                    None
                }
            }
            Expect::Idempotent => {
                let once = scrub(&input);
                let twice = scrub(&once);
                (once != twice).then(|| format!("once {once:?}, twice {twice:?}"))
            }
        };
        if let Some(problem) = problem {
            failures.push(format!("\n  {id}: {problem}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.concat());
}
