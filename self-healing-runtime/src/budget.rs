//! The retry budget of a site: re-runs may add at most `ratio` of the calls, plus a small floor
//! per second, so retries cannot multiply the load on a dependency that is down.

use std::time::Duration;

use tokio::time::Instant;

/// Settings of the retry budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// Re-runs earned per tracked call (0.2 = retries may add 20 % to the load).
    pub ratio: f64,
    /// Re-runs allowed per second whatever the traffic, so rare calls can still be retried.
    pub floor_per_sec: f64,
    /// Most re-runs that can be saved up.
    pub max_tokens: f64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            ratio: 0.2,
            floor_per_sec: 10.0,
            max_tokens: 100.0,
        }
    }
}

/// A token bucket: calls deposit `ratio`, time deposits `floor_per_sec`, re-runs withdraw 1.
///
/// Calls are counted only while the site is tracked (it failed recently), which keeps the success
/// path of a healthy site free of any bookkeeping; the budget starts with one second of floor.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    config: BudgetConfig,
    tokens: f64,
    refilled: Instant,
}

impl RetryBudget {
    /// A budget holding one second's floor.
    pub fn new(config: BudgetConfig, now: Instant) -> Self {
        RetryBudget {
            config,
            tokens: config.floor_per_sec.min(config.max_tokens),
            refilled: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed: Duration = now.saturating_duration_since(self.refilled);
        self.refilled = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.config.floor_per_sec)
            .min(self.config.max_tokens);
    }

    /// A call happened.
    pub fn deposit(&mut self, now: Instant) {
        self.refill(now);
        self.tokens = (self.tokens + self.config.ratio).min(self.config.max_tokens);
    }

    /// Takes one re-run from the budget; false when it is spent.
    pub fn withdraw(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_capped_at_the_ratio_plus_floor() {
        let t0 = Instant::now();
        let config = BudgetConfig {
            ratio: 0.2,
            floor_per_sec: 0.0,
            max_tokens: 1000.0,
        };
        let mut b = RetryBudget::new(config, t0);
        let mut allowed = 0;
        for _ in 0..1000 {
            b.deposit(t0);
            if b.withdraw(t0) {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 200, "20 % of 1000 calls");
    }

    #[test]
    fn floor_refills_over_time() {
        let t0 = Instant::now();
        let mut b = RetryBudget::new(BudgetConfig::default(), t0);
        while b.withdraw(t0) {}
        assert!(!b.withdraw(t0));
        assert!(
            b.withdraw(t0 + Duration::from_millis(200)),
            "10/s floor gives 2 after 200 ms"
        );
    }
}
