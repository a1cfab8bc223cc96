//! The built-in rules: a regular expression for each shape, in priority order, and the check that
//! decides whether a match is really a secret.

use std::ops::Range;
use std::sync::Arc;

use regex::{Captures, Regex};

use super::checks;
use super::iban;
use super::keys;
use super::pem;
use super::phone;

/// What a rule found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RuleKind {
    /// A marker left by an earlier scrub: kept as it is (this is what makes scrubbing idempotent).
    Marker,
    UrlPassword,
    KeyValue,
    AuthScheme,
    Jwt,
    ApiKey,
    AwsKey,
    Card,
    Ssn,
    Phone,
    Iban,
    PrivateKey,
    Email,
    Random,
    /// A pattern of the user's (its label is on the rule).
    Custom,
}

impl RuleKind {
    /// The text that replaces a secret of this kind.
    pub(super) fn marker(&self) -> &'static str {
        match self {
            RuleKind::UrlPassword | RuleKind::KeyValue | RuleKind::AuthScheme => "[redacted]",
            RuleKind::Jwt => "[redacted:jwt]",
            RuleKind::ApiKey | RuleKind::AwsKey => "[redacted:key]",
            RuleKind::Card => "[redacted:card]",
            RuleKind::Ssn => "[redacted:ssn]",
            RuleKind::Phone => "[redacted:phone]",
            RuleKind::Iban => "[redacted:iban]",
            RuleKind::PrivateKey => "[redacted:private_key]",
            RuleKind::Email => "[redacted:email]",
            RuleKind::Random => "[redacted:token]",
            RuleKind::Marker | RuleKind::Custom => "[redacted]",
        }
    }
}

/// A rule's decision about one match.
#[derive(Debug)]
pub(super) enum Verdict {
    /// Not a secret after all: look again one character further on.
    Reject,
    /// Copy the text up to `end` unchanged (a marker).
    Keep { end: usize },
    /// An earlier scrub redacted this one: scrub `scan` on its own and copy the rest up to `end`
    /// (where the marker starts), exactly as that scrub wrote it.
    Pass { scan: Range<usize>, end: usize },
    /// Scrub `scan` on its own (a key name may hide a secret too), copy what lies between it and
    /// `secret` (separators, quotes, an auth scheme), replace `secret`, and go on scanning after
    /// it.
    Redact {
        scan: Range<usize>,
        secret: Range<usize>,
    },
}

#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub(super) regex: Regex,
    pub(super) kind: RuleKind,
    /// The label of a user's pattern, shown in its marker.
    pub(super) label: Option<Arc<str>>,
}

/// Characters of random-looking material (base64, base64url, hex).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-')
}

/// A pattern and the kind of what it finds.
type RuleSpec = (&'static str, RuleKind);

const RULES: &[RuleSpec] = &[
    (r"\[redacted(?::[a-z0-9_-]+)?\]", RuleKind::Marker),
    (pem::PATTERN, RuleKind::PrivateKey),
    // scheme://user:password@host: the password may hold ':' and '@' (up to the last '@').
    (
        r"(?-u:\b)[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@\[\]]*:(?:(?P<m>\[redacted(?::[a-z0-9_-]+)?\])|(?P<secret>[^\s/?#\[\]]+))@",
        RuleKind::UrlPassword,
    ),
    // key=value, key: value, "key": "value", key="value", \"key\":\"value\" (escaped JSON). A
    // quoted value the text ends inside (a message cut short) is secret to the end.
    (
        r#"(?-u:\b)(?P<key>[A-Za-z][A-Za-z0-9_.-]*)(?:\\?["'])?[ \t]*[:=][ \t]*(?:\\"(?P<eq>[^"\\\r\n]*)(?:\\"|\z)|"(?P<dq>(?:[^"\\\r\n]|\\.)*)(?:"|\z)|'(?P<sq>(?:[^'\\\r\n]|\\.)*)(?:'|\z)|(?P<scheme>(?i:bearer|basic|digest|token|negotiate)[ \t]+)?(?:(?P<m>\[redacted(?::[a-z0-9_-]+)?\])|(?P<v>[^\s"'&,;<>()\[\]{}\\:][^\s"'&,;<>()\[\]{}\\]*)))"#,
        RuleKind::KeyValue,
    ),
    (
        r"(?i)(?-u:\b)(?:bearer|basic|digest|negotiate)[ \t]+(?:(?P<m>\[redacted(?::[a-z0-9_-]+)?\])|(?P<secret>[A-Za-z0-9._~+/=-]+))",
        RuleKind::AuthScheme,
    ),
    // A JWT; or its header and the start of its claims (always `eyJ`, base64 of `{"`), when the
    // text was cut before the signature.
    (
        r"(?-u:\b)eyJ[A-Za-z0-9_-]{4,}\.(?:[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*|eyJ[A-Za-z0-9_-]*)",
        RuleKind::Jwt,
    ),
    (
        r"(?-u:\b)(?:(?:sk|pk|rk)[-_][A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[A-Za-z0-9_-]{30,}|hf_[A-Za-z0-9]{20,}|npm_[A-Za-z0-9]{30,})",
        RuleKind::ApiKey,
    ),
    (
        r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z0-9]{16}(?-u:\b)",
        RuleKind::AwsKey,
    ),
    // 13 to 19 digits, bare or in groups of four split by one kind of separator; Amex 4-6-5.
    (
        r"[2-6][0-9]{3}(?:[ -]?[0-9]{4}){2}[ -]?[0-9]{1,7}|3[47][0-9]{2}[ -]?[0-9]{6}[ -]?[0-9]{5}",
        RuleKind::Card,
    ),
    (r"(?-u:\b)[0-9]{3}-[0-9]{2}-[0-9]{4}(?-u:\b)", RuleKind::Ssn),
    (phone::PATTERN, RuleKind::Phone),
    (iban::PATTERN, RuleKind::Iban),
    (
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?-u:\b)",
        RuleKind::Email,
    ),
];

