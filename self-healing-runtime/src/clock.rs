//! Time arithmetic that cannot panic: durations here can come from a dependency's Retry-After,
//! a custom strategy's plan or a user's settings, and `Instant + Duration` panics on overflow.

use std::time::Duration;

use tokio::time::Instant;

/// No wait is taken to last longer than this (a day): anything longer is refused by the call's
/// time budget long before, and capping keeps instants representable.
pub(crate) const LONGEST_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// `now + wait`, with the wait capped at [`LONGEST_WAIT`].
pub(crate) fn after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait.min(LONGEST_WAIT)).unwrap_or(now)
}

/// `wait × factor` for a jitter factor, keeping `wait` when the product is not a duration.
pub(crate) fn scaled(wait: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(wait.as_secs_f64() * factor).unwrap_or(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_waits_are_capped_not_panicking() {
        let now = Instant::now();
        assert_eq!(after(now, Duration::MAX), now + LONGEST_WAIT);
        assert_eq!(scaled(Duration::MAX, 1.2), Duration::MAX);
        assert_eq!(scaled(Duration::from_secs(10), 0.5), Duration::from_secs(5));
    }
}
