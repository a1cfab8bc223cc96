//! Channels and triggers from the environment, and the error for unusable settings.

use std::sync::Arc;
use std::time::Duration;

use super::{EmailApi, Notifier, SignedWebhook, SlackWebhook};
use crate::diagnosis::Severity;
use crate::event::{HealingEvent, Outcome};

/// A notification setting that cannot work (the variable or builder method, and why; never the
/// secret itself).
pub type NotifyConfigError = crate::SettingError;

/// Which failures admins hear about.
///
/// ```
/// use self_healing_runtime::{Outcome, Severity};
/// use self_healing_runtime::notify::Triggers;
///
/// // Only failed healing, whatever the severity.
/// let triggers = Triggers::default().min_severity(None);
/// // Also high-severity errors, healed or not.
/// let loud = Triggers::default().min_severity(Some(Severity::High));
/// # let _ = (triggers, loud);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Triggers {
    outcomes: Vec<Outcome>,
    min_severity: Option<Severity>,
}

impl Default for Triggers {
    /// Healing failed (`failed`, `fast_failed`, `budget_exhausted`), or the severity is
    /// critical.
    fn default() -> Self {
        Triggers {
            outcomes: vec![
                Outcome::Failed,
                Outcome::FastFailed,
                Outcome::BudgetExhausted,
            ],
            min_severity: Some(Severity::Critical),
        }
    }
}

impl Triggers {
    /// The outcomes that trigger a notification.
    pub fn outcomes(mut self, outcomes: impl IntoIterator<Item = Outcome>) -> Self {
        self.outcomes = outcomes.into_iter().collect();
        self
    }

    /// The severity from which any failure triggers a notification, healed or not (`None`: by
    /// outcome only).
    pub fn min_severity(mut self, severity: Option<Severity>) -> Self {
        self.min_severity = severity;
        self
    }

    /// Whether `event` triggers a notification.
    pub fn matches(&self, event: &HealingEvent) -> bool {
        self.outcomes.contains(&event.outcome)
            || self.min_severity.is_some_and(|min| event.severity >= min)
    }
}

/// The channels and window the environment configures.
pub(crate) struct FromEnv {
    pub(crate) channels: Vec<Arc<dyn Notifier>>,
    pub(crate) window: Option<Duration>,
}

