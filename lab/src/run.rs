//! One run of the lab: a phase of Poisson traffic from several clients through one wrapped site,
//! with a trace's faults injected, for one contender, on tokio's paused clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use self_healing::chaos::{Chaos, WithChaosExt};
use self_healing::event::HealingEvent;
use self_healing::{
    Category, CircuitState, Healer, InMemoryStore, Rejected, WithHealerExt, self_healing,
};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::traces::{LabSite, Trace};

/// The error of the lab's wrapped functions: their bodies never fail; every failure is a fault
/// the chaos layer injected (or a rejection by the healer's guards).
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Injected, or refused by a guard.
    #[error(transparent)]
    Rejected(#[from] Rejected),
}

impl LabError {
    /// The Retry-After the (injected) failure carried.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LabError::Rejected(Rejected::Injected { fault, .. }) => fault.retry_after(),
            LabError::Rejected(_) => None,
        }
    }
}

/// How long the dependency takes to answer a call it serves.
const SERVICE_TIME: Duration = Duration::from_millis(5);

#[self_healing(source = "labDb", category = "database")]
async fn lab_db(n: u64) -> Result<u64, LabError> {
    tokio::time::sleep(SERVICE_TIME).await;
    Ok(n)
}

#[self_healing(source = "labApi", category = "api")]
async fn lab_api(n: u64) -> Result<u64, LabError> {
    tokio::time::sleep(SERVICE_TIME).await;
    Ok(n)
}

async fn call_site(site: LabSite, n: u64) -> Result<u64, LabError> {
    match site {
        LabSite::Database => lab_db(n).await,
        LabSite::Api => lab_api(n).await,
    }
}

/// Who handles failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    /// Nothing: each call runs once.
    NoHealing,
    /// A static exponential retry with backon: 3 attempts, 100 ms first delay, jitter.
    Backon,
    /// self-healing with its default settings, a reconnect hook for `database` and a
    /// credential-refresh hook for `api`.
    SelfHealing,
}

impl Contender {
    /// Every contender, in table order.
    pub const ALL: [Contender; 3] = [
        Contender::NoHealing,
        Contender::Backon,
        Contender::SelfHealing,
    ];

    /// Its name on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Contender::NoHealing => "no-healing",
            Contender::Backon => "backon",
            Contender::SelfHealing => "self-healing",
        }
    }

    /// The contender called `name`.
    pub fn find(name: &str) -> Option<Contender> {
        Contender::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// The traffic of one phase.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Logical calls in the phase.
    pub calls: u32,
    /// Clients sharing them, each with Poisson arrivals of its own.
    pub clients: u32,
    /// Arrivals per second, all clients together.
    pub rate: f64,
    /// Seeds arrivals, faults and the healer's jitter.
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            calls: 2000,
            clients: 8,
            rate: 40.0,
            seed: 1,
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// The trace's name.
    pub trace: String,
    /// The contender's name.
    pub contender: String,
    /// Logical calls made.
    pub calls: u64,
    /// Calls that returned an error.
    pub failed: u64,
    /// Calls that returned an error or took longer than a second.
    pub failed_or_slow: u64,
    /// Attempts that reached the dependency (the guards let them through).
    pub dependency_calls: u64,
    /// Median latency of a call, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, in milliseconds.
    pub p99_ms: f64,
    /// Re-runs sooner than the Retry-After the dependency gave that call.
    pub early_reruns: u64,
    /// Errors of the main failure family before the learned first choice settled (self-healing).
    pub settle: Option<u64>,
}

impl RunResult {
    /// Dependency calls per logical call.
    pub fn amplification(&self) -> f64 {
        self.dependency_calls as f64 / self.calls.max(1) as f64
    }

    /// One line a parent process reads back with [`RunResult::parse`].
    pub fn to_line(&self) -> String {
        format!(
            "RESULT trace={} contender={} calls={} failed={} failed_or_slow={} dependency_calls={} p50_ms={:.1} p99_ms={:.1} early_reruns={} settle={}",
            self.trace,
            self.contender,
            self.calls,
            self.failed,
            self.failed_or_slow,
            self.dependency_calls,
            self.p50_ms,
            self.p99_ms,
            self.early_reruns,
            self.settle
                .map_or_else(|| "-".to_owned(), |s| s.to_string()),
        )
    }

