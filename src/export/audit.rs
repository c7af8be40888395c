//! Renderings of an audit: table (terminal), Markdown (a PR comment), JSON, CSV.
//!
//! Every rendering reads the audit's typed statistics over tokens ([`AuditResult::results`]);
//! with one token (matrices rebuilt from parameters) the statistics are all equal and the table
//! shows one column.

use std::fmt::Write;

use serde_json::{Map, Value, json};

use super::json::{number, quantiles_text, summary_object};
use super::table::{count_of, format_significant};
use crate::analysis::audit::{AuditConfig, AuditResult};
use crate::analysis::certified::{
    CertifiedAudit, CertifiedVerdict, CompositeInterval, GainInterval,
};
use crate::analysis::certify::{Arithmetic, Bound, BoundMethod, Strength};
use crate::analysis::{Audited, Layer, Stat};
use crate::compose::Composite;
use crate::error::Error;
use crate::load::input::Provenance;
use crate::metrics::Metric;

/// The whole-model metrics shown in the table and Markdown.
pub(crate) const WHOLE_MODEL_METRICS: [Metric; 9] = [
    Metric::AmaxForward,
    Metric::AmaxBackward,
    Metric::SpectralNorm,
    Metric::BirkhoffDistance,
    Metric::Sigma2,
    Metric::RowSumMin,
    Metric::RowSumMax,
    Metric::ColSumMin,
    Metric::ColSumMax,
];

/// The statistics over tokens shown in the table and Markdown (JSON and CSV have all of
/// [`Stat::OVER_TOKENS`]).
const TABLE_STATS: [Stat; 4] = [Stat::Mean, Stat::Median, Stat::P99, Stat::Max];

/// How many worst layers and worst tokens the table and Markdown list.
const WORST_SHOWN: usize = 3;

/// Significant digits of every number in the table and Markdown.
const DIGITS: usize = 4;

/// What was audited, for every rendering: the file as the user named it, and its provenance.
#[derive(Clone, Copy)]
pub struct AuditSubject<'a> {
    /// The path as given on the command line.
    pub source: &'a str,
    /// Where the matrices came from.
    pub provenance: &'a Provenance,
    /// Per layer, `‖H_l − H_l(init)‖_F` ([`crate::analysis::init`]); `None` where unknown.
    pub init_distance: Option<&'a [f64]>,
}

fn header_lines(subject: AuditSubject<'_>, result: &AuditResult) -> (String, String) {
    let provenance = subject.provenance;
    let results = result.results();
    let exact = match provenance.exact_side {
        Some(side) => format!("; {} sums exact by construction", side.singular()),
        None => String::new(),
    };
    let tokens = results.draws();
    (
        format!("mhc-analyze audit: {}", subject.source),
        format!(
            "layout {} ({}); {}, {}, {} ({}), stored as {}{exact}",
            provenance.layout.name(),
            provenance.reason,
            count_of(results.layers() as u64, "layer"),
            count_of(streams(result) as u64, "stream"),
            count_of(tokens, "token"),
            provenance.origin.describe(),
            provenance.source_dtype
        ),
    )
}

fn streams(result: &AuditResult) -> usize {
    result.tokens.streams
}

/// The statistics shown, and their column titles.
fn shown_stats(result: &AuditResult) -> Vec<(Stat, String)> {
    let tokens = result.results().draws();
    if tokens == 1 {
        return vec![(Stat::Mean, "value".to_string())];
    }
    TABLE_STATS
        .iter()
        .map(|&stat| (stat, format!("{} over tokens", stat.name())))
        .collect()
}

