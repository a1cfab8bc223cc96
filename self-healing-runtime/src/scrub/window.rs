//! Scrubbing a long message in bounded work, then cutting it to the cap: scrub first, cut second.
//!
//! Cutting first would split a secret that straddles the cut: its rule no longer matches the half
//! that is left, and that half is stored and sent (`postgres://admin:S3cr`, 12 of 16 card
//! digits, a JWT cut inside its claims). So the scrubber reads a window of the raw text larger
//! than the cap, and only the scrubbed text is cut to the cap.
//!
//! The window's own edge is the one place a raw cut remains, and it is made where no secret can
//! be split: the last [`EDGE_GUARD`] bytes (longer than any secret with spaces in it: a spaced
//! card, IBAN or phone number) are dropped, and so is the rest of the word they fall in.

use crate::diagnosis::MAX_MESSAGE_BYTES;

/// What ends a message that was cut (the same marker the store uses).
pub const TRUNCATED: &str = "…[truncated]";

/// How much of a raw message is scrubbed: twice the cap, so that a message whose secrets shrink
/// to markers still fills the cap, while a huge `Display` costs a bounded amount of work.
pub const WINDOW_BYTES: usize = 2 * MAX_MESSAGE_BYTES;

/// Bytes before the window's edge dropped whatever they hold: a secret cut at the edge starts
/// within its own length of it, and the longest one that spans several words (an IBAN in groups
/// of four: 34 characters and 8 spaces) is shorter than this.
const EDGE_GUARD: usize = 64;

/// How far back from the guard the cut looks for a space, then for punctuation that ends a value.
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

/// The part of `text` to scrub, and whether the rest was dropped.
///
/// Text up to [`WINDOW_BYTES`] is taken whole. Longer text is cut where no secret can straddle
/// the cut: [`EDGE_GUARD`] bytes before the window's edge, moved back to the start of the word
/// there (after a space within [`SEEK`] bytes, or else after punctuation that ends values).
pub(crate) fn window(text: &str) -> (&str, bool) {
    if text.len() <= WINDOW_BYTES {
        return (text, false);
    }
    let guard = text.floor_char_boundary(WINDOW_BYTES - EDGE_GUARD);
    let head = &text[..guard];
    let floor = head.floor_char_boundary(guard.saturating_sub(SEEK));
    let after = |i: usize, c: char| i + c.len_utf8();
    let cut = head[floor..]
        .char_indices()
        .rev()
        .find(|&(_, c)| c.is_whitespace())
        .or_else(|| {
            head[floor..]
                .char_indices()
                .rev()
                .find(|&(_, c)| ends_value(c))
        })
        .map_or(guard, |(i, c)| floor + after(i, c));
    (&text[..cut], true)
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
    fn long_text_is_cut_at_a_word_before_the_guard() {
        let text = format!("{} tail", "word ".repeat(WINDOW_BYTES));
        let (head, cut) = window(&text);
        assert!(cut);
        assert!(head.len() <= WINDOW_BYTES - EDGE_GUARD);
        assert!(head.ends_with(' '), "{:?}", &head[head.len() - 10..]);
    }

    #[test]
    fn a_run_without_spaces_is_cut_after_punctuation_or_at_the_guard() {
        let json = format!("{{{}", r#""k":"v","#.repeat(WINDOW_BYTES));
        let (head, _) = window(&json);
        assert!(head.ends_with(',') || head.ends_with('"'), "{head:?}");
        let run = "x".repeat(3 * WINDOW_BYTES);
        let (head, cut) = window(&run);
        assert!(cut);
        assert_eq!(head.len(), WINDOW_BYTES - EDGE_GUARD);
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        let text = "é".repeat(WINDOW_BYTES);
        let (head, cut) = window(&text);
        assert!(cut && head.len() < WINDOW_BYTES);
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
