use crate::diagnosis::{Diagnosis, ErrorClass};
use crate::strategy::{Context, Plan, Strategy};

/// Serves the site's declared `fallback` function, called with the same arguments.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fallback;

impl Strategy for Fallback {
    fn name(&self) -> &'static str {
        "fallback"
    }

    fn prior(&self, diagnosis: &Diagnosis) -> f64 {
        match diagnosis.class {
            // A defect in the body is not the fallback's business: escalate it.
            ErrorClass::Bug => 0.0,
            _ => 0.3,
        }
    }

    fn plan(&self, cx: &Context<'_>) -> Plan {
        if cx.has_fallback && cx.site.options().fallback().is_some() {
            Plan::Fallback
        } else {
            Plan::NotApplicable("no fallback declared for this site")
        }
    }
}
