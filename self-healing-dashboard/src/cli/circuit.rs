//! `self-healing circuit open|close|reset|list`: steer every running instance's circuit of a
//! source through the store, and show each instance's circuits.

use self_healing_runtime::circuit_control::CircuitCommand;
use serde_json::json;

use super::table::{Table, print_json};
use super::{CircuitAction, Failure};
use crate::circuits::check_source;
use crate::time_fmt;

/// Who asked, when `--by` is not given: the login name, else `cli`.
fn default_by() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| "cli".to_owned())
}

/// A store error of a command that needs the `circuit_notices` table.
fn store_error(e: &self_healing_store::StoreError) -> String {
    let text = e.to_string();
    if text.contains("circuit_notices") {
        format!("{text} (the store predates circuit commands: run `self-healing migrate` once)")
    } else {
        text
    }
}

pub(super) async fn run(url: &str, action: CircuitAction) -> Result<(), Failure> {
    let (command, args) = match action {
        CircuitAction::List(f) => return list(url, f.json).await.map_err(Failure::from),
        CircuitAction::Open(a) => (CircuitCommand::Open, a),
        CircuitAction::Close(a) => (CircuitCommand::Close, a),
        CircuitAction::Reset(a) => (CircuitCommand::Reset, a),
    };
    let source = args.source.trim();
    if source.is_empty() {
        return Err(Failure::usage(
            "the source is empty: name a `source` of a wrapped function",
        ));
    }
    let by = args
        .by
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(default_by);
    let store = super::commands::open(url).await?;
    match check_source(&store, source)
        .await
        .map_err(|e| store_error(&e))?
    {
        Ok(()) => {}
        Err(unknown) => return Err(Failure::usage(unknown.to_string())),
    }
    store
        .publish_circuit_command("cli", source, command, &by)
        .await
        .map_err(|e| store_error(&e))?;
    println!(
        "asked every instance to {command} the circuit of `{source}` (by {by}): running instances apply it within about a second; `self-healing circuit list` shows their states"
    );
    Ok(())
}

async fn list(url: &str, as_json: bool) -> Result<(), String> {
    let store = super::commands::open(url).await?;
    let records = store.circuit_states().await.map_err(|e| store_error(&e))?;
    if as_json {
        let list: Vec<_> = records
            .iter()
            .map(|r| {
                json!({
                    "source": r.source, "instance": r.instance, "state": r.state.as_str(),
                    "held_open": r.held_open, "since": time_fmt::rfc3339(r.since),
                })
            })
            .collect();
        print_json(&json!({ "circuits": list }));
        return Ok(());
    }
    if records.is_empty() {
        println!(
            "no circuit news in this store yet: instances publish each change of their circuits once they share the store"
        );
        return Ok(());
    }
    let mut t = Table::new(&["SOURCE", "INSTANCE", "STATE", "BY HAND", "SINCE (UTC)"]);
    for r in &records {
        t.row(vec![
            r.source.clone(),
            r.instance.clone(),
            r.state.as_str().to_owned(),
            if r.held_open { "yes" } else { "no" }.to_owned(),
            time_fmt::short(r.since),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}
