//! `clear_cache`: drop the local cache a failure may come from, then re-run once.

use std::time::Duration;

use crate::diagnosis::{Diagnosis, ErrorClass};
use crate::hooks::HookKind;
use crate::strategy::{Context, Plan, Strategy};

/// Runs the site's clear-cache hook ([`HealerBuilder::on_clear_cache`](crate::HealerBuilder::on_clear_cache))
/// and re-runs once: for failures that stale local data explains (a cached id that no longer
/// exists, a cached schema or token that changed). Without a hook for the site it does not
/// apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClearCache;

impl Strategy for ClearCache {
    fn name(&self) -> &'static str {
        "clear_cache"
    }

    fn prior(&self, diagnosis: &Diagnosis) -> f64 {
        match diagnosis.class {
            // "Not found", "constraint violated", "version mismatch": fresh data may settle it
            // where a plain re-run cannot. Above `escalate` (0.2) even with the hook's cost:
            // a site that registered the hook expects it tried before admins are called.
            ErrorClass::Permanent => 0.5,
            ErrorClass::Transient => 0.2,
            _ => 0.0,
        }
    }

    fn plan(&self, cx: &Context<'_>) -> Plan {
        if !cx.has_hook(HookKind::ClearCache) {
            return Plan::NotApplicable("no clear-cache hook registered for this site");
        }
        if cx.uses > 0 {
            return Plan::NotApplicable("already cleared the cache once for this call");
        }
        Plan::Rerun {
            delay: Duration::ZERO,
            hook: Some(HookKind::ClearCache),
        }
    }
}
