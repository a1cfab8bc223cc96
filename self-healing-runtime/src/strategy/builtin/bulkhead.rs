use crate::diagnosis::{Diagnosis, ErrorClass};
use crate::strategy::{Context, Plan, Strategy};

/// Caps the concurrent calls of a site (configured with `HealerBuilder::bulkhead`). Before a call,
/// a full bulkhead sheds it with [`Rejected::Shed`](crate::Rejected::Shed); after an overload
/// failure, it re-runs once a slot is free, so the re-run does not add to the overload.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bulkhead;

impl Strategy for Bulkhead {
    fn name(&self) -> &'static str {
        "bulkhead"
    }

    fn prior(&self, diagnosis: &Diagnosis) -> f64 {
        match diagnosis.class {
            ErrorClass::ResourceExhausted => 0.6,
            _ => 0.0,
        }
    }

    fn plan(&self, cx: &Context<'_>) -> Plan {
        if cx.has_bulkhead {
            Plan::RerunWhenCapacity
        } else {
            Plan::NotApplicable("no bulkhead configured for this site")
        }
    }
}
