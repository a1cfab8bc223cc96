//! Nested wrapped calls must not multiply re-runs.
//!
//! Two rules, both paid for only on the error path:
//! 1. While a site is re-running, wrapped calls inside that re-run do not re-run their own
//!    failures: they report them up to the layer that is already re-running (a task-local for
//!    async re-runs, a thread-local for sync ones).
//! 2. When an inner site gave up on a failure, outer sites that receive it (as it is, or wrapped
//!    in their own error type) do not re-run it again: the inner site leaves a mark (a hash of the
//!    error's text) that the outer site finds in its error chain. Re-entry of the same source
//!    (recursion) is covered by the same two rules.

use std::cell::{Cell, RefCell};
use std::future::Future;

tokio::task_local! {
    static RERUNNING: ();
}

thread_local! {
    static SYNC_RERUNNING: Cell<u32> = const { Cell::new(0) };
    static GAVE_UP: RefCell<[u64; 8]> = const { RefCell::new([0; 8]) };
    static GAVE_UP_NEXT: Cell<usize> = const { Cell::new(0) };
}

/// Whether an outer wrapped call is re-running right now (on this task or thread).
pub(crate) fn inside_rerun() -> bool {
    SYNC_RERUNNING.with(Cell::get) > 0 || RERUNNING.try_with(|_| ()).is_ok()
}

/// Runs an async re-run with the "re-running" mark set for everything it calls.
pub(crate) async fn rerun_scope<F: Future>(fut: F) -> F::Output {
    RERUNNING.scope((), fut).await
}

/// Runs a sync re-run with the mark set.
pub(crate) fn rerun_scope_sync<R>(f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            SYNC_RERUNNING.with(|c| c.set(c.get().saturating_sub(1)));
        }
    }
    SYNC_RERUNNING.with(|c| c.set(c.get() + 1));
    let _reset = Reset;
    f()
}

/// The mark of one error's text.
pub(crate) fn mark_of(text: &str) -> u64 {
    // FNV-1a; 0 is reserved for "empty slot".
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.max(1)
}

/// An inner site gave up on an error with this text.
pub(crate) fn note_gave_up(mark: u64) {
    let i = GAVE_UP_NEXT.with(|n| {
        let i = n.get();
        n.set((i + 1) % 8);
        i
    });
    GAVE_UP.with(|g| g.borrow_mut()[i] = mark);
}

/// Whether any of these marks (one per link of an error chain) was left by an inner site; the
/// mark is consumed so an unrelated later failure with the same text is healed normally.
pub(crate) fn take_gave_up(marks: &[u64]) -> bool {
    GAVE_UP.with(|g| {
        let mut g = g.borrow_mut();
        for slot in g.iter_mut() {
            if *slot != 0 && marks.contains(slot) {
                *slot = 0;
                return true;
            }
        }
        false
    })
}

/// Whether any mark is pending (a cheap check before the chain is formatted).
pub(crate) fn any_gave_up() -> bool {
    GAVE_UP.with(|g| g.borrow().iter().any(|m| *m != 0))
}
