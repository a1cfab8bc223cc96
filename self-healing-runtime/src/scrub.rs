//! Scrubbing: secrets and personal data are replaced before a message is stored, shown or sent.
//!
//! Applied to every event message. Word-based and allocation-light: each whitespace-separated
//! word is checked against the shapes of secrets we know.

/// Replaces secrets and personal data in `message` with `[redacted:<kind>]` markers.
///
/// ```
/// use self_healing_runtime::scrub::scrub;
/// assert_eq!(
///     scrub("login failed for bob@example.com with password=hunter2"),
///     "login failed for [redacted:email] with password=[redacted]",
/// );
/// ```
pub fn scrub(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut redact_next = false;
    for (i, piece) in message.split_inclusive(char::is_whitespace).enumerate() {
        let word = piece.trim_end_matches(char::is_whitespace);
        let space = &piece[word.len()..];
        if redact_next && !word.is_empty() {
            out.push_str("[redacted]");
            out.push_str(space);
            redact_next = false;
            continue;
        }
        let lower = word.to_ascii_lowercase();
        if i > 0 && lower == "bearer" || lower == "bearer" || lower == "basic" {
            redact_next = true;
            out.push_str(piece);
            continue;
        }
        out.push_str(&scrub_word(word));
        out.push_str(space);
    }
    out
}

const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "token",
    "secret",
    "api_key",
    "apikey",
    "api-key",
    "authorization",
    "auth",
    "session_id",
    "sessionid",
    "session",
    "credit_card",
    "card",
    "ssn",
    "private_key",
    "access_key",
    "client_secret",
    "cookie",
];

fn scrub_word(word: &str) -> String {
    // key=value and key:value pairs with a secret-looking key.
    for sep in ['=', ':'] {
        if let Some((key, value)) = word.split_once(sep) {
            let k = key
                .trim_start_matches(|c: char| !c.is_alphanumeric())
                .to_ascii_lowercase();
            if !value.is_empty()
                && !value.starts_with("//")
                && SECRET_KEYS.iter().any(|s| k.ends_with(s))
            {
                let trail: String = value
                    .chars()
                    .rev()
                    .take_while(|c| matches!(c, ',' | ';' | ')' | '"' | '\''))
                    .collect();
                return format!(
                    "{key}{sep}[redacted]{}",
                    trail.chars().rev().collect::<String>()
                );
            }
        }
    }
    // user:password@ in URLs.
    if let Some(scheme_end) = word.find("://") {
        let rest = &word[scheme_end + 3..];
        if let Some(at) = rest.find('@') {
            if let Some(colon) = rest[..at].find(':') {
                return format!(
                    "{}{}:[redacted]{}",
                    &word[..scheme_end + 3],
                    &rest[..colon],
                    &rest[at..]
                );
            }
        }
        return word.to_owned();
    }
    let core = word
        .trim_matches(|c: char| matches!(c, ',' | ';' | '(' | ')' | '"' | '\'' | '.' | '<' | '>'));
    if core.is_empty() {
        return word.to_owned();
    }
    let kind = if is_email(core) {
        Some("email")
    } else if is_jwt(core) {
        Some("jwt")
    } else if is_api_key(core) {
        Some("key")
    } else if is_card(core) {
        Some("card")
    } else if is_random_token(core) {
        Some("token")
    } else {
        None
    };
    match kind {
        Some(kind) => word.replacen(core, &format!("[redacted:{kind}]"), 1),
        None => word.to_owned(),
    }
}

fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((user, domain)) => {
            !user.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

fn is_jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && s.starts_with("eyJ")
        && parts.iter().all(|p| {
            p.len() >= 4
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn is_api_key(s: &str) -> bool {
    let prefixed = [
        "sk-",
        "sk_",
        "pk_",
        "rk_",
        "xoxb-",
        "xoxp-",
        "ghp_",
        "gho_",
        "github_pat_",
        "glpat-",
    ]
    .iter()
    .any(|p| s.starts_with(p) && s.len() >= p.len() + 8);
    let aws = (s.starts_with("AKIA") || s.starts_with("ASIA"))
        && s.len() == 20
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    prefixed || aws
}

fn is_card(s: &str) -> bool {
    let digits: Vec<u32> = s
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .map(|c| c.to_digit(10))
        .collect::<Option<_>>()
        .unwrap_or_default();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    // Luhn: every second digit from the right doubled.
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

fn is_random_token(s: &str) -> bool {
    if s.len() < 32
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/' | b'='))
    {
        return false;
    }
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let upper = s.bytes().filter(u8::is_ascii_uppercase).count();
    let lower = s.bytes().filter(u8::is_ascii_lowercase).count();
    // Mixed classes: random material, not a long word or a path.
    digits > 0
        && (upper > 0 || lower > 0)
        && [digits, upper, lower].iter().filter(|n| **n > 0).count() >= 2
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn redacts_known_shapes() {
        let cases = [
            (
                "Authorization: Bearer abc.def.ghi",
                "Authorization: Bearer [redacted]",
            ),
            (
                "postgres://app:s3cret@db:5432/crm refused",
                "postgres://app:[redacted]@db:5432/crm refused",
            ),
            ("key sk-live-1234567890abcdef", "key [redacted:key]"),
            ("token=abc123", "token=[redacted]"),
            ("card 4111 1111 1111 1111", "card 4111 1111 1111 1111"),
            (
                "card 4111111111111111 declined",
                "card [redacted:card] declined",
            ),
            ("aws AKIAIOSFODNN7EXAMPLE", "aws [redacted:key]"),
            ("user 42 not found", "user 42 not found"),
        ];
        for (input, expected) in cases {
            assert_eq!(scrub(input), expected, "input: {input}");
        }
    }

    #[test]
    fn idempotent_on_its_own_output() {
        let once = scrub("password=x bob@example.com eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl");
        assert_eq!(scrub(&once), once);
    }
}
