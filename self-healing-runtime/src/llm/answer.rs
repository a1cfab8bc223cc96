//! The model's answer, mapped into closed types: anything outside them is dropped, not trusted.

use serde_json::Value;

use crate::diagnosis::{ErrorClass, Severity};
use crate::selection::Advice;

/// The error classes the model may name (`rate_limited` carries no retry-after here).
pub(crate) const CLASSES: [ErrorClass; 8] = [
    ErrorClass::Transient,
    ErrorClass::Timeout,
    ErrorClass::ConnectionLost,
    ErrorClass::RateLimited { retry_after: None },
    ErrorClass::AuthExpired,
    ErrorClass::ResourceExhausted,
    ErrorClass::Permanent,
    ErrorClass::Bug,
];

/// The severities the model may name.
pub(crate) const SEVERITIES: [Severity; 4] = [
    Severity::Low,
    Severity::Medium,
    Severity::High,
    Severity::Critical,
];

/// What the model answered about one family of failures.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LlmAnswer {
    /// The likely cause, in words, capped.
    pub(crate) diagnosis: String,
    /// The class it sees, when it named a known one.
    pub(crate) class: Option<ErrorClass>,
    /// The strategy it recommends, when that is one of the healer's.
    pub(crate) strategy: Option<&'static str>,
    /// A strategy it named that the healer does not have (ignored, counted).
    pub(crate) unknown_strategy: Option<String>,
    /// The severity it sees, when it named a known one.
    pub(crate) severity: Option<Severity>,
    /// Its confidence, clamped to 0–1 (0.5 when missing or not a number).
    pub(crate) confidence: f32,
    /// Why, in words, capped.
    pub(crate) reasoning: String,
}

impl LlmAnswer {
    /// Parses the model's JSON text. `strategies` are the names the healer has.
    pub(crate) fn parse(
        content: &str,
        strategies: &[&'static str],
        max_chars: usize,
    ) -> Result<LlmAnswer, String> {
        let json = strip_code_fence(content);
        let value: Value =
            serde_json::from_str(json).map_err(|e| format!("answer is not JSON: {e}"))?;
        let object = value.as_object().ok_or("answer is not a JSON object")?;
        let text = |field: &str| object.get(field).and_then(Value::as_str).map(str::trim);
        let diagnosis = text("diagnosis")
            .filter(|d| !d.is_empty())
            .ok_or("answer has no `diagnosis`")?;
        let named = text("recommended_strategy")
            .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("none"));
        let strategy = named.and_then(|n| strategies.iter().copied().find(|s| *s == n));
        let confidence = object
            .get("confidence")
            .and_then(Value::as_f64)
            .filter(|c| c.is_finite())
            .map_or(0.5, |c| c.clamp(0.0, 1.0) as f32);
        // The model may repeat what it was shown, or make up something that looks like a
        // secret: its words are scrubbed like every message before they are kept or shown.
        let scrubbed = |text: &str| cap(&crate::scrub::scrub(text), max_chars);
        Ok(LlmAnswer {
            diagnosis: scrubbed(diagnosis),
            class: text("error_class").and_then(|c| CLASSES.into_iter().find(|k| k.as_str() == c)),
            strategy,
            unknown_strategy: match (named, strategy) {
                (Some(n), None) => Some(cap(n, 64)),
                _ => None,
            },
            severity: text("severity")
                .and_then(|s| SEVERITIES.into_iter().find(|k| k.as_str() == s)),
            confidence,
            reasoning: scrubbed(text("reasoning").unwrap_or_default()),
        })
    }

