//! What the queries return, and what health checks and notifications record.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use self_healing_runtime::diagnosis::{Fingerprint, Severity};
use self_healing_runtime::event::DiagnosisRecord;
use self_healing_runtime::{Category, Outcome};

/// One stored healing event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EventRecord {
    /// The row id (increasing with insertion).
    pub id: i64,
    /// When the call started.
    pub time: SystemTime,
    /// The process that produced it.
    pub instance: String,
    /// The site's `source`.
    pub source: String,
    /// The site's category.
    pub category: Category,
    /// The failure family.
    pub fingerprint: Fingerprint,
    /// The error class (`"transient"`, `"connection_lost"`, …).
    pub class: String,
    /// The scrubbed message, capped.
    pub message: String,
    /// How bad it was.
    pub severity: Severity,
    /// The strategy that healed it or the last one tried.
    pub strategy: Option<String>,
    /// How the call ended.
    pub outcome: Outcome,
    /// Attempts made (the maximum when folded).
    pub attempts: u32,
    /// Time the call took (the total when folded).
    pub duration: Duration,
    /// How many calls this record stands for.
    pub count: u64,
    /// How it was diagnosed, with the strategy steps.
    pub diagnosis: DiagnosisRecord,
    /// The idempotency key of the call (keyed and `queue_for_later` sites; the first call's when
    /// folded), as 32 hex digits.
    pub call_key: Option<String>,
}

/// Filters for [`DieselStore::events`](crate::DieselStore::events). Every field set must match.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use self_healing_runtime::Outcome;
/// use self_healing_store::EventFilter;
///
/// let filter = EventFilter {
///     source: Some("createContact".into()),
///     outcome: Some(Outcome::Failed),
///     since: Some(SystemTime::now() - Duration::from_secs(3600)),
///     ..EventFilter::default()
/// };
/// # let _ = filter;
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// Only this `source`.
    pub source: Option<String>,
    /// Only this category.
    pub category: Option<Category>,
    /// Only this outcome.
    pub outcome: Option<Outcome>,
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Only this failure family.
    pub fingerprint: Option<Fingerprint>,
    /// Events at or after this time.
    pub since: Option<SystemTime>,
    /// Events before this time.
    pub until: Option<SystemTime>,
}

/// Where a page of events ends: pass it to get the next (older) page. Prints as `TIME_US.ID`
/// and parses back, for use in URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventCursor {
    pub(crate) time_us: i64,
    pub(crate) id: i64,
}

impl fmt::Display for EventCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.time_us, self.id)
    }
}

impl FromStr for EventCursor {
    type Err = InvalidCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (t, id) = s.split_once('.').ok_or(InvalidCursor)?;
        Ok(EventCursor {
            time_us: t.parse().map_err(|_| InvalidCursor)?,
            id: id.parse().map_err(|_| InvalidCursor)?,
        })
    }
}

/// A string that is not an [`EventCursor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCursor;

impl fmt::Display for InvalidCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid event cursor: expected `TIME_US.ID` as returned with a page")
    }
}

impl std::error::Error for InvalidCursor {}

/// One page of events, newest first.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EventPage {
    /// The events.
    pub events: Vec<EventRecord>,
    /// The cursor of the next page, when there is one.
    pub next: Option<EventCursor>,
}

/// Calls per hour and outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HourlyCount {
    /// The start of the hour (UTC).
    pub hour: SystemTime,
    /// The outcome.
    pub outcome: Outcome,
    /// Calls (folded records count their `count`).
    pub calls: u64,
}

/// How often the calls a strategy ended with were healed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StrategyRate {
    /// The strategy's name.
    pub strategy: String,
    /// Calls whose event names it.
    pub calls: u64,
    /// Of those, healed.
    pub healed: u64,
}

impl StrategyRate {
    /// `healed / calls`, 0 when there were none.
    pub fn rate(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.healed as f64 / self.calls as f64
        }
    }
}

/// A source with calls that were not healed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailingSource {
    /// The site's `source`.
    pub source: String,
    /// Calls not healed.
    pub failures: u64,
    /// The last of them.
    pub last: SystemTime,
}

/// A failure family whose calls were not healed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailingFingerprint {
    /// The family.
    pub fingerprint: Fingerprint,
    /// A source where it happens.
    pub source: String,
    /// Its error class.
    pub class: String,
    /// A sample message.
    pub message: String,
    /// Calls not healed.
    pub failures: u64,
    /// The last of them.
    pub last: SystemTime,
}

