//! The load driver's progress bar: time (or calls) done, and what the healer has seen so far.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a run without a terminal prints a progress line instead of the bar.
pub(crate) const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// What the bar's length counts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Span {
    /// The run ends after this long: the bar counts milliseconds.
    Time(Duration),
    /// The run ends after this many calls: the bar counts calls.
    Calls(u64),
}

/// A bar on stderr, or a hidden one when `visible` is false. indicatif draws nothing when stderr
/// is not a terminal either, so piped runs and tests stay clean.
pub(crate) fn bar(span: Span, visible: bool) -> ProgressBar {
    let (len, position) = match span {
        Span::Time(d) => (d.as_millis().try_into().unwrap_or(u64::MAX), "{elapsed:>4}"),
        Span::Calls(n) => (n, "{pos}/{len} calls"),
    };
    let target = if visible {
        ProgressDrawTarget::stderr_with_hz(8)
    } else {
        ProgressDrawTarget::hidden()
    };
    let template = format!("{{spinner:.green}} {position} [{{bar:32.cyan/blue}}] {{msg}}");
    let style = ProgressStyle::with_template(&template)
        .expect("a valid progress template")
        .progress_chars("=> ");
    ProgressBar::with_draw_target(Some(len), target).with_style(style)
}

/// The bar's message: the driver's calls and the healer's outcomes so far.
pub(crate) fn message(calls: u64, healed: u64, failed: u64, recorded: u64) -> String {
    format!("{calls} calls · {healed} healed · {failed} not healed · {recorded} healing events")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_counts_what_ends_the_run() {
        assert_eq!(
            bar(Span::Time(Duration::from_secs(60)), false).length(),
            Some(60_000)
        );
        assert_eq!(bar(Span::Calls(2_500), false).length(), Some(2_500));
        assert_eq!(
            message(10, 3, 1, 4),
            "10 calls · 3 healed · 1 not healed · 4 healing events"
        );
    }
}
