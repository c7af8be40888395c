//! Tables as LaTeX: a `table` float with a `booktabs` tabular (`\toprule`, `\midrule`,
//! `\bottomrule`), ready for `\input{}`. Needs `\usepackage{booktabs}` in the preamble.
//!
//! Numbers are set in math mode with significant digits, exponents as powers of ten
//! (`$2.1\times10^{4}$`); text is escaped, and the Unicode the tool writes (σ₂, Π, ×, ≈, –, …)
//! becomes the LaTeX equivalent, so the file compiles with pdfLaTeX as well as LuaLaTeX.

use std::fmt::Write;

use super::markdown::{Align, Cell, Table, format_number};

/// A number in math mode: `$528$`, `$-15.3$`, `$2.1\times10^{4}$`, `$\infty$`.
pub(crate) fn number_latex(x: f64, digits: usize) -> String {
    format!("${}$", number_math(x, digits))
}

/// The body of [`number_latex`] without the dollars.
fn number_math(x: f64, digits: usize) -> String {
    if x.is_nan() {
        return "\\mathrm{NaN}".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "\\infty" } else { "-\\infty" }.to_string();
    }
    let text = format_number(x, digits);
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let exponent = exponent.trim_start_matches('+');
            if mantissa == "1" {
                format!("10^{{{exponent}}}")
            } else if mantissa == "-1" {
                format!("-10^{{{exponent}}}")
            } else {
                format!("{mantissa}\\times10^{{{exponent}}}")
            }
        }
        None => text,
    }
}

/// What one Unicode character becomes: plain text, or math (merged with neighbouring math);
/// runs of subscript or superscript characters become one `_{…}` or `^{…}`.
enum Piece {
    Text(String),
    Math(String),
    Subscript(String),
    Superscript(String),
}

fn translate(c: char) -> Piece {
    let math = |s: &str| Piece::Math(s.to_string());
    let text = |s: &str| Piece::Text(s.to_string());
    match c {
        '\\' => text("\\textbackslash{}"),
        '&' | '%' | '$' | '#' | '_' | '{' | '}' => Piece::Text(format!("\\{c}")),
        '~' => text("\\textasciitilde{}"),
        // OT1 fonts print these three as other glyphs in text mode.
        '|' => text("\\textbar{}"),
        '<' => text("\\textless{}"),
        '>' => text("\\textgreater{}"),
        '^' => text("\\textasciicircum{}"),
        '–' => text("--"),
        '—' => text("---"),
        '…' => text("\\ldots{}"),
        '‘' => text("`"),
        '’' => text("'"),
        '“' => text("``"),
        '”' => text("''"),
        '\u{a0}' | '\u{202f}' => text("~"),
        '×' => math("\\times "),
        '·' => math("\\cdot "),
        '⋯' => math("\\cdots "),
        '≈' => math("\\approx "),
        '≤' => math("\\le "),
        '≥' => math("\\ge "),
        '±' => math("\\pm "),
        '→' => math("\\to "),
        '∞' => math("\\infty "),
        '−' => math("-"),
        '‖' => math("\\|"),
        '√' => math("\\surd "),
        '∈' => math("\\in "),
        'ᵀ' => Piece::Superscript("\\top".to_string()),
        'σ' => math("\\sigma "),
        'λ' => math("\\lambda "),
        'ε' => math("\\varepsilon "),
        'δ' => math("\\delta "),
        'α' => math("\\alpha "),
        'Π' => math("\\Pi "),
        'Σ' => math("\\Sigma "),
        '₀'..='₉' => Piece::Subscript((c as u32 - '₀' as u32).to_string()),
        '⁰' => Piece::Superscript("0".to_string()),
        '¹' => Piece::Superscript("1".to_string()),
        '²' => Piece::Superscript("2".to_string()),
        '³' => Piece::Superscript("3".to_string()),
        '⁴'..='⁹' => Piece::Superscript((c as u32 - '⁰' as u32).to_string()),
        '⁻' => Piece::Superscript("-".to_string()),
        _ => Piece::Text(c.to_string()),
    }
}

