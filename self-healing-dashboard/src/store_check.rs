//! [`StoreCheck`]: a health check that runs a real query on the dashboard's store.

use self_healing_runtime::event::BoxFuture;
use self_healing_runtime::health::{CheckResult, HealthCheck, HealthContext, HealthStatus};
use self_healing_runtime::hooks::HookKind;
use self_healing_store::{DieselStore, EventFilter};
use tokio::time::Instant;

/// Healthy when the store answers a one-row query; degraded when it answers slowly (over 1 s)
/// or its writer is failing; unhealthy when it does not answer. On failure the reconnect hook
/// may run.
#[derive(Debug, Clone)]
pub struct StoreCheck {
    store: DieselStore,
}

impl StoreCheck {
    /// A check of `store`.
    pub fn new(store: DieselStore) -> Self {
        StoreCheck { store }
    }
}

impl HealthCheck for StoreCheck {
    fn name(&self) -> &str {
        "store"
    }

    fn check<'a>(&'a self, _cx: &'a HealthContext) -> BoxFuture<'a, CheckResult> {
        Box::pin(async move {
            let started = Instant::now();
            match self.store.events(&EventFilter::default(), None, 1).await {
                Ok(_) => {
                    let ms = started.elapsed().as_secs_f64() * 1_000.0;
                    let stats = self.store.stats();
                    let (status, detail) = if stats.unavailable {
                        (
                            HealthStatus::Degraded,
                            format!(
                                "store answered in {ms:.1} ms, but its writer is failing ({} calls buffered)",
                                stats.buffered
                            ),
                        )
                    } else if ms > 1_000.0 {
                        (
                            HealthStatus::Degraded,
                            format!("store answered slowly, in {ms:.0} ms"),
                        )
                    } else {
                        (
                            HealthStatus::Healthy,
                            format!("store answered in {ms:.1} ms"),
                        )
                    };
                    CheckResult::new(status, detail).with_value(ms)
                }
                Err(e) => {
                    CheckResult::new(HealthStatus::Unhealthy, format!("store unreachable: {e}"))
                }
            }
        })
    }

    fn healing_hook(&self) -> Option<HookKind> {
        Some(HookKind::Reconnect)
    }
}
