//! The LLM analyzer against a loopback server speaking the chat-completions protocol: good
//! answers change the next selection; every kind of failure leaves the rules in charge and is
//! counted. No real sleeps: the clock is real only where nothing waits on it (backoff is zero),
//! and the timeout case runs on tokio's paused clock.

#![cfg(feature = "llm")]

mod common;
mod loopback;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::Flaky;
use loopback::{Reply, Request, Server};
use self_healing_runtime::event::StepResult;
use self_healing_runtime::llm::{LlmAnalyzer, LlmConfig, LlmStats};
use self_healing_runtime::selection::Advice;
use self_healing_runtime::{
    Category, Healer, HealingEvent, InMemoryStore, Site, WithHealerExt, heal,
};
use serde_json::json;

/// A chat-completions reply whose content is `answer`.
fn completion(answer: serde_json::Value) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "test-model",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": answer.to_string(), "refusal": null},
                "finish_reason": "stop"
            }]
        }),
    )
}

fn recommend(strategy: &str) -> Reply {
    completion(json!({
        "diagnosis": "the lock order of two transactions conflicts",
        "error_class": "transient",
        "recommended_strategy": strategy,
        "severity": "medium",
        "confidence": 0.9,
        "reasoning": "a fresh connection resets the session's lock state"
    }))
}

struct Rig {
    server: Server,
    analyzer: LlmAnalyzer,
    healer: Healer,
    store: InMemoryStore,
    reconnects: Arc<AtomicU32>,
}

fn config(server: &Server) -> LlmConfig {
    LlmConfig::new("test-key")
        .base_url(format!("{}/v1", server.url()))
        .model("test-model")
        .timeout(Duration::from_secs(30))
}

async fn rig(
    script: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static,
    tune: impl FnOnce(LlmConfig) -> LlmConfig,
) -> Rig {
    let server = Server::start(script).await;
    let analyzer = LlmAnalyzer::new(tune(config(&server))).expect("valid settings");
    let store = InMemoryStore::new();
    let reconnects = Arc::new(AtomicU32::new(0));
    let counter = reconnects.clone();
    let healer = Healer::builder()
        .store(store.clone())
        .seed(1)
        .backoff(Duration::ZERO, Duration::ZERO)
        .on_reconnect(Category::Database, move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .llm(analyzer.clone())
        .build()
        .expect("healer");
    Rig {
        server,
        analyzer,
        healer,
        store,
        reconnects,
    }
}

impl Rig {
    /// One call that fails once with `message`, then waits until its event was written and the
    /// analyzer is done with it. Returns the call's event.
    async fn fail_once(&self, site: &'static Site, message: &str) -> HealingEvent {
        let dependency = Flaky::failing(1, message);
        let result = heal(site, || async { dependency.call() })
            .with_healer(self.healer.clone())
            .await;
        assert!(result.is_ok(), "healed by a strategy: {result:?}");
        self.healer.flush().await.expect("flushed");
        self.analyzer.idle().await;
        self.store.events().pop().expect("an event")
    }

    fn advice(&self, event: &HealingEvent) -> Option<Advice> {
        self.healer.patterns().advice(event.fingerprint)
    }

    fn stats(&self) -> LlmStats {
        self.analyzer.stats()
    }
}

/// The strategy that acted first (guards and inapplicable ones skipped).
fn first_acting(event: &HealingEvent) -> &str {
    event
        .diagnosis
        .steps
        .iter()
        .find(|s| s.result != StepResult::Skipped)
        .map(|s| &*s.strategy)
        .unwrap_or("none")
}

#[tokio::test]
async fn a_good_answer_changes_the_next_selection() {
    let rig = rig(|_, _| recommend("reconnect"), |c| c).await;
    let site = test_site!("llmGoodAnswer", Database);
    let message = "deadlock detected while updating contact of bob@example.com";

    let first = rig.fail_once(site, message).await;
    assert_eq!(
        first_acting(&first),
        "retry",
        "the rules pick retry for a deadlock"
    );
    let advice = rig.advice(&first).expect("advice from the answer");
    assert_eq!(advice.strategy, "reconnect");
    assert_eq!(advice.confidence, 0.9);
    assert_eq!(advice.analyzer, "llm:test-model");
    assert!(advice.diagnosis.contains("lock order"), "{advice:?}");

    let second = rig.fail_once(site, message).await;
    assert_eq!(second.fingerprint, first.fingerprint);
    assert_eq!(
        first_acting(&second),
        "reconnect",
        "the advice is a prior now"
    );
    assert_eq!(rig.reconnects.load(Ordering::SeqCst), 1);

    let stats = rig.stats();
    assert_eq!(
        (stats.asked, stats.answered, stats.advised),
        (1, 1, 1),
        "{stats:?}"
    );
    // The family was asked about once; the request follows the protocol and is scrubbed.
    let requests = rig.server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.header("authorization"), Some("Bearer test-key"));
    let body = request.json();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["strict"], true);
    let question = body["messages"][1]["content"].as_str().unwrap();
    assert!(question.contains("deadlock detected"), "{question}");
    assert!(
        !question.contains("bob@example.com"),
        "scrubbed: {question}"
    );
    assert!(question.contains("[redacted:email]"), "{question}");
}

