use crate::diagnosis::{Diagnosis, ErrorClass};
use crate::strategy::{Context, Plan, Strategy};

/// Waits as long as the dependency asked (Retry-After), or an exponential backoff when it did not
/// say, then re-runs. Heals 429s and quota errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateLimitWait;

impl Strategy for RateLimitWait {
    fn name(&self) -> &'static str {
        "rate_limit_wait"
    }

    fn prior(&self, diagnosis: &Diagnosis) -> f64 {
        match diagnosis.class {
            ErrorClass::RateLimited { .. } => 0.9,
            _ => 0.0,
        }
    }

    fn plan(&self, cx: &Context<'_>) -> Plan {
        let asked = match cx.diagnosis.class {
            ErrorClass::RateLimited { retry_after } => retry_after.or(cx.diagnosis.retry_after),
            _ => cx.diagnosis.retry_after,
        };
        // The interceptor never re-runs sooner than the Retry-After anyway; without one, the
        // backoff's ceiling gives a busy dependency room.
        let delay = asked.unwrap_or_else(|| cx.backoff.ceiling(cx.attempt));
        Plan::Rerun { delay, hook: None }
    }
}
