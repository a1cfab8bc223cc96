//! [`LiveFeed`]: the live activity feed. An [`EventObserver`] of the healer (or a poller of the
//! store) publishes every event to a tokio broadcast channel that the SSE route streams; it also
//! counts calls by source, strategy and outcome for `/metrics`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use self_healing_runtime::event::{EventObserver, Observed};
use self_healing_store::{DieselStore, EventFilter};
use tokio::sync::broadcast;

use crate::views::EventView;

/// Events a slow subscriber may fall behind by before it skips some (default).
pub const DEFAULT_CAPACITY: usize = 1024;

/// Calls by (source, strategy, outcome).
pub(crate) type CallCounts = BTreeMap<(String, String, &'static str), u64>;

/// The live activity feed: give a clone to the healer as an observer and one to the dashboard.
///
/// Publishing never waits: a subscriber that falls more than the channel's capacity behind
/// skips events and is told how many.
///
/// ```
/// use self_healing_dashboard::LiveFeed;
/// use self_healing_runtime::Healer;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let feed = LiveFeed::new();
/// let healer = Healer::builder().observer(feed.clone()).build().unwrap();
/// let mut events = feed.subscribe();
/// # let _ = (healer, &mut events);
/// # }
/// ```
#[derive(Clone)]
pub struct LiveFeed {
    tx: broadcast::Sender<Arc<EventView>>,
    counts: Arc<Mutex<CallCounts>>,
}

impl fmt::Debug for LiveFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveFeed")
            .field("subscribers", &self.tx.receiver_count())
            .finish_non_exhaustive()
    }
}

impl Default for LiveFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveFeed {
    /// A feed holding [`DEFAULT_CAPACITY`] events for slow subscribers.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A feed holding `capacity` events (at least 1) for slow subscribers.
    pub fn with_capacity(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        LiveFeed {
            tx,
            counts: Arc::default(),
        }
    }

    /// Receives every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EventView>> {
        self.tx.subscribe()
    }

    /// Publishes an event to the current subscribers (none is fine).
    pub fn publish(&self, event: EventView) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(Arc::new(event));
        }
    }

    /// Calls this feed observed, by (source, strategy or `none`, outcome).
    pub(crate) fn call_counts(&self) -> CallCounts {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Polls `store` every `interval` and publishes the events written since the previous poll
    /// (for a dashboard that runs apart from the application). Stops when the returned guard
    /// is dropped.
    pub(crate) fn poll_store(&self, store: DieselStore, interval: Duration) -> Poller {
        let feed = self.clone();
        Poller(tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_id: Option<i64> = None;
            let mut failing = false;
            loop {
                tick.tick().await;
                let filter = EventFilter {
                    since: SystemTime::now().checked_sub(Duration::from_secs(600)),
                    ..EventFilter::default()
                };
                match store.events(&filter, None, 500).await {
                    Ok(page) => {
                        failing = false;
                        let newest = page.events.iter().map(|e| e.id).max().unwrap_or(0);
                        if let Some(last) = last_id {
                            for e in page.events.iter().rev().filter(|e| e.id > last) {
                                feed.publish(EventView::from_record(e, None));
                            }
                        }
                        last_id = Some(last_id.unwrap_or(0).max(newest));
                    }
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "self-healing dashboard: polling the store for the live feed failed");
                    }
                    Err(_) => {}
                }
            }
        }))
    }
}

impl EventObserver for LiveFeed {
    fn observe(&self, batch: Observed<'_>) {
        {
            let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            for e in batch.events {
                let key = (
                    e.source.to_string(),
                    e.strategy.as_deref().unwrap_or("none").to_owned(),
                    e.outcome.as_str(),
                );
                *counts.entry(key).or_default() += e.count;
            }
        }
        if self.tx.receiver_count() == 0 {
            return;
        }
        for e in batch.events {
            let advice = batch.patterns.advice(e.fingerprint);
            let _ = self
                .tx
                .send(Arc::new(EventView::from_event(e, advice.as_ref())));
        }
    }
}

/// Stops the store poller when dropped.
#[derive(Debug)]
pub(crate) struct Poller(tokio::task::JoinHandle<()>);

impl Drop for Poller {
    fn drop(&mut self) {
        self.0.abort();
    }
}
