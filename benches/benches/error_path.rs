//! Error path: a call that fails with a defect, so the healer diagnoses it, ranks strategies,
//! escalates (no re-run, no sleep) and enqueues the event. This is the machinery's own cost.
//!
//! Run: `cargo bench -p self-healing-benches --bench error_path`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use self_healing::{Healer, InMemoryStore, heal_blocking, self_healing, site, with_healer};
use self_healing_benches::OpError;

#[self_healing(source = "benchFailing", category = "runtime")]
#[inline(never)]
fn failing(order: u64) -> Result<u64, OpError> {
    black_box(order);
    Err(OpError("invariant broken: order total is negative"))
}

fn error_path(c: &mut Criterion) {
    let rt = self_healing_benches::runtime();
    let _enter = rt.enter();
    let healer = Healer::builder()
        .store(InMemoryStore::new())
        .build()
        .expect("a healer");
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
    g.finish();
    rt.block_on(healer.flush());
    let stats = healer.queue_stats();
    eprintln!(
        "events recorded {} written {} folded {} dropped {}",
        stats.recorded, stats.written, stats.folded, stats.dropped
    );
}

criterion_group!(benches, error_path);
criterion_main!(benches);
