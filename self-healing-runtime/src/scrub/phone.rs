//! Phone numbers: international (`+1 (415) 555-0123`, `+14155550123`, `+44 20 7946 0958`) and
//! North American (`415-555-0123`, `(415) 555-0123`).
//!
//! Error messages are full of digit runs that are not phone numbers (timestamps, ports, ids,
//! versions, status codes, byte counts), so the shapes are narrow: an international number starts
//! with `+` and has 8 to 15 digits (E.164), a North American one is 3-3-4 digits with one kind of
//! separator; neither may touch a letter or digit on either side.

/// The two shapes; [`phone_len`] decides. Dots do not separate international groups: `+3.14159…`
/// is a number, not a phone.
pub(super) const PATTERN: &str = r"\+[1-9][0-9]*(?:[ -]?(?:\([0-9]{1,5}\)|[0-9]+))*|(?:1[ .-])?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}";

/// Whether `c`, next to a match, makes it part of something else (`x415-555-0123`,
/// `+14155550123abc`, `v415.555.0123`).
fn touches(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | '+')
}

/// The length of the phone number that `s` (a match of [`PATTERN`]) starts with, if it is one;
/// `before` is the character ahead of the match in the text (even if redacted since), `after`
/// the text that follows it.
pub(super) fn phone_len(s: &str, before: Option<char>, after: &str) -> Option<usize> {
    // `]` ends what an earlier redaction left: a number touching a secret was rejected when
    // that secret was still text, and must be again when scrubbed twice.
    if before.is_some_and(|c| touches(c) || c == ']') {
        return None;
    }
    // `…0123.` ends a sentence, `…0123.5` is a number. A `[` counts as touching because it is
    // what a secret that touched the number (`…0123-----BEGIN …`) becomes once redacted:
    // scrubbing again must judge the number as the first scrub did.
    let mut rest = after.chars();
    let next = rest.next();
    let touches_after = next.is_some_and(|c| {
        (c != '.' && (touches(c) || c == '['))
            || (c == '.' && rest.next().is_some_and(|d| d.is_ascii_digit() || d == '['))
    });
    if s.starts_with('+') {
        international_len(s, touches_after)
    } else {
        let digits = s.bytes().filter(u8::is_ascii_digit).count();
        // One kind of separator between the groups (after `(415)` anything goes).
        let mut separators = s.chars().filter(|c| matches!(c, ' ' | '.' | '-'));
        let first = separators.next();
        let consistent = s.contains(')') || separators.all(|c| Some(c) == first);
        (!touches_after && (digits == 10 || digits == 11) && consistent).then_some(s.len())
    }
}

/// An international number: 8 to 15 digits after the `+` (11 when nothing separates them: a
/// bare `+` run is more often a signed count, and 32-bit ones such as `+2147483647` have 10). The pattern may have run on into the groups of
/// digits that follow (`+44 20 7946 0958 503 times`): the longest prefix ending at a group that
/// qualifies is the number.
fn international_len(s: &str, touches_after: bool) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut digits = 0;
    let mut best = None;
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii_digit() {
            digits += 1;
        }
        let group_end = match bytes.get(i + 1) {
            None => !touches_after,
            Some(&next) => (b.is_ascii_digit() || b == b')') && matches!(next, b' ' | b'-'),
        };
        if !group_end || digits > 15 {
            continue;
        }
        let separated = s[..=i].bytes().any(|b| matches!(b, b' ' | b'-' | b'('));
        let min = if separated { 8 } else { 11 };
        if digits >= min {
            best = Some(i + 1);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(s: &str) -> bool {
        phone_len(s, Some(' '), " ") == Some(s.len())
    }

    #[test]
    fn numbers() {
        assert!(phone("+1 (415) 555-0123"));
        assert!(phone("+14155550123"));
        assert!(phone("+44 20 7946 0958"));
        assert!(phone("415-555-0123"));
        assert!(phone("(415) 555-0123"));
        assert!(phone("415.555.0123"));
        assert!(phone("1-415-555-0123"));
    }

    #[test]
    fn a_number_followed_by_more_digits_is_found_at_its_start() {
        let s = "+44 20 7946 0958 503 1 2";
        assert_eq!(
            phone_len(s, None, " times"),
            Some("+44 20 7946 0958 503".len())
        );
    }

    #[test]
    fn not_numbers() {
        assert!(!phone("+1234567"), "too short");
        assert!(!phone("+12345678"), "a bare signed count");
        assert!(!phone("+2147483647"), "a bare 32-bit integer");
        assert!(!phone("415-555.0123"), "mixed separators");
        assert_eq!(phone_len("415-555-0123", Some('x'), " "), None);
        assert_eq!(phone_len("415-555-0123", Some(' '), "ms"), None);
        assert_eq!(phone_len("415.555.0123", Some(' '), ".5"), None);
        assert_eq!(phone_len("+1234567890123456", None, ""), None, "too long");
    }
}
