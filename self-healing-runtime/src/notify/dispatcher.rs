//! The dispatcher: an event observer that throttles triggering failures per family and delivers
//! notifications through every channel, with retries, from its own task.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::config::{self, Triggers};
use super::stats::{Counters, NotifyStats, add};
use super::throttle::{Offer, Sighting, Throttle};
use super::{
    DeliveryStatus, Notification, NotificationKind, NotificationRecord, Notifier,
    NotifyConfigError, TracingNotifier,
};
use crate::event::{EventObserver, Observed};

type RecordHook = Arc<dyn Fn(NotificationRecord) + Send + Sync>;

/// Settings of a dispatcher (see [`NotifyDispatcherBuilder`]).
#[derive(Debug, Clone)]
struct Settings {
    window: Duration,
    triggers: Triggers,
    attempts: u32,
    backoff_base: Duration,
    backoff_max: Duration,
    attempt_timeout: Duration,
    queue_capacity: usize,
    max_deliveries: usize,
    max_families: usize,
}

struct Shared {
    settings: Settings,
    notifiers: Vec<Arc<dyn Notifier>>,
    on_record: Option<RecordHook>,
    counters: Counters,
    /// Batches queued plus deliveries in flight.
    pending: watch::Sender<usize>,
    deliveries: AtomicUsize,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyDispatcher")
            .field("settings", &self.settings)
            .field("notifiers", &self.notifiers)
            .field("stats", &self.counters.snapshot())
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn finished_one(&self) {
        self.pending.send_modify(|n| *n = n.saturating_sub(1));
    }

    fn record(&self, record: NotificationRecord) {
        if let Some(hook) = &self.on_record {
            hook(record);
        }
    }
}

/// Tells admins when healing fails or an error is critical, through every channel configured:
/// the first failure of a family at once, then a digest with counts at most once per window
/// (30 minutes by default). A storm of identical failures is one alert plus a digest per window.
///
/// It is an [`EventObserver`]: `observe` only filters and hands the batch to the dispatcher's own
/// task over a bounded queue, so a slow or dead receiver never reaches the caller of a wrapped
/// function. Deliveries are retried with exponential backoff and counted ([`NotifyStats`]); each
/// delivery's end can be recorded through [`NotifyDispatcherBuilder::on_record`].
///
/// ```no_run
/// use self_healing_runtime::Healer;
/// use self_healing_runtime::notify::NotifyDispatcher;
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // Logs always; Slack, a signed webhook and email when their variables are set.
/// let notify = NotifyDispatcher::from_env()?;
/// let healer = Healer::builder().notify(notify.clone()).build()?;
/// # let _ = healer;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct NotifyDispatcher {
    shared: Arc<Shared>,
    batches: mpsc::Sender<Vec<Sighting>>,
    /// The receiving end, until the first batch starts the task on the worker's runtime.
    idle_batches: Arc<Mutex<Option<mpsc::Receiver<Vec<Sighting>>>>>,
}

impl fmt::Debug for NotifyDispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

/// Builds a [`NotifyDispatcher`].
pub struct NotifyDispatcherBuilder {
    settings: Settings,
    notifiers: Vec<Arc<dyn Notifier>>,
    on_record: Option<RecordHook>,
}

impl fmt::Debug for NotifyDispatcherBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyDispatcherBuilder")
            .field("settings", &self.settings)
            .field("notifiers", &self.notifiers)
            .finish_non_exhaustive()
    }
}

impl NotifyDispatcherBuilder {
    /// Adds a channel; several may be active.
    pub fn notifier(mut self, notifier: impl Notifier) -> Self {
        self.notifiers.push(Arc::new(notifier));
        self
    }

    /// At most one notification per family per window (default 30 min).
    pub fn window(mut self, window: Duration) -> Self {
        self.settings.window = window;
        self
    }

    /// Which failures trigger a notification (default: healing failed, or critical).
    pub fn triggers(mut self, triggers: Triggers) -> Self {
        self.settings.triggers = triggers;
        self
    }

    /// Attempts per delivery (default 5) and the backoff between them: exponential from `base`,
    /// capped at `max`, with jitter (default 5 s to 5 min).
    pub fn retry(mut self, attempts: u32, base: Duration, max: Duration) -> Self {
        self.settings.attempts = attempts;
        self.settings.backoff_base = base;
        self.settings.backoff_max = max;
        self
    }

    /// Time one attempt may take (default 10 s).
    pub fn attempt_timeout(mut self, d: Duration) -> Self {
        self.settings.attempt_timeout = d;
        self
    }

    /// Deliveries waiting or in flight at most (default 256); more are dropped and counted.
    pub fn max_deliveries(mut self, n: usize) -> Self {
        self.settings.max_deliveries = n;
        self
    }

    /// Called when each delivery ends (delivered, failed or dropped), from the dispatcher's
    /// task: a store can keep these in its `notifications` table. Must return quickly.
    pub fn on_record(mut self, hook: impl Fn(NotificationRecord) + Send + Sync + 'static) -> Self {
        self.on_record = Some(Arc::new(hook));
        self
    }

