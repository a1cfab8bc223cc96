//! What each command does. Every error comes back as one message for `main` to print.

use std::time::{Duration, SystemTime};

use self_healing_store::{DieselStore, mask_password};
use serde_json::json;
use tokio::net::TcpListener;

use super::table::{Table, print_json};
use super::{Cli, Command, EventsArgs, Failure};
use crate::api::{EventsQuery, ParsedQuery};
use crate::checklist::checklist;
use crate::state::DashboardState;
use crate::time_fmt;
use crate::views::EventView;

type Result<T> = std::result::Result<T, String>;

/// Runs one command.
pub(super) async fn run(cli: Cli) -> std::result::Result<(), Failure> {
    let url = cli.database_url.trim().to_owned();
    check_url(&url).map_err(Failure::usage)?;
    let done = match cli.command {
        Command::Serve { addr, poll } => serve(&url, addr, poll).await,
        Command::Events(args) => return events(&url, args).await,
        Command::Sites(f) => sites(&url, f.json).await,
        Command::Patterns(f) => patterns(&url, f.json).await,
        Command::Health(f) => health(&url, f.json).await,
        Command::Migrate => migrate(&url).await,
        Command::Prune { older_than, yes } => return prune(&url, older_than, yes).await,
        Command::Circuit(action) => return super::circuit::run(&url, action).await,
        Command::Queue(action) => return super::queue::run(&url, action).await,
    };
    done.map_err(Failure::from)
}

/// Refuses a database URL that is neither a URL nor something that looks like a file path:
/// the store would take `::::` for the name of a SQLite file and create it. Schemes (`…://`)
/// are left to the store, which names the ones it supports.
fn check_url(url: &str) -> Result<()> {
    let bad = |why: &str| {
        format!(
            "invalid --database-url (or DATABASE_URL) {why}: use sqlite://PATH, \
             postgres://USER:PASSWORD@HOST/DB, or a file path such as ./self-healing.db"
        )
    };
    if url.is_empty() {
        return Err(bad("(empty)"));
    }
    if url.chars().any(char::is_control) {
        return Err(bad("(it contains control characters)"));
    }
    let lower = url.to_ascii_lowercase();
    if let Some(rest) = ["sqlite://", "sqlite:"]
        .iter()
        .find_map(|p| lower.strip_prefix(p))
    {
        return match rest.split('?').next() {
            Some(path) if !path.is_empty() => Ok(()),
            _ => Err(bad(&format!("`{url}`: no path after the scheme"))),
        };
    }
    if url.contains("://") {
        return Ok(());
    }
    // A bare path: no `:` but a Windows drive letter's.
    let path = match url.as_bytes() {
        [drive, b':', b'\\' | b'/', ..] if drive.is_ascii_alphabetic() => &url[2..],
        _ => url,
    };
    if path.contains(':') {
        return Err(bad(&format!(
            "`{}`: neither a URL nor a file path",
            mask_password(url)
        )));
    }
    Ok(())
}

/// The SQLite file a URL names, if it names one.
fn sqlite_file(url: &str) -> Option<&str> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        return None;
    }
    let path = ["sqlite://", "sqlite:"]
        .iter()
        .find(|p| lower.starts_with(*p))
        .map_or(url, |p| &url[p.len()..]);
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && path != ":memory:" && !path.contains("://")).then_some(path)
}

/// Opens the store for reading: no migrations, and no new SQLite file for a mistyped path.
pub(super) async fn open(url: &str) -> Result<DieselStore> {
    if let Some(path) = sqlite_file(url)
        && !std::path::Path::new(path).exists()
    {
        return Err(format!(
            "no database at `{path}`: point --database-url (or DATABASE_URL) at the application's store, \
             or create one with `self-healing migrate`"
        ));
    }
    DieselStore::builder(url)
        .run_migrations(false)
        .connect()
        .await
        .map_err(|e| e.to_string())
}

