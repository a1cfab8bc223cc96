//! Notifications as `tracing` events: always available, and the baseline channel.

use super::{Notification, NotificationKind, Notifier, NotifyError};
use crate::diagnosis::Severity;
use crate::event::BoxFuture;

/// Emits each notification as a `tracing` event (`error` for critical alerts, else `warn`), with
/// its fields as structured fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingNotifier;

impl Notifier for TracingNotifier {
    fn name(&self) -> &str {
        "tracing"
    }

    fn send<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), NotifyError>> {
        let critical = n.severity == Severity::Critical && n.kind == NotificationKind::Alert;
        macro_rules! emit {
            ($level:ident) => {
                tracing::$level!(
                    kind = n.kind.as_str(),
                    source = %n.source,
                    category = %n.category,
                    fingerprint = %n.fingerprint,
                    class = %n.class,
                    severity = %n.severity,
                    outcome = %n.outcome,
                    strategy = n.strategy.as_deref().unwrap_or("none"),
                    count = n.count,
                    message = %n.message,
                    "{}",
                    n.title()
                )
            };
        }
        if critical {
            emit!(error);
        } else {
            emit!(warn);
        }
        Box::pin(std::future::ready(Ok(())))
    }
}