    /// Reads a line written by [`RunResult::to_line`].
    pub fn parse(line: &str) -> Option<RunResult> {
        let rest = line.strip_prefix("RESULT ")?;
        let field = |key: &str| {
            rest.split(' ')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        };
        Some(RunResult {
            trace: field("trace")?.to_owned(),
            contender: field("contender")?.to_owned(),
            calls: field("calls")?.parse().ok()?,
            failed: field("failed")?.parse().ok()?,
            failed_or_slow: field("failed_or_slow")?.parse().ok()?,
            dependency_calls: field("dependency_calls")?.parse().ok()?,
            p50_ms: field("p50_ms")?.parse().ok()?,
            p99_ms: field("p99_ms")?.parse().ok()?,
            early_reruns: field("early_reruns")?.parse().ok()?,
            settle: field("settle")?.parse().ok(),
        })
    }
}

struct Call {
    latency: Duration,
    ok: bool,
}

/// Runs one trace for one contender on a fresh paused-clock runtime. Site state is process-wide,
/// so run each (trace, contender) in a process of its own (the `healing-lab` binary does).
pub fn run(trace: &Trace, contender: Contender, settings: Settings) -> RunResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    rt.block_on(run_phase(trace, contender, settings))
}

fn hook_latency() -> Duration {
    Duration::from_millis(20)
}

async fn run_phase(trace: &Trace, contender: Contender, settings: Settings) -> RunResult {
    let mut chaos = Chaos::builder().seed(settings.seed);
    for fault in (trace.faults)() {
        chaos = chaos.fault(trace.site.source(), fault);
    }
    let chaos = chaos.build().expect("the lab's faults are valid");
    let store = DEBUG_STORE.with(|s| s.borrow().clone()).unwrap_or_default();
    let healer = (contender == Contender::SelfHealing).then(|| {
        Healer::builder()
            .store(store.clone())
            .seed(settings.seed)
            .on_reconnect(Category::Database, || async {
                tokio::time::sleep(hook_latency()).await;
                Ok(())
            })
            .on_refresh_credentials(Category::Api, || async {
                tokio::time::sleep(hook_latency()).await;
                Ok(())
            })
            .build()
            .expect("a healer with default settings")
    });
    if let Some(h) = &healer {
        DEBUG_HEALER.with(|d| *d.borrow_mut() = Some(h.clone()));
    }
    let early_reruns = Arc::new(AtomicU64::new(0));
    let mut clients = JoinSet::new();
    let per_client = settings.calls / settings.clients.max(1);
    let client_rate = settings.rate / f64::from(settings.clients.max(1));
    for client in 0..settings.clients {
        let mut rng = fastrand::Rng::with_seed(
            settings.seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ u64::from(client),
        );
        let (chaos, healer, early) = (chaos.clone(), healer.clone(), early_reruns.clone());
        let site = trace.site;
        clients.spawn(async move {
            let mut calls = JoinSet::new();
            for i in 0..per_client {
                // Exponential gaps: Poisson arrivals, independent of how calls fare (open loop).
                let gap = -(1.0 - rng.f64()).ln() / client_rate;
                tokio::time::sleep(Duration::from_secs_f64(gap)).await;
                let n = u64::from(client) << 32 | u64::from(i);
                let call = one_call(contender, site, n, early.clone());
                let call = call.with_chaos(chaos.clone());
                match &healer {
                    Some(h) => calls.spawn(call.with_healer(h.clone())),
                    None => calls.spawn(call),
                };
            }
            calls.join_all().await
        });
    }
    let calls: Vec<Call> = clients.join_all().await.into_iter().flatten().collect();
    let settle = match &healer {
        Some(h) => {
            // A storm may drop events on purpose (the queue's overflow): the settle reads what
            // reached the store, whatever the flush says about the rest.
            let _ = h.flush().await;
            settle(&store.events())
        }
        None => None,
    };
    let stats = chaos.stats(trace.site.source());
    let mut latencies: Vec<Duration> = calls.iter().map(|c| c.latency).collect();
    latencies.sort();
    RunResult {
        trace: trace.name.to_owned(),
        contender: contender.name().to_owned(),
        calls: calls.len() as u64,
        failed: calls.iter().filter(|c| !c.ok).count() as u64,
        failed_or_slow: calls
            .iter()
            .filter(|c| !c.ok || c.latency > Duration::from_secs(1))
            .count() as u64,
        dependency_calls: stats.calls,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        early_reruns: stats.early_reruns + early_reruns.load(Ordering::Relaxed),
        settle,
    }
}

