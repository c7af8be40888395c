//! `kind = "gain"`: HC vs mHC from the same logits over many seeds at one depth — single-layer
//! and composite Amax across depth, whole-model and peak values, and, for an experiment of the
//! paper's shape ([`paper::same_shape`]), the paper's own values beside them.
//!
//! "The larger of the forward and backward value" is defined once, per seed: the larger of the
//! two directions' values of that seed ([`Metric::AmaxLarger`], [`Peak::CompositeAmaxLarger`],
//! [`Peak::SingleAmaxLarger`]); every statistic of it is a statistic over seeds of that per-seed
//! maximum, never the larger of two statistics.

use crate::analysis::gain::{Method, run_gain};
use crate::analysis::gain_figure::logits_description;
use crate::analysis::gain_figure::{Band, gain_figure_with_single_layers};
use crate::analysis::{Layer, MetricSelection, Peak, Selection, Series, Stat, Summary};
use crate::compose::Composite;
use crate::error::Error;
use crate::export::audit::whole_model_name;
use crate::export::json::gain_parameters;
use crate::export::markdown::{Cell, Table};
use crate::export::table::count_of;
use crate::generate::{SinkhornOrder, SinkhornParams};
use crate::load::ExactSide;
use crate::metrics::Metric;

use super::common::{
    CURVE_STATS, CsvTable, Field, TidyCsv, exact_side, max_deviation_from_one, num, over_seeds,
};
use super::experiment::GainSpec;
use super::paper;
use super::{DataFile, FigureData, Report, ReportFigure, ReportTable};

/// The curves drawn: (composite, metric) per panel, in panel order.
const CURVES: [(Composite, Metric); 4] = [
    (Composite::Single, Metric::AmaxForward),
    (Composite::Single, Metric::AmaxBackward),
    (Composite::Prefix, Metric::AmaxForward),
    (Composite::Suffix, Metric::AmaxBackward),
];

/// Whole-model metrics in the CSV.
const WHOLE: [Metric; 8] = [
    Metric::AmaxForward,
    Metric::AmaxBackward,
    Metric::AmaxLarger,
    Metric::SpectralNorm,
    Metric::Sigma2,
    Metric::BirkhoffDistance,
    Metric::ColSumError,
    Metric::RowSumError,
];

/// Every metric the report reads.
const MEASURED: [Metric; 10] = [
    Metric::AmaxForward,
    Metric::AmaxBackward,
    Metric::AmaxLarger,
    Metric::SpectralNorm,
    Metric::Sigma2,
    Metric::BirkhoffDistance,
    Metric::ColSumError,
    Metric::RowSumError,
    Metric::InfNorm,
    Metric::OneNorm,
];

