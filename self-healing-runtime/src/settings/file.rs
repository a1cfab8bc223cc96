//! `self-healing.toml`: reading settings from a file (feature `toml`).

use std::path::Path;

use crate::Category;
use crate::healer::ConfigError;

use super::Settings;

impl Settings {
    /// Parses settings written in TOML (see the [module docs](super) for the shape).
    /// Durations are written as `"250ms"`, `"2s"`, `"1m 30s"`.
    ///
    /// ```
    /// use self_healing_runtime::settings::Settings;
    ///
    /// let settings = Settings::from_toml(r#"
    ///     [category.api]
    ///     timeout = "2s"
    ///     breaker = { failure_rate = 0.3 }
    /// "#)?;
    /// assert!(settings.sources.is_empty());
    /// # Ok::<(), self_healing_runtime::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::File`] with the line and what is wrong (an unknown key, a bad duration).
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::File {
            path: "<settings>".to_owned(),
            reason: e.to_string(),
        })
    }

    /// Reads settings from a TOML file (conventionally `self-healing.toml`).
    ///
    /// # Errors
    /// [`ConfigError::File`] naming the file: it cannot be read, or is not valid settings.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Settings, ConfigError> {
        let path = path.as_ref();
        let file_error = |reason: String| ConfigError::File {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        toml::from_str(&text).map_err(|e: toml::de::Error| file_error(e.to_string()))
    }
}

impl<'de> serde::Deserialize<'de> for Category {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// `Option<Duration>` written as `"250ms"`, `"2s"`, `"1m 30s"`.
pub(super) mod opt_duration {
    use std::time::Duration;

    use serde::Deserialize;

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map(Some).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration ({e}); write e.g. \"250ms\", \"2s\", \"1m 30s\""
            ))
        })
    }
}
