//! The lab's table, and the targets healing must meet on each trace.

use std::fmt::Write as _;

use crate::run::RunResult;

/// What a trace is judged on, and the two values compared: amplification for the long
/// outage (what an open circuit is for), calls failed or slower than a second where
/// Retry-After makes calls wait, failed calls everywhere else.
fn headline(healing: &RunResult, none: &RunResult, trace: &str) -> (&'static str, f64, f64) {
    match trace {
        "outage-30s" => (
            "amplification",
            healing.amplification(),
            none.amplification(),
        ),
        "429-whole-seconds" | "throttled-3" => (
            "failed or slower than 1 s",
            healing.failed_or_slow as f64,
            none.failed_or_slow as f64,
        ),
        _ => ("failed", healing.failed as f64, none.failed as f64),
    }
}

/// One target: what must hold, and whether it did.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The trace it is about.
    pub trace: String,
    /// The target, in words.
    pub target: String,
    /// What was measured against it.
    pub measured: String,
    /// Whether it held.
    pub met: bool,
}

fn find<'a>(results: &'a [RunResult], trace: &str, contender: &str) -> Option<&'a RunResult> {
    results
        .iter()
        .find(|r| r.trace == trace && r.contender == contender)
}

/// Every target of the lab, checked against `results` (a trace with a missing contender is
/// skipped).
pub fn checks(results: &[RunResult]) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut traces: Vec<&str> = results.iter().map(|r| r.trace.as_str()).collect();
    traces.dedup();
    for trace in traces {
        let (Some(none), Some(backon), Some(healing)) = (
            find(results, trace, "no-healing"),
            find(results, trace, "backon"),
            find(results, trace, "self-healing"),
        ) else {
            continue;
        };
        let mut check = |target: &str, measured: String, met: bool| {
            checks.push(Check {
                trace: trace.to_owned(),
                target: target.to_owned(),
                measured,
                met,
            });
        };
        // Everywhere: never worse than no healing on what the trace is about, and never a
        // re-run sooner than the dependency asked.
        let (measure, healing_value, none_value) = headline(healing, none, trace);
        check(
            &format!("{measure} ≤ no healing's"),
            format!("{healing_value:.3} vs {none_value:.3}").replace(".000", ""),
            healing_value <= none_value,
        );
        check(
            "no re-run before Retry-After",
            format!("{} early re-runs", healing.early_reruns),
            healing.early_reruns == 0,
        );
        match trace {
            "lost-connection" | "expired-token" => check(
                "failed ≤ 1 % of no healing's",
                format!("{} vs {}", healing.failed, none.failed),
                healing.failed * 100 <= none.failed,
            ),
            "outage-30s" => check(
                "amplification ≤ 1.1×",
                format!("{:.3}×", healing.amplification()),
                healing.amplification() <= 1.1,
            ),
            "429-whole-seconds" | "throttled-3" => check(
                "failed or slower than 1 s ≤ backon's",
                format!("{} vs {}", healing.failed_or_slow, backon.failed_or_slow),
                healing.failed_or_slow <= backon.failed_or_slow,
            ),
            "stale-connection" => check(
                "failed ≤ 10 % of no healing's",
                format!("{} vs {}", healing.failed, none.failed),
                healing.failed * 10 <= none.failed,
            ),
            "fail-once" => {
                // Every call whose first attempt met the bad backend failed without healing.
                let healed = none.failed.saturating_sub(healing.failed);
                check(
                    "≥ 95 % of failed first attempts healed",
                    format!("{healed} of {}", none.failed),
                    healed * 100 >= none.failed * 95,
                )
            }
            _ => {}
        }
    }
    checks
}

/// The comparison table in Markdown, one row per trace and contender.
pub fn table(results: &[RunResult]) -> String {
    let mut out = String::new();
    out.push_str(
        "| trace | contender | failed | failed or > 1 s | amplification | p50 ms | p99 ms | early re-runs | settled after |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for r in results {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.3}× | {:.0} | {:.0} | {} | {} |",
            r.trace,
            r.contender,
            r.failed,
            r.failed_or_slow,
            r.amplification(),
            r.p50_ms,
            r.p99_ms,
            r.early_reruns,
            r.settle
                .map_or_else(|| "—".to_owned(), |s| format!("{s} errors")),
        );
    }
    out
}

/// The targets in Markdown, each with what was measured.
pub fn targets(checks: &[Check]) -> String {
    let mut out = String::from("| trace | target | measured | met |\n|---|---|---|---|\n");
    for c in checks {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            c.trace,
            c.target,
            c.measured,
            if c.met { "yes" } else { "**no**" }
        );
    }
    out
}
