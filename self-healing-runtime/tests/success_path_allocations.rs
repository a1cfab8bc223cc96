//! The success path of a wrapped call allocates nothing: counted with a counting global allocator
//! (a count, not a time, so it is stable on any machine).

mod common;
mod counting;

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use common::Failure;
use counting::allocations;
use self_healing_runtime::{Healer, InMemoryStore, heal, heal_blocking};

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

/// A site that failed a moment ago (and healed) is back on the plain success path: no
/// allocation, and no guard to pass (the circuit is closed, nothing is paced).
#[test]
fn a_site_that_failed_recently_succeeds_without_allocating() {
    let healer = Healer::builder()
        .store(InMemoryStore::new())
        .backoff(std::time::Duration::ZERO, std::time::Duration::ZERO)
        .build()
        .unwrap();
    let sync_site = test_site!("allocRecentlyFailedSync", Database);
    let async_site = test_site!("allocRecentlyFailedAsync", Database);
    self_healing_runtime::with_healer(&healer, || {
        let mut failures = 1;
        let healed = heal_blocking(sync_site, || {
            if failures > 0 {
                failures -= 1;
                return Err(Failure("connection reset by peer".into()));
            }
            op(1)
        });
        assert_eq!(healed, Ok(31), "the failure healed");
        let mut failures = 1;
        let healed = run_ready(heal(async_site, || {
            let fail = failures > 0;
            failures = 0;
            async move {
                if fail {
                    return Err(Failure("connection reset by peer".into()));
                }
                op(1)
            }
        }));
        assert_eq!(healed, Ok(31), "the failure healed");
        assert!(self_healing_runtime::__private::is_fast(sync_site));
        assert!(self_healing_runtime::__private::is_fast(async_site));
        let before = allocations();
        for i in 0..10_000 {
            assert_eq!(heal_blocking(sync_site, || op(i)), Ok(i.wrapping_mul(31)));
            assert_eq!(
                run_ready(heal(async_site, || async move { op(i) })),
                Ok(i.wrapping_mul(31))
            );
        }
        assert_eq!(allocations() - before, 0, "success after a recent failure");
    });
}

/// A call healed by one re-run allocates at most three times beyond its error: the error's
/// message for the event and the event's steps, plus, for an async call, the one boxed future
/// of its slow path (which holds the call's healing state). Diagnosis, ranking, the strategy's
/// bookkeeping, the budget and the hand-over to the event worker allocate nothing (the worker
/// runs on its own thread here, and counts are per thread).
#[test]
fn a_call_healed_by_one_rerun_allocates_two_times_sync_three_async() {
    let healer = Healer::builder()
        .store(InMemoryStore::new())
        .backoff(std::time::Duration::ZERO, std::time::Duration::ZERO)
        .build()
        .unwrap();
    let site = test_site!("allocHealedOnce", Database);
    let async_site = test_site!("allocHealedOnceAsync", Database);
    // `io::Error` from a kind allocates nothing itself: every count below is the healer's.
    let fail_once = |fail: &mut bool| {
        if std::mem::take(fail) {
            Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
        } else {
            Ok(1u64)
        }
    };
    let healed_sync = || {
        let mut fail = true;
        heal_blocking(site, || fail_once(&mut fail)).unwrap()
    };
    let healed_async = || {
        let mut fail = true;
        run_ready(heal(async_site, || {
            let result = fail_once(&mut fail);
            async move { result }
        }))
        .unwrap()
    };
    self_healing_runtime::with_healer(&healer, || {
        // Warm up: lazily built automata, the pattern table's first rows.
        for _ in 0..100 {
            assert_eq!(healed_sync(), 1);
            assert_eq!(healed_async(), 1);
        }
        let calls = 1_000u64;
        let count = |call: &dyn Fn() -> u64| {
            let before = allocations();
            for _ in 0..calls {
                assert_eq!(call(), 1);
            }
            (allocations() - before) as f64 / calls as f64
        };
        let sync = count(&healed_sync);
        let asynchronous = count(&healed_async);
        eprintln!(
            "a call healed by one re-run: {sync:.2} allocations (sync), {asynchronous:.2} (async)"
        );
        assert!(sync <= 2.0, "{sync} allocations per healed sync call");
        assert!(
            asynchronous <= 3.0,
            "{asynchronous} allocations per healed async call"
        );
    });
}
