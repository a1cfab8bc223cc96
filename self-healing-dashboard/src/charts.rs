//! The page's charts as geometry: rectangles and labels that the template writes as inline SVG
//! (escaped like any other text; no script draws them).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use self_healing_runtime::Outcome;
use self_healing_store::{FailingSource, HourlyCount, StrategyRate};

use crate::time_fmt;

/// A chart: a `viewBox`, rectangles and text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chart {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) rects: Vec<Rect>,
    pub(crate) labels: Vec<Label>,
    /// Nothing to draw: the template says so instead.
    pub(crate) empty: bool,
}

/// One rectangle, with its tooltip.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rect {
    pub(crate) x: String,
    pub(crate) y: String,
    pub(crate) w: String,
    pub(crate) h: String,
    pub(crate) class: &'static str,
    pub(crate) title: String,
}

/// One text label.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Label {
    pub(crate) x: String,
    pub(crate) y: String,
    pub(crate) text: String,
    pub(crate) anchor: &'static str,
    pub(crate) class: &'static str,
}

fn n(v: f64) -> String {
    format!("{v:.1}")
}

fn label(x: f64, y: f64, text: impl Into<String>, anchor: &'static str) -> Label {
    Label {
        x: n(x),
        y: n(y),
        text: text.into(),
        anchor,
        class: "axis",
    }
}

/// The stacking order of outcomes, bottom up, and their CSS classes.
pub(crate) const OUTCOMES: [(Outcome, &str); 7] = [
    (Outcome::Healed, "o-healed"),
    (Outcome::Queued, "o-queued"),
    (Outcome::Skipped, "o-skipped"),
    (Outcome::Failed, "o-failed"),
    (Outcome::FastFailed, "o-fast_failed"),
    (Outcome::BudgetExhausted, "o-budget_exhausted"),
    (Outcome::NotApplicable, "o-not_applicable"),
];

/// The start of the UTC hour holding `t`.
pub(crate) fn hour_start(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::from_secs(secs - secs % 3600)
}

/// Calls per hour by outcome over the `hours` hours up to `now`, stacked.
pub(crate) fn hourly(counts: &[HourlyCount], now: SystemTime, hours: u32) -> Chart {
    let (width, height) = (1300.0, 220.0);
    let (left, right, top, bottom) = (40.0, 8.0, 10.0, 24.0);
    let last = hour_start(now);
    let first = last
        .checked_sub(Duration::from_secs(
            3600 * u64::from(hours.saturating_sub(1)),
        ))
        .unwrap_or(UNIX_EPOCH);
    let mut columns = vec![[0u64; OUTCOMES.len()]; hours as usize];
    for c in counts {
        let Ok(offset) = c.hour.duration_since(first) else {
            continue;
        };
        let col = (offset.as_secs() / 3600) as usize;
        if let (Some(column), Some(k)) = (
            columns.get_mut(col),
            OUTCOMES.iter().position(|(o, _)| *o == c.outcome),
        ) {
            column[k] += c.calls;
        }
    }
    let max = columns
        .iter()
        .map(|c| c.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let col_w = plot_w / f64::from(hours.max(1));
    let mut chart = Chart {
        width: width as u32,
        height: height as u32,
        rects: Vec::new(),
        labels: Vec::new(),
        empty: max == 0,
    };
    let scale = if max == 0 { 0.0 } else { plot_h / max as f64 };
    chart
        .labels
        .push(label(left - 4.0, top + 4.0, max.to_string(), "end"));
    chart
        .labels
        .push(label(left - 4.0, top + plot_h, "0", "end"));
    for (i, column) in columns.iter().enumerate() {
        let hour = first + Duration::from_secs(3600 * i as u64);
        let x = left + col_w * i as f64 + col_w * 0.1;
        let mut y = top + plot_h;
        for (k, &calls) in column.iter().enumerate() {
            if calls == 0 {
                continue;
            }
            let h = (calls as f64 * scale).max(1.0);
            y -= h;
            let (outcome, class) = OUTCOMES[k];
            chart.rects.push(Rect {
                x: n(x),
                y: n(y),
                w: n(col_w * 0.8),
                h: n(h),
                class,
                title: format!("{} UTC: {calls} {outcome}", time_fmt::hour_label(hour)),
            });
        }
        if i % 3 == 0 || i + 1 == columns.len() {
            chart.labels.push(label(
                x + col_w * 0.4,
                height - 6.0,
                time_fmt::hour_label(hour),
                "middle",
            ));
        }
    }
    chart
}

/// Shortens a label to `max` characters.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// Horizontal bars: `(label, fraction 0–1, value text, tooltip)`.
fn bars(rows: &[(String, f64, String, String)], bar_class: &'static str) -> Chart {
    let (width, row_h, label_w, value_w) = (640.0, 26.0, 210.0, 72.0);
    let track_w = width - label_w - value_w;
    let height = (rows.len() as f64 * row_h + 4.0).max(row_h);
    let mut chart = Chart {
        width: width as u32,
        height: height as u32,
        rects: Vec::new(),
        labels: Vec::new(),
        empty: rows.is_empty(),
    };
    for (i, (name, fraction, value, title)) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 4.0;
        let mut name_label = label(0.0, y + 15.0, clip(name, 30), "start");
        name_label.class = "name";
        chart.labels.push(name_label);
        chart.rects.push(Rect {
            x: n(label_w),
            y: n(y + 3.0),
            w: n(track_w),
            h: n(14.0),
            class: "track",
            title: title.clone(),
        });
        chart.rects.push(Rect {
            x: n(label_w),
            y: n(y + 3.0),
            w: n((track_w * fraction.clamp(0.0, 1.0)).max(1.0)),
            h: n(14.0),
            class: bar_class,
            title: title.clone(),
        });
        chart
            .labels
            .push(label(width - 2.0, y + 15.0, value.clone(), "end"));
    }
    chart
}

/// Heal rate per strategy.
pub(crate) fn heal_rates(rates: &[StrategyRate]) -> Chart {
    let rows: Vec<_> = rates
        .iter()
        .map(|r| {
            (
                r.strategy.clone(),
                r.rate(),
                time_fmt::percent(r.rate()),
                format!("{}: {} of {} calls healed", r.strategy, r.healed, r.calls),
            )
        })
        .collect();
    bars(&rows, "o-healed")
}

/// The sources with the most calls not healed.
pub(crate) fn failing_sources(sources: &[FailingSource]) -> Chart {
    let max = sources.iter().map(|s| s.failures).max().unwrap_or(0).max(1);
    let rows: Vec<_> = sources
        .iter()
        .map(|s| {
            (
                s.source.clone(),
                s.failures as f64 / max as f64,
                s.failures.to_string(),
                format!(
                    "{}: {} calls not healed, the last at {}",
                    s.source,
                    s.failures,
                    time_fmt::short(s.last)
                ),
            )
        })
        .collect();
    bars(&rows, "o-failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_clipped_on_characters() {
        assert_eq!(clip("short", 22), "short");
        assert_eq!(clip("ééééééééééééééééééééééééé", 5), "éééé…");
    }

    #[test]
    fn an_empty_chart_says_so() {
        let chart = hourly(&[], SystemTime::now(), 24);
        assert!(chart.empty);
        assert!(chart.rects.is_empty());
        assert!(heal_rates(&[]).empty);
    }
}
