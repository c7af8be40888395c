//! The `audit` verdict: is a stack's residual mixing bounded across depth?
//!
//! Every token of the stack (captured, probed or rebuilt from parameters) is a draw of the token
//! fold ([`fold_tokens`]); the verdict looks at the whole-model composite prefix(L) = H_L ⋯ H_1,
//! taking the **maximum over tokens**: unstable when `amax_forward` or `amax_backward` exceeds
//! `max_gain`, or (optional check) when a single layer's Birkhoff distance exceeds
//! `max_distance`.

use serde::Serialize;

use super::measure::TokenAggregation;
use super::results::{Audited, Layer, Results, Stat};
use super::tokens::{TokenChunk, TokenFoldOptions, TokenSource, TokenStatistics, fold_tokens};
use crate::compose::Composite;
use crate::error::{ConfigError, Error};
use crate::metrics::Metric;
use crate::stack::LayerStack;

/// Tokens per chunk of `--dump-hres` when no chunk size is given.
const DEFAULT_CHUNK_TOKENS: usize = 1024;

/// The audit's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check passed.
    Stable,
    /// At least one check failed.
    Unstable,
}

impl Verdict {
    /// `stable` or `unstable`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Stable => "stable",
            Verdict::Unstable => "unstable",
        }
    }
}

/// Thresholds of the audit (validated: finite and positive).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditConfig {
    max_gain: f64,
    max_distance: Option<f64>,
    token_aggregation: TokenAggregation,
    chunk_tokens: Option<usize>,
}

impl Default for AuditConfig {
    /// `max_gain` 2 (the paper's mHC reaches ≈ 1.6, its HC ≈ 3000), no distance check.
    fn default() -> Self {
        Self {
            max_gain: 2.0,
            max_distance: None,
            token_aggregation: TokenAggregation::MeanOfMetrics,
            chunk_tokens: None,
        }
    }
}

impl AuditConfig {
    /// Thresholds: the largest whole-model Amax gain (either direction, max over tokens) and,
    /// optionally, the largest single-layer Birkhoff distance.
    pub fn new(
        max_gain: f64,
        max_distance: Option<f64>,
        token_aggregation: TokenAggregation,
    ) -> Result<Self, ConfigError> {
        let check = |name: &'static str, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(ConfigError::NotPositive { name, value })
            }
        };
        check("max-gain", max_gain)?;
        if let Some(distance) = max_distance {
            check("max-distance", distance)?;
        }
        Ok(Self {
            max_gain,
            max_distance,
            token_aggregation,
            chunk_tokens: None,
        })
    }

    /// The same thresholds, reading and measuring `chunk_tokens` tokens at a time (`None`: about
    /// 8 MB of values per chunk). Never changes the results.
    pub fn with_chunk_tokens(mut self, chunk_tokens: Option<usize>) -> Result<Self, ConfigError> {
        if let Some(chunk) = chunk_tokens
            && chunk == 0
        {
            return Err(ConfigError::TooSmall {
                name: "chunk-tokens",
                minimum: 1,
                value: 0,
            });
        }
        self.chunk_tokens = chunk_tokens;
        Ok(self)
    }

    /// Tokens per chunk for a streamed stack (the default's value when not set).
    pub fn chunk_tokens(&self) -> usize {
        self.chunk_tokens.unwrap_or(DEFAULT_CHUNK_TOKENS)
    }

    /// The gain threshold.
    pub fn max_gain(&self) -> f64 {
        self.max_gain
    }

    /// The optional distance threshold.
    pub fn max_distance(&self) -> Option<f64> {
        self.max_distance
    }

    /// How tokens are aggregated in the per-layer figures.
    pub fn token_aggregation(&self) -> TokenAggregation {
        self.token_aggregation
    }
}

/// One check of the verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// What was measured, e.g. `whole-model amax_forward (max over tokens)`.
    pub quantity: String,
    /// Its value.
    pub value: f64,
    /// The threshold it must not exceed.
    pub limit: f64,
    /// Whether it passed.
    pub passed: bool,
}

impl Check {
    /// One line: `whole-model amax_backward (max over tokens) = 1.02 ≤ 2`.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} = {} {} {}",
            self.quantity,
            crate::export::table::format_significant(self.value, 4),
            if self.passed { "≤" } else { ">" },
            crate::export::table::format_significant(self.limit, 4)
        )
    }
}

/// The result of an audit.
#[derive(Clone, Debug)]
pub struct AuditResult {
    /// Statistics over tokens of every metric of every composite, and the worst tokens.
    pub tokens: TokenStatistics,
    /// With [`TokenAggregation::MetricOfMean`]: every metric of the composites of the
    /// token-mean matrices (one draw).
    pub metric_of_mean: Option<Results<Audited>>,
    /// Every check, passed or not.
    pub checks: Vec<Check>,
    /// Stable when every check passed.
    pub verdict: Verdict,
    /// Layers sorted by their single-layer Amax gain (the larger of `amax_forward` and
    /// `amax_backward` of H_l, maximum over tokens), largest first; ties in layer order.
    pub worst_layers: Vec<Layer>,
}

impl AuditResult {
    /// Statistics over tokens.
    pub fn results(&self) -> &Results<Audited> {
        &self.tokens.results
    }

