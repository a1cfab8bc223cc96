//! The ten built-in strategies, one file each. Priors are the rule table: how likely each
//! strategy heals each class before anything was learned.

mod bulkhead;
mod cached_value;
mod circuit_breaker;
mod clear_cache;
mod credential_refresh;
mod default_value;
mod escalate;
mod fallback;
mod queue_for_later;
mod rate_limit_wait;
mod reconnect;
mod retry;
mod rollback;
mod skip;
mod switch_endpoint;
mod timeout;

use std::sync::Arc;

pub use bulkhead::Bulkhead;
pub use cached_value::CachedValue;
pub use circuit_breaker::CircuitBreaker;
pub use clear_cache::ClearCache;
pub use credential_refresh::CredentialRefresh;
pub use default_value::DefaultValue;
pub use escalate::Escalate;
pub use fallback::Fallback;
pub use queue_for_later::QueueForLater;
pub use rate_limit_wait::RateLimitWait;
pub use reconnect::Reconnect;
pub use retry::Retry;
pub use rollback::Rollback;
pub use skip::Skip;
pub use switch_endpoint::SwitchEndpoint;
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
        Arc::new(Rollback),
        Arc::new(SwitchEndpoint),
        Arc::new(ClearCache),
        Arc::new(DefaultValue),
        Arc::new(Skip),
        Arc::new(QueueForLater),
    ]
}
