//! Per-site settings, circuits steered by hand, and scoped healers that share nothing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Failure, opening_healer};
use self_healing_runtime::circuit_control::CircuitCommand;
use self_healing_runtime::settings::{Settings, Tuning};
use self_healing_runtime::{
    Category, CircuitState, ConfigError, Healer, InMemoryStore, Outcome, WithHealerExt, heal,
};

/// Calls `site` once with a body that fails with "connection refused" (`fail`) or succeeds.
async fn call(
    site: &'static self_healing_runtime::Site,
    h: &Healer,
    fail: bool,
) -> Result<u32, Failure> {
    heal(site, move || async move {
        if fail {
            Err(Failure("connection refused".into()))
        } else {
            Ok(1)
        }
    })
    .with_healer(h.clone())
    .await
}

#[test]
fn an_unknown_source_is_refused_with_the_nearest_name() {
    let _ = test_site!("createContact", Database);
    let err = Healer::builder()
        .source("createContcat", Tuning::new().max_attempts(5))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        ConfigError::UnknownSource {
            setting: "source",
            source: "createContcat".into(),
            suggestion: Some("createContact"),
        }
    );
    assert!(
        err.to_string().contains("did you mean `createContact`?"),
        "{err}"
    );
    // The bulkhead shorthand and hooks are checked the same way.
    let err = Healer::builder()
        .bulkhead("createContcat", 2)
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::UnknownSource { .. }), "{err}");
    let err = Healer::builder()
        .on_reconnect("createContcat", || async { Ok(()) })
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::UnknownSource {
                setting: "hook",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_bad_value_names_its_scope() {
    let _ = test_site!("scopedBad", Api);
    let err = Healer::builder()
        .source("scopedBad", Tuning::new().max_attempts(0))
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid `source.scopedBad.max_attempts`: must be between 1 and 100 (the first call counts)"
    );
    let err = Healer::builder()
        .category(Category::Api, Tuning::new().cache_capacity(0))
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("category.api.cache_capacity"),
        "{err}"
    );
}

#[test]
fn settings_resolve_defaults_then_category_then_attribute_then_source() {
    let _ = test_site!(
        "resolvedSite",
        Api,
        self_healing_runtime::SiteOptions::new().with_max_attempts(4)
    );
    let _ = test_site!("otherApiSite", Api);
    let h = Healer::builder()
        .max_attempts(2)
        .category(
            Category::Api,
            Tuning::new()
                .max_attempts(6)
                .timeout(Duration::from_secs(2)),
        )
        .source("resolvedSite", Tuning::new().bulkhead(3))
        .build()
        .unwrap();
    let resolved = h.settings_of("resolvedSite").unwrap();
    // The attribute's `max_attempts = 4` beats the category's 6; the category's timeout holds.
    assert_eq!(resolved.max_attempts, 4);
    assert_eq!(resolved.timeout, Some(Duration::from_secs(2)));
    assert_eq!(resolved.bulkhead, Some(3));
    let other = h.settings_of("otherApiSite").unwrap();
    assert_eq!(other.max_attempts, 6);
    assert_eq!(other.bulkhead, None);
    // A source setting beats the attribute.
    let h = Healer::builder()
        .source("resolvedSite", Tuning::new().max_attempts(9))
        .build()
        .unwrap();
    assert_eq!(h.settings_of("resolvedSite").unwrap().max_attempts, 9);
}