    /// Checks the settings. The dispatcher's task starts with the first batch of events, on
    /// the runtime of the healer's event worker.
    ///
    /// # Errors
    /// A [`NotifyConfigError`] naming the first bad setting.
    pub fn build(self) -> Result<NotifyDispatcher, NotifyConfigError> {
        let s = &self.settings;
        let invalid = |setting, reason: &str| {
            Err(NotifyConfigError {
                setting,
                reason: reason.to_owned(),
            })
        };
        if self.notifiers.is_empty() {
            return invalid("notifier", "add at least one channel");
        }
        if s.window.is_zero() {
            return invalid("window", "must be longer than zero");
        }
        if s.attempts == 0 || s.attempts > 20 {
            return invalid("retry", "attempts must be between 1 and 20");
        }
        if s.backoff_base > s.backoff_max {
            return invalid("retry", "`base` must not exceed `max`");
        }
        if s.attempt_timeout.is_zero() {
            return invalid("attempt_timeout", "must be longer than zero");
        }
        if s.max_deliveries == 0 {
            return invalid("max_deliveries", "must be at least 1");
        }
        let (batches, receiver) = mpsc::channel(s.queue_capacity);
        Ok(NotifyDispatcher {
            shared: Arc::new(Shared {
                settings: self.settings,
                notifiers: self.notifiers,
                on_record: self.on_record,
                counters: Counters::default(),
                pending: watch::channel(0).0,
                deliveries: AtomicUsize::new(0),
            }),
            batches,
            idle_batches: Arc::new(Mutex::new(Some(receiver))),
        })
    }
}

impl NotifyDispatcher {
    /// A builder with the defaults and no channel yet.
    pub fn builder() -> NotifyDispatcherBuilder {
        NotifyDispatcherBuilder {
            settings: Settings {
                window: Duration::from_secs(30 * 60),
                triggers: Triggers::default(),
                attempts: 5,
                backoff_base: Duration::from_secs(5),
                backoff_max: Duration::from_secs(300),
                attempt_timeout: Duration::from_secs(10),
                queue_capacity: 256,
                max_deliveries: 256,
                max_families: 10_000,
            },
            notifiers: Vec::new(),
            on_record: None,
        }
    }

    /// The [`TracingNotifier`], plus every channel the environment configures:
    /// `SELF_HEALING_SLACK_WEBHOOK_URL`; `SELF_HEALING_WEBHOOK_URL` with
    /// `SELF_HEALING_WEBHOOK_SECRET`; `SELF_HEALING_EMAIL_API_URL` with
    /// `SELF_HEALING_EMAIL_API_KEY`, `SELF_HEALING_ADMIN_EMAILS` (comma-separated) and optionally
    /// `SELF_HEALING_EMAIL_FROM`. `SELF_HEALING_NOTIFY_WINDOW_MINUTES` sets the window.
    ///
    /// # Errors
    /// A [`NotifyConfigError`] naming the variable that is unusable or missing.
    pub fn from_env() -> Result<NotifyDispatcher, NotifyConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with another source of variables.
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<NotifyDispatcher, NotifyConfigError> {
        let env = config::from_lookup(lookup)?;
        let mut builder = NotifyDispatcher::builder().notifier(TracingNotifier);
        builder.notifiers.extend(env.channels);
        if let Some(window) = env.window {
            builder = builder.window(window);
        }
        builder.build()
    }

    /// The counters so far.
    pub fn stats(&self) -> NotifyStats {
        self.shared.counters.snapshot()
    }

    /// The names of the active channels.
    pub fn channels(&self) -> Vec<&str> {
        self.shared.notifiers.iter().map(|n| n.name()).collect()
    }

    /// Waits until nothing is queued and no delivery is in flight. Digests scheduled for later
    /// are not waited for.
    pub async fn idle(&self) {
        let mut pending = self.shared.pending.subscribe();
        let _ = pending.wait_for(|n| *n == 0).await;
    }

    fn start(&self) {
        let mut idle = self.idle_batches.lock().unwrap_or_else(|p| p.into_inner());
        if idle.is_none() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current()
            && let Some(receiver) = idle.take()
        {
            runtime.spawn(run(self.shared.clone(), receiver));
        }
    }
}

impl EventObserver for NotifyDispatcher {
    fn observe(&self, batch: Observed<'_>) {
        let triggers = &self.shared.settings.triggers;
        let sightings: Vec<Sighting> = batch
            .events
            .iter()
            .filter(|e| triggers.matches(e))
            .map(Sighting::of)
            .collect();
        self.offer(sightings);
    }
}

impl NotifyDispatcher {
    /// Hands triggering sightings to the dispatcher's task, where they are throttled per family:
    /// failed calls from [`observe`](EventObserver::observe), failing health checks from the
    /// health monitor.
    pub(crate) fn offer(&self, sightings: Vec<Sighting>) {
        if sightings.is_empty() {
            return;
        }
        let calls: u64 = sightings.iter().map(|s| s.count).sum();
        add(&self.shared.counters.triggered, calls);
        self.start();
        self.shared.pending.send_modify(|n| *n += 1);
        if self.batches.try_send(sightings).is_err() {
            add(&self.shared.counters.dropped_calls, calls);
            self.shared.finished_one();
        }
    }
}

