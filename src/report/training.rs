//! `kind = "training"`: training runs side by side — each run's checkpoints audited as one
//! series ([`crate::analysis::series`], what `mhc-analyze audit CHECKPOINT…` does), and how
//! the mixing of HC and mHC evolves with the training step: whole-model gain, stream collapse,
//! distance from the identity and from the first checkpoint, layer by layer.

use std::collections::BTreeMap;

use crate::analysis::series::{
    CheckpointAudit, SeriesError, SeriesResult, StepOrigin, audit_series,
};
use crate::analysis::series_figure::{SeriesRun, series_figure, series_heatmap_figure};
use crate::analysis::{Layer, Stat, Verdict};
use crate::error::Error;
use crate::export::json::number;
use crate::export::markdown::{Align, Cell, Table};
use crate::export::series::unmoved_sentence;
use crate::load::{Layout, LoadError};
use crate::metrics::Metric;

use super::bundle::display_path;
use super::common::{CsvTable, Field, and_list, num};
use super::experiment::{Experiment, InputPath, RunSpec, TrainingSpec, sha256_hex};
use super::{DataFile, FigureData, InputFile, Report, ReportFigure, ReportTable};

/// Significant digits in tables and prose.
const DIGITS: usize = 4;

struct AuditedRun<'a> {
    spec: &'a RunSpec,
    series: SeriesResult,
}

impl AuditedRun<'_> {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn last(&self) -> &CheckpointAudit {
        self.series
            .checkpoints
            .last()
            .expect("a series has at least two checkpoints")
    }

    fn steps(&self) -> Vec<u64> {
        self.series
            .checkpoints
            .iter()
            .map(|c| c.step.step)
            .collect()
    }

    /// The larger of the whole-model forward and backward Amax (max over tokens).
    fn gain(c: &CheckpointAudit) -> f64 {
        c.whole_model(Metric::AmaxForward, Stat::Max)
            .max(c.whole_model(Metric::AmaxBackward, Stat::Max))
    }
}

fn input_file(path: &InputPath) -> Result<InputFile, Error> {
    let bytes =
        std::fs::read(&path.resolved).map_err(|source| LoadError::io(&path.resolved, source))?;
    Ok(InputFile {
        path: path.written.clone(),
        bytes: bytes.len() as u64,
        sha256: sha256_hex(&bytes),
    })
}

fn steps_list(steps: &[u64]) -> String {
    and_list(&steps.iter().map(u64::to_string).collect::<Vec<_>>())
}

