//! International bank account numbers: `DE89370400440532013000`, or in groups of four as printed,
//! `GB82 WEST 1234 5698 7654 32`.
//!
//! Two capital letters, two check digits and up to 30 letters and digits look like many
//! identifiers; the ISO 13616 check (the number read as digits, mod 97, is 1) leaves about one
//! in a hundred of them, and the length and boundaries fewer still.

/// Compact, or grouped by four with single spaces (the last group may be shorter).
pub(super) const PATTERN: &str =
    r"[A-Z]{2}[0-9]{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)";

/// The length of the IBAN that `s` (a match of [`PATTERN`]) starts with, if any. The grouped
/// shape may have run on into a word that follows (`… 3000 CODE`): the longest prefix ending at
/// a group that passes the check is the IBAN.
pub(super) fn iban_len(s: &str, before: Option<char>, after: Option<char>) -> Option<usize> {
    let touches = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if touches(before) {
        return None;
    }
    if !s.contains(' ') {
        return (!touches(after) && is_iban(s)).then_some(s.len());
    }
    // Group ends, longest first: the end of the match, then each space.
    std::iter::once(s.len())
        .filter(|_| !touches(after))
        .chain(s.rmatch_indices(' ').map(|(i, _)| i))
        .find(|&end| is_iban(&s[..end]))
}

/// 15 to 34 letters and digits (spaces ignored) passing the mod-97 check.
fn is_iban(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|&b| b != b' ').collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    // The first four characters move to the end; letters count as 10 to 35.
    let (head, tail) = compact.split_at(4);
    let mut remainder = 0u32;
    for &b in tail.iter().chain(head) {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_examples_pass_the_check() {
        for iban in [
            "DE89370400440532013000",
            "GB82 WEST 1234 5698 7654 32",
            "GB82WEST12345698765432",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
        ] {
            assert_eq!(iban_len(iban, None, None), Some(iban.len()), "{iban}");
        }
    }

    #[test]
    fn a_typo_fails_the_check() {
        assert_eq!(iban_len("DE89370400440532013001", None, None), None);
        assert_eq!(iban_len("GB82 WEST 1234 5698 7654 33", None, None), None);
        assert_eq!(iban_len("AB12CDEFGHIJKLMNOP", None, None), None);
    }

    #[test]
    fn a_word_after_the_groups_is_left_out() {
        let s = "DE89 3704 0044 0532 0130 00";
        assert_eq!(iban_len(&format!("{s} CODE"), None, None), Some(s.len()));
    }

    #[test]
    fn boundaries() {
        assert_eq!(iban_len("DE89370400440532013000", Some('x'), None), None);
        assert_eq!(iban_len("DE89370400440532013000", None, Some('_')), None);
    }
}
