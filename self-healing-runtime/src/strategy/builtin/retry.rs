use std::time::Duration;

use crate::diagnosis::{Diagnosis, ErrorClass};
use crate::strategy::{Context, Plan, Strategy};

/// Re-runs after an exponential backoff with full jitter. Heals transient failures.
///
/// The interceptor enforces the attempt cap, the elapsed cap, idempotency and the retry budget.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retry;

impl Strategy for Retry {
    fn name(&self) -> &'static str {
        "retry"
    }

    fn prior(&self, diagnosis: &Diagnosis) -> f64 {
        match diagnosis.class {
            ErrorClass::Transient => 0.8,
            ErrorClass::Timeout => 0.5,
            ErrorClass::ConnectionLost => 0.4,
            ErrorClass::RateLimited { .. } | ErrorClass::ResourceExhausted => 0.3,
            ErrorClass::AuthExpired => 0.05,
            // An open circuit refuses the re-run anyway.
            ErrorClass::Permanent | ErrorClass::Bug | ErrorClass::CircuitOpen => 0.0,
        }
    }

    fn plan(&self, cx: &Context<'_>) -> Plan {
        let delay: Duration = cx.backoff.delay(cx.attempt, cx.random);
        Plan::Rerun { delay, hook: None }
    }
}
