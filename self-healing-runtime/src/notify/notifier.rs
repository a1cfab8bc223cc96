//! The `Notifier` trait: one channel that admins are told through.

use std::fmt;

use super::Notification;
use crate::event::BoxFuture;

/// Why a channel did not take a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyError {
    /// Whether trying again later may work (timeouts, 5xx, 429) or not (other 4xx).
    pub retryable: bool,
    /// What went wrong, without URLs or secrets.
    pub message: String,
}

impl NotifyError {
    /// A failure that may pass.
    pub fn retryable(message: impl Into<String>) -> Self {
        NotifyError {
            retryable: true,
            message: message.into(),
        }
    }

    /// A failure that will not pass by trying again.
    pub fn permanent(message: impl Into<String>) -> Self {
        NotifyError {
            retryable: false,
            message: message.into(),
        }
    }
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NotifyError {}

/// A channel that admins are told through (Slack, a webhook, email, logs, or one of yours).
///
/// The [dispatcher](super::NotifyDispatcher) calls it from its own task, throttled, and retries
/// retryable errors with backoff: an implementation just makes one attempt.
///
/// ```
/// use self_healing_runtime::event::BoxFuture;
/// use self_healing_runtime::notify::{Notification, Notifier, NotifyError};
///
/// /// Prints titles; a real one would page someone.
/// #[derive(Debug)]
/// struct Stdout;
///
/// impl Notifier for Stdout {
///     fn name(&self) -> &str {
///         "stdout"
///     }
///     fn send<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), NotifyError>> {
///         Box::pin(async move {
///             println!("{}", n.title());
///             Ok(())
///         })
///     }
/// }
/// let channels: Vec<Box<dyn Notifier>> = vec![Box::new(Stdout)];
/// # let _ = channels;
/// ```
pub trait Notifier: Send + Sync + fmt::Debug + 'static {
    /// A short name for records and logs (`slack`, `webhook`, `email`, `tracing`).
    fn name(&self) -> &str;

    /// Makes one attempt to deliver `notification`.
    fn send<'a>(&'a self, notification: &'a Notification)
    -> BoxFuture<'a, Result<(), NotifyError>>;
}