    /// The single-layer Amax gain that ranks [`Self::worst_layers`]: the larger of
    /// `amax_forward` and `amax_backward` of H_l, maximum over tokens.
    pub(crate) fn single_layer_gain(&self, layer: Layer) -> f64 {
        let results = self.results();
        let max = |metric| results.get(Audited::Stack, Composite::Single, layer, metric, Stat::Max);
        max(Metric::AmaxForward).max(max(Metric::AmaxBackward))
    }
}

/// Audits the tokens of `source` against `config`. `on_chunk` sees each measured chunk of tokens
/// in order (for a streamed per-token export); `on_progress(done)` follows the tokens.
pub fn audit(
    source: &dyn TokenSource,
    config: &AuditConfig,
    on_chunk: impl FnMut(&TokenChunk<'_>) -> Result<(), Error>,
    on_progress: impl FnMut(u64),
) -> Result<AuditResult, Error> {
    let options = TokenFoldOptions {
        mean_matrices: true,
        chunk_tokens: config.chunk_tokens,
        ..TokenFoldOptions::default()
    };
    let tokens = fold_tokens(source, &options, on_chunk, on_progress)?;
    let metric_of_mean = match &tokens.mean_matrices {
        Some(mean) if config.token_aggregation == TokenAggregation::MetricOfMean => {
            let n = source.streams();
            let flat: Vec<f64> = mean.iter().flatten().copied().collect();
            let array = ndarray::Array3::from_shape_vec((mean.len(), n, n), flat)
                .expect("L matrices of n × n values");
            let stack = LayerStack::from_layers(array, "token-mean matrices")?;
            Some(fold_tokens(&stack, &TokenFoldOptions::default(), |_| Ok(()), |_| {})?.results)
        }
        _ => None,
    };
    Ok(judge(tokens, metric_of_mean, config))
}

/// [`audit`] of a stack in memory, without callbacks.
pub fn audit_stack(stack: &LayerStack, config: &AuditConfig) -> Result<AuditResult, Error> {
    audit(stack, config, |_| Ok(()), |_| {})
}

fn judge(
    tokens: TokenStatistics,
    metric_of_mean: Option<Results<Audited>>,
    config: &AuditConfig,
) -> AuditResult {
    let results = &tokens.results;
    let mut checks = Vec::new();
    for metric in [Metric::AmaxForward, Metric::AmaxBackward] {
        let value = results.whole_model(Audited::Stack, metric).max;
        checks.push(Check {
            quantity: format!("whole-model {} (max over tokens)", metric.name()),
            value,
            limit: config.max_gain,
            passed: value <= config.max_gain,
        });
    }
    if let Some(limit) = config.max_distance {
        let distance = |layer| {
            results.get(
                Audited::Stack,
                Composite::Single,
                layer,
                Metric::BirkhoffDistance,
                Stat::Max,
            )
        };
        let (layer, value) = Layer::all(results.layers())
            .map(|layer| (layer, distance(layer)))
            .fold((Layer::FIRST, f64::NEG_INFINITY), |best, x| {
                if x.1 > best.1 { x } else { best }
            });
        checks.push(Check {
            quantity: format!("largest single-layer birkhoff_distance (layer {layer})"),
            value,
            limit,
            passed: value <= limit,
        });
    }
    let verdict = if checks.iter().all(|c| c.passed) {
        Verdict::Stable
    } else {
        Verdict::Unstable
    };
    let mut result = AuditResult {
        tokens,
        metric_of_mean,
        checks,
        verdict,
        worst_layers: Vec::new(),
    };
    let mut worst: Vec<Layer> = Layer::all(result.results().layers()).collect();
    worst.sort_by(|&a, &b| {
        result
            .single_layer_gain(b)
            .total_cmp(&result.single_layer_gain(a))
            .then(a.cmp(&b))
    });
    result.worst_layers = worst;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    fn stack_of(h: [f64; 4], layers: usize) -> LayerStack {
        let data = Array4::from_shape_fn((layers, 1, 2, 2), |(_, _, i, j)| h[i * 2 + j]);
        LayerStack::new(data, "test").unwrap()
    }

    #[test]
    fn doubly_stochastic_is_stable_and_growth_is_not() {
        let stable =
            audit_stack(&stack_of([0.7, 0.3, 0.3, 0.7], 10), &AuditConfig::default()).unwrap();
        assert_eq!(stable.verdict, Verdict::Stable);
        assert!(stable.checks.iter().all(|c| (c.value - 1.0).abs() < 1e-12));
        // Row sums 1.1: the composite of 10 layers has forward gain 1.1^10 ≈ 2.59 > 2.
        let growing =
            audit_stack(&stack_of([0.8, 0.3, 0.3, 0.8], 10), &AuditConfig::default()).unwrap();
        assert_eq!(growing.verdict, Verdict::Unstable);
        assert!((growing.checks[0].value - 1.1f64.powi(10)).abs() < 1e-12);
        assert!(growing.checks[0].describe().contains("> 2"));
    }

    #[test]
    fn distance_check_is_optional() {
        let config = AuditConfig::new(10.0, Some(0.01), TokenAggregation::MeanOfMetrics).unwrap();
        let result = audit_stack(&stack_of([0.8, 0.3, 0.3, 0.8], 3), &config).unwrap();
        assert_eq!(result.checks.len(), 3);
        assert_eq!(result.verdict, Verdict::Unstable);
        assert!(AuditConfig::new(0.0, None, TokenAggregation::MeanOfMetrics).is_err());
    }
}
