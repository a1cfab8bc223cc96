//! `default_value`: the site's declared `default = <expr>`, for reads whose callers can live
//! without the real value.

use crate::diagnosis::{Diagnosis, ErrorClass};
use crate::site::Answer;
use crate::strategy::{Context, Plan, Strategy};

/// Serves the site's declared default value (`default = <expr>`, of the function's own type)
/// when healing cannot produce the real one. Only where declared: a site without `default`
/// never gets one. Ranked like a fallback: after the re-runs that are expected to heal.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultValue;

impl Strategy for DefaultValue {
    fn name(&self) -> &'static str {
        "default_value"
    }

    fn prior(&self, diagnosis: &Diagnosis) -> f64 {
        match diagnosis.class {
            // A defect is not hidden behind a default: it is escalated.
            ErrorClass::Bug => 0.0,
            _ => 0.3,
        }
    }

    fn plan(&self, cx: &Context<'_>) -> Plan {
        match cx.site.options().answer() {
            Some(Answer::Default(_)) if cx.has_fallback => Plan::Fallback,
            _ => Plan::NotApplicable("no `default` declared for this site"),
        }
    }
}
