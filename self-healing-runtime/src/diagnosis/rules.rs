//! The default analyzer: typed classification first, message rules second, the site's category last.

use std::fmt::Write as _;

use super::message_rules::{classify_message, retry_after};
use super::typed::classify_chain;
use super::{Analyzer, Diagnosis, ErrorClass, Failure, Fingerprint, Severity};
use crate::Category;

/// The most a message holds once stored, shown or sent (cut after scrubbing, with
/// [`TRUNCATED`](crate::scrub::TRUNCATED)); analyzers read up to this many bytes of it.
pub const MAX_MESSAGE_BYTES: usize = 2048;

/// Diagnoses by the error's type, then by its message, then by the site's category.
///
/// Synchronous, infallible and allocation-free (given [`Failure::message`]): it runs on the
/// caller's error path.
#[derive(Debug, Clone, Default)]
pub struct RuleAnalyzer {
    _private: (),
}

impl RuleAnalyzer {
    /// The rule analyzer.
    pub const fn new() -> Self {
        RuleAnalyzer { _private: () }
    }
}

/// The error and its sources as one line (`outer: inner: root`), capped at [`MAX_MESSAGE_BYTES`].
/// A link whose text the previous one already contains is skipped.
///
/// Allocates the returned `String` on every call: analyzers should read
/// [`Failure::message`], which the caller computed once. Kept for code written before that field.
pub fn chain_message(failure: &Failure<'_>) -> String {
    chain_message_of(failure.error)
}

/// [`chain_message`] of an error: what the interceptor passes as [`Failure::message`].
///
/// One allocation, the returned `String`, sized before anything is written (chains whose links
/// all print nothing allocate nothing).
///
/// The text is raw (secrets included) and cut without regard for them, so scrubbing it cannot
/// redact a secret the cut split: the interceptor keeps a longer text for the event, and
/// [`scrub_message`](crate::scrub::scrub_message) scrubs that before cutting it. Do the same to
/// store or show a message of your own.
pub fn chain_message_of(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = chain_text(error, MAX_MESSAGE_BYTES);
    truncate_to(&mut out, MAX_MESSAGE_BYTES);
    out
}

/// The chain as [`chain_message_of`] writes it, but up to the scrubber's window instead of the
/// cap: what an event holds until the event worker scrubs it and only then cuts it to the cap
/// ([`scrub_message`](crate::scrub::scrub_message)). Its first [`MAX_MESSAGE_BYTES`] (on a char
/// boundary) are exactly [`chain_message_of`]'s.
///
/// Left longer than the window when the chain is, which is how the scrubber knows to cut it.
pub(crate) fn chain_window_of(error: &(dyn std::error::Error + 'static)) -> String {
    chain_text(error, crate::scrub::WINDOW_BYTES)
}

/// The leading part of `message` (a [`chain_window_of`]) that [`chain_message_of`] would have
/// given: what the analyzers read.
pub(crate) fn analysed_part(message: &str) -> &str {
    &message[..message.floor_char_boundary(MAX_MESSAGE_BYTES)]
}

/// The chain, links written while the line is at most `limit` bytes long; longer than `limit`
/// when the chain is (up to [`working_bytes`]`(limit)`).
fn chain_text(error: &(dyn std::error::Error + 'static), limit: usize) -> String {
    let bound = working_bytes(limit);
    let links = || std::iter::successors(Some(error), |e| (*e).source());
    // Measuring first lets the output be allocated once at its final size, instead of growing
    // (and reallocating) as the links are written. It is an upper bound: repeated links are
    // counted although they are skipped below.
    let mut measure = Measure { bytes: 0, bound };
    for (i, e) in links().enumerate() {
        if i > 0 {
            measure.bytes += SEPARATOR.len();
        }
        // A `Display` that fails on its own is written as far as it goes, below as here.
        let _ = write!(measure, "{e}");
        if measure.bytes > bound {
            break;
        }
    }
    let mut out = String::with_capacity(measure.bytes.min(bound));
    // Where the previous kept link's text sits in `out`.
    let mut previous = 0..0;
    for (i, e) in links().enumerate() {
        let before = out.len();
        if !out.is_empty() {
            out.push_str(SEPARATOR);
        }
        let start = out.len();
        let mut writer = Capped {
            out: &mut out,
            bound,
            overflowed: false,
        };
        let _ = write!(writer, "{e}");
        // A link cut short is longer than the room it had, which exceeds the previous link's
        // whole length: the previous link cannot contain it.
        let complete = !writer.overflowed;
        if i > 0 && complete && out[previous.clone()].contains(&out[start..]) {
            out.truncate(before);
            continue;
        }
        previous = start..out.len();
        // Past `limit`, not at it: a line of exactly `limit` bytes followed by more links must
        // still read as longer than `limit`.
        if out.len() > limit {
            break;
        }
    }
    out
}

/// What [`chain_message_of`] puts between two links.
const SEPARATOR: &str = ": ";

/// How much of the chain [`chain_text`] writes for a line of `limit` bytes.
///
/// A link is written only while the line is at most `limit` bytes long, so it starts with room
/// for at least `limit + 1` bytes; one that overflows is longer than any link before it, so it
/// is never a repeat, and the result is the same as writing every link whole.
const fn working_bytes(limit: usize) -> usize {
    2 * limit + SEPARATOR.len() + 1
}

/// Counts what a `Display` writes, stopping it once past `bound`.
struct Measure {
    bytes: usize,
    bound: usize,
}

impl std::fmt::Write for Measure {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.bytes = self.bytes.saturating_add(s.len());
        if self.bytes > self.bound {
            // Stops a huge `Display` early: nothing past the bound is kept anyway.
            return Err(std::fmt::Error);
        }
        Ok(())
    }
}

/// Appends to the output up to `bound`, on a char boundary, then stops the `Display`.
struct Capped<'a> {
    out: &'a mut String,
    bound: usize,
    overflowed: bool,
}

