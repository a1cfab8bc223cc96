//! The success path of a wrapped call allocates nothing: counted with a counting global allocator
//! (a count, not a time, so it is stable on any machine).

// A global allocator is an unsafe trait; this one only counts and delegates to `System`.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use common::Failure;
use self_healing_runtime::{Healer, InMemoryStore, heal, heal_blocking};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// Delegates to the system allocator and only counts, per thread, so parallel tests
// do not disturb each other's counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Polls a future that never waits, without a runtime (and without allocating).
fn run_ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the body never waits"),
    }
}

#[inline(never)]
fn op(x: u64) -> Result<u64, Failure> {
    Ok(black_box(x).wrapping_mul(31))
}

#[test]
fn sync_success_path_does_not_allocate_with_or_without_a_healer() {
    let site = test_site!("allocSync", Database);
    // The first call of a site clears its "never called" flag on the guarded path: warm it up.
    let _ = heal_blocking(site, || op(1));
    let before = allocations();
    for i in 0..10_000 {
        assert_eq!(heal_blocking(site, || op(i)), Ok(i.wrapping_mul(31)));
    }
    assert_eq!(allocations() - before, 0, "no healer installed");

    let healer = Healer::builder()
        .store(InMemoryStore::new())
        .build()
        .unwrap();
    self_healing_runtime::with_healer(&healer, || {
        let _ = heal_blocking(site, || op(1));
        let before = allocations();
        for i in 0..10_000 {
            assert_eq!(heal_blocking(site, || op(i)), Ok(i.wrapping_mul(31)));
        }
        assert_eq!(allocations() - before, 0, "healer in scope");
    });
}

#[test]
fn async_success_path_does_not_allocate() {
    let site = test_site!("allocAsync", Api);
    let _ = run_ready(heal(site, || async { op(1) }));
    let before = allocations();
    for i in 0..10_000 {
        assert_eq!(
            run_ready(heal(site, || async move { op(i) })),
            Ok(i.wrapping_mul(31))
        );
    }
    assert_eq!(allocations() - before, 0);
}
