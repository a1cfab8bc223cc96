//! The CRM demo of self-healing: a small CRM over Diesel (contacts, deals, credits, projects,
//! client onboarding; SQLite, or PostgreSQL with the `postgres` feature) whose actions are
//! wrapped by `#[self_healing]`, a fault layer that makes them fail for real, a load driver with
//! a progress bar, and the dashboard.
//!
//! The binary `crm` runs [`run`] and then serves the dashboard; the end-to-end test runs [`run`]
//! with a fixed number of calls and seed.

/// The integration guide (`docs/integration-guide.md`): its code blocks run as doctests.
#[doc = include_str!("../../../docs/integration-guide.md")]
mod guide {}

mod api;
mod crm;
mod db;
mod error;
mod faults;
mod progress;
mod provider;
mod report;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use self_healing::event::{EventObserver, Observed};
use self_healing::notify::{NotifyDispatcher, SignedWebhook};
use self_healing::{BreakerConfig, Category, DieselStore, Healer};

pub use error::CrmError;
pub use faults::FaultRates;
pub use provider::{Inbox, ProviderConfig, ProviderStats};
pub use report::{CrmCheck, SourceRow, StrategyRow, Summary};

/// How a demo run is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seed of the fault layer, the provider and the load driver.
    pub seed: u64,
    /// Stop after this long.
    pub duration: Duration,
    /// Stop after this many calls (whichever comes first).
    pub max_calls: Option<u64>,
    /// Concurrent clients of the load driver.
    pub workers: usize,
    /// The healing store (events, patterns): `sqlite://…` or `postgres://…`.
    pub store_url: String,
    /// The CRM's own tables: a SQLite path (`sqlite://PATH` too) or, with the `postgres`
    /// feature, a `postgres://…` URL.
    pub crm_database: String,
    /// Fault rates.
    pub faults: FaultRates,
    /// The email provider's behaviour.
    pub provider: ProviderConfig,
    /// The contacts outage window, as fractions of the run (calls or time).
    pub outage: (f64, f64),
    /// Draw a progress bar on stderr (when it is a terminal) and print the webhook notifications.
    pub progress: bool,
    /// Backoff of re-runs (base, max).
    pub backoff: (Duration, Duration),
    /// Circuit breaker settings (every site).
    pub breaker: BreakerConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 7,
            duration: Duration::from_secs(60),
            max_calls: None,
            workers: 4,
            store_url: "sqlite://self-healing-demo.db".to_owned(),
            crm_database: "crm-demo.db".to_owned(),
            faults: FaultRates::default(),
            provider: ProviderConfig::default(),
            outage: (0.45, 0.60),
            progress: true,
            backoff: (Duration::from_millis(10), Duration::from_millis(250)),
            breaker: BreakerConfig::default(),
        }
    }
}

/// Counts what the healer wrote, per source and strategy (an [`EventObserver`]).
#[derive(Debug, Default, Clone)]
pub struct Tally {
    inner: Arc<Mutex<TallyInner>>,
}

#[derive(Debug, Default)]
struct TallyInner {
    /// (source, strategy, outcome) → calls.
    rows: BTreeMap<(String, String, String), u64>,
    /// (source, class) → calls.
    classes: BTreeMap<(String, String), u64>,
    /// source → (calls an open circuit refused, of which healed).
    circuit_refused: BTreeMap<String, (u64, u64)>,
}

impl EventObserver for Tally {
    fn observe(&self, batch: Observed<'_>) {
        let mut t = self.inner.lock().expect("tally");
        for e in batch.events {
            let strategy = e.strategy.as_deref().unwrap_or("-").to_owned();
            *t.rows
                .entry((
                    e.source.to_string(),
                    strategy,
                    e.outcome.as_str().to_owned(),
                ))
                .or_default() += e.count;
            *t.classes
                .entry((e.source.to_string(), e.class.as_str().to_owned()))
                .or_default() += e.count;
            if e.class == self_healing::ErrorClass::CircuitOpen {
                let refused = t.circuit_refused.entry(e.source.to_string()).or_default();
                refused.0 += e.count;
                if e.outcome == self_healing::Outcome::Healed {
                    refused.1 += e.count;
                }
            }
        }
    }
}

