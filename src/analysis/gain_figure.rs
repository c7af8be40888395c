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

/// The paper-style figure: (a) forward gain of prefix(l) = H_l⋯H_1, (b) backward gain of
/// suffix(l) = H_L⋯H_l, HC and mHC, log y.
pub fn gain_figure(config: &GainConfig, result: &GainResult, band: Band) -> LineFigure {
    let forward = Panel::new(
        "(a) forward: amax_forward(H_l⋯H_1)",
        "layer l",
        "Amax gain (max |row sum|)",
    )
    .log_y()
    .with_reference_line(1.0, "gain 1");
    let backward = Panel::new(
        "(b) backward: amax_backward(H_L⋯H_l)",
        "layer l",
        "Amax gain (max |column sum|)",
    )
    .log_y()
    .with_reference_line(1.0, "gain 1");
    let forward = method_series(result, Composite::Prefix, Metric::AmaxForward, band, "")
        .into_iter()
        .fold(forward, Panel::with_series);
    let backward = method_series(result, Composite::Suffix, Metric::AmaxBackward, band, "")
        .into_iter()
        .fold(backward, Panel::with_series);
    LineFigure::new(
        "Composite gain across depth: HC vs mHC",
        vec![forward, backward],
    )
    .with_subtitle(run_description(config, result, band))
}
