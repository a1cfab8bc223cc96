//! [`HealerBuilder::from_env`]: every documented environment variable, each read by the parser of
//! the module that owns it, and an error naming the first one that is unusable.

use super::{ConfigError, Healer, HealerBuilder};
use crate::default_store::{DATABASE_URL, ENV_CHECKS, StoreChoice, Url};

/// The variables of integrations compiled out by a feature: set anyway, they are worth a warning.
#[cfg(not(feature = "llm"))]
const LLM_VARIABLES: &[&str] = &["OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"];
#[cfg(not(feature = "notify"))]
const NOTIFY_VARIABLES: &[&str] = &[
    "SELF_HEALING_SLACK_WEBHOOK_URL",
    "SELF_HEALING_WEBHOOK_URL",
    "SELF_HEALING_EMAIL_API_URL",
];

impl Healer {
    /// [`HealerBuilder::from_env`]: a builder configured by the environment.
    ///
    /// # Errors
    /// As [`HealerBuilder::from_env`].
    pub fn from_env() -> Result<HealerBuilder, ConfigError> {
        HealerBuilder::from_env()
    }
}

impl HealerBuilder {
    /// A builder configured by the environment, on top of the defaults of
    /// [`Healer::builder`]; chain more settings, then [`build`](Self::build).
    ///
    /// | variable | what it sets |
    /// |---|---|
    /// | `DATABASE_URL` | the default store (see [`store`](Self::store)); default `sqlite://self-healing.db` |
    /// | `OPENAI_API_KEY`, `OPENAI_BASE_URL`, `OPENAI_MODEL` | LLM diagnosis (feature `llm`; no key: rules only) |
    /// | `SELF_HEALING_SLACK_WEBHOOK_URL`, `SELF_HEALING_WEBHOOK_URL` + `SELF_HEALING_WEBHOOK_SECRET`, `SELF_HEALING_EMAIL_API_URL` + `SELF_HEALING_EMAIL_API_KEY` + `SELF_HEALING_ADMIN_EMAILS` (+ `SELF_HEALING_EMAIL_FROM`), `SELF_HEALING_NOTIFY_WINDOW_MINUTES` | admin notifications (feature `notify`), added when a channel is configured |
    /// | `CRON_SECRET`, `SELF_HEALING_ADMIN_TOKEN` | checked when the dashboard is compiled in (it reads them itself) |
    ///
    /// Empty values count as unset. Variables of a feature that is off are ignored with a
    /// warning. `DATABASE_URL` is opened by `build`, and only if no `.store(..)` replaced the
    /// default store.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use self_healing_runtime::{HealerBuilder, InMemoryStore};
    ///
    /// let healer = HealerBuilder::from_env()?.max_attempts(4).store(InMemoryStore::new()).build()?;
    /// # let _ = healer; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] whose `setting` is the variable that is set but unusable (or
    /// missing, when it must come with another one).
    pub fn from_env() -> Result<HealerBuilder, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with another source of variables (tests, configuration
    /// files): `lookup` returns a variable's value, `None` when unset. `DATABASE_URL` too comes
    /// from `lookup`, never from the process environment.
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<HealerBuilder, ConfigError> {
        let builder = HealerBuilder {
            store: StoreChoice::Default(Url::Given(lookup(DATABASE_URL), DATABASE_URL)),
            ..HealerBuilder::default()
        };
        let builder = with_llm(builder, &lookup)?;
        let builder = with_notify(builder, &lookup)?;
        for check in ENV_CHECKS {
            (check.check)(&lookup).map_err(|(setting, reason)| ConfigError::Invalid {
                setting: setting.to_owned(),
                reason,
            })?;
        }
        Ok(builder)
    }

    /// The database of the default store (instead of `DATABASE_URL`): `sqlite://PATH`, a file
    /// path, or `postgres://…` with the `postgres` feature. Ignored when [`store`](Self::store)
    /// gives a store.
    ///
    /// # Errors
    /// [`build`](Self::build) fails naming `database_url` when the URL is unusable or no
    /// persistent store is compiled in.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.store = StoreChoice::Default(Url::Given(Some(url.into()), "database_url"));
        self
    }
}

/// Converts an integration's setting error into the builder's.
#[cfg(any(feature = "llm", feature = "notify"))]
fn invalid(e: crate::SettingError) -> ConfigError {
    ConfigError::Invalid {
        setting: e.setting.to_owned(),
        reason: e.reason,
    }
}

