//! How times, durations and ratios are written on the page, in the API and in the CLI.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// RFC 3339 in UTC with milliseconds: `2025-11-28T14:03:12.123Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// RFC 3339 in UTC to the second, for people: `2025-11-28 14:03:12Z`.
pub(crate) fn short(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replacen('T', " ", 1)
}

/// An RFC 3339 time from [`rfc3339`] as [`short`] writes it.
pub(crate) fn label_of_rfc3339(t: &str) -> String {
    match t.split_once('.') {
        Some((seconds, _)) => format!("{}Z", seconds.replacen('T', " ", 1)),
        None => t.replacen('T', " ", 1),
    }
}

/// Milliseconds since the epoch.
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `HH:00` of the UTC hour starting at `t`.
pub(crate) fn hour_label(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{:02}:00", (secs / 3600) % 24)
}

/// `850 µs`, `12 ms`, `1.52 s`, `3 min 5 s`.
pub(crate) fn duration(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 10_000 {
        format!("{:.1} ms", us as f64 / 1_000.0)
    } else if us < 1_000_000 {
        format!("{} ms", us / 1_000)
    } else if us < 60_000_000 {
        format!("{:.2} s", us as f64 / 1_000_000.0)
    } else {
        let s = d.as_secs();
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// Milliseconds as a float, for JSON.
pub(crate) fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// `0.873` as `87%`.
pub(crate) fn percent(ratio: f64) -> String {
    format!("{:.0}%", (ratio * 100.0).clamp(0.0, 100.0))
}

/// `part / whole` as a percentage, or `—` when `whole` is 0: no calls, nothing to rate (not
/// `0%`, which would read as "nothing healed").
pub(crate) fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        "—".to_owned()
    } else {
        percent(part as f64 / whole as f64)
    }
}

/// `s` on one line (every run of whitespace, line breaks included, as one space), at most
/// `max` characters, ending in `…` when cut. Shown as text: the page escapes it.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut chars = 0;
    for word in s.split_whitespace() {
        for c in (!out.is_empty())
            .then_some(' ')
            .into_iter()
            .chain(word.chars())
        {
            if chars == max {
                out.truncate(out.trim_end().len());
                out.push('…');
                return out;
            }
            out.push(c);
            chars += 1;
        }
    }
    out
}

/// A time as the API and CLI accept it: RFC 3339 (`2025-11-28T14:00:00Z`), or an age (`90m`,
/// `24h`, `7d`) meaning that long before `now`.
pub(crate) fn parse_time(s: &str, now: SystemTime) -> Result<SystemTime, String> {
    let s = s.trim();
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    match humantime::parse_duration(s) {
        Ok(age) => Ok(now.checked_sub(age).unwrap_or(UNIX_EPOCH)),
        Err(_) => Err(format!(
            "`{s}` is neither an RFC 3339 time (2025-11-28T14:00:00Z) nor an age (90m, 24h, 7d)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(Duration::from_micros(850)), "850 µs");
        assert_eq!(duration(Duration::from_micros(2_500)), "2.5 ms");
        assert_eq!(duration(Duration::from_millis(12)), "12 ms");
        assert_eq!(duration(Duration::from_millis(1_520)), "1.52 s");
        assert_eq!(duration(Duration::from_secs(185)), "3 min 5 s");
    }

    #[test]
    fn no_calls_is_a_dash_not_zero_percent() {
        assert_eq!(share(0, 0), "—");
        assert_eq!(share(0, 4), "0%");
        assert_eq!(share(3, 4), "75%");
    }

    #[test]
    fn messages_fit_on_one_line() {
        assert_eq!(one_line("  a\n\tb  c ", 10), "a b c");
        assert_eq!(one_line("abcdef", 6), "abcdef");
        assert_eq!(one_line("abcdefg", 6), "abcdef…");
        assert_eq!(one_line("abc defg", 4), "abc…");
        assert_eq!(one_line("ééééé", 2), "éé…");
        assert_eq!(
            one_line("<b>x</b>", 20),
            "<b>x</b>",
            "escaping is the page's job"
        );
    }

    #[test]
    fn times_parse_as_rfc3339_or_age() {
        let now = UNIX_EPOCH + Duration::from_secs(100_000);
        assert_eq!(
            parse_time("1h", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(96_400)
        );
        assert_eq!(
            parse_time("1970-01-02T00:00:00Z", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(86_400)
        );
        assert!(parse_time("yesterday", now).is_err());
        assert_eq!(
            hour_label(UNIX_EPOCH + Duration::from_secs(86_400 + 3 * 3600)),
            "03:00"
        );
    }
}
