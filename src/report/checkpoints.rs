//! `kind = "checkpoint-audit"`: the audit of real checkpoints (or captured H_res stacks) side by
//! side — composite gain and stream collapse against depth, the whole-model composites as heat
//! maps, and each model's verdict.

use crate::analysis::audit_figure::audit_heatmap_panels;
use crate::analysis::{AuditResult, Audited, Layer, Stat, audit};
use crate::compose::Composite;
use crate::error::Error;
use crate::export::json::number;
use crate::export::markdown::{Align, Cell, Table};
use crate::export::table::count_of;
use crate::load::input::{Provenance, open_audit_input};
use crate::load::{Layout, LoadError};
use crate::metrics::Metric;
use crate::plot::{HeatmapFigure, LineFigure, Panel, Series, SeriesStyle};

use super::common::{TidyCsv, and_list, num, panel_values, spans_decades};
use super::experiment::{CheckpointSpec, Experiment, ModelSpec, sha256_hex};
use super::{DataFile, FigureData, InputFile, Report, ReportFigure, ReportTable};

/// Largest single-layer Birkhoff distance of a stack whose layers count as doubly stochastic.
const DOUBLY_STOCHASTIC: f64 = 1e-3;

/// σ₂ of the whole-model composite below which its output streams count as one weighted mean
/// of the input streams (to that relative difference).
const NEARLY_MERGED: f64 = 1e-6;

struct AuditedModel<'a> {
    spec: &'a ModelSpec,
    provenance: Provenance,
    result: AuditResult,
}

impl AuditedModel<'_> {
    /// Whether the model's H_res are unconstrained (drawn in HC's colour): an HC layout, or a
    /// stored stack with a layer farther than [`DOUBLY_STOCHASTIC`] from the Birkhoff polytope
    /// for some token. Sinkhorn layouts are constrained by construction.
    fn is_hc(&self) -> bool {
        match self.provenance.layout {
            Layout::LucidrainsHc => true,
            Layout::Stack => Layer::all(self.layers()).any(|l| {
                let distance = self.result.results().get(
                    Audited::Stack,
                    Composite::Single,
                    l,
                    Metric::BirkhoffDistance,
                    Stat::Max,
                );
                distance.is_nan() || distance > DOUBLY_STOCHASTIC
            }),
            Layout::LucidrainsMhc | Layout::MhcPytorch | Layout::DeepseekV4 => false,
        }
    }

    /// The token aggregate of a value: the mean over tokens, or (metric-of-mean) the value of
    /// the token-mean matrices.
    fn aggregate(&self, composite: Composite, layer: Layer, metric: Metric) -> f64 {
        match &self.result.metric_of_mean {
            Some(of_mean) => of_mean.get(Audited::Stack, composite, layer, metric, Stat::Mean),
            None => self
                .result
                .results()
                .get(Audited::Stack, composite, layer, metric, Stat::Mean),
        }
    }

    /// [`Self::aggregate`] of the whole-model composite.
    fn whole_model(&self, metric: Metric) -> f64 {
        self.aggregate(Composite::Prefix, self.last_layer(), metric)
    }

    fn layers(&self) -> usize {
        self.result.results().layers()
    }

    fn last_layer(&self) -> Layer {
        self.result.results().last_layer()
    }

    fn tokens(&self) -> u64 {
        self.result.results().draws()
    }

    fn streams(&self) -> usize {
        self.result.tokens.streams
    }
}

/// HC in vermillion, every Sinkhorn layout in blue; several mHC models differ by dash and markers.
fn style(model: &AuditedModel<'_>, mhc_index: usize) -> SeriesStyle {
    if model.is_hc() {
        return SeriesStyle::hc();
    }
    let base = SeriesStyle::mhc();
    match mhc_index % 4 {
        0 => base,
        1 => base.dashed(),
        2 => base.with_markers(),
        _ => base.dashed().with_markers(),
    }
}

