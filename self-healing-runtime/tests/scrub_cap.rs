//! A secret straddling the message cap is scrubbed, not halved: the event worker scrubs the
//! whole message, then cuts it (security issue, row 1). End to end, from a failing call to the
//! stored event.

mod common;

use common::Failure;
use self_healing_runtime::diagnosis::MAX_MESSAGE_BYTES;
use self_healing_runtime::scrub::{TRUNCATED, scrub_message};
use self_healing_runtime::{Healer, InMemoryStore, WithHealerExt, heal};

/// Secrets (published examples, not real ones), and fragments of them that must never be
/// stored.
const SECRETS: &[(&str, &[&str])] = &[
    (
        "postgres://admin:S3cr3tPassw0rdXyz@db.internal:5432/crm",
        &["S3cr", "3tPass", "Xyz@"],
    ),
    (
        "sk-proj-Abc123Def456Ghi789Jkl012Mno345",
        &["Abc123", "Mno345"],
    ),
    ("4111 1111 1111 1111", &["4111 1111", "1111 1111"]),
    (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiZW1haWwiOiJib2JAZXhhbXBsZS5jb20ifQ.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        &["eyJzdWIi", "ZW1haWwi", "dozjgN"],
    ),
];

/// A message whose secret starts `before` bytes ahead of the cap.
fn straddling(secret: &str, before: usize) -> String {
    let pad = MAX_MESSAGE_BYTES - before - " secret ".len();
    format!("{} secret {secret} tail", "p".repeat(pad))
}

fn healer_with(store: InMemoryStore) -> Healer {
    Healer::builder()
        .store(store)
        .build()
        .expect("a valid healer")
}

#[tokio::test(start_paused = true)]
async fn a_secret_straddling_the_cap_is_not_stored_in_part() {
    let store = InMemoryStore::new();
    let healer = healer_with(store.clone());
    for (secret, fragments) in SECRETS {
        for before in [4, secret.len() / 2, secret.len() - 3] {
            let message = straddling(secret, before);
            let site = test_site!("capProbe", Database);
            let failing = message.clone();
            let result: Result<u32, Failure> = heal(site, move || {
                let failing = failing.clone();
                async move {
                    // A permanent error: recorded at once, never re-run.
                    Err(Failure(format!(
                        "duplicate key value violates unique constraint: {failing}"
                    )))
                }
            })
            .with_healer(healer.clone())
            .await;
            assert!(result.is_err());
            healer.flush().await.expect("flushed");
            let events = store.events();
            let stored = &events.last().expect("an event").message;
            assert!(stored.len() <= MAX_MESSAGE_BYTES, "{}", stored.len());
            // Redacted (the marker is shorter than the secret) or cut, never halved.
            assert!(
                stored.contains("[redacted") || stored.ends_with(TRUNCATED),
                "{stored:?}"
            );
            for fragment in *fragments {
                assert!(
                    !stored.contains(fragment),
                    "`{fragment}` of `{secret}` ({before} bytes before the cap) was stored: {}",
                    &stored[stored.len().saturating_sub(120)..]
                );
            }
            store.clear();
        }
    }
}

#[test]
fn scrub_message_scrubs_then_cuts() {
    for (secret, fragments) in SECRETS {
        for before in (1..secret.len()).step_by(3) {
            let message = straddling(secret, before);
            let out = scrub_message(&message);
            assert!(out.len() <= MAX_MESSAGE_BYTES);
            assert!(out.contains("[redacted") || out.ends_with(TRUNCATED));
            for fragment in *fragments {
                assert!(!out.contains(fragment), "{before}: {out}");
            }
        }
    }
}

#[test]
fn a_short_message_is_only_scrubbed() {
    assert_eq!(
        scrub_message("password=hunter2 refused"),
        "password=[redacted] refused"
    );
    // Scrubbed twice (the notifier and the LLM analyzer scrub again): still one marker.
    let long = format!("{} tail", "word ".repeat(MAX_MESSAGE_BYTES));
    let once = scrub_message(&long);
    assert_eq!(scrub_message(&once), once);
    assert_eq!(once.matches(TRUNCATED).count(), 1);
}
