//! What a call leaves for observability tools: the tracing spans and their fields, which a
//! `tracing-opentelemetry` layer exports as OpenTelemetry spans. (One test in this binary: a
//! subscriber set for one thread must not race other tests' callsites.)

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Flaky;
use self_healing_runtime::{Healer, InMemoryStore, WithHealerExt, heal};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as a layer saw it: its name and every field recorded on it, at creation or later.
#[derive(Debug, Clone, Default)]
struct SeenSpan {
    name: &'static str,
    fields: Vec<(String, String)>,
}

impl SeenSpan {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

/// Records every span, in creation order, with its fields.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(u64, SeenSpan)>>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut seen = SeenSpan {
            name: attrs.metadata().name(),
            fields: Vec::new(),
        };
        attrs.record(&mut Fields(&mut seen.fields));
        self.0.lock().unwrap().push((id.into_u64(), seen));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some((_, seen)) = spans.iter_mut().rev().find(|(i, _)| *i == id.into_u64()) {
            values.record(&mut Fields(&mut seen.fields));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_healed_call_leaves_plan_attempt_and_outcome_spans_with_their_fields() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _default = tracing::subscriber::set_default(subscriber);

    let site = test_site!("spannedSite", Database);
    let healer = Healer::builder()
        .store(InMemoryStore::new())
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .unwrap();
    let db = Flaky::failing(1, "deadlock detected");
    let result = heal(site, || async { db.call() }).with_healer(healer).await;
    assert!(result.is_ok(), "{result:?}");

    let spans: Vec<SeenSpan> = capture
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(_, s)| s.clone())
        .filter(|s| s.name.starts_with("self_healing."))
        .collect();
    let named = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("a `{name}` span among {spans:?}"))
    };
    for name in [
        "self_healing.plan",
        "self_healing.attempt",
        "self_healing.outcome",
    ] {
        let span = named(name);
        assert_eq!(span.field("source"), Some("spannedSite"), "{span:?}");
        assert_eq!(span.field("category"), Some("database"), "{span:?}");
        assert!(span.field("strategy").is_some(), "{span:?}");
        assert!(span.field("attempt").is_some(), "{span:?}");
    }
    assert_eq!(named("self_healing.plan").field("class"), Some("transient"));
    let attempt = named("self_healing.attempt");
    assert_eq!(attempt.field("strategy"), Some("retry"), "{attempt:?}");
    assert_eq!(
        attempt.field("attempt"),
        Some("2"),
        "the re-run is the call's second attempt"
    );
    assert_eq!(
        attempt.field("outcome"),
        Some("healed"),
        "recorded when the attempt ends: {attempt:?}"
    );
    let outcome = named("self_healing.outcome");
    assert_eq!(outcome.field("outcome"), Some("healed"), "{outcome:?}");
    assert_eq!(outcome.field("strategy"), Some("retry"), "{outcome:?}");
}
