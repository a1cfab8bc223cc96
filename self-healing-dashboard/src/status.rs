//! The page's status badge, which must agree with the figures the page shows: no `healthy`
//! while calls are failing.
//!
//! The rule, from the worst down:
//!
//! 1. the health checks and this process's circuits (what `/health` answers:
//!    [`overall`](crate::health::overall));
//! 2. the *recent* calls: those of the last two bars of the hourly chart (the current UTC hour
//!    and the one before it, so at least the last 60 minutes):
//!    - calls not healed and none healed → `unhealthy` (failing: nothing heals them);
//!    - calls not healed and some healed → at least `degraded`;
//!    - otherwise (no failing call, or every one healed) → no change.
//!
//! The badge is the worse of 1 and 2. `/health` keeps rule 1 alone: a load balancer must not
//! take an instance out because a dependency fails.

use std::time::{Duration, SystemTime};

use self_healing_runtime::Outcome;
use self_healing_runtime::health::HealthStatus;
use self_healing_store::HourlyCount;

use crate::charts::hour_start;

/// Recent calls, healed and not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Recent {
    pub(crate) healed: u64,
    pub(crate) unhealed: u64,
}

impl Recent {
    /// The calls of the current UTC hour and the one before it, from the hourly counts.
    pub(crate) fn of(hourly: &[HourlyCount], now: SystemTime) -> Recent {
        Self::of_counts(hourly.iter().map(|c| (c.hour, c.outcome, c.calls)), now)
    }

    /// As [`of`](Self::of), from `(hour, outcome, calls)`.
    fn of_counts(
        hourly: impl IntoIterator<Item = (SystemTime, Outcome, u64)>,
        now: SystemTime,
    ) -> Recent {
        let since = hour_start(now)
            .checked_sub(Duration::from_secs(3600))
            .unwrap_or(std::time::UNIX_EPOCH);
        let mut recent = Recent::default();
        for (_, outcome, calls) in hourly.into_iter().filter(|c| c.0 >= since) {
            if outcome == Outcome::Healed {
                recent.healed += calls;
            } else {
                recent.unhealed += calls;
            }
        }
        recent
    }

    /// What the recent calls alone say.
    fn status(self) -> HealthStatus {
        match (self.unhealed, self.healed) {
            (0, _) => HealthStatus::Healthy,
            (_, 0) => HealthStatus::Unhealthy,
            _ => HealthStatus::Degraded,
        }
    }
}

/// The badge: the worse of `checks` (health checks and circuits) and the recent calls.
pub(crate) fn badge(checks: HealthStatus, recent: Recent) -> HealthStatus {
    checks.max(recent.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Count = (SystemTime, Outcome, u64);

    fn count(hours_ago: u64, outcome: Outcome, calls: u64, now: SystemTime) -> Count {
        (
            hour_start(now) - Duration::from_secs(3600 * hours_ago),
            outcome,
            calls,
        )
    }

    #[test]
    fn no_healthy_badge_while_calls_fail() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_000 * 3600 + 120);
        let hourly = [
            count(5, Outcome::Failed, 40, now), // long ago: the chart shows it, the badge not
            count(1, Outcome::Failed, 2, now),
            count(0, Outcome::FastFailed, 1, now),
        ];
        let recent = Recent::of_counts(hourly, now);
        assert_eq!(
            recent,
            Recent {
                healed: 0,
                unhealed: 3
            }
        );
        use HealthStatus::*;
        assert_eq!(badge(Healthy, recent), Unhealthy, "failing, nothing heals");
        let mut healing = hourly.to_vec();
        healing.push(count(0, Outcome::Healed, 10, now));
        assert_eq!(
            badge(Healthy, Recent::of_counts(healing.clone(), now)),
            Degraded
        );
        assert_eq!(
            badge(Unhealthy, Recent::of_counts(healing.clone(), now)),
            Unhealthy
        );
        let healed_only = [count(0, Outcome::Healed, 10, now), hourly[0]];
        assert_eq!(badge(Healthy, Recent::of_counts(healed_only, now)), Healthy);
        assert_eq!(badge(Degraded, Recent::default()), Degraded);
        assert_eq!(badge(Healthy, Recent::default()), Healthy);
    }
}
