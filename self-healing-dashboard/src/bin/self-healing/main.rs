//! The `self-healing` command-line tool: see `self-healing --help`.

fn main() -> std::process::ExitCode {
    self_healing_dashboard::cli::main()
}
