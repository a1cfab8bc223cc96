//! The analyzer's own task: takes questions from its bounded queue, keeps to the per-minute
//! limit, the concurrency cap and the timeout, and turns answers into advice.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{Duration, Instant};

use super::client::{ChatClient, Failure};
use super::config::LlmConfig;
use super::protocol::Question;
use super::stats::{Counters, bump};
use crate::diagnosis::Fingerprint;
use crate::event::EventStore;
use crate::selection::PatternTable;

/// How long to hold back after a 429 without `Retry-After`.
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(60);

/// One question, with where its answer goes.
pub(crate) struct Job {
    pub(crate) fingerprint: Fingerprint,
    pub(crate) question: Question,
    pub(crate) strategies: Vec<&'static str>,
    pub(crate) patterns: PatternTable,
    pub(crate) store: Arc<dyn EventStore>,
}

/// State shared by the analyzer's handles and its task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: LlmConfig,
    pub(crate) client: ChatClient,
    pub(crate) counters: Counters,
    /// When each family may be asked about next.
    pub(crate) next_ask: Mutex<HashMap<Fingerprint, Instant>>,
    /// Until when the server asked us to wait (HTTP 429).
    cooldown: Mutex<Option<Instant>>,
    /// Questions queued or in flight.
    pub(crate) pending: watch::Sender<usize>,
}

impl Shared {
    pub(crate) fn new(config: LlmConfig, client: ChatClient) -> Shared {
        Shared {
            config,
            client,
            counters: Counters::default(),
            next_ask: Mutex::new(HashMap::new()),
            cooldown: Mutex::new(None),
            pending: watch::channel(0).0,
        }
    }

    pub(crate) fn finished_one(&self) {
        self.pending.send_modify(|n| *n = n.saturating_sub(1));
    }

    /// The question failed for a reason that may pass: ask again sooner than the TTL.
    fn ask_again_after_failure(&self, fingerprint: Fingerprint) {
        let at = Instant::now() + self.config.retry_failed_after;
        self.next_ask
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(fingerprint, at);
    }

    fn cooling_down(&self, now: Instant) -> bool {
        self.cooldown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|until| now < until)
    }
}

/// Starts of questions allowed per minute: a token bucket refilled continuously.
struct Bucket {
    capacity: f64,
    tokens: f64,
    per_second: f64,
    last: Instant,
}

impl Bucket {
    fn new(per_minute: u32) -> Bucket {
        Bucket {
            capacity: f64::from(per_minute),
            tokens: f64::from(per_minute),
            per_second: f64::from(per_minute) / 60.0,
            last: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The task: runs until every handle of the analyzer is gone and the queue is drained.
pub(crate) async fn run(shared: Arc<Shared>, mut jobs: mpsc::Receiver<Job>) {
    let permits = Arc::new(Semaphore::new(shared.config.max_concurrent));
    let mut bucket = Bucket::new(shared.config.per_minute);
    while let Some(job) = jobs.recv().await {
        let now = Instant::now();
        if shared.cooling_down(now) || !bucket.take(now) {
            bump(&shared.counters.throttled);
            shared.ask_again_after_failure(job.fingerprint);
            shared.finished_one();
            continue;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            shared.finished_one();
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            answer(&shared, job).await;
            drop(permit);
            shared.finished_one();
        });
    }
}

/// Asks one question and records what came of it.
async fn answer(shared: &Shared, job: Job) {
    let counters = &shared.counters;
    bump(&counters.asked);
    let asked = shared.client.ask(&job.question, &job.strategies, counters);
    let fingerprint = job.fingerprint;
    let failure = match tokio::time::timeout(shared.config.timeout, asked).await {
        Ok(Ok(answer)) => {
            bump(&counters.answered);
            if answer.strategy.is_some() {
                bump(&counters.advised);
            }
            if answer.unknown_strategy.is_some() {
                bump(&counters.unknown_strategy);
            }
            let analyzer = format!("llm:{}", shared.client.model());
            let advice = answer.to_advice(&analyzer, shared.client.max_text_chars());
            job.patterns.set_advice(fingerprint, advice.clone());
            if let Err(e) = job.store.write_advice(fingerprint, &advice).await {
                bump(&counters.store_errors);
                tracing::warn!(%fingerprint, error = %e, "self-healing: the store did not keep LLM advice");
            }
            tracing::debug!(%fingerprint, strategy = %advice.strategy, confidence = advice.confidence, "self-healing: LLM advice");
            return;
        }
        Ok(Err(failure)) => failure,
        Err(_elapsed) => {
            bump(&counters.timeouts);
            shared.ask_again_after_failure(fingerprint);
            tracing::debug!(%fingerprint, "self-healing: LLM question timed out; rules apply");
            return;
        }
    };
    let what = match &failure {
        Failure::Refused => {
            // A refusal will not change soon: the family keeps its TTL-long mark.
            bump(&counters.refused);
            "refused"
        }
        Failure::Truncated => {
            bump(&counters.truncated);
            "truncated"
        }
        Failure::Malformed(_) => {
            bump(&counters.malformed);
            "malformed"
        }
        Failure::RateLimited { retry_after } => {
            bump(&counters.rate_limited);
            let until = Instant::now() + retry_after.unwrap_or(DEFAULT_COOLDOWN);
            *shared.cooldown.lock().unwrap_or_else(|p| p.into_inner()) = Some(until);
            "rate limited"
        }
        Failure::Http(status) => {
            bump(&counters.http_errors);
            counters
                .last_http_status
                .store(u64::from(*status), Ordering::Relaxed);
            "HTTP error"
        }
        Failure::Transport(_) => {
            bump(&counters.transport_errors);
            "transport error"
        }
    };
    if failure != Failure::Refused {
        shared.ask_again_after_failure(fingerprint);
    }
    tracing::debug!(%fingerprint, outcome = what, detail = ?failure, "self-healing: no LLM advice; rules apply");
}
