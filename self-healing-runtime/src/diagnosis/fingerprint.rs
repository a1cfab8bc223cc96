//! Fingerprints: one stable id for every failure of the same family.
//!
//! Messages are parameterised first (numbers, UUIDs, hex, emails, URLs, IPs and quoted values
//! replaced by placeholders, as Sentry does), so "user 42 not found" and "user 7 not found" share
//! a fingerprint. The hash is FNV-1a 64 over bytes: the same on every process, machine and release.

use std::fmt;

use super::ErrorClass;

/// The stable id of a family of failures: source × class × normalised message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

impl Fingerprint {
    /// The fingerprint of a failure of `class` at `source` with this message: the hash of
    /// `source`, `class` and [`normalize_message`]`(message)`, each followed by a zero byte but
    /// the last.
    ///
    /// Allocates nothing: the normalised message is hashed as it is produced, never built.
    pub fn new(source: &str, class: &ErrorClass, message: &str) -> Self {
        let mut h = Fnv::new();
        h.write(source.as_bytes());
        h.write(&[0]);
        h.write(class.as_str().as_bytes());
        h.write(&[0]);
        normalize_into(message, &mut h);
        Fingerprint(h.0)
    }

    /// 16 lower-case hex digits, as stored and shown.
    pub fn to_hex(self) -> String {
        format!("{:016x}", self.0)
    }

    /// Parses what [`to_hex`](Self::to_hex) printed.
    pub fn from_hex(s: &str) -> Option<Self> {
        u64::from_str_radix(s, 16).ok().map(Fingerprint)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({:016x})", self.0)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

struct Fnv(u64);

impl Fnv {
    const fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Where the normaliser writes: a `String` ([`normalize_message`]) or the hasher
/// ([`Fingerprint::new`]), which then sees exactly the bytes the `String` would hold.
trait Sink {
    fn push_str(&mut self, s: &str);
}

impl Sink for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }
}

impl Sink for Fnv {
    fn push_str(&mut self, s: &str) {
        self.write(s.as_bytes());
    }
}

/// Replaces the variable parts of a message with placeholders: `<uuid>`, `<email>`, `<url>`,
/// `<ip>`, `<hex>`, `<num>` and `<str>` (quoted values).
///
/// ```
/// use self_healing_runtime::diagnosis::normalize_message;
/// assert_eq!(
///     normalize_message("user 42 (bob@example.com) not found in 'tenant-a'"),
///     "user <num> (<email>) not found in <str>",
/// );
/// ```
pub fn normalize_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    normalize_into(message, &mut out);
    out
}

/// [`normalize_message`], written into `out` piece by piece.
fn normalize_into(message: &str, out: &mut impl Sink) {
    let bytes = message.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if is_quote(b) {
            // A quoted value, up to the matching quote on the same line.
            if let Some(len) = closing_quote(&bytes[i + 1..], b) {
                out.push_str("<str>");
                i += len + 2;
                continue;
            }
            // Quotes and delimiters are ASCII: one byte is a whole char.
            out.push_str(&message[i..i + 1]);
            i += 1;
        } else if is_delimiter(b) {
            out.push_str(&message[i..i + 1]);
            i += 1;
        } else {
            let end = bytes[i..]
                .iter()
                .position(|&c| is_delimiter(c) || is_quote(c))
                .map_or(bytes.len(), |p| i + p);
            normalize_word(&message[i..end], out);
            i = end;
        }
    }
}

fn is_quote(b: u8) -> bool {
    matches!(b, b'\'' | b'"' | b'`')
}

/// Characters that end a word (all ASCII, so slicing at them keeps UTF-8 intact).
fn is_delimiter(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b',' | b';' | b'(' | b')' | b'[' | b']' | b'<' | b'>' | b'{' | b'}'
        )
}

fn closing_quote(rest: &[u8], quote: u8) -> Option<usize> {
    rest.iter()
        .position(|&c| c == quote || c == b'\n')
        .filter(|&end| rest[end] == quote)
}

/// Writes one word, replaced whole when it is an URL, email, UUID, IP, hex or number, otherwise
/// with the numbers inside it replaced (`id=42` becomes `id=<num>`).
fn normalize_word(word: &str, out: &mut impl Sink) {
    let core = trim_trailing_punct(word);
    // Most words are plain words: with no digit, '@' or '/', and not a UUID's length, no
    // placeholder can apply (every check below needs one of those), so they are copied as is.
    if core.len() != 36
        && word
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        out.push_str(word);
        return;
    }
    let tail = &word[core.len()..];
    let whole = if core.contains("://") {
        Some("<url>")
    } else if is_email(core) {
        Some("<email>")
    } else if is_uuid(core) {
        Some("<uuid>")
    } else if is_ipv4(core) {
        Some("<ip>")
    } else if is_hex(core) {
        Some("<hex>")
    } else if is_number(core) {
        Some("<num>")
    } else {
        None
    };
    match whole {
        Some(token) => out.push_str(token),
        None => replace_inner_numbers(core, out),
    }
    out.push_str(tail);
}