/// Rules of the second pass, on what the first one left.
const LATE_RULES: &[RuleSpec] = &[
    (r"\[redacted(?::[a-z0-9_-]+)?\]", RuleKind::Marker),
    (r"[A-Za-z0-9+/_-]{24,}={0,2}", RuleKind::Random),
];

/// The built-in rules of the first and second pass, compiled once per process (a clone shares
/// the compiled regexes).
pub(super) fn builtin() -> (Vec<Rule>, Vec<Rule>) {
    fn compile(rules: &[RuleSpec]) -> Vec<Rule> {
        rules
            .iter()
            .map(|&(pattern, kind)| Rule {
                // The patterns are constants, covered by the tests.
                regex: Regex::new(pattern).expect("built-in scrub pattern"),
                kind,
                label: None,
            })
            .collect()
    }
    static COMPILED: std::sync::LazyLock<(Vec<Rule>, Vec<Rule>)> =
        std::sync::LazyLock::new(|| (compile(RULES), compile(LATE_RULES)));
    COMPILED.clone()
}

impl Rule {
    pub(super) fn custom(label: &str, regex: Regex) -> Rule {
        Rule {
            regex,
            kind: RuleKind::Custom,
            label: Some(label.into()),
        }
    }

    pub(super) fn custom_label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// Decides about one match. `pos` is where unscrubbed text begins: the character before a
    /// match that starts there belongs to an earlier redaction, so it counts as a boundary.
    pub(super) fn judge(
        &self,
        caps: &Captures<'_>,
        text: &str,
        pos: usize,
        extra_keys: &[String],
    ) -> Verdict {
        let Some(whole) = caps.get(0) else {
            return Verdict::Reject;
        };
        if whole.is_empty() {
            return Verdict::Reject;
        }
        let range = whole.range();
        let before = if range.start > pos {
            text[..range.start].chars().next_back()
        } else {
            None
        };
        let after = text[range.end..].chars().next();
        let redact_all = Verdict::Redact {
            scan: range.start..range.start,
            secret: range.clone(),
        };
        // Only the group is secret; what precedes it in the match is scrubbed on its own.
        let redact_group = |name: &str, scan_prefix: bool| match caps.name(name) {
            Some(m) if !m.is_empty() => Verdict::Redact {
                scan: range.start..if scan_prefix { m.start() } else { range.start },
                secret: m.range(),
            },
            _ => Verdict::Reject,
        };
        // A value an earlier scrub replaced (`password=[redacted]`): written again as it was.
        if let Some(marker) = caps.name("m").filter(|_| self.kind != RuleKind::Custom) {
            let scan = match caps.name("key") {
                Some(key) => key.range(),
                None if self.kind == RuleKind::UrlPassword => range.start..marker.start(),
                None => range.start..range.start,
            };
            return Verdict::Pass {
                scan,
                end: marker.start(),
            };
        }
        match &self.kind {
            RuleKind::Marker => Verdict::Keep { end: range.end },
            RuleKind::UrlPassword => redact_group("secret", true),
            RuleKind::KeyValue => judge_key_value(caps, text, extra_keys),
            RuleKind::AuthScheme => match caps.name("secret") {
                Some(m) if checks::looks_like_credential(m.as_str()) => {
                    redact_group("secret", false)
                }
                _ => Verdict::Reject,
            },
            RuleKind::Jwt | RuleKind::AwsKey | RuleKind::Email | RuleKind::PrivateKey => redact_all,
            RuleKind::Phone => {
                // The character itself, not `before`: whether the number touches a word must
                // not depend on that word having been redacted earlier in this pass.
                let previous = text[..range.start].chars().next_back();
                match phone::phone_len(whole.as_str(), previous, &text[range.end..]) {
                    Some(len) => Verdict::Redact {
                        scan: range.start..range.start,
                        secret: range.start..range.start + len,
                    },
                    None => Verdict::Reject,
                }
            }
            RuleKind::Iban => match iban::iban_len(whole.as_str(), before, after) {
                Some(len) => Verdict::Redact {
                    scan: range.start..range.start,
                    secret: range.start..range.start + len,
                },
                None => Verdict::Reject,
            },
            RuleKind::ApiKey => {
                if whole.as_str().bytes().any(|b| b.is_ascii_digit()) {
                    redact_all
                } else {
                    Verdict::Reject
                }
            }
            RuleKind::Card => {
                let boundary = |c: Option<char>| !c.is_some_and(|c| c.is_ascii_alphanumeric());
                if boundary(before) && boundary(after) && checks::is_card_number(whole.as_str()) {
                    redact_all
                } else {
                    Verdict::Reject
                }
            }
            RuleKind::Ssn => {
                if checks::is_ssn(whole.as_str()) {
                    redact_all
                } else {
                    Verdict::Reject
                }
            }
            RuleKind::Random => {
                if !before.is_some_and(is_token_char) && checks::looks_random(whole.as_str()) {
                    redact_all
                } else {
                    Verdict::Reject
                }
            }
            RuleKind::Custom => match caps.name("secret") {
                Some(_) => redact_group("secret", true),
                None => redact_all,
            },
        }
    }
}

