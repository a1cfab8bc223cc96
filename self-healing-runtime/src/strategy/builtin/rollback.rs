//! `rollback`: an attempt whose effects were undone whole (its transaction rolled back, its
//! saga compensated) is re-run whole, as PostgreSQL advises for serialization failures and
//! deadlocks.

use crate::diagnosis::{Diagnosis, ErrorClass};
use crate::strategy::{Context, Plan, Strategy};

/// Re-runs an attempt that [`rollback::transaction`](crate::rollback) or a
/// [`Saga`](crate::rollback::Saga) undid whole, after a short jittered backoff. Such a re-run is
/// safe even on a site that is not idempotent: nothing of the failed attempt remains. An
/// attempt that failed outside a rolled-back transaction is not its business.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rollback;

impl Strategy for Rollback {
    fn name(&self) -> &'static str {
        "rollback"
    }

    fn prior(&self, diagnosis: &Diagnosis) -> f64 {
        match diagnosis.class {
            // Serialization failures and deadlocks are transient: the next run usually wins.
            ErrorClass::Transient => 0.9,
            // A saga step that lost its connection, compensated: the whole call runs again.
            ErrorClass::ConnectionLost => 0.7,
            ErrorClass::Timeout | ErrorClass::ResourceExhausted => 0.5,
            _ => 0.0,
        }
    }

    fn plan(&self, cx: &Context<'_>) -> Plan {
        if !cx.rolled_back {
            return Plan::NotApplicable("the failed attempt was not rolled back whole");
        }
        Plan::Rerun {
            delay: cx.backoff.delay(cx.attempt, cx.random),
            hook: None,
        }
    }
}
