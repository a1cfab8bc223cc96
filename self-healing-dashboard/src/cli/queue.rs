//! `self-healing queue list|retry|drop`: the outbox of `queue_for_later` sites, as an operator
//! sees it: what waits, what was delivered, what was given up; replay one entry now, or drop it.
//!
//! Keys, sources and errors come from the store (or the command line) and are shown as text:
//! invisible characters escaped, on one line.

use std::time::SystemTime;

use self_healing_runtime::outbox::{OutboxEntry, OutboxStatus};
use self_healing_store::{DieselStore, MAX_OUTBOX_PAGE, mask_password};
use serde_json::{Value, json};

use super::table::{Table, clean, print_json};
use super::{Failure, QueueAction, QueueListArgs};
use crate::time_fmt;

/// A store error of a command that needs the `outbox` table.
fn store_error(e: &self_healing_store::StoreError) -> String {
    let text = e.to_string();
    if text.contains("outbox")
        && (text.contains("no such table") || text.contains("does not exist"))
    {
        format!("{text} (the store predates the outbox: run `self-healing migrate` once)")
    } else {
        text
    }
}

pub(super) async fn run(url: &str, action: QueueAction) -> Result<(), Failure> {
    match action {
        QueueAction::List(args) => list(url, args).await,
        QueueAction::Retry { key } => retry(url, &key).await,
        QueueAction::Drop { key, yes } => drop_entry(url, &key, yes).await,
    }
}

/// `--status`, `--limit`: checked before the store is opened.
fn parse_list(args: &QueueListArgs) -> Result<(Option<OutboxStatus>, usize), Failure> {
    let status = match args.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(OutboxStatus::parse(s).ok_or_else(|| {
            Failure::usage(format!(
                "invalid --status {}: expected pending, delivered or dead",
                clean(s)
            ))
        })?),
    };
    let limit = args
        .limit
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_OUTBOX_PAGE).contains(n))
        .ok_or_else(|| {
            Failure::usage(format!(
                "invalid --limit {}: expected 1 to {MAX_OUTBOX_PAGE}",
                clean(&args.limit)
            ))
        })?;
    Ok((status, limit))
}

/// The entry as `--json` prints it. The payload is the call's arguments: JSON as stored, or
/// the stored text when it is not JSON.
fn entry_json(e: &OutboxEntry) -> Value {
    let payload = serde_json::from_str::<Value>(&e.payload)
        .unwrap_or_else(|_| Value::String(e.payload.clone()));
    json!({
        "key": e.key, "source": e.source, "status": e.status.as_str(), "attempts": e.attempts,
        "next_attempt_at": (e.status == OutboxStatus::Pending).then(|| time_fmt::rfc3339(e.next_attempt_at)),
        "created_at": time_fmt::rfc3339(e.created_at),
        "updated_at": time_fmt::rfc3339(e.updated_at),
        "last_error": e.last_error, "payload": payload,
    })
}

async fn list(url: &str, args: QueueListArgs) -> Result<(), Failure> {
    let (status, limit) = parse_list(&args)?;
    let store = super::commands::open(url).await?;
    let (entries, counts) = tokio::try_join!(
        store.outbox_entries(status, limit),
        store.count_outbox_entries()
    )
    .map_err(|e| store_error(&e))?;
    if args.json {
        let list: Vec<Value> = entries.iter().map(entry_json).collect();
        print_json(&json!({
            "entries": list,
            "counts": { "pending": counts.pending, "delivered": counts.delivered, "dead": counts.dead },
        }));
        return Ok(());
    }
    let totals = format!(
        "{} pending, {} delivered, {} dead",
        counts.pending, counts.delivered, counts.dead
    );
    if entries.is_empty() {
        let which = status.map_or(String::new(), |s| format!(" {s}"));
        println!(
            "no{which} outbox entries ({totals}): `queue_for_later` sites queue the calls that cannot succeed now here"
        );
        return Ok(());
    }
    let mut t = Table::new(&[
        "KEY",
        "SOURCE",
        "STATUS",
        "TRIES",
        "NEXT ATTEMPT (UTC)",
        "QUEUED (UTC)",
        "LAST ERROR",
    ]);
    t.right(&[3]).max_width(6, 70);
    for e in &entries {
        t.row(vec![
            e.key.clone(),
            e.source.clone(),
            e.status.as_str().to_owned(),
            e.attempts.to_string(),
            match e.status {
                OutboxStatus::Pending => time_fmt::short(e.next_attempt_at),
                _ => "—".to_owned(),
            },
            time_fmt::short(e.created_at),
            e.last_error.clone().unwrap_or_else(|| "—".to_owned()),
        ]);
    }
    print!("{}", t.render());
    println!("{totals}");
    Ok(())
}

/// The entry `key`, or a usage error naming it (an unknown key is a typo, as an unknown source).
async fn find(store: &DieselStore, key: &str) -> Result<OutboxEntry, Failure> {
    if key.is_empty() {
        return Err(Failure::usage(
            "the key is empty: name an outbox entry's key, as `self-healing queue list` shows it",
        ));
    }
    store
        .outbox_entry(key)
        .await
        .map_err(|e| store_error(&e))?
        .ok_or_else(|| {
            Failure::usage(format!(
                "no outbox entry with the key `{}`: `self-healing queue list` shows the keys",
                clean(key)
            ))
        })
}

async fn retry(url: &str, key: &str) -> Result<(), Failure> {
    let key = key.trim();
    let store = super::commands::open(url).await?;
    let entry = find(&store, key).await?;
    let shown = clean(key);
    if entry.status == OutboxStatus::Delivered {
        return Err(Failure::from(format!(
            "the outbox entry `{shown}` of {} was delivered at {}: a delivered call is never replayed",
            clean(&entry.source),
            time_fmt::short(entry.updated_at)
        )));
    }
    if !store
        .retry_outbox_entry(key, SystemTime::now())
        .await
        .map_err(|e| store_error(&e))?
    {
        return Err(Failure::from(format!(
            "the outbox entry `{shown}` was delivered or dropped meanwhile: nothing to retry"
        )));
    }
    println!(
        "the {} outbox entry `{shown}` of {} is due now, its tries counted afresh: a running instance replays it at its next poll",
        entry.status,
        clean(&entry.source)
    );
    Ok(())
}

async fn drop_entry(url: &str, key: &str, yes: bool) -> Result<(), Failure> {
    let key = key.trim();
    let store = super::commands::open(url).await?;
    let entry = find(&store, key).await?;
    let what = format!(
        "the {} outbox entry `{}` of {} ({} tries)",
        entry.status,
        clean(key),
        clean(&entry.source),
        entry.attempts
    );
    if !yes {
        confirm_drop(url, &what)?;
    }
    if !store
        .drop_outbox_entry(key)
        .await
        .map_err(|e| store_error(&e))?
    {
        return Err(Failure::from(format!(
            "{what} was dropped meanwhile: nothing to drop"
        )));
    }
    println!("dropped {what}: it will not be replayed");
    Ok(())
}

/// Asks on the terminal before a drop; without a terminal to ask on (scripts), refuses as a
/// usage error: `--yes` says it was meant.
fn confirm_drop(url: &str, what: &str) -> Result<(), Failure> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(format!(
            "refusing to drop {what}: pass --yes to confirm"
        )));
    }
    eprint!(
        "Drop {what} from {}? Its call is never replayed. [y/N] ",
        mask_password(url)
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Failure::from(
            "drop cancelled: nothing was deleted".to_owned(),
        )),
    }
}
