//! The fault layer: a seeded RNG decides, per call, which real fault a CRM action runs into.
//!
//! Each client of the load driver draws from a stream of its own ([`Faults::for_client`]), so
//! the faults a client meets do not depend on how the clients interleave: the same seed gives
//! every client the same faults in the same order. Calls outside a client (the HTTP API) share
//! one stream.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How often each fault class strikes (probabilities per call, 0–1).
#[derive(Debug, Clone)]
pub struct FaultRates {
    /// `database is locked` before the statement runs.
    pub locked: f64,
    /// The connection dies: the pool is dropped, the call fails with `connection reset`.
    pub lost_connection: f64,
    /// A write committed, then the connection reset before the answer arrived.
    pub reset_after_commit: f64,
    /// A read stalls for [`FaultRates::slow_for`] (longer than its timeout).
    pub slow: f64,
    /// How long a slow call stalls.
    pub slow_for: Duration,
}

impl Default for FaultRates {
    fn default() -> Self {
        FaultRates {
            locked: 0.06,
            lost_connection: 0.015,
            reset_after_commit: 0.02,
            slow: 0.04,
            slow_for: Duration::from_millis(400),
        }
    }
}

tokio::task_local! {
    /// The fault stream of the load-driver client this task is.
    static CLIENT_RNG: std::cell::RefCell<fastrand::Rng>;
}

/// What the fault layer decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DbFault {
    None,
    Locked,
    LostConnection,
    ResetAfterCommit,
    Slow,
}

/// The fault layer's state.
#[derive(Debug)]
pub(crate) struct Faults {
    seed: u64,
    /// The stream of calls outside a load-driver client.
    rng: Mutex<fastrand::Rng>,
    pub(crate) rates: FaultRates,
    outage: AtomicBool,
    pub(crate) injected: [AtomicU64; 5],
}

impl Faults {
    pub(crate) fn new(seed: u64, rates: FaultRates) -> Faults {
        Faults {
            seed,
            rng: Mutex::new(fastrand::Rng::with_seed(seed ^ 0x5eed_fa17)),
            rates,
            outage: AtomicBool::new(false),
            injected: Default::default(),
        }
    }

    /// Runs `client` (one client of the load driver) with a fault stream of its own, seeded
    /// from the run's seed and `id`.
    pub(crate) async fn for_client<F: std::future::Future>(&self, id: u64, client: F) -> F::Output {
        let rng = fastrand::Rng::with_seed(self.seed ^ 0x5eed_fa17 ^ id.wrapping_mul(0x9e37_79b9));
        CLIENT_RNG.scope(std::cell::RefCell::new(rng), client).await
    }

    pub(crate) fn db(&self, write: bool) -> DbFault {
        let roll = CLIENT_RNG
            .try_with(|rng| rng.borrow_mut().f64())
            .unwrap_or_else(|_| self.rng.lock().expect("fault rng").f64());
        let r = &self.rates;
        let mut edge = r.locked;
        let fault = if roll < edge {
            DbFault::Locked
        } else if roll < {
            edge += r.lost_connection;
            edge
        } {
            DbFault::LostConnection
        } else if write && roll < edge + r.reset_after_commit {
            DbFault::ResetAfterCommit
        } else if !write && roll < edge + r.slow {
            DbFault::Slow
        } else {
            DbFault::None
        };
        let idx = match fault {
            DbFault::None => return fault,
            DbFault::Locked => 0,
            DbFault::LostConnection => 1,
            DbFault::ResetAfterCommit => 2,
            DbFault::Slow => 3,
        };
        self.injected[idx].fetch_add(1, Ordering::Relaxed);
        fault
    }

    pub(crate) fn set_outage(&self, on: bool) {
        self.outage.store(on, Ordering::Relaxed);
    }

    pub(crate) fn outage(&self) -> bool {
        let on = self.outage.load(Ordering::Relaxed);
        if on {
            self.injected[4].fetch_add(1, Ordering::Relaxed);
        }
        on
    }

    pub(crate) fn injected(&self) -> Vec<(&'static str, u64)> {
        [
            "locked",
            "lost_connection",
            "reset_after_commit",
            "slow",
            "outage",
        ]
        .into_iter()
        .zip(self.injected.iter().map(|c| c.load(Ordering::Relaxed)))
        .collect()
    }
}