pub(super) fn run(spec: &GainSpec, on_progress: &mut dyn FnMut(u64)) -> Result<Report, Error> {
    let config = &spec
        .config
        .clone()
        .with_selection(Selection::metrics(MetricSelection::of(&MEASURED)))?;
    let layers = config.layers();
    let streams = config.streams();
    let seeds = config.seeds();
    let sinkhorn = config.sinkhorn();
    let logits = logits_description(config);
    let seeds_text = count_of(seeds, "seed");
    let whole_name = whole_model_name(layers);
    let layout = config.row_layout();
    // Each seed's composite peak, the larger of the forward and backward curve's maximum over
    // layers: the per-seed values whose statistics Tables 1 and 2 show, kept to count seeds.
    let mut composite_peaks: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut reported = 0;
    let results = run_gain(
        config,
        |_, values| {
            for method in Method::ALL {
                composite_peaks[method.position()].push(
                    layout
                        .read_peak(values, method, Peak::CompositeAmaxLarger)
                        .expect("both composite amax curves are measured"),
                );
            }
            Ok(())
        },
        |done| {
            on_progress(done - reported);
            reported = done;
        },
    )?;
    let seeds_reaching = |method: Method, value: f64| {
        let peaks = &composite_peaks[method.position()];
        peaks.iter().filter(|&&x| x >= value).count() as u64
    };
    let curve = |method: Method, k: usize, layer: Layer| -> &Summary {
        let (composite, metric) = CURVES[k];
        results.summary(method, composite, layer, metric)
    };
    let whole =
        |method: Method, metric: Metric| -> &Summary { results.whole_model(method, metric) };
    let peak = |method: Method, p: Peak| -> &Summary { results.peak(method, p) };

    // --- figure -------------------------------------------------------------------------
    let figure = gain_figure_with_single_layers(config, &results, Band::Percentile5To95);

    // --- tables ---------------------------------------------------------------------------
    let header = vec![
        "quantity".to_string(),
        "HC: median [5 %, 95 %]".to_string(),
        "mHC: median [5 %, 95 %]".to_string(),
    ];
    let interval = |s: &Summary, digits| Cell::interval(s.median, s.p05, s.p95, digits);
    let mut summary_table = Table::new(
        format!(
            "HC vs mHC over {seeds_text} of {layers}-layer stacks, n = {streams}, {logits}: whole-model composite {whole_name} and peaks over depth; median over seeds with the 5th and 95th percentile.",
        ),
        "gain-summary",
        header,
    );
    let whole_rows = [
        (Metric::AmaxForward, "whole model: amax_forward"),
        (Metric::AmaxBackward, "whole model: amax_backward"),
        (
            Metric::AmaxLarger,
            "whole model: larger of amax_forward and amax_backward, per seed",
        ),
        (Metric::SpectralNorm, "whole model: σ₁ (spectral norm)"),
        (Metric::Sigma2, "whole model: σ₂"),
        (Metric::BirkhoffDistance, "whole model: Birkhoff distance"),
    ];
    for (metric, label) in whole_rows {
        summary_table.push_row(vec![
            Cell::text(label),
            interval(whole(Method::Hc, metric), 3),
            interval(whole(Method::Mhc, metric), 3),
        ]);
    }
    summary_table.push_rule();
    let peak_rows = [
        (
            Peak::PrefixAmaxForward,
            "peak over l: amax_forward(H_l⋯H_1)",
        ),
        (
            Peak::SuffixAmaxBackward,
            "peak over l: amax_backward(H_L⋯H_l)",
        ),
        (
            Peak::CompositeAmaxLarger,
            "peak over l: larger of the two composite curves, per seed",
        ),
        (Peak::SingleAmaxForward, "peak over l: amax_forward(H_l)"),
        (Peak::SingleAmaxBackward, "peak over l: amax_backward(H_l)"),
        (
            Peak::SingleAmaxLarger,
            "peak over l: larger single-layer gain, per seed",
        ),
    ];
    for (p, label) in peak_rows {
        summary_table.push_row(vec![
            Cell::text(label),
            interval(peak(Method::Hc, p), 3),
            interval(peak(Method::Mhc, p), 3),
        ]);
    }
    summary_table.notes.push(format!(
        "mHC = Sinkhorn–Knopp with t_max = {} ({}); HC uses the same logits as H_res. \"Larger …, per seed\": each seed's larger of its forward and backward value, then the median and percentiles over seeds of that per-seed maximum. Statistics are exact over the {seeds_text}.",
        sinkhorn.iterations,
        sinkhorn.order.describe(),
    ));
    let mut tables = vec![ReportTable {
        name: "table-summary".to_string(),
        table: summary_table,
    }];

    let composite_peak = |method: Method| peak(method, Peak::CompositeAmaxLarger);
    let single_peak = |method: Method| peak(method, Peak::SingleAmaxLarger);
    let whole_max = |method: Method| whole(method, Metric::AmaxLarger);
    let paper_shape = paper::same_shape(layers, streams);
    if paper_shape {
        let mut paper_table = Table::new(
            format!(
                "The paper's Amax gains (trained 27B model, arXiv 2512.24880 v2) beside this synthetic setting of the same shape ({layers} layers, n = {streams}): per seed the larger of the forward and backward value, median [5 %, 95 %] over seeds."
            ),
            "gain-paper",
            vec![
                "quantity".to_string(),
                "HC: paper".to_string(),
                "HC: here".to_string(),
                "mHC: paper".to_string(),
                "mHC: here".to_string(),
            ],
        );
        paper_table.push_row(vec![
            Cell::text("composite, peak over depth (Figs. 3b, 7b)"),
            Cell::text(format!("≈ {}", num(paper::HC_COMPOSITE_PEAK, 4))),
            interval(composite_peak(Method::Hc), 3),
            Cell::text(format!("≈ {}", num(paper::MHC_COMPOSITE_PEAK, 2))),
            interval(composite_peak(Method::Mhc), 3),
        ]);
        paper_table.push_row(vec![
            Cell::text(format!(
                "whole model {whole_name} (Fig. 8: Π1..{})",
                paper::LAYERS
            )),
            Cell::number(paper::WHOLE_HC.0.max(paper::WHOLE_HC.1), 4),
            interval(whole_max(Method::Hc), 3),
            Cell::number(paper::WHOLE_MHC.0.max(paper::WHOLE_MHC.1), 3),
            interval(whole_max(Method::Mhc), 3),
        ]);
        paper_table.push_row(vec![
            Cell::text("single layer, largest (Fig. 8: H1, H30, H60)"),
            Cell::number(paper::SINGLE.0, 4),
            interval(single_peak(Method::Hc), 3),
            Cell::number(paper::SINGLE.1, 3),
            interval(single_peak(Method::Mhc), 3),
        ]);
        paper_table.notes.push(
            "Paper values: the maxima of Fig. 3(b) and Fig. 7(b) as its text states them, and Figure 8's labels of its printed token-averaged matrices (docs/theory.md §5.1–5.2). The paper's single-layer value is the largest of its three printed layers, ours the peak over all layers.".to_string(),
        );
        tables.push(ReportTable {
            name: "table-paper".to_string(),
            table: paper_table,
        });
    }

    // --- data -----------------------------------------------------------------------------
    let mut csv = TidyCsv::new(&[])?;
    for method in Method::ALL {
        for (k, (composite, metric)) in CURVES.iter().enumerate() {
            for layer in Layer::all(layers) {
                csv.summary(
                    &[],
                    method.name(),
                    *composite,
                    layer,
                    *metric,
                    &CURVE_STATS,
                    curve(method, k, layer),
                )?;
            }
        }
        for metric in WHOLE {
            csv.summary(
                &[],
                method.name(),
                Composite::Prefix,
                results.last_layer(),
                metric,
                &Stat::OVER_SEEDS,
                whole(method, metric),
            )?;
        }
    }
    let mut peaks = CsvTable::new(&["method", "peak", "stat", "value"])?;
    for method in Method::ALL {
        for &p in results.layout().peaks() {
            let s = peak(method, p);
            for stat in Stat::OVER_SEEDS {
                peaks.row(vec![
                    Field::from(method.name()),
                    Field::from(p.name()),
                    Field::from(stat.name()),
                    Field::from(s.get(stat)),
                ])?;
            }
        }
    }

    // --- prose ----------------------------------------------------------------------------
    // mHC's largest distance from gain 1 over every layer and seed, per composite curve
    // (k = 2: prefix forward, k = 3: suffix backward; both end in the whole model).
    let curve_deviation = |k: usize| {
        max_deviation_from_one(Layer::all(layers).flat_map(|l| {
            let s = curve(Method::Mhc, k, l);
            [s.min, s.max]
        }))
    };
    let (forward_dev, backward_dev) = (curve_deviation(2), curve_deviation(3));
    let whole_dev = max_deviation_from_one([
        whole(Method::Mhc, Metric::AmaxForward).min,
        whole(Method::Mhc, Metric::AmaxForward).max,
        whole(Method::Mhc, Metric::AmaxBackward).min,
        whole(Method::Mhc, Metric::AmaxBackward).max,
    ]);
    let small = |x: f64| num(x.max(f64::MIN_POSITIVE), 2);
    let every_seed = if seeds > 1 { " for every seed" } else { "" };
    let hc_whole = whole_max(Method::Hc);
    let hc_composite = composite_peak(Method::Hc);
    let stacks = if seeds == 1 {
        format!("one {layers}-layer stack")
    } else {
        format!("{seeds_text} of {layers}-layer stacks")
    };
    let headline = format!(
        "For {stacks} (n = {streams}), HC's whole-model Amax gain, per seed the larger of forward and backward, has {}; mHC's whole-model gains lie within {} of 1 in both directions{every_seed}.",
        over_seeds(hc_whole, seeds, 3),
        small(whole_dev),
    );
    let shape = if paper_shape {
        format!(
            " These are the depth and stream count of the paper's 27B model ({} blocks × 2 sublayers, n = {}; docs/theory.md §5.1).",
            paper::BLOCKS,
            paper::STREAMS
        )
    } else {
        String::new()
    };
    let tokens = match config.tokens() {
        1 => String::new(),
        t => format!(
            ", {} per layer (metrics: {})",
            count_of(t as u64, "token"),
            config.token_aggregation().name()
        ),
    };
    let exact = exact_side(sinkhorn.order);
    let run = format!(
        "Each of the {seeds_text} draws one stack of {} (n = {streams}{tokens}): {logits}.{shape} The stack is HC's H_res as drawn and, after {} Sinkhorn–Knopp iterations ({}), mHC's, so the two methods are compared on the same draws. HC's whole-model composite {whole_name} has forward Amax gain {} and backward gain {}; per seed the larger of the two has {}. HC's composite peak, per seed the largest value over l of both composite curves amax_forward(H_l⋯H_1) and amax_backward(H_L⋯H_l), has {}; its largest single-layer gain in either direction has {}. mHC's composite gains stay within {} of 1 forward and within {} of 1 backward at every depth{every_seed}; its whole-model row sums are within {} of 1 and its column sums within {} (the last Sinkhorn step normalises {}).",
        if layers == 1 {
            "1 logit matrix".to_string()
        } else {
            format!("{layers} logit matrices")
        },
        sinkhorn.iterations,
        sinkhorn.order.describe(),
        over_seeds(whole(Method::Hc, Metric::AmaxForward), seeds, 3),
        over_seeds(whole(Method::Hc, Metric::AmaxBackward), seeds, 3),
        over_seeds(hc_whole, seeds, 3),
        over_seeds(hc_composite, seeds, 3),
        over_seeds(single_peak(Method::Hc), seeds, 3),
        small(forward_dev),
        small(backward_dev),
        small(whole(Method::Mhc, Metric::RowSumError).max),
        small(whole(Method::Mhc, Metric::ColSumError).max),
        exact.name(),
    );
    let compare = if paper_shape {
        let mhc_composite = composite_peak(Method::Mhc);
        let inexact = exact.transposed();
        let inexact_error = match inexact {
            ExactSide::Rows => whole(Method::Mhc, Metric::RowSumError),
            ExactSide::Columns => whole(Method::Mhc, Metric::ColSumError),
        };
        let paper_sinkhorn = SinkhornParams {
            iterations: paper::SINKHORN_ITERATIONS,
            order: SinkhornOrder::ColumnsThenRows,
        };
        let sinkhorn_note = if *sinkhorn == paper_sinkhorn {
            String::new()
        } else {
            format!(
                "; the paper runs Sinkhorn with t_max = {} ({}), this experiment with {} ({})",
                paper_sinkhorn.iterations,
                paper_sinkhorn.order.describe(),
                sinkhorn.iterations,
                sinkhorn.order.describe()
            )
        };
        let share = |k: u64| {
            format!(
                "{k} of the {seeds_text} ({} %)",
                num(k as f64 / seeds as f64 * 100.0, 2)
            )
        };
        let hc_reach = seeds_reaching(Method::Hc, paper::HC_COMPOSITE_PEAK);
        let mhc_reach = seeds_reaching(Method::Mhc, paper::MHC_COMPOSITE_PEAK);
        let paper_whole_hc = paper::WHOLE_HC.0.max(paper::WHOLE_HC.1);
        let mhc_verdict = if mhc_reach == 0 {
            format!(
                "no seed reaches the paper's {} (the largest whole-model {}-sum error of any seed is {}). docs/theory.md §5.3 attributes the paper's drift to Sinkhorn's truncation error compounding over depth; a `sinkhorn-sweep` experiment measures it against t_max, logit scale and layer correlation.",
                num(paper::MHC_COMPOSITE_PEAK, 2),
                inexact.singular(),
                small(inexact_error.max),
            )
        } else {
            format!(
                "{} reach the paper's {}.",
                share(mhc_reach),
                num(paper::MHC_COMPOSITE_PEAK, 2),
            )
        };
        format!(
            "The paper measured composite gains of up to about {} for HC and about {} for mHC on its trained 27B model (Figs. 3b and 7b; docs/theory.md §5.1){sinkhorn_note}. Against HC's per-seed composite peak here, the paper's {} lies {}; {} reach it. Against HC's per-seed larger whole-model gain here, the Amax {} of Figure 8's whole-model Π1..{} lies {}. mHC's per-seed composite peak has {} and maximum {}: {mhc_verdict}",
            num(paper::HC_COMPOSITE_PEAK, 4),
            num(paper::MHC_COMPOSITE_PEAK, 2),
            num(paper::HC_COMPOSITE_PEAK, 4),
            paper::against(paper::HC_COMPOSITE_PEAK, hc_composite, seeds),
            share(hc_reach),
            num(paper_whole_hc, 4),
            paper::LAYERS,
            paper::against(paper_whole_hc, hc_whole, seeds),
            over_seeds(mhc_composite, seeds, 4),
            num(mhc_composite.max, 4),
        )
    } else {
        "The paper's Amax values (Figs. 3b, 7b and 8) were measured on a trained model of another depth or stream count, so this report does not set them beside its own.".to_string()
    };

    Ok(Report {
        headline,
        summary: vec![run, compare],
        figures: vec![ReportFigure {
            name: "amax".to_string(),
            caption: format!(
                "Amax gain of single layers (a, b) and composites (c: prefix H_l⋯H_1, forward; d: suffix H_L⋯H_l, backward) against layer l, HC vs mHC from the same logits. {}. Log y; the dashed line is gain 1.",
                if seeds == 1 {
                    "Lines: the one seed".to_string()
                } else {
                    format!("Lines: median over {seeds_text}; bands: 5–95 %")
                }
            ),
            figure: FigureData::Line(figure),
        }],
        tables,
        data: vec![
            DataFile {
                name: "gain.csv".to_string(),
                description: format!(
                    "`method,composite,layer,metric,stat,value`: the plotted curves (amax_forward and amax_backward of single(l); amax_forward of prefix(l); amax_backward of suffix(l)) as median, p05, p95 over seeds for l = 1..{layers}, and the whole-model metrics (prefix, layer {layers}) with all {} statistics; amax_larger is the per-seed larger of amax_forward and amax_backward.",
                    Stat::OVER_SEEDS.len()
                ),
                bytes: csv.finish()?,
            },
            DataFile {
                name: "peaks.csv".to_string(),
                description: "`method,peak,stat,value`: statistics over seeds of each seed's maximum over layers (as `gain`'s summary.json `peak_over_layers`); the `*_larger` peaks take each seed's larger of the forward and backward maximum.".to_string(),
                bytes: peaks.finish()?,
            },
        ],
        parameters: gain_parameters(config),
        seeds: Some((seeds, config.seed())),
        inputs: Vec::new(),
    })
}
