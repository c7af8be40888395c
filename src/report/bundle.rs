//! A [`Report`] → the bytes of every file of its folder, written atomically; and the index of
//! all reports (`reports/README.md`).
//!
//! Files of a report folder, in the order they are written:
//! - `NAME.png`, `NAME.svg` for each figure (the PNG losslessly recompressed);
//! - `NAME.md`, `NAME.tex` for each table;
//! - the tidy CSV files;
//! - `report.md`: title, key finding, generated summary, figures, tables, data, the command and
//!   the experiment file verbatim;
//! - `manifest.json`, last: version, experiment file and its SHA-256, parameters, seeds, inputs
//!   and outputs with their SHA-256, and `wall_time_seconds` — the only value that changes
//!   between runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};

use super::experiment::{Experiment, sha256_hex};
use super::{FigureData, Report};
use crate::error::Error;
use crate::export::latex::table_latex;
use crate::export::markdown::{numbered_table_markdown, table_markdown};
use crate::export::{json as export_json, write_all_atomic};
use crate::plot::{heatmap_figure_png, heatmap_figure_svg, line_figure_png, line_figure_svg};

/// The rendered files of one report folder.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// `(file name, bytes)` in writing order; `manifest.json` is last.
    pub files: Vec<(String, Vec<u8>)>,
    /// An entry for `reports/README.md`.
    pub index: IndexEntry,
}

/// One report in the index of reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Folder name (the experiment file's stem).
    pub name: String,
    /// The report's title.
    pub title: String,
    /// The key finding, one sentence.
    pub headline: String,
    /// File name of the main figure's PNG, if there is a figure.
    pub main_figure: Option<String>,
}

/// Losslessly recompresses a PNG (the plot module writes fast, lightly compressed PNGs; the
/// committed reports should stay small). Pixels and pixel density are unchanged.
pub(crate) fn recompress_png(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info()?;
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels)?;
    pixels.truncate(frame.buffer_size());
    let pixel_dims = reader.info().pixel_dims;
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, frame.width, frame.height);
        encoder.set_color(frame.color_type);
        encoder.set_depth(frame.bit_depth);
        encoder.set_compression(png::Compression::Best);
        // Per-row choice of the filter: 5–20 % smaller than any fixed filter on these figures.
        encoder.set_filter(png::FilterType::Paeth);
        encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        encoder.set_pixel_dims(pixel_dims);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()?;
    }
    Ok(out)
}

/// `path` for display in commands: `/` separators, no leading `./`.
pub fn display_path(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    let mut text = text.as_str();
    while let Some(rest) = text.strip_prefix("./") {
        text = rest;
    }
    text.to_string()
}

/// Renders every file of `report`. `command` is the command line that regenerates it (written
/// into report.md and the manifest); `started` is when the run began (for the wall time).
pub fn render(
    experiment: &Experiment,
    report: &Report,
    command: &str,
    started: Instant,
) -> Result<Bundle, Error> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for figure in &report.figures {
        let (png, svg) = match &figure.figure {
            FigureData::Line(f) => (line_figure_png(f)?, line_figure_svg(f)?),
            FigureData::Heatmap(f) => (heatmap_figure_png(f)?, heatmap_figure_svg(f)?),
        };
        files.push((format!("{}.png", figure.name), recompress_png(&png)?));
        files.push((format!("{}.svg", figure.name), svg.into_bytes()));
    }
    for table in &report.tables {
        files.push((
            format!("{}.md", table.name),
            table_markdown(&table.table).into_bytes(),
        ));
        files.push((
            format!("{}.tex", table.name),
            table_latex(&table.table).into_bytes(),
        ));
    }
    for data in &report.data {
        files.push((data.name.clone(), data.bytes.clone()));
    }
    files.push((
        "report.md".to_string(),
        report_markdown(experiment, report, command).into_bytes(),
    ));
    let manifest = manifest(experiment, report, command, &files, started);
    files.push((
        "manifest.json".to_string(),
        export_json::to_bytes(&manifest),
    ));
    Ok(Bundle {
        files,
        index: IndexEntry {
            name: experiment.name().to_string(),
            title: experiment.title().to_string(),
            headline: report.headline.clone(),
            main_figure: report.figures.first().map(|f| format!("{}.png", f.name)),
        },
    })
}

fn manifest(
    experiment: &Experiment,
    report: &Report,
    command: &str,
    files: &[(String, Vec<u8>)],
    started: Instant,
) -> Value {
    let outputs: Vec<Value> = files
        .iter()
        .map(|(name, bytes)| json!({ "file": name, "bytes": bytes.len(), "sha256": sha256_hex(bytes) }))
        .collect();
    let inputs: Vec<Value> = report
        .inputs
        .iter()
        .map(|i| json!({ "path": i.path, "bytes": i.bytes, "sha256": i.sha256 }))
        .collect();
    let seeds = match report.seeds {
        Some((count, master)) => json!({
            "count": count,
            "master_seed": master,
            "rng": "seed i draws from ChaCha8 keyed by the master seed, stream i (task_rng); results do not depend on the thread count",
        }),
        None => Value::Null,
    };
    // Milliseconds are plenty; the value is meant to be skipped by byte comparisons anyway.
    let wall = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    json!({
        "tool": "mhc-analyze report",
        "version": env!("CARGO_PKG_VERSION"),
        "command": command,
        "experiment": {
            "path": display_path(experiment.path()),
            "kind": experiment.kind(),
            "title": experiment.title(),
            "bytes": experiment.text().len(),
            "sha256": experiment.sha256(),
        },
        "parameters": report.parameters,
        "seeds": seeds,
        "inputs": inputs,
        "outputs": outputs,
        "conventions": "x_{l+1} = H_l x_l, rows = output streams; layers 1-based; prefix(l) = H_l⋯H_1, suffix(l) = H_L⋯H_l",
        "wall_time_seconds": wall,
    })
}