async fn serve(url: &str, addr: std::net::SocketAddr, poll: Duration) -> Result<()> {
    let token_set = std::env::var(crate::ADMIN_TOKEN_VAR).is_ok_and(|t| !t.trim().is_empty());
    if !token_set && !addr.ip().is_loopback() {
        // Before touching the database: the answer does not depend on it.
        return Err(crate::ServeError::NoAdminToken { addr }.to_string());
    }
    let store = DieselStore::connect(url).await.map_err(|e| e.to_string())?;
    let state = DashboardState::builder(store.clone())
        .from_env()
        .poll_store(poll)
        .build()
        .map_err(|e| e.to_string())?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("self-healing dashboard: http://{local}{}", crate::BASE);
    println!("store: {}", store.url());
    if !state.has_admin_token() {
        println!(
            "no {} set: only clients on this machine can open it",
            crate::ADMIN_TOKEN_VAR
        );
    }
    let checks = state.monitor().spawn();
    let result = crate::serve(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    checks.abort();
    result.map_err(|e| e.to_string())
}

async fn events(url: &str, a: EventsArgs) -> std::result::Result<(), Failure> {
    let query = EventsQuery {
        source: a.source,
        category: a.category,
        outcome: a.outcome,
        severity: a.severity,
        fingerprint: a.fingerprint,
        since: a.since,
        until: a.until,
        after: a.after,
        limit: Some(a.limit),
    };
    let ParsedQuery {
        filter,
        after,
        limit,
    } = query
        .parse(SystemTime::now())
        .map_err(|e| Failure::usage(e.replace('`', "").replacen("invalid ", "invalid --", 1)))?;
    let store = open(url).await?;
    let page = store
        .events(&filter, after, limit)
        .await
        .map_err(|e| e.to_string())?;
    let views: Vec<EventView> = page
        .events
        .iter()
        .map(|e| EventView::from_record(e, None))
        .collect();
    if a.json {
        let body = json!({ "events": views, "next": page.next.map(|c| c.to_string()) });
        print_json(&body);
        return Ok(());
    }
    if views.is_empty() {
        println!("no healing events match");
        return Ok(());
    }
    let mut t = Table::new(&[
        "TIME (UTC)",
        "SOURCE",
        "CATEGORY",
        "CLASS",
        "SEVERITY",
        "STRATEGY",
        "OUTCOME",
        "ATT",
        "DURATION",
        "CALLS",
        "MESSAGE",
    ]);
    t.right(&[7, 8, 9]).max_width(10, 60);
    for e in &views {
        t.row(vec![
            e.time_label(),
            e.source.clone(),
            e.category.clone(),
            e.class.clone(),
            e.severity.clone(),
            e.strategy_label().to_owned(),
            e.outcome.clone(),
            e.attempts.to_string(),
            e.duration_label(),
            e.count.to_string(),
            e.message.clone(),
        ]);
    }
    print!("{}", t.render());
    if let Some(next) = page.next {
        println!("more: self-healing events --after {next} (with the same filters)");
    }
    Ok(())
}

async fn sites(url: &str, as_json: bool) -> Result<()> {
    let store = open(url).await?;
    let rows = checklist(&store.sites().await.map_err(|e| e.to_string())?, None);
    if as_json {
        print_json(&json!({ "sites": rows }));
        return Ok(());
    }
    if rows.is_empty() {
        println!(
            "no sites registered in this store yet: the application registers them at startup with `store.sync_sites()`"
        );
        return Ok(());
    }
    let mut t = Table::new(&[
        "STATUS",
        "SOURCE",
        "CATEGORY",
        "FUNCTION",
        "LOCATION",
        "FAILING CALLS",
        "HEALED",
        "LAST FAILURE",
    ]);
    t.right(&[5, 6]);
    for s in &rows {
        t.row(vec![
            s.status().to_owned(),
            s.source.clone(),
            s.category.clone(),
            s.function.clone(),
            s.location.clone(),
            s.failures.to_string(),
            s.healed.to_string(),
            s.last_error_label(),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

async fn patterns(url: &str, as_json: bool) -> Result<()> {
    let store = open(url).await?;
    let rows = store.patterns(None).await.map_err(|e| e.to_string())?;
    let mean = |tried: u64, total: Duration| {
        if tried == 0 {
            Duration::ZERO
        } else {
            total / u32::try_from(tried).unwrap_or(u32::MAX)
        }
    };
    if as_json {
        let list: Vec<_> = rows
            .iter()
            .map(|p| {
                let s = &p.row.stat;
                json!({
                    "fingerprint": p.row.fingerprint.to_hex(),
                    "strategy": p.row.strategy,
                    "tried": s.tried, "healed": s.healed, "failed": s.failed,
                    "mean_duration_ms": time_fmt::millis(mean(s.tried, s.total_duration)),
                    "first_seen": time_fmt::rfc3339(p.first_seen),
                    "last_seen": time_fmt::rfc3339(p.last_seen),
                    "ai_diagnosis": p.ai_diagnosis,
                })
            })
            .collect();
        print_json(&json!({ "patterns": list }));
        return Ok(());
    }
    if rows.is_empty() {
        println!("no learned patterns yet: they appear once strategies have acted on failures");
        return Ok(());
    }
    let mut t = Table::new(&[
        "FINGERPRINT",
        "STRATEGY",
        "TRIED",
        "HEALED",
        "FAILED",
        "HEAL RATE",
        "MEAN",
        "LAST SEEN",
        "AI DIAGNOSIS",
    ]);
    t.right(&[2, 3, 4, 5, 6]).max_width(8, 50);
    for p in &rows {
        let s = &p.row.stat;
        let rate = if s.tried == 0 {
            0.0
        } else {
            s.healed as f64 / s.tried as f64
        };
        t.row(vec![
            p.row.fingerprint.to_hex(),
            p.row.strategy.clone(),
            s.tried.to_string(),
            s.healed.to_string(),
            s.failed.to_string(),
            time_fmt::percent(rate),
            time_fmt::duration(mean(s.tried, s.total_duration)),
            time_fmt::short(p.last_seen),
            p.ai_diagnosis.clone().unwrap_or_else(|| "—".into()),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

async fn health(url: &str, as_json: bool) -> Result<()> {
    let store = open(url).await?;
    let checks = store
        .latest_health_checks()
        .await
        .map_err(|e| e.to_string())?;
    if as_json {
        let list: Vec<_> = checks
            .iter()
            .map(|c| {
                json!({
                    "name": c.check.name, "instance": c.instance,
                    "status": c.check.status.as_str(),
                    "time": time_fmt::rfc3339(c.check.time),
                    "latency_ms": time_fmt::millis(c.check.latency),
                    "message": c.check.message,
                })
            })
            .collect();
        print_json(&json!({ "checks": list }));
        return Ok(());
    }
    if checks.is_empty() {
        println!(
            "no health checks stored yet: they are stored when the application's health monitor runs"
        );
        return Ok(());
    }
    let mut t = Table::new(&["CHECK", "STATUS", "INSTANCE", "WHEN", "TOOK", "MESSAGE"]);
    t.right(&[4]).max_width(5, 70);
    for c in &checks {
        t.row(vec![
            c.check.name.clone(),
            c.check.status.as_str().to_owned(),
            c.instance.clone(),
            time_fmt::short(c.check.time),
            time_fmt::duration(c.check.latency),
            c.check.message.clone(),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

async fn migrate(url: &str) -> Result<()> {
    let store = DieselStore::connect(url).await.map_err(|e| e.to_string())?;
    println!("migrated: the store at {} is up to date", store.url());
    Ok(())
}

/// Prunes under this age delete what applications are writing now: they are confirmed first.
const PRUNE_CONFIRM_UNDER: Duration = Duration::from_secs(3600);

async fn prune(url: &str, older_than: Duration, yes: bool) -> std::result::Result<(), Failure> {
    let store = open(url).await?;
    if older_than < PRUNE_CONFIRM_UNDER && !yes {
        confirm_prune(url, older_than)?;
    }
    let r = store.prune(older_than).await.map_err(|e| e.to_string())?;
    println!(
        "pruned {} events, {} health checks, {} notifications and {} delivered outbox entries older than {} from {} (and {} old circuit notices)",
        r.events,
        r.health_checks,
        r.notifications,
        r.outbox,
        age(older_than),
        mask_password(url),
        r.circuit_notices
    );
    Ok(())
}

/// Asks on the terminal before a prune under [`PRUNE_CONFIRM_UNDER`]; without a terminal to ask
/// on (scripts, cron), refuses as a usage error: the flag says it was meant.
fn confirm_prune(url: &str, older_than: Duration) -> std::result::Result<(), Failure> {
    use std::io::{BufRead, IsTerminal, Write};
    let what = format!(
        "prune --older-than {} deletes the events, health checks and notifications of the last hour too",
        age(older_than)
    );
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(format!(
            "refusing to {what}: pass --yes to confirm (or give an age of 1h or more)"
        )));
    }
    eprint!("{what} from {}. Delete them? [y/N] ", mask_password(url));
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Failure::from(
            "prune cancelled: nothing was deleted".to_owned(),
        )),
    }
}

/// `30d`, `12h`, `90m`, or humantime's long form for anything else.
fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => humantime::format_duration(d).to_string(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        _ => humantime::format_duration(d).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_file;

    #[test]
    fn ages_read_as_typed() {
        use std::time::Duration;
        assert_eq!(super::age(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(super::age(Duration::from_secs(5_400)), "90m");
        assert_eq!(super::age(Duration::from_secs(7_200)), "2h");
    }

    #[test]
    fn database_urls_must_look_like_urls_or_paths() {
        use super::check_url;
        for ok in [
            "sqlite://a/b.db",
            "sqlite::memory:",
            "sqlite:x.db?mode=rwc",
            "./local.db",
            "self-healing.db",
            "/var/lib/app/store.db",
            "C:\\data\\store.db",
            "postgres://u:p@h/db",
            "mysql://root@db/app", // the store names the schemes it supports
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in ["::::", "", "sqlite://", "db:5432/app", "a\u{1b}b"] {
            let e = check_url(bad).unwrap_err();
            assert!(
                e.starts_with("invalid --database-url (or DATABASE_URL)"),
                "{e}"
            );
        }
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(sqlite_file("sqlite://a/b.db"), Some("a/b.db"));
        assert_eq!(sqlite_file("SQLITE:x.db?mode=rwc"), Some("x.db"));
        assert_eq!(sqlite_file("./local.db"), Some("./local.db"));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u:p@h/db"), None);
    }
}
