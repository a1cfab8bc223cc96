//! Nothing lost at exit: [`Healer::flush`](crate::Healer::flush) and
//! [`Healer::shutdown`](crate::Healer::shutdown) wait for the event worker, then for the store,
//! and say why not every recorded event is committed when that is so.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::event::{EventStore, StoreError};
use crate::queue::EventQueue;

/// Why [`Healer::flush`](crate::Healer::flush) or [`Healer::shutdown`](crate::Healer::shutdown)
/// could not confirm that every recorded event is committed to the store.
///
/// None of these ever reached the callers of wrapped functions: the event pipeline only reports
/// them here, in [`QueueStats`](crate::QueueStats) and in the store's own counters.
#[derive(Debug)]
#[non_exhaustive]
pub enum FlushError {
    /// The event worker is gone (the tokio runtime it was spawned on has shut down), so `queued`
    /// events never reached the store. Build the healer on the runtime that lives as long as the
    /// program, and flush before that runtime ends.
    WorkerGone {
        /// Events left in the queue.
        queued: u64,
    },
    /// The store did not confirm the commit (database unreachable, store closed): its error. A
    /// store that buffers keeps the events and goes on retrying.
    Store(StoreError),
    /// Events were lost on the way since the last flush: counted in calls.
    Lost {
        /// Dropped by the event queue (full under a storm of distinct failures, or recorded
        /// after a shutdown).
        dropped: u64,
        /// Refused by the store on every attempt.
        lost_to_store: u64,
    },
    /// The deadline of [`shutdown`](crate::Healer::shutdown) passed before everything was
    /// committed.
    TimedOut {
        /// The deadline that passed.
        deadline: Duration,
    },
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushError::WorkerGone { queued } => write!(
                f,
                "the healer's event worker is gone (the tokio runtime it ran on shut down): \
                 {queued} queued events never reached the store"
            ),
            FlushError::Store(e) => write!(f, "the store did not commit the events: {e}"),
            FlushError::Lost {
                dropped,
                lost_to_store,
            } => write!(
                f,
                "events of {} calls were lost: {dropped} dropped by the event queue, \
                 {lost_to_store} refused by the store (see `Healer::queue_stats`)",
                dropped.saturating_add(*lost_to_store)
            ),
            FlushError::TimedOut { deadline } => write!(
                f,
                "events were still being written when the shutdown deadline of {deadline:?} passed"
            ),
        }
    }
}

impl std::error::Error for FlushError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FlushError::Store(e) => Some(&**e),
            _ => None,
        }
    }
}

/// The queue to the store, then the store to its database, then what was lost on the way.
pub(crate) async fn flush(
    queue: &EventQueue,
    store: &Arc<dyn EventStore>,
) -> Result<(), FlushError> {
    let answered = queue.flush().await;
    let queued = queue.stats().depth;
    // After a shutdown the worker is gone on purpose: events recorded since are counted as
    // dropped and reported below as lost.
    let worker = if answered || (queue.is_closed() && queued == 0) {
        Ok(())
    } else {
        Err(FlushError::WorkerGone { queued })
    };
    // Even without a worker, what the store already holds is worth committing.
    let store = store.flush().await.map_err(FlushError::Store);
    worker?;
    store?;
    losses(queue)
}

/// As [`flush`], but the worker ends after its last write and the store is closed, all within
/// `deadline`.
pub(crate) async fn shutdown(
    queue: &EventQueue,
    store: &Arc<dyn EventStore>,
    deadline: Duration,
) -> Result<(), FlushError> {
    let drain = async {
        queue.close();
        // Answered: the worker wrote everything and ends. Not answered: it has ended already,
        // after its last write, or was gone before; only then are events left in the queue.
        queue.flush().await;
        let queued = queue.stats().depth;
        let store = store.close().await.map_err(FlushError::Store);
        if queued > 0 {
            return Err(FlushError::WorkerGone { queued });
        }
        store
    };
    match tokio::time::timeout(deadline, drain).await {
        Ok(result) => result?,
        Err(_) => return Err(FlushError::TimedOut { deadline }),
    }
    losses(queue)
}

fn losses(queue: &EventQueue) -> Result<(), FlushError> {
    match queue.unreported_losses() {
        (0, 0) => Ok(()),
        (dropped, lost_to_store) => Err(FlushError::Lost {
            dropped,
            lost_to_store,
        }),
    }
}
