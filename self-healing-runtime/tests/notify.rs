//! Admin notifications against loopback receivers: payload shapes, HMAC signatures, throttling of
//! a storm on tokio's paused clock, and a receiver that is down and then up. No real sleeps.

#![cfg(feature = "notify")]

mod common;
mod loopback;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Failure;
use hmac::{Hmac, KeyInit, Mac};
use loopback::{Reply, Request, Server};
use self_healing_runtime::notify::{
    DeliveryStatus, EmailApi, NotificationRecord, NotifyDispatcher, SIGNATURE_HEADER,
    SignedWebhook, SlackWebhook, TracingNotifier, Triggers,
};
use self_healing_runtime::{ErrorOps, Healer, InMemoryStore, Site, WithHealerExt, heal, heal_with};
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "test-secret-of-at-least-16-bytes";

fn ok(_: &Request, _: usize) -> Reply {
    Reply::text(200, "ok")
}

/// Checks the signature the way a receiver would: HMAC-SHA256 over the raw body.
fn verify_signature(request: &Request) {
    let header = request.header(SIGNATURE_HEADER).expect("signed");
    let hex = header.strip_prefix("sha256=").expect("sha256=<hex>");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&request.body);
    mac.verify_slice(&bytes)
        .expect("the signature matches the body");
    // And a tampered body does not verify.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(b"{\"count\":1}");
    assert!(mac.verify_slice(&bytes).is_err());
}

fn records_into(
    sink: &Arc<Mutex<Vec<NotificationRecord>>>,
) -> impl Fn(NotificationRecord) + Send + Sync + 'static {
    let sink = sink.clone();
    move |r| sink.lock().unwrap().push(r)
}

/// A call that fails for good (a permanent error: escalated, outcome `failed`). No guard answers
/// for the body (as with `fail_fast = false`): a storm stays one family of identical failures
/// instead of turning into fast failures once the circuit opens.
async fn fail(healer: &Healer, site: &'static Site, message: &str) {
    let ops = ErrorOps::<Failure>::without_rejections(|e| e);
    let result: Result<u32, Failure> =
        heal_with(site, ops, || async { Err(Failure(message.to_owned())) })
            .with_healer(healer.clone())
            .await;
    assert!(result.is_err());
}

async fn settle(healer: &Healer, dispatcher: &NotifyDispatcher) {
    healer.flush().await.expect("flushed");
    dispatcher.idle().await;
}

#[tokio::test]
async fn every_channel_gets_its_payload() {
    let slack = Server::start(ok).await;
    let hook = Server::start(ok).await;
    let mail = Server::start(ok).await;
    let records = Arc::new(Mutex::new(Vec::new()));
    let dispatcher = NotifyDispatcher::builder()
        .notifier(TracingNotifier)
        .notifier(SlackWebhook::new(&format!("{}/services/T0/B0/XYZ", slack.url())).unwrap())
        .notifier(SignedWebhook::new(&format!("{}/hooks/healing", hook.url()), SECRET).unwrap())
        .notifier(
            EmailApi::new(
                &mail.url(),
                "re_test_key",
                ["ops@example.com", "cto@example.com"],
            )
            .unwrap()
            .from_address("alerts@example.com"),
        )
        .on_record(records_into(&records))
        .build()
        .unwrap();
    let store = InMemoryStore::new();
    let healer = Healer::builder()
        .store(store.clone())
        .notify(dispatcher.clone())
        .build()
        .unwrap();
    let site = test_site!("notifyPayload", Database);
    fail(
        &healer,
        site,
        "duplicate key for bob@example.com violates unique constraint",
    )
    .await;
    settle(&healer, &dispatcher).await;
    let event = store.events().pop().unwrap();

    // Slack: text and a mrkdwn section; scrubbed.
    let [request] = slack.requests().try_into().expect("one Slack message");
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/services/T0/B0/XYZ")
    );
    let body = request.json();
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("healing failed at notifyPayload"), "{text}");
    assert_eq!(body["blocks"][0]["text"]["type"], "mrkdwn");
    assert!(!String::from_utf8_lossy(&request.body).contains("bob@example.com"));

    // Signed webhook: verifiable, and the full record.
    let [request] = hook.requests().try_into().expect("one webhook call");
    verify_signature(&request);
    assert_eq!(request.header("x-self-healing-kind"), Some("alert"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json();
    assert_eq!(body["kind"], "alert");
    assert_eq!(body["source"], "notifyPayload");
    assert_eq!(body["category"], "database");
    assert_eq!(body["class"], "permanent");
    assert_eq!(body["outcome"], "failed");
    assert_eq!(body["count"], 1);
    assert_eq!(body["fingerprint"], event.fingerprint.to_hex());
    assert_eq!(body["window_secs"], 1800);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("[redacted:email]") && !message.contains("bob@"),
        "{message}"
    );

    // Email API: Resend's shape, bearer key.
    let [request] = mail.requests().try_into().expect("one email");
    assert_eq!(request.path, "/emails");
    assert_eq!(request.header("authorization"), Some("Bearer re_test_key"));
    let body = request.json();
    assert_eq!(body["from"], "alerts@example.com");
    assert_eq!(body["to"], json!(["ops@example.com", "cto@example.com"]));
    assert!(body["subject"].as_str().unwrap().contains("notifyPayload"));
    assert!(body["text"].as_str().unwrap().contains("class: permanent"));

    let stats = dispatcher.stats();
    assert_eq!(
        (stats.triggered, stats.alerts, stats.delivered),
        (1, 1, 4),
        "{stats:?}"
    );
    let records = records.lock().unwrap();
    let mut channels: Vec<&str> = records.iter().map(|r| r.channel.as_str()).collect();
    channels.sort_unstable();
    assert_eq!(channels, ["email", "slack", "tracing", "webhook"]);
    assert!(
        records
            .iter()
            .all(|r| r.status == DeliveryStatus::Delivered && r.attempts == 1)
    );
}

