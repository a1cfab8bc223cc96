//! The error of an unusable setting of an optional integration (LLM, notifications).

use std::fmt;

/// A setting an integration cannot work with: which one, and why (never the secret itself).
///
/// The LLM analyzer calls it `llm::LlmConfigError` and the notifications
/// `notify::NotifyConfigError` (each behind its feature); the type is the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The setting (an environment variable or a builder method).
    pub setting: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.setting, self.reason)
    }
}

impl std::error::Error for SettingError {}