/// `23 (2.780), 11 (2.758), 17 (2.693)`: the worst layers and their single-layer Amax gain.
fn worst_layers_text(result: &AuditResult) -> String {
    result
        .worst_layers
        .iter()
        .take(WORST_SHOWN)
        .map(|&l| {
            format!(
                "{l} ({})",
                format_significant(result.single_layer_gain(l), DIGITS)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What ranks the worst layers, in words.
const WORST_LAYERS_RANKING: &str =
    "single-layer Amax gain, the larger of amax_forward and amax_backward of H_l, max over tokens";

/// `token 17 (1 + 2.8e-7), token 3 (…)`, per ranked metric.
fn worst_tokens_lines(result: &AuditResult) -> Vec<String> {
    result
        .tokens
        .worst_tokens
        .iter()
        .map(|worst| {
            let tokens: Vec<String> = worst
                .tokens
                .iter()
                .take(WORST_SHOWN)
                .map(|(token, value)| format!("{token} ({})", format_significant(*value, DIGITS)))
                .collect();
            format!(
                "worst tokens by whole-model {}: {}",
                worst.metric.name(),
                tokens.join(", ")
            )
        })
        .collect()
}

/// The provenance's notes, then one per measured metric that has no value for some analysed
/// matrix, saying when it is undefined (e.g. `mixing_entropy` of HC's matrices with negative
/// entries, written as "nan").
fn notes(subject: AuditSubject<'_>, result: &AuditResult) -> Vec<String> {
    let results = result.results();
    let mut notes = subject.provenance.notes.clone();
    for &metric in results.layout().metrics().metrics() {
        let Some(condition) = metric.absent_when() else {
            continue;
        };
        let absent = Layer::all(results.layers()).any(|layer| {
            results
                .summary(Audited::Stack, Composite::Single, layer, metric)
                .get(Stat::Max)
                .is_nan()
        });
        if absent {
            notes.push(format!(
                "{} has no value (nan) for some matrices here: it is {condition}",
                metric.name()
            ));
        }
    }
    notes
}

/// The terminal table.
pub fn audit_table(subject: AuditSubject<'_>, result: &AuditResult) -> String {
    let mut out = String::new();
    let (title, details) = header_lines(subject, result);
    let results = result.results();
    let _ = writeln!(out, "{title}\n{details}");
    for note in notes(subject, result) {
        let _ = writeln!(out, "note: {note}");
    }
    let _ = writeln!(out);
    let stats = shown_stats(result);
    let label = format!(
        "whole-model composite {}",
        whole_model_name(results.layers())
    );
    let width = stats.iter().map(|s| s.1.len()).max().unwrap_or(5).max(12);
    let _ = write!(out, "{label:<34}");
    for (_, title) in &stats {
        let _ = write!(out, " {title:>width$}");
    }
    let _ = writeln!(out);
    for metric in WHOLE_MODEL_METRICS {
        let summary = results.whole_model(Audited::Stack, metric);
        let _ = write!(out, "  {:<32}", metric.name());
        for (stat, _) in &stats {
            let _ = write!(
                out,
                " {:>width$}",
                format_significant(summary.get(*stat), DIGITS)
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out);
    if results.draws() > 1 {
        for line in worst_tokens_lines(result) {
            let _ = writeln!(out, "{line}");
        }
    }
    let _ = writeln!(
        out,
        "worst layers by {WORST_LAYERS_RANKING}: {}",
        worst_layers_text(result)
    );
    let distance_stat = if results.draws() > 1 {
        Stat::Max
    } else {
        Stat::Mean
    };
    let _ = writeln!(
        out,
        "birkhoff_distance per layer{}:",
        if results.draws() > 1 {
            " (max over tokens)"
        } else {
            ""
        }
    );
    let per_layer: Vec<String> = Layer::all(results.layers())
        .map(|l| {
            let value = results.get(
                Audited::Stack,
                Composite::Single,
                l,
                Metric::BirkhoffDistance,
                distance_stat,
            );
            format!("{:>4}: {:<10}", l.number(), format_significant(value, 3))
        })
        .collect();
    for chunk in per_layer.chunks(6) {
        let _ = writeln!(out, " {}", chunk.join(" ").trim_end());
    }
    if let Some(init) = subject.init_distance {
        let _ = writeln!(out, "{}", init_distance_text(init));
    }
    let _ = writeln!(
        out,
        "\nverdict: {}{}",
        result.verdict.name(),
        forced_text(subject.provenance)
    );
    for check in &result.checks {
        let _ = writeln!(out, "  - {}", check.describe());
    }
    out
}

/// What the verdict rests on when the layout was forced against the file's evidence.
fn forced_text(provenance: &Provenance) -> String {
    match &provenance.ignored_evidence {
        Some(evidence) => format!(
            " (layout {} forced against the file's evidence with --ignore-evidence: {evidence})",
            provenance.layout.name()
        ),
        None => String::new(),
    }
}

/// `H_12⋯H_1`, or `H_1` for one layer.
pub(crate) fn whole_model_name(layers: usize) -> String {
    if layers == 1 {
        "H_1".to_string()
    } else {
        format!("H_{layers}⋯H_1")
    }
}

/// A Markdown summary for a pull-request comment.
pub fn audit_markdown(subject: AuditSubject<'_>, result: &AuditResult) -> String {
    let mut out = String::new();
    let results = result.results();
    let _ = writeln!(
        out,
        "### mhc-analyze audit: `{}` — **{}**{}\n",
        subject.source,
        result.verdict.name(),
        forced_text(subject.provenance)
    );
    let (_, details) = header_lines(subject, result);
    let _ = writeln!(out, "{details}.\n");
    let stats = shown_stats(result);
    let _ = write!(
        out,
        "| whole-model {} |",
        whole_model_name(results.layers())
    );
    for (_, title) in &stats {
        let _ = write!(out, " {title} |");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "|---|{}", "---:|".repeat(stats.len()));
    for metric in WHOLE_MODEL_METRICS {
        let summary = results.whole_model(Audited::Stack, metric);
        let _ = write!(out, "| `{}` |", metric.name());
        for (stat, _) in &stats {
            let _ = write!(out, " {} |", format_significant(summary.get(*stat), DIGITS));
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "\n**Checks**\n");
    for check in &result.checks {
        let mark = if check.passed { "pass" } else { "FAIL" };
        let _ = writeln!(out, "- {mark}: {}", check.describe());
    }
    if results.draws() > 1 {
        let _ = writeln!(out);
        for line in worst_tokens_lines(result) {
            let _ = writeln!(out, "- {line}");
        }
    }
    let _ = writeln!(
        out,
        "\nWorst layers by {WORST_LAYERS_RANKING}: {}.",
        worst_layers_text(result)
    );
    if let Some(init) = subject.init_distance {
        let mut text = init_distance_text(init);
        if let Some(first) = text.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        let _ = writeln!(out, "\n{text}.");
    }
    for note in notes(subject, result) {
        let _ = writeln!(out, "\n> note: {note}");
    }
    out
}

fn metric_object(result: &AuditResult, composite: Composite, layer: Layer) -> Value {
    let results = result.results();
    let mut object = Map::new();
    for &metric in results.layout().metrics().metrics() {
        object.insert(
            metric.name().to_string(),
            summary_object(
                results.summary(Audited::Stack, composite, layer, metric),
                &Stat::OVER_TOKENS,
            ),
        );
    }
    Value::Object(object)
}

/// The audit as JSON (`--format json` and `audit.json`).
pub fn audit_json(subject: AuditSubject<'_>, config: &AuditConfig, result: &AuditResult) -> Value {
    let provenance = subject.provenance;
    let results = result.results();
    let last = results.last_layer();
    let per_layer: Vec<Value> = Layer::all(results.layers())
        .map(|l| {
            json!({
                "layer": l,
                "single": metric_object(result, Composite::Single, l),
                "prefix": metric_object(result, Composite::Prefix, l),
                "suffix": metric_object(result, Composite::Suffix, l),
            })
        })
        .collect();
    let mut worst_tokens = Map::new();
    for worst in &result.tokens.worst_tokens {
        worst_tokens.insert(
            worst.metric.name().to_string(),
            Value::Array(
                worst
                    .tokens
                    .iter()
                    .map(|(token, value)| json!({"token": token, "value": number(*value)}))
                    .collect(),
            ),
        );
    }
    let mut document = json!({
        "tool": "mhc-analyze audit",
        "version": env!("CARGO_PKG_VERSION"),
        "source": subject.source,
        "layout": provenance.layout.name(),
        "layout_reason": provenance.reason,
        "tensors": provenance.tensors,
        "source_dtype": provenance.source_dtype,
        "exact_side": provenance.exact_side,
        "tokens_from": provenance.origin,
        "capture": provenance.capture,
        "notes": notes(subject, result),
        "layers": results.layers(),
        "streams": streams(result),
        "tokens": results.draws(),
        "conventions": "x_{l+1} = H_l x_l, rows = output streams; whole_model = prefix(L) = H_L⋯H_1; statistics over tokens",
        "definitions": { "init_distance": INIT_DISTANCE_DEFINITION },
        "statistics": format!(
            "over {} token(s): mean (summed in token order), min, max exact; median/p90/p99 {}",
            results.draws(),
            quantiles_text(results.quantiles())
        ),
        "parameters": {
            "max_gain": number(config.max_gain()),
            "max_distance": config.max_distance().map(number),
            "token_aggregation": config.token_aggregation().name(),
        },
        "whole_model": metric_object(result, Composite::Prefix, last),
        "per_layer": per_layer,
        "worst_tokens": worst_tokens,
        "worst_layers": result.worst_layers.iter().take(WORST_SHOWN).map(|&l| json!({
            "layer": l,
            "single_layer_gain": number(result.single_layer_gain(l)),
        })).collect::<Vec<_>>(),
        "worst_layers_ranked_by": WORST_LAYERS_RANKING,
        "init_distance": init_distance_json(subject.init_distance),
        "verdict": result.verdict.name(),
        "ignored_evidence": provenance.ignored_evidence,
        "reasons": result.checks.iter().map(|c| c.describe()).collect::<Vec<_>>(),
        "checks": result.checks.iter().map(|c| json!({
            "quantity": c.quantity, "value": number(c.value), "limit": number(c.limit), "passed": c.passed,
        })).collect::<Vec<_>>(),
    });
    if let Some(of_mean) = &result.metric_of_mean {
        let mut object = Map::new();
        for &metric in of_mean.layout().metrics().metrics() {
            object.insert(
                metric.name().to_string(),
                number(of_mean.whole_model(Audited::Stack, metric).mean),
            );
        }
        document["metric_of_mean"] = json!({
            "what": "every metric of the whole-model composite of the token-mean matrices (1/T)·Σ_t H_l(t)",
            "whole_model": object,
        });
    }
    document
}

/// What `init_distance` is, for JSON documents.
pub const INIT_DISTANCE_DEFINITION: &str = "per layer l (layer 1 first): ‖H_l − H_l(init)‖_F, the Frobenius distance of the analysed H_res from the H_res the layout's package initialises (lucidrains HC: I; lucidrains mHC: Sinkhorn(I); mhc-pytorch: J/n); \"unknown\" for DeepSeek-V4 (its initialisation is not stated), finished matrices and probes";

/// `init_distance` in JSON: one number per layer, or `"unknown"`.
pub fn init_distance_json(init: Option<&[f64]>) -> Value {
    match init {
        Some(distances) => Value::Array(distances.iter().map(|v| number(*v)).collect()),
        None => json!("unknown"),
    }
}

/// One line for the table and Markdown: the layer mean (1/L)·Σ_l and the largest
/// `init_distance` with its layer.
pub fn init_distance_text(init: &[f64]) -> String {
    let mean = init.iter().sum::<f64>() / init.len() as f64;
    let (largest, value) = init
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (k, &v)| {
            if v > best.1 { (k, v) } else { best }
        });
    format!(
        "distance from the layout's initialisation ‖H_l − H_l(init)‖_F: mean over layers {}, largest {} (layer {})",
        format_significant(mean, DIGITS),
        format_significant(value, DIGITS),
        largest + 1
    )
}

/// `audit.csv`: tidy rows `method,composite,layer,metric,stat,value` with the statistics over
/// tokens, `method` = the layout's name.
pub fn audit_csv(provenance: &Provenance, result: &AuditResult) -> Result<Vec<u8>, Error> {
    super::csv::results_csv(result.results(), &Stat::OVER_TOKENS, |_| {
        provenance.layout.name().to_string()
    })
}

/// What a certificate bound says, in words.
fn strength_text(bound: &Bound) -> String {
    match bound.strength {
        Strength::ExactSide => "exact side of the Sinkhorn map".to_string(),
        Strength::Informative => match bound.method {
            BoundMethod::LayerProduct => "product of per-layer bounds".to_string(),
            BoundMethod::IntervalPropagation => "interval propagation".to_string(),
            BoundMethod::MassCap => "mass cap".to_string(),
            BoundMethod::ExactSide => "exact side".to_string(),
        },
        Strength::StructuralCapOnly => {
            "USELESS: only the structural cap n; the reachable logits are too wide".to_string()
        }
        Strength::BeyondF64 => format!(
            "beyond f64: 10^{}",
            format_significant(bound.log10_upper, DIGITS)
        ),
    }
}

/// An upper bound's value: the number, or its power of ten beyond f64.
fn upper_text(bound: &Bound) -> String {
    if bound.upper.is_finite() {
        format_significant(bound.upper, DIGITS)
    } else {
        format!("10^{}", format_significant(bound.log10_upper, DIGITS))
    }
}

/// The certificate's lines for the terminal table.
pub fn certificate_table(certified: &CertifiedAudit) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\ncertificate over every input each layer can receive (upper: a sound bound from the parameters, model arithmetic {}; lower: the largest gain of an input found)",
        arithmetic_name(certified.certificate.arithmetic)
    );
    let _ = writeln!(
        out,
        "  {:<28} {:>14} {:>14} {:>12}  upper bound from",
        "whole-model composite", "lower", "upper", "upper/lower"
    );
    let whole = certified.whole_model();
    for (name, interval) in [
        ("amax_forward", &whole.forward),
        ("amax_backward", &whole.backward),
    ] {
        let _ = writeln!(
            out,
            "  {:<28} {:>14} {:>14} {:>12}  {}",
            name,
            format_significant(interval.lower, DIGITS),
            upper_text(&interval.upper),
            format_significant(interval.ratio(), DIGITS),
            strength_text(&interval.upper)
        );
    }
    if [&whole.forward, &whole.backward]
        .iter()
        .any(|i| i.upper.strength == Strength::StructuralCapOnly)
    {
        let _ = writeln!(
            out,
            "  the upper bound says nothing here: trust the lower bound and the probe (--probe N) instead"
        );
    }
    let _ = writeln!(
        out,
        "verdict (certificate): {} ({})",
        certified.verdict.name(),
        certificate_reason(certified)
    );
    out
}

fn arithmetic_name(arithmetic: Arithmetic) -> &'static str {
    match arithmetic {
        Arithmetic::Exact => "exact",
        Arithmetic::F64 => "f64",
        Arithmetic::F32 => "f32",
    }
}

/// Why the certificate's verdict is what it is, in words.
pub(crate) fn certificate_reason(certified: &CertifiedAudit) -> String {
    let whole = certified.whole_model();
    let limit = format_significant(certified.max_gain, DIGITS);
    match certified.verdict {
        CertifiedVerdict::CertifiedStable => {
            format!("both whole-model upper bounds ≤ {limit} for every input")
        }
        CertifiedVerdict::Unstable => format!(
            "an exhibited input has whole-model gain {} > {limit}",
            format_significant(whole.forward.lower.max(whole.backward.lower), DIGITS)
        ),
        CertifiedVerdict::NotCertified => {
            format!("an upper bound exceeds {limit} but no input found does")
        }
    }
}

/// The certificate as JSON: whole model and every layer's single, prefix and suffix intervals,
/// the method, the assumptions and the verdict.
pub fn certificate_json(certified: &CertifiedAudit) -> Value {
    let gain = |interval: &GainInterval| {
        json!({
            "lower": number(interval.lower),
            "lower_from": interval.lower_source,
            "upper": number(interval.upper.upper),
            "log10_upper": number(interval.upper.log10_upper),
            "upper_method": interval.upper.method,
            "upper_strength": interval.upper.strength,
        })
    };
    let pair = |c: &CompositeInterval| json!({"amax_forward": gain(&c.forward), "amax_backward": gain(&c.backward)});
    let per_layer: Vec<Value> = (0..certified.single.len())
        .map(|k| {
            json!({
                "layer": k + 1,
                "single": pair(&certified.single[k]),
                "prefix": pair(&certified.prefix[k]),
                "suffix": pair(&certified.suffix[k]),
            })
        })
        .collect();
    json!({
        "method": "upper: sound bounds from each layer's reachable logit box through its Sinkhorn map and across depth (docs/certificate.md); lower: the largest gain of an admissible input exhibited (the audited tokens, then a local search in input space)",
        "arithmetic": certified.certificate.arithmetic,
        "assumptions": certified.certificate.assumptions.iter().map(|a| a.describe()).collect::<Vec<_>>(),
        "search": certified.search,
        "probe": certified.probe.map(|(tokens, seed)| json!({"tokens": tokens, "seed": seed})),
        "max_gain": number(certified.max_gain),
        "whole_model": pair(certified.whole_model()),
        "per_layer": per_layer,
        "verdict": certified.verdict.name(),
        "reason": certificate_reason(certified),
    })
}

/// The certificate's section of the Markdown summary.
pub fn certificate_markdown(certified: &CertifiedAudit) -> String {
    let mut out = String::new();
    let whole = certified.whole_model();
    let _ = writeln!(
        out,
        "\n**Certificate over every input** — **{}** ({})\n",
        certified.verdict.name(),
        certificate_reason(certified)
    );
    let _ = writeln!(out, "| whole model | lower | upper | upper from |");
    let _ = writeln!(out, "|---|---:|---:|---|");
    for (name, interval) in [
        ("amax_forward", &whole.forward),
        ("amax_backward", &whole.backward),
    ] {
        let _ = writeln!(
            out,
            "| `{name}` | {} | {} | {} |",
            format_significant(interval.lower, DIGITS),
            upper_text(&interval.upper),
            strength_text(&interval.upper)
        );
    }
    out
}
