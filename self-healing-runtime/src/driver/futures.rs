//! The futures of the typed interceptor: [`AttemptFuture`] and [`SettleFuture`] keep the
//! success path as small as the body's own future, and [`CatchUnwind`] turns a panic while
//! polling into an [`Attempt::Panicked`] for `catch_panic = true` sites.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::Poll;

use super::{Attempt, Step};

pin_project_lite::pin_project! {
    /// The future of [`Driver::attempt`]: `Fast { body }` polls the body itself; `Guarded {
    /// guarded }` the boxed guarded attempt.
    #[project = AttemptProjection]
    #[derive(Debug)]
    // pin-project-lite accepts no doc comments on enum fields; the enum's doc describes them.
    #[allow(missing_docs)]
    pub enum AttemptFuture<Fut, G> {
        /// The success path of a healthy site: just the body.
        Fast {
            #[pin]
            body: Fut,
        },
        /// Guards, timeouts, re-runs: boxed.
        Guarded {
            guarded: Pin<Box<G>>,
        },
    }
}

impl<T, E, Fut, G> Future for AttemptFuture<Fut, G>
where
    Fut: Future<Output = Result<T, E>>,
    G: Future<Output = Attempt<T, E>>,
{
    type Output = Attempt<T, E>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AttemptProjection::Fast { body } => body.poll(cx).map(Attempt::Done),
            AttemptProjection::Guarded { guarded } => guarded.as_mut().poll(cx),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Driver::settle`]: `Ready { step }` holds the answer for its one poll;
    /// `Slow { slow }` the boxed error path.
    #[project = SettleProjection]
    #[derive(Debug)]
    // pin-project-lite accepts no doc comments on enum fields; the enum's doc describes them.
    #[allow(missing_docs)]
    pub enum SettleFuture<T, E, G> {
        /// The success path: the answer is known.
        Ready {
            step: Option<Step<T, E>>,
        },
        /// The error path: boxed.
        Slow {
            slow: Pin<Box<G>>,
        },
    }
}

impl<T, E, G> Future for SettleFuture<T, E, G>
where
    G: Future<Output = Step<T, E>>,
{
    type Output = Step<T, E>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            SettleProjection::Ready { step } => {
                Poll::Ready(step.take().expect("a settled future is not polled again"))
            }
            SettleProjection::Slow { slow } => slow.as_mut().poll(cx),
        }
    }
}

pin_project_lite::pin_project! {
    /// Catches a panic while polling the body, when the site asked for it.
    pub(crate) struct CatchUnwind<F> {
        #[pin]
        inner: F,
        catch: bool,
    }
}

impl<F> CatchUnwind<F> {
    pub(crate) fn new(inner: F, catch: bool) -> Self {
        CatchUnwind { inner, catch }
    }
}

impl<T, E, F: Future<Output = Result<T, E>>> Future for CatchUnwind<F> {
    type Output = Attempt<T, E>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        if !*this.catch {
            return this.inner.poll(cx).map(Attempt::Done);
        }
        let inner = this.inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll.map(Attempt::Done),
            Err(payload) => std::task::Poll::Ready(Attempt::Panicked(payload)),
        }
    }
}