fn replace_inner_numbers(word: &str, out: &mut impl Sink) {
    let b = word.as_bytes();
    let mut copied = 0;
    let mut k = 0;
    while k < b.len() {
        let boundary = k == 0 || !b[k - 1].is_ascii_alphanumeric();
        if boundary && b[k].is_ascii_digit() {
            let run = b[k..]
                .iter()
                .position(|c| !(c.is_ascii_digit() || *c == b'.'))
                .map_or(b.len() - k, |p| p);
            let run = if b[k + run - 1] == b'.' { run - 1 } else { run };
            out.push_str(&word[copied..k]);
            out.push_str("<num>");
            k += run;
            copied = k;
        } else {
            k += 1;
        }
    }
    out.push_str(&word[copied..]);
}

fn is_hex(s: &str) -> bool {
    if let Some(digits) = s.strip_prefix("0x") {
        return !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_hexdigit());
    }
    s.len() >= 8
        && s.bytes().all(|c| c.is_ascii_hexdigit())
        && s.bytes().any(|c| c.is_ascii_digit())
}

/// `42`, `1.5`, `250ms`: digits with at most one dot, and a unit of at most two letters.
fn is_number(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let digits = b
        .iter()
        .position(|c| !(c.is_ascii_digit() || *c == b'.'))
        .unwrap_or(b.len());
    let unit = &b[digits..];
    unit.len() <= 2 && unit.iter().all(u8::is_ascii_alphabetic)
}

fn trim_trailing_punct(token: &str) -> &str {
    token.trim_end_matches(['.', ':', '-'])
}

fn is_email(word: &str) -> bool {
    if !word.as_bytes().contains(&b'@') {
        return false;
    }
    let word = word.trim_end_matches(['.', ':']);
    match word.split_once('@') {
        Some((user, domain)) => {
            !user.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        }
        None => false,
    }
}

