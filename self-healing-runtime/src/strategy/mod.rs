//! Healing strategies: each decides *what to do* about a diagnosed failure; the typed interceptor
//! does it, so a healed value is always of the function's own return type.

mod builtin;

use std::fmt;
use std::time::Duration;

pub use builtin::{
    Bulkhead, CachedValue, CircuitBreaker, CredentialRefresh, Escalate, Fallback, RateLimitWait,
    Reconnect, Retry, Timeout, builtin_strategies,
};

use crate::Site;
use crate::diagnosis::Diagnosis;
use crate::hooks::HookKind;

/// What a strategy asks the interceptor to do.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Plan {
    /// Run the body again, after `delay`, after running `hook` first (if any).
    Rerun {
        /// How long to wait first (never slept when zero).
        delay: Duration,
        /// A hook to run before the re-run (reconnect, refresh, or a custom one).
        hook: Option<HookKind>,
    },
    /// Wait for a free slot of the site's bulkhead, then run the body again.
    RerunWhenCapacity,
    /// Serve the declared `fallback`.
    Fallback,
    /// Serve the last good value for the same arguments.
    Cached,
    /// Stop healing and return the error now (the dependency is down).
    FailFast,
    /// Stop healing, raise the severity, notify, and return the error.
    Escalate,
    /// This strategy cannot act on this failure; the next one is tried.
    NotApplicable(&'static str),
}

/// What a strategy sees when asked for a plan.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The failing site.
    pub site: &'static Site,
    /// The diagnosis of the failure.
    pub diagnosis: &'a Diagnosis,
    /// The attempt that failed (1 for the first call).
    pub attempt: u32,
    /// The attempt cap for this call.
    pub max_attempts: u32,
    /// Time since the call started.
    pub elapsed: Duration,
    /// Whether a fallback is declared for this site.
    pub has_fallback: bool,
    /// Whether this site caches last-good values.
    pub has_cache: bool,
    /// Whether the site has a bulkhead.
    pub has_bulkhead: bool,
    /// Whether a reconnect hook is registered for this site.
    pub has_reconnect_hook: bool,
    /// Whether a credential-refresh hook is registered for this site.
    pub has_refresh_hook: bool,
    /// Whether this attempt was refused by the site's open circuit (the body did not run).
    pub circuit_open: bool,
    /// How many times this strategy already acted during this call.
    pub uses: u32,
    /// Backoff settings of the healer.
    pub backoff: crate::backoff::Backoff,
    /// A uniform random number in [0, 1) for jitter, from the healer's seeded generator.
    pub random: f64,
}

/// A healing strategy.
///
/// Object-safe: the healer holds `Arc<dyn Strategy>`. A strategy only decides; it never runs the
/// body or sleeps itself. That keeps every strategy usable from sync and async sites alike and
/// lets the interceptor enforce the safety rails (idempotency, attempt caps, the retry budget)
/// for built-in and custom strategies the same way.
///
/// # Example: a custom strategy
///
/// ```
/// use std::time::Duration;
/// use self_healing_runtime::diagnosis::{Diagnosis, ErrorClass};
/// use self_healing_runtime::strategy::{Context, Plan, Strategy};
/// use self_healing_runtime::hooks::HookKind;
///
/// /// Clears a local cache (a custom hook registered under "clear-cache") and re-runs once,
/// /// for failures of the `catalog` source that look like stale data.
/// #[derive(Debug)]
/// struct ClearCacheAndRerun;
///
/// impl Strategy for ClearCacheAndRerun {
///     fn name(&self) -> &'static str { "clear_cache" }
///
///     fn prior(&self, diagnosis: &Diagnosis) -> f64 {
///         if diagnosis.class == ErrorClass::Permanent { 0.3 } else { 0.0 }
///     }
///
///     fn plan(&self, cx: &Context<'_>) -> Plan {
///         if cx.site.source() != "catalog" || cx.attempt > 1 {
///             return Plan::NotApplicable("only the first failure of `catalog`");
///         }
///         Plan::Rerun { delay: Duration::ZERO, hook: Some(HookKind::Custom("clear-cache")) }
///     }
/// }
///
/// let strategy: std::sync::Arc<dyn Strategy> = std::sync::Arc::new(ClearCacheAndRerun);
/// assert_eq!(strategy.name(), "clear_cache");
/// ```
pub trait Strategy: Send + Sync + fmt::Debug + 'static {
    /// A unique, stable snake_case name: the key of learned statistics.
    fn name(&self) -> &'static str;

    /// How likely this strategy is to heal a failure of this kind, before any learning, from 0
    /// to 1. Zero means "never applies": the strategy is not considered.
    fn prior(&self, diagnosis: &Diagnosis) -> f64;

    /// What to do about this failure.
    fn plan(&self, cx: &Context<'_>) -> Plan;

    /// Guards run before the learned ranking, in registration order (the circuit breaker).
    fn is_guard(&self) -> bool {
        false
    }
}
