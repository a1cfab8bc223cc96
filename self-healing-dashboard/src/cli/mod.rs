//! The `self-healing` command-line tool: serve the dashboard, read events, the checklist,
//! learned patterns and health checks, migrate and prune the store.
//!
//! ```text
//! self-healing [--database-url URL] <command>
//!   serve   [--addr 127.0.0.1:8080]         the dashboard on its own (prints its URL)
//!   events  [--source S] [--category C] [--outcome O] [--severity S] [--fingerprint F]
//!           [--since 24h] [--until T] [--limit 50] [--after CURSOR] [--json]
//!   sites   [--json]                        the integration checklist
//!   patterns [--json]                       learned statistics per failure family and strategy
//!   health  [--json]                        the latest stored result of each health check
//!   migrate                                 creates or updates the tables
//!   prune   --older-than 30d [--yes]        deletes old events, health checks, notifications
//!                                           and delivered outbox entries
//!                                           (under an hour: asks first, or needs --yes)
//!   circuit open|close|reset SOURCE [--by NAME]
//!                                           steers the circuit of SOURCE on every instance
//!   circuit list [--json]                   each instance's circuit state per source
//!   queue list [--status pending|delivered|dead] [--limit 50] [--json]
//!                                           the outbox of `queue_for_later` sites, newest first
//!   queue retry KEY                         replays a pending or dead entry at the next poll
//!   queue drop KEY [--yes]                  removes an entry for good (asks first, or needs --yes)
//! ```
//!
//! The database URL comes from `--database-url`, else `DATABASE_URL`, else
//! `sqlite://self-healing.db`. Errors are one line on stderr and exit code 1 (2 for usage: an
//! unknown source or outbox key, an invalid filter or database URL, a short prune or a drop
//! without `--yes`).

mod circuit;
mod commands;
mod queue;
mod table;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// The default database URL: the store's, so the CLI reads where a healer built without a store
/// writes.
const DEFAULT_URL: &str = self_healing_store::DEFAULT_DATABASE_URL;

/// Inspect and serve what `#[self_healing]` functions did: healing events, the integration
/// checklist, learned patterns and health checks; migrate and prune the store.
#[derive(Debug, Parser)]
#[command(name = "self-healing", version)]
struct Cli {
    /// The store: a SQLite file (`sqlite://PATH` or a path) or `postgres://USER:PASSWORD@HOST/DB`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = DEFAULT_URL, global = true)]
    database_url: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the dashboard on its own, on the store (needs SELF_HEALING_ADMIN_TOKEN unless the
    /// address is a loopback address; CRON_SECRET enables the cron endpoint).
    Serve {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// How often the live feed polls the store for new events.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        poll: std::time::Duration,
    },
    /// Healing events, newest first.
    Events(EventsArgs),
    /// The integration checklist: every registered site, exercised, failed or healed.
    Sites(JsonFlag),
    /// Learned statistics per failure family and strategy.
    Patterns(JsonFlag),
    /// The latest stored result of each health check.
    Health(JsonFlag),
    /// Create or update the store's tables.
    Migrate,
    /// Delete events, health checks, notifications and delivered outbox entries older than a
    /// given age (pending and dead outbox entries are kept). An age under an
    /// hour deletes what applications are writing now: it asks first on a terminal, and needs
    /// `--yes` otherwise.
    Prune {
        /// The age, such as `30d`, `12h` or `90min`.
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: std::time::Duration,
        /// Prune without asking, even under an hour.
        #[arg(long, short)]
        yes: bool,
    },
    /// Steer a circuit on every instance sharing the store, or list each instance's circuits.
    #[command(subcommand)]
    Circuit(CircuitAction),
    /// The outbox of `queue_for_later` sites: list its entries, replay one now, or drop one.
    #[command(subcommand)]
    Queue(QueueAction),
}

#[derive(Debug, Subcommand)]
enum QueueAction {
    /// Outbox entries, newest first, with how many are pending, delivered and dead.
    List(QueueListArgs),
    /// Make a pending or dead entry due now, its tries counted afresh: a running instance
    /// replays it at its next poll. A delivered entry is never replayed.
    Retry {
        /// The entry's key (32 hex digits, as `queue list` shows it).
        key: String,
    },
    /// Remove an entry, whatever its status: it is never replayed. Asks first on a terminal,
    /// and needs `--yes` otherwise.
    Drop {
        /// The entry's key (32 hex digits, as `queue list` shows it).
        key: String,
        /// Drop without asking.
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
struct QueueListArgs {
    /// Only entries of this status (pending, delivered, dead).
    #[arg(long)]
    status: Option<String>,
    /// Entries to show (1 to 1000).
    #[arg(long, default_value = "50")]
    limit: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum CircuitAction {
    /// Refuse every call of SOURCE on every instance until closed or reset (no probes).
    Open(SteerArgs),
    /// Close the circuit of SOURCE on every instance, with an empty window.
    Close(SteerArgs),
    /// Forget the circuit's and the retry budget's history of SOURCE on every instance.
    Reset(SteerArgs),
    /// Each instance's circuit state per source, with the time of its last change.
    List(JsonFlag),
}

#[derive(Debug, Args)]
struct SteerArgs {
    /// The `source` of a wrapped function, as the store knows it (call sites, events).
    source: String,
    /// Who asks, recorded in each instance's event (default: the login name).
    #[arg(long)]
    by: Option<String>,
}

/// A failed command: its one-line message and exit code (1, or 2 for usage errors).
#[derive(Debug)]
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// A usage error: exit code 2, as clap's own.
    fn usage(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 2,
        }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure { message, code: 1 }
    }
}

#[derive(Debug, Args)]
struct JsonFlag {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct EventsArgs {
    /// Only this source.
    #[arg(long)]
    source: Option<String>,
    /// Only this category (database, api, runtime, performance).
    #[arg(long)]
    category: Option<String>,
    /// Only this outcome (healed, failed, fast_failed, budget_exhausted, not_applicable).
    #[arg(long)]
    outcome: Option<String>,
    /// Only this severity (low, medium, high, critical).
    #[arg(long)]
    severity: Option<String>,
    /// Only this failure family (16 hex digits).
    #[arg(long)]
    fingerprint: Option<String>,
    /// Events at or after this time: RFC 3339, or an age such as `24h`.
    #[arg(long)]
    since: Option<String>,
    /// Events before this time: RFC 3339, or an age.
    #[arg(long)]
    until: Option<String>,
    /// Events to show (1 to 1000).
    #[arg(long, default_value = "50")]
    limit: String,
    /// Continue after this cursor (printed below the previous page).
    #[arg(long)]
    after: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the tool with the process's arguments: what the `self-healing` binary does.
pub fn main() -> ExitCode {
    log_warnings();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e.message));
            ExitCode::from(e.code)
        }
    }
}

/// An error message on one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Warnings and errors (a store write failing, its file gone) go to stderr unless `RUST_LOG`
/// says otherwise: without a subscriber they would vanish.
fn log_warnings() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