impl std::fmt::Write for Capped<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.bound.saturating_sub(self.out.len());
        if s.len() <= room {
            self.out.push_str(s);
            return Ok(());
        }
        self.out.push_str(&s[..s.floor_char_boundary(room)]);
        self.overflowed = true;
        Err(std::fmt::Error)
    }
}

/// Cuts `s` to at most `max` bytes on a char boundary.
fn truncate_to(s: &mut String, max: usize) {
    if s.len() > max {
        let end = s.floor_char_boundary(max);
        s.truncate(end);
    }
}

impl Analyzer for RuleAnalyzer {
    fn name(&self) -> &'static str {
        "rules"
    }

    fn analyze(&self, failure: &Failure<'_>) -> Diagnosis {
        // Allocation-free: the message was built once by the caller, the rules match it without
        // lower-casing it, and the fingerprint hashes it while normalising.
        let message = failure.message;
        let (class, severity, never_reached, reason, confidence, declared_wait) =
            if let Some(v) = classify_chain(failure.error) {
                (
                    v.class,
                    v.severity,
                    v.never_reached,
                    v.reason,
                    0.9,
                    v.retry_after,
                )
            } else if let Some(v) = classify_message(message) {
                (v.class, v.severity, v.never_reached, v.reason, 0.7, None)
            } else {
                let (class, severity) = by_category(failure.site.category());
                (
                    class,
                    severity,
                    false,
                    "rule: unknown error, category default",
                    0.3,
                    None,
                )
            };
        let retry_after = match class {
            ErrorClass::RateLimited {
                retry_after: Some(after),
            } => Some(after),
            // A 503 or an overloaded server may ask for a wait too, and a typed 429 carries none
            // of its own: the error's own declaration, else the message's hint, is the
            // dependency's word.
            _ => declared_wait.or_else(|| retry_after(message)),
        };
        Diagnosis {
            fingerprint: Fingerprint::new(failure.site.source(), &class, message),
            class,
            severity,
            never_reached,
            analyzer: "rules",
            confidence,
            reason,
            recommended: None,
            retry_after,
        }
    }
}

