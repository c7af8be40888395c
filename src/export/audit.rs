//! Renderings of an audit: table (terminal), Markdown (a PR comment), JSON.

use std::fmt::Write;

use serde_json::{Map, Value, json};

use super::json::number;
use super::table::format_significant;
use crate::analysis::audit::{AuditConfig, AuditResult};
use crate::compose::Composite;
use crate::load::LoadedHres;
use crate::metrics::Metric;

/// The whole-model metrics shown in every rendering.
pub const WHOLE_MODEL_METRICS: [Metric; 9] = [
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

/// How many worst layers the table and Markdown list.
const WORST_SHOWN: usize = 3;

fn header_lines(source: &str, loaded: &LoadedHres) -> (String, String) {
    let stack = &loaded.stack;
    let exact = match loaded.exact_side {
        Some("rows") => "; row sums exact by construction".to_string(),
        Some(side) => format!(
            "; {} sums exact by construction",
            side.trim_end_matches('s')
        ),
        None => String::new(),
    };
    (
        format!("mhc-analyze audit: {source}"),
        format!(
            "layout {} ({}); {} layers, {} streams, {} token(s), stored as {}{exact}",
            loaded.layout.name(),
            loaded.reason,
            stack.layers(),
            stack.streams(),
            stack.tokens(),
            loaded.source_dtype
        ),
    )
}

fn single_gain(result: &AuditResult, layer: usize) -> f64 {
    let p = &result.profile;
    p.token_max(Composite::Single, layer, Metric::AmaxForward)
        .max(p.token_max(Composite::Single, layer, Metric::AmaxBackward))
}

/// `23 (2.780), 11 (2.758), 17 (2.693)`: the worst layers and their single-layer Amax.
fn worst_layers_text(result: &AuditResult) -> String {
    let worst: Vec<String> = result
        .worst_layers
        .iter()
        .take(WORST_SHOWN)
        .map(|&l| format!("{l} ({})", format_significant(single_gain(result, l), 4)))
        .collect();
    worst.join(", ")
}

/// The terminal table.
pub fn audit_table(source: &str, loaded: &LoadedHres, result: &AuditResult) -> String {
    let mut out = String::new();
    let (title, details) = header_lines(source, loaded);
    let profile = &result.profile;
    let _ = writeln!(out, "{title}\n{details}");
    for note in &loaded.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let _ = writeln!(out);
    let label = format!("whole-model composite H_{}⋯H_1", profile.layers());
    let _ = writeln!(
        out,
        "{label:<34} {:>16} {:>16}",
        "mean over tokens", "max over tokens"
    );
    for metric in WHOLE_MODEL_METRICS {
        let _ = writeln!(
            out,
            "  {:<32} {:>16} {:>16}",
            metric.name(),
            format_significant(profile.whole_model(metric), 7),
            format_significant(profile.whole_model_token_max(metric), 7)
        );
    }
    let worst = worst_layers_text(result);
    let _ = writeln!(
        out,
        "\nworst layers by single-layer Amax (max over tokens): {}",
        worst
    );
    let _ = writeln!(out, "birkhoff_distance per layer (mean over tokens):");
    let per_layer: Vec<String> = (1..=profile.layers())
        .map(|l| {
            format!(
                "{l:>4}: {:<10}",
                format_significant(
                    profile.get(Composite::Single, l, Metric::BirkhoffDistance),
                    3
                )
            )
        })
        .collect();
    for chunk in per_layer.chunks(6) {
        let _ = writeln!(out, " {}", chunk.join(" ").trim_end());
    }
    let _ = writeln!(out, "\nverdict: {}", result.verdict.name());
    for check in &result.checks {
        let _ = writeln!(out, "  - {}", check.describe());
    }
    out
}

/// A Markdown summary for a pull-request comment.
pub fn audit_markdown(source: &str, loaded: &LoadedHres, result: &AuditResult) -> String {
    let mut out = String::new();
    let profile = &result.profile;
    let _ = writeln!(
        out,
        "### mhc-analyze audit: `{source}` — **{}**\n",
        result.verdict.name()
    );
    let (_, details) = header_lines(source, loaded);
    let _ = writeln!(out, "{details}.\n");
    let _ = writeln!(
        out,
        "| whole-model H_{}⋯H_1 | mean over tokens | max over tokens |",
        profile.layers()
    );
    let _ = writeln!(out, "|---|---:|---:|");
    for metric in WHOLE_MODEL_METRICS {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            metric.name(),
            format_significant(profile.whole_model(metric), 4),
            format_significant(profile.whole_model_token_max(metric), 4)
        );
    }
    let _ = writeln!(out, "\n**Checks**\n");
    for check in &result.checks {
        let mark = if check.passed { "pass" } else { "FAIL" };
        let _ = writeln!(out, "- {mark}: {}", check.describe());
    }
    let worst = worst_layers_text(result);
    let _ = writeln!(out, "\nWorst layers by single-layer Amax: {}.", worst);
    for note in &loaded.notes {
        let _ = writeln!(out, "\n> note: {note}");
    }
    out
}

fn metric_object(
    profile: &crate::analysis::StackProfile,
    composite: Composite,
    layer: usize,
) -> Value {
    let mut object = Map::new();
    for metric in Metric::ALL {
        object.insert(
            metric.name().to_string(),
            json!({
                "mean": number(profile.get(composite, layer, metric)),
                "max": number(profile.token_max(composite, layer, metric)),
            }),
        );
    }
    Value::Object(object)
}

/// The audit as JSON (`--format json` and `audit.json`).
pub fn audit_json(
    source: &str,
    loaded: &LoadedHres,
    config: &AuditConfig,
    result: &AuditResult,
) -> Value {
    let profile = &result.profile;
    let per_layer: Vec<Value> = (1..=profile.layers())
        .map(|l| {
            json!({
                "layer": l,
                "single": metric_object(profile, Composite::Single, l),
                "prefix": metric_object(profile, Composite::Prefix, l),
                "suffix": metric_object(profile, Composite::Suffix, l),
            })
        })
        .collect();
    json!({
        "tool": "mhc-analyze audit",
        "version": env!("CARGO_PKG_VERSION"),
        "source": source,
        "layout": loaded.layout.name(),
        "layout_reason": loaded.reason,
        "tensors": loaded.tensors,
        "source_dtype": loaded.source_dtype,
        "exact_side": loaded.exact_side,
        "notes": loaded.notes,
        "layers": profile.layers(),
        "streams": profile.streams(),
        "tokens": profile.tokens(),
        "token_aggregation": profile.aggregation().name(),
        "conventions": "x_{l+1} = H_l x_l, rows = output streams; whole_model = prefix(L) = H_L⋯H_1; mean and max over tokens",
        "parameters": {
            "max_gain": number(config.max_gain()),
            "max_distance": config.max_distance().map(number),
        },
        "whole_model": metric_object(profile, Composite::Prefix, profile.layers()),
        "per_layer": per_layer,
        "worst_layers": result.worst_layers.iter().take(WORST_SHOWN).collect::<Vec<_>>(),
        "verdict": result.verdict.name(),
        "reasons": result.checks.iter().map(|c| c.describe()).collect::<Vec<_>>(),
        "checks": result.checks.iter().map(|c| json!({
            "quantity": c.quantity, "value": number(c.value), "limit": number(c.limit), "passed": c.passed,
        })).collect::<Vec<_>>(),
    })
}
