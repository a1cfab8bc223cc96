//! `switch_endpoint`: move to the next healthy endpoint of the site's alternates, re-run there.

use std::time::Duration;

use crate::diagnosis::{Diagnosis, ErrorClass};
use crate::hooks::HookKind;
use crate::strategy::{Context, Plan, Strategy};

/// Marks the endpoint that failed as down and re-runs on the next healthy one of the site's
/// [`Endpoints`](crate::endpoints::Endpoints) (registered with
/// [`HealerBuilder::endpoints`](crate::HealerBuilder::endpoints)). When no other endpoint is
/// healthy the switch fails, and the next strategy is tried. Without endpoints for the site it
/// does not apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct SwitchEndpoint;

impl Strategy for SwitchEndpoint {
    fn name(&self) -> &'static str {
        "switch_endpoint"
    }

    fn prior(&self, diagnosis: &Diagnosis) -> f64 {
        match diagnosis.class {
            // The endpoint is unreachable or down: another one is the cure. Below `retry` for
            // a passing fault (a plain re-run stays where it is); a call whose re-run failed
            // there too switches next.
            ErrorClass::ConnectionLost | ErrorClass::CircuitOpen => 0.8,
            ErrorClass::Transient => 0.7,
            ErrorClass::Timeout | ErrorClass::ResourceExhausted => 0.6,
            // Another region or provider may have quota left.
            ErrorClass::RateLimited { .. } => 0.5,
            ErrorClass::AuthExpired | ErrorClass::Permanent | ErrorClass::Bug => 0.0,
        }
    }

    fn plan(&self, cx: &Context<'_>) -> Plan {
        if !cx.has_hook(HookKind::SwitchEndpoint) {
            return Plan::NotApplicable("no alternate endpoints registered for this site");
        }
        Plan::Rerun {
            delay: Duration::ZERO,
            hook: Some(HookKind::SwitchEndpoint),
        }
    }
}