impl Tally {
    /// (source, strategy, outcome) → calls, as written to the store.
    pub fn rows(&self) -> BTreeMap<(String, String, String), u64> {
        self.inner.lock().expect("tally").rows.clone()
    }

    /// (healed, not healed) calls so far.
    pub fn outcomes(&self) -> (u64, u64) {
        let t = self.inner.lock().expect("tally");
        t.rows.iter().fold((0, 0), |(h, f), ((_, _, outcome), n)| {
            if outcome == "healed" {
                (h + n, f)
            } else {
                (h, f + n)
            }
        })
    }

    /// source → (calls an open circuit refused, of which healed, e.g. from cache).
    pub fn circuit_refused(&self) -> BTreeMap<String, (u64, u64)> {
        self.inner.lock().expect("tally").circuit_refused.clone()
    }

    /// (source, error class) → calls.
    pub fn classes(&self) -> BTreeMap<(String, String), u64> {
        self.inner.lock().expect("tally").classes.clone()
    }
}

/// Calls and caller-visible errors per source, counted by the load driver.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    pub(crate) by_source: Mutex<BTreeMap<&'static str, (u64, u64)>>,
    pub(crate) total: AtomicU64,
    /// Mails the caller was told were queued for later.
    pub(crate) queued: AtomicU64,
    /// The welcome mails in flight.
    pub(crate) mails: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Calls {
    fn record<T>(&self, source: &'static str, r: &Result<T, CrmError>) -> bool {
        let mut m = self.by_source.lock().expect("calls");
        let e = m.entry(source).or_default();
        e.0 += 1;
        if r.is_err() {
            e.1 += 1;
        }
        r.is_ok()
    }
}

/// A finished run: the summary and the handles to serve the dashboard.
#[derive(Debug)]
pub struct Demo {
    /// What happened.
    pub summary: Summary,
    /// The CRM tables' integrity check.
    pub crm_check: CrmCheck,
    /// The healer (installed for the process).
    pub healer: Healer,
    /// The store events went to.
    pub store: DieselStore,
    /// The live feed for the dashboard.
    pub feed: self_healing::dashboard::LiveFeed,
    /// Notifications received by the loopback admin webhook.
    pub inbox: Arc<Inbox>,
    /// What the email provider answered.
    pub provider: Arc<ProviderStats>,
    /// What the observer counted.
    pub tally: Tally,
    crm: Arc<crm::Crm>,
}

impl Demo {
    /// The CRM's own API routes (`POST /api/onboarding/invite`,
    /// `GET /api/onboarding/session/{token}`, `POST /api/test-email`, `POST /api/seed-templates`),
    /// to merge with the dashboard whose state is `dashboard`. They are guarded by the
    /// dashboard's own rules (its admin token as a bearer token or its login session, wrong
    /// tokens limited; loopback clients only without a token); same origin only; JSON bodies
    /// only.
    pub fn api_router(&self, dashboard: self_healing::dashboard::DashboardState) -> axum::Router {
        api::router(self.crm.clone(), dashboard)
    }

