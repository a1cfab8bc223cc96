use crate::diagnosis::Diagnosis;
use crate::strategy::{Context, Plan, Strategy};

/// Stops calling a site that keeps failing: closed → open when the failure rate (or slow-call
/// rate) over a window passes its threshold with enough calls; open calls fail fast (or get the
/// fallback or cached value); after a pause, half-open admits a bounded number of probes whose
/// results close or re-open it. A guard: consulted before the learned ranking.
#[derive(Debug, Clone, Copy, Default)]
pub struct CircuitBreaker;

impl Strategy for CircuitBreaker {
    fn name(&self) -> &'static str {
        "circuit_breaker"
    }

    fn prior(&self, _diagnosis: &Diagnosis) -> f64 {
        1.0
    }

    fn plan(&self, cx: &Context<'_>) -> Plan {
        if cx.circuit_open && !(cx.has_fallback || cx.has_cache) {
            Plan::FailFast
        } else if cx.circuit_open {
            Plan::NotApplicable("circuit open: the fallback or a cached value may answer")
        } else {
            Plan::NotApplicable("circuit closed")
        }
    }

    fn is_guard(&self) -> bool {
        true
    }
}
