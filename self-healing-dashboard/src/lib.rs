//! The `/platform/system-health` dashboard of self-healing: an axum [`Router`] with the live
//! activity feed, charts, failure families, circuit states, health checks, the outbox of
//! `queue_for_later` sites and the integration checklist; a JSON API; the `/health`, `/metrics` and cron endpoints; and the `self-healing` CLI (feature `cli`).
//!
//! # Mounting it in your application
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use self_healing_dashboard::{DashboardState, LiveFeed};
//! use self_healing_runtime::Healer;
//! use self_healing_runtime::health::HealthMonitor;
//! use self_healing_store::DieselStore;
//!
//! let store = DieselStore::connect("sqlite://self-healing.db").await?;
//! store.sync_sites().await?; // the integration checklist
//! let feed = LiveFeed::new();
//! let healer = Healer::builder().store(store.clone()).observer(feed.clone()).build()?;
//! healer.clone().install()?;
//!
//! let state = DashboardState::builder(store)
//!     .healer(healer)
//!     .feed(feed)
//!     .from_env() // SELF_HEALING_ADMIN_TOKEN and CRON_SECRET
//!     .build()?;
//! state.monitor().spawn(); // health checks every 2 minutes
//!
//! let app = axum::Router::new()
//!     // .route("/", ...) your own routes
//!     .merge(self_healing_dashboard::router(state.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! state.check_bind(listener.local_addr()?)?; // no admin token: loopback only
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! Or let [`serve`] do the binding check, the client addresses and graceful shutdown.
//!
//! # Routes
//!
//! | route | auth | what |
//! |---|---|---|
//! | `GET /platform/system-health` | admin | the dashboard page (filters in the query string, as `api/events`) |
//! | `GET /platform/system-health/login`, `POST …/login`, `POST …/logout` | none | the login form; sets or clears the session cookie |
//! | `GET /platform/system-health/assets/app.js`, `app.css` | none | the embedded script and stylesheet |
//! | `GET /platform/system-health/api/events` | admin | events, newest first: `source`, `category`, `outcome`, `severity`, `fingerprint`, `since`, `until` (RFC 3339 or an age such as `24h`), `limit` (1–1000, default 50), `after` (the previous page's `next`) |
//! | `GET /platform/system-health/api/summary` | admin | calls by outcome and hour, heal rate per strategy, top failing sources and fingerprints, pipeline counters (`hours`, default 24) |
//! | `GET /platform/system-health/api/patterns` | admin | learned statistics per fingerprint and strategy, AI diagnosis and advice |
//! | `GET /platform/system-health/api/sites` | admin | the integration checklist |
//! | `GET /platform/system-health/api/health` | admin | the health report, plus the stored checks of every instance |
//! | `GET /platform/system-health/api/stream` | admin | the live feed as server-sent events (`ready`, `healing`, `lagged`) |
//! | `POST /platform/system-health/circuits/{source}/{command}` | admin, same origin, the page's form token (or the bearer token) | `open`, `close` or `reset` the circuit of `source` here and on every instance sharing the store; 303 back to the page |
//! | `GET /platform/system-health/api/families` | admin | failure families (events grouped by fingerprint), newest first: calls, first and last seen, sources, latest message, learned strategy and heal rate, status (`limit` 1–1000, default 50) |
//! | `POST /platform/system-health/families/{fingerprint}/{action}` | admin, same origin, the page's form token (or the bearer token) | `resolve`, `ignore` or `reopen` a failure family; 303 back to the page |
//! | `POST /platform/system-health/api/families/{fingerprint}/{action}` | as above | the same, answering JSON `{"fingerprint", "status"}` |
//! | `GET /platform/system-health/api/outbox` | admin | the outbox of `queue_for_later` sites: entries per status (`pending`, `delivered`, `dead`) and the newest pending and dead entries (`limit` of each, 1–1000, default 10), payloads left out |
//! | `GET /metrics` | admin (or none with [`DashboardBuilder::public_metrics`]) | Prometheus text format |
//! | `GET /health` | none | `application/health+json` (IETF health-check draft); 503 on `fail` |
//! | `GET /api/cron/health-check` | `Bearer $CRON_SECRET` | runs the checks now; 401 on a wrong or missing secret, 503 when `CRON_SECRET` is unset |
//!
//! # Authentication
//!
//! With an admin token (`SELF_HEALING_ADMIN_TOKEN` or [`DashboardBuilder::admin_token`]), every
//! admin route answers 401 unless the request sends `Authorization: Bearer <token>` or the
//! session cookie set by the login form (`HttpOnly`, `SameSite=Strict`, a random session id
//! signed with the token rather than the token). A session opens only the process that issued
//! it, and logging out ends it on the server. Wrong tokens (form or bearer) are limited per
//! client: 10 a minute, then 429 with `Retry-After`. Tokens and secrets are compared in constant
//! time and never logged. Without a token, admin routes answer loopback clients only, refuse with
//! 403 any request carrying a forwarding header (`X-Forwarded-For`, `Forwarded`, `X-Real-IP`,
//! `X-Forwarded-Host`, `X-Forwarded-Proto`: it came through a proxy), and [`serve`] /
//! [`DashboardState::check_bind`] refuse a non-loopback address. Every response carries a
//! Content-Security-Policy without inline scripts or styles, `frame-ancestors 'none'`,
//! `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and `Referrer-Policy: no-referrer`.

