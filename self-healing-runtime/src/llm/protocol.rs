//! The chat-completions protocol: the question (messages, structured-output schema) and the
//! reading of the server's reply.

use serde_json::{Value, json};

use super::answer::{CLASSES, SEVERITIES};
use crate::event::HealingEvent;
use crate::scrub::{scrub, scrub_message};

/// How the answer's shape is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseFormat {
    /// `json_schema` with `strict: true`: the server guarantees the shape.
    JsonSchema,
    /// `json_object`: any JSON object (servers that reject `json_schema`).
    JsonObject,
}

/// What the failure family looks like, scrubbed, as the model will see it.
#[derive(Debug, Clone)]
pub(crate) struct Question {
    facts: Value,
}

impl Question {
    /// The question about the family of `event`. Every text is scrubbed again here: an
    /// installed scrubber may know more than the one that ran when the event was recorded.
    pub(crate) fn about(event: &HealingEvent) -> Question {
        let steps: Vec<String> = event
            .diagnosis
            .steps
            .iter()
            .map(|s| {
                scrub_message(&format!(
                    "{}: {} ({})",
                    s.strategy,
                    s.result.as_str(),
                    s.note
                ))
            })
            .collect();
        Question {
            facts: json!({
                "source": scrub(&event.source),
                "category": event.category.as_str(),
                // Scrubbed whole, then cut: the prompt never holds half a secret.
                "message": scrub_message(&event.message),
                "class_by_rules": event.class.as_str(),
                "severity_by_rules": event.severity.as_str(),
                "outcome": event.outcome.as_str(),
                "last_strategy": event.strategy.as_deref(),
                "attempts": event.attempts,
                "occurrences": event.count,
                "steps": steps,
            }),
        }
    }
}

/// One line per built-in strategy, so the model knows what each does.
fn describe(strategy: &str) -> &'static str {
    match strategy {
        "retry" => "re-run after exponential backoff with jitter",
        "circuit_breaker" => "fail fast while the dependency keeps failing",
        "timeout" => "re-run with a per-attempt deadline",
        "rate_limit_wait" => "wait for the rate limit (Retry-After), then re-run",
        "reconnect" => "run the reconnect hook (rebuild the connection pool), then re-run once",
        "credential_refresh" => "run the credential-refresh hook, then re-run once",
        "fallback" => "answer with the function's declared fallback",
        "cached_value" => "answer with the last good value for the same arguments",
        "bulkhead" => "wait for a free slot of the site's concurrency cap, then re-run",
        "escalate" => "no re-run: notify admins and return the error",
        _ => "registered by the application",
    }
}

/// The JSON schema of the answer. Strict mode wants every field required and no others.
fn schema(strategies: &[&'static str]) -> Value {
    let mut names: Vec<&str> = strategies.to_vec();
    names.push("none");
    json!({
        "type": "object",
        "properties": {
            "diagnosis": {"type": "string", "description": "the likely cause, one or two sentences"},
            "error_class": {"type": "string", "enum": CLASSES.iter().map(|c| c.as_str()).collect::<Vec<_>>()},
            "recommended_strategy": {"type": "string", "enum": names},
            "severity": {"type": "string", "enum": SEVERITIES.iter().map(|s| s.as_str()).collect::<Vec<_>>()},
            "confidence": {"type": "number", "description": "0 to 1"},
            "reasoning": {"type": "string", "description": "why this strategy, one or two sentences"}
        },
        "required": ["diagnosis", "error_class", "recommended_strategy", "severity", "confidence", "reasoning"],
        "additionalProperties": false
    })
}

fn system_prompt(strategies: &[&'static str]) -> String {
    let mut prompt = String::from(
        "You diagnose failures of functions wrapped by a self-healing runtime. You get one \
         family of failures (secrets and personal data are already redacted) and answer with a \
         JSON object with exactly these fields: diagnosis (the likely cause, one or two \
         sentences), error_class (one of: ",
    );
    prompt.push_str(&CLASSES.map(|c| c.as_str()).join(", "));
    prompt.push_str(
        "), recommended_strategy (the healing strategy most likely to turn the next such \
         failure into a success, one of the names below, or \"none\"), severity (low, medium, \
         high or critical), confidence (0 to 1), reasoning (why, one or two sentences).\n\
         Strategies:\n",
    );
    for name in strategies {
        prompt.push_str("- ");
        prompt.push_str(name);
        prompt.push_str(": ");
        prompt.push_str(describe(name));
        prompt.push('\n');
    }
    prompt
}

/// The request body.
pub(crate) fn request_body(
    model: &str,
    question: &Question,
    strategies: &[&'static str],
    format: ResponseFormat,
    max_completion_tokens: u32,
) -> Value {
    let response_format = match format {
        ResponseFormat::JsonSchema => json!({
            "type": "json_schema",
            "json_schema": {"name": "healing_diagnosis", "strict": true, "schema": schema(strategies)}
        }),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
    };
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": system_prompt(strategies)},
            {"role": "user", "content": question.facts.to_string()}
        ],
        "response_format": response_format,
        "max_completion_tokens": max_completion_tokens
    })
}

