//! The retry budget of a site: it limits re-runs that *fail*, so retries cannot multiply the load
//! on a dependency that is down, while re-runs that heal cost nothing.
//!
//! A token bucket: every call of the site deposits `ratio` (read from the site's success
//! counter and its failures, so the success path pays nothing extra), time deposits
//! `floor_per_sec`, each re-run withdraws one token, and a re-run that heals gives its token
//! back. Traffic whose first attempts fail but whose re-runs heal (one bad backend of two)
//! therefore never runs the budget dry, while in an outage re-runs are held to `ratio` of the
//! calls plus the floor.

use std::time::Duration;

use tokio::time::Instant;

/// Settings of the retry budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// Re-runs that fail, allowed per call of the site (0.1 = failing retries may add 10 % to the
    /// load).
    pub ratio: f64,
    /// Failing re-runs allowed per second whatever the traffic, so rare calls can still be
    /// retried.
    pub floor_per_sec: f64,
    /// Most re-runs that can be saved up.
    pub max_tokens: f64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            ratio: 0.1,
            floor_per_sec: 1.0,
            max_tokens: 20.0,
        }
    }
}

/// The token bucket of one site.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    config: BudgetConfig,
    tokens: f64,
    refilled: Instant,
    /// The site's call counter when it was last read.
    calls_seen: u64,
}

impl RetryBudget {
    /// A full budget; `calls_total` is the site's call counter now.
    pub fn new(config: BudgetConfig, now: Instant, calls_total: u64) -> Self {
        RetryBudget {
            config,
            tokens: config.max_tokens,
            refilled: now,
            calls_seen: calls_total,
        }
    }

    fn refill(&mut self, now: Instant, calls_total: u64) {
        let elapsed: Duration = now.saturating_duration_since(self.refilled);
        let calls = calls_total.saturating_sub(self.calls_seen);
        self.refilled = now;
        self.calls_seen = calls_total;
        self.tokens = (self.tokens
            + elapsed.as_secs_f64() * self.config.floor_per_sec
            + calls as f64 * self.config.ratio)
            .min(self.config.max_tokens);
    }

    /// New settings, keeping the tokens saved up (capped by the new maximum).
    pub fn reconfigure(&mut self, config: BudgetConfig) {
        self.config = config;
        self.tokens = self.tokens.min(config.max_tokens);
    }

    /// Takes one re-run from the budget; false when it is spent.
    pub fn withdraw(&mut self, now: Instant, calls_total: u64) -> bool {
        self.refill(now, calls_total);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// A re-run taken from the budget healed the call: its token comes back.
    pub fn refund(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.config.max_tokens);
    }

    /// Tokens left now.
    pub fn tokens(&mut self, now: Instant, calls_total: u64) -> f64 {
        self.refill(now, calls_total);
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_retries_are_capped_at_the_ratio_plus_floor() {
        let t0 = Instant::now();
        let config = BudgetConfig {
            ratio: 0.2,
            floor_per_sec: 0.0,
            max_tokens: 1000.0,
        };
        let mut b = RetryBudget::new(config, t0, 0);
        // Spend the initial tokens first.
        while b.withdraw(t0, 0) {}
        let mut allowed = 0;
        for calls in 1..=1000u64 {
            if b.withdraw(t0, calls) {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 200, "20 % of 1000 calls");
    }

    #[test]
    fn retries_that_heal_cost_nothing() {
        let t0 = Instant::now();
        let config = BudgetConfig {
            ratio: 0.0,
            floor_per_sec: 0.0,
            max_tokens: 2.0,
        };
        let mut b = RetryBudget::new(config, t0, 0);
        for _ in 0..100_000 {
            assert!(b.withdraw(t0, 0));
            b.refund();
        }
    }

    #[test]
    fn floor_refills_over_time() {
        let t0 = Instant::now();
        let mut b = RetryBudget::new(BudgetConfig::default(), t0, 0);
        while b.withdraw(t0, 0) {}
        assert!(!b.withdraw(t0, 0));
        assert!(
            b.withdraw(t0 + Duration::from_secs(1), 0),
            "1/s floor gives one after a second"
        );
    }
}