#[tokio::test]
async fn a_server_without_json_schema_is_asked_with_json_object() {
    let rig = rig(
        |request, _| {
            if request.json()["response_format"]["type"] == "json_schema" {
                Reply::json(
                    400,
                    json!({"error": {
                        "message": "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.",
                        "type": "invalid_request_error",
                        "param": "response_format"
                    }}),
                )
            } else {
                recommend("reconnect")
            }
        },
        |c| c,
    )
    .await;
    let site = test_site!("llmJsonObject", Database);
    let event = rig.fail_once(site, "deadlock detected (json_object)").await;
    assert_eq!(
        rig.advice(&event).map(|a| a.strategy).as_deref(),
        Some("reconnect")
    );
    let kinds = |rig: &Rig| -> Vec<String> {
        rig.server
            .requests()
            .iter()
            .map(|r| {
                r.json()["response_format"]["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(kinds(&rig), ["json_schema", "json_object"]);
    // Remembered: the next family is asked with json_object at once.
    rig.fail_once(site, "serialization failure (another family)")
        .await;
    assert_eq!(kinds(&rig), ["json_schema", "json_object", "json_object"]);
    let stats = rig.stats();
    assert_eq!(
        (stats.schema_fallbacks, stats.answered),
        (1, 2),
        "{stats:?}"
    );
}

/// Runs one failing call against a scripted failure and checks the rules stayed in charge: no
/// advice (or advice without a strategy), the next call still starts with retry.
async fn rules_stay_in_charge(site: &'static Site, reply: Reply) -> (LlmStats, Option<Advice>) {
    let rig = rig(move |_, _| reply.clone(), |c| c).await;
    let first = rig.fail_once(site, "deadlock detected").await;
    let advice = rig.advice(&first);
    let second = rig.fail_once(site, "deadlock detected").await;
    assert_eq!(first_acting(&second), "retry", "rules decide: {advice:?}");
    assert_eq!(rig.reconnects.load(Ordering::SeqCst), 0);
    let stats = rig.stats();
    assert_eq!(
        stats.asked, 1,
        "asked once, not again within the retry delay: {stats:?}"
    );
    assert_eq!(stats.answered, u64::from(advice.is_some()), "{stats:?}");
    (stats, advice)
}

#[tokio::test]
async fn rate_limited_by_the_server() {
    let reply = Reply::Respond {
        status: 429,
        headers: vec![("Retry-After", "120".to_owned())],
        body: r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#.to_owned(),
    };
    let (stats, advice) = rules_stay_in_charge(test_site!("llm429", Database), reply).await;
    assert_eq!(advice, None);
    assert_eq!(stats.rate_limited, 1, "{stats:?}");
}

#[tokio::test]
async fn server_error() {
    let reply = Reply::json(
        500,
        json!({"error": {"message": "The server had an error"}}),
    );
    let (stats, advice) = rules_stay_in_charge(test_site!("llm500", Database), reply).await;
    assert_eq!(advice, None);
    assert_eq!(
        (stats.http_errors, stats.last_http_status),
        (1, 500),
        "{stats:?}"
    );
}

#[tokio::test]
async fn refusal() {
    let reply = Reply::json(
        200,
        json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": null,
            "refusal": "I'm sorry, I can't help with that."}, "finish_reason": "stop"}]}),
    );
    let (stats, advice) = rules_stay_in_charge(test_site!("llmRefusal", Database), reply).await;
    assert_eq!(advice, None);
    assert_eq!(stats.refused, 1, "{stats:?}");
}

