//! Measuring one draw: every selected metric of every single, prefix and suffix composite of one
//! token's layers, written into a row laid out by [`RowLayout`].
//!
//! This is the kernel shared by `gain` (a seed's tokens, averaged) and `audit` (each token a
//! draw of its own): composites are built with [`crate::compose`] (scaled, so HC products never
//! overflow) and measured in batches with [`MatrixMetrics::of_many`].

use serde::{Deserialize, Serialize};

use super::results::RowLayout;
use crate::compose::{Composite, ScaledMatrix, composites_into};
use crate::metrics::{MatrixMetrics, Metric, MetricsWorkspace};
use crate::stack::LayerStack;

/// How a seed's tokens become one value per metric in `gain` (the paper's figures are token
/// means of one sequence, and the paper does not say which of these it means).
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

/// Measures one token: `layers` holds its L matrices (row-major n×n, layer order). Writes the
/// selected metrics of the selected single(l), prefix(l) and suffix(l) into `out`, laid out as
/// one series' profile of `layout` (length [`RowLayout::profile_width`]). Only the composites a
/// selection needs are built: prefix(l) up to the deepest selected l, suffix(l) down to the
/// shallowest.
pub(crate) fn measure_token(layers: &[&[f64]], n: usize, layout: &RowLayout, out: &mut [f64]) {
    let stride = layout.profile_width();
    measure_tokens(
        layers,
        n,
        layout,
        out,
        stride,
        &mut TokenWorkspace::default(),
    );
}

/// Reusable buffers of [`measure_tokens`]: the composites of a batch of tokens and their
/// metric bundles, so that a worker measures token after token without allocating.
#[derive(Debug)]
pub(crate) struct TokenWorkspace {
    /// The composites to measure, in measurement order (token, composite, layer); only the
    /// first `used` are current, the rest keep their allocations for later batches.
    matrices: Vec<ScaledMatrix>,
    /// One token's composites of one kind, when only some of their layers are measured.
    built: Vec<ScaledMatrix>,
    /// A layer matrix entering a product.
    layer: ScaledMatrix,
    metrics: MetricsWorkspace,
    bundles: Vec<MatrixMetrics>,
}

impl Default for TokenWorkspace {
    fn default() -> Self {
        Self {
            matrices: Vec::new(),
            built: Vec::new(),
            layer: ScaledMatrix::empty(),
            metrics: MetricsWorkspace::default(),
            bundles: Vec::new(),
        }
    }
}

/// Grows `matrices` to at least `len` entries (new ones empty).
fn ensure_len(matrices: &mut Vec<ScaledMatrix>, len: usize) {
    if matrices.len() < len {
        matrices.resize_with(len, ScaledMatrix::empty);
    }
}

/// [`measure_token`] for a batch of tokens: `layers` holds L matrices per token (token after
/// token), `out` one profile of `layout` per token, the k-th token's at `k·stride` (a row may
/// hold more than the profile: `stride` ≥ [`RowLayout::profile_width`]). The composites of the whole batch are
/// measured in one [`MatrixMetrics::of_many_into`] call (more matrices in flight in the SIMD
/// lanes); every value is the one [`measure_token`] gives the token alone.
pub(crate) fn measure_tokens(
    layers: &[&[f64]],
    n: usize,
    layout: &RowLayout,
    out: &mut [f64],
    stride: usize,
    work: &mut TokenWorkspace,
) {
    let metrics = layout.metrics();
    let count = layers.len() / layout.layers().max(1);
    debug_assert_eq!(layers.len(), count * layout.layers());
    debug_assert_eq!(out.len(), count * stride);
    debug_assert!(stride >= layout.profile_width());
    let Some(&first_metric) = metrics.metrics().first() else {
        return;
    };
    if layout.layers() == 0 {
        return;
    }
    let mut used = 0;
    for token in layers.chunks_exact(layout.layers()) {
        for composite in Composite::ALL {
            let measured = layout.measured_layers(composite);
            let (Some(shallowest), Some(deepest)) = (measured.first(), measured.last()) else {
                continue;
            };
            // The composites are built for `layers[range]`, `built[k]` at layer range.start + k.
            let range = match composite {
                Composite::Single => 0..token.len(),
                Composite::Prefix => 0..deepest.index() + 1,
                Composite::Suffix => shallowest.index()..token.len(),
            };
            ensure_len(&mut work.matrices, used + measured.len());
            if measured.len() == range.len() {
                let into = &mut work.matrices[used..used + measured.len()];
                composites_into(composite, &token[range], n, into, &mut work.layer);
            } else {
                ensure_len(&mut work.built, range.len());
                let built = &mut work.built[..range.len()];
                let offset = range.start;
                composites_into(composite, &token[range], n, built, &mut work.layer);
                for (slot, layer) in work.matrices[used..].iter_mut().zip(measured) {
                    slot.copy_from(&built[layer.index() - offset]);
                }
            }
            used += measured.len();
        }
    }
    // The Birkhoff distance is a quadratic program per matrix: only when selected.
    let birkhoff = metrics.metrics().contains(&Metric::BirkhoffDistance);
    MatrixMetrics::of_many_into(
        &work.matrices[..used],
        birkhoff,
        &mut work.metrics,
        &mut work.bundles,
    );
    let mut bundles = work.bundles.iter();
    for out in out.chunks_exact_mut(stride) {
        for composite in Composite::ALL {
            for &layer in layout.measured_layers(composite) {
                let bundle = bundles.next().expect("one bundle per measured composite");
                let start = layout
                    .profile_position(composite, layer, first_metric)
                    .expect("a measured layer has a position");
                let slots = &mut out[start..start + metrics.len()];
                for (slot, &metric) in slots.iter_mut().zip(metrics.metrics()) {
                    *slot = bundle.get(metric);
                }
            }
        }
    }
}

