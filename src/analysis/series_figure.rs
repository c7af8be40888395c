//! The figures of a training run ([`super::series`]), as plain figure data ([`crate::plot`]
//! draws them): quantities against the training step, and heat maps layer × step.
//!
//! Every value is read from the series' audits: the whole-model composite prefix(L) =
//! H_L⋯H_1, single layers H_l (rows = output streams), and each layer's change from the first
//! checkpoint. Several runs (HC and mHC, say) share the panels, one colour each.

use super::audit_figure::style_for;
use super::results::{Layer, Stat};
use super::series::{CheckpointAudit, SeriesResult};
use crate::export::table::format_significant;
use crate::metrics::Metric;
use crate::plot::{
    HeatmapFigure, HeatmapPanel, LineFigure, Panel, Series, SeriesStyle, ValueFormat,
};

/// One run in a figure: a label for legends and titles, and its series.
#[derive(Clone, Copy)]
pub struct SeriesRun<'a> {
    /// `mhc`, a file stem, …
    pub label: &'a str,
    /// The audited checkpoints.
    pub series: &'a SeriesResult,
}

/// Largest |gain − 1| below which the gain panel shows `gain − 1` on a linear axis (a log axis
/// over [1, 1 + 1e-3] has a single label).
const NEAR_ONE: f64 = 1e-3;

/// Values drawn on a log axis are floored here (the change at the first checkpoint is 0).
const LOG_FLOOR: f64 = 1e-17;

