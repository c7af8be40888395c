//! `kind = "depth-sweep"`: HC's growth rate and mHC's flat gain against depth L and stream
//! count n, and the stream collapse of mHC composites (σ₂ and ‖P − J/n‖₂ against depth), which
//! the paper does not show.
//!
//! One stack of the largest depth is drawn per seed and n; the L-layer model is its first L
//! layers. The generator draws layer by layer in order, so those layers are exactly the
//! logits an L-layer `gain --layers L` run draws for the same seed, and prefix(L) = H_L⋯H_1
//! is its whole-model composite.

use crate::analysis::gain_figure::logits_description;
use crate::analysis::{
    Layer, LayerSelection, LogitSource, Method, MetricSelection, Selection, Stat, Summary, run_gain,
};
use crate::compose::Composite;
use crate::error::Error;
use crate::export::json::number;
use crate::export::markdown::{Cell, Table};
use crate::export::table::count_of;
use crate::metrics::Metric;
use crate::plot::{AxisScale, LineFigure, Panel, Series, SeriesStyle};

use super::common::{
    COLLAPSED, CURVE_STATS, CsvTable, Field, TidyCsv, and_list, band_series,
    max_deviation_from_one, num,
};
use super::experiment::DepthSpec;
use super::paper;
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

/// R² of the line through the median log10 gains from which the growth counts as exponential.
const EXPONENTIAL_R2: f64 = 0.99;

