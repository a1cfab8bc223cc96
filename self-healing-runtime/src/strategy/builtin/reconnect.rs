use std::time::Duration;

use crate::diagnosis::{Diagnosis, ErrorClass};
use crate::hooks::HookKind;
use crate::strategy::{Context, Plan, Strategy};

/// Runs the registered reconnect hook (e.g. rebuild a connection pool), then re-runs once.
/// Heals lost connections. Without a hook for the site it does not apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reconnect;

impl Strategy for Reconnect {
    fn name(&self) -> &'static str {
        "reconnect"
    }

    fn prior(&self, diagnosis: &Diagnosis) -> f64 {
        match diagnosis.class {
            ErrorClass::ConnectionLost => 0.85,
            ErrorClass::Transient | ErrorClass::Timeout => 0.2,
            _ => 0.0,
        }
    }

    fn plan(&self, cx: &Context<'_>) -> Plan {
        if !cx.has_reconnect_hook {
            return Plan::NotApplicable("no reconnect hook registered for this site");
        }
        if cx.uses > 0 {
            return Plan::NotApplicable("already ran its hook once for this call");
        }
        Plan::Rerun {
            delay: Duration::ZERO,
            hook: Some(HookKind::Reconnect),
        }
    }
}