/// The metadata every checkpoint of a run shares, `key = value` (keys that vary, such as
/// `step`, are left out).
fn shared_metadata(series: &SeriesResult) -> Vec<(String, String)> {
    let first: &BTreeMap<String, String> = &series.first().metadata;
    first
        .iter()
        .filter(|(key, value)| {
            series
                .checkpoints
                .iter()
                .all(|c| c.metadata.get(*key) == Some(*value))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub(super) fn run(
    spec: &TrainingSpec,
    experiment: &Experiment,
    on_progress: &mut dyn FnMut(u64),
) -> Result<Report, Error> {
    let mut inputs = Vec::new();
    if let Some(provenance) = &spec.provenance {
        inputs.push(input_file(provenance)?);
    }
    let mut runs = Vec::new();
    for run in &spec.runs {
        for checkpoint in &run.checkpoints {
            inputs.push(input_file(checkpoint)?);
        }
        let files: Vec<_> = run.checkpoints.iter().map(|c| c.resolved.clone()).collect();
        let mut done = 0;
        let series = audit_series(&files, &run.options, &spec.config, |now| {
            on_progress((now - done) as u64);
            done = now;
        })
        .map_err(|e: SeriesError| Error::ExperimentRun {
            experiment: experiment.path().to_path_buf(),
            run: run.name.clone(),
            source: Box::new(e),
        })?;
        runs.push(AuditedRun { spec: run, series });
    }
    let figure_runs: Vec<SeriesRun<'_>> = runs
        .iter()
        .map(|r| SeriesRun {
            label: &r.spec.name,
            series: &r.series,
        })
        .collect();
    let names: Vec<String> = runs.iter().map(|r| r.name().to_string()).collect();
    let lines = series_figure(
        &format!(
            "Training runs {}: mixing against the step",
            and_list(&names)
        ),
        &figure_runs,
    );
    let heatmaps = series_heatmap_figure(
        &format!(
            "Training runs {}: each layer against the step",
            and_list(&names)
        ),
        &figure_runs,
    );
    let tolerance = spec.config.still_tolerance();

    // --- tables -----------------------------------------------------------------------------------
    let mut checkpoints = Table::new(
        format!(
            "Each checkpoint's audit: whole-model H_L⋯H_1 Amax gain (max over tokens, judged against {}) and σ₂ (mean over tokens); identity, permutation and init: layer means (1/L)·Σ_l of ‖H_l − I‖_F, of the Frobenius distance to the nearest permutation and of ‖H_l − H_l(init)‖_F.",
            num(spec.config.audit().max_gain(), 3)
        ),
        "training-checkpoints",
        [
            "run",
            "step",
            "verdict",
            "Amax fwd",
            "Amax bwd",
            "σ₂",
            "identity",
            "permutation",
            "init",
        ]
        .map(String::from)
        .to_vec(),
    );
    checkpoints.align = vec![
        Align::Left,
        Align::Right,
        Align::Left,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Right,
    ];
    for (k, run) in runs.iter().enumerate() {
        if k > 0 {
            checkpoints.push_rule();
        }
        for c in &run.series.checkpoints {
            checkpoints.push_row(vec![
                Cell::text(run.name()),
                Cell::text(c.step.step.to_string()),
                Cell::text(c.result.verdict.name()),
                Cell::number(c.whole_model(Metric::AmaxForward, Stat::Max), DIGITS),
                Cell::number(c.whole_model(Metric::AmaxBackward, Stat::Max), DIGITS),
                Cell::number(c.whole_model(Metric::Sigma2, Stat::Mean), DIGITS),
                Cell::number(c.mean_over_layers(Metric::IdentityDistance), DIGITS),
                Cell::number(c.mean_over_layers(Metric::PermutationDistance), DIGITS),
                match &c.init_distance {
                    Some(d) => Cell::number(d.iter().sum::<f64>() / d.len() as f64, DIGITS),
                    None => Cell::text("unknown"),
                },
            ]);
        }
    }
    for run in &runs {
        checkpoints.notes.push(format!(
            "{}: {}; layout {} ({}); steps from {}; {}.",
            run.name(),
            run.spec.label,
            run.series.layout().name(),
            run.series.first().provenance.reason,
            run.series
                .step_origins()
                .iter()
                .map(|(origin, _)| origin.describe())
                .collect::<Vec<_>>()
                .join(" and "),
            run.series.first().provenance.origin.describe()
        ));
    }

    let mut header = vec!["layer".to_string()];
    for run in &runs {
        header.push(format!("{}: largest change", run.name()));
        header.push(format!(
            "{}: init distance at step {}",
            run.name(),
            run.last().step.step
        ));
    }
    let mut layers_table = Table::new(
        format!(
            "Per layer: the largest change of H_l from the run's first checkpoint, max_ij |H_l − H_l(first)| over all checkpoints (unmoved when ≤ {}), and ‖H_l − H_l(init)‖_F at the last checkpoint.",
            num(tolerance, 2)
        ),
        "training-layers",
        header,
    );
    layers_table.align = std::iter::once(Align::Left)
        .chain(std::iter::repeat_n(Align::Right, 2 * runs.len()))
        .collect();
    let layers = runs.first().map_or(0, |r| r.series.layers());
    let largest: Vec<Vec<f64>> = runs.iter().map(|r| r.series.largest_change()).collect();
    for layer in Layer::all(layers) {
        let mut row = vec![Cell::text(layer.to_string())];
        for (run, changes) in runs.iter().zip(&largest) {
            let change = changes.get(layer.index()).copied().unwrap_or(f64::NAN);
            row.push(Cell::number(change, 2));
            row.push(match &run.last().init_distance {
                Some(d) if layer.index() < d.len() => Cell::number(d[layer.index()], 2),
                _ => Cell::Empty,
            });
        }
        layers_table.push_row(row);
    }
    for run in &runs {
        layers_table.notes.push(format!(
            "{}: {}.",
            run.name(),
            unmoved_sentence(&run.series)
        ));
    }

    // --- data ---------------------------------------------------------------------------------------
    let mut csv = CsvTable::new(&[
        "run",
        "step",
        "checkpoint",
        "composite",
        "layer",
        "metric",
        "stat",
        "value",
    ])?;
    for run in &runs {
        for c in &run.series.checkpoints {
            let name = c.name();
            let last = Layer::last(c.layers());
            let mut row = |composite: &str, layer: Layer, metric: &str, stat: &str, value: f64| {
                csv.row(vec![
                    Field::from(run.name()),
                    Field::from(c.step.step),
                    Field::from(name.as_str()),
                    Field::from(composite),
                    Field::from(layer.number()),
                    Field::from(metric),
                    Field::from(stat),
                    Field::from(value),
                ])
            };
            for (metric, stat) in [
                (Metric::AmaxForward, Stat::Max),
                (Metric::AmaxBackward, Stat::Max),
                (Metric::Sigma2, Stat::Mean),
            ] {
                row(
                    "prefix",
                    last,
                    metric.name(),
                    stat.name(),
                    c.whole_model(metric, stat),
                )?;
            }
            for layer in Layer::all(c.layers()) {
                for metric in [Metric::IdentityDistance, Metric::PermutationDistance] {
                    row(
                        "single",
                        layer,
                        metric.name(),
                        Stat::Mean.name(),
                        c.single_layer(layer, metric),
                    )?;
                }
                row(
                    "single",
                    layer,
                    "change_from_first",
                    "value",
                    c.change_from_first[layer.index()],
                )?;
                if let Some(init) = &c.init_distance {
                    row(
                        "single",
                        layer,
                        "init_distance",
                        "value",
                        init[layer.index()],
                    )?;
                }
            }
        }
    }

    // --- prose --------------------------------------------------------------------------------------
    let mut summary = Vec::new();
    let described: Vec<String> = runs
        .iter()
        .map(|r| {
            let s = &r.series;
            format!(
                "`{}` — {}: {} checkpoints at steps {} (from {}), layout {}, {} layers, n = {}",
                r.name(),
                r.spec.label,
                s.checkpoints.len(),
                steps_list(&r.steps()),
                s.step_origins()
                    .iter()
                    .map(|(o, _)| o.describe())
                    .collect::<Vec<_>>()
                    .join(" and "),
                s.layout().name(),
                s.layers(),
                s.streams()
            )
        })
        .collect();
    summary.push(format!(
        "Each run's checkpoints were audited as one series, as `mhc-analyze audit CHECKPOINT…` does: every checkpoint loaded and audited on its own (its input released before the next), sorted by training step, the series' verdict the worst one. Runs: {}. {}",
        described.join("; "),
        runs.first().map_or(String::new(), |r| format!(
            "Matrices: {}.",
            r.series.first().provenance.origin.describe()
        ))
    ));
    let mut made = String::new();
    let metadata: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            let shared = shared_metadata(&r.series);
            (!shared.is_empty()).then(|| {
                format!(
                    "`{}`: {}",
                    r.name(),
                    shared
                        .iter()
                        .map(|(k, v)| format!("{k} = `{v}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        })
        .collect();
    if !metadata.is_empty() {
        made.push_str(&format!(
            "How the checkpoints were made, as every checkpoint file of a run records it in its metadata (the keys that differ between its files, such as the step, left out): {}.",
            metadata.join("; ")
        ));
    }
    if let Some(provenance) = &spec.provenance {
        made.push_str(&format!(
            " The experiment file names `{}` as the account of how they were made; it is listed with its SHA-256 among the inputs below.",
            display_path(&provenance.resolved)
        ));
    }
    if !made.trim().is_empty() {
        summary.push(made.trim().to_string());
    }

    let verdicts: Vec<String> = runs
        .iter()
        .map(|r| {
            let unstable: Vec<u64> = r
                .series
                .checkpoints
                .iter()
                .filter(|c| c.result.verdict == Verdict::Unstable)
                .map(|c| c.step.step)
                .collect();
            let peak = r
                .series
                .checkpoints
                .iter()
                .fold(None::<&CheckpointAudit>, |best, c| match best {
                    Some(b) if AuditedRun::gain(b) >= AuditedRun::gain(c) => Some(b),
                    _ => Some(c),
                })
                .expect("a series has checkpoints");
            let deviation = r
                .series
                .checkpoints
                .iter()
                .map(|c| (AuditedRun::gain(c) - 1.0).abs())
                .fold(0.0f64, f64::max);
            if unstable.is_empty() {
                format!(
                    "`{}` is stable at every checkpoint, its whole-model Amax gain (the larger of forward and backward) within {} of 1",
                    r.name(),
                    num(deviation, 2)
                )
            } else {
                format!(
                    "`{}` is unstable at step{} {} of {}: its whole-model Amax gain peaks at {} (step {}) against the threshold {}, and is {} at the last checkpoint",
                    r.name(),
                    if unstable.len() == 1 { "" } else { "s" },
                    steps_list(&unstable),
                    r.series.checkpoints.len(),
                    num(AuditedRun::gain(peak), DIGITS),
                    peak.step.step,
                    num(spec.config.audit().max_gain(), 3),
                    num(AuditedRun::gain(r.last()), DIGITS)
                )
            }
        })
        .collect();
    summary.push(format!(
        "Gain (Figure 1a, Table 1): {}. σ₂ of the whole-model composite (Figure 1b) goes {}.",
        verdicts.join("; "),
        and_list(
            &runs
                .iter()
                .map(|r| format!(
                    "from {} to {} for `{}`",
                    num(r.series.first().whole_model(Metric::Sigma2, Stat::Mean), 3),
                    num(r.last().whole_model(Metric::Sigma2, Stat::Mean), 3),
                    r.name()
                ))
                .collect::<Vec<_>>()
        )
    ));

    let movement: Vec<String> = runs
        .iter()
        .zip(&largest)
        .map(|(r, changes)| {
            let (lo, hi) = changes
                .iter()
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            let identity = |c: &CheckpointAudit| c.mean_over_layers(Metric::IdentityDistance);
            format!(
                "`{}`'s layers moved by {} to {} from step {} (largest entry change over the run); its mean identity distance went from {} to {}. {}",
                r.name(),
                num(lo, 2),
                num(hi, 2),
                r.series.first().step.step,
                num(identity(r.series.first()), DIGITS),
                num(identity(r.last()), DIGITS),
                unmoved_sentence(&r.series)
            )
        })
        .collect();
    summary.push(format!(
        "Layers (Figures 1c–d and 2, Table 2): {}.",
        movement.join(". ")
    ));
    if let Some(comparison) = comparison(&runs, &largest) {
        summary.push(comparison);
    }

    let headline = {
        let parts: Vec<String> = runs
            .iter()
            .map(|r| {
                let unstable = r
                    .series
                    .checkpoints
                    .iter()
                    .filter(|c| c.result.verdict == Verdict::Unstable)
                    .count();
                let peak = r
                    .series
                    .checkpoints
                    .iter()
                    .map(AuditedRun::gain)
                    .fold(f64::NEG_INFINITY, f64::max);
                let moved = largest_over(&r.series);
                format!(
                    "`{}` {} (whole-model Amax up to {}), layers moved {}–{}",
                    r.name(),
                    if unstable == 0 {
                        "stable at every checkpoint".to_string()
                    } else {
                        format!(
                            "unstable at {unstable} of {} checkpoints",
                            r.series.checkpoints.len()
                        )
                    },
                    num(peak, DIGITS),
                    num(moved.0, 2),
                    num(moved.1, 2)
                )
            })
            .collect();
        let unmoved: Vec<String> = runs
            .iter()
            .filter(|r| !r.series.unmoved_layers.is_empty())
            .map(|r| {
                format!(
                    "`{}` layers {}",
                    r.name(),
                    and_list(
                        &r.series
                            .unmoved_layers
                            .iter()
                            .map(Layer::to_string)
                            .collect::<Vec<_>>()
                    )
                )
            })
            .collect();
        format!(
            "{}. {}",
            parts.join("; "),
            if unmoved.is_empty() {
                format!(
                    "No layer stayed within {} of its first checkpoint.",
                    num(tolerance, 2)
                )
            } else {
                format!(
                    "Unmoved (within {}): {}.",
                    num(tolerance, 2),
                    and_list(&unmoved)
                )
            }
        )
    };

    let parameters = serde_json::json!({
        "max_gain": number(spec.config.audit().max_gain()),
        "token_aggregation": spec.config.audit().token_aggregation().name(),
        "still_tolerance": number(tolerance),
        "provenance": spec.provenance.as_ref().map(|p| p.written.clone()),
        "runs": runs.iter().map(|r| serde_json::json!({
            "name": r.name(),
            "label": r.spec.label,
            "layout": r.spec.options.layout.map(|l| l.name()).unwrap_or("auto"),
            "key": r.spec.options.key,
            "transpose": r.spec.options.transpose,
            "checkpoints": r.series.checkpoints.iter().map(|c| serde_json::json!({
                "step": c.step.step,
                "step_from": c.step.origin,
                "file": c.name(),
            })).collect::<Vec<_>>(),
            "detected_layout": r.series.layout().name(),
            "layers": r.series.layers(),
            "streams": r.series.streams(),
            "unmoved_layers": r.series.unmoved_layers,
        })).collect::<Vec<_>>(),
        "version": env!("CARGO_PKG_VERSION"),
    });

    let is_hc = |r: &AuditedRun<'_>| r.series.layout() == Layout::LucidrainsHc;
    let colours = if runs.iter().any(is_hc) && runs.iter().any(|r| !is_hc(r)) {
        " HC in vermillion, Sinkhorn layouts in blue."
    } else {
        ""
    };
    let positional = runs.iter().any(|r| {
        r.series
            .checkpoints
            .iter()
            .any(|c| c.step.origin == StepOrigin::Position)
    });
    Ok(Report {
        headline,
        summary,
        figures: vec![
            ReportFigure {
                name: "training".to_string(),
                caption: format!(
                    "Against the training step{}: (a) whole-model Amax gain of H_L⋯H_1, forward and backward (max over tokens; shown as gain − 1 when every value lies within 1e-3 of 1); (b) σ₂(H_L⋯H_1), the stream-collapse measure; (c) the mean over layers of ‖H_l − I‖_F; (d) the largest and smallest over layers of each layer's change from the first checkpoint, max_ij |H_l − H_l(first)| (log scale), with the still tolerance {}.{colours}",
                    if positional { " (positions: some file recorded no step)" } else { "" },
                    num(tolerance, 2)
                ),
                figure: FigureData::Line(lines),
            },
            ReportFigure {
                name: "layers".to_string(),
                caption: "For each run, layer × checkpoint: the single-layer identity distance ‖H_l − I‖_F (left) and the change from the first checkpoint, max_ij |H_l − H_l(first)| (right; the largest over the run right of each row). Rows are layers 1 … L, columns checkpoints by step; each panel is coloured from its smallest value (white) to its largest (red).".to_string(),
                figure: FigureData::Heatmap(heatmaps),
            },
        ],
        tables: vec![
            ReportTable {
                name: "table-checkpoints".to_string(),
                table: checkpoints,
            },
            ReportTable {
                name: "table-layers".to_string(),
                table: layers_table,
            },
        ],
        data: vec![DataFile {
            name: "training.csv".to_string(),
            description: "`run,step,checkpoint,composite,layer,metric,stat,value`: per checkpoint the whole-model Amax forward and backward (`max` over tokens) and σ₂ (`mean`), at layer L of `prefix`; per layer (`single`) the identity and permutation distances (`mean` over tokens), `change_from_first` and, where the initialisation is known, `init_distance` (`value`). `mhc-analyze audit CHECKPOINT… --out DIR` writes every metric in series.csv.".to_string(),
            bytes: csv.finish()?,
        }],
        parameters,
        seeds: None,
        inputs,
    })
}

/// `(1/L)·Σ_l` of each layer's largest change from the first checkpoint.
fn mean_change(changes: &[f64]) -> f64 {
    changes.iter().sum::<f64>() / changes.len() as f64
}

/// The runs side by side at their last checkpoints (when there are at least two): the gain,
/// σ₂ and the movement of the layers, and how many times as far the most-moved run's layers
/// moved on average as the least-moved run's.
fn comparison(runs: &[AuditedRun<'_>], largest: &[Vec<f64>]) -> Option<String> {
    if runs.len() < 2 {
        return None;
    }
    let at_last: Vec<String> = runs
        .iter()
        .zip(largest)
        .map(|(r, changes)| {
            let last = r.last();
            format!(
                "`{}` at step {}: whole-model Amax gain {}, σ₂ {}, distance from initialisation {} (mean over layers); over its run, each layer's largest change from step {}, averaged over layers: {}",
                r.name(),
                last.step.step,
                num(AuditedRun::gain(last), DIGITS),
                num(last.whole_model(Metric::Sigma2, Stat::Mean), 3),
                last.init_distance.as_ref().map_or("unknown".to_string(), |d| num(
                    d.iter().sum::<f64>() / d.len() as f64,
                    3
                )),
                r.series.first().step.step,
                num(mean_change(changes), 2)
            )
        })
        .collect();
    let means: Vec<f64> = largest.iter().map(|c| mean_change(c)).collect();
    let most = (0..runs.len()).max_by(|&a, &b| means[a].total_cmp(&means[b]))?;
    let least = (0..runs.len()).min_by(|&a, &b| means[a].total_cmp(&means[b]))?;
    let ratio = if means[least] > 0.0 {
        format!(
            " On average over layers, `{}`'s H_res moved {} times as far from its first checkpoint as `{}`'s.",
            runs[most].name(),
            num(means[most] / means[least], 2),
            runs[least].name()
        )
    } else {
        String::new()
    };
    Some(format!(
        "Side by side (last checkpoints): {}.{ratio}",
        at_last.join("; ")
    ))
}

/// The smallest and largest per-layer change of a run.
fn largest_over(series: &SeriesResult) -> (f64, f64) {
    series
        .largest_change()
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}
