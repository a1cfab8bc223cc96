//! Healing strategies: each decides *what to do* about a diagnosed failure; the typed interceptor
//! does it, so a healed value is always of the function's own return type.

mod builtin;

use std::fmt;
use std::time::Duration;

pub use builtin::{
    Bulkhead, CachedValue, CircuitBreaker, ClearCache, CredentialRefresh, DefaultValue, Escalate,
    Fallback, QueueForLater, RateLimitWait, Reconnect, Retry, Rollback, Skip, SwitchEndpoint,
    Timeout, builtin_strategies,
};

use crate::diagnosis::Diagnosis;
use crate::hooks::HookKind;
use crate::{CallKey, Site};

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
    /// Run `hook` for this call (it sees the call's context), then let the call fail with its
    /// error: compensations, alerts, anything that must happen before a failure goes back.
    RunHookThenFail(HookKind),
    /// This strategy cannot act on this failure; the next one is tried.
    NotApplicable(&'static str),
}

/// What a strategy sees when asked for a plan.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Context<'a> {
    /// The failing site.
    pub site: &'static Site,
    /// The diagnosis of the failure.
    pub diagnosis: &'a Diagnosis,
    /// The failure itself (a [`Rejected`](crate::Rejected) when a guard or a timeout ended the
    /// attempt): downcast it to your own error type to look inside.
    pub error: &'a (dyn std::error::Error + 'static),
    /// The call's idempotency key (keyed and `queue_for_later` sites).
    pub call_key: Option<CallKey>,
    /// This call replays an entry of the outbox (it must not be queued again).
    pub replay: bool,
    /// The failed attempt's effects were undone whole: its transaction rolled back, or its
    /// saga compensated (see [`rollback`](crate::rollback)). Re-running it is safe even when the
    /// site is not idempotent.
    pub rolled_back: bool,
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
    /// The healer's hooks, for [`has_hook`](Self::has_hook).
    pub(crate) hooks: &'a crate::hooks::Hooks,
}

impl Context<'_> {
    /// Whether a hook of `kind` serves this site (a strategy whose plan needs a hook returns
    /// [`Plan::NotApplicable`] without one, instead of being refused for it at every failure).
    pub fn has_hook(&self, kind: HookKind) -> bool {
        self.hooks.has(kind, self.site)
    }
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
/// /// Purges the catalog's local copy (a custom hook registered under "purge-catalog") and
/// /// re-runs once, for failures of the `catalog` source that look like stale data.
/// #[derive(Debug)]
/// struct PurgeCatalog;
///
/// impl Strategy for PurgeCatalog {
///     fn name(&self) -> &'static str { "purge_catalog" }
///
///     fn prior(&self, diagnosis: &Diagnosis) -> f64 {
///         if diagnosis.class == ErrorClass::Permanent { 0.3 } else { 0.0 }
///     }
///
///     fn plan(&self, cx: &Context<'_>) -> Plan {
///         if cx.site.source() != "catalog" || cx.attempt > 1 {
///             return Plan::NotApplicable("only the first failure of `catalog`");
///         }
///         Plan::Rerun { delay: Duration::ZERO, hook: Some(HookKind::Custom("purge-catalog")) }
///     }
/// }
///
/// let strategy: std::sync::Arc<dyn Strategy> = std::sync::Arc::new(PurgeCatalog);
/// assert_eq!(strategy.name(), "purge_catalog");
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

    /// Last resorts run after every other strategy that applies, whatever their learned heal
    /// rates: what a call falls back on when healing cannot succeed now (`queue_for_later`).
    fn is_last_resort(&self) -> bool {
        false
    }
}
