use crate::diagnosis::{Diagnosis, ErrorClass};
use crate::strategy::{Context, Plan, Strategy};

/// For failures no re-run can heal (defects, permanent errors): no re-run; the severity is raised,
/// admins are notified, the event is recorded, and the error goes back to the caller.
#[derive(Debug, Clone, Copy, Default)]
pub struct Escalate;

impl Strategy for Escalate {
    fn name(&self) -> &'static str {
        "escalate"
    }

    fn prior(&self, diagnosis: &Diagnosis) -> f64 {
        match diagnosis.class {
            ErrorClass::Bug => 1.0,
            // Below `fallback` (0.3): a declared fallback answers permanent errors first.
            ErrorClass::Permanent => 0.2,
            _ => 0.0,
        }
    }

    fn plan(&self, _cx: &Context<'_>) -> Plan {
        Plan::Escalate
    }
}
