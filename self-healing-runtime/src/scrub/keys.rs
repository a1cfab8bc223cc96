//! Which key names hold secrets (`password=…`, `"api_key": …`, `X-Auth-Token: …`).

/// Words that make a key secret wherever they appear in its name (compared glued: lower case,
/// without separators, so `api_key`, `apiKey`, `X-Api-Key` and `APIKEY` all contain `apikey`).
const CONTAINED: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "passcode",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "sessionid",
    "credential",
    "creditcard",
    "cardnumber",
    "authorization",
    "cookie",
    "signature",
];

/// Words that make a key secret when they are a whole part of its name (`db_pwd`, `x-auth`,
/// `user.ssn`), but not inside another word (`spin`, `author`).
const PARTS: &[&str] = &[
    "pwd", "pass", "auth", "session", "sid", "ssn", "cvv", "cvc", "pin", "jwt", "sig", "otp",
    "bearer",
];

/// Last parts that describe a secret rather than hold it: `token_type`, `password_length`,
/// `secret_name`, `session_ttl`.
const ABOUT: &[&str] = &[
    "type",
    "count",
    "limit",
    "length",
    "len",
    "size",
    "ttl",
    "timeout",
    "expiry",
    "expires",
    "expiration",
    "at",
    "in",
    "url",
    "uri",
    "endpoint",
    "path",
    "file",
    "name",
    "policy",
    "format",
    "version",
    "algorithm",
    "alg",
];

/// The parts of a key name, lower case: split at `_`, `-`, `.` and lower-to-upper case changes.
fn parts(key: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in key.chars() {
        if matches!(c, '_' | '-' | '.') {
            parts.push(std::mem::take(&mut current));
            previous_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && previous_lower {
            parts.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c.to_ascii_lowercase());
    }
    parts.push(current);
    parts.retain(|p| !p.is_empty());
    parts
}

/// A key name lower-cased without its separators.
pub(super) fn glue(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether `glued` contains `word` somewhere other than in `tokens`/`tokenizer` (counts and
/// tools, not credentials).
fn contains_word(glued: &str, word: &str) -> bool {
    glued.match_indices(word).any(|(i, _)| {
        let rest = &glued[i + word.len()..];
        !(word == "token" && (rest.starts_with('s') || rest.starts_with("iz")))
    })
}

/// Whether values of `key` are secret.
pub(super) fn is_sensitive(key: &str, extra: &[String]) -> bool {
    let glued = glue(key);
    let parts = parts(key);
    let part_is_secret = |p: &str| {
        PARTS.contains(&p)
            || CONTAINED.iter().any(|w| contains_word(p, w))
            || extra.iter().any(|w| p.contains(w.as_str()))
    };
    let secret = CONTAINED.iter().any(|w| contains_word(&glued, w))
        || extra.iter().any(|w| glued.contains(w.as_str()))
        || parts.iter().any(|p| PARTS.contains(&p.as_str()));
    // A describing last part makes the key *about* a secret (`token_type`, `password_length`),
    // unless that part is a secret word itself.
    match parts.split_last() {
        Some((last, rest)) if !rest.is_empty() && ABOUT.contains(&last.as_str()) => {
            secret && part_is_secret(last)
        }
        _ => secret,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_names() {
        for key in [
            "password",
            "db_password",
            "PGPASSWORD",
            "x-api-key",
            "apiKey",
            "access_token",
            "client_secret",
            "session_id",
            "sessionId",
            "Authorization",
            "Set-Cookie",
            "credit_card",
            "ssn",
            "user.ssn",
            "cvv",
            "pin",
            "X-Amz-Signature",
            "aws_secret_access_key",
        ] {
            assert!(is_sensitive(key, &[]), "{key} is secret");
        }
    }

    #[test]
    fn keys_about_secrets_and_plain_keys() {
        for key in [
            "user",
            "max_tokens",
            "prompt_tokens",
            "tokenizer",
            "token_type",
            "tokenType",
            "password_length",
            "secret_name",
            "author",
            "spin",
            "https",
            "session_timeout",
        ] {
            assert!(!is_sensitive(key, &[]), "{key} is not secret");
        }
    }

    #[test]
    fn extra_keys_extend_the_list() {
        assert!(!is_sensitive("tenant_passkey", &[]));
        assert!(is_sensitive("tenant_passkey", &[glue("passkey")]));
        assert!(is_sensitive("TenantPassKey", &[glue("pass_key")]));
    }
}
