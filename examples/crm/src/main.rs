//! `crm`: the CRM demo. Drives load against a small CRM whose actions fail for real and heal
//! themselves, prints a summary, and serves the dashboard until Ctrl-C.

use std::process::ExitCode;
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
    /// The dashboard's address. Anything but a loopback address needs an admin token in
    /// SELF_HEALING_ADMIN_TOKEN (at least 16 bytes), which the dashboard and the CRM API then
    /// require.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: std::net::SocketAddr,
}

/// Settings the demo refuses before it runs: exit code 2, as clap's own usage errors.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let args = Args::parse();
    log_warnings();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}"), 1),
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err((message, code)) => fail(&message, code),
    }
}

/// Prints `message` as one line on stderr and exits with `code`.
fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!(
        "error: {}",
        message.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    ExitCode::from(code)
}

async fn run(args: Args) -> Result<(), (String, u8)> {
    let other = |e: anyhow::Error| (format!("{e:#}"), 1);
    // From the environment only: a flag would show the token in the process list. Empty
    // counts as unset, as for the dashboard's own `from_env`.
    let admin_token = std::env::var(self_healing::dashboard::ADMIN_TOKEN_VAR)
        .ok()
        .filter(|t| !t.trim().is_empty());
    // The serving settings and the address are checked before the load: a run can take
    // minutes, and it would be lost to a typo.
    let listener = if args.exit {
        None
    } else {
        let serve = self_healing_crm::ServeConfig {
            addr: args.addr,
            admin_token: admin_token.clone(),
        };
        serve.check().map_err(|e| (e, USAGE))?;
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|e| (format!("cannot listen on --addr {}: {e}", args.addr), USAGE))?;
        Some(listener)
    };
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
    let demo = self_healing_crm::run(config).await.map_err(other)?;
    println!("\n{}", demo.summary);
    println!(
        "  CRM tables: {:?}; request ids written twice: {:?}",
        demo.crm_check.rows, demo.crm_check.duplicated
    );
    println!(
        "  admin notifications received by the loopback webhook: {}",
        demo.inbox.bodies.lock().expect("inbox").len()
    );
    let Some(listener) = listener else {
        return Ok(());
    };
    let dashboard = demo
        .dashboard(admin_token.as_deref())
        .map_err(|e| (format!("{e:#}"), USAGE))?;
    let addr = listener.local_addr().map_err(|e| other(e.into()))?;
    dashboard
        .state
        .check_bind(addr)
        .map_err(|e| (e.to_string(), USAGE))?;
    println!("\nDashboard: http://{addr}/platform/system-health");
    println!(
        "CRM API:   POST http://{addr}/api/onboarding/invite, GET http://{addr}/api/onboarding/session/{{token}}, POST http://{addr}/api/test-email (JSON bodies)"
    );
    if admin_token.is_some() {
        println!(
            "(both need `Authorization: Bearer $SELF_HEALING_ADMIN_TOKEN`; the dashboard has a login form)"
        );
    }
    println!("(Ctrl-C to quit)");
    let state = dashboard.state.clone();
    axum::serve(
        listener,
        dashboard
            .app
            .clone()
            .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = tokio::signal::ctrl_c().await;
        state.close_streams(); // open live feeds would hold the shutdown
    })
    .await
    .map_err(|e| other(e.into()))?;
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

/// The healer's and the store's warnings (a store outage, a notification given up) go to stderr
/// unless `RUST_LOG` says otherwise: without a subscriber they would vanish.
fn log_warnings() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
