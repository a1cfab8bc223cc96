//! [`DashboardState`]: what the routes read (the store, the healer, the health monitor, the live
//! feed) and how they are protected (admin token, cron secret), checked once at startup.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use self_healing_runtime::Healer;
use self_healing_runtime::health::{ErrorRate, HealthCheck, HealthMonitor, ProcessMemory};
use self_healing_store::DieselStore;

use crate::auth::{AdminAuth, Csrf, Secret};
use crate::feed::{LiveFeed, Poller};
use crate::store_check::StoreCheck;
use crate::throttle::Throttle;

/// The environment variable holding the admin token.
pub const ADMIN_TOKEN_VAR: &str = "SELF_HEALING_ADMIN_TOKEN";
/// The environment variable holding the secret of `GET /api/cron/health-check`.
pub const CRON_SECRET_VAR: &str = "CRON_SECRET";
/// Shortest admin token accepted, in bytes.
pub const MIN_TOKEN_LEN: usize = 16;

/// A setting [`DashboardBuilder::build`] refused, naming the setting and what is allowed. Its
/// `Display` never includes a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The admin token is shorter than [`MIN_TOKEN_LEN`] bytes.
    AdminTokenTooShort {
        /// Its length in bytes.
        len: usize,
    },
    /// The cron secret is shorter than [`MIN_TOKEN_LEN`] bytes.
    CronSecretTooShort {
        /// Its length in bytes.
        len: usize,
    },
    /// A duration setting is out of range.
    Invalid {
        /// The setting, as named by its builder method.
        setting: &'static str,
        /// What is allowed.
        reason: &'static str,
    },
    /// Store polling was asked for outside a tokio runtime.
    NoRuntime,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::AdminTokenTooShort { len } => write!(
                f,
                "`{ADMIN_TOKEN_VAR}` is too short ({len} bytes): use at least {MIN_TOKEN_LEN}, \
                 for instance the output of `openssl rand -base64 32`"
            ),
            ConfigError::CronSecretTooShort { len } => write!(
                f,
                "`{CRON_SECRET_VAR}` is too short ({len} bytes): use at least {MIN_TOKEN_LEN}, \
                 for instance the output of `openssl rand -base64 32`"
            ),
            ConfigError::Invalid { setting, reason } => write!(f, "invalid `{setting}`: {reason}"),
            ConfigError::NoRuntime => {
                f.write_str("`poll_store` starts a task: call `build` inside a tokio runtime")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Refuses an admin token (`var` is [`ADMIN_TOKEN_VAR`]) or a cron secret ([`CRON_SECRET_VAR`])
/// shorter than [`MIN_TOKEN_LEN`] bytes: the one rule for the builder and for
/// `HealerBuilder::from_env` (see `env_check`).
pub(crate) fn check_secret(var: &str, value: &str) -> Result<(), ConfigError> {
    let len = value.len();
    match var {
        _ if len >= MIN_TOKEN_LEN => Ok(()),
        ADMIN_TOKEN_VAR => Err(ConfigError::AdminTokenTooShort { len }),
        _ => Err(ConfigError::CronSecretTooShort { len }),
    }
}

/// Everything the dashboard's routes need. Build it with [`DashboardState::builder`]; cloning is
/// cheap and shares everything.
#[derive(Clone)]
pub struct DashboardState {
    pub(crate) inner: Arc<Inner>,
}

/// Reads a group of counters for `/metrics` and the page.
pub(crate) type CounterFn = Arc<dyn Fn() -> Vec<(&'static str, u64)> + Send + Sync>;

pub(crate) struct Inner {
    pub(crate) store: DieselStore,
    pub(crate) healer: Option<Healer>,
    pub(crate) monitor: HealthMonitor,
    pub(crate) feed: LiveFeed,
    pub(crate) admin: Option<AdminAuth>,
    /// The circuit forms' anti-CSRF tokens.
    pub(crate) csrf: Csrf,
    pub(crate) cron: Option<Secret>,
    /// Wrong admin tokens per client (login form and bearer header).
    pub(crate) throttle: Throttle,
    pub(crate) public_metrics: bool,
    pub(crate) secure_cookie: bool,
    pub(crate) session_ttl: Duration,
    pub(crate) counters: Vec<(&'static str, CounterFn)>,
    pub(crate) _poller: Option<Poller>,
    /// Turns `true` when open live-feed streams must end (graceful shutdown).
    pub(crate) closing: tokio::sync::watch::Sender<bool>,
}

impl fmt::Debug for DashboardState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("DashboardState")
            .field("store", &i.store.url())
            .field("healer", &i.healer.as_ref().map(Healer::instance_id))
            .field("admin_token", &i.admin.as_ref().map(|_| "***"))
            .field("cron_secret", &i.cron.as_ref().map(|_| "***"))
            .field("public_metrics", &i.public_metrics)
            .finish_non_exhaustive()
    }
}

impl DashboardState {
    /// A builder for a dashboard over `store`.
    pub fn builder(store: DieselStore) -> DashboardBuilder {
        DashboardBuilder {
            store,
            healer: None,
            monitor: None,
            feed: None,
            admin: None,
            cron: None,
            from_env: false,
            public_metrics: false,
            secure_cookie: false,
            session_ttl: Duration::from_secs(12 * 3600),
            poll: None,
            counters: Vec::new(),
        }
    }

    /// The store the dashboard reads.
    pub fn store(&self) -> &DieselStore {
        &self.inner.store
    }

    /// The live feed (subscribe to it, or give it to a healer as an observer).
    pub fn feed(&self) -> &LiveFeed {
        &self.inner.feed
    }

    /// The health monitor behind `/health` and the cron endpoint.
    pub fn monitor(&self) -> &HealthMonitor {
        &self.inner.monitor
    }

    /// Whether an admin token is configured. Without one the dashboard only answers requests
    /// from loopback addresses that did not come through a proxy, and
    /// [`check_bind`](Self::check_bind) refuses other addresses.
    pub fn has_admin_token(&self) -> bool {
        self.inner.admin.is_some()
    }

    /// Ends every open live-feed stream, and makes new ones end at once. Call it when your
    /// server shuts down gracefully: open SSE connections would keep it waiting otherwise
    /// ([`serve`](crate::serve) does it for you).
    pub fn close_streams(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Checks that serving on `addr` is safe: with no admin token configured, only a loopback
    /// address is. [`serve`](crate::serve) calls it; call it yourself before serving
    /// [`router`](crate::router) from your own server.
    ///
    /// # Errors
    /// [`ServeError::NoAdminToken`](crate::ServeError::NoAdminToken) naming the address and
    /// what to do.
    pub fn check_bind(&self, addr: SocketAddr) -> Result<(), crate::ServeError> {
        if self.inner.admin.is_none() && !addr.ip().is_loopback() {
            return Err(crate::ServeError::NoAdminToken { addr });
        }
        Ok(())
    }
}

/// Builds a [`DashboardState`]; every setting is checked in [`build`](Self::build).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use self_healing_dashboard::{DashboardState, LiveFeed};
/// use self_healing_runtime::Healer;
/// use self_healing_store::DieselStore;
///
/// let store = DieselStore::connect("sqlite://self-healing.db").await?;
/// let feed = LiveFeed::new();
/// let healer = Healer::builder()
///     .store(store.clone())
///     .observer(feed.clone()) // the live activity feed and the metrics
///     .build()?;
/// let state = DashboardState::builder(store)
///     .healer(healer)
///     .feed(feed)
///     .from_env() // SELF_HEALING_ADMIN_TOKEN, CRON_SECRET
///     .build()?;
/// let app = axum::Router::new().merge(self_healing_dashboard::router(state));
/// # let _ = app; Ok(()) }
/// ```
pub struct DashboardBuilder {
    store: DieselStore,
    healer: Option<Healer>,
    monitor: Option<HealthMonitor>,
    feed: Option<LiveFeed>,
    admin: Option<String>,
    cron: Option<String>,
    from_env: bool,
    public_metrics: bool,
    secure_cookie: bool,
    session_ttl: Duration,
    poll: Option<Duration>,
    counters: Vec<(&'static str, CounterFn)>,
}

impl fmt::Debug for DashboardBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashboardBuilder")
            .field("store", &self.store.url())
            .field("admin_token", &self.admin.as_ref().map(|_| "***"))
            .field("cron_secret", &self.cron.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl DashboardBuilder {
    /// The application's healer: queue counters, learned advice, and the context of the
    /// default health checks. Without one, a healer of the dashboard's own is used.
    pub fn healer(mut self, healer: Healer) -> Self {
        self.healer = Some(healer);
        self
    }

    /// The health monitor behind `/health`, the cron endpoint and the page's health panel
    /// (default: store, error rate and memory checks for the healer).
    pub fn monitor(mut self, monitor: HealthMonitor) -> Self {
        self.monitor = Some(monitor);
        self
    }

    /// The live feed registered as the healer's observer (default: a new feed, which only
    /// shows events when [`poll_store`](Self::poll_store) is on).
    pub fn feed(mut self, feed: LiveFeed) -> Self {
        self.feed = Some(feed);
        self
    }

    /// The admin token every dashboard and API route requires (as `Authorization: Bearer`, or
    /// through the login form's cookie). Overrides `SELF_HEALING_ADMIN_TOKEN`.
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin = Some(token.into());
        self
    }

    /// The secret `GET /api/cron/health-check` requires as `Authorization: Bearer`. Overrides
    /// `CRON_SECRET`.
    pub fn cron_secret(mut self, secret: impl Into<String>) -> Self {
        self.cron = Some(secret.into());
        self
    }

    /// Reads `SELF_HEALING_ADMIN_TOKEN` and `CRON_SECRET` for the settings not given
    /// explicitly (empty values count as unset).
    pub fn from_env(mut self) -> Self {
        self.from_env = true;
        self
    }

    /// Serves `/metrics` without authentication (default: it needs the admin token, which a
    /// Prometheus scrape config can send as a bearer token).
    pub fn public_metrics(mut self, public: bool) -> Self {
        self.public_metrics = public;
        self
    }

    /// Marks the login cookie `Secure` (default: only when the login request says it came over
    /// HTTPS through `X-Forwarded-Proto`). Turn it on behind TLS.
    pub fn secure_cookie(mut self, secure: bool) -> Self {
        self.secure_cookie = secure;
        self
    }

    /// How long a login lasts (default 12 hours, 1 minute to 30 days).
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// Feeds the live feed by polling the store every `interval` for new events, for a
    /// dashboard that runs apart from the application (the CLI's `serve`).
    pub fn poll_store(mut self, interval: Duration) -> Self {
        self.poll = Some(interval);
        self
    }

    /// A group of counters read at every `/metrics` scrape and page view, exported as
    /// `self_healing_<group>_<name>_total` and listed on the page. `group` is lower-case
    /// letters, digits and `_`.
    pub fn counters(
        mut self,
        group: &'static str,
        read: impl Fn() -> Vec<(&'static str, u64)> + Send + Sync + 'static,
    ) -> Self {
        self.counters.push((group, Arc::new(read)));
        self
    }

    /// The LLM analyzer's counters (questions asked, answered, refused, rate limited, …).
    #[cfg(feature = "llm")]
    pub fn llm(self, analyzer: &self_healing_runtime::llm::LlmAnalyzer) -> Self {
        let analyzer = analyzer.clone();
        self.counters("llm", move || analyzer.stats().pairs().to_vec())
    }

    /// The notification dispatcher's counters (alerts, digests, deliveries, failures, …).
    #[cfg(feature = "notify")]
    pub fn notify(self, dispatcher: &self_healing_runtime::notify::NotifyDispatcher) -> Self {
        let dispatcher = dispatcher.clone();
        self.counters("notifications", move || dispatcher.stats().pairs().to_vec())
    }

    /// Checks the settings and builds the state.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad setting.
    pub fn build(self) -> Result<DashboardState, ConfigError> {
        let env = |var: &str| std::env::var(var).ok().filter(|v| !v.trim().is_empty());
        let admin = match self.admin {
            Some(t) => Some(t),
            None if self.from_env => env(ADMIN_TOKEN_VAR),
            None => None,
        };
        let cron = match self.cron {
            Some(t) => Some(t),
            None if self.from_env => env(CRON_SECRET_VAR),
            None => None,
        };
        let admin_token = admin.clone();
        let admin = match admin {
            Some(t) => {
                check_secret(ADMIN_TOKEN_VAR, &t)?;
                Some(AdminAuth::new(t.as_bytes()))
            }
            None => None,
        };
        let csrf = Csrf::new(admin_token.as_deref().map(str::as_bytes));
        let cron = match cron {
            Some(t) => {
                check_secret(CRON_SECRET_VAR, &t)?;
                Some(Secret::new(t.as_bytes()))
            }
            None => None,
        };
        if !(Duration::from_secs(60)..=Duration::from_secs(30 * 24 * 3600))
            .contains(&self.session_ttl)
        {
            return Err(ConfigError::Invalid {
                setting: "session_ttl",
                reason: "must be between 1 minute and 30 days",
            });
        }
        if self.poll.is_some_and(|p| p < Duration::from_millis(100)) {
            return Err(ConfigError::Invalid {
                setting: "poll_store",
                reason: "the interval must be at least 100 ms",
            });
        }
        let valid_name = |n: &str| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        };
        if self.counters.iter().any(|(group, _)| !valid_name(group)) {
            return Err(ConfigError::Invalid {
                setting: "counters",
                reason: "group names are lower-case letters, digits and `_`",
            });
        }
        let feed = self.feed.unwrap_or_default();
        let poller = match self.poll {
            Some(interval) => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(ConfigError::NoRuntime);
                }
                Some(feed.poll_store(self.store.clone(), interval))
            }
            None => None,
        };
        let monitor = match self.monitor {
            Some(m) => m,
            None => {
                let mut checks: Vec<Arc<dyn HealthCheck>> =
                    vec![Arc::new(StoreCheck::new(self.store.clone()))];
                let healer = match &self.healer {
                    Some(h) => {
                        // The error rate is the application's: only its healer counts failures.
                        checks.push(Arc::new(ErrorRate::default()));
                        h.clone()
                    }
                    None => Healer::builder()
                        .store(self.store.clone())
                        .build()
                        .map_err(|_| ConfigError::Invalid {
                            setting: "healer",
                            reason: "the dashboard's own healer could not be built",
                        })?,
                };
                checks.push(Arc::new(ProcessMemory::default()));
                HealthMonitor::new(healer, checks)
            }
        };
        Ok(DashboardState {
            inner: Arc::new(Inner {
                store: self.store,
                healer: self.healer,
                monitor,
                feed,
                admin,
                csrf,
                cron,
                throttle: Throttle::default(),
                public_metrics: self.public_metrics,
                secure_cookie: self.secure_cookie,
                session_ttl: self.session_ttl,
                counters: self.counters,
                _poller: poller,
                closing: tokio::sync::watch::Sender::new(false),
            }),
        })
    }
}
