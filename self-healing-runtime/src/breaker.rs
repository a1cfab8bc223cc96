//! The circuit breaker's state machine: pure, driven by the caller's clock, so it is tested with
//! property tests and no sleeps.
//!
//! What it counts: one outcome per logical call, not per attempt (a call healed by a re-run is a
//! success), and only failures that say the dependency is unhealthy (lost or refused
//! connections, timeouts, transient server errors, exhausted resources). Rate limiting, expired
//! credentials, permanent errors and bugs are answers from a working dependency, or faults of the
//! caller, and never open a circuit. Successes are counted on the success path by one relaxed
//! atomic increment per call ([`Site`](crate::Site)'s counter); the breaker reads that counter
//! when it needs a verdict and spreads what it missed over its window, so its failure rate is
//! measured over all of the site's traffic without a clock read or a lock per successful call.
//!
//! When open, it probes early and backs off: the first probe about `probe_after` after opening
//! (jittered), the interval doubling while probes fail, capped at `probe_max`.

use std::time::Duration;

use tokio::time::Instant;

/// The state of a site's circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls run.
    Closed,
    /// Calls fail fast (or get the fallback or cached value).
    Open,
    /// A bounded number of probe calls run; their results close or re-open the circuit.
    HalfOpen,
}

impl CircuitState {
    /// The snake_case name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

/// What a failure of some class says about the dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It is unhealthy: lost or refused connections, timeouts, transient server errors,
    /// exhausted resources. Counts against the circuit.
    Unhealthy,
    /// It answered: rate limiting, expired credentials, permanent errors. A working dependency
    /// said no; counts as a healthy call.
    Answered,
    /// Nothing: a bug in the caller, or a refusal by the site's own circuit.
    Unrelated,
}

/// What a failure of `class` says about the dependency.
pub(crate) fn verdict(class: crate::diagnosis::ErrorClass) -> Verdict {
    use crate::diagnosis::ErrorClass as C;
    match class {
        C::Transient | C::Timeout | C::ConnectionLost | C::ResourceExhausted => Verdict::Unhealthy,
        C::RateLimited { .. } | C::AuthExpired | C::Permanent => Verdict::Answered,
        C::Bug | C::CircuitOpen => Verdict::Unrelated,
    }
}

/// Settings of the circuit breaker (the healer's default, or a category's or source's own; see
/// [`Tuning`](crate::settings::Tuning)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Open when at least this share of the calls in the window failed unhealthily (0–1).
    pub failure_rate: f64,
    /// A guarded call slower than this counts as slow (`None`: slow calls are not counted).
    /// Only calls on the guarded path are timed (sites with a `timeout`, `cache`, bulkhead or
    /// an open circuit): the plain success path reads no clock.
    pub slow_call: Option<Duration>,
    /// Open when at least this share of the calls in the window were slow (0–1).
    pub slow_call_rate: f64,
    /// No verdict before this many calls in the window.
    pub minimum_calls: u32,
    /// The sliding window's length (kept as 10 buckets).
    pub window: Duration,
    /// The first probe comes about this long after the circuit opened (±20 % jitter, so a fleet
    /// does not probe in step).
    pub probe_after: Duration,
    /// The interval between probes doubles while they fail, up to this.
    pub probe_max: Duration,
    /// Probe calls admitted while half-open; all must succeed to close.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_rate: 0.5,
            slow_call: None,
            slow_call_rate: 1.0,
            minimum_calls: 20,
            window: Duration::from_secs(20),
            probe_after: Duration::from_secs(1),
            probe_max: Duration::from_secs(5),
            half_open_probes: 1,
        }
    }
}

const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Bucket {
    /// Which window slot this bucket currently counts (time / bucket length).
    slot: u64,
    /// Calls, successes estimated from the success counter included (hence fractional).
    calls: f64,
    failures: u32,
    slow: u32,
}

/// Whether a call may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Run it.
    Allow,
    /// Run it as one of the half-open probes.
    Probe,
    /// Do not run it: the circuit is open (or all probes are out).
    Reject,
}

