//! Prints the events of one lab run, in order, folded by path: for looking inside a trace.
//! `cargo run --release -p self-healing-lab --example lab_debug -- TRACE`
fn main() {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fail-once".into());
    let trace = self_healing_lab::traces::find(&name).expect("a trace");
    let events = self_healing_lab::run::debug_events(&trace, Default::default());
    for (t, line) in events {
        println!("{t:>8.3} {line}");
    }
}
