//! Property tests of scrubbing and fingerprinting: secrets of every known family, embedded at
//! random places in random text (straddling the message cap and the scrubber's window included),
//! never survive, even in part; the stored length is bounded; fingerprints never panic and do not
//! change when a message is scrubbed again.
//!
//! No wall-clock time is measured: the work bound shows as the bound on the output's length.

use proptest::prelude::*;
use self_healing_runtime::diagnosis::{ErrorClass, Fingerprint, MAX_MESSAGE_BYTES};
use self_healing_runtime::scrub::{TRUNCATED, WINDOW_BYTES, scrub, scrub_message};

/// A secret as it appears in a message, and the part of it that must not survive.
#[derive(Debug, Clone)]
struct Secret {
    text: String,
    core: String,
}

fn secret(text: String, core: &str) -> Secret {
    Secret {
        core: core.to_owned(),
        text,
    }
}

/// Random key material of `min..=max` characters, starting with a digit (key rules want one, as
/// real keys have).
fn material(min: usize, max: usize) -> impl Strategy<Value = String> {
    let rest = proptest::string::string_regex(&format!("[A-Za-z0-9]{{{},{}}}", min - 1, max - 1))
        .expect("a valid pattern");
    (0..10u8, rest).prop_map(|(d, rest)| format!("{d}{rest}"))
}

/// A card number passing the Luhn check, bare, spaced or dashed.
fn card() -> impl Strategy<Value = Secret> {
    (prop::collection::vec(0..10u32, 14), 0..3usize).prop_map(|(body, style)| {
        let mut digits = vec![4u32];
        digits.extend(body);
        // The check digit that makes the Luhn sum a multiple of ten.
        let sum: u32 = digits
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &d)| match (i % 2, d * 2) {
                (0, doubled) if doubled > 9 => doubled - 9,
                (0, doubled) => doubled,
                _ => d,
            })
            .sum();
        digits.push((10 - sum % 10) % 10);
        let bare: String = digits.iter().map(|d| char::from(b'0' + *d as u8)).collect();
        let text = match style {
            0 => bare,
            s => {
                let sep = if s == 1 { " " } else { "-" };
                let groups: Vec<&str> = (0..4).map(|g| &bare[4 * g..4 * g + 4]).collect();
                groups.join(sep)
            }
        };
        secret(text.clone(), &text)
    })
}

