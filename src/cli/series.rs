//! `mhc-analyze audit PATH PATH…` (or a directory): the checkpoints of a training run audited
//! as one series (see `mhc_analyze::analysis::series`).

use std::path::{Path, PathBuf};

use anyhow::Context;

use mhc_analyze::analysis::series::{SeriesConfig, audit_series, checkpoint_files, series_files};
use mhc_analyze::analysis::series_figure::{SeriesRun, series_figure, series_heatmap_figure};
use mhc_analyze::analysis::{AuditConfig, Verdict};
use mhc_analyze::export::series::{series_csv, series_json, series_markdown, series_table};
use mhc_analyze::export::{self};
use mhc_analyze::load::LoadOptions;
use mhc_analyze::plot;

use super::{Outcome, progress, write_stdout};

/// What to print on stdout for a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeriesFormat {
    /// One row per checkpoint.
    Table,
    /// The content of series.json.
    Json,
    /// Markdown.
    Markdown,
}

/// A series request, built by `audit` from its validated flags.
pub struct SeriesRequest<'a> {
    /// The paths as given (files, directories).
    pub paths: &'a [PathBuf],
    /// How to load every checkpoint.
    pub load: LoadOptions,
    /// The audit of every checkpoint.
    pub audit: AuditConfig,
    /// `--still-tolerance`.
    pub still_tolerance: f64,
    /// `--out`.
    pub out: Option<&'a Path>,
    /// `--format`.
    pub format: SeriesFormat,
    /// `--quiet`.
    pub quiet: bool,
}

/// The one checkpoint `paths` name, if they name one: a single file, or a directory holding a
/// single checkpoint (a sharded model's index with its shards, say). `None`: a series.
pub fn single_checkpoint(paths: &[PathBuf]) -> anyhow::Result<Option<PathBuf>> {
    match paths {
        [path] if path.is_dir() => Ok(match checkpoint_files(path)?.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        }),
        [path] => Ok(Some(path.clone())),
        _ => Ok(None),
    }
}

/// Audits the series and writes `series.csv`, `series.json`, `series.png/.svg` and
/// `series-heatmap.png/.svg` into `--out` (all or nothing).
pub fn run_series(request: SeriesRequest<'_>) -> anyhow::Result<Outcome> {
    let config = SeriesConfig::new(request.audit, request.still_tolerance)?;
    let files = series_files(request.paths)?;
    let prepared = request
        .out
        .map(export::OutputDirectory::prepare)
        .transpose()?;
    let bar = progress::bar(files.len() as u64, 2, request.quiet, "checkpoints");
    let series = audit_series(&files, &request.load, &config, |done| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    let json = series_json(&series);
    if let Some(out) = request.out {
        let runs = [SeriesRun {
            label: "run",
            series: &series,
        }];
        let title = format!(
            "Training run: {} checkpoints, steps {} to {}",
            series.checkpoints.len(),
            series.first().step.step,
            series.checkpoints.last().map_or(0, |c| c.step.step)
        );
        let lines = series_figure(&title, &runs);
        let heatmap = series_heatmap_figure(&title, &runs);
        let files = vec![
            (out.join("series.csv"), series_csv(&series)?),
            (out.join("series.json"), export::json::to_bytes(&json)),
            (out.join("series.png"), plot::line_figure_png(&lines)?),
            (
                out.join("series.svg"),
                plot::line_figure_svg(&lines)?.into_bytes(),
            ),
            (
                out.join("series-heatmap.png"),
                plot::heatmap_figure_png(&heatmap)?,
            ),
            (
                out.join("series-heatmap.svg"),
                plot::heatmap_figure_svg(&heatmap)?.into_bytes(),
            ),
        ];
        let writing = || format!("writing results into {}", out.display());
        let staged = export::stage_all(files).with_context(writing)?;
        export::commit_all(staged).with_context(writing)?;
    }
    match request.format {
        SeriesFormat::Table => write_stdout(series_table(&series).as_bytes())?,
        SeriesFormat::Json => write_stdout(&export::json::to_bytes(&json))?,
        SeriesFormat::Markdown => write_stdout(series_markdown(&series).as_bytes())?,
    }
    if let Some(directory) = prepared {
        directory.keep();
    }
    Ok(match series.verdict {
        Verdict::Stable => Outcome::Done,
        Verdict::Unstable => Outcome::Finding,
    })
}
