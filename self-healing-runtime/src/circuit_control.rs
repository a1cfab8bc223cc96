//! Circuits steered by hand: open one before maintenance of a dependency, close it once the
//! dependency is known good, reset it to forget its history. Each change is recorded as an
//! event (outcome [`Outcome::Manual`]), so the dashboard shows who did what.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::breaker::CircuitState;
use crate::diagnosis::{ErrorClass, Fingerprint, Severity};
use crate::event::{DiagnosisRecord, HealingEvent, Outcome};
use crate::healer::{ConfigError, Healer};
use crate::site::Site;

/// A change made to a circuit by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircuitCommand {
    /// Refuse every call until closed or reset by hand (no probes).
    Open,
    /// Close now with an empty window; new failures can open it again.
    Close,
    /// Forget the circuit's and the retry budget's history, as on the site's first call.
    Reset,
}

impl CircuitCommand {
    /// `open`, `close` or `reset`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CircuitCommand::Open => "open",
            CircuitCommand::Close => "close",
            CircuitCommand::Reset => "reset",
        }
    }
}

impl fmt::Display for CircuitCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for CircuitCommand {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(CircuitCommand::Open),
            "close" => Ok(CircuitCommand::Close),
            "reset" => Ok(CircuitCommand::Reset),
            other => Err(format!(
                "unknown circuit command `{other}`: expected open, close or reset"
            )),
        }
    }
}

/// One site's circuit as this healer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CircuitView {
    /// The site's source.
    pub source: &'static str,
    /// Its state.
    pub state: CircuitState,
    /// Opened by hand, and waiting to be closed by hand.
    pub held_open: bool,
}

impl Healer {
    /// Applies `command` to the circuit of the site named `source` (of every function sharing
    /// that source, when several do); `by` says who or what asked (recorded in the event).
    /// Returns the circuit's state after it.
    ///
    /// ```
    /// use self_healing_runtime::{ConfigError, Healer};
    /// use self_healing_runtime::circuit_control::CircuitCommand;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let healer = Healer::builder().build()?;
    /// // `healer.open_circuit("chargeCard", "maintenance")?` refuses every call of the site
    /// // `chargeCard` until `close_circuit` or `reset_circuit`. A source no wrapped function
    /// // has is an error:
    /// let typo = healer.steer_circuit("chargeCrad", CircuitCommand::Open, "maintenance");
    /// assert!(matches!(typo, Err(ConfigError::UnknownSource { .. })));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::UnknownSource`] when no wrapped function has this source.
    pub fn steer_circuit(
        &self,
        source: &str,
        command: CircuitCommand,
        by: &str,
    ) -> Result<CircuitState, ConfigError> {
        let sites = find_sites(source)?;
        Ok(self.apply_command(&sites, command, by))
    }

    /// [`steer_circuit`](Self::steer_circuit) here, and on every instance sharing this healer's
    /// store (see [`fleet`](crate::fleet)): they apply it when they next hear from the store
    /// (within about a second).
    ///
    /// # Errors
    /// [`ConfigError::UnknownSource`] when no wrapped function has this source.
    pub fn steer_fleet(
        &self,
        source: &str,
        command: CircuitCommand,
        by: &str,
    ) -> Result<CircuitState, ConfigError> {
        let sites = find_sites(source)?;
        let after = self.apply_command(&sites, command, by);
        self.inner
            .fleet
            .command(self.instance_id(), source, command, by);
        Ok(after)
    }

