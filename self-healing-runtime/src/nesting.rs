//! Nested wrapped calls must not multiply re-runs.
//!
//! While a site is re-running, wrapped calls inside that re-run do not re-run their own failures:
//! they report them up to the layer that is already re-running (a task-local for async re-runs,
//! a thread-local for sync ones). Paid for only on the error path. So when A calls B and both
//! fail, B may re-run its failure during A's first attempt, but every re-run of A calls B only
//! once: at most `attempts(A) + attempts(B) - 1` calls of B, never `attempts(A) × attempts(B)`.
//! Re-entry of the same source (recursion) is bounded the same way.

use std::cell::Cell;
use std::future::Future;

tokio::task_local! {
    static RERUNNING: ();
}

thread_local! {
    static SYNC_RERUNNING: Cell<u32> = const { Cell::new(0) };
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