/// Measures a whole stack as one draw of series `series` (a `gain` seed): the metrics of each
/// token, averaged over tokens in token order ([`TokenAggregation::MeanOfMetrics`]), or the
/// metrics of the token-mean matrices ([`TokenAggregation::MetricOfMean`]); then the series'
/// peaks. `row` is the whole draw's row of `layout`.
pub(crate) fn measure_stack(
    stack: &LayerStack,
    aggregation: TokenAggregation,
    layout: &RowLayout,
    series: usize,
    row: &mut [f64],
) {
    let width = layout.profile_width();
    let n = stack.streams();
    let out = &mut row[series * width..(series + 1) * width];
    match aggregation {
        TokenAggregation::MetricOfMean => {
            let mean = stack.token_mean_matrices();
            let slices: Vec<&[f64]> = mean.iter().map(Vec::as_slice).collect();
            measure_token(&slices, n, layout, out);
        }
        TokenAggregation::MeanOfMetrics if stack.tokens() == 1 => {
            measure_token(&stack.token_slices(0), n, layout, out);
        }
        TokenAggregation::MeanOfMetrics => {
            out.fill(0.0);
            let mut token_values = vec![0.0; width];
            for token in 0..stack.tokens() {
                measure_token(&stack.token_slices(token), n, layout, &mut token_values);
                for (sum, value) in out.iter_mut().zip(&token_values) {
                    *sum += value;
                }
            }
            let tokens = stack.tokens() as f64;
            out.iter_mut().for_each(|x| *x /= tokens);
        }
    }
    layout.fill_peaks(series, row);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::results::{Layer, LayerSelection, MetricSelection, Selection};
    use ndarray::Array4;

    /// The value of `metric` of `composite` at `layer` in a one-series row (for tests and for the
    /// per-token consumers that hold raw rows).
    fn row_value(
        layout: &RowLayout,
        row: &[f64],
        composite: Composite,
        layer: Layer,
        metric: Metric,
    ) -> Option<f64> {
        layout
            .position(0, composite, layer, metric)
            .map(|position| row[position])
    }

    #[test]
    fn tokens_are_averaged_per_metric_or_per_matrix() {
        // Two tokens of one layer (n = 2): 2·I and [[0, −2], [−2, 0]]. Amax per token: 2 and 2,
        // mean 2; the mean matrix [[1, −1], [−1, 1]] has row sums 0 but σ₁ = 2.
        let mut data = Array4::<f64>::zeros((1, 2, 2, 2));
        data[[0, 0, 0, 0]] = 2.0;
        data[[0, 0, 1, 1]] = 2.0;
        data[[0, 1, 0, 1]] = -2.0;
        data[[0, 1, 1, 0]] = -2.0;
        let stack = LayerStack::new(data, "test").unwrap();
        let layout = RowLayout::new(1, 1, Selection::all());
        let whole = |row: &[f64], metric| {
            row_value(&layout, row, Composite::Prefix, Layer::FIRST, metric).unwrap()
        };
        let mut per_token = vec![0.0; layout.width()];
        measure_stack(
            &stack,
            TokenAggregation::MeanOfMetrics,
            &layout,
            0,
            &mut per_token,
        );
        assert!((whole(&per_token, Metric::SpectralNorm) - 2.0).abs() < 1e-15);
        assert!((whole(&per_token, Metric::AmaxForward) - 2.0).abs() < 1e-15);
        let mut of_mean = vec![0.0; layout.width()];
        measure_stack(
            &stack,
            TokenAggregation::MetricOfMean,
            &layout,
            0,
            &mut of_mean,
        );
        assert!(whole(&of_mean, Metric::AmaxForward).abs() < 1e-15);
        assert!((whole(&of_mean, Metric::SpectralNorm) - 2.0).abs() < 1e-15);
    }

    #[test]
    fn a_batch_of_tokens_measures_as_each_token_alone() {
        // HC-like tokens (negative entries, gains far from 1) and mHC-like ones, n = 4 (the lane
        // bundle) and n = 3 (the scalar one); every metric, and a selection whose composites are
        // built and then picked.
        for n in [4usize, 3] {
            let layers = 5;
            let tokens = 11;
            let values: Vec<f64> = (0..tokens * layers * n * n)
                .map(|k| {
                    let u = (k as f64 * 0.618_033_988_7).fract();
                    let diagonal = if (k % (n * n)).is_multiple_of(n + 1) {
                        0.9
                    } else {
                        0.05
                    };
                    if (k / (layers * n * n)) % 2 == 0 {
                        diagonal + 0.1 * u
                    } else {
                        2.0 * u - 0.7
                    }
                })
                .collect();
            let slices: Vec<&[f64]> = values.chunks_exact(n * n).collect();
            let picked = Selection::all().with_composite(
                Composite::Suffix,
                Some(LayerSelection::Only(vec![
                    Layer::new(2).unwrap(),
                    Layer::new(4).unwrap(),
                ])),
            );
            for selection in [Selection::all(), picked] {
                let layout = RowLayout::new(1, layers, selection);
                let width = layout.profile_width();
                let stride = width + 3;
                let mut alone = vec![0.0; tokens * stride];
                for (token, out) in slices
                    .chunks_exact(layers)
                    .zip(alone.chunks_exact_mut(stride))
                {
                    measure_token(token, n, &layout, &mut out[..width]);
                }
                // One workspace for batches of every size, reused.
                let mut work = TokenWorkspace::default();
                for batch in [tokens, 1, 4, 7] {
                    let mut batched = vec![0.0; tokens * stride];
                    for (tokens, out) in slices
                        .chunks(batch * layers)
                        .zip(batched.chunks_mut(batch * stride))
                    {
                        measure_tokens(tokens, n, &layout, out, stride, &mut work);
                    }
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&batched), bits(&alone), "n = {n}, batch {batch}");
                }
            }
        }
    }

    #[test]
    fn a_selection_measures_only_its_metrics() {
        let h = [0.9, 0.1, 0.2, 0.8];
        let layers: Vec<&[f64]> = vec![&h, &h, &h];
        let all = RowLayout::new(1, 3, Selection::all());
        let some = RowLayout::new(
            1,
            3,
            Selection::metrics(MetricSelection::of(&[Metric::Sigma2, Metric::RowSumMax])),
        );
        let mut full = vec![0.0; all.profile_width()];
        let mut part = vec![0.0; some.profile_width()];
        measure_token(&layers, 2, &all, &mut full);
        measure_token(&layers, 2, &some, &mut part);
        for composite in Composite::ALL {
            for layer in Layer::all(3) {
                for metric in [Metric::Sigma2, Metric::RowSumMax] {
                    assert_eq!(
                        full[all.profile_position(composite, layer, metric).unwrap()],
                        part[some.profile_position(composite, layer, metric).unwrap()]
                    );
                }
            }
        }
        // Layer selections: the same values at the selected layers.
        let picked = RowLayout::new(
            1,
            3,
            Selection::metrics(MetricSelection::of(&[Metric::Sigma2]))
                .with_composite(Composite::Single, None)
                .with_composite(
                    Composite::Prefix,
                    Some(LayerSelection::Only(vec![Layer::new(2).unwrap()])),
                )
                .with_composite(
                    Composite::Suffix,
                    Some(LayerSelection::Only(vec![Layer::new(2).unwrap()])),
                ),
        );
        let mut few = vec![0.0; picked.profile_width()];
        assert_eq!(few.len(), 2);
        measure_token(&layers, 2, &picked, &mut few);
        for composite in [Composite::Prefix, Composite::Suffix] {
            let layer = Layer::new(2).unwrap();
            assert_eq!(
                full[all
                    .profile_position(composite, layer, Metric::Sigma2)
                    .unwrap()],
                few[picked
                    .profile_position(composite, layer, Metric::Sigma2)
                    .unwrap()]
            );
        }
        // Every row of H sums to 1, so every row of prefix(3) = H³ does too.
        let row_sum = part[some
            .profile_position(Composite::Prefix, Layer::last(3), Metric::RowSumMax)
            .unwrap()];
        assert!((row_sum - 1.0).abs() < 1e-15);
    }
}
