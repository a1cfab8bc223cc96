//! Admin notifications, throttled (feature `notify`).
//!
//! A [`NotifyDispatcher`] watches written events (it is an
//! [`EventObserver`](crate::event::EventObserver)) and tells admins when healing failed
//! (`failed`, `fast_failed`, `budget_exhausted`) or an error is critical ([`Triggers`]). Per
//! family of failures (fingerprint) the first one goes out at once, then a digest with counts at
//! most once per window (30 minutes by default, like Sentry's alert frequency): a storm of 10,000
//! identical failures becomes one alert and a digest per window, not 10,000 messages.
//!
//! Channels ([`Notifier`]s), several at once:
//!
//! - [`SlackWebhook`]: Slack-compatible incoming webhooks;
//! - [`SignedWebhook`]: a JSON webhook signed with HMAC-SHA256 over the body
//!   ([`SIGNATURE_HEADER`]: `sha256=<hex>`);
//! - [`EmailApi`]: email through an HTTP API (Resend-style `POST {base}/emails`);
//! - [`TracingNotifier`]: `tracing` events;
//! - your own: implement [`Notifier`].
//!
//! Deliveries run in the dispatcher's own task, are retried with backoff, counted
//! ([`NotifyStats`]) and reported as [`NotificationRecord`]s; nothing here blocks or fails a
//! caller. Every text is scrubbed.
//!
//! ```
//! use std::time::Duration;
//! use self_healing_runtime::Healer;
//! use self_healing_runtime::notify::{NotifyDispatcher, SignedWebhook, TracingNotifier};
//!
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let notify = NotifyDispatcher::builder()
//!     .notifier(TracingNotifier)
//!     .notifier(SignedWebhook::new("https://ops.example.com/hooks/healing", "a shared secret of 32 bytes....")?)
//!     .window(Duration::from_secs(15 * 60))
//!     .on_record(|record| println!("{} via {}: {}", record.kind.as_str(), record.channel, record.status.as_str()))
//!     .build()?;
//! let healer = Healer::builder().notify(notify).build()?;
//! # let _ = healer;
//! # Ok(()) }
//! ```

mod config;
mod dispatcher;
mod email;
use crate::http_client;
mod log;
mod notification;
mod notifier;
mod post;
mod slack;
mod stats;
pub(crate) mod throttle;
mod webhook;

pub use config::{NotifyConfigError, Triggers};
pub use dispatcher::{NotifyDispatcher, NotifyDispatcherBuilder};
pub use email::{DEFAULT_FROM, EmailApi};
pub use log::TracingNotifier;
pub use notification::{DeliveryStatus, Notification, NotificationKind, NotificationRecord};
pub use notifier::{Notifier, NotifyError};
pub use slack::SlackWebhook;
pub use stats::NotifyStats;
pub use webhook::{KIND_HEADER, SIGNATURE_HEADER, SignedWebhook, signature};

use crate::healer::HealerBuilder;

impl HealerBuilder {
    /// Adds a notification dispatcher (feature `notify`). It also tells admins about failing
    /// health checks of a [`HealthMonitor`](crate::health::HealthMonitor) of this healer.
    pub fn notify(mut self, dispatcher: NotifyDispatcher) -> HealerBuilder {
        self.notify.push(dispatcher.clone());
        self.observer(dispatcher)
    }
}