fn is_uuid(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `10.0.0.7` or `10.0.0.7:5432`.
fn is_ipv4(token: &str) -> bool {
    if !token.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let host = token.split(':').next().unwrap_or(token);
    let mut parts = 0;
    for part in host.split('.') {
        parts += 1;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    parts == 4
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The fingerprint as it was computed before hashing streamed: over the normalised message
    /// built in full. Streaming must give exactly this, or stored statistics lose their keys.
    fn reference(source: &str, class: &ErrorClass, message: &str) -> Fingerprint {
        let mut h = Fnv::new();
        h.write(source.as_bytes());
        h.write(&[0]);
        h.write(class.as_str().as_bytes());
        h.write(&[0]);
        h.write(normalize_message(message).as_bytes());
        Fingerprint(h.0)
    }

    /// Messages that exercise every branch of the normaliser.
    const CORPUS: &[&str] = &[
        "",
        " ",
        "deadlock detected on row 42",
        "user 42 (bob@example.com) not found in 'tenant-a'",
        "connection to 10.0.0.7:5432 refused",
        "row 550e8400-e29b-41d4-a716-446655440000 locked",
        "GET https://api.example.com/v1/x?id=3 failed",
        "timed out after 250ms",
        "bad pointer 0xdeadbeef",
        "commit a1b2c3d4e5 missing",
        "key \"tenant-a\" exists",
        "retry in 1.5 s",
        "error 42.",
        "id=42, attempt=3; next [7] {x: 9} <y>",
        "unterminated 'quote and `another",
        "quote 'across\nlines' here",
        "`sql` \"x\" 'y' ''",
        "v1.2.3 on node-17:8080, 3.14159 seconds",
        "trailing punct: 12-. abc:",
        "HTTP 503 Service Unavailable; Retry-After: 2",
        "Ünïcödé 42 ✓ 名前 'ß' 0x1F",
        "tabs\tand\r\nnewlines 5\n",
        "@ user@ @domain a@b.c a@b. a@.c",
        "1.2.3.4.5 256.1.1.1 1.2.3",
    ];

    #[test]
    fn streaming_hash_equals_hashing_the_normalised_message() {
        let classes = [
            ErrorClass::Transient,
            ErrorClass::RateLimited { retry_after: None },
            ErrorClass::Bug,
        ];
        for message in CORPUS {
            for class in &classes {
                assert_eq!(
                    Fingerprint::new("createContact", class, message),
                    reference("createContact", class, message),
                    "message: {message:?}"
                );
            }
        }
    }

    proptest! {
        /// Streaming hashing is the old hash for any message at all.
        #[test]
        fn streaming_hash_equals_the_reference(source in ".{0,16}", message in any::<String>()) {
            prop_assert_eq!(
                Fingerprint::new(&source, &ErrorClass::Timeout, &message),
                reference(&source, &ErrorClass::Timeout, &message)
            );
        }

        /// The same, on messages made of the pieces the normaliser looks for.
        #[test]
        fn streaming_hash_equals_the_reference_on_structured_messages(
            message in r#"([a-z]{1,6}|[0-9]{1,4}|0x[0-9a-f]{1,8}|[0-9.]{1,12}|[ ,;:.()\[\]<>{}'"`@/=-]|://|\n){0,24}"#,
        ) {
            prop_assert_eq!(
                Fingerprint::new("src", &ErrorClass::Permanent, &message),
                reference("src", &ErrorClass::Permanent, &message)
            );
        }
    }

    proptest! {
        /// The same message with different ids, numbers, emails or quoted values is one family.
        #[test]
        fn ids_never_split_a_family(
            id in 0u64..u64::MAX,
            other in 0u64..u64::MAX,
            user in "[a-z]{1,8}",
            quoted in "[a-zA-Z0-9 _-]{0,12}",
        ) {
            let message = |n: u64, q: &str| format!("order {n} for {user}@example.com failed: key '{q}' locked");
            let a = Fingerprint::new("saveOrder", &ErrorClass::Transient, &message(id, &quoted));
            let b = Fingerprint::new("saveOrder", &ErrorClass::Transient, &message(other, "x"));
            prop_assert_eq!(a, b);
        }

        /// Different classes or sources never share a fingerprint for the same message.
        #[test]
        fn classes_and_sources_separate_families(message in ".{0,64}") {
            let a = Fingerprint::new("saveOrder", &ErrorClass::Transient, &message);
            let b = Fingerprint::new("saveOrder", &ErrorClass::Timeout, &message);
            let c = Fingerprint::new("loadOrder", &ErrorClass::Transient, &message);
            prop_assert_ne!(a, b);
            prop_assert_ne!(a, c);
        }

        /// Normalisation never panics and is idempotent.
        #[test]
        fn normalisation_is_total_and_idempotent(message in any::<String>()) {
            let once = normalize_message(&message);
            prop_assert_eq!(normalize_message(&once), once);
        }
    }

    #[test]
    fn replaces_variable_parts() {
        let cases = [
            (
                "connection to 10.0.0.7:5432 refused",
                "connection to <ip> refused",
            ),
            (
                "row 550e8400-e29b-41d4-a716-446655440000 locked",
                "row <uuid> locked",
            ),
            (
                "GET https://api.example.com/v1/x?id=3 failed",
                "GET <url> failed",
            ),
            ("timed out after 250ms", "timed out after <num>"),
            ("bad pointer 0xdeadbeef", "bad pointer <hex>"),
            ("commit a1b2c3d4e5 missing", "commit <hex> missing"),
            ("key \"tenant-a\" exists", "key <str> exists"),
            ("retry in 1.5 s", "retry in <num> s"),
            ("error 42.", "error <num>."),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_message(input), expected, "input: {input}");
        }
    }

    #[test]
    fn ids_do_not_change_the_fingerprint_but_classes_do() {
        let a = Fingerprint::new("getUser", &ErrorClass::Permanent, "user 42 not found");
        let b = Fingerprint::new("getUser", &ErrorClass::Permanent, "user 7 not found");
        let c = Fingerprint::new("getUser", &ErrorClass::Transient, "user 7 not found");
        assert_eq!(a, b);
        assert_ne!(b, c);
    }

    #[test]
    fn fingerprint_is_stable_across_releases() {
        // Regression: the hash must never change, or stored statistics lose their keys (and
        // instances of different versions sharing one store stop agreeing).
        let f = Fingerprint::new(
            "createContact",
            &ErrorClass::Transient,
            "deadlock detected on row 42",
        );
        assert_eq!(f.to_hex(), "c1e1a7d3578ee74f");
        assert_eq!(Fingerprint::from_hex(&f.to_hex()), Some(f));
    }
}
