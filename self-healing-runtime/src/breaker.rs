//! The circuit breaker's state machine: pure, driven by the caller's clock, so it is tested with
//! property tests and no sleeps.

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

/// Settings of the circuit breaker, the same for every site of a healer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Open when at least this share of the calls in the window failed (0–1).
    pub failure_rate: f64,
    /// A call slower than this counts as slow (`None`: slow calls are not counted).
    pub slow_call: Option<Duration>,
    /// Open when at least this share of the calls in the window were slow (0–1).
    pub slow_call_rate: f64,
    /// No verdict before this many calls in the window.
    pub minimum_calls: u32,
    /// The sliding window's length (kept as 10 buckets).
    pub window: Duration,
    /// How long the circuit stays open before probing.
    pub open_for: Duration,
    /// Probe calls admitted while half-open; all must succeed to close.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_rate: 0.5,
            slow_call: None,
            slow_call_rate: 1.0,
            minimum_calls: 10,
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(30),
            half_open_probes: 3,
        }
    }
}

const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bucket {
    /// Which window slot this bucket currently counts (time / bucket length).
    slot: u64,
    calls: u32,
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
    opened_at: Instant,
    probes_out: u32,
    probes_ok: u32,
    /// When the last failure was recorded (for leaving tracked mode).
    pub(crate) last_failure: Option<Instant>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig, now: Instant) -> Self {
        Breaker {
            config,
            epoch: now,
            state: CircuitState::Closed,
            buckets: [Bucket::default(); BUCKETS],
            opened_at: now,
            probes_out: 0,
            probes_ok: 0,
            last_failure: None,
        }
    }

    /// The current state (an open breaker whose pause is over reports `HalfOpen` only once a
    /// call was admitted).
    pub fn state(&self) -> CircuitState {
        self.state
    }

    fn bucket_len(&self) -> Duration {
        (self.config.window / BUCKETS as u32).max(Duration::from_millis(1))
    }

    fn slot(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.epoch);
        (since.as_nanos() / self.bucket_len().as_nanos()) as u64
    }

    /// Totals over the buckets that are still inside the window.
    fn totals(&self, now: Instant) -> (u32, u32, u32) {
        let current = self.slot(now);
        self.buckets
            .iter()
            .filter(|b| b.calls > 0 && current.saturating_sub(b.slot) < BUCKETS as u64)
            .fold((0, 0, 0), |(c, f, s), b| {
                (c + b.calls, f + b.failures, s + b.slow)
            })
    }

    /// Asks whether a call may run now.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            CircuitState::Closed => Admission::Allow,
            CircuitState::Open => {
                if now.saturating_duration_since(self.opened_at) >= self.config.open_for {
                    self.state = CircuitState::HalfOpen;
                    self.opened_at = now;
                    self.probes_out = 1;
                    self.probes_ok = 0;
                    Admission::Probe
                } else {
                    Admission::Reject
                }
            }
            CircuitState::HalfOpen => {
                // Probes that never report back (cancelled calls) must not wedge the breaker:
                // after another `open_for`, a fresh round of probes is admitted.
                if now.saturating_duration_since(self.opened_at) >= self.config.open_for {
                    self.opened_at = now;
                    self.probes_out = 0;
                    self.probes_ok = 0;
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

    /// Admits a probe now, whatever the pause: for the re-run of a failed probe that a hook
    /// repaired on the caller's side (a refreshed credential, a rebuilt connection). Without it
    /// every later probe would meet the same stale credential and the circuit would never
    /// close. Its result counts like any probe's.
    pub fn admit_repaired_probe(&mut self, now: Instant) -> Admission {
        match self.state {
            CircuitState::Open => {
                self.state = CircuitState::HalfOpen;
                self.opened_at = now;
                self.probes_out = 1;
                self.probes_ok = 0;
                Admission::Probe
            }
            _ => self.admit(now),
        }
    }

    /// Records the result of a call that was admitted. Returns the state after it.
    pub fn record(&mut self, now: Instant, ok: bool, duration: Duration) -> CircuitState {
        let slow = self.config.slow_call.is_some_and(|limit| duration >= limit);
        if !ok {
            self.last_failure = Some(now);
        }
        match self.state {
            CircuitState::Closed => {
                let slot = self.slot(now);
                let bucket = &mut self.buckets[(slot % BUCKETS as u64) as usize];
                if bucket.slot != slot {
                    *bucket = Bucket {
                        slot,
                        ..Bucket::default()
                    };
                }
                bucket.calls += 1;
                bucket.failures += u32::from(!ok);
                bucket.slow += u32::from(slow);
                let (calls, failures, slows) = self.totals(now);
                if calls >= self.config.minimum_calls.max(1) {
                    let failure_rate = f64::from(failures) / f64::from(calls);
                    let slow_rate = f64::from(slows) / f64::from(calls);
                    if failure_rate >= self.config.failure_rate
                        || (self.config.slow_call.is_some()
                            && slow_rate >= self.config.slow_call_rate)
                    {
                        self.open(now);
                    }
                }
            }
            CircuitState::HalfOpen => {
                if ok && !slow {
                    self.probes_ok += 1;
                    if self.probes_ok >= self.config.half_open_probes {
                        self.close(now);
                    }
                } else {
                    self.open(now);
                }
            }
            // A call admitted before the circuit opened finished late: it cannot change the verdict.
            CircuitState::Open => {}
        }
        self.state
    }

    fn open(&mut self, now: Instant) {
        self.state = CircuitState::Open;
        self.opened_at = now;
        self.probes_out = 0;
        self.probes_ok = 0;
    }

    fn close(&mut self, now: Instant) {
        self.state = CircuitState::Closed;
        self.buckets = [Bucket::default(); BUCKETS];
        self.epoch = now;
    }

    /// True when closed and no failure happened for a whole window: the site can go back to the
    /// untracked fast path.
    pub fn is_quiet(&self, now: Instant) -> bool {
        self.state == CircuitState::Closed
            && self
                .last_failure
                .is_none_or(|t| now.saturating_duration_since(t) >= self.config.window)
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
            open_for: Duration::from_secs(5),
            ..BreakerConfig::default()
        }
    }

    #[test]
    fn opens_on_failure_rate_then_half_opens_then_closes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(), t0);
        for _ in 0..3 {
            assert_eq!(
                b.record(t0, false, Duration::ZERO),
                CircuitState::Closed,
                "below minimum_calls"
            );
        }
        assert_eq!(b.record(t0, false, Duration::ZERO), CircuitState::Open);
        assert_eq!(b.admit(t0 + Duration::from_secs(1)), Admission::Reject);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(b.admit(later), Admission::Probe);
        assert_eq!(b.admit(later), Admission::Probe);
        assert_eq!(
            b.admit(later),
            Admission::Reject,
            "only two probes at a time"
        );
        b.record(later, true, Duration::ZERO);
        assert_eq!(b.record(later, true, Duration::ZERO), CircuitState::Closed);
    }

    #[test]
    fn a_failed_probe_reopens() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(), t0);
        for _ in 0..4 {
            b.record(t0, false, Duration::ZERO);
        }
        let later = t0 + Duration::from_secs(6);
        assert_eq!(b.admit(later), Admission::Probe);
        assert_eq!(b.record(later, false, Duration::ZERO), CircuitState::Open);
        assert_eq!(b.admit(later + Duration::from_secs(1)), Admission::Reject);
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
        );
        for _ in 0..4 {
            b.record(t0, false, Duration::ZERO);
        }
        let later = t0 + Duration::from_secs(6);
        assert_eq!(b.admit(later), Admission::Probe);
        assert_eq!(b.record(later, false, Duration::ZERO), CircuitState::Open);
        // Within the pause a plain call is refused; the repaired re-run of the probe is not.
        assert_eq!(b.admit(later), Admission::Reject);
        assert_eq!(b.admit_repaired_probe(later), Admission::Probe);
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert_eq!(b.record(later, true, Duration::ZERO), CircuitState::Closed);
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
        );
        for _ in 0..3 {
            b.record(t0, true, Duration::from_millis(200));
        }
        assert_eq!(
            b.record(t0, true, Duration::from_millis(200)),
            CircuitState::Open
        );
    }

    #[test]
    fn old_failures_leave_the_window() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(), t0);
        for _ in 0..3 {
            b.record(t0, false, Duration::ZERO);
        }
        let later = t0 + Duration::from_secs(11);
        assert_eq!(b.record(later, false, Duration::ZERO), CircuitState::Closed);
        assert!(!b.is_quiet(later));
        assert!(b.is_quiet(later + Duration::from_secs(10)));
    }

    proptest! {
        /// Whatever happens, half-open never has more probes out than configured, and the
        /// breaker only opens after `minimum_calls` calls in a window.
        #[test]
        fn probes_stay_bounded(ops in proptest::collection::vec((0u8..3, 0u64..3_000), 1..300)) {
            let t0 = Instant::now();
            let config = cfg();
            let mut b = Breaker::new(config, t0);
            let mut now = t0;
            let mut admitted_probes = 0u32;
            for (op, step_ms) in ops {
                now += Duration::from_millis(step_ms);
                match op {
                    0 => match b.admit(now) {
                        Admission::Probe => {
                            admitted_probes += 1;
                            prop_assert!(b.probes_out <= config.half_open_probes);
                        }
                        Admission::Allow => prop_assert_eq!(b.state(), CircuitState::Closed),
                        Admission::Reject => prop_assert_ne!(b.state(), CircuitState::Closed),
                    },
                    1 => { b.record(now, true, Duration::ZERO); }
                    _ => {
                        let before = b.state();
                        let (calls, _, _) = b.totals(now);
                        let after = b.record(now, false, Duration::ZERO);
                        if before == CircuitState::Closed && after == CircuitState::Open {
                            prop_assert!(calls + 1 >= config.minimum_calls);
                        }
                    }
                }
                prop_assert!(b.probes_ok <= config.half_open_probes);
            }
            let _ = admitted_probes;
        }
    }
}
