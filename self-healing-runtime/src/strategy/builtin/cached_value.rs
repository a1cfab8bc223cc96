use crate::diagnosis::{Diagnosis, ErrorClass};
use crate::strategy::{Context, Plan, Strategy};

/// Serves the last good value returned for the same arguments, if it is younger than the site's
/// `cache` max age. Heals reads while a dependency is down. Opt-in per site (`cache = "30s"`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CachedValue;

impl Strategy for CachedValue {
    fn name(&self) -> &'static str {
        "cached_value"
    }

    fn prior(&self, diagnosis: &Diagnosis) -> f64 {
        match diagnosis.class {
            // Stale data is no answer to "not found" or to a defect.
            ErrorClass::Permanent | ErrorClass::Bug => 0.0,
            _ => 0.25,
        }
    }

    fn plan(&self, cx: &Context<'_>) -> Plan {
        if cx.has_cache {
            Plan::Cached
        } else {
            Plan::NotApplicable("this site does not cache values (`cache = \"..\"`)")
        }
    }
}