/// An IBAN with valid check digits, compact or in groups of four.
fn iban() -> impl Strategy<Value = Secret> {
    (
        prop::sample::select(vec![("DE", 18usize), ("FR", 23), ("NL", 14), ("ES", 20)]),
        prop::collection::vec(0..10u8, 23),
        any::<bool>(),
    )
        .prop_map(|((country, len), digits, grouped)| {
            let bban: String = digits[..len].iter().map(|d| char::from(b'0' + d)).collect();
            // Check digits: 98 - (bban, country as digits, "00") mod 97.
            let numeric: String = format!("{bban}{country}00")
                .chars()
                .map(|c| match c {
                    'A'..='Z' => (c as u32 - 'A' as u32 + 10).to_string(),
                    _ => c.to_string(),
                })
                .collect();
            let remainder = numeric
                .bytes()
                .fold(0u32, |r, b| (r * 10 + u32::from(b - b'0')) % 97);
            let compact = format!("{country}{:02}{bban}", 98 - remainder);
            let text = if grouped {
                compact
                    .as_bytes()
                    .chunks(4)
                    .map(|c| std::str::from_utf8(c).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                compact
            };
            secret(text.clone(), &text)
        })
}

/// A phone number in one of the shapes the issue lists.
fn phone() -> impl Strategy<Value = Secret> {
    (200..1000u32, 200..1000u32, 0..10000u32, 0..4usize).prop_map(
        |(area, exchange, line, style)| {
            let text = match style {
                0 => format!("+1 ({area}) {exchange}-{line:04}"),
                1 => format!("+1{area}{exchange}{line:04}"),
                2 => format!("{area}-{exchange}-{line:04}"),
                _ => format!("+44 20 {exchange}{} {line:04}", area % 10),
            };
            secret(text.clone(), &text)
        },
    )
}

/// A PEM private key, whole or cut before its END line.
fn pem() -> impl Strategy<Value = Secret> {
    (
        prop::sample::select(vec!["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "]),
        prop::collection::vec("[A-Za-z0-9+/]{16,64}", 1..4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(kind, lines, whole, escaped)| {
            let newline = if escaped { "\\n" } else { "\n" };
            let body = lines.join(newline);
            let mut text = format!("-----BEGIN {kind}PRIVATE KEY-----{newline}{body}");
            if whole {
                text.push_str(&format!("{newline}-----END {kind}PRIVATE KEY-----"));
            }
            secret(text, &body)
        })
}

/// Every family the scrubber knows, with random material.
fn any_secret() -> impl Strategy<Value = Secret> {
    prop_oneof![
        material(8, 20).prop_map(|pw| secret(format!("postgres://admin:{pw}@db:5432/crm"), &pw)),
        material(8, 20).prop_map(|pw| secret(format!("password={pw}"), &pw)),
        material(8, 20).prop_map(|pw| secret(format!("\"api_key\": \"{pw}\""), &pw)),
        material(20, 40).prop_map(|t| secret(format!("Authorization: Bearer {t}"), &t)),
        material(20, 40).prop_map(|k| {
            let key = format!("sk-proj-{k}");
            secret(key.clone(), &key)
        }),
        material(36, 36).prop_map(|k| {
            let key = format!("ghp_{k}");
            secret(key.clone(), &key)
        }),
        "[A-Z0-9]{16}".prop_map(|k| {
            let key = format!("AKIA{k}");
            secret(key.clone(), &key)
        }),
        (material(8, 30), material(16, 43)).prop_map(|(claims, sig)| {
            let jwt = format!("eyJhbGciOiJIUzI1NiJ9.eyJ{claims}.{sig}");
            secret(jwt.clone(), &jwt)
        }),
        (1..666u32, 1..100u32, 1..10000u32).prop_map(|(a, g, s)| {
            let ssn = format!("{a:03}-{g:02}-{s:04}");
            secret(ssn.clone(), &ssn)
        }),
        "[a-z]{4,10}\\.[a-z]{4,8}"
            .prop_map(|local| { secret(format!("{local}@example.com"), &format!("{local}@")) }),
        card(),
        iban(),
        phone(),
        pem(),
    ]
}

/// Text around a secret: no ASCII letters or digits, so it can neither join a secret nor
/// contain a piece of one by chance; non-ASCII characters exercise char boundaries.
fn filler(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "é", "ü", "ß", "名前", "✓", "€", " ", " ", " ", ", ", "; ", "(", ")", "—",
        ]),
        0..max,
    )
    .prop_map(|pieces| pieces.concat())
}

/// Fails when any `len`-character piece of `core` is in `out`.
fn no_piece_of(core: &str, out: &str, len: usize) -> Result<(), TestCaseError> {
    let chars: Vec<char> = core.chars().collect();
    for piece in chars.windows(len.min(chars.len())) {
        let piece: String = piece.iter().collect();
        prop_assert!(
            !out.contains(&piece),
            "`{}` of `{}` survived: {}",
            piece,
            core,
            out
        );
    }
    Ok(())
}

/// `secret` placed so that it starts `before` bytes ahead of `edge`, after copies of `unit` (and
/// spaces), and followed by `tail`.
fn straddling(secret: &str, edge: usize, before: usize, unit: &str, tail: &str) -> String {
    let start = edge - before;
    let mut text = String::with_capacity(start + secret.len() + tail.len() + 1);
    // Whole units only: half a unit would be a piece of text the test did not mean to write.
    while text.len() + unit.len() + 2 < start {
        text.push_str(unit);
        text.push(' ');
    }
    while text.len() + 1 < start {
        text.push(' ');
    }
    text.push(' ');
    text.push_str(secret);
    text.push(' ');
    text.push_str(tail);
    text
}