pub(super) fn run(
    spec: &CheckpointSpec,
    experiment: &Experiment,
    on_progress: &mut dyn FnMut(u64),
) -> Result<Report, Error> {
    let mut models = Vec::new();
    let mut inputs = Vec::new();
    for model in &spec.models {
        let path = &model.path.resolved;
        let in_model = |source: LoadError| Error::ExperimentModel {
            experiment: experiment.path().to_path_buf(),
            model: model.name.clone(),
            source: Box::new(source),
        };
        let bytes = std::fs::read(path).map_err(|source| in_model(LoadError::io(path, source)))?;
        inputs.push(InputFile {
            path: model.path.written.clone(),
            bytes: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
        });
        let input = open_audit_input(path, &model.options).map_err(in_model)?;
        let result = audit(input.tokens.as_ref(), &spec.config, |_| Ok(()), |_| {})?;
        models.push(AuditedModel {
            spec: model,
            provenance: input.provenance,
            result,
        });
        on_progress(1);
    }
    let aggregation = spec.config.token_aggregation().name();

    // --- gain and collapse figure -------------------------------------------------------------
    let mut mhc_seen = 0;
    let styles: Vec<SeriesStyle> = models
        .iter()
        .map(|m| {
            let s = style(m, mhc_seen);
            if !m.is_hc() {
                mhc_seen += 1;
            }
            s
        })
        .collect();
    let curve = |title: &str, y_label: &str, composite: Composite, metric: Metric| {
        let mut panel = Panel::new(title, "layer l", y_label);
        for (m, s) in models.iter().zip(&styles) {
            let points = Layer::all(m.layers())
                .map(|l| (l.number() as f64, m.aggregate(composite, l, metric)))
                .collect();
            panel = panel.with_series(Series::new(m.spec.name.clone(), s.clone(), points));
        }
        panel
    };
    let mut forward = curve(
        "(a) forward: amax_forward(H_l⋯H_1)",
        "Amax gain (max |row sum|)",
        Composite::Prefix,
        Metric::AmaxForward,
    )
    .with_reference_line(1.0, "gain 1");
    let mut backward = curve(
        "(b) backward: amax_backward(H_L⋯H_l)",
        "Amax gain (max |column sum|)",
        Composite::Suffix,
        Metric::AmaxBackward,
    )
    .with_reference_line(1.0, "gain 1");
    if spans_decades(
        panel_values(&forward)
            .into_iter()
            .chain(panel_values(&backward)),
    ) {
        forward = forward.log_y();
        backward = backward.log_y();
    }
    let mut collapse = curve(
        "(c) stream collapse: σ₂(H_l⋯H_1)",
        "σ₂ of the composite",
        Composite::Prefix,
        Metric::Sigma2,
    )
    .log_y();
    for series in &mut collapse.series {
        for point in &mut series.points {
            // Rounding-level values are drawn at 1e-17 (see the caption).
            point.1 = point.1.max(1e-17);
        }
    }
    let gain_figure = LineFigure::new(
        "Checkpoint audit: composite gain and stream collapse across depth",
        vec![forward, backward, collapse],
    )
    .with_subtitle(format!(
        "tokens: {aggregation} · verdict: unstable when the whole-model Amax (max over tokens) exceeds {}",
        num(spec.config.max_gain(), 3)
    ));

    // --- heat maps: worst layer and whole-model composite of the first model of each kind ----
    let mut panels = Vec::new();
    let mut shown_models = Vec::new();
    for hc in [false, true] {
        let Some(m) = models.iter().find(|m| m.is_hc() == hc) else {
            continue;
        };
        let means = m
            .result
            .tokens
            .mean_matrices
            .as_ref()
            .expect("audits keep the token-mean matrices");
        panels.extend(
            audit_heatmap_panels(&m.result, means)
                .into_iter()
                .map(|mut panel| {
                    panel.title = format!("{}: {}", m.spec.name, panel.title);
                    panel
                }),
        );
        shown_models.push(m.spec.name.clone());
    }
    let heatmap = HeatmapFigure::new(
        "Worst layer and whole-model composite (mean over tokens per layer)",
        panels,
        2,
    )
    .with_subtitle(
        "rows = output streams, columns = input streams · row sums right, column sums below",
    );

    // --- table ------------------------------------------------------------------------------------
    let mut table = Table::new(
        format!(
            "Audit of each model: whole-model composite H_L⋯H_1 ({aggregation} over tokens; the verdict uses the maximum over tokens and the threshold {}).",
            num(spec.config.max_gain(), 3)
        ),
        "checkpoint-audit",
        [
            "model",
            "layout",
            "L",
            "n",
            "tokens",
            "Amax fwd",
            "Amax bwd",
            "σ₂",
            "Birkhoff distance",
            "verdict",
        ]
        .map(String::from)
        .to_vec(),
    );
    for m in &models {
        table.push_row(vec![
            Cell::text(m.spec.name.clone()),
            Cell::text(m.provenance.layout.name()),
            Cell::text(m.layers().to_string()),
            Cell::text(m.streams().to_string()),
            Cell::text(m.tokens().to_string()),
            Cell::number(m.whole_model(Metric::AmaxForward), 4),
            Cell::number(m.whole_model(Metric::AmaxBackward), 4),
            Cell::number(m.whole_model(Metric::Sigma2), 2),
            Cell::number(m.whole_model(Metric::BirkhoffDistance), 2),
            Cell::text(m.result.verdict.name()),
        ]);
    }
    table.align = vec![
        Align::Left,
        Align::Left,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Left,
    ];
    for m in &models {
        let mut note = format!(
            "{}: {}, `{}`; layout {}: {}.",
            m.spec.name,
            m.spec.label,
            m.spec.path.written,
            m.provenance.layout.name(),
            m.provenance.reason
        );
        for extra in &m.provenance.notes {
            note.push_str(&format!(" {}.", extra.trim_end_matches('.')));
        }
        table.notes.push(note);
    }

    // --- data -------------------------------------------------------------------------------------
    let mut csv = TidyCsv::new(&["model"])?;
    let rows: [(Composite, Metric); 7] = [
        (Composite::Single, Metric::AmaxForward),
        (Composite::Single, Metric::AmaxBackward),
        (Composite::Single, Metric::BirkhoffDistance),
        (Composite::Prefix, Metric::AmaxForward),
        (Composite::Prefix, Metric::Sigma2),
        (Composite::Prefix, Metric::DistanceToAverage),
        (Composite::Suffix, Metric::AmaxBackward),
    ];
    for m in &models {
        let results = m.result.results();
        for (composite, metric) in rows {
            for layer in Layer::all(m.layers()) {
                for (stat, value) in [
                    (Stat::Mean, m.aggregate(composite, layer, metric)),
                    (
                        Stat::Max,
                        results.get(Audited::Stack, composite, layer, metric, Stat::Max),
                    ),
                ] {
                    csv.row(
                        vec![super::common::Field::from(m.spec.name.as_str())],
                        m.provenance.layout.name(),
                        composite,
                        layer,
                        metric,
                        stat,
                        value,
                    )?;
                }
            }
        }
    }

    // --- prose --------------------------------------------------------------------------------------
    let describe = |m: &AuditedModel<'_>| {
        let (f, b) = (
            m.whole_model(Metric::AmaxForward),
            m.whole_model(Metric::AmaxBackward),
        );
        let deviation = (f - 1.0).abs().max((b - 1.0).abs());
        let gains = if deviation < 1e-3 {
            format!(
                "whole-model Amax within {} of 1 both ways",
                num(deviation.max(f64::MIN_POSITIVE), 2)
            )
        } else {
            format!(
                "whole-model Amax {} forward and {} backward",
                num(f, 4),
                num(b, 4)
            )
        };
        format!(
            "`{}` — {}, {}, {}: {gains}, σ₂ = {}, {}",
            m.spec.name,
            m.spec.label,
            count_of(m.layers() as u64, "layer"),
            count_of(m.tokens(), "token"),
            num(m.whole_model(Metric::Sigma2), 2),
            m.result.verdict.name()
        )
    };
    let verdicts: Vec<String> = models.iter().map(describe).collect();
    let stable: Vec<String> = models
        .iter()
        .filter(|m| m.result.verdict == crate::analysis::Verdict::Stable)
        .map(|m| m.spec.name.clone())
        .collect();
    let unstable: Vec<String> = models
        .iter()
        .filter(|m| m.result.verdict == crate::analysis::Verdict::Unstable)
        .map(|m| m.spec.name.clone())
        .collect();
    let headline = format!(
        "{}{}",
        if stable.is_empty() {
            String::new()
        } else {
            format!("Stable: {}. ", and_list(&stable))
        },
        if unstable.is_empty() {
            "No model is unstable.".to_string()
        } else {
            format!(
                "Unstable (whole-model Amax above {}): {}.",
                num(spec.config.max_gain(), 3),
                and_list(&unstable)
            )
        }
    );
    let run = format!(
        "Each file was loaded with `mhc_analyze::load` (layout detected from its tensors, or as given) and audited as `mhc-analyze audit` would: every single, prefix and suffix composite measured, tokens combined as {aggregation}. Results: {}.",
        verdicts.join("; ")
    );
    let collapse_text = {
        let trends: Vec<String> = models
            .iter()
            .map(|m| {
                let first = m.aggregate(Composite::Prefix, Layer::FIRST, Metric::Sigma2);
                let last = m.whole_model(Metric::Sigma2);
                let steps = m.layers().saturating_sub(1);
                let rate = if steps > 0 && first > 0.0 && last > 0.0 {
                    format!(
                        " (×{} per layer on average)",
                        num((last / first).powf(1.0 / steps as f64), 3)
                    )
                } else {
                    String::new()
                };
                if steps == 0 {
                    return format!("{}'s is {} at its one layer", m.spec.name, num(first, 2));
                }
                format!(
                    "{}'s {} from {} at layer 1 to {} at layer {}{rate}",
                    m.spec.name,
                    if last < first {
                        "falls"
                    } else if last > first {
                        "grows"
                    } else {
                        "stays"
                    },
                    num(first, 2),
                    num(last, 2),
                    m.layers()
                )
            })
            .collect();
        let merged: Vec<String> = models
            .iter()
            .filter(|m| m.whole_model(Metric::Sigma2) < NEARLY_MERGED)
            .map(|m| m.spec.name.clone())
            .collect();
        let mut text = format!(
            "Panel (c) shows what the gain curves hide, σ₂ of the prefix composite: {}.",
            trends.join("; ")
        );
        if !merged.is_empty() {
            text.push_str(&format!(
                " {} {} with σ₂ below {}: {} output streams are one weighted mean of the input streams up to that relative difference (docs/theory.md §2.3).",
                and_list(&merged),
                if merged.len() == 1 { "ends" } else { "end" },
                num(NEARLY_MERGED, 1),
                if merged.len() == 1 { "its" } else { "their" },
            ));
        }
        text.push_str(" Loader details are under Table 1.");
        text
    };

    let parameters = serde_json::json!({
        "max_gain": number(spec.config.max_gain()),
        "token_aggregation": aggregation,
        "models": spec.models.iter().map(|m| serde_json::json!({
            "name": m.name,
            "label": m.label,
            "path": m.path.written,
            "layout": m.options.layout.map(|l| l.name()).unwrap_or("auto"),
            "key": m.options.key,
            "transpose": m.options.transpose,
        })).collect::<Vec<_>>(),
        "detected": models.iter().map(|m| serde_json::json!({
            "name": m.spec.name,
            "layout": m.provenance.layout.name(),
            "layout_reason": m.provenance.reason,
            "source_dtype": m.provenance.source_dtype,
            "layers": m.layers(),
            "tokens": m.tokens(),
            "streams": m.streams(),
        })).collect::<Vec<_>>(),
        "version": env!("CARGO_PKG_VERSION"),
    });

    Ok(Report {
        headline,
        summary: vec![run, collapse_text],
        figures: vec![
            ReportFigure {
                name: "gain".to_string(),
                caption: format!(
                    "Composite Amax gain of each model against layer l: (a) forward gain of prefix(l) = H_l⋯H_1, (b) backward gain of suffix(l) = H_L⋯H_l, and (c) σ₂ of prefix(l), the stream-collapse measure (log y; values below 1e-17 are rounding and drawn at 1e-17). Tokens: {aggregation}. Vermillion: unconstrained models (an HC layout, or a stored stack with a layer farther than {} from the Birkhoff polytope); blue: the others.",
                    num(DOUBLY_STOCHASTIC, 1)
                ),
                figure: FigureData::Line(gain_figure),
            },
            ReportFigure {
                name: "composites".to_string(),
                caption: format!(
                    "For {}: the worst layer by single-layer Amax (left; the audit's choice) and the whole-model composite H_L⋯H_1 (right), each layer's matrices averaged over tokens first, with row sums (right), column sums (below) and Amax in the titles.",
                    and_list(&shown_models)
                ),
                figure: FigureData::Heatmap(heatmap),
            },
        ],
        tables: vec![ReportTable {
            name: "table-audit".to_string(),
            table,
        }],
        data: vec![DataFile {
            name: "audit.csv".to_string(),
            description: "`model,method,composite,layer,metric,stat,value`: per model (method = layout), per layer: single-layer Amax and Birkhoff distance, prefix forward Amax, σ₂ and ‖P − J/n‖₂, suffix backward Amax; `mean` = token aggregate, `max` = maximum over tokens.".to_string(),
            bytes: csv.finish()?,
        }],
        parameters,
        seeds: None,
        inputs,
    })
}
