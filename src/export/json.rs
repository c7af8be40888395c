//! JSON documents. Non-finite numbers, which JSON cannot hold, are written as the strings
//! `"inf"`, `"-inf"` and `"nan"`.

use serde_json::{Map, Value, json};

use crate::analysis::gain::{GainConfig, GainResult, LogitSource, Method};
use crate::analysis::{Quantiles, Stat, Summary};

/// A number, or its name when it is not finite.
pub fn number(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else if x.is_nan() {
        json!("nan")
    } else if x > 0.0 {
        json!("inf")
    } else {
        json!("-inf")
    }
}

/// The `stats` of a summary as an object (`{"mean": …, "median": …}`).
pub(crate) fn summary_object(summary: &Summary, stats: &[Stat]) -> Value {
    let mut object = Map::new();
    for &stat in stats {
        object.insert(stat.name().to_string(), number(summary.get(stat)));
    }
    Value::Object(object)
}

/// The parameters of a gain run: every option that changes the numbers, and the crate version.
pub(crate) fn gain_parameters(config: &GainConfig) -> Value {
    let mut parameters = json!({
        "layers": config.layers(),
        "streams": config.streams(),
        "tokens": config.tokens(),
        "seeds": config.seeds(),
        "sinkhorn_iterations": config.sinkhorn().iterations,
        "sinkhorn_order": config.sinkhorn().order,
        "token_aggregation": config.token_aggregation().name(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    let object = parameters.as_object_mut().expect("built as an object");
    match config.source() {
        LogitSource::Random(generator) => {
            object.insert("seed".into(), json!(config.seed()));
            object.insert("logits".into(), json!("random"));
            object.insert(
                "identity_weight".into(),
                number(generator.identity_weight()),
            );
            object.insert("logit_std".into(), number(generator.logit_std()));
            object.insert("shared_std".into(), number(generator.shared_std()));
            object.insert("generator".into(), json!(generator.describe()));
        }
        LogitSource::Given { origin, .. } => {
            object.insert("logits".into(), json!(origin));
        }
    }
    parameters
}

/// `summary.json` of a gain run.
pub fn gain_summary(config: &GainConfig, result: &GainResult) -> Value {
    let mut methods = Map::new();
    for method in Method::ALL {
        let mut whole_model = Map::new();
        for &metric in result.layout().metrics().metrics() {
            whole_model.insert(
                metric.name().to_string(),
                summary_object(result.whole_model(method, metric), &Stat::OVER_SEEDS),
            );
        }
        let mut peak = Map::new();
        for &kind in result.layout().peaks() {
            peak.insert(
                kind.name().to_string(),
                summary_object(result.peak(method, kind), &Stat::OVER_SEEDS),
            );
        }
        methods.insert(
            method.name().to_string(),
            json!({ "whole_model": whole_model, "peak_over_layers": peak }),
        );
    }
    json!({
        "tool": "mhc-analyze gain",
        "parameters": gain_parameters(config),
        "conventions": {
            "orientation": "x_{l+1} = H_l x_l; rows are output streams",
            "whole_model": "prefix(L) = H_L ⋯ H_1 = suffix(1)",
            "token_aggregation": match config.token_aggregation() {
                crate::analysis::TokenAggregation::MeanOfMetrics =>
                    "mean-of-metrics: every metric is computed per token, then averaged over tokens",
                crate::analysis::TokenAggregation::MetricOfMean =>
                    "metric-of-mean: each layer's matrices are averaged over tokens, then composed and measured",
            },
            "statistics": format!(
                "over {} seed(s); median/p05/p95 {}",
                result.draws(),
                quantiles_text(result.quantiles())
            ),
        },
        "methods": methods,
    })
}

/// How quantiles were computed, in words.
pub(crate) fn quantiles_text(quantiles: Quantiles) -> String {
    match quantiles {
        Quantiles::Exact => "exact (linear interpolation, as numpy)".to_string(),
        Quantiles::Sketched { relative_accuracy } => format!(
            "from a log-bucketed sketch of each value's distance to its reference point (1 for gains, norms and marginal sums, 0 otherwise), relative accuracy {relative_accuracy} of that distance"
        ),
    }
}

/// Pretty JSON bytes with a final newline.
pub fn to_bytes(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("a Value always serialises");
    bytes.push(b'\n');
    bytes
}
