//! Undoing an attempt whole, so that the `rollback` strategy may re-run it even where a plain
//! re-run is unsafe.
//!
//! A non-idempotent write is never re-run after a failure that may have reached the database:
//! half of it might have happened. Two things make "nothing happened" certain, and both tell the
//! interceptor so:
//!
//! - a **transaction** whose work failed was rolled back by the database
//!   ([`transaction`], feature `diesel-async`, for Diesel's async
//!   connections; or call [`mark_rolled_back`] after your own transaction's rollback);
//! - a **saga** ([`Saga`]) whose completed steps were compensated, newest first.
//!
//! The mark holds for the attempt whose body returns the error in the same poll (what `?`
//! does); the interceptor takes it when it settles that attempt.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::hooks::HookError;

#[cfg(feature = "diesel-async")]
mod diesel_tx;
#[cfg(feature = "diesel-async")]
pub use diesel_tx::transaction;

thread_local! {
    static ROLLED_BACK: Cell<bool> = const { Cell::new(false) };
}

/// Tells the interceptor that the attempt now failing left nothing behind: its transaction was
/// rolled back, or its effects undone. Call it only when that is certain (not after a lost
/// connection during `COMMIT`: the commit may have happened).
pub fn mark_rolled_back() {
    ROLLED_BACK.with(|r| r.set(true));
}

/// Takes the mark (the interceptor, when it settles an attempt).
pub(crate) fn take_mark() -> bool {
    ROLLED_BACK.with(Cell::take)
}

type Undo = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = Result<(), HookError>> + Send>> + Send>;

/// Multi-step work that is not one transaction (a row here, a call to a provider there), with a
/// compensation for each completed step. When a step fails, the completed steps are undone,
/// newest first, and the attempt is marked rolled back: the `rollback` strategy may then run the
/// whole call again.
///
/// ```
/// use self_healing_runtime::rollback::Saga;
/// # #[derive(Debug)] struct Failed;
/// # impl std::fmt::Display for Failed { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("failed") } }
/// # impl std::error::Error for Failed {}
/// # async fn reserve() -> Result<u32, Failed> { Ok(7) }
/// # async fn release(_: u32) -> Result<(), Failed> { Ok(()) }
/// # async fn charge() -> Result<(), Failed> { Err(Failed) }
///
/// async fn book() -> Result<(), Failed> {
///     let mut saga = Saga::new();
///     let seat = saga.step(reserve()).await?;
///     saga.compensate("release the seat", move || async move { Ok(release(seat).await?) });
///     // A failure here releases the seat before the error goes back.
///     saga.step(charge()).await?;
///     saga.complete();
///     Ok(())
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() { assert!(book().await.is_err()); }
/// ```
#[must_use = "a saga undoes its steps only when one of them fails through `step`"]
pub struct Saga {
    undo: Vec<(String, Undo)>,
}

impl fmt::Debug for Saga {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Saga")
            .field(
                "compensations",
                &self.undo.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for Saga {
    fn default() -> Self {
        Saga::new()
    }
}

/// A compensation that failed: the attempt is not rolled back, and must not be re-run blindly.
#[derive(Debug)]
pub struct CompensationFailed {
    /// The compensation's name.
    pub step: String,
    /// Why it failed.
    pub error: HookError,
}

impl fmt::Display for CompensationFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "compensation `{}` failed: {}", self.step, self.error)
    }
}

impl std::error::Error for CompensationFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.error)
    }
}

impl Saga {
    /// A saga with nothing to undo yet.
    pub fn new() -> Self {
        Saga { undo: Vec::new() }
    }

    /// Registers how to undo the step that just completed.
    pub fn compensate<F, Fut>(&mut self, name: impl Into<String>, undo: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.undo
            .push((name.into(), Box::new(move || Box::pin(undo()))));
    }

    /// Runs one step. If it fails, every registered compensation runs (newest first) before the
    /// error is returned, and the attempt is marked rolled back if they all succeeded.
    pub async fn step<T, E>(&mut self, step: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        match step.await {
            Ok(v) => Ok(v),
            Err(e) => {
                if let Err(failed) = self.unwind().await {
                    tracing::warn!(error = %failed, "self-healing: a saga could not undo its steps");
                }
                Err(e)
            }
        }
    }

    /// Undoes every completed step, newest first; marks the attempt rolled back when all
    /// compensations succeed. Stops at the first that fails (the ones before it stay registered,
    /// so the error names what is left).
    ///
    /// # Errors
    /// The first compensation that failed.
    pub async fn unwind(&mut self) -> Result<(), CompensationFailed> {
        while let Some((name, undo)) = self.undo.pop() {
            if let Err(error) = undo().await {
                return Err(CompensationFailed { step: name, error });
            }
        }
        mark_rolled_back();
        Ok(())
    }

    /// The work is done: nothing will be undone.
    pub fn complete(mut self) {
        self.undo.clear();
    }

    /// Compensations registered and not yet run.
    pub fn pending(&self) -> usize {
        self.undo.len()
    }
}

impl Drop for Saga {
    fn drop(&mut self) {
        if !self.undo.is_empty() {
            // Neither completed nor unwound: an early return skipped both.
            tracing::warn!(
                pending = self.undo.len(),
                "self-healing: a saga was dropped with compensations it never ran"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn a_failed_step_undoes_the_completed_ones_newest_first() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut saga = Saga::new();
        for n in 1..=2 {
            saga.step(async { Ok::<_, String>(()) }).await.unwrap();
            let log = log.clone();
            saga.compensate(format!("undo {n}"), move || async move {
                log.lock().unwrap().push(n);
                Ok(())
            });
        }
        take_mark();
        let failed = saga.step(async { Err::<(), _>("boom") }).await;
        assert_eq!(failed, Err("boom"));
        assert_eq!(*log.lock().unwrap(), [2, 1]);
        assert!(take_mark(), "a compensated attempt is marked rolled back");
        assert_eq!(saga.pending(), 0);
    }

    #[tokio::test]
    async fn a_failed_compensation_leaves_the_attempt_unmarked() {
        let mut saga = Saga::new();
        saga.compensate("first", || async { Ok(()) });
        saga.compensate("second", || async { Err("the provider is down".into()) });
        take_mark();
        let failed = saga.unwind().await.unwrap_err();
        assert_eq!(failed.step, "second");
        assert!(failed.to_string().contains("the provider is down"));
        assert!(!take_mark());
        assert_eq!(saga.pending(), 1, "what is left to undo stays registered");
        saga.complete();
    }
}
