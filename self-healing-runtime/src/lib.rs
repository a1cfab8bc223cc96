//! The runtime of self-healing: what happens between an error in a wrapped function and the value
//! its caller gets back.
//!
//! Most users depend on the `self-healing` facade and never name this crate. The pieces:
//!
//! - [`Healer`]: the configured healer, installed once per process (or scoped for tests);
//! - the typed interceptor that `#[self_healing]` expands into;
//! - diagnosis ([`Analyzer`], [`RuleAnalyzer`], [`Diagnosis`]);
//! - the sixteen built-in [`Strategy`] implementations and the selector that ranks them;
//! - events ([`HealingEvent`], [`Outcome`], [`EventStore`], [`InMemoryStore`]).

pub mod backoff;
pub mod breaker;
pub mod budget;
mod call_key;
#[cfg(feature = "chaos")]
pub mod chaos;
pub mod circuit_control;
mod clock;
mod decide;
mod default_store;
pub mod diagnosis;
mod driver;
pub mod endpoints;
mod error_ops;
pub mod event;
pub mod fleet;
mod flush;
mod heal_fn;
mod healer;
pub mod health;
pub mod hooks;
#[cfg(any(feature = "llm", feature = "notify"))]
mod http_client;
#[cfg(feature = "reqwest")]
pub mod http_status;
mod injected;
#[cfg(feature = "llm")]
pub mod llm;
#[cfg(feature = "metrics")]
pub mod metrics;
mod nesting;
#[cfg(feature = "notify")]
pub mod notify;
pub mod outbox;
mod pacer;
mod queue;
mod rejected;
pub mod rollback;
pub mod scope;
pub mod scrub;
pub mod selection;
#[cfg(any(feature = "llm", feature = "notify"))]
mod setting_error;
pub mod settings;
mod site;
mod site_state;
mod site_table;
pub mod strategy;
#[cfg(feature = "tower")]
pub mod tower;

#[doc(hidden)]
pub mod __private;

pub use breaker::{BreakerConfig, CircuitState};
pub use budget::BudgetConfig;
pub use call_key::{
    CallKey, ParseCallKeyError, WithCallKey, call_key, with_call_key, with_call_key_sync,
};
pub use diagnosis::{Analyzer, Diagnosis, ErrorClass, Fingerprint, RuleAnalyzer, Severity};
pub use error_ops::ErrorOps;
pub use event::{EventStore, HealingEvent, InMemoryStore, Outcome};
pub use flush::FlushError;
pub use heal_fn::{heal, heal_blocking, heal_blocking_with, heal_with};
pub use healer::{ConfigError, Healer, HealerBuilder, WithHealer, WithHealerExt, with_healer};
pub use hooks::{HookKind, HookScope};
pub use injected::{FaultKind, InjectedFault};
pub use queue::QueueStats;
pub use rejected::Rejected;
#[cfg(any(feature = "llm", feature = "notify"))]
pub use setting_error::SettingError;
pub use site::{Answer, Category, Site, SiteInfo, SiteOptions, SiteReport, UnknownCategory, sites};
pub use strategy::{Plan, Strategy};