#[tokio::test]
async fn garbage_reply() {
    let reply = Reply::text(200, "<html>502 Bad Gateway</html>");
    let (stats, advice) = rules_stay_in_charge(test_site!("llmGarbage", Database), reply).await;
    assert_eq!(advice, None);
    assert_eq!(stats.malformed, 1, "{stats:?}");
}

#[tokio::test]
async fn garbage_json_in_the_answer() {
    let reply = Reply::json(
        200,
        json!({"choices": [{"index": 0, "message": {"role": "assistant",
            "content": "{\"diagnosis\": \"dead", "refusal": null}, "finish_reason": "stop"}]}),
    );
    let (stats, advice) = rules_stay_in_charge(test_site!("llmGarbageJson", Database), reply).await;
    assert_eq!(advice, None);
    assert_eq!(stats.malformed, 1, "{stats:?}");
}

#[tokio::test]
async fn answer_cut_at_the_token_limit() {
    let reply = Reply::json(
        200,
        json!({"choices": [{"index": 0, "message": {"role": "assistant",
            "content": "{\"diagnosis\": \"the lock", "refusal": null}, "finish_reason": "length"}]}),
    );
    let (stats, advice) = rules_stay_in_charge(test_site!("llmLength", Database), reply).await;
    assert_eq!(advice, None);
    assert_eq!(stats.truncated, 1, "{stats:?}");
}

#[tokio::test]
async fn unknown_strategy_name() {
    let (stats, advice) = rules_stay_in_charge(
        test_site!("llmUnknown", Database),
        recommend("reboot_the_world"),
    )
    .await;
    let advice = advice.expect("the diagnosis is kept");
    assert_eq!(advice.strategy, "", "without a strategy");
    assert!(advice.diagnosis.contains("lock order"), "{advice:?}");
    assert_eq!(
        (stats.answered, stats.advised, stats.unknown_strategy),
        (1, 0, 1),
        "{stats:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_times_out() {
    let rig = rig(|_, _| Reply::Hang, |c| c.timeout(Duration::from_secs(5))).await;
    let site = test_site!("llmTimeout", Database);
    let event = rig.fail_once(site, "deadlock detected").await;
    assert_eq!(rig.advice(&event), None);
    let stats = rig.stats();
    assert_eq!((stats.asked, stats.timeouts), (1, 1), "{stats:?}");
}

#[tokio::test]
async fn the_per_minute_limit_holds_questions_back() {
    let rig = rig(|_, _| recommend("reconnect"), |c| c.per_minute(1)).await;
    let site = test_site!("llmPerMinute", Database);
    rig.fail_once(site, "deadlock detected").await;
    rig.fail_once(site, "serialization failure").await;
    let stats = rig.stats();
    assert_eq!((stats.asked, stats.throttled), (1, 1), "{stats:?}");
    assert_eq!(rig.server.requests().len(), 1);
}

#[tokio::test]
async fn bad_settings_name_the_setting() {
    let err = LlmAnalyzer::new(LlmConfig::new("k").base_url("not a url")).unwrap_err();
    assert_eq!(err.setting, "base_url", "{err}");
    let err = LlmAnalyzer::new(LlmConfig::new("k").per_minute(0)).unwrap_err();
    assert_eq!(err.setting, "per_minute", "{err}");
    let err = LlmAnalyzer::new(LlmConfig::new("")).unwrap_err();
    assert_eq!(err.setting, "api_key", "{err}");
}
