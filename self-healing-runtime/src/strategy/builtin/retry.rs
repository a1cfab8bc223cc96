use std::time::Duration;

use crate::diagnosis::{Diagnosis, ErrorClass};
use crate::strategy::{Context, Plan, Strategy};

/// Re-runs after an exponential backoff with full jitter. Heals transient failures.
///
/// The interceptor enforces the attempt cap, the elapsed cap, idempotency, the retry budget and
/// the dependency's Retry-After (a floor under the backoff).
#[derive(Debug, Clone, Copy, Default)]
pub struct Retry;

impl Strategy for Retry {
    fn name(&self) -> &'static str {
        "retry"
    }

    fn prior(&self, diagnosis: &Diagnosis) -> f64 {
        match diagnosis.class {
            ErrorClass::Transient => 0.8,
            // Most lost connections are one broken connection of a pool: a plain re-run takes
            // another. Where re-runs keep failing, learning moves the reconnect hook first.
            ErrorClass::ConnectionLost => 0.6,
            ErrorClass::Timeout => 0.5,
            ErrorClass::RateLimited { .. } | ErrorClass::ResourceExhausted => 0.3,
            // The same expired credential fails the same way: only a refresh heals it.
            ErrorClass::AuthExpired => 0.0,
            // An open circuit refuses the re-run anyway.
            ErrorClass::Permanent | ErrorClass::Bug | ErrorClass::CircuitOpen => 0.0,
        }
    }

    fn plan(&self, cx: &Context<'_>) -> Plan {
        let delay: Duration = cx.backoff.delay(cx.attempt, cx.random);
        Plan::Rerun { delay, hook: None }
    }
}
