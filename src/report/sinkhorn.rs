//! `kind = "sinkhorn-sweep"`: how far truncated Sinkhorn–Knopp lets mHC's composite gain drift
//! from 1, and which t_max removes the drift. For each grid point (t_max × identity weight ×
//! logit scale × layer correlation) and seed, the mHC stack is measured in the direction the
//! Sinkhorn leaves inexact ([`Drift`]: backward when each iteration ends with a row step, as in
//! the paper, forward otherwise): the whole-model composite's Amax gain, sum range and marginal
//! error, the same for a single layer (H_1: layers are exchangeable under the generator, so any
//! layer has the same distribution), and the peak over depth of the drifting composite curve,
//! the quantity of the paper's ≈ 1.6 (Fig. 7b). The marginal error measures how far Sinkhorn
//! leaves a matrix from doubly stochastic; the Birkhoff distance, a quadratic program per matrix,
//! is not measured (`run_gain` measures the HC stacks of the same logits too, and their large
//! composites made it the bulk of the run).
//!
//! Seeds are paired across t_max: for a given weight, scale and correlation every t_max sees the
//! same logits (the same master seed), so the curves show the effect of t_max alone.

use crate::analysis::{
    Layer, LayerSelection, LogitSource, Method, MetricSelection, Peak, Selection, Summary, run_gain,
};
use crate::compose::Composite;
use crate::error::Error;
use crate::export::json::number;
use crate::export::markdown::{Cell, Table};
use crate::export::table::count_of;
use crate::generate::{LogitGenerator, SinkhornOrder};
use crate::load::ExactSide;
use crate::metrics::Metric;
use crate::plot::{AxisScale, LineFigure, Panel, Series, SeriesStyle};

use super::common::{
    CURVE_STATS, CsvTable, Field, TidyCsv, and_list, exact_side, num, over_seeds, panel_values,
    param, spans_decades,
};
use super::experiment::{Correlation, SinkhornPoint, SinkhornSpec};
use super::paper;
use super::{DataFile, FigureData, Report, ReportFigure, ReportTable};

/// Deviation from 1 below which the drift counts as removed.
const REMOVED: f64 = 0.01;

/// Values below this are rounding; the error figure draws them at this floor.
const DRAW_FLOOR: f64 = 1e-17;

/// The direction a truncated Sinkhorn leaves inexact, and the metrics that measure it: when each
/// iteration ends with a row step, rows are exact (forward gain 1) and the column sums carry the
/// truncation error (backward gain drifts); the other order swaps the two.
#[derive(Clone, Copy, Debug)]
struct Drift {
    /// The exact side.
    exact: ExactSide,
}

