//! Throttling per family of failures: the first failure goes out at once, then what follows is
//! counted into a digest sent at most once per window.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{Notification, NotificationKind};
use crate::Category;
use crate::diagnosis::{ErrorClass, Fingerprint, Severity};
use crate::event::{HealingEvent, Outcome};
use crate::scrub::{scrub, scrub_message};

/// A triggering record, owned and scrubbed.
#[derive(Debug, Clone)]
pub(crate) struct Sighting {
    pub(crate) fingerprint: Fingerprint,
    pub(crate) source: String,
    pub(crate) category: Category,
    pub(crate) class: ErrorClass,
    pub(crate) severity: Severity,
    pub(crate) outcome: Outcome,
    pub(crate) strategy: Option<String>,
    pub(crate) message: String,
    pub(crate) count: u64,
    pub(crate) time: SystemTime,
    pub(crate) instance: String,
    /// The failing health check, when the sighting is one (`source` is then `health:<name>`).
    pub(crate) health_check: Option<String>,
}

impl Sighting {
    pub(crate) fn of(event: &HealingEvent) -> Sighting {
        Sighting {
            fingerprint: event.fingerprint,
            source: scrub(&event.source),
            category: event.category,
            class: event.class,
            severity: event.severity,
            outcome: event.outcome,
            strategy: event.strategy.as_deref().map(str::to_owned),
            // Scrubbed again: an installed scrubber may know more than the recording one did.
            // Through `scrub_message`, which cuts only after scrubbing and bounds the length.
            message: scrub_message(&event.message),
            count: event.count,
            time: event.time,
            instance: event.instance.to_string(),
            health_check: None,
        }
    }
}

/// Failures held for a family's next digest.
#[derive(Debug)]
struct Held {
    latest: Sighting,
    count: u64,
    severity: Severity,
    first_seen: SystemTime,
}

#[derive(Debug)]
struct Family {
    last_sent: Instant,
    held: Option<Held>,
}

/// What became of an offered sighting.
#[derive(Debug)]
pub(crate) enum Offer {
    /// Send this alert now (boxed: a notification is large, the other answers are empty).
    Alert(Box<Notification>),
    /// Counted into the family's next digest.
    Held,
    /// The family table is full: not counted anywhere.
    Dropped,
}

/// The throttle state of every family seen within the last window.
#[derive(Debug)]
pub(crate) struct Throttle {
    window: Duration,
    max_families: usize,
    families: HashMap<Fingerprint, Family>,
}

fn notification(
    kind: NotificationKind,
    s: &Sighting,
    count: u64,
    severity: Severity,
    first_seen: SystemTime,
    window: Duration,
) -> Notification {
    Notification {
        kind,
        fingerprint: s.fingerprint,
        source: s.source.clone(),
        category: s.category,
        class: s.class,
        severity,
        outcome: s.outcome,
        strategy: s.strategy.clone(),
        message: s.message.clone(),
        count,
        first_seen,
        last_seen: s.time,
        instance: s.instance.clone(),
        window,
        health_check: s.health_check.clone(),
    }
}

impl Throttle {
    pub(crate) fn new(window: Duration, max_families: usize) -> Throttle {
        Throttle {
            window,
            max_families,
            families: HashMap::new(),
        }
    }

    /// Takes one triggering record seen at `now`.
    pub(crate) fn offer(&mut self, s: Sighting, now: Instant) -> Offer {
        let window = self.window;
        let known = self.families.contains_key(&s.fingerprint);
        if !known && self.families.len() >= self.max_families {
            self.forget_quiet(now);
            if self.families.len() >= self.max_families {
                return Offer::Dropped;
            }
        }
        let family = self.families.entry(s.fingerprint).or_insert(Family {
            last_sent: now,
            held: None,
        });
        let quiet = now >= family.last_sent + window && family.held.is_none();
        if !known || quiet {
            family.last_sent = now;
            let alert = notification(
                NotificationKind::Alert,
                &s,
                s.count,
                s.severity,
                s.time,
                window,
            );
            return Offer::Alert(Box::new(alert));
        }
        match &mut family.held {
            Some(held) => {
                held.count += s.count;
                held.severity = held.severity.max(s.severity);
                held.latest = s;
            }
            None => {
                family.held = Some(Held {
                    count: s.count,
                    severity: s.severity,
                    first_seen: s.time,
                    latest: s,
                });
            }
        }
        Offer::Held
    }

