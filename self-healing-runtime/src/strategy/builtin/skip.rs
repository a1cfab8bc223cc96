//! `skip`: work the site declared droppable (`skip`), dropped and recorded as skipped.

use crate::diagnosis::{Diagnosis, ErrorClass};
use crate::site::Answer;
use crate::strategy::{Context, Plan, Strategy};

/// Drops the work of a `skip` site (its function returns `Result<(), E>`) when healing cannot
/// do it: the call returns `Ok(())`, and its event says `skip` served it, never silently.
/// A last resort: every re-run that applies is tried first.
#[derive(Debug, Clone, Copy, Default)]
pub struct Skip;

impl Strategy for Skip {
    fn name(&self) -> &'static str {
        "skip"
    }

    fn prior(&self, diagnosis: &Diagnosis) -> f64 {
        match diagnosis.class {
            ErrorClass::Bug => 0.0,
            _ => 0.3,
        }
    }

    fn plan(&self, cx: &Context<'_>) -> Plan {
        match cx.site.options().answer() {
            Some(Answer::Skip) if cx.has_fallback => Plan::Fallback,
            _ => Plan::NotApplicable("no `skip` declared for this site"),
        }
    }

    fn is_last_resort(&self) -> bool {
        true
    }
}
