//! A fleet that learns and steers together: instances sharing one store (PostgreSQL) tell each
//! other when a circuit opens or closes, take circuit commands from the CLI and the dashboard,
//! and refresh what the others learned.
//!
//! Each healer runs a small worker (on the tokio runtime it was built on) that
//!
//! - publishes every change of one of its circuits ([`CircuitNotice`] of kind
//!   [`NoticeKind::Moved`]) through [`EventStore::publish_circuit`];
//! - polls the store for the others' notices ([`EventStore::poll_circuits`]; a store may wait
//!   for news, as PostgreSQL does with `LISTEN`): a circuit another instance opened makes the
//!   dependency *suspect* here (the next call is a probe, the others wait for its verdict); a
//!   [`NoticeKind::Command`] is applied as if given here;
//! - reloads the learned statistics from the store every
//!   [`learning_refresh`](crate::HealerBuilder::learning_refresh) (default 30 s).
//!
//! Stores that share nothing (the in-memory one) keep the defaults of those methods: nothing is
//! published and nothing arrives.
//!
//! [`EventStore::publish_circuit`]: crate::EventStore::publish_circuit
//! [`EventStore::poll_circuits`]: crate::EventStore::poll_circuits

use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use crate::breaker::CircuitState;
use crate::circuit_control::CircuitCommand;
use crate::healer::Healer;

/// A circuit's news, as kept in a shared store.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CircuitNotice {
    /// Assigned by the store, increasing: what a poller has seen so far.
    pub id: i64,
    /// When it was published.
    pub at: SystemTime,
    /// Who published it: an instance id, or a tool (`cli`, `dashboard`).
    pub instance: String,
    /// The site's source.
    pub source: String,
    /// What happened.
    pub kind: NoticeKind,
}

impl CircuitNotice {
    /// A notice to publish (the store assigns the id).
    pub fn new(instance: impl Into<String>, source: impl Into<String>, kind: NoticeKind) -> Self {
        CircuitNotice {
            id: 0,
            at: SystemTime::now(),
            instance: instance.into(),
            source: source.into(),
            kind,
        }
    }
}

/// What a [`CircuitNotice`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeKind {
    /// The publishing instance's circuit for the source is now in this state.
    Moved {
        /// The new state.
        state: CircuitState,
        /// Opened by hand.
        held_open: bool,
    },
    /// Every instance with the source should apply this command (from the CLI or a dashboard).
    Command {
        /// What to do.
        command: CircuitCommand,
        /// Who asked.
        by: String,
    },
}

/// How often the worker asks the store for news when the store does not wait for it.
pub(crate) const POLL_EVERY: Duration = Duration::from_secs(1);

/// The healer's side of the fleet: where its circuit changes go.
#[derive(Debug)]
pub(crate) struct FleetLink {
    changes: mpsc::UnboundedSender<CircuitNotice>,
}

impl FleetLink {
    /// A link whose worker is started later by [`start`].
    pub(crate) fn new() -> (FleetLink, mpsc::UnboundedReceiver<CircuitNotice>) {
        let (changes, rx) = mpsc::unbounded_channel();
        (FleetLink { changes }, rx)
    }

    /// A circuit of this instance changed: tell the others (never blocks, never fails).
    pub(crate) fn moved(&self, instance: &str, source: &str, state: CircuitState, held_open: bool) {
        let _ = self.changes.send(CircuitNotice::new(
            instance,
            source,
            NoticeKind::Moved { state, held_open },
        ));
    }

    /// Asks every instance (this one included) to apply `command`.
    pub(crate) fn command(&self, instance: &str, source: &str, command: CircuitCommand, by: &str) {
        let _ = self.changes.send(CircuitNotice::new(
            instance,
            source,
            NoticeKind::Command {
                command,
                by: by.to_owned(),
            },
        ));
    }
}

/// Starts the fleet worker on the current tokio runtime, if there is one. It holds the healer
/// weakly: it stops once the healer is dropped.
pub(crate) fn start(
    healer: &Healer,
    mut changes: mpsc::UnboundedReceiver<CircuitNotice>,
    learning_refresh: Option<Duration>,
) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = std::sync::Arc::downgrade(&healer.inner);
    handle.spawn(async move {
        let mut seen: Option<i64> = None;
        // News published once this healer existed is acted on, even when it reached the store
        // before the worker's first poll (a slow start must not lose a command).
        let born = SystemTime::now();
        let mut next_refresh = learning_refresh.map(|every| tokio::time::Instant::now() + every);
        loop {
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let healer = Healer { inner };
            // Our own changes first, so the others hear of them before we wait for news.
            while let Ok(notice) = changes.try_recv() {
                if let Err(e) = healer.store().publish_circuit(&notice).await {
                    tracing::debug!(error = %e, "self-healing: could not publish a circuit change");
                }
            }
            let after = seen.unwrap_or(-1);
            let polled = tokio::time::Instant::now();
            match healer.store().poll_circuits(after, POLL_EVERY).await {
                Ok(notices) => {
                    for notice in &notices {
                        seen = Some(seen.map_or(notice.id, |s| s.max(notice.id)));
                        // The first poll learns where the log stands: news older than this
                        // healer is not acted on.
                        if after >= 0 || notice.at >= born {
                            apply(&healer, notice);
                        }
                    }
                    if seen.is_none() {
                        seen = Some(0);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "self-healing: could not poll circuit news"),
            }
            if let Some(at) = next_refresh
                && tokio::time::Instant::now() >= at
            {
                if let Err(e) = healer.refresh_from_store().await {
                    tracing::debug!(error = %e, "self-healing: could not refresh learning");
                }
                next_refresh = learning_refresh.map(|every| tokio::time::Instant::now() + every);
            }
            drop(healer);
            // Stores that answer at once (no waiting for news) are asked again a beat later;
            // own changes wake the worker at once.
            let rest = POLL_EVERY.saturating_sub(polled.elapsed());
            tokio::select! {
                () = tokio::time::sleep(rest) => {}
                notice = changes.recv() => match notice {
                    Some(notice) => {
                        let Some(inner) = weak.upgrade() else { return };
                        let _ = Healer { inner }.store().publish_circuit(&notice).await;
                    }
                    None => return,
                },
            }
        }
    });
}

/// Acts on another instance's notice.
fn apply(healer: &Healer, notice: &CircuitNotice) {
    let Ok(sites) = crate::circuit_control::find_sites(&notice.source) else {
        return;
    };
    match &notice.kind {
        // A command given here was applied here already.
        NoticeKind::Command { .. } if notice.instance == healer.instance_id() => {}
        NoticeKind::Command { command, by } => {
            let by = format!("{by}, via {}", notice.instance);
            let _ = healer.apply_command(&sites, *command, &by);
        }
        NoticeKind::Moved { .. } if notice.instance == healer.instance_id() => {}
        // Opened by hand: the command that did it reaches every instance itself, and a circuit
        // suspected here because of it would re-open right after a later `close`.
        NoticeKind::Moved {
            held_open: true, ..
        } => {}
        NoticeKind::Moved { state, .. } => {
            if *state != CircuitState::Closed {
                let now = tokio::time::Instant::now();
                for &site in &sites {
                    healer.state_of(site).suspect(now);
                }
            }
        }
    }
}
