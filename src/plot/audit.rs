//! The `audit` figures: composite gain against depth, and heat maps of the worst layer's H_res
//! and of the whole-model composite (pure data; no drawing).

use crate::analysis::audit::AuditResult;
use crate::compose::{Composite, prefix_composites};
use crate::export::table::format_significant;
use crate::load::{Layout, LoadedHres};
use crate::metrics::{Metric, amax_backward, amax_forward, column_sums, row_sums};

use super::{HeatmapFigure, HeatmapPanel, LineFigure, Panel, Series, SeriesStyle, ValueFormat};

fn style_for(layout: Layout) -> SeriesStyle {
    match layout {
        Layout::LucidrainsHc => SeriesStyle::hc(),
        Layout::LucidrainsMhc | Layout::MhcPytorch | Layout::DeepseekV4 => SeriesStyle::mhc(),
        Layout::Stack => SeriesStyle::other(0),
    }
}

/// Forward gain of prefix(l) and backward gain of suffix(l) against l: the token aggregate
/// (solid) and, with several tokens, the maximum over tokens (dashed). Log y when the values
/// span more than a factor 10.
pub fn audit_gain_figure(source: &str, loaded: &LoadedHres, result: &AuditResult) -> LineFigure {
    let profile = &result.profile;
    let layers = profile.layers();
    let mut values = Vec::new();
    let mut panel = |title: &str, y_label: &str, composite: Composite, metric: Metric| {
        let mean: Vec<(f64, f64)> = (1..=layers)
            .map(|l| (l as f64, profile.get(composite, l, metric)))
            .collect();
        let max: Vec<(f64, f64)> = (1..=layers)
            .map(|l| (l as f64, profile.token_max(composite, l, metric)))
            .collect();
        values.extend(mean.iter().chain(&max).map(|p| p.1));
        let style = style_for(loaded.layout);
        let mut series = vec![Series::new(
            format!(
                "{} ({})",
                loaded.layout.name(),
                profile.aggregation().name()
            ),
            style.clone(),
            mean,
        )];
        if profile.tokens() > 1 {
            series.push(Series::new("max over tokens", style.dashed(), max));
        }
        series
            .into_iter()
            .fold(Panel::new(title, "layer l", y_label), Panel::with_series)
            .with_reference_line(1.0, "gain 1")
    };
    let forward = panel(
        "(a) forward: amax_forward(H_l⋯H_1)",
        "Amax gain (max |row sum|)",
        Composite::Prefix,
        Metric::AmaxForward,
    );
    let backward = panel(
        "(b) backward: amax_backward(H_L⋯H_l)",
        "Amax gain (max |column sum|)",
        Composite::Suffix,
        Metric::AmaxBackward,
    );
    let finite: Vec<f64> = values
        .into_iter()
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let (lo, hi) = finite.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    let log = hi > 10.0 * lo;
    let (forward, backward) = if log {
        (forward.log_y(), backward.log_y())
    } else {
        (forward, backward)
    };
    LineFigure::new(format!("Audit of {source}"), vec![forward, backward]).with_subtitle(format!(
        "layout {} · {} layers · n = {} · {} token(s) · verdict: {}",
        loaded.layout.name(),
        layers,
        profile.streams(),
        profile.tokens(),
        result.verdict.name()
    ))
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

/// Heat maps of the worst layer's H_res and of the whole-model composite, both of the
/// token-mean matrices, with row sums (right) and column sums (below).
pub fn audit_heatmap_figure(loaded: &LoadedHres, result: &AuditResult) -> HeatmapFigure {
    let n = loaded.stack.streams();
    let means = loaded.stack.token_mean_matrices();
    let worst = result.worst_layers.first().copied().unwrap_or(1);
    let slices: Vec<&[f64]> = means.iter().map(Vec::as_slice).collect();
    let composite = prefix_composites(&slices, n)
        .pop()
        .map(|p| p.to_f64())
        .unwrap_or_default();
    let mut panels = vec![heatmap_panel(
        format!("H_{worst} (worst layer)"),
        &means[worst - 1],
        n,
    )];
    if composite.iter().all(|x| x.is_finite()) {
        panels.push(heatmap_panel(
            format!("H_{}⋯H_1", means.len()),
            &composite,
            n,
        ));
    }
    HeatmapFigure::new(
        format!("H_res of {} (mean over tokens)", loaded.layout.name()),
        panels,
        2,
    )
    .with_subtitle(
        "rows = output streams, columns = input streams; row sums right, column sums below",
    )
}
