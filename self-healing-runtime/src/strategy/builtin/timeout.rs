use std::time::Duration;

use crate::diagnosis::{Diagnosis, ErrorClass};
use crate::strategy::{Context, Plan, Strategy};

/// Heals hung calls: after an attempt overran its deadline (the site's `timeout`, or a timeout
/// reported by the dependency), re-runs at once with a fresh deadline.
///
/// For `async` sites the deadline cancels the attempt by dropping its future. A sync function
/// cannot be interrupted safely, so for sync sites the deadline is checked when the attempt
/// returns: an `Ok` that overran is still returned (the work is done) and counted as a slow call;
/// an error that overran is diagnosed as a timeout.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeout;

impl Strategy for Timeout {
    fn name(&self) -> &'static str {
        "timeout"
    }

    fn prior(&self, diagnosis: &Diagnosis) -> f64 {
        match diagnosis.class {
            ErrorClass::Timeout => 0.7,
            _ => 0.0,
        }
    }

    fn plan(&self, _cx: &Context<'_>) -> Plan {
        Plan::Rerun {
            delay: Duration::ZERO,
            hook: None,
        }
    }
}