/// A stored row of learned statistics with its timestamps and the last AI diagnosis.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PatternRecord {
    /// The statistics, as the runtime's [`PatternTable`](self_healing_runtime::selection::PatternTable) merges them.
    pub row: self_healing_runtime::selection::PatternRow,
    /// The first time the strategy acted on the family.
    pub first_seen: SystemTime,
    /// The last time.
    pub last_seen: SystemTime,
    /// The last diagnosis by an analyzer other than the rules (JSON), if any.
    pub ai_diagnosis: Option<String>,
}

/// A call site from `call_sites`, with what the events say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SiteRecord {
    /// The `source` name.
    pub source: String,
    /// `module_path!()` at the definition.
    pub module_path: String,
    /// The Rust function name.
    pub function: String,
    /// The category.
    pub category: String,
    /// `file!()` at the definition.
    pub file: String,
    /// `line!()` at the definition.
    pub line: u32,
    /// The attribute's options as JSON.
    pub options: String,
    /// The instance that last registered it.
    pub instance: String,
    /// When it was first registered.
    pub first_seen: SystemTime,
    /// When it was last registered.
    pub last_seen: SystemTime,
    /// The last failure of a call (healed or not).
    pub last_error: Option<SystemTime>,
    /// The last healed call.
    pub last_healed: Option<SystemTime>,
    /// Failing calls recorded.
    pub failures: u64,
    /// Of those, healed.
    pub healed: u64,
}

/// The result of a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HealthStatus {
    /// Working.
    Healthy,
    /// Working, but slow or partly failing.
    Degraded,
    /// Not working.
    Unhealthy,
}

impl HealthStatus {
    /// `"healthy"`, `"degraded"` or `"unhealthy"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        [
            HealthStatus::Healthy,
            HealthStatus::Degraded,
            HealthStatus::Unhealthy,
        ]
        .into_iter()
        .find(|h| h.as_str() == s)
    }
}

/// One health check result, to record or as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckRecord {
    /// When it ran.
    pub time: SystemTime,
    /// The check's name (`"database"`, `"openai"`, …).
    pub name: String,
    /// Its result.
    pub status: HealthStatus,
    /// How long it took.
    pub latency: Duration,
    /// What it found, in one line.
    pub message: String,
    /// Details as JSON, if any.
    pub details: Option<String>,
}

/// A stored health check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredHealthCheck {
    /// The row id.
    pub id: i64,
    /// The process that ran it.
    pub instance: String,
    /// The result.
    pub check: HealthCheckRecord,
}

/// What became of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationStatus {
    /// Delivered.
    Sent,
    /// Delivery failed.
    Failed,
    /// Held back by throttling (counted into a later digest).
    Throttled,
}

impl NotificationStatus {
    /// `"sent"`, `"failed"` or `"throttled"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Sent => "sent",
            NotificationStatus::Failed => "failed",
            NotificationStatus::Throttled => "throttled",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        [
            NotificationStatus::Sent,
            NotificationStatus::Failed,
            NotificationStatus::Throttled,
        ]
        .into_iter()
        .find(|n| n.as_str() == s)
    }
}

/// One notification to admins, to record or as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    /// When it was sent (or held back).
    pub time: SystemTime,
    /// The channel (`"email"`, `"slack"`, `"webhook"`, …).
    pub channel: String,
    /// How bad the reported failure was.
    pub severity: Severity,
    /// The source it is about, if one.
    pub source: Option<String>,
    /// The failure family it is about, if one.
    pub fingerprint: Option<Fingerprint>,
    /// The subject line.
    pub title: String,
    /// The text.
    pub body: String,
    /// What became of it.
    pub status: NotificationStatus,
    /// Why delivery failed, if it did.
    pub error: Option<String>,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredNotification {
    /// The row id.
    pub id: i64,
    /// The process that sent it.
    pub instance: String,
    /// The notification.
    pub notification: NotificationRecord,
}

/// Rows removed by [`DieselStore::prune`](crate::DieselStore::prune).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneReport {
    /// Healing events.
    pub events: u64,
    /// Health checks.
    pub health_checks: u64,
    /// Notifications.
    pub notifications: u64,
    /// Writer batch markers.
    pub batches: u64,
    /// Circuit news past its own retention (a day; each instance's latest state per source a
    /// week), whatever the age asked for.
    pub circuit_notices: u64,
    /// Delivered outbox entries (pending and dead ones are kept whatever their age).
    pub outbox: u64,
}

pub(crate) fn parse_severity(s: &str) -> Option<Severity> {
    [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ]
    .into_iter()
    .find(|v| v.as_str() == s)
}
