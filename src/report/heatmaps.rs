//! `kind = "heatmaps"`: heat maps with printed values of single and composite H_res, in the
//! style of the paper's Figure 8 — for one draw of the generator (HC and mHC from the same
//! logits), and for the paper's own printed matrices, whose row sums, column sums and Amax are
//! re-derived from the printed entries and set beside the paper's labels.

use std::path::Path;

use serde::Deserialize;

use crate::analysis::Layer;
use crate::analysis::gain_figure::logits_description;
use crate::analysis::{LogitSource, Method};
use crate::compose::{Composite, prefix_composites};
use crate::error::Error;
use crate::export::json::number;
use crate::export::markdown::{Cell, Table, format_number};
use crate::export::table::{count_of, noun_for};
use crate::generate::mhc_stack;
use crate::load::LoadError;
use crate::metrics::{MatrixMetrics, Metric, amax_backward, amax_forward, column_sums, row_sums};
use crate::plot::{HeatmapFigure, HeatmapPanel, ValueFormat};

use super::common::{COLLAPSED, CsvTable, Field, TidyCsv, and_list, max_deviation_from_one, num};
use super::experiment::{Experiment, HeatmapSpec, sha256_hex};
use super::{DataFile, FigureData, InputFile, Report, ReportFigure, ReportTable};

/// The paper's printed matrices (`experiments/data/paper_figure8.json`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaperData {
    source: String,
    #[allow(dead_code)]
    transcription: String,
    #[allow(dead_code)]
    orientation: String,
    layers: usize,
    matrices: Vec<PaperMatrix>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaperMatrix {
    method: Method,
    #[allow(dead_code)]
    name: String,
    #[allow(dead_code)]
    product: String,
    first: usize,
    last: usize,
    decimals: usize,
    entries: Vec<Vec<f64>>,
    printed_row_labels: Vec<f64>,
    printed_col_labels: Vec<f64>,
}

/// One matrix shown: which product, its entries and how to print them.
struct Shown {
    method: Method,
    first: usize,
    last: usize,
    n: usize,
    entries: Vec<f64>,
    format: ValueFormat,
    /// The paper's printed labels, when the matrix is the paper's.
    printed: Option<(Vec<f64>, Vec<f64>)>,
}

impl Shown {
    /// `H_30`, `H_30⋯H_1`.
    fn label(&self) -> String {
        product_label(self.first, self.last)
    }
    fn metrics(&self) -> MatrixMetrics {
        MatrixMetrics::of_matrix(&self.entries, self.n)
    }
}

fn product_label(first: usize, last: usize) -> String {
    if first == last {
        format!("H_{first}")
    } else {
        format!("H_{last}⋯H_{first}")
    }
}

/// Where a product sits in the composite convention: single(l), prefix(l) or suffix(l).
fn composite_of(first: usize, last: usize, layers: usize) -> Option<(Composite, usize)> {
    if first == last {
        Some((Composite::Single, first))
    } else if first == 1 {
        Some((Composite::Prefix, last))
    } else if last == layers {
        Some((Composite::Suffix, first))
    } else {
        None
    }
}

fn synthetic_format(entries: &[f64]) -> ValueFormat {
    let max = entries.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if max < 10.0 {
        ValueFormat::Fixed(2)
    } else if max < 100.0 {
        ValueFormat::Fixed(1)
    } else {
        ValueFormat::Significant(3)
    }
}

/// A value as the heat map prints its cells: the same decimals (or significant digits), with a
/// real minus sign.
fn label(x: f64, format: ValueFormat) -> String {
    let text = match format {
        ValueFormat::Fixed(d) => format!("{x:.d$}"),
        ValueFormat::Significant(d) => format_number(x, d),
    };
    text.replace('-', "−")
}

/// Row or column sums as annotations.
fn sum_labels(sums: &[f64], format: ValueFormat) -> Vec<String> {
    sums.iter().map(|&s| label(s, format)).collect()
}