    /// The advice this answer gives: a prior for its strategy (none when it named no known one),
    /// and the diagnosis in words for the dashboard.
    pub(crate) fn to_advice(&self, analyzer: &str, max_chars: usize) -> Advice {
        let mut words = String::new();
        if let Some(class) = self.class {
            words.push_str(class.as_str());
        }
        if let Some(severity) = self.severity {
            if !words.is_empty() {
                words.push_str(", ");
            }
            words.push_str(severity.as_str());
        }
        if !words.is_empty() {
            words = format!("[{words}] ");
        }
        words.push_str(&self.diagnosis);
        if !self.reasoning.is_empty() {
            words.push_str(" Why: ");
            words.push_str(&self.reasoning);
        }
        Advice {
            strategy: self.strategy.unwrap_or_default().to_owned(),
            confidence: self.confidence,
            diagnosis: cap(&words, max_chars),
            analyzer: analyzer.to_owned(),
        }
    }
}

/// Models asked for a bare JSON object sometimes wrap it in a Markdown code fence.
fn strip_code_fence(content: &str) -> &str {
    let trimmed = content.trim();
    trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.trim_end().strip_suffix("```"))
        .map_or(trimmed, str::trim)
}

/// At most `max` characters, on a character boundary, with `…` when cut.
pub(crate) fn cap(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => {
            let mut cut = s[..end].trim_end().to_owned();
            cut.pop();
            cut.push('…');
            cut
        }
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &["retry", "reconnect", "escalate"];

    #[test]
    fn a_full_answer_maps_into_closed_types() {
        let a = LlmAnswer::parse(
            r#"{"diagnosis":"pool exhausted","error_class":"resource_exhausted",
                "recommended_strategy":"reconnect","severity":"high","confidence":1.7,
                "reasoning":"connections leak"}"#,
            NAMES,
            100,
        )
        .unwrap();
        assert_eq!(a.class, Some(ErrorClass::ResourceExhausted));
        assert_eq!(a.strategy, Some("reconnect"));
        assert_eq!(a.severity, Some(Severity::High));
        assert_eq!(a.confidence, 1.0, "clamped");
        let advice = a.to_advice("llm:m", 200);
        assert_eq!(advice.strategy, "reconnect");
        assert_eq!(
            advice.diagnosis,
            "[resource_exhausted, high] pool exhausted Why: connections leak"
        );
    }

    #[test]
    fn the_models_words_are_scrubbed() {
        let a = LlmAnswer::parse(
            r#"{"diagnosis":"the password in postgres://app:S3cr3tPass@db:5432/app was rejected",
                "reasoning":"rotate api_key=sk-live-4f9a8b7c6d5e4f3a2b1c0d9e"}"#,
            NAMES,
            500,
        )
        .unwrap();
        let advice = a.to_advice("llm:m", 500).diagnosis;
        assert!(advice.contains("was rejected"), "{advice}");
        assert!(
            !advice.contains("S3cr3tPass") && !advice.contains("sk-live-4f9a"),
            "{advice}"
        );
    }

    #[test]
    fn unknown_names_are_ignored_not_trusted() {
        let a = LlmAnswer::parse(
            "```json\n{\"diagnosis\":\"x\",\"error_class\":\"cosmic_rays\",\"recommended_strategy\":\"reboot_the_world\",\"severity\":\"apocalyptic\",\"confidence\":\"high\"}\n```",
            NAMES,
            100,
        )
        .unwrap();
        assert_eq!(a.class, None);
        assert_eq!(a.strategy, None);
        assert_eq!(a.unknown_strategy.as_deref(), Some("reboot_the_world"));
        assert_eq!(a.severity, None);
        assert_eq!(a.confidence, 0.5);
        assert_eq!(a.to_advice("llm", 100).strategy, "");
    }

    #[test]
    fn malformed_answers_are_errors() {
        for bad in [
            "",
            "not json",
            "[1,2]",
            r#"{"diagnosis":""}"#,
            r#"{"reasoning":"x"}"#,
        ] {
            assert!(LlmAnswer::parse(bad, NAMES, 100).is_err(), "{bad}");
        }
    }

    #[test]
    fn texts_are_capped_on_char_boundaries() {
        assert_eq!(cap("héllo wörld", 5), "héll…");
        assert_eq!(cap("short", 10), "short");
    }
}