/// The storm: 10,000 identical failures over two hours, in 100 bursts 72 s apart.
#[tokio::test(start_paused = true)]
async fn a_storm_is_one_alert_plus_a_digest_per_window() {
    let hook = Server::start(ok).await;
    let dispatcher = NotifyDispatcher::builder()
        .notifier(SignedWebhook::new(&hook.url(), SECRET).unwrap())
        .build()
        .unwrap();
    let healer = Healer::builder()
        .notify(dispatcher.clone())
        .build()
        .unwrap();
    let site = test_site!("notifyStorm", Database);
    for _ in 0..100 {
        for _ in 0..100 {
            fail(
                &healer,
                site,
                "duplicate key value violates unique constraint \"contacts_email\"",
            )
            .await;
        }
        tokio::time::sleep(Duration::from_secs(72)).await;
    }
    healer.flush().await.expect("flushed");
    // Past the last window, so the last digest is due.
    tokio::time::sleep(Duration::from_secs(31 * 60)).await;
    dispatcher.idle().await;

    let messages: Vec<Value> = hook
        .requests()
        .iter()
        .inspect(|r| verify_signature(r))
        .map(Request::json)
        .collect();
    let kinds: Vec<&str> = messages
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    let total: u64 = messages.iter().map(|m| m["count"].as_u64().unwrap()).sum();
    println!(
        "storm: 10000 identical failures -> {} messages ({kinds:?}), counts {:?}",
        messages.len(),
        messages
            .iter()
            .map(|m| m["count"].as_u64().unwrap())
            .collect::<Vec<_>>()
    );
    assert_eq!(kinds, ["alert", "digest", "digest", "digest", "digest"]);
    assert_eq!(total, 10_000, "every failure is counted once");
    assert!(
        messages
            .iter()
            .all(|m| m["fingerprint"] == messages[0]["fingerprint"])
    );
    let stats = dispatcher.stats();
    assert_eq!(
        (stats.alerts, stats.digests, stats.delivered),
        (1, 4, 5),
        "{stats:?}"
    );
    assert_eq!(stats.triggered, 10_000);
}