fn panel(shown: &Shown) -> HeatmapPanel {
    let n = shown.n;
    let gain = |x: f64| label(x, shown.format);
    HeatmapPanel::new(
        format!(
            "{}: Amax {} fwd, {} bwd",
            shown.label(),
            gain(amax_forward(&shown.entries, n)),
            gain(amax_backward(&shown.entries, n))
        ),
        shown.entries.chunks(n).map(<[f64]>::to_vec).collect(),
    )
    .with_row_annotations(sum_labels(&row_sums(&shown.entries, n), shown.format))
    .with_col_annotations(sum_labels(&column_sums(&shown.entries, n), shown.format))
    .with_value_format(shown.format)
}

fn read_paper(path: &Path) -> Result<(PaperData, Vec<u8>), Error> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::io(path, source))?;
    let data: PaperData = serde_json::from_slice(&bytes)
        .map_err(|e| LoadError::format(path, format!("line {}: {e}", e.line())))?;
    for (k, m) in data.matrices.iter().enumerate() {
        let n = m.entries.len();
        let bad = |message: String| -> Error {
            LoadError::format(path, format!("matrices[{k}]: {message}")).into()
        };
        if n < 2 || m.entries.iter().any(|row| row.len() != n) {
            return Err(bad("entries must be a square matrix of at least 2×2".into()));
        }
        if m.printed_row_labels.len() != n || m.printed_col_labels.len() != n {
            return Err(bad(format!("expected {n} printed row and column labels")));
        }
        let ordered = 1 <= m.first && m.first <= m.last && m.last <= data.layers;
        if !ordered || composite_of(m.first, m.last, data.layers).is_none() {
            return Err(bad(format!(
                "first {} and last {} must be a single layer, a prefix (first = 1) or a suffix (last = layers = {})",
                m.first, m.last, data.layers
            )));
        }
        if m.entries.iter().flatten().any(|x| !x.is_finite()) {
            return Err(bad("entries must be finite".into()));
        }
    }
    Ok((data, bytes))
}

fn figure(title: String, subtitle: String, shown: &[&Shown]) -> HeatmapFigure {
    HeatmapFigure::new(title, shown.iter().map(|s| panel(s)).collect(), 3).with_subtitle(subtitle)
}

const TABLE_METRICS: [Metric; 5] = [
    Metric::AmaxForward,
    Metric::AmaxBackward,
    Metric::SpectralNorm,
    Metric::Sigma2,
    Metric::BirkhoffDistance,
];

const CSV_METRICS: [Metric; 9] = [
    Metric::AmaxForward,
    Metric::AmaxBackward,
    Metric::RowSumMin,
    Metric::RowSumMax,
    Metric::ColSumMin,
    Metric::ColSumMax,
    Metric::SpectralNorm,
    Metric::Sigma2,
    Metric::BirkhoffDistance,
];

