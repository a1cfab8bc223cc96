//! The untyped half of the interceptor: the per-call healing state and its phases. The typed
//! [`Driver`](crate::driver) asks it what to do and carries it out.
//!
//! One failing call, in the order the phases run:
//!
//! - [`admit`]: the guards before each attempt: Retry-After pacing, the circuit, the bulkhead;
//! - [`choose`]: diagnosing a failure, ranking the strategies that apply by learned heal rate
//!   and cost, and the safety rails every re-run passes (attempt and time caps, Retry-After as
//!   a floor, idempotency, the retry budget, nesting);
//! - [`act`]: waiting, running hooks and waiting for capacity before a re-run;
//! - [`outcome`]: crediting the strategy that acted, feeding the circuit and the budget with
//!   the call's outcome, and recording the call's event.
//!
//! Everything here stays off the success path of a healthy site; a healed call allocates this
//! state once (boxed by the driver), its message once and its event's steps once.

mod act;
mod admit;
mod choose;
mod outcome;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

pub(crate) use admit::Admit;

use crate::breaker::Admission;
use crate::diagnosis::Diagnosis;
use crate::event::{Step, StepResult};
use crate::healer::Healer;
use crate::hooks::Hook;
use crate::selection::{MAX_STRATEGIES, Ranked};
use crate::settings::SiteSettings;
use crate::site::Site;
use crate::site_state::SiteState;
use std::sync::Arc;

/// What the decider wants done next.
#[derive(Debug)]
pub(crate) enum Candidate {
    /// Wait, maybe run a hook or wait for a bulkhead slot, then re-run.
    Rerun(Action),
    /// Serve the declared fallback.
    Fallback,
    /// Serve a cached value (the typed side looks it up and reports back).
    Cached,
    /// Stop: the call fails with its error. The event has been recorded.
    GiveUp,
}

/// The work before a re-run.
#[derive(Debug)]
pub(crate) struct Action {
    pub(crate) delay: Duration,
    pub(crate) hook: Option<std::sync::Arc<Hook>>,
    pub(crate) capacity: bool,
    /// After the hook, the call fails (no re-run): [`Plan::RunHookThenFail`](crate::Plan).
    pub(crate) then_fail: bool,
}

/// A strategy's action in flight: its outcome is credited to it, and only to it.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Its index among the healer's strategies.
    index: usize,
    strategy: &'static str,
    started: Instant,
    /// It took a token from the site's retry budget (given back if it heals).
    token: bool,
}

/// Numbers logical calls that reached the guarded path, for fault injection's bookkeeping.
static CALLS: AtomicU64 = AtomicU64::new(1);

/// Per-call state beyond the success path.
#[derive(Debug)]
pub(crate) struct Decider {
    site: &'static Site,
    /// The healer's state of the site.
    state: Arc<SiteState>,
    /// The site's settings when the call began.
    settings: Arc<SiteSettings>,
    call_id: u64,
    /// The call's idempotency key (keyed and `queue_for_later` sites).
    call_key: Option<crate::CallKey>,
    /// The call is an outbox replay: it must not be queued again.
    replay: bool,
    /// The latest failed attempt was undone whole (its transaction rolled back).
    rolled_back: bool,
    healer: Healer,
    /// Jitter and exploration draws of this call, seeded once from the healer's generator.
    rng: CallRng,
    started: Instant,
    /// When the current phase (an admission, a failure, a success) began: one clock read per
    /// phase serves every decision in it.
    now: Instant,
    /// Time from the call's start to `now`.
    elapsed: Duration,
    /// Which repair hooks serve this site (looked up at the first failure).
    reconnect_hook: bool,
    refresh_hook: bool,
    started_wall: SystemTime,
    attempts: u32,
    attempt_started: Instant,
    /// How long the last failed attempt took: what a re-run is expected to cost.
    last_attempt: Duration,
    /// How the circuit admitted the current attempt.
    admission: Admission,
    max_attempts: u32,
    diagnosis: Option<Diagnosis>,
    message: String,
    ranked: Ranked,
    /// Which strategies planned a re-run when they were last ranked, by index.
    reruns: [bool; MAX_STRATEGIES],
    cursor: usize,
    /// Times each strategy acted during this call, by index.
    uses: [u8; MAX_STRATEGIES],
    /// Times each strategy's action failed during this call, by index.
    failed: [u8; MAX_STRATEGIES],
    pending: Option<Pending>,
    last_actor: Option<&'static str>,
    steps: Vec<Step>,
    budget_spent: bool,
    escalated: bool,
    fast_failed: bool,
    /// A re-run was refused because the dependency's Retry-After does not fit the call's time.
    paced_out: bool,
    /// The dependency asked this call not to come back before this instant (Retry-After).
    not_before: Option<Instant>,
    /// The next attempt already waited for its pacing turn.
    turn_taken: bool,
    /// The failed attempt was refused by the open circuit (the body did not run).
    refused_by_circuit: bool,
    /// The failed attempt was refused by a guard (circuit, bulkhead, pacing): the dependency
    /// was not called, so the failure says nothing about it.
    refused_by_guard: bool,
    /// What the site can answer with besides a re-run.
    has_fallback: bool,
    has_cache: bool,
    /// The next attempt re-runs a failed probe after a repair hook: admit it as a probe.
    repaired_probe: bool,
    finished: bool,
}

