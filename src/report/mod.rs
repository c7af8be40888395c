//! Reports for papers: an experiment file in, a folder of figures, tables and data out.
//!
//! An [`Experiment`] (a validated TOML file, see [`experiment`]) is run by [`run`] into a
//! [`Report`]: plain data (numbers, figure descriptions, tables, tidy CSV bytes, generated prose).
//! [`render`] turns a report into the bytes of every file of the folder — `report.md`, PNG and
//! SVG figures, LaTeX and Markdown tables, CSV data and `manifest.json` — and [`write_bundle`]
//! writes them atomically, the manifest last. [`index_readme`] builds the `reports/README.md`
//! that links every report with a thumbnail.
//!
//! Everything is deterministic: the same experiment file gives the same bytes on any machine
//! and thread count, except the manifest's `wall_time_seconds`. No file holds a date.

pub mod bundle;
mod checkpoints;
mod common;
mod depth;
pub mod experiment;
mod gain;
mod heatmaps;
mod paper;
mod sinkhorn;
mod training;

pub use bundle::{Bundle, IndexEntry, index_readme, render, write_bundle};
pub use experiment::{Experiment, ExperimentKind, Spec};

use crate::error::Error;
use crate::export::markdown::Table;
use crate::plot::{HeatmapFigure, LineFigure};

/// A figure of a report.
#[derive(Clone, Debug)]
pub enum FigureData {
    /// Line panels.
    Line(LineFigure),
    /// Heat maps.
    Heatmap(HeatmapFigure),
}

/// A named figure: written as `NAME.png` and `NAME.svg`.
#[derive(Clone, Debug)]
pub struct ReportFigure {
    /// File stem.
    pub name: String,
    /// The caption in report.md.
    pub caption: String,
    /// What to draw.
    pub figure: FigureData,
}

/// A named table: written as `NAME.md` and `NAME.tex`, and shown in report.md.
#[derive(Clone, Debug)]
pub struct ReportTable {
    /// File stem.
    pub name: String,
    /// The table.
    pub table: Table,
}

/// A data file (tidy CSV) with one line saying what it holds.
#[derive(Clone, Debug)]
pub struct DataFile {
    /// File name with extension.
    pub name: String,
    /// What the rows are.
    pub description: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A file an experiment read besides itself (paper data, checkpoints).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    /// The path as written in the experiment file.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

/// What an experiment found, before rendering.
#[derive(Clone, Debug)]
pub struct Report {
    /// The key finding in one sentence (Markdown), for the index of reports.
    pub headline: String,
    /// Paragraphs (Markdown) saying what was run and what it shows, generated from the numbers.
    pub summary: Vec<String>,
    /// Figures; the first is the main one (the README thumbnail).
    pub figures: Vec<ReportFigure>,
    /// Tables.
    pub tables: Vec<ReportTable>,
    /// Tidy CSV files.
    pub data: Vec<DataFile>,
    /// The validated parameters (for the manifest).
    pub parameters: serde_json::Value,
    /// Seeds used: count and master seed, if any.
    pub seeds: Option<(u64, u64)>,
    /// Other files read.
    pub inputs: Vec<InputFile>,
}

/// Runs an experiment. Parallelism comes from the ambient rayon pool and never changes the
/// numbers; `on_progress(k)` is called as work units (see [`Experiment::work_units`]) finish.
pub fn run(experiment: &Experiment, on_progress: &mut dyn FnMut(u64)) -> Result<Report, Error> {
    match experiment.spec() {
        Spec::Gain(spec) => gain::run(spec, on_progress),
        Spec::SinkhornSweep(spec) => sinkhorn::run(spec, on_progress),
        Spec::DepthSweep(spec) => depth::run(spec, on_progress),
        Spec::Heatmaps(spec) => heatmaps::run(spec, experiment, on_progress),
        Spec::CheckpointAudit(spec) => checkpoints::run(spec, experiment, on_progress),
        Spec::Training(spec) => training::run(spec, experiment, on_progress),
    }
}
