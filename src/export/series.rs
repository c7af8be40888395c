//! Renderings of a training run ([`crate::analysis::series`]): the terminal table, Markdown,
//! `series.json` and `series.csv`.
//!
//! The table has one row per checkpoint, in step order: its verdict; the whole-model Amax gains
//! of H_L⋯H_1 (maximum over tokens, what the verdict judges); σ₂(H_L⋯H_1) (mean over tokens);
//! and the layer means (1/L)·Σ_l of the single-layer identity and permutation distances and,
//! where the layout's initialisation is known, of `init_distance` = ‖H_l − H_l(init)‖_F.

use std::fmt::Write;

use serde::Serialize;
use serde_json::{Value, json};

use super::audit::{AuditSubject, audit_json};
use super::csv::finish_csv;
use super::json::number;
use super::table::format_significant;
use crate::analysis::series::{CheckpointAudit, SeriesResult};
use crate::analysis::{Audited, Layer, Stat};
use crate::compose::Composite;
use crate::error::Error;
use crate::metrics::Metric;

/// Significant digits of the table and Markdown.
const DIGITS: usize = 4;

/// The columns of the table, after step, checkpoint and verdict.
#[derive(Clone, Copy)]
enum Column {
    /// A whole-model metric and its statistic over tokens.
    WholeModel(Metric, Stat, &'static str),
    /// The layer mean of a single-layer metric (mean over tokens).
    LayerMean(Metric, &'static str),
    /// The layer mean of `init_distance`.
    InitDistance,
}

const COLUMNS: [Column; 6] = [
    Column::WholeModel(Metric::AmaxForward, Stat::Max, "Amax fwd"),
    Column::WholeModel(Metric::AmaxBackward, Stat::Max, "Amax bwd"),
    Column::WholeModel(Metric::Sigma2, Stat::Mean, "σ₂"),
    Column::LayerMean(Metric::IdentityDistance, "identity"),
    Column::LayerMean(Metric::PermutationDistance, "permutation"),
    Column::InitDistance,
];

impl Column {
    fn title(self) -> &'static str {
        match self {
            Column::WholeModel(_, _, title) | Column::LayerMean(_, title) => title,
            Column::InitDistance => "init",
        }
    }

    fn value(self, checkpoint: &CheckpointAudit) -> Option<f64> {
        match self {
            Column::WholeModel(metric, stat, _) => Some(checkpoint.whole_model(metric, stat)),
            Column::LayerMean(metric, _) => Some(checkpoint.mean_over_layers(metric)),
            Column::InitDistance => checkpoint
                .init_distance
                .as_ref()
                .map(|d| d.iter().sum::<f64>() / d.len() as f64),
        }
    }
}

/// `metadata 'step' (5 checkpoints)`, or several such parts joined with `; `.
fn steps_text(series: &SeriesResult) -> String {
    series
        .step_origins()
        .iter()
        .map(|(origin, count)| {
            format!(
                "{} ({count} checkpoint{})",
                origin.describe(),
                if *count == 1 { "" } else { "s" }
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The header lines shared by the table and Markdown.
fn description(series: &SeriesResult) -> Vec<String> {
    let first = series.first();
    let tokens: Vec<u64> = series
        .checkpoints
        .iter()
        .map(|c| c.result.results().draws())
        .collect();
    let (low, high) = (
        tokens.iter().min().copied().unwrap_or(0),
        tokens.iter().max().copied().unwrap_or(0),
    );
    let tokens_text = if low == high {
        format!("{low} token{} each", if low == 1 { "" } else { "s" })
    } else {
        format!("{low} to {high} tokens")
    };
    vec![
        format!(
            "layout {} ({}); {} layers, {} streams, {tokens_text} ({})",
            series.layout().name(),
            first.provenance.reason,
            series.layers(),
            series.streams(),
            first.provenance.origin.describe()
        ),
        format!("steps from {}", steps_text(series)),
        format!(
            "columns: whole-model H_{}⋯H_1 Amax forward and backward (max over tokens) and σ₂ (mean over tokens); identity, permutation and init: (1/L)·Σ_l of ‖H_l − I‖_F, the Frobenius distance to the nearest permutation, and ‖H_l − H_l(init)‖_F",
            series.layers()
        ),
    ]
}

/// `1: 4.9e-3   2: 0.012 …`: the largest change of each layer, six per line.
fn largest_change_lines(series: &SeriesResult) -> Vec<String> {
    let cells: Vec<String> = series
        .largest_change()
        .iter()
        .enumerate()
        .map(|(k, v)| format!("{:>4}: {:<10}", k + 1, format_significant(*v, 2)))
        .collect();
    cells
        .chunks(6)
        .map(|chunk| format!(" {}", chunk.join(" ").trim_end()))
        .collect()
}

fn layer_list(layers: &[Layer]) -> String {
    let numbers: Vec<String> = layers.iter().map(|l| l.to_string()).collect();
    match numbers.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The sentence on unmoved layers: which did not move, or that every layer moved and the
/// least-moved one.
pub(crate) fn unmoved_sentence(series: &SeriesResult) -> String {
    let tolerance = format_significant(series.config.still_tolerance(), 2);
    let first_step = series.first().step.step;
    let layers = &series.unmoved_layers;
    if !layers.is_empty() {
        return format!(
            "H_res did not move in layer{} {} of {}: no entry moved more than the still tolerance {tolerance} from step {first_step} at any checkpoint",
            if layers.len() == 1 { "" } else { "s" },
            layer_list(layers),
            series.layers()
        );
    }
    let largest = series.largest_change();
    let (least, value) = largest
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_nan())
        .fold(
            (0, f64::INFINITY),
            |best, (k, &v)| {
                if v < best.1 { (k, v) } else { best }
            },
        );
    format!(
        "H_res moved in every layer by more than the still tolerance {tolerance} in some entry; the least: layer {} ({} from step {first_step})",
        least + 1,
        format_significant(value, 2)
    )
}

fn verdict_lines(series: &SeriesResult) -> Vec<String> {
    let count = series.checkpoints.len();
    let mut lines = vec![format!(
        "verdict: {} (the worst of {count} checkpoints)",
        series.verdict.name()
    )];
    for c in &series.checkpoints {
        for check in c.result.checks.iter().filter(|check| !check.passed) {
            lines.push(format!(
                "  - step {} ({}): {}",
                c.step.step,
                c.name(),
                check.describe()
            ));
        }
    }
    lines
}

/// The terminal table.
pub fn series_table(series: &SeriesResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "mhc-analyze audit: a training run of {} checkpoints",
        series.checkpoints.len()
    );
    for line in description(series) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out);
    let names: Vec<String> = series.checkpoints.iter().map(|c| c.name()).collect();
    let name_width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(10)
        .max(10);
    let step_width = series
        .checkpoints
        .iter()
        .map(|c| c.step.step.to_string().len())
        .max()
        .unwrap_or(4)
        .max(4);
    let cells: Vec<Vec<String>> = series
        .checkpoints
        .iter()
        .map(|c| {
            COLUMNS
                .iter()
                .map(|col| col.value(c).map_or("unknown".to_string(), number_text))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = COLUMNS
        .iter()
        .enumerate()
        .map(|(k, col)| {
            cells
                .iter()
                .map(|row| row[k].chars().count())
                .chain([col.title().chars().count()])
                .max()
                .unwrap_or(8)
        })
        .collect();
    let _ = write!(
        out,
        "{:>step_width$}  {:<name_width$}  {:<8}",
        "step", "checkpoint", "verdict"
    );
    for (col, width) in COLUMNS.iter().zip(&widths) {
        let _ = write!(out, "  {:>width$}", col.title());
    }
    let _ = writeln!(out);
    for ((c, name), row) in series.checkpoints.iter().zip(&names).zip(&cells) {
        let _ = write!(
            out,
            "{:>step_width$}  {:<name_width$}  {:<8}",
            c.step.step,
            name,
            c.result.verdict.name()
        );
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(out, "  {cell:>width$}");
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "\nlargest change of each layer's H_res from step {} over the run, max_ij |H_l − H_l(first)|:",
        series.first().step.step
    );
    for line in largest_change_lines(series) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "{}", unmoved_sentence(series));
    let _ = writeln!(out);
    for line in verdict_lines(series) {
        let _ = writeln!(out, "{line}");
    }
    out
}

fn number_text(x: f64) -> String {
    format_significant(x, DIGITS)
}

/// A Markdown summary (a pull-request comment).
pub fn series_markdown(series: &SeriesResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### mhc-analyze audit: a training run of {} checkpoints — **{}**\n",
        series.checkpoints.len(),
        series.verdict.name()
    );
    for line in description(series) {
        let _ = writeln!(out, "{line}.  ");
    }
    let _ = writeln!(out);
    let _ = write!(out, "| step | checkpoint | verdict |");
    for col in COLUMNS {
        let _ = write!(out, " {} |", col.title());
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "|---:|---|---|{}", "---:|".repeat(COLUMNS.len()));
    for c in &series.checkpoints {
        let _ = write!(
            out,
            "| {} | `{}` | {} |",
            c.step.step,
            c.name().replace('|', "\\|"),
            c.result.verdict.name()
        );
        for col in COLUMNS {
            let _ = write!(
                out,
                " {} |",
                col.value(c).map_or("unknown".to_string(), number_text)
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "\n{}.", unmoved_sentence(series));
    let _ = writeln!(out);
    for line in verdict_lines(series) {
        let _ = writeln!(out, "{}", line.replacen("  - ", "- ", 1));
    }
    out
}

/// `series.json`: every checkpoint's audit JSON in step order (as `mhc-analyze audit --format
/// json` writes it, with its `init_distance`), its step and where the step came from, its
/// metadata and `change_from_first` per layer; then `unmoved_layers` (numbered from 1) and the
/// verdict.
pub fn series_json(series: &SeriesResult) -> Value {
    let checkpoints: Vec<Value> = series
        .checkpoints
        .iter()
        .map(|c| {
            let source = c.step.path.display().to_string();
            let subject = AuditSubject {
                source: &source,
                provenance: &c.provenance,
                init_distance: c.init_distance.as_deref(),
            };
            json!({
                "step": c.step.step,
                "step_from": c.step.origin,
                "path": source,
                "metadata": c.metadata,
                "verdict": c.result.verdict.name(),
                "change_from_first": c.change_from_first.iter().map(|v| number(*v)).collect::<Vec<_>>(),
                "audit": audit_json(subject, series.config.audit(), &c.result),
            })
        })
        .collect();
    json!({
        "tool": "mhc-analyze audit (training run)",
        "version": env!("CARGO_PKG_VERSION"),
        "layout": series.layout().name(),
        "layers": series.layers(),
        "streams": series.streams(),
        "conventions": "x_{l+1} = H_l x_l, rows = output streams; layers numbered from 1; checkpoints sorted by step",
        "definitions": {
            "change_from_first": "per layer l: max_ij |H_l − H_l(first)|_ij of the analysed H_res (the token-mean matrix; the static H_res for a parameter checkpoint)",
            "unmoved_layers": "layers whose change_from_first never exceeds still_tolerance",
        },
        "parameters": {
            "max_gain": number(series.config.audit().max_gain()),
            "max_distance": series.config.audit().max_distance().map(number),
            "token_aggregation": series.config.audit().token_aggregation().name(),
            "still_tolerance": number(series.config.still_tolerance()),
        },
        "checkpoints": checkpoints,
        "largest_change_from_first": series.largest_change().iter().map(|v| number(*v)).collect::<Vec<_>>(),
        "unmoved_layers": series.unmoved_layers,
        "unmoved": unmoved_sentence(series),
        "verdict": series.verdict.name(),
    })
}

/// The per-layer quantities of a series that are not audit metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SeriesQuantity {
    /// max_ij |H_l − H_l(first)| of the analysed H_res.
    ChangeFromFirst,
    /// ‖H_l − H_l(init)‖_F.
    InitDistance,
}

/// The `metric` column of `series.csv`: an audit metric or a series quantity.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum SeriesMetric {
    /// An audit metric.
    Audit(Metric),
    /// A series quantity.
    Series(SeriesQuantity),
}

/// The `stat` column of `series.csv`: a statistic over tokens, or `value` for a series
/// quantity (one number per layer and checkpoint).
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum SeriesStat {
    /// A statistic over tokens.
    OverTokens(Stat),
    /// One value.
    Single(SingleValue),
}

/// The word `value`.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SingleValue {
    /// `value`.
    Value,
}

/// One row of `series.csv`.
#[derive(Debug, Serialize)]
pub(crate) struct SeriesRow<'a> {
    /// Training step.
    pub step: u64,
    /// File name of the checkpoint.
    pub checkpoint: &'a str,
    /// `single`, `prefix` or `suffix`.
    pub composite: Composite,
    /// 1-based layer.
    pub layer: Layer,
    /// Metric or series quantity.
    pub metric: SeriesMetric,
    /// Statistic over tokens, or `value`.
    pub stat: SeriesStat,
    /// The value.
    pub value: f64,
}

/// `series.csv`: `step,checkpoint,composite,layer,metric,stat,value`, checkpoints in step order;
/// per checkpoint every composite, layer and metric with the statistics over tokens of
/// `audit.csv` ([`Stat::OVER_TOKENS`]), then per layer (composite `single`, stat `value`)
/// `change_from_first` and, where known, `init_distance`.
pub fn series_csv(series: &SeriesResult) -> Result<Vec<u8>, Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for c in &series.checkpoints {
        let name = c.name();
        let results = c.result.results();
        let mut row = |composite, layer, metric, stat, value| {
            writer
                .serialize(SeriesRow {
                    step: c.step.step,
                    checkpoint: &name,
                    composite,
                    layer,
                    metric,
                    stat,
                    value,
                })
                .map_err(Error::Csv)
        };
        for composite in Composite::ALL {
            for layer in Layer::all(results.layers()) {
                for &metric in results.layout().metrics().metrics() {
                    let summary = results.summary(Audited::Stack, composite, layer, metric);
                    for stat in Stat::OVER_TOKENS {
                        row(
                            composite,
                            layer,
                            SeriesMetric::Audit(metric),
                            SeriesStat::OverTokens(stat),
                            summary.get(stat),
                        )?;
                    }
                }
            }
        }
        for layer in Layer::all(results.layers()) {
            let single = SeriesStat::Single(SingleValue::Value);
            row(
                Composite::Single,
                layer,
                SeriesMetric::Series(SeriesQuantity::ChangeFromFirst),
                single,
                c.change_from_first[layer.index()],
            )?;
            if let Some(init) = &c.init_distance {
                row(
                    Composite::Single,
                    layer,
                    SeriesMetric::Series(SeriesQuantity::InitDistance),
                    single,
                    init[layer.index()],
                )?;
            }
        }
    }
    finish_csv(writer)
}
