use std::time::Duration;

use crate::diagnosis::{Diagnosis, ErrorClass};
use crate::hooks::HookKind;
use crate::strategy::{Context, Plan, Strategy};

/// Runs the registered credential-refresh hook (new token), then re-runs once. Heals expired
/// credentials (401). Without a hook for the site it does not apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct CredentialRefresh;

impl Strategy for CredentialRefresh {
    fn name(&self) -> &'static str {
        "credential_refresh"
    }

    fn prior(&self, diagnosis: &Diagnosis) -> f64 {
        match diagnosis.class {
            ErrorClass::AuthExpired => 0.9,
            _ => 0.0,
        }
    }

    fn plan(&self, cx: &Context<'_>) -> Plan {
        if !cx.has_refresh_hook {
            return Plan::NotApplicable("no credential-refresh hook registered for this site");
        }
        if cx.uses > 0 {
            return Plan::NotApplicable("already ran its hook once for this call");
        }
        Plan::Rerun {
            delay: Duration::ZERO,
            hook: Some(HookKind::RefreshCredentials),
        }
    }
}