fn report_markdown(experiment: &Experiment, report: &Report, command: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", experiment.title());
    let _ = writeln!(out, "**{}**\n", report.headline.trim());
    for paragraph in &report.summary {
        let _ = writeln!(out, "{}\n", paragraph.trim());
    }
    if !report.figures.is_empty() {
        let _ = writeln!(out, "## Figures\n");
        for (k, figure) in report.figures.iter().enumerate() {
            let _ = writeln!(
                out,
                "![Figure {}: {}]({}.png)\n",
                k + 1,
                figure.name,
                figure.name
            );
            let _ = writeln!(
                out,
                "**Figure {}.** {} ([PNG]({name}.png), [SVG]({name}.svg))\n",
                k + 1,
                figure.caption.trim(),
                name = figure.name
            );
        }
    }
    if !report.tables.is_empty() {
        let _ = writeln!(out, "## Tables\n");
        for (k, table) in report.tables.iter().enumerate() {
            out.push_str(&numbered_table_markdown(&table.table, Some(k + 1)));
            let _ = writeln!(
                out,
                "\nAs LaTeX: [`{name}.tex`]({name}.tex) (booktabs) · as Markdown: [`{name}.md`]({name}.md)\n",
                name = table.name
            );
        }
    }
    if !report.data.is_empty() {
        let _ = writeln!(out, "## Data\n");
        for data in &report.data {
            let _ = writeln!(
                out,
                "- [`{name}`]({name}): {}",
                data.description.trim(),
                name = data.name
            );
        }
        let _ = writeln!(
            out,
            "\nValues are written in the shortest form that reads back as the same f64; `inf` where a value exceeds f64.\n"
        );
    }
    let _ = writeln!(out, "## Reproduce\n");
    let _ = writeln!(out, "```sh\n{command}\n```\n");
    let _ = writeln!(
        out,
        "mhc-analyze {}; experiment file `{}` (SHA-256 `{}`), verbatim:\n",
        env!("CARGO_PKG_VERSION"),
        display_path(experiment.path()),
        experiment.sha256()
    );
    let text = experiment.text();
    let _ = writeln!(
        out,
        "```toml\n{}{}```\n",
        text,
        if text.ends_with('\n') { "" } else { "\n" }
    );
    if !report.inputs.is_empty() {
        let _ = writeln!(out, "Input files:\n");
        for input in &report.inputs {
            let _ = writeln!(
                out,
                "- `{}` ({} bytes, SHA-256 `{}`)",
                input.path, input.bytes, input.sha256
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "The validated parameters, the seeds and the SHA-256 of every file of this folder are in [`manifest.json`](manifest.json); \
         regenerating gives the same bytes except its `wall_time_seconds`."
    );
    out
}

/// Writes the bundle into `directory` (created if needed): every file staged first, then
/// renamed into place in order, `manifest.json` last.
pub fn write_bundle(bundle: &Bundle, directory: &Path) -> Result<(), Error> {
    crate::export::prepare_output_directory(directory)?;
    let files: Vec<(PathBuf, Vec<u8>)> = bundle
        .files
        .iter()
        .map(|(name, bytes)| (directory.join(name), bytes.clone()))
        .collect();
    write_all_atomic(files)
}

/// `reports/README.md`: every report with its title, key finding and a thumbnail of its main
/// figure, linked to its `report.md`.
pub fn index_readme(entries: &[IndexEntry], command: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Reports\n");
    let _ = writeln!(
        out,
        "Generated by `{command}` from the experiment files in `experiments/`: one folder per file, \
         with figures (PNG and SVG), tables (LaTeX and Markdown), tidy CSV data, a `report.md` \
         and a `manifest.json`. Do not edit by hand; change the experiment and regenerate.\n"
    );
    for entry in entries {
        let _ = writeln!(
            out,
            "## [{}]({}/report.md)\n",
            entry.title.replace(['[', ']'], ""),
            entry.name
        );
        if let Some(figure) = &entry.main_figure {
            let _ = writeln!(
                out,
                "<a href=\"{name}/report.md\"><img src=\"{name}/{figure}\" width=\"400\" alt=\"{alt}\"></a>\n",
                name = entry.name,
                alt = entry.title.replace('"', "'")
            );
        }
        let _ = writeln!(out, "{}\n", entry.headline.trim());
    }
    out
}