    /// When the next digest is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.families
            .values()
            .filter(|f| f.held.is_some())
            .map(|f| f.last_sent + self.window)
            .min()
    }

    /// The digests due at `now`; forgets families that have been quiet for a window.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<Notification> {
        let window = self.window;
        let mut out = Vec::new();
        for family in self.families.values_mut() {
            if now >= family.last_sent + window
                && let Some(held) = family.held.take()
            {
                family.last_sent = now;
                out.push(notification(
                    NotificationKind::Digest,
                    &held.latest,
                    held.count,
                    held.severity,
                    held.first_seen,
                    window,
                ));
            }
        }
        self.forget_quiet(now);
        out
    }

    /// Every held digest at once (shutdown).
    pub(crate) fn drain(&mut self) -> Vec<Notification> {
        let window = self.window;
        self.families
            .drain()
            .filter_map(|(_, f)| f.held)
            .map(|held| {
                notification(
                    NotificationKind::Digest,
                    &held.latest,
                    held.count,
                    held.severity,
                    held.first_seen,
                    window,
                )
            })
            .collect()
    }

    /// Families with nothing held whose window has passed behave as if never seen.
    fn forget_quiet(&mut self, now: Instant) {
        let window = self.window;
        self.families
            .retain(|_, f| f.held.is_some() || now < f.last_sent + window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sighting(fp: u64, count: u64) -> Sighting {
        Sighting {
            fingerprint: Fingerprint(fp),
            source: "s".into(),
            category: Category::Database,
            class: ErrorClass::Permanent,
            severity: Severity::High,
            outcome: Outcome::Failed,
            strategy: None,
            message: "m".into(),
            count,
            time: SystemTime::UNIX_EPOCH,
            instance: "i".into(),
            health_check: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn first_at_once_then_one_digest_per_window() {
        let window = Duration::from_secs(1800);
        let mut t = Throttle::new(window, 100);
        let start = Instant::now();
        assert!(matches!(t.offer(sighting(1, 1), start), Offer::Alert(n) if n.count == 1));
        for _ in 0..9_999 {
            assert!(matches!(t.offer(sighting(1, 1), start), Offer::Held));
        }
        assert_eq!(t.next_due(), Some(start + window));
        assert!(t.due(start + window - Duration::from_secs(1)).is_empty());
        let digests = t.due(start + window);
        assert_eq!(digests.len(), 1);
        assert_eq!(
            (digests[0].kind, digests[0].count),
            (NotificationKind::Digest, 9_999)
        );
        // Quiet for a window: the next failure is an alert again.
        assert!(t.due(start + window * 2).is_empty());
        assert!(matches!(
            t.offer(sighting(1, 1), start + window * 2),
            Offer::Alert(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn families_are_throttled_apart_and_bounded() {
        let mut t = Throttle::new(Duration::from_secs(60), 2);
        let now = Instant::now();
        assert!(matches!(t.offer(sighting(1, 1), now), Offer::Alert(_)));
        assert!(matches!(t.offer(sighting(2, 1), now), Offer::Alert(_)));
        assert!(matches!(t.offer(sighting(3, 1), now), Offer::Dropped));
        assert!(matches!(t.offer(sighting(1, 5), now), Offer::Held));
        assert_eq!(t.drain().iter().map(|n| n.count).sum::<u64>(), 5);
    }
}
