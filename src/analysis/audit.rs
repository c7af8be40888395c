//! The `audit` verdict: is a checkpoint's residual mixing bounded across depth?
//!
//! The stack (loaded from a file) is profiled like a `gain` seed; the verdict looks at the
//! whole-model composite prefix(L) = H_L ⋯ H_1, taking the **maximum over tokens**:
//! unstable when `amax_forward` or `amax_backward` exceeds `max_gain`, or (optional check) when
//! a single layer's Birkhoff distance exceeds `max_distance`.

use serde::Serialize;

use super::profile::{StackProfile, TokenAggregation, profile_stack};
use crate::compose::Composite;
use crate::error::ConfigError;
use crate::metrics::Metric;
use crate::stack::LayerStack;

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
}

impl Default for AuditConfig {
    /// `max_gain` 2 (the paper's mHC reaches ≈ 1.6, its HC ≈ 3000), no distance check.
    fn default() -> Self {
        Self {
            max_gain: 2.0,
            max_distance: None,
            token_aggregation: TokenAggregation::MeanOfMetrics,
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
                Err(ConfigError::BadReal {
                    name,
                    non_negative: true,
                    value,
                })
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
        })
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
    pub fn describe(&self) -> String {
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
    /// Per-layer and composite metrics.
    pub profile: StackProfile,
    /// Every check, passed or not.
    pub checks: Vec<Check>,
    /// Stable when every check passed.
    pub verdict: Verdict,
    /// 1-based layers sorted by single-layer max(amax_forward, amax_backward), worst first.
    pub worst_layers: Vec<usize>,
}

/// Profiles `stack` and judges it against `config`.
pub fn audit(stack: &LayerStack, config: &AuditConfig) -> AuditResult {
    let profile = profile_stack(stack, config.token_aggregation);
    let mut checks = Vec::new();
    for metric in [Metric::AmaxForward, Metric::AmaxBackward] {
        let value = profile.whole_model_token_max(metric);
        checks.push(Check {
            quantity: format!("whole-model {} (max over tokens)", metric.name()),
            value,
            limit: config.max_gain,
            passed: value <= config.max_gain,
        });
    }
    if let Some(limit) = config.max_distance {
        let (layer, value) = (1..=profile.layers())
            .map(|l| {
                (
                    l,
                    profile.token_max(Composite::Single, l, Metric::BirkhoffDistance),
                )
            })
            .fold(
                (1, f64::NEG_INFINITY),
                |best, x| if x.1 > best.1 { x } else { best },
            );
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
    let single_gain = |l: usize| {
        profile
            .token_max(Composite::Single, l, Metric::AmaxForward)
            .max(profile.token_max(Composite::Single, l, Metric::AmaxBackward))
    };
    let mut worst_layers: Vec<usize> = (1..=profile.layers()).collect();
    worst_layers.sort_by(|&a, &b| single_gain(b).total_cmp(&single_gain(a)).then(a.cmp(&b)));
    AuditResult {
        profile,
        checks,
        verdict,
        worst_layers,
    }
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
        let stable = audit(&stack_of([0.7, 0.3, 0.3, 0.7], 10), &AuditConfig::default());
        assert_eq!(stable.verdict, Verdict::Stable);
        assert!(stable.checks.iter().all(|c| (c.value - 1.0).abs() < 1e-12));
        // Row sums 1.1: the composite of 10 layers has forward gain 1.1^10 ≈ 2.59 > 2.
        let growing = audit(&stack_of([0.8, 0.3, 0.3, 0.8], 10), &AuditConfig::default());
        assert_eq!(growing.verdict, Verdict::Unstable);
        assert!((growing.checks[0].value - 1.1f64.powi(10)).abs() < 1e-12);
        assert!(growing.checks[0].describe().contains("> 2"));
    }

    #[test]
    fn distance_check_is_optional() {
        let config = AuditConfig::new(10.0, Some(0.01), TokenAggregation::MeanOfMetrics).unwrap();
        let result = audit(&stack_of([0.8, 0.3, 0.3, 0.8], 3), &config);
        assert_eq!(result.checks.len(), 3);
        assert_eq!(result.verdict, Verdict::Unstable);
        assert!(AuditConfig::new(0.0, None, TokenAggregation::MeanOfMetrics).is_err());
    }
}
