//! The store a healer persists to when it was given none, and checks of settings that other
//! crates read, both registered at link time.
//!
//! The runtime cannot depend on the Diesel store (the store depends on the runtime), so the
//! crate that links both in registers a [`DefaultStore`] in [`DEFAULT_STORES`]: the facade
//! `self-healing` does with its `sqlite` or `postgres` feature. `HealerBuilder::build` opens it
//! when no `.store(..)` was given, and falls back to an
//! [`InMemoryStore`](crate::InMemoryStore) when nothing is registered. The dashboard registers an
//! [`EnvCheck`] for its secrets in [`ENV_CHECKS`], so `HealerBuilder::from_env` refuses a bad
//! `CRON_SECRET` at startup too.
//!
//! Registration is a `linkme` distributed slice, as for the call sites: rustc keeps the `#[used]`
//! statics of every linked crate, so an element is seen even when nothing names the crate that
//! holds it (the facade's `tests/persist.rs` checks this on every build).

use std::sync::Arc;

use crate::event::{EventStore, InMemoryStore};
use crate::healer::ConfigError;

/// The variable naming the default store's database.
pub(crate) const DATABASE_URL: &str = "DATABASE_URL";

/// A store for healers built without one: registered in `DEFAULT_STORES` by a crate that
/// provides persistence.
#[derive(Debug)]
pub struct DefaultStore {
    /// What it is, for logs (`"diesel"`).
    pub name: &'static str,
    /// Opens the store at `database_url` (`None`: `DATABASE_URL` is unset, use the default
    /// location) without waiting for the database: the builder is synchronous and a database
    /// that is down at startup must not stop the program. The error says why the URL cannot be
    /// used, with any password masked.
    pub open: OpenFn,
}

/// `DefaultStore::open`: the store at a URL, or why the URL cannot be used.
pub type OpenFn = fn(database_url: Option<&str>) -> Result<Arc<dyn EventStore>, String>;

/// The registered default stores; the first one is used. Crates add entries with
/// `#[linkme::distributed_slice(DEFAULT_STORES)]`.
#[linkme::distributed_slice]
pub static DEFAULT_STORES: [DefaultStore];

/// Reads one environment variable (or a stand-in for the environment, in tests).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A check of variables another crate reads (the dashboard's secrets), run by
/// `HealerBuilder::from_env` so that a bad value fails at startup, naming the variable.
#[derive(Debug)]
pub struct EnvCheck {
    /// Who registered it (`"dashboard"`).
    pub name: &'static str,
    /// Checks the variables: `Err((variable, reason))` for the first unusable one.
    pub check: fn(lookup: Lookup<'_>) -> Result<(), (&'static str, String)>,
}

/// The registered environment checks, all run by `HealerBuilder::from_env`.
#[linkme::distributed_slice]
pub static ENV_CHECKS: [EnvCheck];

/// Where a builder's events go.
pub(crate) enum StoreChoice {
    /// `HealerBuilder::store`.
    Given(Arc<dyn EventStore>),
    /// The registered default store, at this URL.
    Default(Url),
}

/// The URL of the default store, and which setting gave it (for errors).
pub(crate) enum Url {
    /// Read `DATABASE_URL` when the healer is built.
    FromEnv,
    /// Set by `HealerBuilder::database_url` (`"database_url"`), or read from a lookup by
    /// `from_env` (`"DATABASE_URL"`; `None` when unset).
    Given(Option<String>, &'static str),
}

impl Default for StoreChoice {
    fn default() -> Self {
        StoreChoice::Default(Url::FromEnv)
    }
}

impl StoreChoice {
    /// The store to write to: the given one, else the registered default store (opened now),
    /// else a new [`InMemoryStore`].
    pub(crate) fn resolve(self) -> Result<Arc<dyn EventStore>, ConfigError> {
        let url = match self {
            StoreChoice::Given(store) => return Ok(store),
            StoreChoice::Default(url) => url,
        };
        let (url, setting) = match url {
            Url::FromEnv => (nonempty(std::env::var(DATABASE_URL).ok()), DATABASE_URL),
            Url::Given(url, setting) => (nonempty(url), setting),
        };
        let Some(factory) = DEFAULT_STORES.first() else {
            if url.is_some() && setting != DATABASE_URL {
                return Err(ConfigError::Invalid {
                    setting: setting.to_owned(),
                    reason: "no persistent store is compiled in: enable the `sqlite` or \
                             `postgres` feature of `self-healing`, or pass `.store(..)`"
                        .to_owned(),
                });
            }
            // `DATABASE_URL` often names the application's own database: without a store
            // compiled in it is simply not ours to use.
            return Ok(Arc::new(InMemoryStore::new()));
        };
        (factory.open)(url.as_deref()).map_err(|reason| ConfigError::Invalid {
            setting: setting.to_owned(),
            reason,
        })
    }
}

fn nonempty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}