#[tokio::test(start_paused = true)]
async fn a_receiver_that_is_down_then_up_gets_the_retry() {
    // A port with nothing listening: connections are refused.
    let addr = {
        let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        probe.local_addr().unwrap()
    };
    let records = Arc::new(Mutex::new(Vec::new()));
    let dispatcher = NotifyDispatcher::builder()
        .notifier(SignedWebhook::new(&format!("http://{addr}/hook"), SECRET).unwrap())
        .retry(5, Duration::from_secs(60), Duration::from_secs(600))
        .on_record(records_into(&records))
        .build()
        .unwrap();
    let healer = Healer::builder()
        .notify(dispatcher.clone())
        .build()
        .unwrap();
    fail(&healer, test_site!("notifyDownUp", Api), "404 not found").await;
    healer.flush().await.expect("flushed");
    // Wait (in virtual seconds) until the first attempt has failed; the retry is 30 s or more
    // away.
    for _ in 0..20 {
        if dispatcher.stats().retries > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(dispatcher.stats().retries, 1, "the first attempt failed");
    let hook = Server::start_on(addr, ok).await;
    dispatcher.idle().await;

    let [request] = hook
        .requests()
        .try_into()
        .expect("delivered once the receiver is up");
    verify_signature(&request);
    let stats = dispatcher.stats();
    assert_eq!(
        (stats.delivered, stats.failed, stats.retries),
        (1, 0, 1),
        "{stats:?}"
    );
    let records = records.lock().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].status, records[0].attempts),
        (DeliveryStatus::Delivered, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn failures_are_retried_then_recorded_without_secrets() {
    let down = Server::start(|_, _| Reply::text(503, "maintenance")).await;
    let refusing = Server::start(|_, _| Reply::text(400, "no such channel")).await;
    let records = Arc::new(Mutex::new(Vec::new()));
    let dispatcher = NotifyDispatcher::builder()
        .notifier(SlackWebhook::new(&format!("{}/services/SECRET-PATH", down.url())).unwrap())
        .notifier(SignedWebhook::new(&refusing.url(), SECRET).unwrap())
        .retry(3, Duration::from_secs(1), Duration::from_secs(10))
        .on_record(records_into(&records))
        .build()
        .unwrap();
    let healer = Healer::builder()
        .notify(dispatcher.clone())
        .build()
        .unwrap();
    fail(&healer, test_site!("notifyFailing", Api), "403 forbidden").await;
    settle(&healer, &dispatcher).await;

    assert_eq!(
        down.requests().len(),
        3,
        "503 is retried up to the attempt limit"
    );
    assert_eq!(refusing.requests().len(), 1, "400 is not retried");
    let stats = dispatcher.stats();
    assert_eq!(
        (stats.delivered, stats.failed, stats.retries),
        (0, 2, 2),
        "{stats:?}"
    );
    let records = records.lock().unwrap();
    let slack = records.iter().find(|r| r.channel == "slack").unwrap();
    assert_eq!((slack.status, slack.attempts), (DeliveryStatus::Failed, 3));
    let error = slack.error.as_deref().unwrap();
    assert!(
        error.contains("503") && !error.contains("SECRET-PATH"),
        "{error}"
    );
    let webhook = records.iter().find(|r| r.channel == "webhook").unwrap();
    assert_eq!(
        (webhook.status, webhook.attempts),
        (DeliveryStatus::Failed, 1)
    );
}

/// A notifier of the user's own whose errors carry its credentials.
#[derive(Debug)]
struct Leaky;

impl self_healing_runtime::notify::Notifier for Leaky {
    fn name(&self) -> &str {
        "leaky"
    }

    fn send<'a>(
        &'a self,
        _: &'a self_healing_runtime::notify::Notification,
    ) -> self_healing_runtime::event::BoxFuture<
        'a,
        Result<(), self_healing_runtime::notify::NotifyError>,
    > {
        Box::pin(async {
            Err(self_healing_runtime::notify::NotifyError::permanent(
                "POST https://ops:hunter2-Secret@pager.example/api refused: api_key=sk-live-4f9a8b7c6d5e4f3a2b1c",
            ))
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_custom_notifiers_error_is_recorded_scrubbed() {
    let records = Arc::new(Mutex::new(Vec::new()));
    let dispatcher = NotifyDispatcher::builder()
        .notifier(Leaky)
        .on_record(records_into(&records))
        .build()
        .unwrap();
    let healer = Healer::builder()
        .notify(dispatcher.clone())
        .build()
        .unwrap();
    fail(&healer, test_site!("notifyLeaky", Api), "403 forbidden").await;
    settle(&healer, &dispatcher).await;
    let records = records.lock().unwrap();
    let error = records[0].error.as_deref().unwrap();
    assert!(error.contains("refused"), "{error}");
    assert!(
        !error.contains("hunter2") && !error.contains("sk-live-4f9a"),
        "{error}"
    );
}

#[tokio::test]
async fn healed_failures_do_not_notify_unless_asked() {
    let hook = Server::start(ok).await;
    let quiet = NotifyDispatcher::builder()
        .notifier(SignedWebhook::new(&hook.url(), SECRET).unwrap())
        .build()
        .unwrap();
    let loud = NotifyDispatcher::builder()
        .notifier(TracingNotifier)
        .triggers(Triggers::default().min_severity(Some(self_healing_runtime::Severity::Low)))
        .build()
        .unwrap();
    let healer = Healer::builder()
        .backoff(Duration::ZERO, Duration::ZERO)
        .notify(quiet.clone())
        .notify(loud.clone())
        .build()
        .unwrap();
    let dependency = common::Flaky::failing(1, "deadlock detected");
    let healed = heal(test_site!("notifyHealed", Database), || async {
        dependency.call()
    })
    .with_healer(healer.clone())
    .await;
    assert!(healed.is_ok());
    settle(&healer, &quiet).await;
    loud.idle().await;
    assert_eq!(quiet.stats().triggered, 0);
    assert!(hook.requests().is_empty());
    assert_eq!((loud.stats().triggered, loud.stats().delivered), (1, 1));
}

#[test]
fn settings_are_checked() {
    let err = NotifyDispatcher::builder().build().unwrap_err();
    assert_eq!(err.setting, "notifier");
    let err = NotifyDispatcher::builder()
        .notifier(TracingNotifier)
        .window(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.setting, "window");
    assert_eq!(
        SignedWebhook::new("https://example.com/h", "short")
            .unwrap_err()
            .setting,
        "webhook secret"
    );
    let dispatcher = NotifyDispatcher::from_lookup(|_| None).unwrap();
    assert_eq!(dispatcher.channels(), ["tracing"]);
}