/// Each run's style: HC's or mHC's colour from its layout; a second run of the same colour is
/// dashed.
fn styles(runs: &[SeriesRun<'_>]) -> Vec<SeriesStyle> {
    let mut seen: Vec<SeriesStyle> = Vec::new();
    runs.iter()
        .map(|run| {
            let base = style_for(&run.series.first().provenance);
            let repeats = seen.iter().filter(|s| **s == base).count();
            seen.push(base.clone());
            match repeats {
                0 => base,
                1 => base.dashed(),
                2 => base.with_markers(),
                _ => base.dashed().with_markers(),
            }
        })
        .collect()
}

fn steps_of(series: &SeriesResult) -> impl Iterator<Item = (f64, &CheckpointAudit)> {
    series.checkpoints.iter().map(|c| (c.step.step as f64, c))
}

/// Whether `values` (finite ones) span more than a factor of 10.
fn spans_decades(values: impl Iterator<Item = f64>) -> bool {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    hi > 10.0 * lo
}

/// Four panels against the training step: (a) whole-model Amax gain, forward (solid) and
/// backward (dashed), the maximum over tokens the verdict judges, shown as `gain − 1` when every
/// value lies within 10⁻³ of 1; (b) σ₂(H_L⋯H_1), mean over tokens; (c) the layer mean of the
/// single-layer identity distance (1/L)·Σ_l ‖H_l − I‖_F; (d) the largest (solid) and smallest
/// (dashed) over layers of each layer's change from the first checkpoint,
/// max_ij |H̄_l − H̄_l(first)|, with `still_tolerance` as a threshold.
pub fn series_figure(title: &str, runs: &[SeriesRun<'_>]) -> LineFigure {
    let styles = styles(runs);
    let label = |run: &SeriesRun<'_>, what: &str| {
        if runs.len() == 1 {
            what.to_string()
        } else {
            format!("{} {what}", run.label)
        }
    };
    let gain = |c: &CheckpointAudit, metric| c.whole_model(metric, Stat::Max);
    let all_gains: Vec<f64> = runs
        .iter()
        .flat_map(|run| run.series.checkpoints.iter())
        .flat_map(|c| [gain(c, Metric::AmaxForward), gain(c, Metric::AmaxBackward)])
        .filter(|v| v.is_finite())
        .collect();
    let near_one = !all_gains.is_empty() && all_gains.iter().all(|g| (g - 1.0).abs() <= NEAR_ONE);
    let shift = if near_one { 1.0 } else { 0.0 };
    let max_gain = runs
        .first()
        .map_or(2.0, |run| run.series.config.audit().max_gain());
    let mut gains = Panel::new(
        "(a) whole-model Amax gain, max over tokens",
        "training step",
        if near_one {
            "Amax gain of H_L⋯H_1, minus 1"
        } else {
            "Amax gain of H_L⋯H_1"
        },
    );
    for (run, style) in runs.iter().zip(&styles) {
        for (metric, style, what) in [
            (Metric::AmaxForward, style.clone(), "forward"),
            (Metric::AmaxBackward, style.clone().dashed(), "backward"),
        ] {
            let points = steps_of(run.series)
                .map(|(x, c)| (x, gain(c, metric) - shift))
                .collect();
            gains = gains.with_series(Series::new(label(run, what), style, points));
        }
    }
    let mut subtitle = String::new();
    if near_one {
        gains = gains.with_reference_line(0.0, "gain 1");
        subtitle = format!(" · --max-gain {max_gain} lies far above panel (a)");
    } else {
        gains = gains
            .with_reference_line(1.0, "gain 1")
            .with_threshold_line(max_gain, format!("--max-gain {max_gain}"));
        if spans_decades(all_gains.iter().copied().chain([max_gain])) {
            gains = gains.log_y();
        }
    }

    let mut sigma = Panel::new(
        "(b) stream collapse: σ₂(H_L⋯H_1)",
        "training step",
        "σ₂, mean over tokens",
    );
    let mut sigma_values = Vec::new();
    for (run, style) in runs.iter().zip(&styles) {
        let points: Vec<(f64, f64)> = steps_of(run.series)
            .map(|(x, c)| (x, c.whole_model(Metric::Sigma2, Stat::Mean)))
            .collect();
        sigma_values.extend(points.iter().map(|p| p.1));
        sigma = sigma.with_series(Series::new(label(run, "σ₂"), style.clone(), points));
    }
    if spans_decades(sigma_values.into_iter()) {
        sigma = sigma.log_y();
        floor_points(&mut sigma);
    }

    let mut identity = Panel::new(
        "(c) identity distance, mean over layers",
        "training step",
        "(1/L)·Σ_l ‖H_l − I‖_F",
    );
    for (run, style) in runs.iter().zip(&styles) {
        let points = steps_of(run.series)
            .map(|(x, c)| (x, c.mean_over_layers(Metric::IdentityDistance)))
            .collect();
        identity = identity.with_series(Series::new(
            label(run, "identity distance"),
            style.clone(),
            points,
        ));
    }

    let first_step = runs.first().map_or(0, |run| run.series.first().step.step);
    let mut change = Panel::new(
        format!("(d) change of H_l from step {first_step}"),
        "training step",
        "max_ij |H_l − H_l(first)|",
    )
    .log_y();
    let tolerance = runs
        .first()
        .map_or(0.0, |run| run.series.config.still_tolerance());
    for (run, style) in runs.iter().zip(&styles) {
        // The first checkpoint changes by 0 from itself: not drawn on the log axis.
        let later = || steps_of(run.series).skip(1);
        let extreme = |pick: fn(f64, f64) -> f64, start: f64| -> Vec<(f64, f64)> {
            later()
                .map(|(x, c)| (x, c.change_from_first.iter().copied().fold(start, pick)))
                .collect()
        };
        change = change
            .with_series(Series::new(
                label(run, "largest over layers"),
                style.clone(),
                extreme(f64::max, 0.0),
            ))
            .with_series(Series::new(
                label(run, "smallest over layers"),
                style.clone().dashed(),
                extreme(f64::min, f64::INFINITY),
            ));
    }
    if tolerance > 0.0 {
        change = change.with_threshold_line(
            tolerance,
            format!("still tolerance {}", format_significant(tolerance, 2)),
        );
    }
    floor_points(&mut change);

    let description = runs
        .iter()
        .map(|run| {
            let s = run.series;
            let layout = if runs.len() == 1 {
                format!("layout {}", s.layout().name())
            } else {
                format!("{}: {}", run.label, s.layout().name())
            };
            format!("{layout}, {} layers, n = {}", s.layers(), s.streams())
        })
        .collect::<Vec<_>>()
        .join(" · ");
    LineFigure::new(title, vec![gains, sigma, identity, change])
        .with_subtitle(format!("{description}{subtitle}"))
}

fn floor_points(panel: &mut Panel) {
    for series in &mut panel.series {
        for point in &mut series.points {
            if point.1.is_finite() {
                point.1 = point.1.max(LOG_FLOOR);
            }
        }
    }
}

/// A heat map layer × checkpoint (rows = layers 1 … L, columns = checkpoints by step).
fn layer_by_step(
    title: String,
    series: &SeriesResult,
    value: impl Fn(&CheckpointAudit, Layer) -> f64,
    row_notes: Vec<String>,
) -> HeatmapPanel {
    let layers = series.layers();
    let matrix = Layer::all(layers)
        .map(|l| series.checkpoints.iter().map(|c| value(c, l)).collect())
        .collect();
    HeatmapPanel::new(title, matrix)
        .with_axis_labels(
            Layer::all(layers).map(|l| format!("layer {l}")).collect(),
            series
                .checkpoints
                .iter()
                .map(|c| format!("step {}", c.step.step))
                .collect(),
        )
        .with_row_annotations(row_notes)
        .with_value_format(ValueFormat::Significant(2))
        .sequential()
}

/// For each run, two heat maps layer × step: the single-layer identity distance ‖H_l − I‖_F
/// (mean over tokens), and the change from the first checkpoint max_ij |H̄_l − H̄_l(first)|
/// with, right of each row, the largest change over the run (`unmoved` where it stays within
/// the tolerance).
pub fn series_heatmap_figure(title: &str, runs: &[SeriesRun<'_>]) -> HeatmapFigure {
    let mut panels = Vec::new();
    for run in runs {
        let series = run.series;
        let prefix = if runs.len() == 1 {
            String::new()
        } else {
            format!("{}: ", run.label)
        };
        let largest = series.largest_change();
        let notes = largest
            .iter()
            .enumerate()
            .map(|(index, change)| {
                let unmoved = series
                    .unmoved_layers
                    .iter()
                    .any(|l| l.number() == index + 1);
                format!(
                    "≤ {}{}",
                    format_significant(*change, 2),
                    if unmoved { " unmoved" } else { "" }
                )
            })
            .collect();
        panels.push(
            layer_by_step(
                format!("{prefix}‖H_l − I‖_F"),
                series,
                |c, l| c.single_layer(l, Metric::IdentityDistance),
                Vec::new(),
            )
            .with_value_format(ValueFormat::Significant(4)),
        );
        panels.push(layer_by_step(
            format!(
                "{prefix}max_ij |H_l − H_l(step {})|",
                series.first().step.step
            ),
            series,
            |c, l| c.change_from_first[l.index()],
            notes,
        ));
    }
    HeatmapFigure::new(title, panels, 2).with_subtitle(format!(
        "rows = layers, columns = checkpoints by step; white = panel minimum, red = maximum · right: largest change over the run (unmoved: ≤ {})",
        runs.first().map_or("0".to_string(), |run| format_significant(
            run.series.config.still_tolerance(),
            2
        ))
    ))
}
