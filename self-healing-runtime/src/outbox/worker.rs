//! The outbox worker: claims due entries, replays each through its function (healing and all),
//! and records how it went: delivered, retried later with backoff, or dead-lettered.

use std::time::SystemTime;

use super::{OutboxConfig, OutboxEntry, OutboxSettle, replay};
use crate::event::StoreError;
use crate::{CallKey, Healer, WithHealerExt};

/// What one pass of the worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Entries claimed (due, and not being replayed elsewhere).
    pub claimed: usize,
    /// Replays that succeeded.
    pub delivered: usize,
    /// Replays that failed and will be tried again.
    pub retried: usize,
    /// Entries given up on (too many tries, or arguments that no longer parse).
    pub dead: usize,
}

impl Healer {
    /// Replays the outbox entries due now, once: what the worker of
    /// [`spawn_outbox_worker`](Self::spawn_outbox_worker) does at each poll. Useful in tests and
    /// one-shot jobs.
    ///
    /// # Errors
    /// The store could not be asked for due entries (a replay's own failure is not an error:
    /// it is recorded on its entry).
    pub async fn replay_outbox(&self, config: &OutboxConfig) -> Result<ReplayReport, StoreError> {
        self.replay_outbox_at(config, SystemTime::now()).await
    }

    /// [`replay_outbox`](Self::replay_outbox) as if the wall clock read `now`.
    ///
    /// # Errors
    /// As for [`replay_outbox`](Self::replay_outbox).
    pub async fn replay_outbox_at(
        &self,
        config: &OutboxConfig,
        now: SystemTime,
    ) -> Result<ReplayReport, StoreError> {
        let store = self.store().clone();
        let entries = store.outbox_claim(now, config.lease, config.batch).await?;
        let mut report = ReplayReport {
            claimed: entries.len(),
            ..ReplayReport::default()
        };
        // The claimed entries are replayed side by side: each may wait out its dependency's
        // Retry-After, and one slow replay must not hold the others back.
        let mut replays = tokio::task::JoinSet::new();
        let mut waiting = entries.into_iter();
        loop {
            while replays.len() < config.concurrency.max(1) {
                let Some(entry) = waiting.next() else { break };
                let healer = self.clone();
                let config = *config;
                replays.spawn(async move {
                    let settle = healer.replay_one(&config, &entry, now).await;
                    (entry.key, settle)
                });
            }
            let Some(done) = replays.join_next().await else {
                break;
            };
            let Ok((key, settle)) = done else {
                // A replay that panicked: its lease runs out and it is claimed again.
                continue;
            };
            match &settle {
                OutboxSettle::Delivered => report.delivered += 1,
                OutboxSettle::RetryAt { .. } => report.retried += 1,
                OutboxSettle::Dead { .. } => report.dead += 1,
            }
            if let Err(e) = store.outbox_settle(&key, &settle, SystemTime::now()).await {
                // The lease runs out and the entry is replayed again: at most once per key is
                // the function's promise (its body writes with the same call key).
                tracing::warn!(error = %e, key = %key, "self-healing: could not record an outbox replay");
            }
        }
        Ok(report)
    }

    async fn replay_one(
        &self,
        config: &OutboxConfig,
        entry: &OutboxEntry,
        now: SystemTime,
    ) -> OutboxSettle {
        let failed = |error: String| {
            let error = crate::scrub::scrub_message(&error);
            if entry.attempts >= config.max_tries {
                OutboxSettle::Dead { error }
            } else {
                OutboxSettle::RetryAt {
                    at: now + config.jittered_backoff_after(entry.attempts, fastrand::f64()),
                    error,
                }
            }
        };
        let Ok(key) = entry.key.parse::<CallKey>() else {
            return OutboxSettle::Dead {
                error: format!("`{}` is not a call key", entry.key),
            };
        };
        let Some(replayer) = replay::find(&entry.source) else {
            // Another program sharing the store may own it: tried again until it is dead.
            return failed(format!(
                "no `queue_for_later` function with source `{}` in this program",
                entry.source
            ));
        };
        let call = match (replayer.replay)(&entry.payload) {
            Ok(call) => call,
            Err(why) => {
                return OutboxSettle::Dead {
                    error: format!("the queued arguments no longer parse: {why}"),
                };
            }
        };
        match crate::call_key::replay(key, call)
            .with_healer(self.clone())
            .await
        {
            Ok(()) => OutboxSettle::Delivered,
            Err(why) => failed(why),
        }
    }

    /// Spawns the outbox worker on the current tokio runtime: every `config.poll` it replays
    /// the entries that are due, until [`shutdown`](Self::shutdown) closes the healer (or the
    /// returned handle is aborted). Several instances sharing a store may each run one: a
    /// claimed entry is replayed by one of them at a time.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn_outbox_worker(&self, config: OutboxConfig) -> tokio::task::JoinHandle<()> {
        let healer = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(config.poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if healer.inner.queue.is_closed() {
                    // The store is being closed: what is due waits for the next start.
                    return;
                }
                if let Err(e) = healer.replay_outbox(&config).await {
                    tracing::warn!(error = %e, "self-healing: the outbox could not be read");
                }
            }
        })
    }
}
