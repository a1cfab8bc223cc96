//! The ten built-in strategies, one file each. Priors are the rule table: how likely each
//! strategy heals each class before anything was learned.

mod bulkhead;
mod cached_value;
mod circuit_breaker;
mod credential_refresh;
mod escalate;
mod fallback;
mod rate_limit_wait;
mod reconnect;
mod retry;
mod timeout;

use std::sync::Arc;

pub use bulkhead::Bulkhead;
pub use cached_value::CachedValue;
pub use circuit_breaker::CircuitBreaker;
pub use credential_refresh::CredentialRefresh;
pub use escalate::Escalate;
pub use fallback::Fallback;
pub use rate_limit_wait::RateLimitWait;
pub use reconnect::Reconnect;
pub use retry::Retry;
pub use timeout::Timeout;

use super::Strategy;

/// The ten built-in strategies, guards first.
pub fn builtin_strategies() -> Vec<Arc<dyn Strategy>> {
    vec![
        Arc::new(CircuitBreaker),
        Arc::new(Retry),
        Arc::new(Timeout),
        Arc::new(RateLimitWait),
        Arc::new(Reconnect),
        Arc::new(CredentialRefresh),
        Arc::new(Bulkhead),
        Arc::new(Fallback),
        Arc::new(CachedValue),
        Arc::new(Escalate),
    ]
}
