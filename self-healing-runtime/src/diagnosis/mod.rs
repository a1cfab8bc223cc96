//! Diagnosis: what kind of failure this is, how bad, and which family of failures it belongs to.

mod declared;
mod fingerprint;
mod message_rules;
pub(crate) mod rules;
mod typed;
#[cfg(feature = "diesel")]
mod typed_diesel;
#[cfg(feature = "hyper")]
mod typed_hyper;
#[cfg(feature = "redis")]
mod typed_redis;
#[cfg(feature = "reqwest")]
mod typed_reqwest;
#[cfg(feature = "sqlx")]
mod typed_sqlx;
#[cfg(feature = "tonic")]
mod typed_tonic;

use std::error::Error;
use std::fmt;
use std::time::Duration;

#[doc(hidden)]
pub use declared::{DECLARERS, Declaration, Declarer, declarer_of};
pub use declared::{DeclaresFailure, RetryAfter};
pub use fingerprint::{Fingerprint, normalize_message};
pub use rules::{MAX_MESSAGE_BYTES, RuleAnalyzer, chain_message, chain_message_of};

use crate::Site;

/// The kind of failure, which decides what can heal it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// A passing fault (deadlock, serialization failure, 503): a re-run usually heals it.
    Transient,
    /// The call took too long.
    Timeout,
    /// The connection to a dependency is gone (reset, refused, closed).
    ConnectionLost,
    /// The dependency asked us to slow down (HTTP 429, quota).
    RateLimited {
        /// How long the dependency asked us to wait, when it said so.
        retry_after: Option<Duration>,
    },
    /// Credentials expired or were refused (HTTP 401).
    AuthExpired,
    /// Out of capacity (pool exhausted, overload, out of memory).
    ResourceExhausted,
    /// Will fail again however often it runs (not found, constraint violation, 400).
    Permanent,
    /// A defect in the program (panic, invariant broken, null where none is allowed).
    Bug,
    /// The site's own circuit breaker refused the call after repeated failures: the body did
    /// not run. Only a fallback or a cached value can answer until a probe closes the circuit.
    CircuitOpen,
}

impl ErrorClass {
    /// The snake_case name used in events and the dashboard.
    pub const fn as_str(&self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Timeout => "timeout",
            ErrorClass::ConnectionLost => "connection_lost",
            ErrorClass::RateLimited { .. } => "rate_limited",
            ErrorClass::AuthExpired => "auth_expired",
            ErrorClass::ResourceExhausted => "resource_exhausted",
            ErrorClass::Permanent => "permanent",
            ErrorClass::Bug => "bug",
            ErrorClass::CircuitOpen => "circuit_open",
        }
    }

    /// Whether running the same call again can possibly succeed.
    pub const fn is_retryable(&self) -> bool {
        !matches!(self, ErrorClass::Permanent | ErrorClass::Bug)
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How bad a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Expected now and then; heals on its own.
    Low,
    /// Worth a look if it repeats.
    Medium,
    /// Users notice.
    High,
    /// Data or money at risk; admins are told at once.
    Critical,
}

impl Severity {
    /// The lower-case name used in events and the dashboard.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// One level up (escalation), `Critical` stays `Critical`.
    pub const fn raised(self) -> Severity {
        match self {
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One failed attempt, as the analyzers see it.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    /// The call site that failed.
    pub site: &'static Site,
    /// The error, with its `source()` chain.
    pub error: &'a (dyn Error + 'static),
    /// The error chain as one line, as [`chain_message_of`] builds it from `error`.
    ///
    /// The caller computes it once and lends it to the analyzer, which then needs no allocation
    /// of its own. The interceptor computes it as the start of a longer text, which it keeps
    /// for the call's event: the event worker scrubs that whole and only then cuts it to
    /// [`MAX_MESSAGE_BYTES`].
    pub message: &'a str,
    /// Which attempt failed (1 for the first call).
    pub attempt: u32,
    /// Time since the call started.
    pub elapsed: Duration,
}

impl Failure<'_> {
    /// The error and its sources, outermost first.
    pub fn chain(&self) -> impl Iterator<Item = &(dyn Error + 'static)> {
        std::iter::successors(Some(self.error), |e| (*e).source())
    }
}

/// What an analyzer concluded about a failure.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    /// The kind of failure.
    pub class: ErrorClass,
    /// How bad it is.
    pub severity: Severity,
    /// The family of failures it belongs to: stable across processes and machines.
    pub fingerprint: Fingerprint,
    /// True when the call provably never reached the other side (e.g. connection refused), so
    /// even a non-idempotent call may be re-run.
    pub never_reached: bool,
    /// Which analyzer produced this (`"rules"`, `"llm"`, …).
    pub analyzer: &'static str,
    /// How sure the analyzer is, from 0 to 1.
    pub confidence: f32,
    /// Why, in one line (the rule that matched).
    pub reason: &'static str,
    /// The strategy the analyzer recommends, by name, if any.
    pub recommended: Option<&'static str>,
    /// The wait the dependency asked for before the next call, whatever the class: a rate
    /// limit's Retry-After, but also a `503 Service Unavailable` with `Retry-After: 2` or a
    /// "try again in 500ms". `None` when it said nothing. For [`ErrorClass::RateLimited`] it is
    /// that class's `retry_after` when the class carries one.
    pub retry_after: Option<Duration>,
}

/// Turns a failure into a [`Diagnosis`].
///
/// The [`RuleAnalyzer`] is the default; it runs synchronously on the error path and never fails.
/// Analyzers that need I/O (an LLM) run in the background and feed their answers back as priors.
///
/// ```
/// use self_healing_runtime::diagnosis::{Analyzer, Diagnosis, Failure, RuleAnalyzer};
///
/// /// Treats every error of a payment provider as critical, and leaves the rest to the rules.
/// #[derive(Debug)]
/// struct Payments(RuleAnalyzer);
///
/// impl Analyzer for Payments {
///     fn name(&self) -> &'static str { "payments" }
///     fn analyze(&self, failure: &Failure<'_>) -> Diagnosis {
///         let mut diagnosis = self.0.analyze(failure);
///         if failure.site.source().starts_with("payments/") {
///             diagnosis.severity = self_healing_runtime::diagnosis::Severity::Critical;
///         }
///         diagnosis
///     }
/// }
/// let analyzer: Box<dyn Analyzer> = Box::new(Payments(RuleAnalyzer::new()));
/// # let _ = analyzer;
/// ```
pub trait Analyzer: Send + Sync + fmt::Debug + 'static {
    /// A short name recorded with each diagnosis.
    fn name(&self) -> &'static str;
    /// Diagnoses one failure. Must be fast and must not block: it runs on the caller's error path.
    fn analyze(&self, failure: &Failure<'_>) -> Diagnosis;
}
