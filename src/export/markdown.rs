//! Tables as Markdown (GitHub-flavoured pipe tables), and the plain [`Table`] that both this
//! writer and [`super::latex`] render.
//!
//! A table is data, not text: numeric cells keep their `f64` and a number of significant
//! digits, so each writer spells them its own way (`2.1e4` here, `$2.1\times10^{4}$` in LaTeX)
//! from the same value.

use std::fmt::Write;

use super::table::format_significant;

/// Horizontal alignment of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Text columns.
    Left,
    /// Centred.
    Center,
    /// Numeric columns.
    Right,
}

/// One cell of a [`Table`].
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Text as written (writers escape what their format needs).
    Text(String),
    /// A number shown with `digits` significant digits (see [`format_number`]).
    Number {
        /// The value.
        value: f64,
        /// Significant digits.
        digits: usize,
    },
    /// A central value with an interval, e.g. a median and its 5–95 % range: `528 [3.1, 2.1e4]`.
    Interval {
        /// The central value.
        centre: f64,
        /// Lower end.
        low: f64,
        /// Upper end.
        high: f64,
        /// Significant digits of all three.
        digits: usize,
    },
    /// Nothing (an em dash in both formats).
    Empty,
}

impl Cell {
    /// A text cell.
    pub fn text(text: impl Into<String>) -> Self {
        Cell::Text(text.into())
    }

    /// A number with `digits` significant digits.
    pub fn number(value: f64, digits: usize) -> Self {
        Cell::Number { value, digits }
    }

    /// A central value with its interval.
    pub fn interval(centre: f64, low: f64, high: f64, digits: usize) -> Self {
        Cell::Interval {
            centre,
            low,
            high,
            digits,
        }
    }
}

/// A small table for papers and READMEs: a caption, a header, rows of cells and notes.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// One sentence or two, printed above the table.
    pub caption: String,
    /// LaTeX label suffix (`\label{tab:<label>}`); letters, digits and `-` only.
    pub label: String,
    /// Column titles.
    pub header: Vec<String>,
    /// Alignment of each column (missing entries: left for the first column, right otherwise).
    pub align: Vec<Align>,
    /// The rows; each as long as the header.
    pub rows: Vec<Vec<Cell>>,
    /// Row indices before which a rule separates groups (LaTeX `\midrule`; Markdown has none).
    pub rules_before: Vec<usize>,
    /// Footnotes printed below the table.
    pub notes: Vec<String>,
}

impl Table {
    /// An empty table with a caption, label and header; numeric columns right-aligned except
    /// the first.
    pub fn new(caption: impl Into<String>, label: impl Into<String>, header: Vec<String>) -> Self {
        Self {
            caption: caption.into(),
            label: label.into(),
            header,
            align: Vec::new(),
            rows: Vec::new(),
            rules_before: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The alignment of column `k`.
    pub fn alignment(&self, k: usize) -> Align {
        self.align
            .get(k)
            .copied()
            .unwrap_or(if k == 0 { Align::Left } else { Align::Right })
    }

    /// Appends a row.
    pub fn push_row(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(
            row.len(),
            self.header.len(),
            "row length of '{}'",
            self.label
        );
        self.rows.push(row);
    }

    /// Puts a group rule before the next row.
    pub fn push_rule(&mut self) {
        self.rules_before.push(self.rows.len());
    }
}

/// `x` with `digits` significant digits in plain text: fixed notation for 1e-3 ≤ |x| < 1e4,
/// `1.2e4` style otherwise ([`format_significant`] with a smaller fixed range, so that 21000
/// reads as `2.1e4` and does not pretend to five digits). `inf`, `-inf`, `nan` spelled out.
pub(crate) fn format_number(x: f64, digits: usize) -> String {
    format_significant(x, digits)
}

fn escape_markdown(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A cell in Markdown.
pub fn cell_markdown(cell: &Cell) -> String {
    match cell {
        Cell::Text(t) => escape_markdown(t),
        Cell::Number { value, digits } => format_number(*value, *digits),
        Cell::Interval {
            centre,
            low,
            high,
            digits,
        } => format!(
            "{} [{}, {}]",
            format_number(*centre, *digits),
            format_number(*low, *digits),
            format_number(*high, *digits)
        ),
        Cell::Empty => "—".to_string(),
    }
}

/// The table as Markdown: `**Table.** caption`, a blank line, the pipe table, and each note as
/// an italic line. Ends with a newline.
pub fn table_markdown(table: &Table) -> String {
    numbered_table_markdown(table, None)
}

/// [`table_markdown`] with the caption numbered, `**Table 2.** caption`.
pub(crate) fn numbered_table_markdown(table: &Table, number: Option<usize>) -> String {
    let mut out = String::new();
    if !table.caption.trim().is_empty() {
        let label = match number {
            Some(k) => format!("Table {k}."),
            None => "Table.".to_string(),
        };
        let _ = writeln!(
            out,
            "**{label}** {}\n",
            escape_markdown(table.caption.trim())
        );
    }
    let cells: Vec<Vec<String>> = std::iter::once(
        table
            .header
            .iter()
            .map(|h| escape_markdown(h))
            .collect::<Vec<_>>(),
    )
    .chain(
        table
            .rows
            .iter()
            .map(|row| row.iter().map(cell_markdown).collect()),
    )
    .collect();
    let columns = table.header.len();
    let widths: Vec<usize> = (0..columns)
        .map(|k| {
            cells
                .iter()
                .map(|row| row.get(k).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
                .max(3)
        })
        .collect();
    let pad = |text: &str, k: usize| {
        let fill = widths[k].saturating_sub(text.chars().count());
        match table.alignment(k) {
            Align::Right => format!("{}{text}", " ".repeat(fill)),
            Align::Center => format!(
                "{}{text}{}",
                " ".repeat(fill / 2),
                " ".repeat(fill - fill / 2)
            ),
            Align::Left => format!("{text}{}", " ".repeat(fill)),
        }
    };
    for (r, row) in cells.iter().enumerate() {
        let line: Vec<String> = (0..columns)
            .map(|k| pad(row.get(k).map_or("", String::as_str), k))
            .collect();
        let _ = writeln!(out, "| {} |", line.join(" | "));
        if r == 0 {
            let rule: Vec<String> = (0..columns)
                .map(|k| {
                    let dashes = "-".repeat(widths[k].saturating_sub(1));
                    match table.alignment(k) {
                        Align::Left => format!("{dashes}-"),
                        Align::Right => format!("{dashes}:"),
                        Align::Center => format!(":{}:", "-".repeat(widths[k].saturating_sub(2))),
                    }
                })
                .collect();
            let _ = writeln!(out, "| {} |", rule.join(" | "));
        }
    }
    for note in &table.notes {
        let _ = writeln!(out, "\n*{}*", escape_markdown(note.trim()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_switch_to_exponents_from_ten_thousand() {
        assert_eq!(format_number(528.3, 3), "528");
        assert_eq!(format_number(21_000.0, 2), "2.1e4");
        assert_eq!(format_number(9_999.7, 3), "1.00e4");
        assert_eq!(format_number(1.23456, 3), "1.23");
        assert_eq!(format_number(2.5e-7, 2), "2.5e-7");
        assert_eq!(format_number(-15.29, 3), "-15.3");
        assert_eq!(format_number(0.0, 3), "0");
    }

    #[test]
    fn pipes_in_text_are_escaped() {
        assert_eq!(cell_markdown(&Cell::text("a|b")), "a\\|b");
        assert_eq!(cell_markdown(&Cell::Empty), "—");
    }
}
