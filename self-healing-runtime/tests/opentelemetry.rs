//! The healer's spans as OpenTelemetry spans: through `tracing-opentelemetry` into the SDK's
//! in-memory exporter, with the attributes the integration guide lists. (One test in this
//! binary: a subscriber set for one thread must not race other tests' callsites.)

mod common;

use std::time::Duration;

use common::Flaky;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use self_healing_runtime::{Healer, InMemoryStore, WithHealerExt, heal};
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test(start_paused = true)]
async fn a_healed_call_exports_its_spans_with_their_attributes() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("self-healing-test")));
    let _default = tracing::subscriber::set_default(subscriber);

    let site = test_site!("exportedSite", Api);
    let healer = Healer::builder()
        .store(InMemoryStore::new())
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .unwrap();
    let api = Flaky::failing(1, "HTTP 503 Service Unavailable");
    let result = heal(site, || async { api.call() })
        .with_healer(healer)
        .await;
    assert!(result.is_ok(), "{result:?}");
    provider.force_flush().expect("spans exported");

    let spans = exporter.get_finished_spans().expect("the exporter's spans");
    let attribute = |name: &str, key: &str| -> Option<String> {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| {
                let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
                panic!("a `{name}` span among {names:?}")
            })
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    for name in [
        "self_healing.plan",
        "self_healing.attempt",
        "self_healing.outcome",
    ] {
        assert_eq!(
            attribute(name, "source").as_deref(),
            Some("exportedSite"),
            "{name}"
        );
        assert_eq!(
            attribute(name, "category").as_deref(),
            Some("api"),
            "{name}"
        );
        assert_eq!(
            attribute(name, "strategy").as_deref(),
            Some("retry"),
            "{name}"
        );
        assert!(attribute(name, "attempt").is_some(), "{name}");
    }
    assert_eq!(
        attribute("self_healing.plan", "class").as_deref(),
        Some("transient")
    );
    assert_eq!(
        attribute("self_healing.attempt", "outcome").as_deref(),
        Some("healed"),
        "recorded when the attempt ended"
    );
    assert_eq!(
        attribute("self_healing.outcome", "outcome").as_deref(),
        Some("healed")
    );
}
