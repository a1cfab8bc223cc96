//! Duration strings of `timeout = ".."` and `cache = ".."`: `"250ms"`, `"2s"`, `"1.5s"`, `"1m"`,
//! `"1h"`, `"500us"`, turned into nanoseconds at compile time.

use crate::suggest::{self, Quote};

/// What every duration error ends with, so the fix is on screen.
pub(crate) const EXPECTED: &str =
    "expected a duration such as \"250ms\", \"2s\" or \"1m\" (units: us, ms, s, m, h)";

const UNITS: [(&str, u64); 6] = [
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Spellings people reach for, mapped to the unit they mean.
const UNIT_ALIASES: [(&str, &str); 12] = [
    ("sec", "s"),
    ("secs", "s"),
    ("second", "s"),
    ("seconds", "s"),
    ("min", "m"),
    ("mins", "m"),
    ("minute", "m"),
    ("minutes", "m"),
    ("hour", "h"),
    ("hours", "h"),
    ("millis", "ms"),
    ("micros", "us"),
];

/// Parses `text` into nanoseconds. The error message explains what is accepted.
pub(crate) fn parse_nanos(text: &str) -> Result<u64, String> {
    if text.is_empty() {
        return Err(format!("empty duration: {EXPECTED}"));
    }
    if text.contains(char::is_whitespace) {
        let joined: String = text.split_whitespace().collect();
        return Err(format!(
            "`\"{text}\"` contains a space, write `\"{joined}\"`; {EXPECTED}"
        ));
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!(
            "`\"{text}\"` does not start with a number: {EXPECTED}"
        ));
    }
    if unit.is_empty() {
        return Err(format!("`\"{text}\"` has no unit: {EXPECTED}"));
    }
    let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        let names: Vec<&str> = UNITS.iter().map(|(name, _)| *name).collect();
        let hint = suggest::hint(
            suggest::did_you_mean(unit, &names, &UNIT_ALIASES),
            Quote::Code,
        );
        return Err(format!(
            "unknown unit `{unit}` in `\"{text}\"`: {EXPECTED}{hint}"
        ));
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (number, ""),
    };
    if whole.is_empty() || fraction.contains('.') || number.ends_with('.') {
        return Err(format!(
            "`\"{text}\"` is not a number followed by a unit: {EXPECTED}"
        ));
    }
    let too_long = || format!("`\"{text}\"` is too long: the longest duration is about 584 years");
    let whole: u64 = whole.parse().map_err(|_| too_long())?;
    let mut nanos = whole.checked_mul(scale).ok_or_else(too_long)?;
    // The fraction, digit by digit, exactly: "1.5s" is 1_500_000_000ns.
    let mut place = scale;
    for digit in fraction.chars() {
        let digit = u64::from(digit.to_digit(10).unwrap_or(0));
        if place % 10 != 0 && digit != 0 {
            return Err(format!("`\"{text}\"` is more precise than a nanosecond"));
        }
        place /= 10;
        nanos = nanos.checked_add(digit * place).ok_or_else(too_long)?;
    }
    Ok(nanos)
}

#[cfg(test)]
mod tests {
    use super::parse_nanos;

    #[test]
    fn accepted() {
        assert_eq!(parse_nanos("250ms"), Ok(250_000_000));
        assert_eq!(parse_nanos("2s"), Ok(2_000_000_000));
        assert_eq!(parse_nanos("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_nanos("1m"), Ok(60_000_000_000));
        assert_eq!(parse_nanos("1h"), Ok(3_600_000_000_000));
        assert_eq!(parse_nanos("500us"), Ok(500_000));
        assert_eq!(parse_nanos("500µs"), Ok(500_000));
        assert_eq!(parse_nanos("0.25ms"), Ok(250_000));
        assert_eq!(
            parse_nanos("0s"),
            Ok(0),
            "zero is rejected by validation, per option"
        );
        assert_eq!(parse_nanos("1.000000001s"), Ok(1_000_000_001));
    }

    #[test]
    fn rejected_with_a_reason() {
        let err = |s| parse_nanos(s).unwrap_err();
        assert!(err("2").contains("has no unit"), "{}", err("2"));
        assert!(err("ms").contains("does not start with a number"));
        assert!(err("2sec").contains("did you mean `s`?"), "{}", err("2sec"));
        assert!(err("2 s").contains("write `\"2s\"`"), "{}", err("2 s"));
        assert!(err("1.s").contains("is not a number"));
        assert!(err(".5s").contains("is not a number"));
        assert!(err("1.2.3s").contains("is not a number"));
        assert!(err("0.0000000001s").contains("more precise than a nanosecond"));
        assert!(err("99999999999h").contains("too long"));
        assert!(err("").contains("empty duration"));
        assert!(err("2d").contains("expected a duration such as \"250ms\", \"2s\" or \"1m\""));
    }
}
