//! Make fallible functions heal themselves.
//!
//! Annotate a function that returns `Result` and leave its body alone:
//!
//! ```
//! use self_healing::self_healing;
//!
//! #[derive(Debug, thiserror::Error)]
//! enum DbError {
//!     #[error("database unavailable: deadlock detected")]
//!     Deadlock,
//!     // A call the healer refused (open circuit, full bulkhead, timeout): every wrapped
//!     // function's error type must be able to represent one.
//!     #[error(transparent)]
//!     Rejected(#[from] self_healing::Rejected),
//! }
//!
//! #[self_healing(source = "createContact", category = "database")]
//! async fn create_contact(name: String) -> Result<u64, DbError> {
//!     # let _ = name;
//!     Ok(42)
//! }
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! # assert_eq!(create_contact("Ada".into()).await.unwrap(), 42);
//! # }
//! ```
//!
//! When the function fails, the installed [`Healer`] diagnoses the error (typed rules first, then
//! message rules biased by the category), picks a healing strategy from what has worked before for
//! that family of errors, runs it, and returns either a healed value of the function's own type or
//! the error of the last attempt (as tower, Polly and backon do: it describes the dependency as it
//! is now; a failed `fallback` gives the call's own last error back). Each healing event goes to an
//! [`EventStore`] through a bounded queue; the caller never waits for it.
//!
//! With no healer installed, a wrapped function behaves exactly like the original. Its success
//! path, with or without a healer, costs one atomic load and one relaxed increment (the site's
//! success counter, which the circuit reads) and allocates nothing.
//!
//! # Installing a healer
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use self_healing::{Category, Healer, InMemoryStore};
//!
//! let store = InMemoryStore::new();
//! Healer::builder()
//!     .store(store.clone())
//!     .on_reconnect(Category::Database, || async { /* rebuild the pool */ Ok(()) })
//!     .build()?
//!     .install()?;
//! # Ok(()) }
//! ```
//!
//! # Where events go
//!
//! With the `sqlite` feature (on by default), a healer built without
//! [`store`](HealerBuilder::store) persists to the Diesel store (`DieselStore`) at `DATABASE_URL`
//! (`sqlite://PATH`, or `postgres://…` with the `postgres` feature), else at
//! `sqlite://self-healing.db` in the working directory: where the `self-healing` CLI and the
//! dashboard look by default. It is opened without waiting for the database, and a bad
//! `DATABASE_URL` is an error from [`build`](HealerBuilder::build) naming it. Opt out with
//! `.store(InMemoryStore::new())` (bounded: the newest 10,000 records).
//!
//! Before the program exits, [`Healer::flush`] or [`Healer::shutdown`] commits every event
//! recorded so far, or returns a [`FlushError`] saying why it could not.
//! [`Healer::from_env`] reads every documented environment variable.
//!
//! # The attribute's options
//!
//! | option | meaning |
//! |---|---|
//! | `source = "createContact"` | the name in events and on the dashboard (default: the function name) |
//! | `category = "database"` | `database`, `api`, `runtime` (default) or `performance` |
//! | `fallback = path::to_fn` | a function with the same signature, served when healing by re-running fails |
//! | `idempotent = false` | never re-run unless the call provably never reached the other side |
//! | `timeout = "2s"` | deadline of each attempt (async: cancels it) |
//! | `max_attempts = 3` | attempts in all, the first included |
//! | `cache = "30s"` | keep the last good value per arguments and serve it while the dependency is down |
//! | `cache_skip(db)` | arguments left out of the cache key; a method's receiver is part of the key (`Self: Hash`) unless `cache_skip(self)` |
//! | `catch_panic = true` | a panic in the body becomes a failure of class `bug` |
//! | `fail_fast = false` | for an error type without `From<Rejected>` (another crate's): the guards let every call run |
//! | `crate = "path"` | where to find this crate if it is renamed |
//!
//! The error type must implement `From<`[`Rejected`]`>`, checked at compile time: the circuit
//! breaker, the bulkhead and timeouts answer a call without the body producing an error.
//! `std::io::Error`, `anyhow::Error` and `Box<dyn Error + Send + Sync>` already do.
//!
//! Misuse is a compile error that points at the offending tokens: applying the attribute twice, an
//! unknown category or option, a placeholder `source`, a function that does not return `Result`,
//! an error type without `From<Rejected>`, an owned argument that is not `Clone`, a `fallback`
//! whose signature does not match.
//!
//! # Closures and blocks
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use self_healing::{heal, site};
//!
//! let rates = heal(site!(source = "fetchRates", category = "api"), || async {
//!     Ok::<_, std::io::Error>(vec![1.08, 0.86])
//! })
//! .await;
//! assert!(rates.is_ok());
//! # }
//! ```
//!
//! # The integration checklist
//!
//! [`sites()`] lists every wrapped function of the program at startup, before any call failed.

