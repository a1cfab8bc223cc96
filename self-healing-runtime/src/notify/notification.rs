//! What admins are told, and the record of each delivery.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::Category;
use crate::diagnosis::{ErrorClass, Fingerprint, Severity};
use crate::event::Outcome;

/// Whether a notification is the first of its family or a digest of what followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationKind {
    /// The first failure of a family in a while: sent at once.
    Alert,
    /// The failures of a family since its last notification, at most once per window.
    Digest,
}

impl NotificationKind {
    /// `alert` or `digest`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            NotificationKind::Alert => "alert",
            NotificationKind::Digest => "digest",
        }
    }
}

/// One message to admins about one family of failures. Every text in it is scrubbed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Notification {
    /// Alert or digest.
    pub kind: NotificationKind,
    /// The family of failures.
    pub fingerprint: Fingerprint,
    /// The site's `source`.
    pub source: String,
    /// The site's category.
    pub category: Category,
    /// The kind of failure.
    pub class: ErrorClass,
    /// The highest severity among the failures covered.
    pub severity: Severity,
    /// How the latest failure ended.
    pub outcome: Outcome,
    /// The strategy tried last, if any.
    pub strategy: Option<String>,
    /// The latest error message (scrubbed).
    pub message: String,
    /// Failing calls this notification covers.
    pub count: u64,
    /// When the first of them happened.
    pub first_seen: SystemTime,
    /// When the latest of them happened.
    pub last_seen: SystemTime,
    /// The process that saw them.
    pub instance: String,
    /// The throttle window: at most one notification per family per window.
    pub window: Duration,
    /// The health check that failed, when the notification is about one rather than about
    /// wrapped calls (`source` is then `health:<name>` and `message` the check's detail).
    pub health_check: Option<String>,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Notification {
    /// A one-line title: what, where, how many.
    pub fn title(&self) -> String {
        if let Some(check) = &self.health_check {
            return match self.kind {
                NotificationKind::Alert => {
                    format!("[self-healing] health check {check} is unhealthy")
                }
                NotificationKind::Digest => format!(
                    "[self-healing] digest: health check {check} failed {} more time{} in the last {} min",
                    self.count,
                    if self.count == 1 { "" } else { "s" },
                    self.window.as_secs().div_ceil(60)
                ),
            };
        }
        let what = if matches!(
            self.outcome,
            Outcome::Failed | Outcome::FastFailed | Outcome::BudgetExhausted
        ) {
            "healing failed"
        } else {
            "critical error"
        };
        match self.kind {
            NotificationKind::Alert => format!(
                "[self-healing] {what} at {} ({}, {})",
                self.source, self.category, self.severity
            ),
            NotificationKind::Digest => format!(
                "[self-healing] digest: {} more failure{} at {} in the last {} min",
                self.count,
                if self.count == 1 { "" } else { "s" },
                self.source,
                self.window.as_secs().div_ceil(60)
            ),
        }
    }

    /// The details, one per line.
    pub fn text(&self) -> String {
        if let Some(check) = &self.health_check {
            // A check has no error class or outcome of its own: say what it found and tried.
            return format!(
                "{}\ncheck: {check}\nfound: {}\nhealing: {}\ncount: {}\ninstance: {}",
                self.title(),
                self.message,
                self.strategy.as_deref().unwrap_or("none"),
                self.count,
                self.instance,
            );
        }
        format!(
            "{}\nsource: {} ({})\nerror: {}\nclass: {}, severity: {}\noutcome: {} (strategy: {})\ncount: {}\nfingerprint: {}\ninstance: {}",
            self.title(),
            self.source,
            self.category,
            self.message,
            self.class,
            self.severity,
            self.outcome,
            self.strategy.as_deref().unwrap_or("none"),
            self.count,
            self.fingerprint,
            self.instance,
        )
    }

    /// The JSON payload of the generic webhook (times in milliseconds since the Unix epoch).
    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind.as_str(),
            "title": self.title(),
            "fingerprint": self.fingerprint.to_hex(),
            "source": self.source,
            "category": self.category.as_str(),
            "class": self.class.as_str(),
            "severity": self.severity.as_str(),
            "outcome": self.outcome.as_str(),
            "strategy": self.strategy,
            "message": self.message,
            "count": self.count,
            "first_seen_ms": unix_ms(self.first_seen),
            "last_seen_ms": unix_ms(self.last_seen),
            "instance": self.instance,
            "window_secs": self.window.as_secs(),
            "health_check": self.health_check,
            "sent_at_ms": unix_ms(SystemTime::now()),
        })
    }
}

/// How one delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// The channel accepted it.
    Delivered,
    /// Every attempt failed, or the channel refused it for good.
    Failed,
    /// Never attempted: too many deliveries were waiting.
    Dropped,
}

impl DeliveryStatus {
    /// `delivered`, `failed` or `dropped`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Dropped => "dropped",
        }
    }
}

/// One delivery of one notification through one channel, as a store would keep it (the
/// `notifications` table): pass a callback to
/// [`NotifyDispatcherBuilder::on_record`](super::NotifyDispatcherBuilder::on_record).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NotificationRecord {
    /// When the delivery ended.
    pub time: SystemTime,
    /// The channel ([`Notifier::name`](super::Notifier::name)).
    pub channel: String,
    /// Alert or digest.
    pub kind: NotificationKind,
    /// The family of failures.
    pub fingerprint: Fingerprint,
    /// The site's `source`.
    pub source: String,
    /// Failing calls the notification covered.
    pub count: u64,
    /// How it ended.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// The last error, when it failed (never holds the channel's URL or secrets).
    pub error: Option<String>,
}
