//! Error path: what the machinery costs when a call fails.
//!
//! - A call that fails with a defect: the healer diagnoses it, ranks strategies, escalates (no
//!   re-run, no sleep) and hands the event over.
//! - A call that fails once and is healed by one re-run (zero backoff, so no sleep): diagnosis,
//!   ranking, the retry, the budget's token and its refund, crediting the strategy, the event.
//!
//! The healer's event worker runs on a runtime thread of its own while the calls run, as in a
//! service: events are written to the store, not folded into an overflow because nobody drains
//! the queue.
//!
//! Run: `cargo bench -p self-healing-benches --bench error_path`

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use self_healing::{
    Healer, InMemoryStore, WithHealerExt, heal_blocking, self_healing, site, with_healer,
};
use self_healing_benches::{OpError, op};

#[self_healing(source = "benchFailing", category = "runtime")]
#[inline(never)]
fn failing(order: u64) -> Result<u64, OpError> {
    black_box(order);
    Err(OpError("invariant broken: order total is negative"))
}

/// Makes the next call of `heals_once` fail.
static FAIL_NEXT: AtomicBool = AtomicBool::new(false);

fn op_or_fail(x: u64) -> Result<u64, OpError> {
    if FAIL_NEXT.swap(false, Ordering::Relaxed) {
        return Err(OpError("connection reset by peer"));
    }
    op(x)
}

#[self_healing(source = "benchHealOnce", category = "database")]
#[inline(never)]
fn heals_once(x: u64) -> Result<u64, OpError> {
    op_or_fail(x)
}

#[self_healing(source = "benchHealOnceAsync", category = "database")]
async fn heals_once_async(x: u64) -> Result<u64, OpError> {
    op_or_fail(x)
}

/// A hand loop doing the same: call, fail, call again. What any retry costs at the least.
#[inline(never)]
fn hand_loop(x: u64) -> Result<u64, OpError> {
    match op_or_fail(x) {
        Ok(v) => Ok(v),
        Err(_) => op_or_fail(x),
    }
}

fn error_path(c: &mut Criterion) {
    // The worker thread runs the healer's event worker; the benchmark calls from this thread.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let healer = rt.block_on(async {
        Healer::builder()
            .store(InMemoryStore::new())
            .backoff(Duration::ZERO, Duration::ZERO)
            .build()
            .expect("a healer")
    });
    let mut g = c.benchmark_group("error_path");
    g.bench_function("bare_failing_call", |b| {
        b.iter(|| {
            black_box(Err::<u64, _>(OpError(
                "invariant broken: order total is negative",
            )))
        })
    });
    g.bench_function("escalate_attribute", |b| {
        with_healer(&healer, || b.iter(|| failing(black_box(7))))
    });
    let site = site!(source = "benchFailingClosure", category = "runtime");
    g.bench_function("escalate_heal_blocking", |b| {
        with_healer(&healer, || {
            b.iter(|| {
                heal_blocking(site, || {
                    Err::<u64, _>(OpError("invariant broken: order total is negative"))
                })
            })
        })
    });
    g.bench_function("fail_once_hand_loop", |b| {
        b.iter(|| {
            FAIL_NEXT.store(true, Ordering::Relaxed);
            hand_loop(black_box(7))
        })
    });
    g.bench_function("healed_by_one_rerun_sync", |b| {
        with_healer(&healer, || {
            b.iter(|| {
                FAIL_NEXT.store(true, Ordering::Relaxed);
                heals_once(black_box(7)).expect("healed")
            })
        })
    });
    g.bench_function("healed_by_one_rerun_async", |b| {
        let healer = healer.clone();
        b.iter_custom(|n| {
            rt.block_on(
                async move {
                    let start = Instant::now();
                    for i in 0..n {
                        FAIL_NEXT.store(true, Ordering::Relaxed);
                        black_box(heals_once_async(black_box(i)).await.expect("healed"));
                    }
                    start.elapsed()
                }
                .with_healer(healer.clone()),
            )
        })
    });
    g.finish();
    rt.block_on(healer.flush()).expect("flushed");
    let stats = healer.queue_stats();
    eprintln!(
        "events recorded {} written {} folded {} dropped {}",
        stats.recorded, stats.written, stats.folded, stats.dropped
    );
}

criterion_group!(benches, error_path);
criterion_main!(benches);
