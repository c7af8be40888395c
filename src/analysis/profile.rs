//! Every metric of every single, prefix and suffix composite of one [`LayerStack`], aggregated
//! over tokens.

use serde::{Deserialize, Serialize};

use crate::compose::{Composite, composites};
use crate::metrics::{MatrixMetrics, Metric};
use crate::stack::LayerStack;

/// How per-token matrices become one number per layer (the paper's figures are token means of
/// one sequence, and does not say which of these it means; primer §3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenAggregation {
    /// Compute every metric per token, then average over tokens (the default).
    #[default]
    MeanOfMetrics,
    /// Average each layer's matrices over tokens, then compose and measure once.
    MetricOfMean,
}

impl TokenAggregation {
    /// The name written into outputs.
    pub fn name(self) -> &'static str {
        match self {
            Self::MeanOfMetrics => "mean-of-metrics",
            Self::MetricOfMean => "metric-of-mean",
        }
    }
}

/// Metrics of one stack: for each composite, layer and metric, the aggregate over tokens and the
/// maximum over tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct StackProfile {
    layers: usize,
    streams: usize,
    tokens: usize,
    aggregation: TokenAggregation,
    /// `[composite][layer][metric]`, aggregated over tokens.
    aggregate: Vec<f64>,
    /// `[composite][layer][metric]`, max over tokens.
    token_max: Vec<f64>,
}

/// Number of values in a profile of `layers` layers: 3 composites × layers × metrics.
pub fn profile_width(layers: usize) -> usize {
    Composite::ALL.len() * layers * Metric::ALL.len()
}

/// Position of (composite, 0-based layer index, metric) in a profile's values.
pub fn profile_index(
    layers: usize,
    composite: Composite,
    layer_index: usize,
    metric: Metric,
) -> usize {
    ((composite as usize) * layers + layer_index) * Metric::ALL.len() + metric.index()
}

impl StackProfile {
    /// Number of layers L.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// Number of streams n.
    pub fn streams(&self) -> usize {
        self.streams
    }

    /// Number of tokens T.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// The token aggregation used.
    pub fn aggregation(&self) -> TokenAggregation {
        self.aggregation
    }

    /// The token aggregate of `metric` for `composite` at **1-based** `layer`.
    pub fn get(&self, composite: Composite, layer: usize, metric: Metric) -> f64 {
        self.aggregate[profile_index(self.layers, composite, layer - 1, metric)]
    }

    /// The maximum over tokens of `metric` for `composite` at 1-based `layer`.
    pub fn token_max(&self, composite: Composite, layer: usize, metric: Metric) -> f64 {
        self.token_max[profile_index(self.layers, composite, layer - 1, metric)]
    }

    /// The whole-model composite prefix(L) = suffix(1): token aggregate.
    pub fn whole_model(&self, metric: Metric) -> f64 {
        self.get(Composite::Prefix, self.layers, metric)
    }

    /// The whole-model composite: maximum over tokens.
    pub fn whole_model_token_max(&self, metric: Metric) -> f64 {
        self.token_max(Composite::Prefix, self.layers, metric)
    }

    /// All aggregated values, laid out as [`profile_index`].
    pub fn values(&self) -> &[f64] {
        &self.aggregate
    }
}

/// Measures every composite of `stack` (see [`TokenAggregation`] for the token treatment).
pub fn profile_stack(stack: &LayerStack, aggregation: TokenAggregation) -> StackProfile {
    let layers = stack.layers();
    let n = stack.streams();
    let tokens = stack.tokens();
    let width = profile_width(layers);
    let mut aggregate = vec![0.0; width];
    let mut token_max = vec![f64::NEG_INFINITY; width];
    let mut accumulate = |matrices: &[&[f64]]| {
        for composite in Composite::ALL {
            let measured = MatrixMetrics::of_many(&composites(composite, matrices, n));
            for (layer_index, metrics) in measured.iter().enumerate() {
                let start = profile_index(layers, composite, layer_index, Metric::AmaxForward);
                for (k, &value) in metrics.values().iter().enumerate() {
                    aggregate[start + k] += value;
                    token_max[start + k] = token_max[start + k].max(value);
                }
            }
        }
    };
    let measured_tokens = match aggregation {
        TokenAggregation::MeanOfMetrics => {
            for token in 0..tokens {
                accumulate(&stack.token_slices(token));
            }
            tokens
        }
        TokenAggregation::MetricOfMean => {
            let mean = stack.token_mean_matrices();
            let slices: Vec<&[f64]> = mean.iter().map(Vec::as_slice).collect();
            accumulate(&slices);
            1
        }
    };
    aggregate
        .iter_mut()
        .for_each(|x| *x /= measured_tokens as f64);
    StackProfile {
        layers,
        streams: n,
        tokens,
        aggregation,
        aggregate,
        token_max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    #[test]
    fn tokens_are_averaged_per_metric_or_per_matrix() {
        // Two tokens: 2·I and 0·I (one layer, n = 2). Amax per token: 2 and 0, mean 1;
        // metric of the mean matrix I: 1 as well, but the spectral norms differ for mixed signs.
        let mut data = Array4::<f64>::zeros((1, 2, 2, 2));
        data[[0, 0, 0, 0]] = 2.0;
        data[[0, 0, 1, 1]] = 2.0;
        data[[0, 1, 0, 1]] = -2.0;
        data[[0, 1, 1, 0]] = -2.0;
        let stack = LayerStack::new(data, "test").unwrap();
        let per_token = profile_stack(&stack, TokenAggregation::MeanOfMetrics);
        // token 0: spectral 2; token 1: spectral 2 → mean 2. Mean matrix [[1,-1],[-1,1]]: σ₁ = 2.
        assert!((per_token.whole_model(Metric::SpectralNorm) - 2.0).abs() < 1e-15);
        // amax_forward: token 0 → 2, token 1 → 2; mean matrix has row sums 0.
        assert!((per_token.whole_model(Metric::AmaxForward) - 2.0).abs() < 1e-15);
        let of_mean = profile_stack(&stack, TokenAggregation::MetricOfMean);
        assert!(of_mean.whole_model(Metric::AmaxForward).abs() < 1e-15);
        assert_eq!(
            per_token.token_max(Composite::Single, 1, Metric::AmaxForward),
            2.0
        );
    }
}
