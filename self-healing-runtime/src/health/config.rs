//! Required configuration: environment variables and settings that must be present.

use std::fmt;
use std::sync::Arc;

use super::{CheckResult, HealthCheck, HealthContext, HealthStatus};
use crate::event::BoxFuture;

type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;
type Present = Arc<dyn Fn() -> bool + Send + Sync>;

/// One thing that must (or should) be configured.
#[derive(Clone)]
struct Item {
    name: String,
    source: Source,
    required: bool,
}

#[derive(Clone)]
enum Source {
    /// An environment variable, looked up through the check's lookup.
    Env,
    /// A setting of the application: the closure says whether it is present.
    Setting(Present),
}

/// Checks that configuration is present: unhealthy when a required environment variable or
/// setting is missing, degraded when only a recommended one is, healthy otherwise. The detail
/// names what is missing and never holds a value. A variable that is set but empty (or only
/// whitespace) counts as missing.
///
/// Named `config`; its measured value is the number of things missing. Variables are read from
/// the process environment at each check, or through [`lookup`](Self::lookup).
///
/// ```
/// use self_healing_runtime::health::RequiredConfig;
///
/// # let settings_smtp_host: Option<String> = None;
/// let check = RequiredConfig::env(["DATABASE_URL", "CRON_SECRET"])
///     .recommended_env("SELF_HEALING_SLACK_WEBHOOK_URL")
///     .setting("smtp.host", move || settings_smtp_host.is_some());
/// # let _ = check;
/// ```
#[derive(Clone)]
pub struct RequiredConfig {
    items: Vec<Item>,
    lookup: Lookup,
}

impl fmt::Debug for RequiredConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: what the variables hold is none of a debug print's business.
        let names: Vec<&str> = self.items.iter().map(|i| i.name.as_str()).collect();
        f.debug_struct("RequiredConfig")
            .field("items", &names)
            .finish_non_exhaustive()
    }
}

impl Default for RequiredConfig {
    /// Nothing required yet; variables read from the process environment.
    fn default() -> Self {
        RequiredConfig {
            items: Vec::new(),
            lookup: Arc::new(|name| std::env::var(name).ok()),
        }
    }
}

impl RequiredConfig {
    /// Requires these environment variables.
    pub fn env<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        names
            .into_iter()
            .fold(RequiredConfig::default(), |c, n| c.required_env(n))
    }

    /// Requires one more environment variable.
    pub fn required_env(self, name: impl Into<String>) -> Self {
        self.push(name.into(), Source::Env, true)
    }

    /// Recommends an environment variable: degraded, not unhealthy, when it is missing.
    pub fn recommended_env(self, name: impl Into<String>) -> Self {
        self.push(name.into(), Source::Env, false)
    }

    /// Requires a setting of the application; `present` says whether it is there.
    pub fn setting(
        self,
        name: impl Into<String>,
        present: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        self.push(name.into(), Source::Setting(Arc::new(present)), true)
    }

    /// Recommends a setting: degraded, not unhealthy, when `present` says it is not there.
    pub fn recommended_setting(
        self,
        name: impl Into<String>,
        present: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        self.push(name.into(), Source::Setting(Arc::new(present)), false)
    }

    /// Reads variables through `lookup` instead of the process environment (tests, a secrets
    /// manager already loaded into memory).
    pub fn lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.lookup = Arc::new(lookup);
        self
    }

    fn push(mut self, name: String, source: Source, required: bool) -> Self {
        self.items.push(Item {
            name,
            source,
            required,
        });
        self
    }

    fn present(&self, item: &Item) -> bool {
        match &item.source {
            // Only whether it has a value: the value itself is dropped here.
            Source::Env => (self.lookup)(&item.name).is_some_and(|v| !v.trim().is_empty()),
            Source::Setting(present) => present(),
        }
    }

    /// What is missing, required first.
    fn evaluate(&self) -> CheckResult {
        let (mut required, mut recommended) = (Vec::new(), Vec::new());
        for item in self.items.iter().filter(|i| !self.present(i)) {
            if item.required {
                required.push(item.name.as_str());
            } else {
                recommended.push(item.name.as_str());
            }
        }
        let missing = (required.len() + recommended.len()) as f64;
        let mut parts = Vec::new();
        if !required.is_empty() {
            parts.push(format!("missing: {}", required.join(", ")));
        }
        if !recommended.is_empty() {
            parts.push(format!(
                "recommended but missing: {}",
                recommended.join(", ")
            ));
        }
        let status = if !required.is_empty() {
            HealthStatus::Unhealthy
        } else if !recommended.is_empty() {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        };
        let detail = if parts.is_empty() {
            format!("{} configured", self.items.len())
        } else {
            parts.join("; ")
        };
        CheckResult::new(status, detail).with_value(missing)
    }
}

impl HealthCheck for RequiredConfig {
    fn name(&self) -> &str {
        "config"
    }

    fn check<'a>(&'a self, _cx: &'a HealthContext) -> BoxFuture<'a, CheckResult> {
        Box::pin(std::future::ready(self.evaluate()))
    }
}