#[cfg(feature = "toml")]
#[test]
fn settings_come_from_toml_and_errors_name_the_line() {
    let _ = test_site!("tomlSite", Database);
    let settings = Settings::from_toml(
        r#"
        [defaults]
        backoff = { base = "10ms", max = "1s" }

        [category.database]
        breaker = { failure_rate = 0.25, window = "30s" }

        [source.tomlSite]
        max_attempts = 5
        bulkhead = 2
        cache_capacity = 16
        "#,
    )
    .unwrap();
    let h = Healer::builder().settings(settings).build().unwrap();
    let s = h.settings_of("tomlSite").unwrap();
    assert_eq!(s.max_attempts, 5);
    assert_eq!(s.bulkhead, Some(2));
    assert_eq!(s.cache_capacity, 16);
    assert_eq!(s.backoff.base, Duration::from_millis(10));
    assert_eq!(s.breaker.failure_rate, 0.25);
    assert_eq!(s.breaker.window, Duration::from_secs(30));
    // Untouched breaker fields keep the defaults.
    assert_eq!(s.breaker.minimum_calls, 20);

    let err = Settings::from_toml("[source.tomlSite]\nmax_atempts = 5\n").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("max_atempts") && text.contains("line 2"),
        "{text}"
    );
    let err = Settings::from_toml("[defaults]\ntimeout = \"two seconds\"\n").unwrap_err();
    assert!(err.to_string().contains("is not a duration"), "{err}");
    let err = Settings::from_toml("[category.databse]\nmax_attempts = 2\n").unwrap_err();
    assert!(
        err.to_string().contains("unknown category `databse`"),
        "{err}"
    );
    // A missing file names the file.
    let err = Healer::builder()
        .settings_file("/nonexistent/self-healing.toml")
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/self-healing.toml"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn two_scoped_healers_in_parallel_share_no_circuit() {
    let site = test_site!("sharedDependency", Database);
    let broken = opening_healer(5).build().unwrap();
    let healthy = opening_healer(5).build().unwrap();
    // Both healers call the same site at the same time, on two tasks: one sees only failures,
    // the other only successes.
    let b = broken.clone();
    let failing = tokio::spawn(async move {
        for _ in 0..40 {
            let _ = call(site, &b, true).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let h = healthy.clone();
    let succeeding = tokio::spawn(async move {
        let mut ok = 0;
        for _ in 0..40 {
            ok += u32::from(call(site, &h, false).await.is_ok());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        ok
    });
    failing.await.unwrap();
    let ok = succeeding.await.unwrap();
    assert_eq!(broken.circuit_of(site), CircuitState::Open);
    assert_eq!(healthy.circuit_of(site), CircuitState::Closed);
    assert_eq!(
        ok, 40,
        "the other healer's open circuit refused none of these calls"
    );
    assert_eq!(healthy.report(site).failures, 0);
    assert!(broken.report(site).failures >= 5);
    // The broken healer's circuit refuses its own calls without running them.
    let runs = Arc::new(AtomicU32::new(0));
    let r = runs.clone();
    let refused = heal(site, move || {
        let r = r.clone();
        async move {
            r.fetch_add(1, Ordering::SeqCst);
            Ok::<u32, Failure>(1)
        }
    })
    .with_healer(broken.clone())
    .await;
    assert!(refused.is_err());
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_circuit_opened_by_hand_refuses_until_closed_and_each_change_is_recorded() {
    let site = test_site!("steeredSite", Api);
    let store = InMemoryStore::new();
    let h = Healer::builder().store(store.clone()).build().unwrap();
    assert!(call(site, &h, false).await.is_ok());

    assert_eq!(
        h.open_circuit("steeredSite", "test").unwrap(),
        CircuitState::Open
    );
    // Held open: no probe gets through, however long we wait.
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(10)).await;
        let refused = call(site, &h, false).await.unwrap_err();
        assert!(refused.0.contains("circuit"), "{refused}");
    }
    assert!(
        h.circuits()
            .iter()
            .any(|c| c.source == "steeredSite" && c.held_open)
    );

    assert_eq!(
        h.close_circuit("steeredSite", "test").unwrap(),
        CircuitState::Closed
    );
    assert!(call(site, &h, false).await.is_ok());
    assert_eq!(
        h.steer_circuit("steeredSite", CircuitCommand::Reset, "test")
            .unwrap(),
        CircuitState::Closed
    );
    h.flush().await.expect("the events reached the store");
    let manual: Vec<String> = store
        .events()
        .into_iter()
        .filter(|e| e.outcome == Outcome::Manual)
        .map(|e| e.message)
        .collect();
    assert_eq!(
        manual,
        [
            "circuit opened by hand (test)",
            "circuit closed by hand (test)",
            "circuit reset by hand (test)"
        ]
    );
    assert!(matches!(
        h.open_circuit("steeredSiet", "test"),
        Err(ConfigError::UnknownSource {
            suggestion: Some("steeredSite"),
            ..
        })
    ));
}

/// A source names one operation: every function sharing it is steered, whichever of them the
/// registry lists first.
#[tokio::test(start_paused = true)]
async fn a_command_reaches_every_function_sharing_the_source() {
    let sync_variant = test_site!("sharedSource", Api);
    let async_variant = test_site!("sharedSource", Api);
    let h = Healer::builder().build().unwrap();
    assert_eq!(
        h.open_circuit("sharedSource", "test").unwrap(),
        CircuitState::Open
    );
    for site in [sync_variant, async_variant] {
        assert_eq!(h.circuit_of(site), CircuitState::Open);
        assert!(call(site, &h, false).await.is_err(), "held open: refused");
    }
    h.close_circuit("sharedSource", "test").unwrap();
    for site in [sync_variant, async_variant] {
        assert_eq!(h.circuit_of(site), CircuitState::Closed);
        assert!(call(site, &h, false).await.is_ok());
    }
}

#[tokio::test(start_paused = true)]
async fn reconfiguring_a_running_healer_keeps_circuits_and_resizes_bulkheads() {
    let site = test_site!("reconfiguredSite", Database);
    let h = opening_healer(5).build().unwrap();
    for _ in 0..6 {
        let _ = call(site, &h, true).await;
    }
    assert_eq!(h.circuit_of(site), CircuitState::Open);

    h.reconfigure(Settings::new().source(
        "reconfiguredSite",
        Tuning::new().max_attempts(7).bulkhead(1),
    ))
    .unwrap();
    assert_eq!(
        h.circuit_of(site),
        CircuitState::Open,
        "the circuit kept its state"
    );
    assert_eq!(h.settings_of("reconfiguredSite").unwrap().max_attempts, 7);
    assert_eq!(h.settings_of("reconfiguredSite").unwrap().bulkhead, Some(1));

    // A bad change is refused whole, and the healer keeps what it had.
    let err = h
        .reconfigure(Settings::new().source("reconfiguredSite", Tuning::new().max_attempts(0)))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("source.reconfiguredSite.max_attempts"),
        "{err}"
    );
    assert_eq!(h.settings_of("reconfiguredSite").unwrap().max_attempts, 7);

    // The new bulkhead caps concurrent calls at 1: a second call while one runs is shed.
    h.close_circuit("reconfiguredSite", "test").unwrap();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let hh = h.clone();
    let first = tokio::spawn(async move {
        let mut started_tx = Some(started_tx);
        let mut release_rx = Some(release_rx);
        heal(site, move || {
            let s = started_tx.take();
            let r = release_rx.take();
            async move {
                if let Some(s) = s {
                    let _ = s.send(());
                }
                if let Some(r) = r {
                    let _ = r.await;
                }
                Ok::<u32, Failure>(1)
            }
        })
        .with_healer(hh)
        .await
    });
    started_rx.await.unwrap();
    let shed = call(site, &h, false).await.unwrap_err();
    assert!(shed.0.contains("bulkhead full"), "{shed}");
    release_tx.send(()).unwrap();
    assert_eq!(first.await.unwrap(), Ok(1));
    assert!(call(site, &h, false).await.is_ok(), "the slot came back");

    // Removing the bulkhead lets calls run side by side again.
    h.reconfigure(Settings::new()).unwrap();
    assert_eq!(h.settings_of("reconfiguredSite").unwrap().bulkhead, None);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_set_by_configuration_cuts_slow_attempts() {
    let site = test_site!("configuredTimeout", Api);
    let h = Healer::builder()
        .max_attempts(1)
        .source(
            "configuredTimeout",
            Tuning::new().timeout(Duration::from_millis(100)),
        )
        .build()
        .unwrap();
    let slow = heal(site, || async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok::<u32, Failure>(1)
    })
    .with_healer(h.clone())
    .await;
    let err = slow.unwrap_err();
    assert!(err.0.contains("timed out"), "{err}");
}