/// Reads `SELF_HEALING_SLACK_WEBHOOK_URL`, `SELF_HEALING_WEBHOOK_URL` +
/// `SELF_HEALING_WEBHOOK_SECRET`, `SELF_HEALING_EMAIL_API_URL` + `SELF_HEALING_EMAIL_API_KEY` +
/// `SELF_HEALING_ADMIN_EMAILS` (+ `SELF_HEALING_EMAIL_FROM`), and
/// `SELF_HEALING_NOTIFY_WINDOW_MINUTES`.
pub(crate) fn from_lookup(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<FromEnv, NotifyConfigError> {
    let set = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let missing = |setting: &'static str, because: &str| NotifyConfigError {
        setting,
        reason: format!("must be set when {because} is"),
    };
    let renamed = |setting: &'static str| {
        move |e: NotifyConfigError| NotifyConfigError {
            setting,
            reason: e.reason,
        }
    };
    let mut channels: Vec<Arc<dyn Notifier>> = Vec::new();
    if let Some(url) = set("SELF_HEALING_SLACK_WEBHOOK_URL") {
        channels.push(Arc::new(
            SlackWebhook::new(&url).map_err(renamed("SELF_HEALING_SLACK_WEBHOOK_URL"))?,
        ));
    }
    match (
        set("SELF_HEALING_WEBHOOK_URL"),
        set("SELF_HEALING_WEBHOOK_SECRET"),
    ) {
        (Some(url), Some(secret)) => {
            let webhook = SignedWebhook::new(&url, secret).map_err(|e| match e.setting {
                "webhook secret" => renamed("SELF_HEALING_WEBHOOK_SECRET")(e),
                _ => renamed("SELF_HEALING_WEBHOOK_URL")(e),
            })?;
            channels.push(Arc::new(webhook));
        }
        (Some(_), None) => {
            return Err(missing(
                "SELF_HEALING_WEBHOOK_SECRET",
                "SELF_HEALING_WEBHOOK_URL",
            ));
        }
        (None, Some(_)) => {
            return Err(missing(
                "SELF_HEALING_WEBHOOK_URL",
                "SELF_HEALING_WEBHOOK_SECRET",
            ));
        }
        (None, None) => {}
    }
    let email = [
        "SELF_HEALING_EMAIL_API_URL",
        "SELF_HEALING_EMAIL_API_KEY",
        "SELF_HEALING_ADMIN_EMAILS",
    ];
    if let Some(given) = email.iter().find(|name| set(name).is_some()) {
        let value = |name: &'static str| set(name).ok_or_else(|| missing(name, given));
        let url = value("SELF_HEALING_EMAIL_API_URL")?;
        let key = value("SELF_HEALING_EMAIL_API_KEY")?;
        let admins = value("SELF_HEALING_ADMIN_EMAILS")?;
        let mut api = EmailApi::new(&url, key, admins.split(',')).map_err(|e| match e.setting {
            "admin emails" => renamed("SELF_HEALING_ADMIN_EMAILS")(e),
            "email API key" => renamed("SELF_HEALING_EMAIL_API_KEY")(e),
            _ => renamed("SELF_HEALING_EMAIL_API_URL")(e),
        })?;
        if let Some(from) = set("SELF_HEALING_EMAIL_FROM") {
            api = api.from_address(from);
        }
        channels.push(Arc::new(api));
    }
    let window = match set("SELF_HEALING_NOTIFY_WINDOW_MINUTES") {
        Some(minutes) => match minutes.parse::<u64>() {
            Ok(m) if m > 0 => Some(Duration::from_secs(m * 60)),
            _ => {
                return Err(NotifyConfigError {
                    setting: "SELF_HEALING_NOTIFY_WINDOW_MINUTES",
                    reason: format!("`{minutes}` is not a whole number of minutes above zero"),
                });
            }
        },
        None => None,
    };
    Ok(FromEnv { channels, window })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        let pairs = pairs.to_vec();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn nothing_set_means_no_channels() {
        let env = from_lookup(lookup(&[])).unwrap();
        assert!(env.channels.is_empty() && env.window.is_none());
    }

    #[test]
    fn every_channel_from_the_environment() {
        let env = from_lookup(lookup(&[
            (
                "SELF_HEALING_SLACK_WEBHOOK_URL",
                "https://hooks.slack.com/services/T/B/X",
            ),
            ("SELF_HEALING_WEBHOOK_URL", "https://ops.example.com/hook"),
            ("SELF_HEALING_WEBHOOK_SECRET", "0123456789abcdef0123"),
            ("SELF_HEALING_EMAIL_API_URL", "https://api.resend.com"),
            ("SELF_HEALING_EMAIL_API_KEY", "re_123"),
            (
                "SELF_HEALING_ADMIN_EMAILS",
                "ops@example.com, cto@example.com",
            ),
            ("SELF_HEALING_NOTIFY_WINDOW_MINUTES", "15"),
        ]))
        .unwrap();
        let names: Vec<&str> = env.channels.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["slack", "webhook", "email"]);
        assert_eq!(env.window, Some(Duration::from_secs(900)));
        // Secrets stay out of debug output.
        let shown = format!("{:?}", env.channels);
        assert!(
            !shown.contains("/T/B/X") && !shown.contains("0123456789") && !shown.contains("re_123"),
            "{shown}"
        );
    }

    #[test]
    fn errors_name_the_setting() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("SELF_HEALING_SLACK_WEBHOOK_URL", "hooks.slack.com/x")],
                "SELF_HEALING_SLACK_WEBHOOK_URL",
            ),
            (
                &[("SELF_HEALING_WEBHOOK_URL", "https://x.example/h")],
                "SELF_HEALING_WEBHOOK_SECRET",
            ),
            (
                &[
                    ("SELF_HEALING_WEBHOOK_URL", "https://x.example/h"),
                    ("SELF_HEALING_WEBHOOK_SECRET", "short"),
                ],
                "SELF_HEALING_WEBHOOK_SECRET",
            ),
            (
                &[("SELF_HEALING_EMAIL_API_KEY", "k")],
                "SELF_HEALING_EMAIL_API_URL",
            ),
            (
                &[
                    ("SELF_HEALING_EMAIL_API_URL", "https://api.resend.com"),
                    ("SELF_HEALING_EMAIL_API_KEY", "k"),
                    ("SELF_HEALING_ADMIN_EMAILS", "nobody"),
                ],
                "SELF_HEALING_ADMIN_EMAILS",
            ),
            (
                &[("SELF_HEALING_NOTIFY_WINDOW_MINUTES", "soon")],
                "SELF_HEALING_NOTIFY_WINDOW_MINUTES",
            ),
        ];
        for (vars, setting) in cases {
            let err = from_lookup(lookup(vars)).err().expect("an error");
            assert_eq!(err.setting, *setting, "{err}");
        }
    }
}