#[cfg(feature = "llm")]
fn with_llm(
    builder: HealerBuilder,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<HealerBuilder, ConfigError> {
    use crate::llm::{LlmAnalyzer, LlmConfig};
    let Some(config) = LlmConfig::from_lookup(lookup).map_err(invalid)? else {
        return Ok(builder);
    };
    Ok(builder.llm(LlmAnalyzer::new(config).map_err(invalid)?))
}

#[cfg(not(feature = "llm"))]
fn with_llm(
    builder: HealerBuilder,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<HealerBuilder, ConfigError> {
    warn_compiled_out(lookup, LLM_VARIABLES, "llm");
    Ok(builder)
}

#[cfg(feature = "notify")]
fn with_notify(
    builder: HealerBuilder,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<HealerBuilder, ConfigError> {
    let dispatcher = crate::notify::NotifyDispatcher::from_lookup(lookup).map_err(invalid)?;
    // The dispatcher always logs through tracing; only a configured channel makes it worth
    // adding, so `from_env` in an environment without notifications adds nothing.
    if dispatcher.channels().iter().all(|c| *c == "tracing") {
        return Ok(builder);
    }
    Ok(builder.notify(dispatcher))
}

#[cfg(not(feature = "notify"))]
fn with_notify(
    builder: HealerBuilder,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<HealerBuilder, ConfigError> {
    warn_compiled_out(lookup, NOTIFY_VARIABLES, "notify");
    Ok(builder)
}

#[cfg(any(not(feature = "llm"), not(feature = "notify")))]
fn warn_compiled_out(lookup: &dyn Fn(&str) -> Option<String>, variables: &[&str], feature: &str) {
    let set = variables
        .iter()
        .find(|name| lookup(name).is_some_and(|v| !v.trim().is_empty()));
    if let Some(name) = set {
        tracing::warn!(
            variable = name,
            feature,
            "self-healing: {name} is set but the `{feature}` feature is off; it is ignored"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemoryStore;

    /// Only `TEST_ONLY_SECRET`: the other tests of this crate never set it.
    // linkme places the element with `#[link_section]`; only a registration inside the crate
    // that declares the slice meets the lint (elsewhere it comes from an external macro).
    #[allow(unsafe_code)]
    #[linkme::distributed_slice(ENV_CHECKS)]
    static TEST_CHECK: crate::default_store::EnvCheck = crate::default_store::EnvCheck {
        name: "test",
        check: |lookup| match lookup("TEST_ONLY_SECRET") {
            Some(v) if v.len() < 4 => Err(("TEST_ONLY_SECRET", "too short".to_owned())),
            _ => Ok(()),
        },
    };

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn setting(e: ConfigError) -> String {
        match e {
            ConfigError::Invalid { setting, .. } => setting,
            other => panic!("not an invalid setting: {other}"),
        }
    }

    #[tokio::test]
    async fn an_empty_environment_gives_the_defaults() {
        let healer = HealerBuilder::from_lookup(env(&[]))
            .unwrap()
            .build()
            .unwrap();
        // No store is compiled into this crate's tests: events stay in memory.
        assert!(format!("{:?}", healer.store()).starts_with("InMemoryStore"));
        assert_eq!(healer.strategies().count(), 16);
    }

    #[tokio::test]
    async fn database_url_without_a_store_compiled_in() {
        // From the environment it may name the application's own database: not an error.
        let healer = HealerBuilder::from_lookup(env(&[(DATABASE_URL, "postgres://db/app")]))
            .unwrap()
            .build()
            .unwrap();
        assert!(format!("{:?}", healer.store()).starts_with("InMemoryStore"));
        // Asked for explicitly, it is.
        let e = Healer::builder()
            .database_url("sqlite://x.db")
            .build()
            .unwrap_err();
        assert_eq!(setting(e.clone()), "database_url");
        assert!(e.to_string().contains("`sqlite`"), "{e}");
        // A store given explicitly wins.
        Healer::builder()
            .database_url("sqlite://x.db")
            .store(InMemoryStore::new())
            .build()
            .unwrap();
    }

    #[test]
    fn registered_checks_run_and_name_their_variable() {
        let e = HealerBuilder::from_lookup(env(&[("TEST_ONLY_SECRET", "abc")])).unwrap_err();
        assert_eq!(setting(e), "TEST_ONLY_SECRET");
        HealerBuilder::from_lookup(env(&[("TEST_ONLY_SECRET", "abcdef")])).unwrap();
    }

    #[cfg(feature = "llm")]
    #[test]
    fn llm_variables_are_read_by_the_llm_parser() {
        let e = HealerBuilder::from_lookup(env(&[
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_BASE_URL", "not a url"),
        ]))
        .unwrap_err();
        assert_eq!(setting(e.clone()), "OPENAI_BASE_URL");
        assert!(!e.to_string().contains("sk-test"), "{e}");
        let with = HealerBuilder::from_lookup(env(&[("OPENAI_API_KEY", "sk-test")])).unwrap();
        let without = HealerBuilder::from_lookup(env(&[])).unwrap();
        assert_eq!(with.observers.len(), without.observers.len() + 1);
    }

    #[cfg(feature = "notify")]
    #[test]
    fn notify_variables_are_read_by_the_notify_parser() {
        let e = HealerBuilder::from_lookup(env(&[(
            "SELF_HEALING_WEBHOOK_URL",
            "https://ops.example.com/hook",
        )]))
        .unwrap_err();
        assert_eq!(setting(e), "SELF_HEALING_WEBHOOK_SECRET");
        let e = HealerBuilder::from_lookup(env(&[("SELF_HEALING_NOTIFY_WINDOW_MINUTES", "soon")]))
            .unwrap_err();
        assert_eq!(setting(e), "SELF_HEALING_NOTIFY_WINDOW_MINUTES");
        let with = HealerBuilder::from_lookup(env(&[(
            "SELF_HEALING_SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T/B/X",
        )]))
        .unwrap();
        let without = HealerBuilder::from_lookup(env(&[])).unwrap();
        assert_eq!(with.observers.len(), without.observers.len() + 1);
    }
}