/// A JWT: 91 bytes that scrub to 14, so that text near the scrubber's window edge ends up
/// within the cap once the JWTs ahead of it are redacted.
const SHRINKS: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Anywhere in random text, a secret is redacted whole.
    #[test]
    fn embedded_secrets_never_survive(
        s in any_secret(),
        head in filler(40),
        tail in filler(40),
    ) {
        let out = scrub(&format!("{head} {} {tail}", s.text));
        no_piece_of(&s.core, &out, 5)?;
        prop_assert_eq!(scrub(&out), out);
    }

    /// Straddling the cap, a secret is redacted, not cut in half and stored.
    #[test]
    fn secrets_straddling_the_cap_never_survive(
        s in any_secret(),
        at in 0.0f64..1.0,
        head in filler(12),
        tail in filler(400),
    ) {
        let before = 1 + (at * (s.text.len() - 1) as f64) as usize;
        let message = straddling(&s.text, MAX_MESSAGE_BYTES, before, &head, &tail);
        let out = scrub_message(&message);
        prop_assert!(out.len() <= MAX_MESSAGE_BYTES);
        no_piece_of(&s.core, &out, 5)?;
    }

    /// Straddling the scrubber's window, where the raw text itself is cut: after JWTs that
    /// shrink to markers, so that what lies at the window's edge reaches the stored text.
    #[test]
    fn secrets_straddling_the_window_never_survive(
        s in any_secret(),
        at in 0.0f64..1.0,
        tail in filler(400),
    ) {
        let before = 1 + (at * (s.text.len() - 1) as f64) as usize;
        let message = straddling(&s.text, WINDOW_BYTES, before, SHRINKS, &tail);
        let out = scrub_message(&message);
        prop_assert!(out.len() <= MAX_MESSAGE_BYTES);
        prop_assert!(out.ends_with(TRUNCATED));
        no_piece_of(&s.core, &out, 5)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the input, however long: the stored message fits the cap, marker included, and
    /// scrubbing it again keeps it there.
    #[test]
    fn stored_messages_are_bounded(
        chars in prop::collection::vec(any::<char>(), 0..3 * WINDOW_BYTES),
        word in "[ a-z0-9=:]{1,12}",
        repeat in 0usize..2000,
    ) {
        let mut input: String = chars.into_iter().collect();
        input.push_str(&word.repeat(repeat));
        let once = scrub_message(&input);
        prop_assert!(once.len() <= MAX_MESSAGE_BYTES, "{}", once.len());
        if input.len() > MAX_MESSAGE_BYTES + TRUNCATED.len() && !once.contains("[redacted") {
            prop_assert!(once.ends_with(TRUNCATED));
        }
        let twice = scrub_message(&once);
        prop_assert!(twice.len() <= MAX_MESSAGE_BYTES);
        prop_assert!(twice.matches(TRUNCATED).count() <= 1);
    }

    /// Fingerprinting never panics on any text, and a message scrubbed again (notifications and
    /// the LLM analyzer do) keeps its fingerprint.
    #[test]
    fn fingerprints_survive_arbitrary_text_and_rescrubbing(
        source in any::<String>(),
        message in any::<String>(),
        s in any_secret(),
    ) {
        let class = ErrorClass::Transient;
        let _ = Fingerprint::new(&source, &class, &message);
        let with_secret = format!("{message} {} failed", s.text);
        let once = scrub(&with_secret);
        prop_assert_eq!(
            Fingerprint::new(&source, &class, &once),
            Fingerprint::new(&source, &class, &scrub(&once))
        );
        prop_assert_eq!(
            Fingerprint::new(&source, &class, &with_secret),
            Fingerprint::new(&source, &class, &with_secret)
        );
    }

    /// Scrubbing arbitrary unicode never panics and is idempotent.
    #[test]
    fn arbitrary_unicode_scrubs_idempotently(input in "\\PC{0,300}") {
        let once = scrub(&input);
        prop_assert_eq!(scrub(&once), once);
    }
}
