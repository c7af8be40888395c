//! The `audit` figures, built from the audit's results (plain figure data; [`crate::plot`]
//! draws them): Amax gain against depth in the shape of the paper's Figure 7, and heat maps of
//! the worst layer's H_res and of the whole-model composite.

use super::audit::AuditResult;
use super::results::{Audited, Layer, Stat};
use crate::compose::{Composite, prefix_composites};
use crate::export::table::format_significant;
use crate::load::Layout;
use crate::load::input::Provenance;
use crate::metrics::{Metric, amax_backward, amax_forward, column_sums, row_sums};
use crate::plot::{
    HeatmapFigure, HeatmapPanel, LineFigure, Panel, Series, SeriesStyle, ValueFormat,
};

/// The colour of a stack's curves: HC's or mHC's when the layout (or the capture's modules)
/// say which, another colour otherwise.
pub(crate) fn style_for(provenance: &Provenance) -> SeriesStyle {
    match provenance.layout {
        Layout::LucidrainsHc => SeriesStyle::hc(),
        Layout::LucidrainsMhc | Layout::MhcPytorch | Layout::DeepseekV4 => SeriesStyle::mhc(),
        Layout::Stack => match provenance.capture.as_ref().map(|c| c.kinds()) {
            Some(kinds) if kinds == ["hc"] => SeriesStyle::hc(),
            Some(kinds) if !kinds.is_empty() && !kinds.contains(&"hc") => SeriesStyle::mhc(),
            _ => SeriesStyle::other(0),
        },
    }
}

/// Largest |gain − 1| below which a panel shows the distance from 1 on a linear axis: a log axis
/// over [1, 1 + 1e-3] has one label, 10⁰.
const NEAR_ONE: f64 = 1e-3;

/// The four panels of the paper's Figure 7 shape — single-layer forward and backward gain of
/// H_l, composite forward gain of prefix(l) = H_l⋯H_1 and backward gain of suffix(l) = H_L⋯H_l —
/// each the median over tokens (solid) with the p99 (dashed) and the min–max band; one token
/// draws one line. Panels whose every value lies within 10⁻³ of 1 show `gain − 1` on a linear
/// axis; panels spanning more than a factor of 10 use a log axis. `max_gain` is drawn as a
/// threshold where it fits the panel's scale, and stated in the subtitle otherwise. `name` is
/// the file's name (not its path).
pub fn audit_gain_figure(
    name: &str,
    provenance: &Provenance,
    result: &AuditResult,
    max_gain: f64,
) -> LineFigure {
    let results = result.results();
    let layers = results.layers();
    let tokens = results.draws();
    let style = style_for(provenance);
    let mut off_scale = false;
    let mut panel = |title: &str, composite: Composite, metric: Metric| {
        let value =
            |layer: Layer, stat: Stat| results.get(Audited::Stack, composite, layer, metric, stat);
        let all: Vec<f64> = Layer::all(layers)
            .flat_map(|l| [value(l, Stat::Min), value(l, Stat::Max)])
            .filter(|v| v.is_finite())
            .collect();
        let near_one = !all.is_empty() && all.iter().all(|v| (v - 1.0).abs() <= NEAR_ONE);
        let shift = if near_one { 1.0 } else { 0.0 };
        let points = |stat: Stat| -> Vec<(f64, f64)> {
            Layer::all(layers)
                .map(|l| (l.number() as f64, value(l, stat) - shift))
                .collect()
        };
        let y_label = match (near_one, metric) {
            (true, Metric::AmaxForward) => "Amax gain − 1 (max |row sum| − 1)",
            (true, _) => "Amax gain − 1 (max |column sum| − 1)",
            (false, Metric::AmaxForward) => "Amax gain (max |row sum|)",
            (false, _) => "Amax gain (max |column sum|)",
        };
        let mut panel = Panel::new(title, "layer l", y_label);
        let central = if tokens > 1 {
            "median over tokens"
        } else {
            provenance.layout.name()
        };
        let mut median = Series::new(central, style.clone(), points(Stat::Median));
        if tokens > 1 {
            median = median.with_band(
                Layer::all(layers)
                    .map(|l| {
                        (
                            l.number() as f64,
                            value(l, Stat::Min) - shift,
                            value(l, Stat::Max) - shift,
                        )
                    })
                    .collect(),
            );
        }
        panel = panel.with_series(median);
        if tokens > 1 {
            panel = panel.with_series(Series::new(
                "p99 over tokens (band: min–max)",
                style.clone().dashed(),
                points(Stat::P99),
            ));
        }
        if near_one {
            panel = panel.with_reference_line(0.0, "gain 1");
            let largest = all.iter().fold(0.0f64, |m, v| m.max((v - 1.0).abs()));
            if max_gain - 1.0 <= 10.0 * largest.max(f64::MIN_POSITIVE) {
                panel = panel.with_threshold_line(max_gain - 1.0, format!("--max-gain {max_gain}"));
            } else {
                off_scale = true;
            }
        } else {
            let (lo, hi) = all
                .iter()
                .filter(|v| **v > 0.0)
                .fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            let hi = hi.max(max_gain);
            panel = panel.with_reference_line(1.0, "gain 1");
            if hi > 10.0 * lo.min(1.0) {
                panel = panel.log_y();
            }
            panel = panel.with_threshold_line(max_gain, format!("--max-gain {max_gain}"));
        }
        panel
    };
    let panels = vec![
        panel(
            "(a) single layer, forward: amax_forward(H_l)",
            Composite::Single,
            Metric::AmaxForward,
        ),
        panel(
            "(b) single layer, backward: amax_backward(H_l)",
            Composite::Single,
            Metric::AmaxBackward,
        ),
        panel(
            "(c) composite, forward: amax_forward(H_l⋯H_1)",
            Composite::Prefix,
            Metric::AmaxForward,
        ),
        panel(
            "(d) composite, backward: amax_backward(H_L⋯H_l)",
            Composite::Suffix,
            Metric::AmaxBackward,
        ),
    ];
    let mut subtitle = format!(
        "layout {} · {} · n = {} · {} ({}) · verdict: {}",
        provenance.layout.name(),
        crate::export::table::count_of(layers as u64, "layer"),
        result.tokens.streams,
        crate::export::table::count_of(tokens, "token"),
        provenance.origin.describe(),
        result.verdict.name()
    );
    if off_scale {
        subtitle.push_str(&format!(
            " · the --max-gain {max_gain} threshold lies far above the panels that show gain − 1"
        ));
    }
    LineFigure::new(format!("Audit of {name}"), panels).with_subtitle(subtitle)
}