    /// The dashboard of this run and the CRM API next to it, with the health monitor running
    /// (every [`HEALTH_EVERY`], the first time at once) so that `/health` and the health panel
    /// follow the process. Call it inside a tokio runtime; dropping the [`Dashboard`] stops the
    /// monitor.
    ///
    /// # Errors
    /// The dashboard's [`ConfigError`](self_healing::dashboard::ConfigError), e.g. an admin
    /// token that is too short.
    pub fn dashboard(&self, admin_token: Option<&str>) -> anyhow::Result<Dashboard> {
        use self_healing::health::{ErrorRate, HealthCheck, HealthMonitor, ProcessMemory};
        // The checks the dashboard would pick for a healer, on a shorter schedule than its
        // default 2 minutes: a demo is watched live.
        let checks: Vec<Arc<dyn HealthCheck>> = vec![
            Arc::new(self_healing::dashboard::StoreCheck::new(self.store.clone())),
            Arc::new(ErrorRate::default()),
            Arc::new(ProcessMemory::default()),
        ];
        let monitor = HealthMonitor::new(self.healer.clone(), checks).every(HEALTH_EVERY);
        let mut builder = self_healing::dashboard::DashboardState::builder(self.store.clone())
            .healer(self.healer.clone())
            .feed(self.feed.clone())
            .monitor(monitor);
        if let Some(token) = admin_token {
            builder = builder.admin_token(token);
        }
        let state = builder.build()?;
        let monitor = state.monitor().spawn();
        let app = self
            .api_router(state.clone())
            .merge(self_healing::dashboard::router(state.clone()));
        Ok(Dashboard {
            state,
            app,
            monitor,
        })
    }
}

/// The demo's outbox worker: quick polls and short backoffs, so queued mails go out within
/// the run.
const OUTBOX: self_healing::outbox::OutboxConfig = self_healing::outbox::OutboxConfig {
    poll: Duration::from_millis(250),
    lease: Duration::from_secs(30),
    backoff: Duration::from_millis(500),
    max_backoff: Duration::from_secs(4),
    max_tries: 20,
    batch: 16,
    concurrency: 16,
};

/// Replays the outbox until nothing is pending (or 120 s passed); what it holds then. Its
/// wall clock follows tokio's, from the run's start, so that a test on the paused clock sees
/// backoffs end too.
async fn drain_outbox(
    healer: &Healer,
    started_wall: std::time::SystemTime,
    started: Instant,
) -> self_healing::outbox::OutboxCounts {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let counts = healer.store().outbox_counts().await.unwrap_or_default();
        if counts.pending == 0 || Instant::now() >= deadline {
            return counts;
        }
        // Whichever is later: on the paused clock, queries on the blocking pool take real time
        // without moving tokio's.
        let now = std::time::SystemTime::now().max(started_wall + started.elapsed());
        if let Err(e) = healer.replay_outbox_at(&OUTBOX, now).await {
            eprintln!("warning: the outbox could not be read: {e}");
        }
        tokio::time::sleep(OUTBOX.poll).await;
    }
}

/// How often the demo's health monitor runs the checks.
pub const HEALTH_EVERY: Duration = Duration::from_secs(30);

/// The served side of a finished run: see [`Demo::dashboard`].
#[derive(Debug)]
pub struct Dashboard {
    /// The dashboard's state (its health monitor is running).
    pub state: self_healing::dashboard::DashboardState,
    /// The dashboard's routes and the CRM API, ready to serve with the client's address
    /// (`into_make_service_with_connect_info::<SocketAddr>`).
    pub app: axum::Router,
    monitor: tokio::task::JoinHandle<()>,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.monitor.abort();
    }
}