impl Drift {
    fn of(order: SinkhornOrder) -> Self {
        Self {
            exact: exact_side(order),
        }
    }
    /// The side that carries the truncation error.
    fn inexact(self) -> ExactSide {
        self.exact.transposed()
    }
    /// `backward` or `forward`: the direction whose gain drifts.
    fn direction(self) -> &'static str {
        match self.exact {
            ExactSide::Rows => "backward",
            ExactSide::Columns => "forward",
        }
    }
    /// The exact direction: the one that drifts under the other order.
    fn exact_direction(self) -> &'static str {
        self.transposed().direction()
    }
    /// The Amax gain of the drifting direction.
    fn gain(self) -> Metric {
        match self.exact {
            ExactSide::Rows => Metric::AmaxBackward,
            ExactSide::Columns => Metric::AmaxForward,
        }
    }
    /// The Amax gain of the exact direction.
    fn exact_gain(self) -> Metric {
        self.transposed().gain()
    }
    /// The drift of the other order, whose exact side is this one's inexact side.
    fn transposed(self) -> Self {
        Self {
            exact: self.inexact(),
        }
    }
    /// Smallest and largest inexact sum, and the inexact marginal error.
    fn sums(self) -> [Metric; 3] {
        match self.exact {
            ExactSide::Rows => [Metric::ColSumMin, Metric::ColSumMax, Metric::ColSumError],
            ExactSide::Columns => [Metric::RowSumMin, Metric::RowSumMax, Metric::RowSumError],
        }
    }
    fn error(self) -> Metric {
        self.sums()[2]
    }
    /// The drifting composite curve, whose per-seed maximum over depth is the peak.
    fn peak(self) -> Peak {
        match self.exact {
            ExactSide::Rows => Peak::SuffixAmaxBackward,
            ExactSide::Columns => Peak::PrefixAmaxForward,
        }
    }
    /// That curve as a formula: `amax_backward(H_L⋯H_l)`.
    fn curve(self) -> &'static str {
        match self.exact {
            ExactSide::Rows => "amax_backward(H_L⋯H_l)",
            ExactSide::Columns => "amax_forward(H_l⋯H_1)",
        }
    }
    /// The whole-model gain as a formula: `amax_backward(H_60⋯H_1)`.
    fn whole(self, layers: usize) -> String {
        format!("{}(H_{layers}⋯H_1)", self.gain().name())
    }
    /// The marginal error as a formula.
    fn error_formula(self) -> &'static str {
        match self.exact {
            ExactSide::Rows => "max_j |Σ_i H_ij − 1|",
            ExactSide::Columns => "max_i |Σ_j H_ij − 1|",
        }
    }
    /// Every metric measured: both gains, the inexact sums and error.
    fn metrics(self) -> Vec<Metric> {
        let mut metrics = vec![Metric::AmaxForward, Metric::AmaxBackward];
        metrics.extend(self.sums());
        metrics
    }
    /// The selection of one grid point: H_1, the whole model prefix(L), and every layer of the
    /// drifting composite curve (for the peak).
    fn selection(self, layers: usize) -> Selection {
        let selection = Selection::metrics(MetricSelection::of(&self.metrics())).with_composite(
            Composite::Single,
            Some(LayerSelection::Only(vec![Layer::FIRST])),
        );
        match self.exact {
            ExactSide::Rows => selection.with_composite(
                Composite::Prefix,
                Some(LayerSelection::Only(vec![Layer::last(layers)])),
            ),
            ExactSide::Columns => selection.with_composite(Composite::Suffix, None),
        }
    }
}

/// What the report reads of one grid point, mHC only: statistics over seeds of the whole-model
/// composite, of H_1, and of each seed's peak over depth of the drifting curve.
struct Measured {
    results: crate::analysis::GainResult,
    drift: Drift,
}

impl Measured {
    fn whole(&self, metric: Metric) -> &Summary {
        self.results.whole_model(Method::Mhc, metric)
    }
    fn single(&self, metric: Metric) -> &Summary {
        self.results
            .summary(Method::Mhc, Composite::Single, Layer::FIRST, metric)
    }
    fn peak(&self) -> &Summary {
        self.results.peak(Method::Mhc, self.drift.peak())
    }
}

fn scale_text(scale: f64) -> String {
    param(scale)
}

/// Colours for the scales: palette colours other than HC's and mHC's (every line is mHC).
fn scale_style(k: usize) -> SeriesStyle {
    const COLOURS: [usize; 6] = [0, 1, 2, 5, 3, 4];
    SeriesStyle::other(COLOURS[k % COLOURS.len()]).with_markers()
}

/// A key for one curve of the grid: (identity weight, correlation, scale).
type Curve = (f64, Correlation, f64);

/// `{1, 2, 3}`.
fn braces<T>(values: &[T], text: impl Fn(&T) -> String) -> String {
    format!(
        "{{{}}}",
        values.iter().map(text).collect::<Vec<_>>().join(", ")
    )
}