    /// Applies `command` to the circuit of every site in `sites` (the functions sharing one
    /// source), records it once and tells the fleet the new state.
    pub(crate) fn apply_command(
        &self,
        sites: &[&'static Site],
        command: CircuitCommand,
        by: &str,
    ) -> CircuitState {
        let now = Instant::now();
        let mut after = CircuitState::Closed;
        for &site in sites {
            let state = self.state_of(site);
            match command {
                CircuitCommand::Open => state.hold_open(now),
                CircuitCommand::Close => state.close_circuit(now),
                CircuitCommand::Reset => state.reset_circuit(now),
            }
            after = state.circuit_state();
        }
        if let Some(&site) = sites.first() {
            self.record_manual(site, command, by);
            self.inner.fleet.moved(
                self.instance_id(),
                site.source(),
                after,
                command == CircuitCommand::Open,
            );
        }
        after
    }

    /// [`steer_circuit`](Self::steer_circuit) with [`CircuitCommand::Open`].
    ///
    /// # Errors
    /// [`ConfigError::UnknownSource`] when no wrapped function has this source.
    pub fn open_circuit(&self, source: &str, by: &str) -> Result<CircuitState, ConfigError> {
        self.steer_circuit(source, CircuitCommand::Open, by)
    }

    /// [`steer_circuit`](Self::steer_circuit) with [`CircuitCommand::Close`].
    ///
    /// # Errors
    /// [`ConfigError::UnknownSource`] when no wrapped function has this source.
    pub fn close_circuit(&self, source: &str, by: &str) -> Result<CircuitState, ConfigError> {
        self.steer_circuit(source, CircuitCommand::Close, by)
    }

    /// [`steer_circuit`](Self::steer_circuit) with [`CircuitCommand::Reset`].
    ///
    /// # Errors
    /// [`ConfigError::UnknownSource`] when no wrapped function has this source.
    pub fn reset_circuit(&self, source: &str, by: &str) -> Result<CircuitState, ConfigError> {
        self.steer_circuit(source, CircuitCommand::Reset, by)
    }

    /// Every registered site's circuit under this healer, by source.
    pub fn circuits(&self) -> Vec<CircuitView> {
        let mut views: Vec<CircuitView> = crate::sites()
            .map(|site| {
                let state = self.inner.sites.get(site);
                CircuitView {
                    source: site.source(),
                    state: state
                        .as_deref()
                        .map_or(CircuitState::Closed, |s| s.circuit_state()),
                    held_open: state.as_deref().is_some_and(|s| s.held_open()),
                }
            })
            .collect();
        views.sort_by_key(|v| v.source);
        views.dedup_by_key(|v| v.source);
        views
    }

    fn record_manual(&self, site: &'static Site, command: CircuitCommand, by: &str) {
        let message = format!("circuit {} by hand ({by})", past(command));
        let class = ErrorClass::CircuitOpen;
        tracing::info!(
            source = site.source(),
            command = command.as_str(),
            by,
            "self-healing: {message}"
        );
        self.inner.queue.push(HealingEvent {
            time: SystemTime::now(),
            instance: self.inner.config.instance.clone(),
            source: Cow::Borrowed(site.source()),
            category: site.category(),
            fingerprint: Fingerprint::new(site.source(), &class, &message),
            class,
            message,
            severity: Severity::Medium,
            strategy: None,
            outcome: Outcome::Manual,
            attempts: 0,
            duration: Duration::ZERO,
            diagnosis: DiagnosisRecord {
                analyzer: Cow::Borrowed("manual"),
                confidence: 1.0,
                reason: Cow::Borrowed("a circuit command"),
                never_reached: true,
                steps: Vec::new(),
            },
            count: 1,
            call_key: None,
        });
    }
}

fn past(command: CircuitCommand) -> &'static str {
    match command {
        CircuitCommand::Open => "opened",
        CircuitCommand::Close => "closed",
        CircuitCommand::Reset => "reset",
    }
}

/// Every registered site named `source`: a source names one operation, and the functions that
/// share it (a sync and an async variant, say) are steered together.
pub(crate) fn find_sites(source: &str) -> Result<Vec<&'static Site>, ConfigError> {
    let found: Vec<&'static Site> = crate::sites().filter(|s| s.source() == source).collect();
    if !found.is_empty() {
        return Ok(found);
    }
    let known: Vec<&'static str> = crate::sites().map(Site::source).collect();
    Err(ConfigError::UnknownSource {
        setting: "circuit",
        source: source.to_owned(),
        suggestion: crate::settings::closest(source, &known),
    })
}