/// What an unrecognised error most likely is, given where it happened.
fn by_category(category: Category) -> (ErrorClass, Severity) {
    match category {
        // Databases and remote APIs fail transiently far more often than permanently.
        Category::Database | Category::Api => (ErrorClass::Transient, Severity::Medium),
        Category::Performance => (ErrorClass::ResourceExhausted, Severity::Medium),
        // In plain application logic an unknown error is most likely a defect: re-running it
        // would only repeat it.
        Category::Runtime => (ErrorClass::Bug, Severity::Medium),
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::time::Duration;

    use super::*;
    use crate::{Site, SiteInfo, SiteOptions};

    static DB: Site = Site::new(SiteInfo {
        source: "createContact",
        category: Category::Database,
        function: "create_contact",
        module_path: module_path!(),
        file: file!(),
        line: line!(),
        options: SiteOptions::new(),
    });

    fn diagnose(error: &(dyn std::error::Error + 'static)) -> Diagnosis {
        let message = chain_message_of(error);
        RuleAnalyzer::new().analyze(&Failure {
            site: &DB,
            error,
            message: &message,
            attempt: 1,
            elapsed: std::time::Duration::ZERO,
        })
    }

    #[derive(Debug)]
    struct Wrapped(io::Error);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("could not save contact")
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn typed_classification_walks_the_chain() {
        let e = Wrapped(io::Error::from(io::ErrorKind::ConnectionRefused));
        let d = diagnose(&e);
        assert_eq!(d.class, ErrorClass::ConnectionLost);
        assert!(
            d.never_reached,
            "a refused connection never reached the server"
        );
        assert_eq!(d.reason, "io: connection refused");
    }

    #[test]
    fn message_rules_apply_when_types_say_nothing() {
        let e = io::Error::other("deadlock detected");
        assert_eq!(diagnose(&e).class, ErrorClass::Transient);
    }

    #[test]
    fn category_decides_unknown_errors() {
        let e = io::Error::other("something odd");
        let d = diagnose(&e);
        assert_eq!(d.class, ErrorClass::Transient);
        assert!(d.confidence < 0.5);
    }

    #[test]
    fn long_messages_are_capped() {
        let e = io::Error::other("x".repeat(10_000));
        let f = Failure {
            site: &DB,
            error: &e,
            message: "",
            attempt: 1,
            elapsed: std::time::Duration::ZERO,
        };
        assert_eq!(chain_message(&f).len(), MAX_MESSAGE_BYTES);
    }

    #[test]
    fn the_dependencys_wait_is_kept_whatever_the_class() {
        let d = diagnose(&io::Error::other(
            "HTTP/1.1 503 Service Unavailable; Retry-After: 2",
        ));
        assert_eq!(d.class, ErrorClass::Transient);
        assert_eq!(d.retry_after, Some(Duration::from_secs(2)));

        let d = diagnose(&io::Error::other("server busy, try again in 500ms"));
        assert_eq!(d.class, ErrorClass::Transient);
        assert_eq!(d.retry_after, Some(Duration::from_millis(500)));

        let d = diagnose(&io::Error::other(
            "HTTP 429 Too Many Requests, retry after 3",
        ));
        assert_eq!(
            d.class,
            ErrorClass::RateLimited {
                retry_after: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(d.retry_after, Some(Duration::from_secs(3)));

        assert_eq!(
            diagnose(&io::Error::other("deadlock detected")).retry_after,
            None
        );
    }

    #[test]
    fn case_does_not_change_the_diagnosis() {
        let lower = diagnose(&io::Error::other("deadlock detected"));
        let upper = diagnose(&io::Error::other("DEADLOCK DETECTED"));
        assert_eq!(upper.class, lower.class);
        assert_eq!(upper.reason, lower.reason);
    }

    /// One link of a chain, with the rest of the chain as its source.
    #[derive(Debug)]
    struct Link {
        text: String,
        source: Option<Box<Link>>,
    }

    impl Link {
        /// A chain with these texts, outermost first.
        fn chain<S: AsRef<str>>(texts: &[S]) -> Link {
            let mut links = texts.iter().rev().map(|t| t.as_ref().to_owned());
            let root = Link {
                text: links.next().unwrap_or_default(),
                source: None,
            };
            links.fold(root, |source, text| Link {
                text,
                source: Some(Box::new(source)),
            })
        }
    }

    impl std::fmt::Display for Link {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            // Written in pieces, as derived `Display`s do, to exercise the writers' limits.
            for piece in self.text.split_inclusive(' ') {
                f.write_str(piece)?;
            }
            Ok(())
        }
    }

    impl std::error::Error for Link {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.source
                .as_deref()
                .map(|l| l as &(dyn std::error::Error + 'static))
        }
    }

    /// How the message was built before it was written in place: each link formatted into a
    /// `String` of its own, compared with the previous one, appended.
    fn reference(error: &(dyn std::error::Error + 'static)) -> String {
        let mut out = String::new();
        let mut previous = String::new();
        for (i, e) in std::iter::successors(Some(error), |e| (*e).source()).enumerate() {
            let text = e.to_string();
            if i > 0 && previous.contains(text.as_str()) {
                continue;
            }
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
            previous = text;
            if out.len() >= MAX_MESSAGE_BYTES {
                break;
            }
        }
        truncate_to(&mut out, MAX_MESSAGE_BYTES);
        out
    }

    #[test]
    fn chain_messages() {
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        let cases: &[(&[&str], &str)] = &[
            (&["outer", "inner", "root"], "outer: inner: root"),
            (
                &["saving failed: disk full", "disk full"],
                "saving failed: disk full",
            ),
            (&["a", "a", "b"], "a: b"),
            (&["", "x"], "x"),
            (&["x", ""], "x"),
            (&["", ""], ""),
        ];
        for (links, expected) in cases {
            let chain = Link::chain(links);
            assert_eq!(chain_message_of(&chain), *expected, "{links:?}");
            assert_eq!(chain_message_of(&chain), reference(&chain), "{links:?}");
        }
        // Cut on a char boundary: two-byte chars, an even cap.
        let chain = Link::chain(&["x", &long]);
        let message = chain_message_of(&chain);
        assert_eq!(message.len(), MAX_MESSAGE_BYTES - 1);
        assert_eq!(message, reference(&chain));
    }

    #[test]
    fn chain_messages_near_the_cap_match_the_reference() {
        let a = "a".repeat(MAX_MESSAGE_BYTES - 1);
        let b = "a".repeat(MAX_MESSAGE_BYTES + 5);
        let c = "b".repeat(3 * MAX_MESSAGE_BYTES);
        let cases: &[&[&str]] = &[
            &[&a, &b, "tail"],
            &[&a, &a[..10], "tail"],
            &[&b, "tail"],
            &["head", &c],
            &[&c, &c],
            &["short", &a, &a[..MAX_MESSAGE_BYTES - 2], "tail"],
        ];
        for links in cases {
            let chain = Link::chain(links);
            assert_eq!(chain_message_of(&chain), reference(&chain));
        }

        // The one case where a link cut short at the working bound could pass for a repeat:
        // the line is one byte short of the cap and the cut falls inside a four-byte char,
        // leaving a prefix the previous link contains. The whole link is no repeat, so it is
        // kept (and cut away), as when every link was written whole.
        let previous = "a".repeat(MAX_MESSAGE_BYTES - 1);
        let cut_short = format!("{}😀{}", &previous[1..], previous);
        let chain = Link::chain(&[previous.as_str(), &cut_short, "a"]);
        let expected = format!("{previous}:");
        assert_eq!(reference(&chain), expected);
        assert_eq!(chain_message_of(&chain), expected);
    }

    proptest::proptest! {
        /// Writing in place gives exactly what building each link's text apart gave.
        #[test]
        fn chain_message_matches_the_reference(
            links in proptest::collection::vec("(ab|a|b| |é){0,8}", 1..6),
            long in proptest::option::of((
                0usize..6,
                MAX_MESSAGE_BYTES - 64..2 * MAX_MESSAGE_BYTES + 64,
            )),
        ) {
            let mut links = links;
            if let Some((i, target)) = long {
                // One link of about `target` bytes, around the cap and the working bound, made
                // of the same pieces so that the other links may repeat part of it.
                let i = i % links.len();
                let piece = if links[i].is_empty() { "ab é" } else { links[i].as_str() };
                let mut text = piece.repeat(target / piece.len() + 1);
                text.truncate(text.floor_char_boundary(target));
                links[i] = text;
            }
            let chain = Link::chain(&links);
            proptest::prop_assert_eq!(chain_message_of(&chain), reference(&chain));
        }
    }
}