pub(super) fn run(spec: &SinkhornSpec, on_progress: &mut dyn FnMut(u64)) -> Result<Report, Error> {
    let first = &spec.points[0].config;
    let (layers, streams, seeds) = (first.layers(), first.streams(), first.seeds());
    let order = first.sinkhorn().order;
    let drift = Drift::of(order);
    let layers_text = count_of(layers as u64, "layer");
    let mut measured: Vec<Measured> = Vec::with_capacity(spec.points.len());
    for point in &spec.points {
        let config = point
            .config
            .clone()
            .with_selection(drift.selection(layers))?;
        let results = run_gain(&config, |_, _| Ok(()), |_| {})?;
        measured.push(Measured { results, drift });
        on_progress(point.config.seeds());
    }
    let find = |(w, correlation, scale): Curve, iterations: u32| -> &Measured {
        let k = spec
            .points
            .iter()
            .position(|p| {
                p.identity_weight == w
                    && p.correlation == correlation
                    && p.scale == scale
                    && p.iterations == iterations
            })
            .expect("every grid point was run");
        &measured[k]
    };
    let gain = |c: Curve, t: u32| find(c, t).whole(drift.gain());
    let peak = |c: Curve, t: u32| find(c, t).peak();
    let error_at = |c: Curve, t: u32| find(c, t).single(drift.error()).median;
    let t_first = spec.iterations[0];
    let t_last = spec.iterations[spec.iterations.len() - 1];
    // The t_max the prose reads: the paper's if the grid has it, else the grid's middle value.
    let paper_t = spec.iterations.contains(&paper::SINKHORN_ITERATIONS);
    let t_ref = if paper_t {
        paper::SINKHORN_ITERATIONS
    } else {
        spec.iterations[spec.iterations.len() / 2]
    };
    let at_ref = if paper_t {
        format!("t_max = {t_ref} (the paper's)")
    } else {
        format!("t_max = {t_ref}")
    };
    // The paper's ≈ 1.6 is the peak of its backward curve at its shape and Sinkhorn.
    let paper_applies =
        paper::same_shape(layers, streams) && paper_t && order == SinkhornOrder::ColumnsThenRows;
    let side = drift.inexact().singular();
    let exact_side_name = drift.exact.singular();
    // (identity weight, correlation) groups: one panel each, in grid order.
    let groups: Vec<(f64, Correlation)> = spec
        .identity_weights
        .iter()
        .flat_map(|&w| spec.correlations.iter().map(move |&c| (w, c)))
        .collect();
    let curves: Vec<Curve> = groups
        .iter()
        .flat_map(|&(w, c)| spec.scales.iter().map(move |&s| (w, c, s)))
        .collect();
    let group_title = |(w, c): (f64, Correlation)| {
        format!(
            "w = {}, {}",
            param(w),
            match c {
                Correlation::Independent => "independent layers",
                Correlation::Shared => "shared base logits",
            }
        )
    };

    // --- figures ----------------------------------------------------------------------------
    let letters = "abcdefghijklmnopqrstuvwxyz".chars().collect::<Vec<_>>();
    let peak_label = format!("max over l of {}", drift.curve());
    let error_label = format!("{} of H_1", drift.error_formula());
    let figure = |peaks: bool| {
        let panels: Vec<Panel> = groups
            .iter()
            .enumerate()
            .map(|(k, &group)| {
                let value = |m: &Measured| {
                    if peaks {
                        m.peak().median
                    } else {
                        m.single(drift.error()).median.max(DRAW_FLOOR)
                    }
                };
                let mut panel = Panel::new(
                    format!("({}) {}", letters[k % letters.len()], group_title(group)),
                    "Sinkhorn iterations t_max",
                    if peaks { &peak_label } else { &error_label },
                );
                panel.x_scale = AxisScale::Log10;
                for (j, &scale) in spec.scales.iter().enumerate() {
                    let points = spec
                        .iterations
                        .iter()
                        .map(|&t| (t as f64, value(find((group.0, group.1, scale), t))))
                        .collect();
                    panel = panel.with_series(Series::new(
                        format!("s = {}", scale_text(scale)),
                        scale_style(j),
                        points,
                    ));
                }
                if peaks {
                    if paper_applies {
                        panel = panel.with_series(Series::new(
                            format!(
                                "paper (Fig. 7b, t_max = {}): ≈ {}",
                                paper::SINKHORN_ITERATIONS,
                                num(paper::MHC_COMPOSITE_PEAK, 2)
                            ),
                            SeriesStyle::mhc().dashed(),
                            vec![
                                (t_first as f64, paper::MHC_COMPOSITE_PEAK),
                                (t_last as f64, paper::MHC_COMPOSITE_PEAK),
                            ],
                        ));
                    }
                    panel = panel.with_reference_line(1.0, "gain 1");
                    if spans_decades(panel_values(&panel)) {
                        panel = panel.log_y();
                    }
                } else {
                    panel = panel.log_y();
                    // Only where some curve reaches rounding level.
                    let smallest = panel_values(&panel)
                        .into_iter()
                        .filter(|v| *v > 0.0)
                        .fold(f64::INFINITY, f64::min);
                    if smallest < 1e-10 {
                        panel = panel.with_reference_line(f64::EPSILON, "f64 ε");
                    }
                }
                panel
            })
            .collect();
        let (title, subtitle_what) = if peaks {
            (
                format!(
                    "Peak over depth of mHC's {} composite gain against Sinkhorn iterations",
                    drift.direction()
                ),
                format!("composites of {layers_text}"),
            )
        } else {
            (
                format!(
                    "{}-sum error of one mHC layer against Sinkhorn iterations",
                    capitalised(side)
                ),
                "single layer H_1".to_string(),
            )
        };
        LineFigure::new(title, panels).with_subtitle(format!(
            "{subtitle_what} · n = {streams} · logits w·I + noise of scale s · Sinkhorn {} · median over {}",
            order.describe(),
            count_of(seeds, "seed")
        ))
    };

    // --- tables -----------------------------------------------------------------------------
    let mut header = vec![
        "w".to_string(),
        "correlation".to_string(),
        "scale s".to_string(),
    ];
    header.extend(spec.iterations.iter().map(|t| format!("t_max = {t}")));
    let paper_sentence = if paper_applies {
        format!(
            " The paper's trained 27B model ({} layers, n = {}) peaks at ≈ {} with t_max = {} (Fig. 7b).",
            paper::LAYERS,
            paper::STREAMS,
            num(paper::MHC_COMPOSITE_PEAK, 2),
            paper::SINKHORN_ITERATIONS
        )
    } else {
        String::new()
    };
    let mut gain_table = Table::new(
        format!(
            "mHC whole-model {} Amax gain {} against Sinkhorn iterations t_max (median over {}; n = {streams}; logits w·I + noise of scale s).",
            drift.direction(),
            drift.whole(layers),
            count_of(seeds, "seed"),
        ),
        "sinkhorn-gain",
        header.clone(),
    );
    let mut peak_table = Table::new(
        format!(
            "Peak over depth of mHC's {} composite gain, max over l of {} per seed, against t_max (median over {}; {layers_text}, n = {streams}).{paper_sentence}",
            drift.direction(),
            drift.curve(),
            count_of(seeds, "seed"),
        ),
        "sinkhorn-peak",
        header.clone(),
    );
    let mut error_table = Table::new(
        format!(
            "{} error {} of one mHC layer (H_1) against t_max (median over {}): the truncation error that the composite compounds.",
            capitalised(&format!("{side}-sum")),
            drift.error_formula(),
            count_of(seeds, "seed"),
        ),
        "sinkhorn-error",
        header,
    );
    for &group in &groups {
        if !gain_table.rows.is_empty() {
            gain_table.push_rule();
            peak_table.push_rule();
            error_table.push_rule();
        }
        for &scale in &spec.scales {
            let mut gain_row = vec![
                Cell::text(param(group.0)),
                Cell::text(group.1.name()),
                Cell::number(scale, 2),
            ];
            let mut peak_row = gain_row.clone();
            let mut error_row = gain_row.clone();
            for &t in &spec.iterations {
                let m = find((group.0, group.1, scale), t);
                gain_row.push(Cell::number(m.whole(drift.gain()).median, 4));
                peak_row.push(Cell::number(m.peak().median, 4));
                error_row.push(Cell::number(m.single(drift.error()).median, 2));
            }
            gain_table.push_row(gain_row);
            peak_table.push_row(peak_row);
            error_table.push_row(error_row);
        }
    }
    let mut note = format!(
        "Logits follow `gain`'s generator {} ({}) with noise scale s. Independent: w·I + s·G, G drawn per layer (σ = s, no S).",
        LogitGenerator::FORMULA,
        LogitGenerator::SHARED_TERM
    );
    if spec.correlations.contains(&Correlation::Shared) {
        note.push_str(&format!(
            " Shared: w·I + s·G_shared + {}·s·G with one G_shared per seed for all layers (σ = {}·s; noise correlation {} between layers).",
            num(spec.shared_per_layer_fraction, 2),
            num(spec.shared_per_layer_fraction, 2),
            num(1.0 / (1.0 + spec.shared_per_layer_fraction.powi(2)), 3),
        ));
    }
    note.push_str(" Every t_max sees the same draws.");
    for table in [&mut gain_table, &mut peak_table, &mut error_table] {
        table.notes.push(note.clone());
    }

    // --- data --------------------------------------------------------------------------------
    let grid_columns = [
        "sinkhorn_iters",
        "identity_weight",
        "logit_scale",
        "correlation",
    ];
    let grid_of = |p: &SinkhornPoint| {
        [
            Field::from(p.iterations),
            Field::from(p.identity_weight),
            Field::from(p.scale),
            Field::from(p.correlation.name()),
        ]
    };
    let mut csv = TidyCsv::new(&grid_columns)?;
    let mut peak_columns = grid_columns.to_vec();
    peak_columns.extend(["method", "peak", "stat", "value"]);
    let mut peaks = CsvTable::new(&peak_columns)?;
    let single_metrics: Vec<Metric> = drift
        .metrics()
        .into_iter()
        .filter(|m| *m != drift.exact_gain())
        .collect();
    for (point, m) in spec.points.iter().zip(&measured) {
        let grid = grid_of(point);
        for metric in drift.metrics() {
            csv.summary(
                &grid,
                "mhc",
                Composite::Prefix,
                Layer::last(layers),
                metric,
                &CURVE_STATS,
                m.whole(metric),
            )?;
        }
        for &metric in &single_metrics {
            csv.summary(
                &grid,
                "mhc",
                Composite::Single,
                Layer::FIRST,
                metric,
                &CURVE_STATS,
                m.single(metric),
            )?;
        }
        for stat in CURVE_STATS {
            let mut row = grid.to_vec();
            row.extend([
                Field::from("mhc"),
                Field::from(drift.peak().name()),
                Field::from(stat.name()),
                Field::from(m.peak().get(stat)),
            ]);
            peaks.row(row)?;
        }
    }

    // --- prose -------------------------------------------------------------------------------
    let describe = |c: Curve| {
        format!(
            "w = {}, {}, s = {}",
            param(c.0),
            c.1.name(),
            scale_text(c.2)
        )
    };
    let peak_ref = |c: Curve| peak(c, t_ref).median;
    // The curve the headline reports: closest to the paper's 1.6 where that applies, else the
    // largest drift at t_ref.
    let featured: Curve = if paper_applies {
        let log_distance = |c: Curve| (peak_ref(c).ln() - paper::MHC_COMPOSITE_PEAK.ln()).abs();
        *curves
            .iter()
            .min_by(|a, b| log_distance(**a).total_cmp(&log_distance(**b)))
            .expect("the grid is not empty")
    } else {
        *curves
            .iter()
            .max_by(|a, b| peak_ref(**a).total_cmp(&peak_ref(**b)))
            .expect("the grid is not empty")
    };
    let featured_peak = peak(featured, t_ref);
    let spread_of = |s: &Summary| over_seeds(s, seeds, 3);
    let headline = if paper_applies {
        format!(
            "At {at_ref}, the peak over depth of mHC's {} composite gain over {layers_text} comes closest to the paper's ≈ {} for {}: {}, with the paper's value {}; at t_max = {t_last} it is {}.",
            drift.direction(),
            num(paper::MHC_COMPOSITE_PEAK, 2),
            describe(featured),
            spread_of(featured_peak),
            paper::against(paper::MHC_COMPOSITE_PEAK, featured_peak, seeds),
            num(peak(featured, t_last).median, 3),
        )
    } else {
        format!(
            "At {at_ref}, the peak over depth of mHC's {} composite gain over {layers_text} is largest for {}: {}; at t_max = {t_last} it is {}.",
            drift.direction(),
            describe(featured),
            spread_of(featured_peak),
            num(peak(featured, t_last).median, 3),
        )
    };
    let exact_dev = measured
        .iter()
        .map(|m| {
            let f = m.whole(drift.exact_gain());
            (f.max - 1.0).abs().max((f.min - 1.0).abs())
        })
        .fold(0.0, f64::max);
    let diagonals: Vec<String> = spec
        .identity_weights
        .iter()
        .map(|&w| {
            // exp(w·I) has equal row and column sums e^w + n − 1, so Sinkhorn stops at once.
            let diagonal = w.exp() / (w.exp() + (streams - 1) as f64);
            format!("{} (w = {})", num(diagonal, 3), param(w))
        })
        .collect();
    let c0 = spec.correlations[0];
    let (s_lo, s_hi) = (spec.scales[0], spec.scales[spec.scales.len() - 1]);
    let single_errors: Vec<String> = spec
        .identity_weights
        .iter()
        .map(|&w| {
            let lo = error_at((w, c0, s_lo), t_ref);
            if spec.scales.len() == 1 {
                format!("{} for w = {}", num(lo, 2), param(w))
            } else {
                format!(
                    "for w = {}, {} at s = {} and {} at s = {}",
                    param(w),
                    num(lo, 2),
                    scale_text(s_lo),
                    num(error_at((w, c0, s_hi), t_ref), 2),
                    scale_text(s_hi),
                )
            }
        })
        .collect();
    // Only if the error rises from each scale to the next, for every weight.
    let grows_with_scale = spec.scales.len() > 1
        && spec.identity_weights.iter().all(|&w| {
            spec.scales
                .windows(2)
                .all(|p| error_at((w, c0, p[1]), t_ref) > error_at((w, c0, p[0]), t_ref))
        });
    let shared_clause = if spec.correlations.contains(&Correlation::Shared)
        && spec.correlations.contains(&Correlation::Independent)
    {
        let pairs: Vec<(f64, f64)> = spec
            .identity_weights
            .iter()
            .flat_map(|&w| spec.scales.iter().map(move |&s| (w, s)))
            .collect();
        let larger = pairs
            .iter()
            .filter(|&&(w, s)| {
                gain((w, Correlation::Shared, s), t_ref).median
                    > gain((w, Correlation::Independent, s), t_ref).median
            })
            .count();
        format!(
            "; at {at_ref} the median whole-model gain with shared logits exceeds the one with independent logits for {larger} of the {} (w, s) pairs",
            pairs.len()
        )
    } else {
        String::new()
    };
    // The paper's deep layers have n = 4 streams; their diagonal compares with this sweep's only
    // at that n (the diagonal e^w/(e^w + n − 1) depends on n).
    let paper_diagonal = if streams == paper::STREAMS {
        format!(
            "; the paper's trained deep layers (n = {}) have {}–{} (Fig. 8, H30; docs/theory.md §5.2)",
            paper::STREAMS,
            num(paper::DEEP_LAYER_DIAGONAL.0, 2),
            num(paper::DEEP_LAYER_DIAGONAL.1, 3),
        )
    } else {
        String::new()
    };
    let run = format!(
        "We ran mHC's Sinkhorn–Knopp ({}) on {} of {layers}-layer stacks (n = {streams}) for every combination of t_max ∈ {}, identity weight w ∈ {}, noise scale s ∈ {} and layer correlation ({}); logits are w·I + noise. Without noise a layer's diagonal is e^w/(e^w + n − 1): {}{paper_diagonal}. Each iteration ends with a {exact_side_name} step, so the whole-model {} gain is 1 to within {} at every grid point and seed, and the truncation error sits in the {side} sums. A single layer's {side}-sum error at {at_ref} ({} layers) is {}{}. In a composite these errors multiply (docs/theory.md §3.4){shared_clause}.",
        order.describe(),
        count_of(seeds, "seed"),
        braces(&spec.iterations, |t| t.to_string()),
        braces(&spec.identity_weights, |w| param(*w)),
        braces(&spec.scales, |s| scale_text(*s)),
        spec.correlations
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(" vs "),
        and_list(&diagonals),
        drift.exact_direction(),
        num(exact_dev.max(f64::MIN_POSITIVE), 2),
        c0.name(),
        single_errors.join("; "),
        if grows_with_scale {
            ": the larger the logit scale, the larger the error"
        } else {
            ""
        },
    );

    let per_weight: Vec<String> = spec
        .identity_weights
        .iter()
        .map(|&w| {
            let worst = curves
                .iter()
                .filter(|c| c.0 == w)
                .max_by(|a, b| gain(**a, t_ref).median.total_cmp(&gain(**b, t_ref).median))
                .expect("every weight has curves");
            format!(
                "at most {} with w = {} (reached by {} logits at s = {})",
                num(gain(*worst, t_ref).median, 3),
                param(w),
                worst.1.name(),
                scale_text(worst.2)
            )
        })
        .collect();
    let off = |c: &Curve, t: u32| (gain(*c, t).median - 1.0).abs() >= REMOVED;
    let drifting: Vec<Curve> = curves.iter().copied().filter(|c| off(c, t_ref)).collect();
    let fixed: Vec<String> = drifting
        .iter()
        .filter_map(|&c| {
            spec.iterations
                .iter()
                .find(|&&t| t > t_ref && !off(&c, t))
                .map(|t| format!("t_max = {t} for {}", describe(c)))
        })
        .collect();
    let stuck: Vec<Curve> = drifting
        .iter()
        .copied()
        .filter(|c| off(c, t_last))
        .collect();
    let percent = format!("{} %", num(REMOVED * 100.0, 1));
    let fix = if drifting.is_empty() {
        format!(
            "At {at_ref} every grid point's whole-model gain already lies within {percent} of 1."
        )
    } else {
        let mut text = format!(
            "{} of the {} curves have a whole-model gain more than {percent} off 1 at {at_ref}.",
            drifting.len(),
            curves.len()
        );
        if !fixed.is_empty() {
            text.push_str(&format!(
                " More iterations bring {} of them within {percent}: {}.",
                fixed.len(),
                and_list(&fixed)
            ));
        }
        if !stuck.is_empty() && t_last > t_ref {
            let worst = stuck
                .iter()
                .map(|c| (gain(*c, t_last).median - 1.0).abs())
                .fold(0.0, f64::max);
            let (lo, hi) = stuck
                .iter()
                .map(|c| error_at(*c, t_last))
                .fold((f64::INFINITY, 0.0f64), |(lo, hi), e| {
                    (lo.min(e), hi.max(e))
                });
            text.push_str(&format!(
                " {} still up to {} % off at t_max = {t_last} ({}), where the single-layer {side}-sum error is still {}.",
                if stuck.len() == drifting.len() {
                    format!("All {} are", stuck.len())
                } else if stuck.len() == 1 {
                    "One is".to_string()
                } else {
                    format!("{} are", stuck.len())
                },
                num(worst * 100.0, 2),
                and_list(&stuck.iter().map(|c| describe(*c)).collect::<Vec<_>>()),
                if lo == hi {
                    num(lo, 2)
                } else {
                    format!("{} to {}", num(lo, 2), num(hi, 2))
                },
            ));
        }
        text
    };
    let paper_text = if paper_applies {
        format!(
            " The paper's ≈ {} (trained 27B model, t_max = {}; Fig. 7b) is the peak over depth of that gain; the grid point whose median peak lies closest to it is {}, with {}.",
            num(paper::MHC_COMPOSITE_PEAK, 2),
            paper::SINKHORN_ITERATIONS,
            describe(featured),
            spread_of(featured_peak),
        )
    } else {
        String::new()
    };
    let compare = format!(
        "At {at_ref} the median whole-model {} gain is {}.{paper_text} {fix}",
        drift.direction(),
        and_list(&per_weight),
    );

    let parameters = serde_json::json!({
        "layers": layers,
        "streams": streams,
        "seeds": seeds,
        "seed": first.seed(),
        "sinkhorn_order": order,
        "shared_per_layer_fraction": number(spec.shared_per_layer_fraction),
        "grid": {
            "sinkhorn_iters": spec.iterations,
            "identity_weight": spec.identity_weights.iter().map(|w| number(*w)).collect::<Vec<_>>(),
            "logit_scale": spec.scales.iter().map(|s| number(*s)).collect::<Vec<_>>(),
            "correlation": spec.correlations,
        },
        "generators": curves.iter().map(|c| {
            let point = spec.points.iter().find(|p| (p.identity_weight, p.correlation, p.scale) == *c).expect("listed");
            serde_json::json!({
                "identity_weight": number(c.0),
                "correlation": c.1,
                "logit_scale": number(c.2),
                "logits": match point.config.source() {
                    LogitSource::Random(g) => g.describe(),
                    LogitSource::Given { origin, .. } => origin.clone(),
                },
            })
        }).collect::<Vec<_>>(),
        "version": env!("CARGO_PKG_VERSION"),
    });

    let inexact_name = format!("{side}-error");
    Ok(Report {
        headline,
        summary: vec![run, compare],
        figures: vec![
            ReportFigure {
                name: "gain".to_string(),
                caption: format!(
                    "Peak over depth of mHC's {} composite gain, max over l of {} per seed, against Sinkhorn iterations t_max (log x), one line per noise scale s; median over {}. One panel per identity weight w and layer correlation.{} Dashed grey: gain 1.",
                    drift.direction(),
                    drift.curve(),
                    count_of(seeds, "seed"),
                    if paper_applies {
                        format!(
                            " Dashed blue: the paper's ≈ {} (Fig. 7b, t_max = {}).",
                            num(paper::MHC_COMPOSITE_PEAK, 2),
                            paper::SINKHORN_ITERATIONS
                        )
                    } else {
                        String::new()
                    }
                ),
                figure: FigureData::Line(figure(true)),
            },
            ReportFigure {
                name: inexact_name.clone(),
                caption: format!(
                    "{} error of a single mHC layer (H_1) against t_max (log x, log y), one line per noise scale s; median over {}. The {exact_side_name} sums are exact up to rounding: each iteration ends with a {exact_side_name} step. Values below {} (0 once converged to the last bit) are drawn at {}.",
                    capitalised(&format!("{side}-sum")),
                    count_of(seeds, "seed"),
                    num(DRAW_FLOOR, 1),
                    num(DRAW_FLOOR, 1),
                ),
                figure: FigureData::Line(figure(false)),
            },
        ],
        tables: vec![
            ReportTable {
                name: "table-gain".to_string(),
                table: gain_table,
            },
            ReportTable {
                name: "table-peak".to_string(),
                table: peak_table,
            },
            ReportTable {
                name: format!("table-{inexact_name}"),
                table: error_table,
            },
        ],
        data: vec![
            DataFile {
                name: "sinkhorn.csv".to_string(),
                description: format!(
                    "`sinkhorn_iters,identity_weight,logit_scale,correlation,method,composite,layer,metric,stat,value`: for every grid point, the whole-model composite (prefix, layer {layers}) and a single layer (single, layer 1): Amax, {side}-sum range and error (median, p05, p95 over seeds)."
                ),
                bytes: csv.finish()?,
            },
            DataFile {
                name: "peaks.csv".to_string(),
                description: format!(
                    "`sinkhorn_iters,identity_weight,logit_scale,correlation,method,peak,stat,value`: each seed's maximum over l of {}, median, p05 and p95 over seeds.",
                    drift.curve()
                ),
                bytes: peaks.finish()?,
            },
        ],
        parameters,
        seeds: Some((seeds, first.seed())),
        inputs: Vec::new(),
    })
}

/// `Column-sum` from `column-sum`.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
