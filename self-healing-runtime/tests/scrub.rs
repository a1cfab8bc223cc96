//! The scrubbing corpus: what must be redacted, what must survive, and the two properties every
//! input has (idempotence, no panic).

use proptest::prelude::*;
use self_healing_runtime::scrub::{Scrubber, scrub};

/// (input, expected output). Test card numbers and keys are published examples, not secrets.
const CORPUS: &[(&str, &str)] = &[
    // Auth schemes and headers.
    (
        "Authorization: Bearer abc.def.ghi",
        "Authorization: Bearer [redacted]",
    ),
    (
        "authorization=Basic dXNlcjpwYXNz",
        "authorization=Basic [redacted]",
    ),
    (
        "request failed: bearer 9f8e7d6c5b4a rejected",
        "request failed: bearer [redacted] rejected",
    ),
    (
        "missing bearer token in request",
        "missing bearer token in request",
    ),
    ("X-Api-Key: 12345abcde", "X-Api-Key: [redacted]"),
    (
        "Cookie: sid=abc123; theme=dark\nnext line",
        "Cookie: [redacted]\nnext line",
    ),
    // API keys.
    ("key sk-live-1234567890abcdef", "key [redacted:key]"),
    (
        "openai: invalid key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t",
        "openai: invalid key [redacted:key]",
    ),
    (
        "stripe pk_test_51HxYz2eZvKYlo2C0aBcDeF",
        "stripe [redacted:key]",
    ),
    (
        "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc refused",
        "stripe [redacted:key] refused",
    ),
    (
        "push rejected for ghp_1234567890abcdefghijABCDEFGHIJ",
        "push rejected for [redacted:key]",
    ),
    (
        "slack xoxb-123456789012-abcdefghijkl failed",
        "slack [redacted:key] failed",
    ),
    (
        "aws AKIAIOSFODNN7EXAMPLE denied",
        "aws [redacted:key] denied",
    ),
    (
        "maps AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv quota",
        "maps [redacted:key] quota",
    ),
    // JWTs.
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U expired",
        "jwt [redacted:jwt] expired",
    ),
    // Passwords in URLs.
    (
        "postgres://app:s3cret@db:5432/crm refused",
        "postgres://app:[redacted]@db:5432/crm refused",
    ),
    (
        "redis://:hunter2@cache:6379/0 timed out",
        "redis://:[redacted]@cache:6379/0 timed out",
    ),
    (
        "mysql://root:p@ss:w0rd@10.0.0.5/app",
        "mysql://root:[redacted]@10.0.0.5/app",
    ),
    (
        "GET https://api.example.com:8443/v1/users?id=42 returned 503",
        "GET https://api.example.com:8443/v1/users?id=42 returned 503",
    ),
    // key=value pairs.
    ("token=abc123", "token=[redacted]"),
    ("password=hunter2", "password=[redacted]"),
    ("secret = hunter2 rejected", "secret = [redacted] rejected"),
    (
        "GET /callback?code=xyz&access_token=abc.def&state=1",
        "GET /callback?code=xyz&access_token=[redacted]&state=1",
    ),
    ("PGPASSWORD=hunter2 psql", "PGPASSWORD=[redacted] psql"),
    (
        "Server=db;User Id=app;Password=Sup3r!;Database=crm",
        "Server=db;User Id=app;Password=[redacted];Database=crm",
    ),
    ("session_id: 6f1c2a", "session_id: [redacted]"),
    ("ssn=078-05-1120", "ssn=[redacted]"),
    // JSON-ish.
    (
        r#"{"user":"bob","password":"hunter2"}"#,
        r#"{"user":"bob","password":"[redacted]"}"#,
    ),
    (
        r#"{"api_key": "abc def", "n": 1}"#,
        r#"{"api_key": "[redacted]", "n": 1}"#,
    ),
    (r#"{'secret': 'x\'y'}"#, r#"{'secret': '[redacted]'}"#),
    (
        r#"body {\"credit_card\":\"4111\",\"amount\":5}"#,
        r#"body {\"credit_card\":\"[redacted]\",\"amount\":5}"#,
    ),
    (r#""pin": 1234"#, r#""pin": [redacted]"#),
    // Emails.
    (
        "user bob.smith+crm@example.co.uk not found",
        "user [redacted:email] not found",
    ),
    (
        "contact <alice@example.com>.",
        "contact <[redacted:email]>.",
    ),
    // Card numbers (Luhn-checked).
    (
        "card 4111111111111111 declined",
        "card [redacted:card] declined",
    ),
    (
        "card 4111 1111 1111 1111 declined",
        "card [redacted:card] declined",
    ),
    ("card 5555-5555-5555-4444", "card [redacted:card]"),
    ("amex 3782 822463 10005", "amex [redacted:card]"),
    (
        "order 4111111111111112 failed",
        "order 4111111111111112 failed",
    ),
    (
        "timestamp 1700000000000 skew",
        "timestamp 1700000000000 skew",
    ),
    // SSNs.
    ("ssn 078-05-1120 on file", "ssn [redacted:ssn] on file"),
    // Long random-looking strings.
    (
        "aws secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws secret [redacted:token]",
    ),
    (
        "sig 3f786850e387550fdab836ed7e6dc881de23001b mismatch",
        "sig [redacted:token] mismatch",
    ),
    // Phone numbers (security issue, row 7).
    (
        "sms to +1 (415) 555-0123 failed",
        "sms to [redacted:phone] failed",
    ),
    (
        "sms to +14155550123 failed",
        "sms to [redacted:phone] failed",
    ),
    ("call 415-555-0123 busy", "call [redacted:phone] busy"),
    ("call (415) 555-0123 busy", "call [redacted:phone] busy"),
    ("call 1-415-555-0123.", "call [redacted:phone]."),
    (
        "uk +44 20 7946 0958: unreachable",
        "uk [redacted:phone]: unreachable",
    ),
    (
        r#"{"phone":"+14155550123"}"#,
        r#"{"phone":"[redacted:phone]"}"#,
    ),
    // IBANs (mod-97-checked).
    (
        "sepa to GB82 WEST 1234 5698 7654 32 refused",
        "sepa to [redacted:iban] refused",
    ),
    (
        "sepa to DE89370400440532013000 refused",
        "sepa to [redacted:iban] refused",
    ),
    ("iban=NL91ABNA0417164300", "iban=[redacted:iban]"),
    // PEM private keys, whole or cut before their END line.
    (
        "bad key -----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7\n-----END PRIVATE KEY----- in config",
        "bad key [redacted:private_key] in config",
    ),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7Zq\n-----END RSA PRIVATE KEY-----",
        "[redacted:private_key]",
    ),
    (
        "ec: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3\n-----END EC PRIVATE KEY-----",
        "ec: [redacted:private_key]",
    ),
    (
        "ssh -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\n-----END OPENSSH PRIVATE KEY-----",
        "ssh [redacted:private_key]",
    ),
    (
        "cut short: -----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7\nAgEAAkEA",
        "cut short: [redacted:private_key]",
    ),
    (
        r#"{"private_key": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"}"#,
        r#"{"private_key": "[redacted]"}"#,
    ),
    (
        "private_key: -----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBg\n-----END PRIVATE KEY-----",
        "private_key: [redacted:private_key]",
    ),
    // A quoted secret the text ends inside, and a JWT cut before its signature.
    (
        r#"{"password": "correct horse batt"#,
        r#"{"password": "[redacted]"#,
    ),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3OD",
        "jwt [redacted:jwt]",
    ),
    // What must survive.
    (
        "job at 2026-12-01 04:05:06 took 250ms (timeout 30s)",
        "job at 2026-12-01 04:05:06 took 250ms (timeout 30s)",
    ),
    (
        "at 2026-12-01T04:05:06+01:00 port 5432 closed",
        "at 2026-12-01T04:05:06+01:00 port 5432 closed",
    ),
    (
        "request 12345 got HTTP 503 after 1048576 bytes",
        "request 12345 got HTTP 503 after 1048576 bytes",
    ),
    (
        "upgrade 1.2.3 -> 10.20.300 failed; v2.10.4 required",
        "upgrade 1.2.3 -> 10.20.300 failed; v2.10.4 required",
    ),
    (
        "counter +12345 then +1234567 rows; offset -4155550123",
        "counter +12345 then +1234567 rows; offset -4155550123",
    ),
    (
        "value +2147483647 overflows; offset +3600 seconds",
        "value +2147483647 overflows; offset +3600 seconds",
    ),
    (
        "order 415-555-01234 and 4155550123 and id 415-555-0123-7",
        "order 415-555-01234 and 4155550123 and id 415-555-0123-7",
    ),
    (
        "listen 0.0.0.0:8080 and 192.168.100.200 up 3.1415926535",
        "listen 0.0.0.0:8080 and 192.168.100.200 up 3.1415926535",
    ),
    (
        "ref GB82WEST12345698765433 and DE00123456789012345678 unknown",
        "ref GB82WEST12345698765433 and DE00123456789012345678 unknown",
    ),
    (
        "cert -----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "cert -----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    ),
    ("user 42 not found", "user 42 not found"),
    (
        "request 550e8400-e29b-41d4-a716-446655440000 timed out",
        "request 550e8400-e29b-41d4-a716-446655440000 timed out",
    ),
    (
        "duplicate key value violates unique constraint \"pk_users_email_key\"",
        "duplicate key value violates unique constraint \"pk_users_email_key\"",
    ),
    (
        "max_tokens=4096 exceeds limit, prompt_tokens: 5000",
        "max_tokens=4096 exceeds limit, prompt_tokens: 5000",
    ),
    ("token_type=bearer", "token_type=bearer"),
    (
        "called getUserProfileSettingsById in self_healing_runtime_queue_worker",
        "called getUserProfileSettingsById in self_healing_runtime_queue_worker",
    ),
    (
        "error in auth::token::refresh: expired",
        "error in auth::token::refresh: expired",
    ),
    (
        "connect ECONNREFUSED 127.0.0.1:5432",
        "connect ECONNREFUSED 127.0.0.1:5432",
    ),
    // Already scrubbed text stays as it is.
    (
        "password=[redacted] for [redacted:email]",
        "password=[redacted] for [redacted:email]",
    ),
    ("", ""),
    (
        "unicode ✓ café password=naïve",
        "unicode ✓ café password=[redacted]",
    ),
];

