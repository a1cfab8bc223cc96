//! "Did you mean …?" for misspelled option keys and values.

/// The Levenshtein distance between `a` and `b`, counted in `char`s.
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The candidate closest to `input`: an alias match, then the smallest edit distance (at most 2),
/// then a candidate that starts with `input` (or that `input` starts with), at least 3 chars long.
/// Comparison ignores ASCII case, `-` versus `_` and surrounding whitespace.
pub(crate) fn did_you_mean<'a>(
    input: &str,
    candidates: &[&'a str],
    aliases: &[(&str, &'a str)],
) -> Option<&'a str> {
    let input = input.trim().to_ascii_lowercase().replace('-', "_");
    if input.is_empty() {
        return None;
    }
    if let Some((_, target)) = aliases.iter().find(|(alias, _)| *alias == input) {
        return Some(target);
    }
    let closest = candidates
        .iter()
        .map(|c| (levenshtein(&input, c), *c))
        .filter(|(distance, _)| *distance <= 2 && *distance < input.chars().count().max(2))
        .min_by_key(|(distance, _)| *distance);
    if let Some((_, c)) = closest {
        return Some(c);
    }
    if input.chars().count() >= 3 {
        return candidates
            .iter()
            .copied()
            .find(|c| c.starts_with(input.as_str()) || input.starts_with(*c));
    }
    None
}

/// `"; did you mean `x`?"` (with the given quoting), or nothing.
pub(crate) fn hint(suggestion: Option<&str>, quote: Quote) -> String {
    match suggestion {
        Some(s) => match quote {
            Quote::Code => format!("; did you mean `{s}`?"),
            Quote::Str => format!("; did you mean `\"{s}\"`?"),
        },
        None => String::new(),
    }
}

/// How a suggestion is shown: as code (`` `max_attempts` ``) or as a string (`` `"database"` ``).
#[derive(Clone, Copy)]
pub(crate) enum Quote {
    Code,
    Str,
}

/// `` `a`, `b` and `c` `` (or with string quotes).
pub(crate) fn list(items: &[&str], quote: Quote) -> String {
    let shown: Vec<String> = items
        .iter()
        .map(|i| match quote {
            Quote::Code => format!("`{i}`"),
            Quote::Str => format!("`\"{i}\"`"),
        })
        .collect();
    match shown.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("databse", "database"), 1);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("api", ""), 3);
    }

    #[test]
    fn suggestions() {
        let keys = ["source", "category", "max_attempts", "cache", "cache_skip"];
        assert_eq!(did_you_mean("sorce", &keys, &[]), Some("source"));
        assert_eq!(did_you_mean("Categroy", &keys, &[]), Some("category"));
        assert_eq!(did_you_mean("max", &keys, &[]), Some("max_attempts"));
        assert_eq!(
            did_you_mean("max-attempts", &keys, &[]),
            Some("max_attempts")
        );
        assert_eq!(
            did_you_mean("retries", &keys, &[("retries", "max_attempts")]),
            Some("max_attempts")
        );
        assert_eq!(did_you_mean("zzzzzz", &keys, &[]), None);
        // A one- or two-letter input is not "close" to everything.
        assert_eq!(did_you_mean("x", &["api"], &[]), None);
        assert_eq!(did_you_mean("", &keys, &[]), None);
    }

    #[test]
    fn lists() {
        assert_eq!(list(&["a"], Quote::Code), "`a`");
        assert_eq!(list(&["a", "b", "c"], Quote::Code), "`a`, `b` or `c`");
        assert_eq!(
            list(&["api", "runtime"], Quote::Str),
            "`\"api\"` or `\"runtime\"`"
        );
    }
}