/// Where the dashboard will be served after the load, checked before the load starts: a bad
/// setting fails at once instead of after the whole run.
#[derive(Clone)]
pub struct ServeConfig {
    /// The address to listen on (`--addr`).
    pub addr: std::net::SocketAddr,
    /// The admin token of the dashboard and the CRM API (`SELF_HEALING_ADMIN_TOKEN`); required
    /// unless `addr` is a loopback address.
    pub admin_token: Option<String>,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("addr", &self.addr)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ServeConfig {
    /// Checks the settings as the dashboard will when it is built.
    ///
    /// # Errors
    /// One line naming the setting: an admin token shorter than
    /// [`MIN_TOKEN_LEN`](self_healing::dashboard::MIN_TOKEN_LEN) bytes, or a non-loopback
    /// address without an admin token. The token itself is never in the message.
    pub fn check(&self) -> Result<(), String> {
        use self_healing::dashboard::{ConfigError, MIN_TOKEN_LEN, ServeError};
        match &self.admin_token {
            Some(token) if token.len() < MIN_TOKEN_LEN => {
                Err(ConfigError::AdminTokenTooShort { len: token.len() }.to_string())
            }
            None if !self.addr.ip().is_loopback() => {
                Err(ServeError::NoAdminToken { addr: self.addr }.to_string())
            }
            _ => Ok(()),
        }
    }
}

/// Runs the demo: starts the provider and webhook receiver, opens the CRM database and the
/// store, installs the healer (once per process), drives load, and summarizes.
///
/// # Errors
/// When a database or a loopback port cannot be opened, or a healer is installed already.
pub async fn run(config: Config) -> anyhow::Result<Demo> {
    let (regions, provider_stats) =
        provider::spawn_provider(config.provider.clone(), config.seed).await?;
    let providers = self_healing::endpoints::Endpoints::new(format!("http://{}", regions.primary))
        .or(format!("http://{}", regions.standby))
        .cooldown(Duration::from_secs(2));
    let bar = progress::bar(
        match config.max_calls {
            Some(n) => progress::Span::Calls(n),
            None => progress::Span::Time(config.duration),
        },
        config.progress,
    );
    let (hook_addr, inbox) =
        provider::spawn_webhook_receiver(config.progress.then(|| bar.clone())).await?;

    // reqwest is built with `rustls-no-provider` in this workspace; the demo talks plain HTTP
    // on loopback but the client builder still wants a provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let crm = Arc::new(crm::Crm {
        db: db::Db::open(&config.crm_database).await?,
        faults: faults::Faults::new(config.seed, config.faults.clone()),
        http: reqwest::Client::builder().build()?,
        providers: providers.clone(),
        provider_stats: provider_stats.clone(),
        token: tokio::sync::RwLock::new(String::new()),
        refreshes: AtomicU64::new(0),
        seq: AtomicU64::new(0),
        run: format!(
            "run{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis()
        ),
    });
    crm.refresh_token().await?;
    crm::set_mailer(crm.clone());

    let store = DieselStore::connect(&config.store_url).await?;
    store.sync_sites().await?;
    let feed = self_healing::dashboard::LiveFeed::new();
    let tally = Tally::default();
    let notify = NotifyDispatcher::builder()
        .notifier(SignedWebhook::new(
            &format!("http://{hook_addr}/hooks/healing"),
            "crm-demo-webhook-secret-0123456789",
        )?)
        .build()?;
    let reconnect = crm.clone();
    let refresh = crm.clone();
    let healer = Healer::builder()
        .store(store.clone())
        .observer(feed.clone())
        .observer(tally.clone())
        .notify(notify)
        .seed(config.seed)
        .breaker(config.breaker)
        .backoff(config.backoff.0, config.backoff.1)
        .on_reconnect(Category::Database, move || {
            let crm = reconnect.clone();
            async move { crm.db.rebuild().await.map_err(Into::into) }
        })
        .on_refresh_credentials(Category::Api, move || {
            let crm = refresh.clone();
            async move { crm.refresh_token().await.map_err(Into::into) }
        })
        .endpoints(Category::Api, &providers)
        .build()?;
    healer.clone().install()?;
    let outbox = healer.spawn_outbox_worker(OUTBOX);

    let calls = Arc::new(Calls::default());
    let started = Instant::now();
    let started_wall = std::time::SystemTime::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..config.workers {
        let crm = crm.clone();
        let calls = calls.clone();
        let config = config.clone();
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let client = driver(w as u64, &crm, &calls, &config, started, &stop);
            crm.faults.for_client(w as u64, client).await;
        }));
    }
    let progress = {
        let (bar, calls, healer, tally, stop) = (
            bar.clone(),
            calls.clone(),
            healer.clone(),
            tally.clone(),
            stop.clone(),
        );
        let by_calls = config.max_calls.is_some();
        // Piped output (CI logs, `| tee`) gets no bar: a plain line every 10 s instead.
        let plain = config.progress && !std::io::IsTerminal::is_terminal(&std::io::stderr());
        let mut next_line = started + progress::PLAIN_EVERY;
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let done = calls.total.load(Ordering::Relaxed);
                bar.set_position(if by_calls {
                    done
                } else {
                    started.elapsed().as_millis().try_into().unwrap_or(u64::MAX)
                });
                let (healed, failed) = tally.outcomes();
                let message =
                    progress::message(done, healed, failed, healer.queue_stats().recorded);
                if plain && Instant::now() >= next_line {
                    next_line += progress::PLAIN_EVERY;
                    eprintln!("[{:>4.0?}] {message}", started.elapsed());
                }
                bar.set_message(message);
                tokio::time::sleep(Duration::from_millis(125)).await;
            }
        })
    };
    for w in workers {
        w.await?;
    }
    let mails = std::mem::take(&mut *calls.mails.lock().expect("mails"));
    for mail in mails {
        mail.await?;
    }
    stop.store(true, Ordering::Relaxed);
    progress.await?;
    bar.finish_and_clear();
    crm.provider_stats
        .primary_down
        .store(false, Ordering::Relaxed);
    // The mails queued during the load are sent now that it is over (what the worker would
    // do in a server that keeps running), so the summary can say each was delivered once.
    outbox.abort();
    let drained = drain_outbox(&healer, started_wall, started).await;
    // The summary reads the store: say so when some events did not make it, but show the rest.
    if let Err(e) = healer.flush().await {
        eprintln!("warning: {e}");
    }
    // Let the notification dispatcher deliver what it has.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let crm_check = report::check_crm(&crm).await?;
    let mut summary = report::summarize(&calls, &tally, &healer, &crm, started.elapsed());
    summary.outbox = drained;
    summary.endpoints = providers.report();
    summary.mails_sent = provider_stats.sent.load(Ordering::Relaxed);
    summary.mails_deduplicated = provider_stats.duplicates.load(Ordering::Relaxed);
    summary.mails_delivered_twice = provider_stats.delivered_twice();
    Ok(Demo {
        summary,
        crm_check,
        healer,
        store,
        feed,
        inbox,
        provider: provider_stats,
        tally,
        crm,
    })
}

