//! Plain-text tables for the terminal, and the escaping of invisible characters shared with
//! `--json`. Cells show control and format characters as `\u{…}` escapes, so a stored message
//! can neither move the cursor, recolour the terminal, nor reorder or hide text (bidi overrides,
//! zero-width characters).

use std::fmt::Write as _;

/// A table with a header row.
pub(super) struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    right: Vec<usize>,
    max: Vec<(usize, usize)>,
}

/// Whether `c` changes how text around it is shown without being seen itself: C0 and C1
/// controls, the line and paragraph separators, and Unicode's format characters (category Cf:
/// bidi embeddings, overrides and isolates, zero-width spaces and joiners, the byte-order mark,
/// soft hyphens, interlinear annotations, tags, …).
pub(super) fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
        )
}

/// The cell as one line of visible characters: line breaks and tabs become spaces, every other
/// invisible character (see [`is_invisible`]) its `\u{…}` escape. Also for stored or typed text
/// quoted in a message.
pub(super) fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if is_invisible(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// JSON text from `serde_json` with every invisible character (see [`is_invisible`]) that it
/// leaves as is written as a `\uXXXX` escape (a surrogate pair beyond the BMP). The text stays
/// the same JSON: `serde_json` escapes C0 controls in strings itself, so the ones left are the
/// layout's whitespace, and every other invisible character can only be inside a string, where
/// the escape means the same.
pub(super) fn escape_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c >= ' ' && is_invisible(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{:04x}", unit);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Prints `value` as pretty JSON, invisible characters escaped (`--json`).
pub(super) fn print_json(value: &serde_json::Value) {
    println!("{}", escape_json(&format!("{value:#}")));
}

fn clip(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        s
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

impl Table {
    pub(super) fn new(headers: &[&'static str]) -> Self {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
            right: Vec::new(),
            max: Vec::new(),
        }
    }

    /// Right-aligns these columns (numbers).
    pub(super) fn right(&mut self, columns: &[usize]) -> &mut Self {
        self.right.extend_from_slice(columns);
        self
    }

    /// Clips a column to `width` characters.
    pub(super) fn max_width(&mut self, column: usize, width: usize) -> &mut Self {
        self.max.push((column, width));
        self
    }

    pub(super) fn row(&mut self, cells: Vec<String>) {
        let cells = cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let c = clean(&c);
                match self.max.iter().find(|(col, _)| *col == i) {
                    Some((_, w)) => clip(c, *w),
                    None => c,
                }
            })
            .collect();
        self.rows.push(cells);
    }

    pub(super) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
            let mut parts = Vec::new();
            for (i, cell) in cells.enumerate() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                let last = i + 1 == widths.len();
                if self.right.contains(&i) {
                    parts.push(format!("{}{cell}", " ".repeat(pad)));
                } else if last {
                    parts.push(cell.to_owned());
                } else {
                    parts.push(format!("{cell}{}", " ".repeat(pad)));
                }
            }
            out.push_str(parts.join("  ").trim_end());
            out.push('\n');
        };
        line(&mut out, &mut self.headers.iter().copied());
        for row in &self.rows {
            line(&mut out, &mut row.iter().map(String::as_str));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn aligns_clips_and_cleans() {
        let mut t = Table::new(&["NAME", "N", "TEXT"]);
        t.right(&[1]).max_width(2, 6);
        t.row(vec![
            "a".into(),
            "10".into(),
            "line\u{1b}[31mred\nnext".into(),
        ]);
        t.row(vec!["long name".into(), "2".into(), "ok".into()]);
        assert_eq!(
            t.render(),
            "NAME        N  TEXT\na          10  line\\…\nlong name   2  ok\n"
        );
    }

    #[test]
    fn invisible_characters_are_escaped() {
        let mut t = Table::new(&["TEXT"]);
        t.row(vec!["pay\u{202e}txt.exe\u{200b}\u{85}\u{1b}a\tb".into()]);
        assert_eq!(
            t.render(),
            "TEXT\npay\\u{202e}txt.exe\\u{200b}\\u{85}\\u{1b}a b\n"
        );
        let json =
            serde_json::json!({ "m": "a\u{202e}b\u{feff}\u{e0041}\u{9b}c\u{1}" }).to_string();
        let escaped = super::escape_json(&json);
        assert_eq!(
            escaped,
            r#"{"m":"a\u202eb\ufeff\udb40\udc41\u009bc\u0001"}"#
        );
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        let pretty = format!("{:#}", serde_json::json!({ "m": "x\u{202e}" }));
        assert_eq!(super::escape_json(&pretty), "{\n  \"m\": \"x\\u202e\"\n}");
        assert_eq!(back["m"], "a\u{202e}b\u{feff}\u{e0041}\u{9b}c\u{1}");
    }
}
