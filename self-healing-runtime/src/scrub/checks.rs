//! What a regular expression cannot say: checksums, and whether a string looks random.

/// A payment card number: 13 to 19 digits passing the Luhn check, bare or split into groups
/// (4-4-4-…, or Amex 4-6-5) by one kind of separator.
pub(super) fn is_card_number(s: &str) -> bool {
    let mut separator = None;
    let mut groups = vec![0usize];
    let mut digits = Vec::with_capacity(19);
    for c in s.chars() {
        match c.to_digit(10) {
            Some(d) => {
                digits.push(d);
                if let Some(last) = groups.last_mut() {
                    *last += 1;
                }
            }
            None => {
                if separator.is_some_and(|sep| sep != c) {
                    return false;
                }
                separator = Some(c);
                groups.push(0);
            }
        }
    }
    let grouping_ok = match groups.as_slice() {
        [_] => true,
        [4, 6, 5] => true,
        [4, 4, 4, last] => (1..=7).contains(last),
        _ => false,
    };
    grouping_ok && (13..=19).contains(&digits.len()) && luhn(&digits)
}

/// The Luhn checksum: every second digit from the right doubled.
fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2, d * 2) {
            (0, _) => d,
            (_, doubled) if doubled > 9 => doubled - 9,
            (_, doubled) => doubled,
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A US social security number `AAA-GG-SSSS` as issued (no 000/666/9xx area, no zero group or
/// serial).
pub(super) fn is_ssn(s: &str) -> bool {
    let mut parts = s.split('-');
    let (Some(area), Some(group), Some(serial)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

/// The word after `Bearer`/`Basic` is a credential, not prose (`bearer token missing`).
pub(super) fn looks_like_credential(s: &str) -> bool {
    s.len() >= 6
        && (s.len() >= 20
            || s.bytes().any(|b| b.is_ascii_digit())
            || s.bytes().skip(1).any(|b| b.is_ascii_uppercase())
            || s.bytes()
                .any(|b| matches!(b, b'.' | b'_' | b'~' | b'+' | b'/' | b'=' | b'-')))
}

/// Key material rather than a word, a path or an identifier: 32+ hex digits, or 24+ characters
/// mixing letters and digits with the spread of characters random bytes have. UUIDs are kept.
pub(super) fn looks_random(s: &str) -> bool {
    if is_uuid(s) || s.matches('/').count() >= 3 {
        return false;
    }
    let alnum = s.bytes().filter(u8::is_ascii_alphanumeric).count();
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let letters = alnum - digits;
    if digits == 0 || letters == 0 {
        return false;
    }
    let hex_lower = s
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let hex_upper = s
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
    if hex_lower || hex_upper {
        return alnum >= 32;
    }
    alnum >= 24 && entropy(s.trim_end_matches('=')) >= 4.0
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Shannon entropy of the bytes of `s`, in bits per byte.
fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_test_cards_and_rejects_typos() {
        assert!(is_card_number("4111111111111111"));
        assert!(is_card_number("4111-1111-1111-1111"));
        assert!(is_card_number("3782 822463 10005"));
        assert!(!is_card_number("4111111111111112"));
        assert!(!is_card_number("4111-1111 1111-1111"), "mixed separators");
        assert!(!is_card_number("41 11111111 111111"), "odd grouping");
    }

    #[test]
    fn randomness_separates_keys_from_identifiers() {
        assert!(looks_random("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
        assert!(looks_random("3f786850e387550fdab836ed7e6dc881de23001b"));
        assert!(looks_random("Zx9Qm2Lp7Rt4Vb8Nc1Kd6Hf3Js5Gw0Ya"));
        assert!(!looks_random("getUserProfileSettingsById"));
        assert!(!looks_random("self_healing_runtime_queue_worker_v2"));
        assert!(!looks_random("550e8400-e29b-41d4-a716-446655440000"));
        assert!(
            !looks_random("deadbeefdeadbeefdeadbeef"),
            "hex under 32 digits"
        );
        assert!(!looks_random("/usr/lib/x86_64-linux-gnu/libssl"));
    }
}
