//! Telling a caller that its call was queued rather than done: `Ok(())` from a
//! `queue_for_later` function means "accepted", done now or durably queued, and
//! [`track`] says which.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::CallKey;

thread_local! {
    static QUEUED: Cell<Option<CallKey>> = const { Cell::new(None) };
}

/// Notes that the call with `key` was queued (the interceptor, in the poll the call returns in).
pub(crate) fn note_queued(key: CallKey) {
    QUEUED.with(|q| q.set(Some(key)));
}

/// What became of a tracked call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// It ran now (and its result says how that went).
    Now,
    /// It could not succeed now and was written to the outbox under this key: the outbox
    /// worker replays it later, at most once per key.
    Queued(CallKey),
}

pin_project_lite::pin_project! {
    /// A future that reports whether a `queue_for_later` call it runs was queued.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Track<F> {
        #[pin]
        inner: F,
        // The key of a call queued during an earlier poll.
        seen: Option<CallKey>,
    }
}

/// Runs `fut` (a call of a `queue_for_later` function) and says whether it was done now or
/// queued for later.
///
/// ```
/// # async fn demo() {
/// use self_healing_runtime::outbox::{Delivery, track};
/// let (result, delivery) = track(async { Ok::<(), std::io::Error>(()) }).await;
/// assert!(result.is_ok());
/// assert_eq!(delivery, Delivery::Now);
/// # }
/// ```
pub fn track<F: Future>(fut: F) -> Track<F> {
    Track {
        inner: fut,
        seen: None,
    }
}

impl<F: Future> Future for Track<F> {
    type Output = (F::Output, Delivery);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outer = QUEUED.with(Cell::take);
        let polled = this.inner.poll(cx);
        if let Some(key) = QUEUED.with(|q| q.replace(outer)) {
            *this.seen = Some(key);
        }
        match polled {
            Poll::Ready(output) => {
                Poll::Ready((output, this.seen.map_or(Delivery::Now, Delivery::Queued)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
