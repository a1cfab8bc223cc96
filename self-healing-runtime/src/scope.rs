//! A value in effect for a thread or a future, then the previous one again (as tracing's
//! `with_default`): how a [`Healer`](crate::Healer) and a chaos layer are scoped to a test.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::LocalKey;

/// A value that can be put in effect for a scope. Sealed: implemented by [`Healer`] and, with
/// the `chaos` feature, by `Chaos`.
///
/// [`Healer`]: crate::Healer
pub trait Scoped: sealed::Sealed + Clone + 'static {
    /// The thread's slot for the value in effect.
    #[doc(hidden)]
    fn slot() -> &'static LocalKey<RefCell<Option<Self>>>;
}

pub(crate) mod sealed {
    pub trait Sealed {}
}

/// Puts a value in effect until dropped, then puts back the one before it.
pub(crate) struct ScopeGuard<T: Scoped>(Option<T>);

impl<T: Scoped> ScopeGuard<T> {
    pub(crate) fn enter(value: T) -> Self {
        ScopeGuard(T::slot().with(|s| s.replace(Some(value))))
    }
}

impl<T: Scoped> Drop for ScopeGuard<T> {
    fn drop(&mut self) {
        let previous = self.0.take();
        T::slot().with(|s| *s.borrow_mut() = previous);
    }
}

/// The value in effect on this thread, if any.
pub(crate) fn current<T: Scoped>() -> Option<T> {
    T::slot().with(|s| s.borrow().clone())
}

pin_project_lite::pin_project! {
    /// A future that runs with a value (a healer, a chaos layer) in effect at every poll.
    #[derive(Debug)]
    pub struct InScope<F, T> {
        #[pin]
        inner: F,
        value: T,
    }
}

impl<F, T> InScope<F, T> {
    pub(crate) fn new(inner: F, value: T) -> Self {
        InScope { inner, value }
    }
}

impl<F: Future, T: Scoped> Future for InScope<F, T> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _guard = ScopeGuard::enter(this.value.clone());
        this.inner.poll(cx)
    }
}
