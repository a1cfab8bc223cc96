//! Exponential backoff with full jitter.

use std::time::Duration;

/// Exponential backoff: the `n`-th re-run waits a uniform random time in `[0, min(max, base·2ⁿ⁻¹)]`
/// ("full jitter", which spreads a herd of clients best).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first re-run's ceiling.
    pub base: Duration,
    /// No wait is ever longer.
    pub max: Duration,
}

impl Backoff {
    /// The ceiling of the `rerun`-th re-run's wait (1-based).
    pub fn ceiling(&self, rerun: u32) -> Duration {
        let exp = rerun.saturating_sub(1).min(31);
        self.base.saturating_mul(1u32 << exp).min(self.max)
    }

    /// The wait of the `rerun`-th re-run, given a uniform `random` in [0, 1).
    pub fn delay(&self, rerun: u32, random: f64) -> Duration {
        self.ceiling(rerun).mul_f64(random.clamp(0.0, 1.0))
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn delays_stay_within_bounds(base_ms in 0u64..10_000, max_ms in 0u64..100_000, rerun in 0u32..200, random in 0.0f64..1.0) {
            let b = Backoff { base: Duration::from_millis(base_ms), max: Duration::from_millis(max_ms) };
            let d = b.delay(rerun, random);
            prop_assert!(d <= b.max);
            prop_assert!(d <= b.ceiling(rerun));
        }

        #[test]
        fn ceilings_never_shrink(base_ms in 1u64..1_000, rerun in 1u32..64) {
            let b = Backoff { base: Duration::from_millis(base_ms), max: Duration::from_secs(60) };
            prop_assert!(b.ceiling(rerun + 1) >= b.ceiling(rerun));
        }
    }

    #[test]
    fn doubles_until_the_cap() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        assert_eq!(b.ceiling(1), Duration::from_millis(100));
        assert_eq!(b.ceiling(2), Duration::from_millis(200));
        assert_eq!(b.ceiling(3), Duration::from_millis(400));
        assert_eq!(b.ceiling(4), Duration::from_millis(500));
    }
}