/// The breaker of one site.
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    epoch: Instant,
    state: CircuitState,
    buckets: [Bucket; BUCKETS],
    /// When the next probe may run (open), or when a stuck round of probes is given up (half-open).
    next_probe: Instant,
    /// The current un-jittered interval between probes.
    interval: Duration,
    probes_out: u32,
    probes_ok: u32,
    /// Opened by hand: no probe runs until it is closed or reset by hand.
    held_open: bool,
    /// The site's success counter when it was last read, and when.
    ok_seen: u64,
    ok_seen_at: Instant,
}

impl Breaker {
    /// A closed breaker; `ok_total` is the site's success counter now.
    pub fn new(config: BreakerConfig, now: Instant, ok_total: u64) -> Self {
        Breaker {
            config,
            epoch: now,
            state: CircuitState::Closed,
            buckets: [Bucket::default(); BUCKETS],
            next_probe: now,
            interval: config.probe_after,
            probes_out: 0,
            probes_ok: 0,
            held_open: false,
            ok_seen: ok_total,
            ok_seen_at: now,
        }
    }

    /// The current state (an open breaker whose pause is over reports `HalfOpen` only once a
    /// call was admitted).
    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// When an open circuit admits its next probe.
    pub fn next_probe(&self) -> Option<Instant> {
        (self.state == CircuitState::Open).then_some(self.next_probe)
    }

    fn bucket_len(&self) -> Duration {
        (self.config.window / BUCKETS as u32).max(Duration::from_millis(1))
    }

