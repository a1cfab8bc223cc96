//! The default analyzer: typed classification first, message rules second, the site's category last.

use std::fmt::Write as _;

use super::message_rules::classify_message;
use super::typed::classify_chain;
use super::{Analyzer, Diagnosis, ErrorClass, Failure, Fingerprint, Severity};
use crate::Category;

/// Messages longer than this are cut before they are analysed or stored.
pub const MAX_MESSAGE_BYTES: usize = 2048;

/// Diagnoses by the error's type, then by its message, then by the site's category.
///
/// Synchronous, allocation-light and infallible: it runs on the caller's error path.
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
pub fn chain_message(failure: &Failure<'_>) -> String {
    chain_message_of(failure.error)
}

/// [`chain_message`] of an error.
pub fn chain_message_of(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut previous = String::new();
    for (i, e) in std::iter::successors(Some(error), |e| (*e).source()).enumerate() {
        let mut text = String::new();
        let _ = write!(text, "{e}");
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

/// Cuts `s` to at most `max` bytes on a char boundary.
pub(crate) fn truncate_to(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

impl Analyzer for RuleAnalyzer {
    fn name(&self) -> &'static str {
        "rules"
    }

    fn analyze(&self, failure: &Failure<'_>) -> Diagnosis {
        let message = chain_message(failure);
        let (class, severity, never_reached, reason, confidence) =
            if let Some(v) = classify_chain(failure.error) {
                (v.class, v.severity, v.never_reached, v.reason, 0.9)
            } else if let Some(v) = classify_message(&message.to_lowercase()) {
                (v.class, v.severity, v.never_reached, v.reason, 0.7)
            } else {
                let (class, severity) = by_category(failure.site.category());
                (
                    class,
                    severity,
                    false,
                    "rule: unknown error, category default",
                    0.3,
                )
            };
        Diagnosis {
            fingerprint: Fingerprint::new(failure.site.source(), &class, &message),
            class,
            severity,
            never_reached,
            analyzer: "rules",
            confidence,
            reason,
            recommended: None,
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
        RuleAnalyzer::new().analyze(&Failure {
            site: &DB,
            error,
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
            attempt: 1,
            elapsed: std::time::Duration::ZERO,
        };
        assert_eq!(chain_message(&f).len(), MAX_MESSAGE_BYTES);
    }
}
