//! LLM diagnosis, off the hot path: an OpenAI-compatible chat-completions client that advises the
//! selector about families of failures it has not seen (feature `llm`).
//!
//! The [`LlmAnalyzer`] is an [`EventObserver`]: after each batch of events is written, it puts a
//! question about each new family (fingerprint) into its own bounded queue and returns. Its own
//! task asks the server, within a timeout, a concurrency cap and a per-minute limit, and stores
//! the answer as [`Advice`](crate::selection::Advice) on the healer's pattern table (where the
//! recommended strategy becomes a prior) and in the store. A family is asked about once per TTL;
//! a failed question is asked again later. Callers of wrapped functions never wait for any of it:
//! until an answer arrives, and whenever the server fails, the rules decide alone.
//!
//! The question carries the family's scrubbed message, source, category, the rules' class and
//! severity, and what the strategies did; structured output (`response_format: json_schema`,
//! `strict: true`) asks for `diagnosis`, `error_class`, `recommended_strategy` (one of the
//! healer's strategies), `severity`, `confidence` and `reasoning`. Servers that reject
//! `json_schema` (a 400 naming `response_format`) are asked with `json_object` from then on.
//! Refusals, answers cut at the token limit, malformed JSON, HTTP errors, timeouts and 429s give
//! no advice and are counted in [`LlmStats`]; a strategy name the healer does not have is ignored
//! (the diagnosis is kept, without a strategy).
//!
//! ```no_run
//! use self_healing_runtime::Healer;
//! use self_healing_runtime::llm::LlmAnalyzer;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // `OPENAI_API_KEY` unset: `None`, and the healer runs on rules alone.
//! let analyzer = LlmAnalyzer::from_env()?;
//! let healer = Healer::builder().llm(analyzer.clone()).build()?;
//! # let _ = healer;
//! if let Some(analyzer) = &analyzer {
//!     println!("answered so far: {}", analyzer.stats().answered);
//! }
//! # Ok(()) }
//! ```

mod answer;
mod client;
mod config;
mod protocol;
mod stats;
mod worker;

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::time::Instant;

pub use config::{DEFAULT_BASE_URL, DEFAULT_MODEL, LlmConfig, LlmConfigError};
pub use stats::LlmStats;

use crate::event::{EventObserver, Observed};
use crate::healer::HealerBuilder;
use client::ChatClient;
use protocol::Question;
use stats::bump;
use worker::{Job, Shared};

/// Families tracked at most; past that, expired marks are forgotten first.
const MAX_TRACKED: usize = 10_000;

/// Asks an LLM about new families of failures, in the background, and feeds its answers back as
/// advice. Cloning shares the analyzer (its queue, task and counters).
#[derive(Clone)]
pub struct LlmAnalyzer {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job>,
    /// The receiving end, until the first batch starts the task on the worker's runtime.
    idle_jobs: Arc<Mutex<Option<mpsc::Receiver<Job>>>>,
}

impl fmt::Debug for LlmAnalyzer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmAnalyzer")
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl LlmAnalyzer {
    /// An analyzer with these settings. Its task starts with the first batch of events, on the
    /// runtime of the healer's event worker.
    ///
    /// # Errors
    /// An [`LlmConfigError`] naming the first unusable setting.
    pub fn new(config: LlmConfig) -> Result<LlmAnalyzer, LlmConfigError> {
        config.validate_as("model")?;
        let client = ChatClient::new(&config).map_err(|reason| LlmConfigError {
            setting: "http client",
            reason,
        })?;
        let (jobs, receiver) = mpsc::channel(config.queue_capacity);
        Ok(LlmAnalyzer {
            shared: Arc::new(Shared::new(config, client)),
            jobs,
            idle_jobs: Arc::new(Mutex::new(Some(receiver))),
        })
    }

    /// An analyzer configured by `OPENAI_API_KEY`, `OPENAI_BASE_URL` and `OPENAI_MODEL`;
    /// `Ok(None)` when no key is set (rules only).
    ///
    /// # Errors
    /// An [`LlmConfigError`] naming the variable that is set but unusable.
    pub fn from_env() -> Result<Option<LlmAnalyzer>, LlmConfigError> {
        LlmConfig::from_env()?.map(LlmAnalyzer::new).transpose()
    }

    /// The counters of questions and answers so far.
    pub fn stats(&self) -> LlmStats {
        self.shared.counters.snapshot()
    }

    /// Waits until no question is queued or in flight (tests, graceful shutdown).
    pub async fn idle(&self) {
        let mut pending = self.shared.pending.subscribe();
        let _ = pending.wait_for(|n| *n == 0).await;
    }

    /// Starts the task on the current runtime, once.
    fn start(&self) {
        let mut idle = self.idle_jobs.lock().unwrap_or_else(|p| p.into_inner());
        if idle.is_none() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current()
            && let Some(receiver) = idle.take()
        {
            runtime.spawn(worker::run(self.shared.clone(), receiver));
        }
    }

    /// Marks `fingerprint` as asked about, unless it was asked recently or already has advice.
    fn claim(&self, batch: &Observed<'_>, fingerprint: crate::Fingerprint, now: Instant) -> bool {
        let mut next_ask = self
            .shared
            .next_ask
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match next_ask.get(&fingerprint) {
            Some(at) if now < *at => return false,
            Some(_) => {}
            // Advice from the store (a previous run, another instance) counts as fresh.
            None if batch.patterns.advice(fingerprint).is_some() => {
                next_ask.insert(fingerprint, now + self.shared.config.ttl);
                return false;
            }
            None => {}
        }
        if next_ask.len() >= MAX_TRACKED {
            next_ask.retain(|_, at| now < *at);
            if next_ask.len() >= MAX_TRACKED {
                return false;
            }
        }
        next_ask.insert(fingerprint, now + self.shared.config.ttl);
        true
    }
}

impl EventObserver for LlmAnalyzer {
    fn observe(&self, batch: Observed<'_>) {
        let now = Instant::now();
        let mut seen = HashSet::new();
        for event in batch.events {
            let fingerprint = event.fingerprint;
            if !seen.insert(fingerprint) || !self.claim(&batch, fingerprint, now) {
                continue;
            }
            self.start();
            let job = Job {
                fingerprint,
                question: Question::about(event),
                strategies: batch.strategies.to_vec(),
                patterns: batch.patterns.clone(),
                store: batch.store.clone(),
            };
            self.shared.pending.send_modify(|n| *n += 1);
            match self.jobs.try_send(job) {
                Ok(()) => bump(&self.shared.counters.queued),
                Err(_) => {
                    bump(&self.shared.counters.dropped);
                    self.shared.finished_one();
                    self.shared
                        .next_ask
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&fingerprint);
                }
            }
        }
    }
}

impl HealerBuilder {
    /// Adds an LLM analyzer (feature `llm`); `None` (no `OPENAI_API_KEY`) adds nothing, so
    /// `builder.llm(LlmAnalyzer::from_env()?)` works either way.
    pub fn llm(self, analyzer: impl Into<Option<LlmAnalyzer>>) -> HealerBuilder {
        match analyzer.into() {
            Some(analyzer) => self.observer(analyzer),
            None => self,
        }
    }
}
