//! The healing lab: fault traces replayed through `self_healing::chaos` against no healing, a
//! static exponential retry (backon) and self-healing, on tokio's paused clock.
//!
//! Run it with `cargo run --release -p self-healing-lab`; see BENCHMARKS.md for the table and
//! what each column means.

pub mod report;
pub mod run;
pub mod traces;

pub use report::{Check, checks, table, targets};
pub use run::{Contender, RunResult, Settings, run, settle};
pub use traces::{LabSite, Trace};
