//! Soak run: steady traffic through three healed functions under injected faults (random
//! transient errors, periodic outages, connections that break until the pool is rebuilt), with
//! the numbers that show a leak or a healer that hurts, every 10 s.
//!
//! ```text
//! cargo run --release --example soak --features chaos -- --duration 10m
//! cargo run --release --example soak --features chaos -- --duration 30s --rate 500 --every 5s
//! ```
//!
//! Each line: calls and caller errors in the interval, **refused while up** (calls the healer
//! refused, by circuit, bulkhead, timeout or pacing, while no outage or broken connection was
//! scheduled for that function: errors healing caused rather than prevented), calls healed, the
//! process's resident memory, the healer's event queue, and the store's buffer (records waiting
//! for SQLite) and total written. The run ends with the same figures for the whole run, and exits
//! with status 1 if healing caused any caller error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use self_healing::chaos::{Chaos, Fault};
use self_healing::store::DieselStore;
use self_healing::{Category, Healer, Rejected, self_healing};

#[derive(Debug, thiserror::Error)]
enum SoakError {
    #[error("connection reset by peer")]
    ConnectionLost,
    #[error(transparent)]
    Rejected(#[from] Rejected),
}

/// A read: fails only by injection (random transient errors, outage windows).
#[self_healing(source = "soakRead", category = "database")]
async fn read_contact(id: u64) -> Result<u64, SoakError> {
    Ok(id)
}

/// A write that may lose its connection: broken until the reconnect hook rebuilds the pool.
#[self_healing(source = "soakWrite", category = "database")]
async fn save_contact(id: u64) -> Result<u64, SoakError> {
    if BROKEN.load(Ordering::Relaxed) {
        return Err(SoakError::ConnectionLost);
    }
    Ok(id)
}

/// An API call: random 503s with Retry-After, and outage windows.
#[self_healing(source = "soakApi", category = "api")]
async fn send_webhook(id: u64) -> Result<u64, SoakError> {
    Ok(id)
}

/// The write's connection pool is broken (set by the schedule, cleared by the reconnect hook).
static BROKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Outages: every `OUTAGE_EVERY`, each function in turn is down for `OUTAGE_FOR`.
const OUTAGE_EVERY: Duration = Duration::from_secs(45);
const OUTAGE_FOR: Duration = Duration::from_secs(5);
/// The write's pool breaks this often (and stays broken until a reconnect).
const BREAK_EVERY: Duration = Duration::from_secs(20);

struct Options {
    duration: Duration,
    rate: u64,
    every: Duration,
    concurrency: usize,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 30s, 10m or 1h"))?;
    match unit {
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("`{s}`: the unit is s, m or h")),
    }
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        duration: Duration::from_secs(600),
        rate: 1_000,
        every: Duration::from_secs(10),
        concurrency: 32,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("`{flag}` needs a value"));
        match flag.as_str() {
            "--duration" => o.duration = parse_duration(&value()?)?,
            "--every" => o.every = parse_duration(&value()?)?,
            "--rate" => {
                o.rate = value()?
                    .parse()
                    .map_err(|_| "`--rate` is calls per second, e.g. 1000".to_owned())?;
            }
            "--concurrency" => {
                o.concurrency = value()?
                    .parse()
                    .map_err(|_| "`--concurrency` is a number of tasks, e.g. 32".to_owned())?;
            }
            other => {
                return Err(format!(
                    "unknown option `{other}` (expected --duration, --rate, --every, --concurrency)"
                ));
            }
        }
    }
    if o.rate == 0 || o.concurrency == 0 || o.every.is_zero() {
        return Err("`--rate`, `--concurrency` and `--every` must be above zero".into());
    }
    Ok(o)
}

/// Whether `source` is scheduled to be down `since` the start (outage or broken pool).
fn scheduled_down(source: &str, since: Duration) -> bool {
    let turn = match source {
        "soakRead" => 0,
        "soakWrite" => 1,
        _ => 2,
    };
    let period = OUTAGE_EVERY.as_secs() * 3;
    let start = OUTAGE_EVERY.as_secs() * (turn + 1);
    let t = since.as_secs();
    // A second of slack on each side for calls in flight at the edges.
    let in_outage = t + 1 >= start && (t + 1 - start) % period < OUTAGE_FOR.as_secs() + 2;
    in_outage || (source == "soakWrite" && BROKEN.load(Ordering::Relaxed))
}

/// The chaos layer: random transient errors on every function, and the outage windows.
fn chaos(duration: Duration) -> Result<Chaos, Box<dyn std::error::Error>> {
    let mut b = Chaos::builder()
        .seed(1)
        .fault("soakRead", Fault::unavailable(0.03))
        .fault(
            "soakApi",
            Fault::unavailable_retry_after(0.03, Duration::from_millis(200)),
        );
    let period = OUTAGE_EVERY * 3;
    for (turn, source) in ["soakRead", "soakWrite", "soakApi"].into_iter().enumerate() {
        let mut from = OUTAGE_EVERY * (turn as u32 + 1);
        while from < duration {
            b = b.fault(source, Fault::outage().between(from, from + OUTAGE_FOR));
            from += period;
        }
    }
    Ok(b.build()?)
}

