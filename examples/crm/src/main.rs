//! `crm`: the CRM demo. Drives load against a small CRM whose actions fail for real and heal
//! themselves, prints a summary, and serves the dashboard until Ctrl-C.

use std::time::Duration;

use clap::Parser;

/// The self-healing CRM demo.
#[derive(Debug, Parser)]
struct Args {
    /// How long the load driver runs (e.g. 60s, 2m).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Seed of the faults and the traffic (same seed, same faults).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Quit after the summary instead of serving the dashboard.
    #[arg(long)]
    exit: bool,
    /// The healing store: `sqlite://PATH`, or `postgres://…` (build with `--features postgres`).
    /// With PostgreSQL the CRM's own tables go there too, unless `--crm-database` says otherwise.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://self-healing-demo.db"
    )]
    database_url: String,
    /// The CRM's own tables (contacts, deals, credits, …): a SQLite path or a `postgres://` URL.
    /// Default: `crm-demo.db` next to a SQLite store, the store's database with PostgreSQL.
    #[arg(long)]
    crm_database: Option<String>,
    /// The dashboard's address (loopback only: no admin token is set).
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let crm_database = args
        .crm_database
        .unwrap_or_else(|| default_crm_database(&args.database_url));
    let config = self_healing_crm::Config {
        seed: args.seed,
        duration: args.duration,
        store_url: args.database_url,
        crm_database,
        ..Default::default()
    };
    println!(
        "CRM demo: {} wrapped actions, seed {}, running {:?}",
        self_healing::sites().len(),
        config.seed,
        config.duration
    );
    let demo = self_healing_crm::run(config).await?;
    println!("\n{}", demo.summary);
    println!(
        "  CRM tables: {:?}; request ids written twice: {:?}",
        demo.crm_check.rows, demo.crm_check.duplicated
    );
    println!(
        "  admin notifications received by the loopback webhook: {}",
        demo.inbox.bodies.lock().expect("inbox").len()
    );
    if args.exit {
        return Ok(());
    }
    let state = self_healing::dashboard::DashboardState::builder(demo.store.clone())
        .healer(demo.healer.clone())
        .feed(demo.feed.clone())
        .build()?;
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    state.check_bind(addr)?; // no admin token: loopback addresses only
    let app = demo
        .api_router()
        .merge(self_healing::dashboard::router(state.clone()));
    println!("\nDashboard: http://{addr}/platform/system-health");
    println!(
        "CRM API:   POST http://{addr}/api/onboarding/invite, GET http://{addr}/api/onboarding/session/{{token}}, POST http://{addr}/api/test-email"
    );
    println!("(Ctrl-C to quit)");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = tokio::signal::ctrl_c().await;
        state.close_streams(); // open live feeds would hold the shutdown
    })
    .await?;
    Ok(())
}

/// The CRM's tables follow a PostgreSQL store into its database; next to a SQLite store they get
/// their own file.
fn default_crm_database(store_url: &str) -> String {
    let lower = store_url.trim().to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        store_url.trim().to_owned()
    } else {
        "crm-demo.db".to_owned()
    }
}