pub use self_healing_macros::{self_healing, site};
/// Registers error types that declare what kind of failure they are
/// ([`diagnosis::DeclaresFailure`]).
pub use self_healing_runtime::declare_failures;
pub use self_healing_runtime::{
    Analyzer, Answer, BreakerConfig, BudgetConfig, CallKey, Category, CircuitState, ConfigError,
    Diagnosis, ErrorClass, ErrorOps, EventStore, FaultKind, Fingerprint, FlushError, Healer,
    HealerBuilder, HealingEvent, HookKind, HookScope, InMemoryStore, InjectedFault, Outcome, Plan,
    QueueStats, Rejected, RuleAnalyzer, Severity, Site, SiteInfo, SiteOptions, SiteReport,
    Strategy, UnknownCategory, WithHealer, WithHealerExt, call_key, heal, heal_blocking,
    heal_blocking_with, heal_with, sites, with_call_key, with_call_key_sync, with_healer,
};

/// Diagnosis: error classes, severities, fingerprints and analyzers.
pub use self_healing_runtime::diagnosis;
/// Alternate endpoints of a site, for the `switch_endpoint` strategy.
pub use self_healing_runtime::endpoints;
/// Healing events and the stores that keep them.
pub use self_healing_runtime::event;
/// Hooks run by strategies before a re-run.
pub use self_healing_runtime::hooks;
/// The outbox of `queue_for_later` sites.
pub use self_healing_runtime::outbox;
/// Undoing an attempt whole (transactions, sagas), for the `rollback` strategy.
pub use self_healing_runtime::rollback;
/// Scrubbing secrets and personal data out of messages.
pub use self_healing_runtime::scrub;
/// Learned statistics and strategy selection.
pub use self_healing_runtime::selection;
/// Per-site settings: by category and by source, in code or `self-healing.toml`.
pub use self_healing_runtime::settings;
/// The healing strategies and the trait to write your own.
pub use self_healing_runtime::strategy;

/// The Diesel store: SQLite embedded by default, PostgreSQL for fleets (features `sqlite`,
/// `postgres`).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use self_healing_store as store;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use self_healing_store::DieselStore;

/// The `/platform/system-health` dashboard (feature `dashboard`).
#[cfg(feature = "dashboard")]
pub use self_healing_dashboard as dashboard;

/// Fault injection for wrapped sites (feature `chaos`): test what healing does.
#[cfg(feature = "chaos")]
pub use self_healing_runtime::chaos;
/// Health checks and their scheduler.
pub use self_healing_runtime::health;
/// An HTTP error status that keeps its Retry-After and body (feature `reqwest`).
#[cfg(feature = "reqwest")]
pub use self_healing_runtime::http_status;
/// LLM diagnosis (feature `llm`).
#[cfg(feature = "llm")]
pub use self_healing_runtime::llm;
/// Metrics through the `metrics` facade (feature `metrics`).
#[cfg(feature = "metrics")]
pub use self_healing_runtime::metrics;
/// Admin notifications (feature `notify`).
#[cfg(feature = "notify")]
pub use self_healing_runtime::notify;
/// Tower middleware (feature `tower`): [`HealingLayer`](tower::HealingLayer) heals any
/// `tower::Service`.
#[cfg(feature = "tower")]
pub use self_healing_runtime::tower;

/// The Diesel store as the default store of healers built without one (see
/// [`HealerBuilder::store`]).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod default_store {
    use std::sync::Arc;

    use self_healing_runtime::__private::{DEFAULT_STORES, DefaultStore};
    use self_healing_runtime::EventStore;

    // rustc keeps `#[used]` statics of every linked crate, so this is registered in any program
    // that links the facade with a store feature, even one that names nothing of this module
    // (tests/persist.rs checks it).
    #[self_healing_runtime::__private::linkme::distributed_slice(DEFAULT_STORES)]
    #[linkme(crate = self_healing_runtime::__private::linkme)]
    static DIESEL: DefaultStore = DefaultStore {
        name: "diesel",
        open,
    };

    fn open(database_url: Option<&str>) -> Result<Arc<dyn EventStore>, String> {
        match self_healing_store::DieselStore::open_default(database_url) {
            Ok(store) => Ok(Arc::new(store)),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[doc(hidden)]
pub mod __private {
    pub use self_healing_runtime::__private::*;
}