/// Whether a 400 body says the server does not support `json_schema` structured output.
pub(crate) fn rejects_json_schema(body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    lower.contains("response_format") || lower.contains("json_schema")
}

/// How a 200 reply ended.
#[derive(Debug, PartialEq)]
pub(crate) enum Reply {
    /// The model's text (to be parsed as the answer).
    Content(String),
    /// The model refused (`refusal`, or `finish_reason: "content_filter"`).
    Refused,
    /// The answer was cut at the token limit (`finish_reason: "length"`).
    Truncated,
    /// The reply does not follow the protocol.
    Malformed(String),
}

/// Reads a chat-completions reply.
pub(crate) fn read_reply(body: &[u8]) -> Reply {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Reply::Malformed("reply is not JSON".into());
    };
    let Some(choice) = value.get("choices").and_then(|c| c.get(0)) else {
        return Reply::Malformed("reply has no choices".into());
    };
    let message = choice.get("message");
    let refusal = message
        .and_then(|m| m.get("refusal"))
        .and_then(Value::as_str);
    if refusal.is_some_and(|r| !r.trim().is_empty()) {
        return Reply::Refused;
    }
    match choice.get("finish_reason").and_then(Value::as_str) {
        Some("length") => return Reply::Truncated,
        Some("content_filter") => return Reply::Refused,
        _ => {}
    }
    match message
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
    {
        Some(content) if !content.trim().is_empty() => Reply::Content(content.to_owned()),
        _ => Reply::Malformed("reply has no content".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_by_the_protocol() {
        let ok = br#"{"choices":[{"message":{"role":"assistant","content":"{}","refusal":null},"finish_reason":"stop"}]}"#;
        assert_eq!(read_reply(ok), Reply::Content("{}".into()));
        let refused = br#"{"choices":[{"message":{"content":null,"refusal":"I can't help"},"finish_reason":"stop"}]}"#;
        assert_eq!(read_reply(refused), Reply::Refused);
        let cut = br#"{"choices":[{"message":{"content":"{\"diag"},"finish_reason":"length"}]}"#;
        assert_eq!(read_reply(cut), Reply::Truncated);
        assert!(matches!(read_reply(b"<html>"), Reply::Malformed(_)));
        assert!(matches!(
            read_reply(br#"{"choices":[]}"#),
            Reply::Malformed(_)
        ));
    }

    #[test]
    fn the_schema_is_strict_and_lists_the_strategies() {
        let q = Question { facts: json!({}) };
        let body = request_body("m", &q, &["retry"], ResponseFormat::JsonSchema, 100);
        let format = &body["response_format"];
        assert_eq!(format["type"], "json_schema");
        assert_eq!(format["json_schema"]["strict"], true);
        let schema = &format["json_schema"]["schema"];
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(
            schema["required"].as_array().unwrap().len(),
            schema["properties"].as_object().unwrap().len()
        );
        assert_eq!(
            schema["properties"]["recommended_strategy"]["enum"],
            json!(["retry", "none"])
        );
        let fallback = request_body("m", &q, &["retry"], ResponseFormat::JsonObject, 100);
        assert_eq!(fallback["response_format"], json!({"type": "json_object"}));
        // json_object mode requires the word JSON in the messages.
        assert!(
            fallback["messages"][0]["content"]
                .as_str()
                .unwrap()
                .contains("JSON")
        );
    }
}
