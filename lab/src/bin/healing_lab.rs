//! The healing lab: replays every fault trace against no healing, backon and self-healing, and
//! prints the comparison table and the targets.
//!
//! ```text
//! cargo run --release -p self-healing-lab                # every trace
//! cargo run --release -p self-healing-lab -- outage-5s   # some traces
//! cargo run --release -p self-healing-lab -- --seed 7    # another seed
//! ```
//!
//! Each (trace, contender) runs in a process of its own: wrapped sites keep process-wide state
//! (circuits, budgets), and a fresh process is the only way to give every run a clean one.

use std::process::{Command, ExitCode, Stdio};

use self_healing_lab::{self as lab, Contender, RunResult, Settings};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut settings = Settings::default();
    let mut names = Vec::new();
    let mut child: Option<(String, String)> = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seed" => match it.next().and_then(|s| s.parse().ok()) {
                Some(seed) => settings.seed = seed,
                None => return usage("--seed needs a number"),
            },
            "--calls" => match it.next().and_then(|s| s.parse().ok()) {
                Some(calls) => settings.calls = calls,
                None => return usage("--calls needs a number"),
            },
            "--run" => match (it.next(), it.next()) {
                (Some(trace), Some(contender)) => child = Some((trace, contender)),
                _ => return usage("--run needs a trace and a contender"),
            },
            "--help" | "-h" => return usage(""),
            name if name.starts_with('-') => return usage(&format!("unknown option `{name}`")),
            name => names.push(name.to_owned()),
        }
    }
    if let Some((trace, contender)) = child {
        let (Some(trace), Some(contender)) =
            (lab::traces::find(&trace), Contender::find(&contender))
        else {
            return usage("unknown trace or contender");
        };
        println!("{}", lab::run(&trace, contender, settings).to_line());
        return ExitCode::SUCCESS;
    }
    let traces: Vec<_> = if names.is_empty() {
        lab::traces::all()
    } else {
        let mut picked = Vec::new();
        for name in &names {
            match lab::traces::find(name) {
                Some(t) => picked.push(t),
                None => return usage(&format!("unknown trace `{name}`")),
            }
        }
        picked
    };
    let jobs: Vec<(String, Contender)> = traces
        .iter()
        .flat_map(|t| Contender::ALL.map(|c| (t.name.to_owned(), c)))
        .collect();
    let results = match run_children(&jobs, settings) {
        Ok(results) => results,
        Err(e) => {
            eprintln!("healing-lab: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "seed {} · {} calls per trace · {} clients · Poisson arrivals {}/s · tokio's paused clock\n",
        settings.seed, settings.calls, settings.clients, settings.rate
    );
    for t in &traces {
        println!("- `{}`: {}", t.name, t.about);
    }
    println!("\n{}", lab::table(&results));
    let checks = lab::checks(&results);
    println!("{}", lab::targets(&checks));
    let missed = checks.iter().filter(|c| !c.met).count();
    println!("{} of {} targets met", checks.len() - missed, checks.len());
    if missed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs every job in a child process of this binary, two at a time (the machines have 2 cores).
fn run_children(
    jobs: &[(String, Contender)],
    settings: Settings,
) -> Result<Vec<RunResult>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let mut results = Vec::new();
    for pair in jobs.chunks(2) {
        let children: Vec<_> = pair
            .iter()
            .map(|(trace, contender)| {
                Command::new(&exe)
                    .args(["--run", trace, contender.name()])
                    .args(["--seed", &settings.seed.to_string()])
                    .args(["--calls", &settings.calls.to_string()])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(|e| format!("cannot run {trace} {}: {e}", contender.name()))
            })
            .collect();
        for (child, (trace, contender)) in children.into_iter().zip(pair) {
            let output = child?
                .wait_with_output()
                .map_err(|e| format!("{trace} {} did not finish: {e}", contender.name()))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            let parsed = stdout.lines().find_map(RunResult::parse).ok_or_else(|| {
                format!(
                    "{trace} {} printed no result: {}",
                    contender.name(),
                    String::from_utf8_lossy(&output.stderr)
                )
            })?;
            results.push(parsed);
        }
    }
    Ok(results)
}

fn usage(problem: &str) -> ExitCode {
    if !problem.is_empty() {
        eprintln!("healing-lab: {problem}\n");
    }
    eprintln!("usage: healing-lab [TRACE..] [--seed N] [--calls N]");
    eprintln!(
        "traces: {}",
        lab::traces::all()
            .iter()
            .map(|t| t.name)
            .collect::<Vec<_>>()
            .join(", ")
    );
    if problem.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