    fn slot(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch);
        (since.as_nanos() / self.bucket_len().as_nanos()) as u64
    }

    fn bucket(&mut self, slot: u64) -> &mut Bucket {
        let bucket = &mut self.buckets[(slot % BUCKETS as u64) as usize];
        if bucket.slot != slot {
            *bucket = Bucket {
                slot,
                ..Bucket::default()
            };
        }
        bucket
    }

    /// Takes in the successes counted since the last read: spread evenly over the time since
    /// then, and whatever fell before the window dropped.
    pub fn absorb(&mut self, now: Instant, ok_total: u64) {
        let delta = ok_total.saturating_sub(self.ok_seen);
        let since = self.ok_seen_at;
        self.ok_seen = ok_total;
        self.ok_seen_at = now;
        if delta == 0 || self.state != CircuitState::Closed {
            return;
        }
        let elapsed = now.saturating_duration_since(since);
        let (first, last) = (self.slot(since), self.slot(now));
        if first == last || elapsed.is_zero() {
            self.bucket(last).calls += delta as f64;
            return;
        }
        let per_nano = delta as f64 / elapsed.as_nanos() as f64;
        let oldest = last.saturating_sub(BUCKETS as u64 - 1).max(first);
        let len = self.bucket_len().as_nanos();
        for slot in oldest..=last {
            let start = (u128::from(slot) * len)
                .max(since.saturating_duration_since(self.epoch).as_nanos());
            let end = (u128::from(slot + 1) * len)
                .min(now.saturating_duration_since(self.epoch).as_nanos());
            if end > start {
                self.bucket(slot).calls += per_nano * (end - start) as f64;
            }
        }
    }

    /// Totals over the buckets that are still inside the window: (calls, failures, slow).
    fn totals(&self, now: Instant) -> (f64, u32, u32) {
        let current = self.slot(now);
        self.buckets
            .iter()
            .filter(|b| current.saturating_sub(b.slot) < BUCKETS as u64)
            .fold((0.0, 0, 0), |(c, f, s), b| {
                (c + b.calls, f + b.failures, s + b.slow)
            })
    }

    /// The failure rate over the window and the calls it is measured on.
    pub fn failure_rate(&mut self, now: Instant, ok_total: u64) -> (f64, f64) {
        self.absorb(now, ok_total);
        let (calls, failures, _) = self.totals(now);
        if calls <= 0.0 {
            return (0.0, 0.0);
        }
        (f64::from(failures) / calls, calls)
    }

    /// The settings in effect.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// New settings, keeping the state: an open circuit stays open, the window keeps its
    /// counts (a new window length applies to the buckets that follow).
    pub fn reconfigure(&mut self, config: BreakerConfig) {
        self.config = config;
        self.interval = self.interval.clamp(config.probe_after, config.probe_max);
    }

    /// Whether the circuit was opened by hand and waits to be closed by hand.
    pub fn held_open(&self) -> bool {
        self.held_open
    }

    /// Opens the circuit by hand: every call is refused, no probe runs, until
    /// [`close`](Self::close) or [`reset`](Self::reset).
    pub fn hold_open(&mut self) {
        self.state = CircuitState::Open;
        self.held_open = true;
        self.probes_out = 0;
        self.probes_ok = 0;
    }

    /// Another instance saw the dependency fail: a closed circuit lets its next call through
    /// as a probe, and the calls after it wait for the probe's verdict.
    pub fn suspect(&mut self, now: Instant) {
        if self.state == CircuitState::Closed {
            self.state = CircuitState::Open;
            self.interval = self.config.probe_after;
            self.next_probe = now;
            self.probes_out = 0;
            self.probes_ok = 0;
        }
    }

    /// Forgets everything: closed, an empty window, the first probe interval, no hold.
    pub fn reset(&mut self, now: Instant, ok_total: u64) {
        *self = Breaker::new(self.config, now, ok_total);
    }

    /// Asks whether a call may run now.
    pub fn admit(&mut self, now: Instant) -> Admission {
        if self.held_open {
            return Admission::Reject;
        }
        match self.state {
            CircuitState::Closed => Admission::Allow,
            CircuitState::Open => {
                if now >= self.next_probe {
                    self.half_open(now);
                    Admission::Probe
                } else {
                    Admission::Reject
                }
            }
            CircuitState::HalfOpen => {
                // Probes that never report back (cancelled calls) must not wedge the breaker:
                // once the interval passed, a fresh round of probes is admitted.
                if now >= self.next_probe {
                    self.half_open(now);
                    return Admission::Probe;
                }
                if self.probes_out < self.config.half_open_probes {
                    self.probes_out += 1;
                    Admission::Probe
                } else {
                    Admission::Reject
                }
            }
        }
    }

    fn half_open(&mut self, now: Instant) {
        self.state = CircuitState::HalfOpen;
        self.next_probe = crate::clock::after(now, self.interval.max(Duration::from_millis(1)));
        self.probes_out = 1;
        self.probes_ok = 0;
    }

    /// Admits a probe now, whatever the pause: for the re-run of a failed probe that a hook
    /// repaired on the caller's side (a refreshed credential, a rebuilt connection). Without it
    /// every later probe would meet the same stale state and the circuit would never close.
    pub fn admit_repaired_probe(&mut self, now: Instant) -> Admission {
        if self.held_open {
            return Admission::Reject;
        }
        match self.state {
            CircuitState::Open => {
                self.half_open(now);
                Admission::Probe
            }
            _ => self.admit(now),
        }
    }

    /// Records the outcome of a logical call that ended while the circuit was closed: an
    /// unhealthy failure (`failed`), and whether it was slow. Successes need no call: they are
    /// read from the success counter (`ok_total`). `random` in [0, 1) jitters the first probe.
    pub fn record(
        &mut self,
        now: Instant,
        ok_total: u64,
        failed: bool,
        slow: bool,
        random: f64,
    ) -> CircuitState {
        if self.state != CircuitState::Closed {
            // Late calls admitted before the circuit opened cannot change its verdict.
            return self.state;
        }
        self.absorb(now, ok_total);
        let slot = self.slot(now);
        let bucket = self.bucket(slot);
        if failed {
            bucket.calls += 1.0;
            bucket.failures += 1;
        }
        bucket.slow += u32::from(slow);
        let (calls, failures, slows) = self.totals(now);
        if calls >= f64::from(self.config.minimum_calls.max(1)) {
            let failure_rate = f64::from(failures) / calls;
            let slow_rate = f64::from(slows) / calls;
            if failure_rate >= self.config.failure_rate
                || (self.config.slow_call.is_some() && slow_rate >= self.config.slow_call_rate)
            {
                self.open(now, random);
            }
        }
        self.state
    }

    /// Records what an admitted probe found: `healthy` when it succeeded or failed in a way that
    /// says the dependency answered (a 429, a 401, a permanent error).
    pub fn probe_result(
        &mut self,
        now: Instant,
        ok_total: u64,
        healthy: bool,
        random: f64,
    ) -> CircuitState {
        if self.state != CircuitState::HalfOpen {
            return self.state;
        }
        if healthy {
            self.probes_ok += 1;
            if self.probes_ok >= self.config.half_open_probes {
                self.close(now, ok_total);
            }
        } else {
            self.interval = self.interval.saturating_mul(2).min(self.config.probe_max);
            self.state = CircuitState::Open;
            self.schedule_probe(now, random);
        }
        self.state
    }

    /// Opens the circuit now, whatever the window says (by hand, or for tests).
    pub fn open(&mut self, now: Instant, random: f64) {
        self.state = CircuitState::Open;
        self.interval = self.config.probe_after;
        self.schedule_probe(now, random);
    }

    fn schedule_probe(&mut self, now: Instant, random: f64) {
        let jitter = 0.8 + 0.4 * random.clamp(0.0, 1.0);
        self.next_probe = crate::clock::after(now, crate::clock::scaled(self.interval, jitter));
        self.probes_out = 0;
        self.probes_ok = 0;
    }

    /// Closes the circuit with an empty window (a hold by hand ends too).
    pub fn close(&mut self, now: Instant, ok_total: u64) {
        self.state = CircuitState::Closed;
        self.held_open = false;
        self.buckets = [Bucket::default(); BUCKETS];
        self.epoch = now;
        self.interval = self.config.probe_after;
        self.ok_seen = ok_total;
        self.ok_seen_at = now;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            minimum_calls: 4,
            half_open_probes: 2,
            window: Duration::from_secs(10),
            probe_after: Duration::from_secs(1),
            probe_max: Duration::from_secs(8),
            ..BreakerConfig::default()
        }
    }

    fn secs(n: f64) -> Duration {
        Duration::from_secs_f64(n)
    }

    #[test]
    fn opens_on_failure_rate_then_half_opens_then_closes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(), t0, 0);
        for _ in 0..3 {
            assert_eq!(
                b.record(t0, 0, true, false, 0.5),
                CircuitState::Closed,
                "below minimum_calls"
            );
        }
        assert_eq!(b.record(t0, 0, true, false, 0.5), CircuitState::Open);
        assert_eq!(b.admit(t0 + secs(0.5)), Admission::Reject);
        let later = t0 + secs(1.0);
        assert_eq!(b.admit(later), Admission::Probe);
        assert_eq!(b.admit(later), Admission::Probe);
        assert_eq!(
            b.admit(later),
            Admission::Reject,
            "only two probes at a time"
        );
        b.probe_result(later, 0, true, 0.5);
        assert_eq!(b.probe_result(later, 0, true, 0.5), CircuitState::Closed);
    }

    #[test]
    fn successes_counted_elsewhere_keep_a_busy_site_closed() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(), t0, 0);
        // 100 successes over the last 5 s, then 10 failures: 9 % failed.
        for i in 0..10 {
            let state = b.record(t0 + secs(5.0 + f64::from(i) * 0.01), 100, true, false, 0.5);
            assert_eq!(state, CircuitState::Closed);
        }
        let (rate, calls) = b.failure_rate(t0 + secs(5.2), 100);
        assert!((rate - 10.0 / 110.0).abs() < 1e-9, "{rate}");
        assert!((calls - 110.0).abs() < 1e-9);
    }

    #[test]
    fn successes_older_than_the_window_do_not_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(), t0, 0);
        // 1,000 successes spread over 100 s: only the last 10 s of them (100) are in the window.
        let (_, calls) = b.failure_rate(t0 + secs(100.0), 1000);
        // Within a bucket (a tenth of the window) of the exact figure.
        assert!((90.0..=100.0).contains(&calls), "{calls}");
    }

    #[test]
    fn failed_probes_back_off_doubling_up_to_the_cap() {
        let t0 = Instant::now();
        let mut b = Breaker::new(
            BreakerConfig {
                half_open_probes: 1,
                ..cfg()
            },
            t0,
            0,
        );
        b.open(t0, 0.5);
        let mut now = t0;
        let mut gaps = Vec::new();
        for _ in 0..6 {
            let next = b.next_probe().expect("open");
            gaps.push((next - now).as_secs_f64());
            now = next;
            assert_eq!(b.admit(now), Admission::Probe);
            b.probe_result(now, 0, false, 0.5);
        }
        assert_eq!(gaps, [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]);
        b.admit(b.next_probe().unwrap());
        assert_eq!(
            b.probe_result(now + secs(9.0), 0, true, 0.5),
            CircuitState::Closed
        );
        b.open(now, 0.5);
        assert_eq!(
            b.next_probe().unwrap() - now,
            secs(1.0),
            "a new opening starts over"
        );
    }

    #[test]
    fn probes_are_jittered() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(), t0, 0);
        b.open(t0, 0.0);
        assert_eq!(b.next_probe().unwrap() - t0, secs(0.8));
        b.open(t0, 1.0);
        assert_eq!(b.next_probe().unwrap() - t0, secs(1.2));
    }

    #[test]
    fn a_repaired_probe_is_admitted_at_once_and_counts_like_a_probe() {
        let t0 = Instant::now();
        let mut b = Breaker::new(
            BreakerConfig {
                half_open_probes: 1,
                ..cfg()
            },
            t0,
            0,
        );
        b.open(t0, 0.5);
        let later = t0 + secs(1.0);
        assert_eq!(b.admit(later), Admission::Probe);
        assert_eq!(b.probe_result(later, 0, false, 0.5), CircuitState::Open);
        // Within the pause a plain call is refused; the repaired re-run of the probe is not.
        assert_eq!(b.admit(later), Admission::Reject);
        assert_eq!(b.admit_repaired_probe(later), Admission::Probe);
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert_eq!(b.probe_result(later, 0, true, 0.5), CircuitState::Closed);
    }

    #[test]
    fn slow_calls_open_when_configured() {
        let t0 = Instant::now();
        let mut b = Breaker::new(
            BreakerConfig {
                slow_call: Some(Duration::from_millis(100)),
                slow_call_rate: 0.5,
                ..cfg()
            },
            t0,
            0,
        );
        // Slow successes: each is counted by the success counter and recorded as slow.
        for ok in 1..4 {
            assert_eq!(b.record(t0, ok, false, true, 0.5), CircuitState::Closed);
        }
        assert_eq!(b.record(t0, 4, false, true, 0.5), CircuitState::Open);
    }

    #[test]
    fn old_failures_leave_the_window() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(), t0, 0);
        for _ in 0..3 {
            b.record(t0, 0, true, false, 0.5);
        }
        let later = t0 + secs(11.0);
        assert_eq!(b.record(later, 0, true, false, 0.5), CircuitState::Closed);
    }

    proptest! {
        /// Whatever happens, half-open never has more probes out than configured, the breaker
        /// only opens after `minimum_calls` calls in a window, and an open circuit always has a
        /// next probe no further away than `probe_max` with jitter.
        #[test]
        fn probes_stay_bounded(ops in proptest::collection::vec((0u8..4, 0u64..3_000, 0.0f64..1.0), 1..300)) {
            let t0 = Instant::now();
            let config = cfg();
            let mut b = Breaker::new(config, t0, 0);
            let mut now = t0;
            let mut ok = 0u64;
            for (op, step_ms, random) in ops {
                now += Duration::from_millis(step_ms);
                match op {
                    0 => match b.admit(now) {
                        Admission::Probe => prop_assert!(b.probes_out <= config.half_open_probes),
                        Admission::Allow => prop_assert_eq!(b.state(), CircuitState::Closed),
                        Admission::Reject => prop_assert_ne!(b.state(), CircuitState::Closed),
                    },
                    1 => ok += 1,
                    2 => { b.probe_result(now, ok, random < 0.5, random); }
                    _ => {
                        let before = b.state();
                        let after = b.record(now, ok, true, false, random);
                        if before == CircuitState::Closed && after == CircuitState::Open {
                            let (calls, _, _) = b.totals(now);
                            prop_assert!(calls + 1e-9 >= f64::from(config.minimum_calls));
                        }
                    }
                }
                if let Some(next) = b.next_probe() {
                    prop_assert!(next.saturating_duration_since(now) <= config.probe_max.mul_f64(1.2));
                }
                prop_assert!(b.probes_ok <= config.half_open_probes);
            }
        }
    }
}
