//! `queue_for_later`: fire-and-forget work written to the store's outbox when healing cannot do
//! it now, and replayed by the outbox worker when the dependency is back.

use crate::diagnosis::{Diagnosis, ErrorClass};
use crate::site::Answer;
use crate::strategy::{Context, Plan, Strategy};

/// Queues the call of a `queue_for_later` site in the store's outbox when every re-run that
/// applies has been tried (a last resort). Not for failures a replay cannot fix (permanent
/// errors, bugs), and never for a call that is itself a replay: the worker backs it off.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueForLater;

impl Strategy for QueueForLater {
    fn name(&self) -> &'static str {
        "queue_for_later"
    }

    fn prior(&self, diagnosis: &Diagnosis) -> f64 {
        match diagnosis.class {
            // Replaying the same call fails the same way.
            ErrorClass::Permanent | ErrorClass::Bug => 0.0,
            _ => 0.5,
        }
    }

    fn plan(&self, cx: &Context<'_>) -> Plan {
        if !matches!(cx.site.options().answer(), Some(Answer::Queue)) || !cx.has_fallback {
            return Plan::NotApplicable("the site is not `queue_for_later`");
        }
        if cx.replay {
            return Plan::NotApplicable("this call replays a queued one: the worker retries it");
        }
        Plan::Fallback
    }

    fn is_last_resort(&self) -> bool {
        true
    }
}
