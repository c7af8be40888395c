//! The `gain` figure, built from a sweep's results (plain figure data; [`crate::plot`] draws
//! it): HC vs mHC composite Amax gain against depth, shared by `gain --out` and the reports.

use super::gain::{GainConfig, GainResult, LogitSource, Method};
use super::results::{Layer, Stat};
use crate::compose::Composite;
use crate::metrics::Metric;
use crate::plot::{LineFigure, Panel, Series, SeriesStyle};

/// Which spread over seeds the shaded band shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Band {
    /// From the smallest to the largest seed.
    MinMax,
    /// From the 5th to the 95th percentile.
    Percentile5To95,
}

impl Band {
    fn stats(self) -> (Stat, Stat) {
        match self {
            Band::MinMax => (Stat::Min, Stat::Max),
            Band::Percentile5To95 => (Stat::P05, Stat::P95),
        }
    }

    /// Legend/subtitle wording.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Band::MinMax => "min–max over seeds",
            Band::Percentile5To95 => "5–95 % over seeds",
        }
    }
}

/// One series per method: the median over seeds (the value itself for one seed) of `metric` of
/// `composite` at every layer, with a band when there are several seeds.
pub(crate) fn method_series(
    result: &GainResult,
    composite: Composite,
    metric: Metric,
    band: Band,
    label_suffix: &str,
) -> Vec<Series> {
    let layers = result.layers();
    let several = result.draws() > 1;
    Method::ALL
        .iter()
        .map(|&method| {
            let summary = |layer| result.summary(method, composite, layer, metric);
            let centre = if several { Stat::Median } else { Stat::Mean };
            let points = Layer::all(layers)
                .map(|l| (l.number() as f64, summary(l).get(centre)))
                .collect();
            let style = method_style(method);
            let mut series =
                Series::new(format!("{}{label_suffix}", method.label()), style, points);
            if several {
                let (low, high) = band.stats();
                series = series.with_band(
                    Layer::all(layers)
                        .map(|l| (l.number() as f64, summary(l).get(low), summary(l).get(high)))
                        .collect(),
                );
            }
            series
        })
        .collect()
}

/// The colour of a method in every figure: HC vermillion, mHC blue.
pub(crate) fn method_style(method: Method) -> SeriesStyle {
    match method {
        Method::Hc => SeriesStyle::hc(),
        Method::Mhc => SeriesStyle::mhc(),
    }
}

/// Where a sweep's logits come from, in the one wording every output uses: the generator's
/// formula and the master seed, or the file.
pub(crate) fn logits_description(config: &GainConfig) -> String {
    match config.source() {
        LogitSource::Random(generator) => {
            format!(
                "logits {} (master seed {})",
                generator.describe(),
                config.seed()
            )
        }
        LogitSource::Given { origin, .. } => format!("logits from {origin}"),
    }
}

/// A one-line description of the run for subtitles.
pub(crate) fn run_description(config: &GainConfig, result: &GainResult, band: Band) -> String {
    let source = logits_description(config);
    let mut text = format!(
        "{} · n = {} · {} · mHC: Sinkhorn {} iterations ({}) · tokens: {}",
        crate::export::table::count_of(config.layers() as u64, "layer"),
        config.streams(),
        source,
        config.sinkhorn().iterations,
        config.sinkhorn().order.describe(),
        config.token_aggregation().name(),
    );
    if result.draws() > 1 {
        text.push_str(&format!(
            " · {} seeds: median, band {}",
            result.draws(),
            band.describe()
        ));
    }
    text
}

/// One panel of [`gain_figure`] or [`gain_figure_with_single_layers`]: `metric` of `composite`
/// against layer l for HC and mHC, log y, with gain 1 marked.
fn gain_panel(
    result: &GainResult,
    (title, composite, metric): (&str, Composite, Metric),
    band: Band,
) -> Panel {
    let y_label = match metric {
        Metric::AmaxForward => "Amax gain (max |row sum|)",
        _ => "Amax gain (max |column sum|)",
    };
    method_series(result, composite, metric, band, "")
        .into_iter()
        .fold(
            Panel::new(title, "layer l", y_label)
                .log_y()
                .with_reference_line(1.0, "gain 1"),
            Panel::with_series,
        )
}

/// The composite panels: forward gain of prefix(l) = H_l⋯H_1, backward gain of
/// suffix(l) = H_L⋯H_l (the curves of the paper's Figs. 3b and 7b).
const COMPOSITE_PANELS: [(&str, Composite, Metric); 2] = [
    (
        "forward: amax_forward(H_l⋯H_1)",
        Composite::Prefix,
        Metric::AmaxForward,
    ),
    (
        "backward: amax_backward(H_L⋯H_l)",
        Composite::Suffix,
        Metric::AmaxBackward,
    ),
];

/// The single-layer panels: forward and backward gain of H_l (the paper's Figs. 3a and 7a).
const SINGLE_PANELS: [(&str, Composite, Metric); 2] = [
    (
        "single layer, forward: amax_forward(H_l)",
        Composite::Single,
        Metric::AmaxForward,
    ),
    (
        "single layer, backward: amax_backward(H_l)",
        Composite::Single,
        Metric::AmaxBackward,
    ),
];

/// The paper-style figure: (a) forward gain of prefix(l) = H_l⋯H_1, (b) backward gain of
/// suffix(l) = H_L⋯H_l, HC and mHC, log y.
pub fn gain_figure(config: &GainConfig, result: &GainResult, band: Band) -> LineFigure {
    let panels = COMPOSITE_PANELS
        .iter()
        .map(|&(title, composite, metric)| (title.to_string(), composite, metric));
    lettered_figure(
        "Composite gain across depth: HC vs mHC",
        panels,
        config,
        result,
        band,
    )
}

/// [`gain_figure`] with the single layers first: (a, b) forward and backward gain of H_l, then
/// (c, d) the composites — the figure of the `gain` reports.
pub fn gain_figure_with_single_layers(
    config: &GainConfig,
    result: &GainResult,
    band: Band,
) -> LineFigure {
    let panels =
        SINGLE_PANELS
            .iter()
            .map(|&(title, composite, metric)| (title.to_string(), composite, metric))
            .chain(COMPOSITE_PANELS.iter().map(|&(title, composite, metric)| {
                (format!("composite, {title}"), composite, metric)
            }));
    lettered_figure(
        "Amax gain across depth: HC vs mHC",
        panels,
        config,
        result,
        band,
    )
}

/// The figure `title` with one [`gain_panel`] per (title, composite, metric) of `panels`, lettered
/// (a), (b), … in order, and the run's description as subtitle.
fn lettered_figure(
    title: &str,
    panels: impl Iterator<Item = (String, Composite, Metric)>,
    config: &GainConfig,
    result: &GainResult,
    band: Band,
) -> LineFigure {
    let panels = panels
        .zip('a'..='z')
        .map(|((title, composite, metric), letter)| {
            gain_panel(
                result,
                (&format!("({letter}) {title}"), composite, metric),
                band,
            )
        })
        .collect();
    LineFigure::new(title, panels).with_subtitle(run_description(config, result, band))
}