/// The dispatcher's task: throttles, schedules digests, starts deliveries. When every handle is
/// gone it sends the digests it holds and ends.
async fn run(shared: Arc<Shared>, mut batches: mpsc::Receiver<Vec<Sighting>>) {
    let settings = &shared.settings;
    let mut throttle = Throttle::new(settings.window, settings.max_families);
    loop {
        let next_due = throttle.next_due();
        tokio::select! {
            batch = batches.recv() => {
                let Some(batch) = batch else { break };
                let now = Instant::now();
                for sighting in batch {
                    let calls = sighting.count;
                    match throttle.offer(sighting, now) {
                        Offer::Alert(n) => deliver(&shared, *n),
                        Offer::Held => add(&shared.counters.held, calls),
                        Offer::Dropped => add(&shared.counters.dropped_calls, calls),
                    }
                }
                shared.finished_one();
            }
            () = sleep_until(next_due) => {
                for n in throttle.due(Instant::now()) {
                    deliver(&shared, n);
                }
            }
        }
    }
    for n in throttle.drain() {
        deliver(&shared, n);
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Starts one delivery per channel.
fn deliver(shared: &Arc<Shared>, notification: Notification) {
    let counter = match notification.kind {
        NotificationKind::Alert => &shared.counters.alerts,
        NotificationKind::Digest => &shared.counters.digests,
    };
    add(counter, 1);
    let notification = Arc::new(notification);
    for notifier in &shared.notifiers {
        let waiting = shared.deliveries.fetch_add(1, Ordering::Relaxed);
        if waiting >= shared.settings.max_deliveries {
            shared.deliveries.fetch_sub(1, Ordering::Relaxed);
            add(&shared.counters.dropped_deliveries, 1);
            shared.record(record(
                notifier.name(),
                &notification,
                DeliveryStatus::Dropped,
                0,
                Some("too many deliveries waiting".into()),
            ));
            continue;
        }
        shared.pending.send_modify(|n| *n += 1);
        let shared = shared.clone();
        let notifier = notifier.clone();
        let notification = notification.clone();
        tokio::spawn(async move {
            attempt_all(&shared, &*notifier, &notification).await;
            shared.deliveries.fetch_sub(1, Ordering::Relaxed);
            shared.finished_one();
        });
    }
}

/// Tries one channel until it accepts, refuses for good, or the attempts run out.
async fn attempt_all(shared: &Shared, notifier: &dyn Notifier, notification: &Notification) {
    let settings = &shared.settings;
    let mut last_error = None;
    let mut made = 0;
    for attempt in 1..=settings.attempts {
        made = attempt;
        let error =
            match tokio::time::timeout(settings.attempt_timeout, notifier.send(notification)).await
            {
                Ok(Ok(())) => {
                    add(&shared.counters.delivered, 1);
                    shared.record(record(
                        notifier.name(),
                        notification,
                        DeliveryStatus::Delivered,
                        attempt,
                        None,
                    ));
                    return;
                }
                Ok(Err(e)) => e,
                Err(_) => super::NotifyError::retryable("attempt timed out"),
            };
        let retry = error.retryable && attempt < settings.attempts;
        tracing::debug!(channel = notifier.name(), attempt, retry, error = %error, "self-healing: notification not delivered");
        // A notifier of the user's own may say anything, its credentials included: what is
        // recorded (and shown on the dashboard) is scrubbed like every other message.
        last_error = Some(crate::scrub::scrub_message(&error.message));
        if !retry {
            break;
        }
        add(&shared.counters.retries, 1);
        tokio::time::sleep(backoff(settings, attempt)).await;
    }
    add(&shared.counters.failed, 1);
    tracing::warn!(channel = notifier.name(), fingerprint = %notification.fingerprint, "self-healing: notification failed for good");
    shared.record(record(
        notifier.name(),
        notification,
        DeliveryStatus::Failed,
        made,
        last_error,
    ));
}

/// `base·2^(attempt−1)` capped at `max`, the upper half jittered ("equal jitter").
fn backoff(settings: &Settings, attempt: u32) -> Duration {
    let ceiling = settings
        .backoff_base
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(settings.backoff_max);
    ceiling / 2 + ceiling.mul_f64(fastrand::f64() / 2.0)
}

fn record(
    channel: &str,
    n: &Notification,
    status: DeliveryStatus,
    attempts: u32,
    error: Option<String>,
) -> NotificationRecord {
    NotificationRecord {
        time: SystemTime::now(),
        channel: channel.to_owned(),
        kind: n.kind,
        fingerprint: n.fingerprint,
        source: n.source.clone(),
        count: n.count,
        status,
        attempts,
        error,
    }
}