#[derive(Default)]
struct Counts {
    calls: AtomicU64,
    errors: AtomicU64,
    refused_while_up: AtomicU64,
}

impl Counts {
    fn take(&self) -> (u64, u64, u64) {
        (
            self.calls.swap(0, Ordering::Relaxed),
            self.errors.swap(0, Ordering::Relaxed),
            self.refused_while_up.swap(0, Ordering::Relaxed),
        )
    }
}

fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

async fn one_call(n: u64, started: tokio::time::Instant, counts: &Counts) {
    let (source, result) = match n % 3 {
        0 => ("soakRead", read_contact(n).await),
        1 => ("soakWrite", save_contact(n).await),
        _ => ("soakApi", send_webhook(n).await),
    };
    counts.calls.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = result {
        counts.errors.fetch_add(1, Ordering::Relaxed);
        let refused = matches!(
            e,
            SoakError::Rejected(
                Rejected::CircuitOpen { .. }
                    | Rejected::Shed { .. }
                    | Rejected::TimedOut { .. }
                    | Rejected::Paced { .. }
            )
        );
        if refused && !scheduled_down(source, started.elapsed()) {
            counts.refused_while_up.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("soak.db").display());
    let store = DieselStore::connect(&url).await?;
    let healer = Healer::builder()
        .store(store.clone())
        .on_reconnect(Category::Database, || async {
            BROKEN.store(false, Ordering::Relaxed);
            Ok(())
        })
        .build()?;
    healer.clone().install()?;
    chaos(o.duration)?.install()?;
    let started = tokio::time::Instant::now();

    // The write's pool breaks every BREAK_EVERY.
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(BREAK_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            BROKEN.store(true, Ordering::Relaxed);
        }
    });

    let counts = Arc::new(Counts::default());
    let next = Arc::new(AtomicU64::new(0));
    let per_task = Duration::from_secs_f64(o.concurrency as f64 / o.rate as f64);
    let end = started + o.duration;
    let mut tasks = Vec::new();
    for _ in 0..o.concurrency {
        let (counts, next) = (counts.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(per_task);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while tokio::time::Instant::now() < end {
                tick.tick().await;
                one_call(next.fetch_add(1, Ordering::Relaxed), started, &counts).await;
            }
        }));
    }

    println!(
        "soak: {:?} at {} calls/s over {} tasks; outages of {:?} every {:?} per function in turn; pool breaks every {:?}; store {url}",
        o.duration, o.rate, o.concurrency, OUTAGE_FOR, OUTAGE_EVERY, BREAK_EVERY
    );
    println!(
        "{:>6} {:>8} {:>7} {:>16} {:>8} {:>8} {:>6} {:>10} {:>10}",
        "t",
        "calls",
        "errors",
        "refused-while-up",
        "healed",
        "rss-MiB",
        "queue",
        "store-buf",
        "written"
    );
    let sites = ["soakRead", "soakWrite", "soakApi"];
    let healed_total = || -> u64 {
        self_healing::sites()
            .filter(|s| sites.contains(&s.source()))
            .map(|s| healer.report(s).healed)
            .sum()
    };
    let (mut calls, mut errors, mut refused) = (0u64, 0u64, 0u64);
    let mut last_healed = 0;
    let mut rss = Vec::new();
    let mut tick = tokio::time::interval(o.every);
    tick.tick().await;
    while tokio::time::Instant::now() < end {
        tick.tick().await;
        let (c, e, r) = counts.take();
        let healed = healed_total();
        let mem = rss_mib();
        let q = healer.queue_stats();
        let s = store.stats();
        println!(
            "{:>5}s {c:>8} {e:>7} {r:>16} {:>8} {:>8} {:>6} {:>10} {:>10}",
            started.elapsed().as_secs(),
            healed - last_healed,
            mem.map_or("n/a".into(), |m| format!("{m:.1}")),
            q.depth,
            s.buffered_records,
            s.written_records,
        );
        (calls, errors, refused, last_healed) = (calls + c, errors + e, refused + r, healed);
        rss.extend(mem);
    }
    for t in tasks {
        t.await?;
    }
    let (c, e, r) = counts.take();
    (calls, errors, refused) = (calls + c, errors + e, refused + r);
    healer.flush().await?;
    let s = store.stats();
    let (first, last) = (rss.first().copied(), rss.last().copied());
    println!(
        "total: {calls} calls, {errors} caller errors ({:.3} %), {refused} caused by healing (refused while up), {} healed; rss {} -> {} MiB; store wrote {} records standing for {} calls, {} dropped",
        errors as f64 * 100.0 / calls.max(1) as f64,
        healed_total(),
        first.map_or("n/a".into(), |m| format!("{m:.1}")),
        last.map_or("n/a".into(), |m| format!("{m:.1}")),
        s.written_records,
        s.written,
        s.dropped,
    );
    if refused > 0 {
        std::process::exit(1);
    }
    Ok(())
}
