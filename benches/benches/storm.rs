//! An error storm: 1,000,000 failing calls as fast as one thread can make them. Checks that memory
//! stays bounded (peak live heap growth under 64 MiB), that callers never block (the slowest call
//! is reported), and that the recorded event counts add up to every failure.
//!
//! Run: `cargo bench -p self-healing-benches --bench storm`

// A global allocator is an unsafe trait; this one only counts and delegates to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use self_healing::{Healer, InMemoryStore, self_healing, with_healer};
use self_healing_benches::OpError;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// Delegates to the system allocator and tracks live and peak bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[self_healing(source = "stormOrders", category = "runtime")]
fn settle_order(order: u64) -> Result<(), OpError> {
    let _ = order;
    Err(OpError("invariant broken: order total is negative"))
}

fn main() {
    // `cargo bench` passes `--bench`; criterion-style filters are ignored here.
    const CALLS: u64 = 1_000_000;
    let store = InMemoryStore::new();
    let healer = Healer::builder()
        .store(store.clone())
        .build()
        .expect("a healer");
    let baseline = LIVE.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    // Calls slower than 10 µs, 100 µs and 1 ms: a blocked caller would show up here.
    let mut slow = [0u64; 3];
    with_healer(&healer, || {
        for order in 0..CALLS {
            let t = Instant::now();
            let _ = settle_order(order);
            let took = t.elapsed();
            slowest = slowest.max(took);
            for (count, limit) in slow.iter_mut().zip([10u64, 100, 1000]) {
                if took > Duration::from_micros(limit) {
                    *count += 1;
                }
            }
        }
    });
    let elapsed = started.elapsed();
    let rt = self_healing_benches::runtime();
    rt.block_on(healer.flush()).expect("flushed");
    let stats = healer.queue_stats();
    let peak_growth = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
    let counted = store.total_count() + stats.dropped + stats.lost_to_store;
    println!(
        "storm: {CALLS} failing calls in {elapsed:?} ({:.0} calls/s)",
        CALLS as f64 / elapsed.as_secs_f64()
    );
    println!(
        "storm: slowest single call {slowest:?}; calls over 10 us: {}, over 100 us: {}, over 1 ms: {}",
        slow[0], slow[1], slow[2]
    );
    println!(
        "storm: peak heap growth {:.1} MiB",
        peak_growth as f64 / (1024.0 * 1024.0)
    );
    println!(
        "storm: recorded {} stored records {} standing for {} calls; folded {} dropped {} lost {}",
        stats.recorded,
        store.events().len(),
        store.total_count(),
        stats.folded,
        stats.dropped,
        stats.lost_to_store
    );
    assert_eq!(stats.recorded, CALLS, "every failure was recorded");
    assert_eq!(
        counted, CALLS,
        "stored counts + dropped + lost add up to every failure"
    );
    assert!(
        peak_growth < 64 * 1024 * 1024,
        "peak heap growth under 64 MiB"
    );
}
