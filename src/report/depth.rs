//! `kind = "depth-sweep"`: HC's growth rate and mHC's flat gain against depth L and stream
//! count n, and the stream collapse of mHC composites (σ₂ and ‖P − J/n‖₂ against depth), which
//! the paper does not show.
//!
//! One stack of the largest depth is drawn per seed and n; the L-layer model is its first L
//! layers. The generator draws layer by layer in order, so those layers are exactly the
//! logits an L-layer `gain --layers L` run draws for the same seed, and prefix(L) = H_L⋯H_1
//! is its whole-model composite.

use crate::analysis::{
    Layer, LayerSelection, LogitSource, Method, MetricSelection, Selection, Stat, Summary, run_gain,
};
use crate::compose::Composite;
use crate::error::Error;
use crate::export::json::number;
use crate::export::markdown::{Cell, Table};
use crate::metrics::Metric;
use crate::plot::{AxisScale, LineFigure, Panel, Series, SeriesStyle};

use super::common::{
    CURVE_STATS, CsvTable, Field, TidyCsv, and_list, band_series, max_deviation_from_one, num,
};
use super::experiment::DepthSpec;
use super::{DataFile, FigureData, Report, ReportFigure, ReportTable};

/// What the report reads at each depth L: statistics over seeds of the whole-model composite
/// prefix(L) = H_L⋯H_1 of the L-layer model.
#[derive(Clone, Copy, Debug)]
struct AtDepth {
    /// HC: log10 amax_forward.
    hc_log10_forward: Summary,
    /// mHC: amax_forward.
    mhc_forward: Summary,
    /// mHC: amax_backward.
    mhc_backward: Summary,
    /// mHC: σ₂.
    mhc_sigma2: Summary,
    /// mHC: ‖P − J/n‖₂.
    mhc_distance_to_average: Summary,
}

/// The metrics [`AtDepth`] reads.
const MEASURED: [Metric; 5] = [
    Metric::Log10AmaxForward,
    Metric::AmaxForward,
    Metric::AmaxBackward,
    Metric::Sigma2,
    Metric::DistanceToAverage,
];

/// Median σ₂ below which the streams count as collapsed to their mean (rounding level for
/// 4×4 products is ≈ 1e-16).
const COLLAPSED: f64 = 1e-12;

/// Values below this are rounding; the collapse figure draws them at this floor.
const DRAW_FLOOR: f64 = 1e-17;

/// Least-squares line y = a + b·x: (a, b, R²).
pub(crate) fn fit_line(points: &[(f64, f64)]) -> (f64, f64, f64) {
    let k = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / k;
    let my = points.iter().map(|p| p.1).sum::<f64>() / k;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = points.iter().map(|p| (p.1 - my).powi(2)).sum();
    let b = sxy / sxx;
    let a = my - b * mx;
    let r2 = if syy > 0.0 {
        sxy * sxy / (sxx * syy)
    } else {
        1.0
    };
    (a, b, r2)
}

struct StreamResult {
    streams: usize,
    /// Per depth, in the order of the experiment's depths.
    summaries: Vec<AtDepth>,
    /// (intercept, slope, R²) of median log10 gain against L.
    fit: (f64, f64, f64),
}