/// Ratio of ‖P − J/n‖₂ to σ₂ beyond which the merged stream counts as a non-uniform average.
const APART: f64 = 10.0;

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
    let seeds_text = count_of(seeds, "seed");
    let logits = logits_description(config);
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
        "Whole-model forward Amax gain against depth: HC and mHC",
        growth_panels,
    )
    .with_subtitle(format!(
        "{logits} · mHC: Sinkhorn {} iterations ({}) · {seeds_text}: median, HC band 5–95 % · fit: least squares of the median log10 gain",
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
        "{logits} · Sinkhorn {} iterations ({}) · {seeds_text}: median, σ₂ band 5–95 %",
        sinkhorn.iterations,
        sinkhorn.order.describe()
    ));

    // --- tables ---------------------------------------------------------------------------
    let mut growth_table = Table::new(
        format!(
            "Growth of the whole-model forward gain with depth: least-squares line through the median log10 amax_forward(H_L⋯H_1) over {seeds_text} at L ∈ {{{}}}, {logits}; mHC's largest deviation from gain 1 in either direction over all depths and seeds.",
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
            "Stream collapse: median σ₂ of the mHC composite H_L⋯H_1 over {seeds_text} (σ₂ = ‖P − J/n‖₂ for doubly stochastic P; values near 1e-16 are rounding: the streams have become their mean)."
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
    let streams_list = |rs: &[&StreamResult]| -> String {
        let names: Vec<String> = rs.iter().map(|r| r.streams.to_string()).collect();
        if names.len() == 1 {
            format!("n = {}", names[0])
        } else {
            format!("n ∈ {{{}}}", names.join(", "))
        }
    };
    // Decades the fitted median moves over the measured depths.
    let rise = |r: &StreamResult| r.fit.1 * (max_depth - depths[0]) as f64;
    let growing: Vec<&StreamResult> = results.iter().filter(|r| rise(r) > 1.0).collect();
    let falling: Vec<&StreamResult> = results.iter().filter(|r| rise(r) < -1.0).collect();
    let flat: Vec<&StreamResult> = results.iter().filter(|r| rise(r).abs() <= 1.0).collect();
    let min_r2 = growing.iter().map(|r| r.fit.2).fold(1.0, f64::min);
    let exponential = !growing.is_empty() && min_r2 >= EXPONENTIAL_R2;
    let faster_with_streams =
        growing.len() > 1 && growing.windows(2).all(|w| w[1].fit.1 > w[0].fit.1);
    let slopes = |rs: &[&StreamResult]| -> Vec<String> {
        rs.iter()
            .map(|r| format!("{} (n = {})", num(r.fit.1, 3), r.streams))
            .collect()
    };
    let factors: Vec<String> = results
        .iter()
        .map(|r| format!("×{} (n = {})", num(pow10(r.fit.1), 4), r.streams))
        .collect();
    let worst_mhc = results.iter().map(mhc_deviation).fold(0.0, f64::max);
    let collapse_depth = |r: &StreamResult| {
        depths
            .iter()
            .zip(&r.summaries)
            .find(|(_, s)| s.mhc_sigma2.median < COLLAPSED)
            .map(|(l, _)| *l)
    };
    let collapsed: Vec<String> = results
        .iter()
        .filter_map(|r| collapse_depth(r).map(|l| format!("L = {l} for n = {}", r.streams)))
        .collect();
    let not_collapsed: Vec<&StreamResult> = results
        .iter()
        .filter(|r| collapse_depth(r).is_none())
        .collect();
    let collapse_summary = {
        let mut parts = Vec::new();
        if !collapsed.is_empty() {
            parts.push(format!(
                "collapse every stream to the mean (median σ₂ < {}) by {}",
                num(COLLAPSED, 1),
                and_list(&collapsed)
            ));
        }
        if !not_collapsed.is_empty() {
            parts.push(format!(
                "keep median σ₂ ≥ {} up to L = {max_depth} for {}",
                num(COLLAPSED, 1),
                streams_list(&not_collapsed)
            ));
        }
        parts.join(" and ")
    };
    let mut hc_parts = Vec::new();
    if !growing.is_empty() {
        hc_parts.push(format!(
            "grows {}with depth by {} decades per layer",
            if exponential { "exponentially " } else { "" },
            and_list(&slopes(&growing))
        ));
    }
    if !flat.is_empty() {
        hc_parts.push(format!(
            "moves by less than a decade up to L = {max_depth} for {}",
            streams_list(&flat)
        ));
    }
    if !falling.is_empty() {
        hc_parts.push(format!(
            "falls with depth by {} decades per layer",
            and_list(&slopes(&falling))
        ));
    }
    let every_seed = if seeds > 1 { " and for every seed" } else { "" };
    let headline = format!(
        "HC's median whole-model forward gain {}, while mHC's gains stay within {} of 1 up to L = {max_depth}; mHC composites {collapse_summary}.",
        and_list(&hc_parts),
        num(worst_mhc.max(f64::MIN_POSITIVE), 2),
    );
    let mut growth_text = String::new();
    if !growing.is_empty() {
        growth_text.push_str(&format!(
            ": the median grows {} for {}{}",
            if exponential {
                format!("exponentially (R² ≥ {})", num(min_r2, 3))
            } else {
                format!("(R² from {})", num(min_r2, 3))
            },
            streams_list(&growing),
            if faster_with_streams {
                ", faster with more streams"
            } else {
                ""
            }
        ));
    }
    growth_text.push('.');
    for r in &flat {
        let first = &r.summaries[0].hc_log10_forward;
        let last = &r.summaries.last().expect("depths").hc_log10_forward;
        let (width_first, width_last) = (first.p95 - first.p05, last.p95 - last.p05);
        growth_text.push_str(&format!(
            " For n = {} the fitted median moves by {} decades from L = {} to L = {max_depth} (R² {}), while the 5–95 % band of log10 gain {} {} decades wide ({} to {} at L = {max_depth})",
            r.streams,
            num(rise(r), 2),
            depths[0],
            num(r.fit.2, 2),
            if width_last > width_first {
                format!("widens from {} to", num(width_first, 2))
            } else {
                format!("goes from {} to", num(width_first, 2))
            },
            num(width_last, 2),
            num(last.p05, 2),
            num(last.p95, 2),
        ));
        growth_text.push_str(if seeds > 1 {
            ": single seeds still grow or shrink although the median does not."
        } else {
            "."
        });
    }
    let run = format!(
        "For each n ∈ {{{}}} we drew {} of {max_depth} logit matrices each, {logits}; the L-layer model is the first L layers of each draw (the generator draws layer by layer, so this is exactly the draw of an L-layer run), HC uses the logits as H_res and mHC their Sinkhorn normalisation ({} iterations, {}). A least-squares line through the median log10 amax_forward(H_L⋯H_1) against L gives HC a growth factor per layer of {}{growth_text} mHC's forward and backward gains stay within {} of 1 at every depth{every_seed}.",
        results
            .iter()
            .map(|r| r.streams.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        count_of(seeds, "stack"),
        sinkhorn.iterations,
        sinkhorn.order.describe(),
        and_list(&factors),
        num(worst_mhc.max(f64::MIN_POSITIVE), 2),
    );
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
    let mut collapse_text = format!(
        "For doubly stochastic layers ‖H_L⋯H_1 − J/n‖₂ ≤ Π σ₂(H_l), so the composite tends to J/n, the matrix that replaces every stream by the mean of all streams (docs/theory.md §2.3; the paper does not discuss this). Here the median σ₂ of the mHC composite is {} at L = {}",
        and_list(&first_sigma),
        depths[0],
    );
    if !collapsed.is_empty() {
        collapse_text.push_str(&format!(
            "; it falls below {} (rounding level) by {}, and beyond that depth the residual path carries one mixture of the input streams, whatever they held",
            num(COLLAPSED, 1),
            and_list(&collapsed)
        ));
    }
    if !not_collapsed.is_empty() {
        collapse_text.push_str(&format!(
            "; it stays above {} up to L = {max_depth} for {}",
            num(COLLAPSED, 1),
            streams_list(&not_collapsed)
        ));
    }
    collapse_text.push('.');
    // Where ‖P − J/n‖₂ stays well above σ₂ at the largest depth, the composite is not exactly
    // doubly stochastic: its streams merge into a non-uniform average.
    let apart: Vec<String> = results
        .iter()
        .filter_map(|r| {
            let last = r.summaries.last().expect("depths");
            let (distance, sigma) = (last.mhc_distance_to_average.median, last.mhc_sigma2.median);
            (distance > APART * sigma && distance > COLLAPSED).then(|| {
                format!(
                    "{} against σ₂ = {} (n = {})",
                    num(distance, 2),
                    num(sigma, 2),
                    r.streams
                )
            })
        })
        .collect();
    if !apart.is_empty() {
        collapse_text.push_str(&format!(
            " At L = {max_depth}, ‖P − J/n‖₂ has median {}: the streams merge into a slightly non-uniform average, as the composite is not exactly doubly stochastic.",
            and_list(&apart)
        ));
    }
    // The paper's whole-model σ₂ stands beside this sweep's only where the sweep has the paper's
    // stream count and depths on both sides of the paper's depth (or that depth itself).
    let paper_depths = (
        depths.iter().rposition(|&d| d <= paper::LAYERS),
        depths.iter().position(|&d| d >= paper::LAYERS),
    );
    if let (Some(r), (Some(below), Some(above))) = (
        results.iter().find(|r| r.streams == paper::STREAMS),
        paper_depths,
    ) {
        let at = |k: usize| {
            let here = r.summaries[k].mhc_sigma2.median;
            format!(
                "{} at L = {} ({} the paper's)",
                num(here, 2),
                depths[k],
                paper::factor(here, paper::WHOLE_MHC_SIGMA2)
            )
        };
        let here = if below == above {
            at(below)
        } else {
            format!("{} and {}", at(below), at(above))
        };
        collapse_text.push_str(&format!(
            " The paper's trained 27B model (n = {}) keeps σ₂ = {} in its whole-model composite Π1..{} (derived from Figure 8's printed entries, docs/theory.md §5.2); here the median at n = {} is {here}.",
            paper::STREAMS,
            num(paper::WHOLE_MHC_SIGMA2, 2),
            paper::LAYERS,
            paper::STREAMS,
        ));
    }

    let parameters = serde_json::json!({
        "grid": { "layers": depths, "streams": spec.streams },
        "seeds": seeds,
        "seed": config.seed(),
        "logits": match config.source() { LogitSource::Random(g) => g.describe(), LogitSource::Given { origin, .. } => origin.clone() },
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
                    "log₁₀ of the whole-model forward Amax gain amax_forward(H_L⋯H_1) against depth L, one panel per stream count n. HC: median over {seeds_text} with markers at the measured depths and a 5–95 % band; dashed: the least-squares line through the medians, whose slope is the growth rate in decades per layer. mHC: median; 0 is gain 1."
                ),
                figure: FigureData::Line(growth),
            },
            ReportFigure {
                name: "collapse".to_string(),
                caption: format!(
                    "Stream collapse of the mHC composite against depth L (log x, log y), median over {seeds_text}. Solid: σ₂(H_L⋯H_1) with its 5–95 % band — how far the output streams still differ; it falls to rounding once every stream carries the same mixture. Dashed: ‖H_L⋯H_1 − J/n‖₂ — how far that mixture is from the plain mean; the two agree for exactly doubly stochastic composites and part where a composite is not exactly doubly stochastic, so that the merged stream is a non-uniform average. Grey: f64 machine epsilon; values below 1e-17 are rounding and drawn at 1e-17."
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
