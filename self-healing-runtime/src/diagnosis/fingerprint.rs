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
    /// The fingerprint of a failure of `class` at `source` with this message.
    pub fn new(source: &str, class: &ErrorClass, message: &str) -> Self {
        let mut h = Fnv::new();
        h.write(source.as_bytes());
        h.write(&[0]);
        h.write(class.as_str().as_bytes());
        h.write(&[0]);
        h.write(normalize_message(message).as_bytes());
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
    let mut out = String::with_capacity(message.len().min(512));
    let mut rest = message;
    while let Some(c) = rest.chars().next() {
        if let Some((token, len)) = placeholder_at(rest) {
            out.push_str(token);
            rest = &rest[len..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The placeholder for a variable part starting at `s`, and its length in bytes.
fn placeholder_at(s: &str) -> Option<(&'static str, usize)> {
    let b = s.as_bytes();
    let first = b[0];
    if first == b'\'' || first == b'"' || first == b'`' {
        // A quoted value: up to the matching quote on the same line.
        return s[1..]
            .find(|c: char| c as u32 == u32::from(first) || c == '\n')
            .filter(|&end| s.as_bytes()[1 + end] == first)
            .map(|end| ("<str>", end + 2));
    }
    let word_len = s
        .find(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    ',' | ';' | '(' | ')' | '[' | ']' | '<' | '>' | '"' | '\''
                )
        })
        .unwrap_or(s.len());
    let word = &s[..word_len];
    if word.contains("://") {
        return Some(("<url>", word_len));
    }
    if is_email(word) {
        return Some(("<email>", word_len));
    }
    let token_len = b
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b':' | b'_')))
        .unwrap_or(b.len());
    let token = trim_trailing_punct(&s[..token_len]);
    if is_uuid(token) {
        return Some(("<uuid>", token.len()));
    }
    if is_ipv4(token) {
        return Some(("<ip>", token.len()));
    }
    if first.is_ascii_digit() || first == b'0' {
        if token.starts_with("0x")
            && token.len() > 2
            && token[2..].bytes().all(|c| c.is_ascii_hexdigit())
        {
            return Some(("<hex>", token.len()));
        }
    }
    let alnum_len = b
        .iter()
        .position(|c| !c.is_ascii_alphanumeric())
        .unwrap_or(b.len());
    let alnum = &s[..alnum_len];
    if alnum_len >= 8
        && alnum.bytes().all(|c| c.is_ascii_hexdigit())
        && alnum.bytes().any(|c| c.is_ascii_digit())
    {
        return Some(("<hex>", alnum_len));
    }
    if first.is_ascii_digit() {
        let digits = b
            .iter()
            .position(|c| !(c.is_ascii_digit() || *c == b'.'))
            .unwrap_or(b.len());
        let digits = if b[digits - 1] == b'.' {
            digits - 1
        } else {
            digits
        };
        // Units glued to numbers ("250ms", "3s") stay one placeholder.
        let unit = b[digits..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic())
            .count();
        if unit <= 2 {
            return Some(("<num>", digits + unit));
        }
        return Some(("<num>", digits));
    }
    None
}

fn trim_trailing_punct(token: &str) -> &str {
    token.trim_end_matches(['.', ':', '-'])
}

fn is_email(word: &str) -> bool {
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

fn is_ipv4(token: &str) -> bool {
    let host = token.split(':').next().unwrap_or(token);
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

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