fn heatmap_panel(title: String, m: &[f64], n: usize) -> HeatmapPanel {
    let rows = row_sums(m, n);
    let cols = column_sums(m, n);
    let matrix = m.chunks(n).map(<[f64]>::to_vec).collect();
    HeatmapPanel::new(
        format!(
            "{title}: Amax fwd {} / bwd {}",
            format_significant(amax_forward(m, n), 3),
            format_significant(amax_backward(m, n), 3)
        ),
        matrix,
    )
    .with_row_annotations(rows.iter().map(|s| format_significant(*s, 3)).collect())
    .with_col_annotations(cols.iter().map(|s| format_significant(*s, 3)).collect())
    .with_value_format(ValueFormat::Significant(2))
}

/// The panels of [`audit_heatmap_figure`]: the worst layer's token-mean H_res and, when it is
/// finite, the whole-model composite of the token-mean matrices `mean_matrices` (one row-major
/// n×n per layer), with row sums (right), column sums (below) and Amax in the titles. The
/// checkpoint-audit reports show these panels for several models.
pub fn audit_heatmap_panels(result: &AuditResult, mean_matrices: &[Vec<f64>]) -> Vec<HeatmapPanel> {
    let n = result.tokens.streams;
    let worst = result.worst_layers.first().copied().unwrap_or(Layer::FIRST);
    let slices: Vec<&[f64]> = mean_matrices.iter().map(Vec::as_slice).collect();
    let composite = prefix_composites(&slices, n)
        .pop()
        .map(|p| p.to_f64())
        .unwrap_or_default();
    let mut panels = vec![heatmap_panel(
        format!("H_{worst} (worst layer)"),
        &mean_matrices[worst.index()],
        n,
    )];
    if composite.iter().all(|x| x.is_finite()) {
        panels.push(heatmap_panel(
            crate::export::audit::whole_model_name(mean_matrices.len()),
            &composite,
            n,
        ));
    }
    panels
}

/// Heat maps of the worst layer's H_res and of the whole-model composite, both of the
/// token-mean matrices `mean_matrices` (one row-major n×n per layer), with row sums (right) and
/// column sums (below).
pub fn audit_heatmap_figure(
    provenance: &Provenance,
    result: &AuditResult,
    mean_matrices: &[Vec<f64>],
) -> HeatmapFigure {
    let panels = audit_heatmap_panels(result, mean_matrices);
    let what = if result.results().draws() > 1 {
        "mean over tokens"
    } else {
        "one token"
    };
    HeatmapFigure::new(
        format!("H_res of {} ({what})", provenance.layout.name()),
        panels,
        2,
    )
    .with_subtitle(
        "rows = output streams, columns = input streams; row sums right, column sums below",
    )
}