fn judge_key_value(caps: &Captures<'_>, text: &str, extra_keys: &[String]) -> Verdict {
    let Some(key) = caps.name("key") else {
        return Verdict::Reject;
    };
    if !keys::is_sensitive(key.as_str(), extra_keys) {
        return Verdict::Reject;
    }
    let Some(value) = ["eq", "dq", "sq", "v"].iter().find_map(|g| caps.name(g)) else {
        return Verdict::Reject;
    };
    let bare = caps.name("v").is_some();
    // `scheme://…` is a URL (its password has a rule of its own), not `key: value`; a bare PEM
    // block is taken whole by its own rule, not cut at its first space.
    if value.is_empty()
        || value.as_str().starts_with("//")
        || (bare && pem::starts_block(value.as_str()))
    {
        return Verdict::Reject;
    }
    if is_marker(value.as_str()) {
        return Verdict::Pass {
            scan: key.range(),
            end: value.start(),
        };
    }
    // A quote the text ends inside holds a secret to the end, but not when an earlier scrub
    // redacted in there: its closing quote may have gone with what that scrub redacted, and
    // the first scrub did not read the value this way (scrubbing twice must change nothing).
    if !bare && value.end() == text.len() && value.as_str().contains("[redacted") {
        return Verdict::Reject;
    }
    let mut secret = value.range();
    // A cookie header holds several pairs: everything to the end of the line is secret.
    if bare && keys::glue(key.as_str()).ends_with("cookie") {
        let rest = &text[secret.end..];
        secret.end += rest.find(['\r', '\n', '"', '\'']).unwrap_or(rest.len());
    }
    Verdict::Redact {
        scan: key.range(),
        secret,
    }
}

fn is_marker(s: &str) -> bool {
    s.strip_prefix("[redacted")
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|kind| {
            kind.is_empty()
                || kind.strip_prefix(':').is_some_and(|k| {
                    !k.is_empty()
                        && k.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                        })
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_pattern_compiles() {
        let (shapes, late) = builtin();
        assert_eq!(shapes.len(), RULES.len());
        assert_eq!(late.len(), LATE_RULES.len());
    }

    #[test]
    fn markers_are_recognised() {
        assert!(is_marker("[redacted]"));
        assert!(is_marker("[redacted:email]"));
        assert!(!is_marker("[redacted:]"));
        assert!(!is_marker("[redacted] x"));
    }
}
