//! Plain-text tables for the terminal. Cells are cleaned of control characters, so a stored
//! message cannot move the cursor or recolour the terminal.

/// A table with a header row.
pub(super) struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    right: Vec<usize>,
    max: Vec<(usize, usize)>,
}

/// The cell as one line of printable characters.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
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
            "NAME        N  TEXT\na          10  line …\nlong name   2  ok\n"
        );
    }
}