#[test]
fn corpus() {
    assert!(CORPUS.len() >= 40, "the issue asks for at least 40 cases");
    let mut failures = Vec::new();
    for (input, expected) in CORPUS {
        let got = scrub(input);
        if got != *expected {
            failures.push(format!(
                "\n  input:    {input}\n  expected: {expected}\n  got:      {got}"
            ));
        }
        let again = scrub(&got);
        if again != got {
            failures.push(format!("\n  not idempotent: {input}\n  twice:    {again}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:{}",
        failures.len(),
        failures.join("")
    );
}

#[test]
fn custom_patterns_and_keys() {
    let scrubber = Scrubber::new()
        .with_pattern("customer", r"\bCUST-[0-9]{6}\b")
        .unwrap()
        .with_pattern(
            "iban",
            r"\b(?:IBAN )?(?P<secret>[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30})\b",
        )
        .unwrap()
        .with_key("passkey");
    assert_eq!(
        scrubber.scrub("CUST-123456 paid from IBAN DE89370400440532013000, passkey=x"),
        "[redacted:customer] paid from IBAN [redacted:iban], passkey=[redacted]",
    );
    // The built-in rules still apply.
    assert_eq!(scrubber.scrub("bob@example.com"), "[redacted:email]");
}

/// Pieces that look like secrets, separators, and noise: random text rarely contains secrets, so
/// the property test builds inputs from these.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("password".to_owned()),
        Just("token".to_owned()),
        Just("api_key".to_owned()),
        Just("Cookie".to_owned()),
        Just("Bearer ".to_owned()),
        Just("basic ".to_owned()),
        Just("=".to_owned()),
        Just(": ".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("\\\"".to_owned()),
        Just("@".to_owned()),
        Just("://".to_owned()),
        Just("[redacted]".to_owned()),
        Just("[redacted:".to_owned()),
        Just("]".to_owned()),
        Just("sk-".to_owned()),
        Just("eyJ".to_owned()),
        Just("AKIA".to_owned()),
        Just("4111 1111 1111 1111".to_owned()),
        Just("4111111111111111".to_owned()),
        Just("078-05-1120".to_owned()),
        Just("bob@example.com".to_owned()),
        Just("postgres://u:p@h/db".to_owned()),
        Just("+1 (415) 555-0123".to_owned()),
        Just("+14155550123".to_owned()),
        Just("415-555-0123".to_owned()),
        Just("+44 20 7946 0958".to_owned()),
        Just("GB82 WEST 1234 5698 7654 32".to_owned()),
        Just("DE89370400440532013000".to_owned()),
        Just("-----BEGIN PRIVATE KEY-----".to_owned()),
        Just("-----BEGIN RSA PRIVATE KEY-----".to_owned()),
        Just("-----END PRIVATE KEY-----".to_owned()),
        Just("\\n".to_owned()),
        Just("\n".to_owned()),
        Just("eyJhbGciOiJIUzI1NiJ9.eyJzdWIi".to_owned()),
        Just("+".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just(" ".to_owned()),
        Just(".".to_owned()),
        Just("-".to_owned()),
        "[a-zA-Z0-9+/=_-]{1,40}",
        "[ \t\n,;&?]{1,3}",
        "[0-9]{1,20}",
        any::<char>().prop_map(String::from),
    ]
}

fn message() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn scrubbing_is_idempotent(input in message()) {
        let once = scrub(&input);
        prop_assert_eq!(scrub(&once), once.clone(), "input: {:?}", input);
    }

    #[test]
    fn scrubbing_never_panics_on_arbitrary_input(input in any::<String>()) {
        let once = scrub(&input);
        prop_assert_eq!(scrub(&once), once);
    }

    #[test]
    fn what_was_redacted_is_gone(secret in "[A-Za-z0-9]{8,20}") {
        let scrubbed = scrub(&format!("login failed: password={secret}"));
        prop_assert!(!scrubbed.contains(&secret), "{}", scrubbed);
    }
}
