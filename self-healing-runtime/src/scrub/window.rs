//! Scrubbing a long message in bounded work, then cutting it to the cap: scrub first, cut second.
//!
//! Cutting first would split a secret that straddles the cut: its rule no longer matches the half
//! that is left, and that half is stored and sent (`postgres://admin:S3cr`, 12 of 16 card
//! digits, a JWT cut inside its claims). So the scrubber reads a window of the raw text larger
//! than the cap, and only the scrubbed text is cut to the cap.
//!
//! The window's own edge is the one place a raw cut remains, and it is made where no secret can
//! be split: at the start of the word the edge falls in, and before any groups of a spaced
//! number (card, IBAN, phone) that end there.

use crate::diagnosis::MAX_MESSAGE_BYTES;

/// What ends a message that was cut (the same marker the store uses).
pub const TRUNCATED: &str = "…[truncated]";

/// How much of a raw message is scrubbed: twice the cap, so that a message whose secrets shrink
/// to markers still fills the cap, while a huge `Display` costs a bounded amount of work.
pub const WINDOW_BYTES: usize = 2 * MAX_MESSAGE_BYTES;

/// How far back from the window's edge the cut looks for a space, then for punctuation that ends
/// a value; past that, the run is cut at the edge (what is left of it is judged on its own, as
/// random-looking material).
const SEEK: usize = 512;

/// Characters no URL password, key or spaced number spans: a cut just after one of them leaves
/// either a whole value or none of it (used when a long run has no space).
fn ends_value(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\''
                | '`'
                | ','
                | ';'
                | '&'
                | '<'
                | '>'
                | '('
                | ')'
                | '['
                | ']'
                | '{'
                | '}'
                | '|'
        )
}

/// Where the text after the last character of `s` matching `pred` starts.
fn after_last(s: &str, pred: impl Fn(char) -> bool) -> Option<usize> {
    s.char_indices()
        .rev()
        .find(|&(_, c)| pred(c))
        .map(|(i, c)| i + c.len_utf8())
}

/// A word that may be one group of a number written with spaces: `4111`, `822463`, `GB82`,
/// `WEST`, `+44`, `(415)`, `555-0123`.
fn number_group(word: &str) -> bool {
    (1..=8).contains(&word.len())
        && word.bytes().all(|b| {
            b.is_ascii_digit() || b.is_ascii_uppercase() || matches!(b, b'(' | b')' | b'+' | b'-')
        })
}

/// `head` (which ends after a space, or is empty) without the groups of a spaced number at its
/// end: `card 4111 1111 1111 ` becomes `card `, so no group of a number the cut split survives.
fn before_number_groups(head: &str) -> usize {
    let mut end = head.len();
    loop {
        let trimmed = head[..end].trim_end();
        let start = after_last(trimmed, char::is_whitespace).unwrap_or(0);
        let word = &trimmed[start..];
        if word.is_empty() || !number_group(word) {
            return end;
        }
        end = start;
    }
}

/// The part of `text` to scrub, and whether the rest was dropped.
///
/// Text up to [`WINDOW_BYTES`] is taken whole. Longer text is cut where no secret can straddle
/// the cut: at the start of the word the window's edge falls in (after a space within [`SEEK`]
/// bytes, or else after punctuation that ends values), and before the groups of a spaced number
/// that end there.
pub(crate) fn window(text: &str) -> (&str, bool) {
    if text.len() <= WINDOW_BYTES {
        return (text, false);
    }
    let edge = text.floor_char_boundary(WINDOW_BYTES);
    let head = &text[..edge];
    let floor = head.floor_char_boundary(edge.saturating_sub(SEEK));
    let word_start = after_last(&head[floor..], char::is_whitespace)
        .or_else(|| after_last(&head[floor..], ends_value))
        .map_or(edge, |i| floor + i);
    (&text[..before_number_groups(&text[..word_start])], true)
}

/// Cuts scrubbed text to `max` bytes, [`TRUNCATED`] included, on a char boundary and outside
/// any `[redacted…]` marker; appends the marker when anything was cut (`cut_before` says the
/// text itself is what is left of a longer one).
pub(crate) fn cap(mut scrubbed: String, max: usize, cut_before: bool) -> String {
    if scrubbed.len() <= max && !cut_before {
        return scrubbed;
    }
    if scrubbed.len() + TRUNCATED.len() > max {
        let mut end = scrubbed.floor_char_boundary(max.saturating_sub(TRUNCATED.len()));
        // Half a marker would read as text of the message (and as a marker to nobody).
        if let Some(open) = scrubbed[..end].rfind('[')
            && scrubbed[open..].starts_with("[redacted")
            && !scrubbed[open..end].contains(']')
        {
            end = open;
        }
        scrubbed.truncate(end);
    }
    scrubbed.push_str(TRUNCATED);
    scrubbed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_taken_whole() {
        assert_eq!(window("abc"), ("abc", false));
        let exact = "a".repeat(WINDOW_BYTES);
        assert_eq!(window(&exact), (exact.as_str(), false));
    }

    #[test]
    fn long_text_is_cut_at_a_word() {
        let text = format!("{} tail", "word ".repeat(WINDOW_BYTES));
        let (head, cut) = window(&text);
        assert!(cut);
        assert!(head.len() <= WINDOW_BYTES);
        assert!(head.ends_with("word "), "{:?}", &head[head.len() - 10..]);
    }

    #[test]
    fn groups_of_a_spaced_number_at_the_edge_are_dropped() {
        for number in [
            "4111 1111 1111 1111",
            "GB82 WEST 1234 5698 7654 32",
            "+1 (415) 555-0123",
        ] {
            for before in 1..number.len() {
                let pad = WINDOW_BYTES - before - "pay ".len();
                let text = format!("{}pay {number} now", "w ".repeat(pad / 2));
                let text = if pad % 2 == 1 {
                    format!(" {text}")
                } else {
                    text
                };
                let (head, _) = window(&text);
                assert!(
                    head.ends_with("pay "),
                    "{number} {before}: {:?}",
                    &head[head.len() - 20..]
                );
            }
        }
    }

    #[test]
    fn a_run_without_spaces_is_cut_after_punctuation_or_at_the_edge() {
        let json = format!("{{{}", r#""k":"v","#.repeat(WINDOW_BYTES));
        let (head, _) = window(&json);
        assert!(head.ends_with(',') || head.ends_with('"'), "{head:?}");
        let run = "x".repeat(3 * WINDOW_BYTES);
        let (head, cut) = window(&run);
        assert!(cut);
        assert_eq!(head.len(), WINDOW_BYTES);
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        let text = "é".repeat(WINDOW_BYTES);
        let (head, cut) = window(&text);
        assert!(cut && head.len() <= WINDOW_BYTES);
        let capped = cap(text.clone(), MAX_MESSAGE_BYTES, false);
        assert!(capped.len() <= MAX_MESSAGE_BYTES && capped.ends_with(TRUNCATED));
    }

    #[test]
    fn the_cap_includes_the_marker_and_spares_markers() {
        assert_eq!(cap("short".into(), 100, false), "short");
        assert_eq!(cap("short".into(), 100, true), format!("short{TRUNCATED}"));
        let text = format!("{}[redacted:card] tail tail", "a".repeat(80));
        let capped = cap(text, 100, false);
        assert_eq!(capped, format!("{}{TRUNCATED}", "a".repeat(80)));
    }
}