impl Decider {
    pub(crate) fn new(site: &'static Site, healer: Healer) -> Self {
        let now = Instant::now();
        let state = healer.state_of(site);
        let settings = state.settings();
        let max_attempts = settings.max_attempts;
        let rng = CallRng::new(&healer);
        Decider {
            site,
            state,
            settings,
            call_id: CALLS.fetch_add(1, Ordering::Relaxed),
            call_key: None,
            replay: false,
            rolled_back: false,
            healer,
            rng,
            started: now,
            now,
            elapsed: Duration::ZERO,
            reconnect_hook: false,
            refresh_hook: false,
            started_wall: SystemTime::now(),
            attempts: 0,
            attempt_started: now,
            last_attempt: Duration::ZERO,
            admission: Admission::Allow,
            max_attempts,
            diagnosis: None,
            message: String::new(),
            ranked: Ranked::new(),
            reruns: [false; MAX_STRATEGIES],
            cursor: 0,
            uses: [0; MAX_STRATEGIES],
            failed: [0; MAX_STRATEGIES],
            pending: None,
            last_actor: None,
            steps: Vec::new(),
            budget_spent: false,
            escalated: false,
            fast_failed: false,
            paced_out: false,
            not_before: None,
            turn_taken: false,
            refused_by_circuit: false,
            refused_by_guard: false,
            has_fallback: false,
            has_cache: false,
            repaired_probe: false,
            finished: false,
        }
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The id of this logical call, the same for all its attempts.
    pub(crate) fn call_id(&self) -> u64 {
        self.call_id
    }

    /// Gives the call its idempotency key; `replay`: the call replays an outbox entry.
    pub(crate) fn set_call_key(&mut self, key: crate::CallKey, replay: bool) {
        self.call_key = Some(key);
        self.replay = replay;
    }

    /// The call's idempotency key, if its site is keyed.
    pub(crate) fn call_key(&self) -> Option<crate::CallKey> {
        self.call_key
    }

    /// The healer's store (the outbox of `queue_for_later` sites).
    pub(crate) fn store(&self) -> std::sync::Arc<dyn crate::EventStore> {
        self.healer.inner.store.clone()
    }

    /// The healer's state of the call's site.
    pub(crate) fn state(&self) -> &SiteState {
        &self.state
    }

    /// The site's settings for this call.
    pub(crate) fn settings(&self) -> &SiteSettings {
        &self.settings
    }

    /// How this healer waits in sync code.
    pub(crate) fn blocking_sleep(&self) -> std::sync::Arc<dyn Fn(Duration) + Send + Sync> {
        self.healer.inner.config.blocking_sleep.clone()
    }

    /// A span for one healing attempt (a re-run), with its outcome recorded when it ends.
    pub(crate) fn attempt_span(&self) -> tracing::Span {
        tracing::info_span!(
            "self_healing.attempt",
            source = self.site.source(),
            category = self.site.category().as_str(),
            strategy = self.pending.map_or("none", |p| p.strategy),
            attempt = self.attempts,
            outcome = tracing::field::Empty,
        )
    }

    /// Counts an attempt that ran before the slow state existed (the first, unguarded one).
    pub(crate) fn count_unguarded_attempt(&mut self) {
        self.attempts += 1;
    }

    /// Every call of the site so far: the retry budget's measure of its traffic.
    fn calls_total(&self) -> u64 {
        self.site
            .ok_calls()
            .saturating_add(self.state.failed_calls.load(Ordering::Relaxed))
    }

    fn random(&self) -> f64 {
        self.rng.f64()
    }

    /// The wall-clock time of `now`, from the call's start: one wall-clock read per call.
    fn wall_now(&self) -> SystemTime {
        self.started_wall + self.now.saturating_duration_since(self.started)
    }
}

/// A call's own generator (wyrand): draws need no lock, and the call's future stays `Sync`
/// (the state is an atomic only this call touches).
#[derive(Debug)]
struct CallRng(AtomicU64);

impl CallRng {
    fn new(healer: &Healer) -> Self {
        CallRng(AtomicU64::new(healer.random().to_bits()))
    }

    /// A uniform draw in [0, 1).
    fn f64(&self) -> f64 {
        let state = self
            .0
            .load(Ordering::Relaxed)
            .wrapping_add(0xa076_1d64_78bd_642f);
        self.0.store(state, Ordering::Relaxed);
        let mixed = u128::from(state) * u128::from(state ^ 0xe703_7ed1_a0b4_28db);
        let bits = (mixed >> 64) as u64 ^ mixed as u64;
        // The top 53 bits as a fraction.
        (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// A strategy that did not act.
fn step(strategy: &'static str, note: &'static str) -> Step {
    acted(
        strategy,
        StepResult::Skipped,
        Duration::ZERO,
        std::borrow::Cow::Borrowed(note),
    )
}

fn acted(
    strategy: &'static str,
    result: StepResult,
    took: Duration,
    note: std::borrow::Cow<'static, str>,
) -> Step {
    Step {
        strategy: std::borrow::Cow::Borrowed(strategy),
        result,
        took,
        note,
    }
}