/// One client of the load driver: realistic traffic until the run is over.
async fn driver(
    worker: u64,
    crm: &crm::Crm,
    calls: &Arc<Calls>,
    config: &Config,
    started: Instant,
    stop: &AtomicBool,
) {
    let mut rng = fastrand::Rng::with_seed(config.seed.wrapping_mul(31).wrapping_add(worker));
    let org = 1 + (worker as i64 % 3);
    let mut contacts: Vec<i64> = Vec::new();
    let mut deals: Vec<i64> = Vec::new();
    let mut sessions: Vec<String> = Vec::new();
    let mut projects: Vec<i64> = Vec::new();
    loop {
        let n = calls.total.fetch_add(1, Ordering::Relaxed);
        let frac = match config.max_calls {
            Some(max) if n >= max => break,
            Some(max) => n as f64 / max as f64,
            None => started.elapsed().as_secs_f64() / config.duration.as_secs_f64(),
        };
        if started.elapsed() >= config.duration || stop.load(Ordering::Relaxed) {
            break;
        }
        crm.faults
            .set_outage(frac >= config.outage.0 && frac < config.outage.1);
        let (down_from, down_until) = config.provider.primary_outage;
        crm.provider_stats
            .primary_down
            .store(frac >= down_from && frac < down_until, Ordering::Relaxed);
        let roll = rng.u32(..100);
        match roll {
            0..=11 => {
                let (name, email) = (format!("Contact {n}"), format!("c{n}@example.com"));
                let r = crm::create_contact(crm, org, name.clone(), email.clone()).await;
                if let Ok(id) = &r {
                    contacts.push(*id);
                }
                if calls.record("createContact", &r) {
                    // Fire and forget, as a web handler would: the mail is sent beside the
                    // request, done now or queued in the outbox for the worker.
                    let tally = calls.clone();
                    let mail = tokio::spawn(async move {
                        let (sent, delivery) =
                            self_healing::outbox::track(crm::send_welcome_email(email, name)).await;
                        tally.record("sendWelcomeEmail", &sent);
                        if let self_healing::outbox::Delivery::Queued(_) = delivery {
                            tally.queued.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                    calls.mails.lock().expect("mails").push(mail);
                }
            }
            12..=19 if !contacts.is_empty() => {
                let id = contacts[rng.usize(..contacts.len())];
                let r = crm::update_contact(crm, id, format!("Renamed {n}")).await;
                calls.record("updateContact", &r);
            }
            20..=22 if contacts.len() > 3 => {
                let id = contacts.swap_remove(rng.usize(..contacts.len()));
                let r = crm::delete_contact(crm, id).await;
                calls.record("deleteContact", &r);
            }
            23..=34 if !contacts.is_empty() => {
                let id = contacts[rng.usize(..contacts.len())];
                let r = crm::get_contact(crm, id).await;
                calls.record("getContact", &r);
            }
            35..=44 => {
                let r = crm::get_contacts(crm, org).await;
                calls.record("getContacts", &r);
            }
            47..=53 => {
                let r =
                    crm::create_deal(crm, org, format!("Deal {n}"), 1000 + rng.i64(0..9000)).await;
                if let Ok(id) = &r {
                    deals.push(*id);
                }
                calls.record("createDeal", &r);
            }
            54..=58 if !deals.is_empty() => {
                let id = deals[rng.usize(..deals.len())];
                let r = crm::update_deal(crm, id, rng.i64(500..20_000)).await;
                calls.record("updateDeal", &r);
            }
            59..=65 if !deals.is_empty() => {
                let id = deals[rng.usize(..deals.len())];
                // The client sends "archived" now and then: the CRM never learned that stage.
                let stage = if rng.u32(..12) == 0 {
                    "archived"
                } else {
                    crm::STAGES[rng.usize(..crm::STAGES.len())]
                };
                let r = crm::move_deal(crm, id, stage.to_owned()).await;
                calls.record("moveDeal", &r);
            }
            66..=70 => {
                let r = crm::add_credits(crm, org, 100).await;
                calls.record("addCredits", &r);
            }
            45 => {
                let r = crm::create_project(crm, org, format!("Project {n}")).await;
                if let Ok(id) = &r {
                    projects.push(*id);
                }
                calls.record("createProject", &r);
            }
            46 if !projects.is_empty() => {
                let id = projects[rng.usize(..projects.len())];
                if rng.bool() {
                    let status = ["active", "paused", "done"][rng.usize(..3)];
                    let r = crm::update_project(crm, id, status.to_owned()).await;
                    calls.record("updateProject", &r);
                } else {
                    let r = crm::get_project_by_id(crm, id).await;
                    calls.record("getProjectById", &r);
                }
            }
            71..=76 => {
                let r = crm::use_credits(crm, org, 5).await;
                calls.record("useCredits", &r);
            }
            77..=78 => {
                let to = 1 + (org % 3);
                let r = crm::transfer_credits(crm, org, to, 3).await;
                calls.record("transferCredits", &r);
            }
            79..=82 => {
                let r = crm::start_onboarding(crm, format!("client{n}@example.com")).await;
                if let Ok(t) = &r {
                    sessions.push(t.clone());
                }
                calls.record("startOnboarding", &r);
            }
            83..=87 if !sessions.is_empty() => {
                let t = sessions[rng.usize(..sessions.len())].clone();
                let r = crm::save_step_response(crm, t, rng.u32(1..5), format!("answer {n}")).await;
                calls.record("saveStepResponse", &r);
            }
            88..=94 if !sessions.is_empty() => {
                let t = sessions.swap_remove(rng.usize(..sessions.len()));
                let r = crm::complete_onboarding(crm, t).await;
                calls.record("completeOnboarding", &r);
            }
            95..=99 => {
                let r = crm::send_test_email(crm, format!("lead{n}@example.com")).await;
                calls.record("api/test-email", &r);
            }
            _ => {
                calls.total.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}