pub(super) fn run(
    spec: &HeatmapSpec,
    _experiment: &Experiment,
    on_progress: &mut dyn FnMut(u64),
) -> Result<Report, Error> {
    let config = &spec.config;
    let n = config.streams();
    let layers = config.layers();
    let logits = config.logits(0)?;
    let mhc = mhc_stack(&logits, config.sinkhorn());
    let logits_text = logits_description(config);
    let layers_text = count_of(layers as u64, "layer");

    // --- the synthetic draw ------------------------------------------------------------------
    let mut synthetic: Vec<Shown> = Vec::new();
    for method in Method::ALL {
        let stack = match method {
            Method::Hc => &logits,
            Method::Mhc => &mhc,
        };
        let slices = stack.token_slices(0);
        let ranges = spec
            .single
            .iter()
            .map(|&l| [l, l])
            .chain(spec.products.iter().copied());
        for [first, last] in ranges {
            let product = prefix_composites(&slices[first - 1..last], n)
                .pop()
                .expect("a non-empty range");
            let entries = product.to_f64();
            synthetic.push(Shown {
                method,
                first,
                last,
                n,
                format: synthetic_format(&entries),
                entries,
                printed: None,
            });
        }
    }
    on_progress(1);

    // --- the paper's matrices -----------------------------------------------------------------
    let mut inputs = Vec::new();
    let mut paper: Vec<Shown> = Vec::new();
    let mut paper_source = String::new();
    let mut paper_layers = layers;
    if let Some(path) = &spec.paper_data {
        let (data, bytes) = read_paper(&path.resolved)?;
        inputs.push(InputFile {
            path: path.written.clone(),
            bytes: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
        });
        paper_source = data.source.clone();
        paper_layers = data.layers;
        for m in data.matrices {
            let size = m.entries.len();
            paper.push(Shown {
                method: m.method,
                first: m.first,
                last: m.last,
                n: size,
                entries: m.entries.into_iter().flatten().collect(),
                format: ValueFormat::Fixed(m.decimals),
                printed: Some((m.printed_row_labels, m.printed_col_labels)),
            });
        }
    }

    // --- figures ---------------------------------------------------------------------------------
    let of = |list: &[Shown], method: Method| -> Vec<usize> {
        (0..list.len())
            .filter(|&k| list[k].method == method)
            .collect()
    };
    let subtitle = "rows = output streams, columns = input streams · row sums right, column sums below · Amax = largest |row sum| (fwd), |column sum| (bwd)";
    let mut figures = Vec::new();
    for method in Method::ALL {
        let chosen: Vec<&Shown> = of(&paper, method).into_iter().map(|k| &paper[k]).collect();
        if chosen.is_empty() {
            continue;
        }
        figures.push(ReportFigure {
            name: format!("paper-{}", method.name()),
            caption: format!(
                "{} matrices of {paper_source}, re-derived from the printed entries: row sums (right), column sums (below) and the Amax gains in the titles are computed from the entries, so they may differ from the paper's labels by rounding (Table 2).",
                method.label()
            ),
            figure: FigureData::Heatmap(figure(
                format!("{}: the paper's printed matrices", method.label()),
                subtitle.to_string(),
                &chosen,
            )),
        });
    }
    for method in Method::ALL {
        let chosen: Vec<&Shown> = of(&synthetic, method)
            .into_iter()
            .map(|k| &synthetic[k])
            .collect();
        figures.push(ReportFigure {
            name: format!("synthetic-{}", method.name()),
            caption: format!(
                "{} H_res of one draw of the generator: {logits_text}, {layers_text}, n = {n}{}. Single layers and composites in the layout of the paper's Figure 8; row sums right, column sums below, Amax in the titles.",
                method.label(),
                match method {
                    Method::Hc => String::new(),
                    Method::Mhc => format!(
                        "; mHC = Sinkhorn with t_max = {}, {}",
                        config.sinkhorn().iterations,
                        config.sinkhorn().order.describe()
                    ),
                }
            ),
            figure: FigureData::Heatmap(figure(
                format!(
                    "{}: one draw of {logits_text}, {layers_text}",
                    method.label()
                ),
                subtitle.to_string(),
                &chosen,
            )),
        });
    }

    // --- tables ----------------------------------------------------------------------------------
    let metric_header = |first: &str| {
        let mut header = vec!["method".to_string(), first.to_string()];
        header.extend(["Amax fwd", "Amax bwd", "σ₁", "σ₂", "Birkhoff distance"].map(String::from));
        header
    };
    let mut synthetic_table = Table::new(
        format!(
            "Metrics of the synthetic matrices: one draw of {logits_text}, {layers_text}, n = {n}.",
        ),
        "heatmaps-synthetic",
        metric_header("matrix"),
    );
    for (k, s) in synthetic.iter().enumerate() {
        if k > 0 && synthetic[k - 1].method != s.method {
            synthetic_table.push_rule();
        }
        let metrics = s.metrics();
        let mut row = vec![Cell::text(s.method.label()), Cell::text(s.label())];
        row.extend(
            TABLE_METRICS
                .iter()
                .map(|m| Cell::number(metrics.get(*m), 3)),
        );
        synthetic_table.push_row(row);
    }
    let mut paper_table = Table::new(
        "The paper's Figure 8 matrices: Amax as printed in the paper's labels and as recomputed from the printed entries, with metrics the paper does not print (computed from the printed entries, so good to about two digits).",
        "heatmaps-paper",
        {
            let mut header = vec![
                "method".to_string(),
                "matrix".to_string(),
                "Amax fwd: label".to_string(),
                "Amax fwd: entries".to_string(),
                "Amax bwd: label".to_string(),
                "Amax bwd: entries".to_string(),
                "σ₂".to_string(),
                "Birkhoff distance".to_string(),
                "max |label − sum|".to_string(),
            ];
            header.shrink_to_fit();
            header
        },
    );
    let mut largest_deviation: f64 = 0.0;
    let mut deviation_allowed: f64 = 0.0;
    for (k, s) in paper.iter().enumerate() {
        if k > 0 && paper[k - 1].method != s.method {
            paper_table.push_rule();
        }
        let (rows, cols) = s
            .printed
            .as_ref()
            .expect("paper matrices keep their labels");
        let max_abs = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let deviation = row_sums(&s.entries, s.n)
            .iter()
            .zip(rows)
            .chain(column_sums(&s.entries, s.n).iter().zip(cols))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let decimals = match s.format {
            ValueFormat::Fixed(d) => d,
            ValueFormat::Significant(_) => 2,
        };
        largest_deviation = largest_deviation.max(deviation);
        deviation_allowed =
            deviation_allowed.max(s.n as f64 * 0.5 * 10f64.powi(-(decimals as i32)));
        let metrics = s.metrics();
        paper_table.push_row(vec![
            Cell::text(s.method.label()),
            Cell::text(s.label()),
            Cell::number(max_abs(rows), 4),
            Cell::number(metrics.get(Metric::AmaxForward), 4),
            Cell::number(max_abs(cols), 4),
            Cell::number(metrics.get(Metric::AmaxBackward), 4),
            Cell::number(metrics.get(Metric::Sigma2), 2),
            Cell::number(metrics.get(Metric::BirkhoffDistance), 2),
            Cell::number(deviation, 1),
        ]);
    }
    paper_table.notes.push(format!(
        "Source: {}. The paper's labels are sums taken before rounding the entries, so recomputed sums may differ by up to n × half a unit of the last printed decimal.",
        paper_source
    ));

    // --- data -------------------------------------------------------------------------------------
    let mut matrices = CsvTable::new(&[
        "source",
        "method",
        "composite",
        "layer",
        "row",
        "col",
        "value",
    ])?;
    let mut metrics_csv = TidyCsv::new(&["source"])?;
    for (source, list, total) in [
        ("synthetic", &synthetic, layers),
        ("paper", &paper, paper_layers),
    ] {
        for s in list.iter() {
            let (composite, layer) = composite_of(s.first, s.last, total)
                .expect("validated: products are prefixes or suffixes");
            for (k, &value) in s.entries.iter().enumerate() {
                matrices.row(vec![
                    Field::from(source),
                    Field::from(s.method.name()),
                    Field::from(composite.name()),
                    Field::from(layer),
                    Field::from(k / s.n + 1),
                    Field::from(k % s.n + 1),
                    Field::from(value),
                ])?;
            }
            let metrics = s.metrics();
            for metric in CSV_METRICS {
                metrics_csv.single_value(
                    vec![Field::from(source)],
                    s.method.name(),
                    composite,
                    Layer::new(layer).expect("layers are numbered from 1"),
                    metric,
                    metrics.get(metric),
                )?;
            }
        }
    }

    // --- prose ---------------------------------------------------------------------------------------
    let find =
        |list: &[Shown], method: Method, first: usize, last: usize| -> Option<(f64, f64, f64)> {
            list.iter()
                .find(|s| s.method == method && s.first == first && s.last == last)
                .map(|s| {
                    let m = s.metrics();
                    (
                        m.get(Metric::AmaxForward),
                        m.get(Metric::AmaxBackward),
                        m.get(Metric::Sigma2),
                    )
                })
        };
    let whole = |list: &[Shown], method: Method, total: usize| find(list, method, 1, total);
    let mut summary = Vec::new();
    let max_single = |list: &[Shown], method: Method| {
        list.iter()
            .filter(|s| s.method == method && s.first == s.last)
            .map(|s| {
                let m = s.metrics();
                m.get(Metric::AmaxForward).max(m.get(Metric::AmaxBackward))
            })
            .reduce(f64::max)
    };
    let labels = |list: Vec<String>| and_list(&list);
    let mut shown_parts = Vec::new();
    if !spec.single.is_empty() {
        shown_parts.push(format!(
            "single {} {}",
            noun_for(spec.single.len() as u64, "layer"),
            labels(spec.single.iter().map(|l| format!("H_{l}")).collect())
        ));
    }
    if !spec.products.is_empty() {
        shown_parts.push(format!(
            "the {} {}",
            noun_for(spec.products.len() as u64, "product"),
            labels(
                spec.products
                    .iter()
                    .map(|[a, b]| product_label(*a, *b))
                    .collect()
            )
        ));
    }
    let mut run = format!(
        "We drew one stack of {layers_text} (n = {n}), {logits_text}, and show HC's H_res (the logits) and mHC's (their Sinkhorn normalisation, t_max = {}, {}) in the layout of the paper's Figure 8: {}, each with its row sums, column sums and Amax gains.",
        config.sinkhorn().iterations,
        config.sinkhorn().order.describe(),
        shown_parts.join(" and "),
    );
    if let Some((f, b, _)) = whole(&synthetic, Method::Hc, layers) {
        run.push_str(&format!(
            " HC's whole-model product H_{layers}⋯H_1 has Amax {} forward and {} backward{}.",
            num(f, 3),
            num(b, 3),
            match max_single(&synthetic, Method::Hc) {
                Some(single) => format!(
                    "; the single layers shown have Amax at most {}",
                    num(single, 3)
                ),
                None => String::new(),
            }
        ));
    }
    // Whether a synthetic mHC composite has merged its streams: σ₂ at rounding level, and
    // whether every entry prints as 1/n.
    let synthetic_whole_mhc = synthetic
        .iter()
        .find(|s| s.method == Method::Mhc && s.first == 1 && s.last == layers);
    let mut synthetic_collapsed = false;
    if let Some(s) = synthetic_whole_mhc {
        let m = s.metrics();
        let (f, b, s2) = (
            m.get(Metric::AmaxForward),
            m.get(Metric::AmaxBackward),
            m.get(Metric::Sigma2),
        );
        let mean = 1.0 / n as f64;
        let prints_as_mean = s
            .entries
            .iter()
            .all(|&x| label(x, s.format) == label(mean, s.format));
        synthetic_collapsed = s2 < COLLAPSED;
        run.push_str(&format!(
            " mHC's has Amax {} forward and {} backward (within {} of 1) and σ₂ = {}{}.",
            num(f, 4),
            num(b, 4),
            num(max_deviation_from_one([f, b]).max(f64::MIN_POSITIVE), 2),
            num(s2, 2),
            match (synthetic_collapsed, prints_as_mean) {
                (true, true) => format!(
                    ": it has collapsed to J/n, every entry {} to the printed digits",
                    label(mean, s.format)
                ),
                (true, false) => ": its streams have merged (σ₂ at rounding level)".to_string(),
                (false, _) => String::new(),
            }
        ));
    }
    summary.push(run);
    let paper_whole_mhc = whole(&paper, Method::Mhc, paper_layers);
    if !paper.is_empty() {
        let mut text = format!(
            "The paper's own matrices ({paper_source}) are shown re-derived from their printed entries. Recomputing the labels from the entries {} (the rounding bound is {}).",
            if largest_deviation <= deviation_allowed {
                format!(
                    "reproduces the paper's row and column sums to within {}",
                    num(largest_deviation, 2)
                )
            } else {
                format!(
                    "differs from the paper's row and column sums by up to {}, more than rounding explains",
                    num(largest_deviation, 2)
                )
            },
            num(deviation_allowed, 2)
        );
        if let Some((hf, hb, _)) = whole(&paper, Method::Hc, paper_layers) {
            text.push_str(&format!(
                " HC's H_{paper_layers}⋯H_1 has Amax {} forward and {} backward{}.",
                num(hf, 4),
                num(hb, 4),
                match (
                    max_single(&paper, Method::Hc),
                    max_single(&synthetic, Method::Hc),
                ) {
                    (Some(printed), Some(drawn)) => format!(
                        "; its printed single layers reach Amax {} (the synthetic draw's shown single layers: {})",
                        num(printed, 3),
                        num(drawn, 3)
                    ),
                    (Some(printed), None) => format!(
                        "; its printed single layers reach Amax {}",
                        num(printed, 3)
                    ),
                    _ => String::new(),
                }
            ));
        }
        if let Some((mf, mb, ms2)) = paper_whole_mhc {
            text.push_str(&format!(
                " mHC's has σ₂ = {}{}, backward Amax {} and forward {}.",
                num(ms2, 2),
                if ms2 >= COLLAPSED {
                    " (its streams have not merged)"
                } else {
                    ""
                },
                num(mb, 3),
                num(mf, 3),
            ));
        }
        if let Some(s) = paper
            .iter()
            .filter(|s| s.method == Method::Mhc)
            .max_by(|a, b| {
                a.metrics()
                    .get(Metric::AmaxBackward)
                    .total_cmp(&b.metrics().get(Metric::AmaxBackward))
            })
        {
            let cols = column_sums(&s.entries, s.n);
            let lo = cols.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = cols.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            text.push_str(&format!(
                " The largest mHC backward gain is in {}: column sums from {} to {}, so one input stream receives {} of the gradient another receives; docs/theory.md §5.3 attributes such drift to Sinkhorn's truncation error compounding over depth.",
                s.label(),
                num(lo, 2),
                num(hi, 3),
                num(lo / hi, 2),
            ));
        }
        let row_labels_off = paper
            .iter()
            .filter(|s| s.method == Method::Mhc)
            .flat_map(|s| s.printed.iter().flat_map(|(rows, _)| rows.iter().copied()))
            .map(|x| (x - 1.0).abs())
            .reduce(f64::max);
        if let Some(off) = row_labels_off {
            text.push_str(&format!(
                " Its mHC row labels lie within {} of 1.",
                num(off.max(f64::MIN_POSITIVE), 2)
            ));
        }
        summary.push(text);
    }
    let headline = match (whole(&synthetic, Method::Hc, layers), synthetic_whole_mhc) {
        (Some((hf, _, _)), Some(s)) => {
            let s2 = s.metrics().get(Metric::Sigma2);
            let mut text = format!(
                "One draw of {layers_text} gives HC a whole-model forward Amax of {} and mHC a composite {}",
                num(hf, 3),
                if synthetic_collapsed {
                    format!("collapsed to J/n (σ₂ = {})", num(s2, 2))
                } else {
                    format!("with σ₂ = {}", num(s2, 2))
                }
            );
            if let Some((_, _, ms2)) = paper_whole_mhc {
                text.push_str(&format!(
                    "; the paper's printed mHC composite H_{paper_layers}⋯H_1 has σ₂ = {}",
                    num(ms2, 2)
                ));
            }
            text.push('.');
            text
        }
        _ => format!(
            "Heat maps of single and composite H_res of HC and mHC: one draw of {layers_text}."
        ),
    };

    let parameters = serde_json::json!({
        "layers": layers,
        "streams": n,
        "seed": config.seed(),
        "draw": 0,
        "logits": match config.source() { LogitSource::Random(g) => g.describe(), LogitSource::Given { origin, .. } => origin.clone() },
        "identity_weight": match config.source() { LogitSource::Random(g) => number(g.identity_weight()), _ => serde_json::Value::Null },
        "logit_std": match config.source() { LogitSource::Random(g) => number(g.logit_std()), _ => serde_json::Value::Null },
        "shared_std": match config.source() { LogitSource::Random(g) => number(g.shared_std()), _ => serde_json::Value::Null },
        "sinkhorn_iterations": config.sinkhorn().iterations,
        "sinkhorn_order": config.sinkhorn().order,
        "single": spec.single,
        "products": spec.products,
        "paper_data": spec.paper_data.as_ref().map(|p| p.written.clone()),
        "version": env!("CARGO_PKG_VERSION"),
    });

    Ok(Report {
        headline,
        summary,
        figures,
        tables: vec![
            ReportTable {
                name: "table-synthetic".to_string(),
                table: synthetic_table,
            },
            ReportTable {
                name: "table-paper".to_string(),
                table: paper_table,
            },
        ]
        .into_iter()
        .filter(|t| !t.table.rows.is_empty())
        .collect(),
        data: vec![
            DataFile {
                name: "matrices.csv".to_string(),
                description: "`source,method,composite,layer,row,col,value`: every entry shown (source `synthetic` or `paper`; rows are output streams, 1-based).".to_string(),
                bytes: matrices.finish()?,
            },
            DataFile {
                name: "metrics.csv".to_string(),
                description: "`source,method,composite,layer,metric,stat,value`: Amax, row and column sum range, σ₁, σ₂ and Birkhoff distance of each matrix shown (`stat` = `value`: one matrix, no statistic).".to_string(),
                bytes: metrics_csv.finish()?,
            },
        ],
        parameters,
        seeds: Some((1, config.seed())),
        inputs,
    })
}