mod api;
mod assets;
mod auth;
mod bind;
mod charts;
mod checklist;
mod circuits;
#[cfg(feature = "cli")]
pub mod cli;
mod env_check;
mod families;
mod feed;
mod guard;
mod headers;
mod health;
mod metrics;
mod outbox;
mod pages;
mod random;
mod session;
mod state;
mod status;
mod store_check;
mod storm;
mod summary;
mod throttle;
mod time_fmt;
mod views;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};

pub use auth::{require_admin, same_origin};
pub use bind::{ServeError, serve};
pub use checklist::SiteRow;
pub use feed::{DEFAULT_CAPACITY, LiveFeed};
pub use state::{
    ADMIN_TOKEN_VAR, CRON_SECRET_VAR, ConfigError, DashboardBuilder, DashboardState, MIN_TOKEN_LEN,
};
pub use store_check::StoreCheck;
pub use views::{AdviceView, DiagnosisView, EventView, StepView};

/// Where the dashboard lives.
pub const BASE: &str = "/platform/system-health";

/// The dashboard's routes (see the [crate docs](crate) for the list), ready to merge into your
/// application's router.
pub fn router(state: DashboardState) -> Router {
    let admin = Router::new()
        .route(BASE, get(pages::dashboard))
        .route(&format!("{BASE}/api/events"), get(api::events))
        .route(&format!("{BASE}/api/summary"), get(api::summary))
        .route(&format!("{BASE}/api/patterns"), get(api::patterns))
        .route(&format!("{BASE}/api/sites"), get(api::sites))
        .route(&format!("{BASE}/api/health"), get(api::health))
        .route(&format!("{BASE}/api/stream"), get(api::stream))
        .route(&format!("{BASE}/api/families"), get(families::families))
        .route(&format!("{BASE}/api/outbox"), get(outbox::outbox))
        .route(
            &format!("{BASE}/api/families/{{fingerprint}}/{{action}}"),
            post(families::api_act),
        )
        .route(
            &format!("{BASE}/families/{{fingerprint}}/{{action}}"),
            post(families::act),
        )
        .route(
            &format!("{BASE}/circuits/{{source}}/{{command}}"),
            post(circuits::steer),
        );
    let metrics = Router::new().route("/metrics", get(metrics::metrics));
    let (admin, metrics) = if state.inner.public_metrics {
        (admin, metrics)
    } else {
        (admin.merge(metrics), Router::new())
    };
    let admin = admin.route_layer(from_fn_with_state(state.clone(), auth::require_admin));
    let public = Router::new()
        .route(
            &format!("{BASE}/login"),
            get(pages::login_form).post(pages::login),
        )
        .route(&format!("{BASE}/logout"), post(pages::logout))
        .route(&format!("{BASE}/assets/app.js"), get(assets::app_js))
        .route(&format!("{BASE}/assets/app.css"), get(assets::app_css))
        .route("/health", get(health::health))
        .route("/api/cron/health-check", get(health::cron));
    admin
        .merge(metrics)
        .merge(public)
        .layer(from_fn(headers::security_headers))
        .with_state(state)
}