async fn one_call(contender: Contender, site: LabSite, n: u64, early: Arc<AtomicU64>) -> Call {
    let started = Instant::now();
    let result = match contender {
        Contender::NoHealing | Contender::SelfHealing => call_site(site, n).await,
        Contender::Backon => {
            // Seeded per call, so the same seed gives the same table.
            let policy = ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(100))
                .with_max_times(2)
                .with_jitter()
                .with_jitter_seed(n);
            (|| call_site(site, n))
                .retry(policy)
                .sleep(tokio::time::sleep)
                .notify(|e: &LabError, wait: Duration| {
                    if e.retry_after().is_some_and(|after| wait < after) {
                        early.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .await
        }
    };
    Call {
        latency: started.elapsed(),
        ok: result.is_ok(),
    }
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// How many errors of the largest failure family passed before the strategy acting first on it
/// settled: the earliest point from which at least 90 % of the family's calls start with the
/// choice the healer ends up with. `None` when no family had errors.
pub fn settle(events: &[HealingEvent]) -> Option<u64> {
    use std::collections::HashMap;
    let mut families: HashMap<u64, Vec<Option<String>>> = HashMap::new();
    for e in events {
        let actor = e.first_actor().map(str::to_owned);
        let family = families.entry(e.fingerprint.0).or_default();
        for _ in 0..e.count {
            family.push(actor.clone());
        }
    }
    let sequence = families.into_values().max_by_key(Vec::len)?;
    // The choice at the end: the most common first actor of the last quarter.
    let tail = &sequence[sequence.len() - sequence.len().div_ceil(4)..];
    let mut counts: HashMap<&Option<String>, usize> = HashMap::new();
    for actor in tail {
        *counts.entry(actor).or_default() += 1;
    }
    let choice = counts.into_iter().max_by_key(|(_, n)| *n)?.0.clone();
    let mut matching = 0usize;
    let mut settled = sequence.len();
    for (i, actor) in sequence.iter().enumerate().rev() {
        matching += usize::from(*actor == choice);
        if *actor == choice && matching * 10 >= (sequence.len() - i) * 9 {
            settled = i;
        }
    }
    Some(settled as u64)
}

/// The self-healing contender's events of one run, each with the time since the phase started
/// (in seconds) and a summary line: for looking inside a trace (`examples/lab_debug.rs`).
pub fn debug_events(trace: &Trace, settings: Settings) -> Vec<(f64, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let store = InMemoryStore::new();
        let wall = std::time::SystemTime::now();
        let started = Instant::now();
        DEBUG_STORE.with(|s| *s.borrow_mut() = Some(store.clone()));
        let source = trace.site.source();
        let sampler = tokio::spawn(async move {
            let site = self_healing::sites()
                .find(|s| s.source() == source)
                .expect("a lab site");
            let circuit = || {
                DEBUG_HEALER
                    .with(|d| d.borrow().clone())
                    .map_or(CircuitState::Closed, |h| h.circuit_of(site))
            };
            let mut last = circuit();
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let now = circuit();
                if now != last {
                    eprintln!(
                        "{:>8.3} circuit {}",
                        started.elapsed().as_secs_f64(),
                        now.as_str()
                    );
                    last = now;
                }
            }
        });
        let _ = run_phase(trace, Contender::SelfHealing, settings).await;
        sampler.abort();
        store
            .events()
            .into_iter()
            .map(|e| {
                let t = e.time.duration_since(wall).map_or(0.0, |d| d.as_secs_f64());
                let steps: Vec<String> = e
                    .diagnosis
                    .steps
                    .iter()
                    .map(|s| format!("{}:{}", s.strategy, s.result.as_str()))
                    .collect();
                (
                    t,
                    format!(
                        "x{} {} {} {} [{}] {}",
                        e.count,
                        e.class,
                        e.outcome.as_str(),
                        e.strategy.as_deref().unwrap_or("-"),
                        steps.join(" "),
                        e.message
                    ),
                )
            })
            .collect()
    })
}

thread_local! {
    static DEBUG_HEALER: std::cell::RefCell<Option<Healer>> = const { std::cell::RefCell::new(None) };
    static DEBUG_STORE: std::cell::RefCell<Option<InMemoryStore>> = const { std::cell::RefCell::new(None) };
}