pub(super) fn run(spec: &DepthSpec, on_progress: &mut dyn FnMut(u64)) -> Result<Report, Error> {
    let depths = &spec.depths;
    let mut results = Vec::new();
    for config in &spec.configs {
        // One stack of the largest depth per seed; the L-layer model's whole-model composite is
        // prefix(L) of it, so only the prefix composites at the experiment's depths are measured.
        let at: Vec<Layer> = depths
            .iter()
            .map(|&d| Layer::new(d).expect("validated: depths ≥ 1"))
            .collect();
        let selection = Selection::metrics(MetricSelection::of(&MEASURED))
            .with_composite(Composite::Single, None)
            .with_composite(Composite::Suffix, None)
            .with_composite(Composite::Prefix, Some(LayerSelection::Only(at.clone())));
        let config = config.clone().with_selection(selection)?;
        let measured = run_gain(&config, |_, _| Ok(()), |_| {})?;
        on_progress(config.seeds());
        let summaries: Vec<AtDepth> = at
            .iter()
            .map(|&layer| {
                let get =
                    |method, metric| *measured.summary(method, Composite::Prefix, layer, metric);
                AtDepth {
                    hc_log10_forward: get(Method::Hc, Metric::Log10AmaxForward),
                    mhc_forward: get(Method::Mhc, Metric::AmaxForward),
                    mhc_backward: get(Method::Mhc, Metric::AmaxBackward),
                    mhc_sigma2: get(Method::Mhc, Metric::Sigma2),
                    mhc_distance_to_average: get(Method::Mhc, Metric::DistanceToAverage),
                }
            })
            .collect();
        let points: Vec<(f64, f64)> = depths
            .iter()
            .zip(&summaries)
            .map(|(&l, s)| (l as f64, s.hc_log10_forward.median))
            .collect();
        results.push(StreamResult {
            streams: config.streams(),
            summaries,
            fit: fit_line(&points),
        });
    }
    let config = &spec.configs[0];
    let seeds = config.seeds();
    let generator = match config.source() {
        LogitSource::Random(g) => g.describe(),
        LogitSource::Given { origin, .. } => origin.clone(),
    };
    let sinkhorn = config.sinkhorn();
    let max_depth = *depths.last().expect("validated: at least two depths");
    let letters: Vec<char> = "abcdefghijklmnopqrstuvwxyz".chars().collect();
    let pow10 = |x: f64| 10f64.powf(x);

    // --- growth figure ------------------------------------------------------------------------
    let growth_panels: Vec<Panel> = results
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let (a, b, _) = r.fit;
            let hc: Vec<(f64, Summary)> = depths
                .iter()
                .zip(&r.summaries)
                .map(|(&l, s)| (l as f64, s.hc_log10_forward))
                .collect();
            let mhc_points: Vec<(f64, f64)> = depths
                .iter()
                .zip(&r.summaries)
                .map(|(&l, s)| (l as f64, s.mhc_forward.median.log10()))
                .collect();
            let fit: Vec<(f64, f64)> = [depths[0], max_depth]
                .iter()
                .map(|&l| (l as f64, a + b * l as f64))
                .collect();
            Panel::new(
                format!(
                    "({}) n = {}: HC × {} per layer",
                    letters[k % letters.len()],
                    r.streams,
                    num(pow10(b), 4)
                ),
                "depth L",
                "log₁₀ amax_forward(H_L⋯H_1)",
            )
            .with_series(band_series(
                "HC median",
                SeriesStyle::hc().with_markers(),
                &hc,
            ))
            .with_series(Series::new(
                format!("fit: {} + {}·L", num(a, 2), num(b, 3)),
                SeriesStyle::hc().dashed(),
                fit,
            ))
            .with_series(Series::new(
                "mHC median",
                SeriesStyle::mhc().with_markers(),
                mhc_points,
            ))
            .with_reference_line(0.0, "gain 1")
        })
        .collect();
    let growth = LineFigure::new(
        "Whole-model forward gain against depth: HC grows exponentially, mHC stays at 1",
        growth_panels,
    )
    .with_subtitle(format!(
        "logits {generator} · mHC: Sinkhorn {} iterations ({}) · {seeds} seeds: median, HC band 5–95 % · fit: least squares of the median log10 gain",
        sinkhorn.iterations,
        sinkhorn.order.describe()
    ));

    // --- collapse figure ----------------------------------------------------------------------
    let collapse_panels: Vec<Panel> = results
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let summaries = |value: fn(&AtDepth) -> Summary| -> Vec<(f64, Summary)> {
                depths
                    .iter()
                    .zip(&r.summaries)
                    .map(|(&l, s)| (l as f64, value(s)))
                    .collect()
            };
            let floor = |x: f64| x.max(DRAW_FLOOR);
            let sigma = summaries(|s| s.mhc_sigma2);
            let average = summaries(|s| s.mhc_distance_to_average);
            let mut panel = Panel::new(
                format!("({}) n = {}", letters[k % letters.len()], r.streams),
                "depth L (log scale)",
                "mHC composite H_L⋯H_1",
            )
            .log_y()
            .with_series(
                Series::new(
                    "σ₂",
                    SeriesStyle::mhc().with_markers(),
                    sigma.iter().map(|(x, s)| (*x, floor(s.median))).collect(),
                )
                .with_band(
                    sigma
                        .iter()
                        .map(|(x, s)| (*x, floor(s.p05), floor(s.p95)))
                        .collect(),
                ),
            )
            .with_series(Series::new(
                "‖P − J/n‖₂",
                SeriesStyle::mhc().dashed(),
                average.iter().map(|(x, s)| (*x, floor(s.median))).collect(),
            ))
            .with_reference_line(f64::EPSILON, "f64 ε");
            panel.x_scale = AxisScale::Log10;
            panel
        })
        .collect();
    let collapse = LineFigure::new(
        "Stream collapse of mHC composites: H_L⋯H_1 → J/n",
        collapse_panels,
    )
    .with_subtitle(format!(
        "logits {generator} · Sinkhorn {} iterations · {seeds} seeds: median, σ₂ band 5–95 %",
        sinkhorn.iterations
    ));

    // --- tables ---------------------------------------------------------------------------
    let mut growth_table = Table::new(
        format!(
            "Growth of the whole-model forward gain with depth: least-squares line through the median log10 amax_forward(H_L⋯H_1) over {seeds} seeds at L ∈ {{{}}} (logits {generator}); mHC's largest deviation from gain 1 in either direction over all depths and seeds.",
            depths
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "depth-growth",
        vec![
            "n".to_string(),
            "HC slope (decades/layer)".to_string(),
            "HC gain per layer".to_string(),
            "intercept".to_string(),
            "R²".to_string(),
            format!("HC median at L = {max_depth}"),
            "mHC max |gain − 1|".to_string(),
        ],
    );
    let mhc_deviation = |r: &StreamResult| {
        max_deviation_from_one(r.summaries.iter().flat_map(|s| {
            [
                s.mhc_forward.min,
                s.mhc_forward.max,
                s.mhc_backward.min,
                s.mhc_backward.max,
            ]
        }))
    };
    for r in &results {
        let (a, b, r2) = r.fit;
        let last = r.summaries.last().expect("depths").hc_log10_forward.median;
        growth_table.push_row(vec![
            Cell::text(r.streams.to_string()),
            Cell::number(b, 3),
            Cell::number(pow10(b), 4),
            Cell::number(a, 3),
            Cell::number(r2, 4),
            Cell::text(format!("10^{}", num(last, 3))),
            Cell::number(mhc_deviation(r), 2),
        ]);
    }
    growth_table
        .notes
        .push("Gain per layer = 10^slope. HC median at the largest depth as a power of ten (log10 values stay finite where the gain would overflow f64).".to_string());
    let mut header = vec!["n".to_string()];
    header.extend(depths.iter().map(|d| format!("L = {d}")));
    let mut collapse_table = Table::new(
        format!(
            "Stream collapse: median σ₂ of the mHC composite H_L⋯H_1 over {seeds} seeds (σ₂ = ‖P − J/n‖₂ for doubly stochastic P; values near 1e-16 are rounding: the streams have become their mean)."
        ),
        "depth-collapse",
        header,
    );
    for r in &results {
        let mut row = vec![Cell::text(r.streams.to_string())];
        row.extend(
            r.summaries
                .iter()
                .map(|s| Cell::number(s.mhc_sigma2.median, 2)),
        );
        collapse_table.push_row(row);
    }

    // --- data ---------------------------------------------------------------------------------
    let mut csv = TidyCsv::new(&["streams"])?;
    let mut fits = CsvTable::new(&[
        "streams",
        "method",
        "metric",
        "slope_per_layer",
        "intercept",
        "r_squared",
    ])?;
    for r in &results {
        let grid = [Field::from(r.streams)];
        for (&depth, s) in depths.iter().zip(&r.summaries) {
            let depth = Layer::new(depth).expect("validated: depths ≥ 1");
            csv.summary(
                &grid,
                "hc",
                Composite::Prefix,
                depth,
                Metric::Log10AmaxForward,
                &CURVE_STATS,
                &s.hc_log10_forward,
            )?;
            let extremes = [Stat::Median, Stat::Min, Stat::Max];
            for (summary, metric, stats) in [
                (&s.mhc_forward, Metric::AmaxForward, &extremes[..]),
                (&s.mhc_backward, Metric::AmaxBackward, &extremes),
                (&s.mhc_sigma2, Metric::Sigma2, &CURVE_STATS),
                (
                    &s.mhc_distance_to_average,
                    Metric::DistanceToAverage,
                    &CURVE_STATS,
                ),
            ] {
                csv.summary(
                    &grid,
                    "mhc",
                    Composite::Prefix,
                    depth,
                    metric,
                    stats,
                    summary,
                )?;
            }
        }
        let (a, b, r2) = r.fit;
        fits.row(vec![
            Field::from(r.streams),
            Field::from("hc"),
            Field::from(Metric::Log10AmaxForward.name()),
            Field::from(b),
            Field::from(a),
            Field::from(r2),
        ])?;
    }

    // --- prose ---------------------------------------------------------------------------------
    let slopes: Vec<String> = results
        .iter()
        .map(|r| format!("{} (n = {})", num(r.fit.1, 3), r.streams))
        .collect();
    let factors: Vec<String> = results
        .iter()
        .map(|r| format!("×{} (n = {})", num(pow10(r.fit.1), 4), r.streams))
        .collect();
    let worst_mhc = results.iter().map(mhc_deviation).fold(0.0, f64::max);
    let collapse_depths: Vec<String> = results
        .iter()
        .map(|r| {
            match depths
                .iter()
                .zip(&r.summaries)
                .find(|(_, s)| s.mhc_sigma2.median < COLLAPSED)
            {
                Some((l, _)) => format!("L = {l} for n = {}", r.streams),
                None => format!("beyond L = {max_depth} for n = {}", r.streams),
            }
        })
        .collect();
    let first_sigma: Vec<String> = results
        .iter()
        .map(|r| {
            format!(
                "{} (n = {})",
                num(r.summaries[0].mhc_sigma2.median, 2),
                r.streams
            )
        })
        .collect();
    // Stream counts whose median hardly grows over the whole range (less than one decade).
    let flat: Vec<String> = results
        .iter()
        .filter(|r| r.fit.1 * max_depth as f64 <= 1.0)
        .map(|r| {
            let last = &r.summaries.last().expect("depths").hc_log10_forward;
            format!(
                "n = {}, whose median moves by {} decades up to L = {max_depth} while its 5–95 % band widens to {} … {} decades (R² {})",
                r.streams,
                num(r.fit.1 * (max_depth - depths[0]) as f64, 2),
                num(last.p05, 2),
                num(last.p95, 2),
                num(r.fit.2, 2)
            )
        })
        .collect();
    let growing: Vec<&StreamResult> = results
        .iter()
        .filter(|r| r.fit.1 * max_depth as f64 > 1.0)
        .collect();
    let min_r2 = growing.iter().map(|r| r.fit.2).fold(1.0, f64::min);
    let headline = format!(
        "HC's whole-model gain grows exponentially with depth, by {} decades per layer, while mHC's stays within {} of 1 up to L = {max_depth}; mHC composites instead collapse every stream to the mean (σ₂ < {}) by {}.",
        and_list(&slopes),
        num(worst_mhc.max(f64::MIN_POSITIVE), 2),
        num(COLLAPSED, 1),
        and_list(&collapse_depths),
    );
    let run = format!(
        "For each n ∈ {{{}}} we drew {seeds} stacks of {max_depth} logit matrices ({generator}); the L-layer model is the first L layers of each draw (the generator draws layer by layer, so this is exactly the draw of an L-layer run), HC uses the logits as H_res and mHC their Sinkhorn normalisation ({} iterations). A least-squares line through the median log10 amax_forward(H_L⋯H_1) against L gives HC a growth factor per layer of {}{}{}. mHC's forward and backward gains stay within {} of 1 at every depth and for every seed.",
        results
            .iter()
            .map(|r| r.streams.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        sinkhorn.iterations,
        and_list(&factors),
        if growing.is_empty() {
            String::new()
        } else {
            format!(
                ": the gain grows exponentially (R² ≥ {} where it grows), and faster with more streams",
                num(min_r2, 3)
            )
        },
        if flat.is_empty() {
            String::new()
        } else {
            format!(
                ". The exception is {}: a random walk in log gain without drift, so single seeds still explode or vanish",
                and_list(&flat)
            )
        },
        num(worst_mhc.max(f64::MIN_POSITIVE), 2),
    );
    let collapse_text = format!(
        "What mHC does instead is mix: for doubly stochastic layers ‖H_L⋯H_1 − J/n‖₂ ≤ Π σ₂(H_l), so the composite tends to J/n, the matrix that replaces every stream by the mean of all streams (docs/theory.md §2.3; the paper does not discuss this). With this generator the median σ₂ of the composite is already {} at L = {}; it reaches rounding level (< {}) by {}. Beyond that depth the residual path carries only one mixture of the input streams, whatever they held. ‖P − J/n‖₂ stops falling earlier, at the level of the Sinkhorn truncation error compounded over depth: the merged stream is a slightly non-uniform average. The paper's trained layers are closer to the identity (its Π1..60 keeps σ₂ = 0.037, docs/theory.md §5.2), so they collapse more slowly, but in the same direction.",
        and_list(&first_sigma),
        depths[0],
        num(COLLAPSED, 1),
        and_list(&collapse_depths),
    );

    let parameters = serde_json::json!({
        "grid": { "layers": depths, "streams": spec.streams },
        "seeds": seeds,
        "seed": config.seed(),
        "logits": generator,
        "identity_weight": match config.source() { LogitSource::Random(g) => number(g.identity_weight()), _ => serde_json::Value::Null },
        "logit_std": match config.source() { LogitSource::Random(g) => number(g.logit_std()), _ => serde_json::Value::Null },
        "shared_std": match config.source() { LogitSource::Random(g) => number(g.shared_std()), _ => serde_json::Value::Null },
        "sinkhorn_iterations": sinkhorn.iterations,
        "sinkhorn_order": sinkhorn.order,
        "drawn_layers_per_seed": max_depth,
        "version": env!("CARGO_PKG_VERSION"),
    });

    Ok(Report {
        headline,
        summary: vec![run, collapse_text],
        figures: vec![
            ReportFigure {
                name: "growth".to_string(),
                caption: format!(
                    "log₁₀ of the whole-model forward Amax gain amax_forward(H_L⋯H_1) against depth L, one panel per stream count n. HC: median over {seeds} seeds with markers at the measured depths and a 5–95 % band; dashed: the least-squares line through the medians, whose slope is the growth rate in decades per layer. mHC: median, at log₁₀ 1 = 0 (rows are normalised last)."
                ),
                figure: FigureData::Line(growth),
            },
            ReportFigure {
                name: "collapse".to_string(),
                caption: format!(
                    "Stream collapse of the mHC composite against depth L (log x, log y), median over {seeds} seeds. Solid: σ₂(H_L⋯H_1) with its 5–95 % band — how far the output streams still differ; it falls to rounding once every stream carries the same mixture. Dashed: ‖H_L⋯H_1 − J/n‖₂ — how far that mixture is from the plain mean; the two agree for exactly doubly stochastic composites and part where Sinkhorn's truncation error, compounded over depth, makes the merged stream a slightly non-uniform average. Grey: f64 machine epsilon; values below 1e-17 are rounding and drawn at 1e-17."
                ),
                figure: FigureData::Line(collapse),
            },
        ],
        tables: vec![
            ReportTable {
                name: "table-growth".to_string(),
                table: growth_table,
            },
            ReportTable {
                name: "table-collapse".to_string(),
                table: collapse_table,
            },
        ],
        data: vec![
            DataFile {
                name: "depth.csv".to_string(),
                description: "`streams,method,composite,layer,metric,stat,value`: for each n and depth L (composite prefix, layer L): HC log10_amax_forward (median, p05, p95); mHC amax_forward and amax_backward (median, min, max), sigma2 and distance_to_average (median, p05, p95).".to_string(),
                bytes: csv.finish()?,
            },
            DataFile {
                name: "fit.csv".to_string(),
                description: "`streams,method,metric,slope_per_layer,intercept,r_squared`: the least-squares line log10 gain = intercept + slope·L through the medians.".to_string(),
                bytes: fits.finish()?,
            },
        ],
        parameters,
        seeds: Some((seeds, config.seed())),
        inputs: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_a_line() {
        let points: Vec<(f64, f64)> = [8.0, 16.0, 32.0]
            .iter()
            .map(|&x| (x, 0.5 + 0.04 * x))
            .collect();
        let (a, b, r2) = fit_line(&points);
        assert!((a - 0.5).abs() < 1e-12 && (b - 0.04).abs() < 1e-14);
        assert!((r2 - 1.0).abs() < 1e-12);
    }
}