/// Text with LaTeX's special characters escaped and the tool's Unicode turned into math;
/// neighbouring math pieces are merged (`σ₂` → `$\sigma _{2}$`, never `$…$$…$`).
pub(crate) fn escape_latex(text: &str) -> String {
    let mut out = String::new();
    let mut math = String::new();
    // An open `_{` or `^{` run in `math`, closed by anything else.
    let mut script: Option<char> = None;
    let close = |math: &mut String, script: &mut Option<char>| {
        if script.take().is_some() {
            math.push('}');
        }
    };
    for c in text.chars() {
        match translate(c) {
            Piece::Subscript(s) | Piece::Superscript(s)
                if script == Some(if is_subscript(c) { '_' } else { '^' }) =>
            {
                math.push_str(&s)
            }
            piece @ (Piece::Subscript(_) | Piece::Superscript(_)) => {
                close(&mut math, &mut script);
                let (mark, s) = match piece {
                    Piece::Subscript(s) => ('_', s),
                    Piece::Superscript(s) => ('^', s),
                    _ => unreachable!("matched above"),
                };
                let _ = write!(math, "{mark}{{{s}");
                script = Some(mark);
            }
            Piece::Math(m) => {
                close(&mut math, &mut script);
                math.push_str(&m);
            }
            Piece::Text(t) => {
                close(&mut math, &mut script);
                if !math.is_empty() {
                    let _ = write!(out, "${}$", math.trim_end());
                    math.clear();
                }
                out.push_str(&t);
            }
        }
    }
    close(&mut math, &mut script);
    if !math.is_empty() {
        let _ = write!(out, "${}$", math.trim_end());
    }
    out
}

/// Whether `c` is a Unicode subscript digit (which run continues).
fn is_subscript(c: char) -> bool {
    ('₀'..='₉').contains(&c)
}

/// A cell in LaTeX.
pub(crate) fn cell_latex(cell: &Cell) -> String {
    match cell {
        Cell::Text(t) => escape_latex(t),
        Cell::Number { value, digits } => number_latex(*value, *digits),
        Cell::Interval {
            centre,
            low,
            high,
            digits,
        } => format!(
            "${}$ \\,[${}$, ${}$]",
            number_math(*centre, *digits),
            number_math(*low, *digits),
            number_math(*high, *digits)
        ),
        Cell::Empty => "---".to_string(),
    }
}

/// The table as a LaTeX `table` float (`[t]`, centred, caption above, `\label{tab:LABEL}`),
/// booktabs rules, notes in `\footnotesize` below. Ends with a newline.
pub fn table_latex(table: &Table) -> String {
    let columns = table.header.len();
    let spec: String = (0..columns)
        .map(|k| match table.alignment(k) {
            Align::Left => 'l',
            Align::Center => 'c',
            Align::Right => 'r',
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "% Generated by mhc-analyze; needs \\usepackage{{booktabs}}."
    );
    let _ = writeln!(out, "\\begin{{table}}[t]");
    let _ = writeln!(out, "  \\centering");
    if !table.caption.trim().is_empty() {
        let _ = writeln!(out, "  \\caption{{{}}}", escape_latex(table.caption.trim()));
    }
    if !table.label.is_empty() {
        let _ = writeln!(out, "  \\label{{tab:{}}}", table.label);
    }
    let _ = writeln!(out, "  \\begin{{tabular}}{{{spec}}}");
    let _ = writeln!(out, "    \\toprule");
    let header: Vec<String> = table.header.iter().map(|h| escape_latex(h)).collect();
    let _ = writeln!(out, "    {} \\\\", header.join(" & "));
    let _ = writeln!(out, "    \\midrule");
    for (r, row) in table.rows.iter().enumerate() {
        if r > 0 && table.rules_before.contains(&r) {
            let _ = writeln!(out, "    \\midrule");
        }
        let cells: Vec<String> = row.iter().map(cell_latex).collect();
        let _ = writeln!(out, "    {} \\\\", cells.join(" & "));
    }
    let _ = writeln!(out, "    \\bottomrule");
    let _ = writeln!(out, "  \\end{{tabular}}");
    for note in &table.notes {
        let _ = writeln!(
            out,
            "  \\par\\smallskip{{\\footnotesize {}\\par}}",
            escape_latex(note.trim())
        );
    }
    let _ = writeln!(out, "\\end{{table}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_use_powers_of_ten() {
        assert_eq!(number_latex(21_000.0, 2), "$2.1\\times10^{4}$");
        assert_eq!(number_latex(1e-16, 1), "$10^{-16}$");
        assert_eq!(number_latex(-15.29, 3), "$-15.3$");
        assert_eq!(number_latex(f64::INFINITY, 3), "$\\infty$");
    }

    #[test]
    fn unicode_becomes_merged_math() {
        assert_eq!(escape_latex("σ₂ of Π"), "$\\sigma _{2}$ of $\\Pi$");
        assert_eq!(escape_latex("5–95 % of t_max"), "5--95 \\% of t\\_max");
        assert_eq!(escape_latex("H₆₀⋯H₁"), "H$_{60}\\cdots$H$_{1}$");
        assert_eq!(escape_latex("Hᵀ 10⁻¹⁶"), "H$^{\\top}$ 10$^{-16}$");
    }
}
