//! Metrics of one mixing matrix or composite P (row-major n×n, rows = output streams).
//!
//! [`Metric`] names every quantity the tool reports; [`MatrixMetrics::of`] computes all of them
//! for a [`ScaledMatrix`], so composites far beyond f64 range are measured exactly (see
//! [`MatrixMetrics::of`] for how each metric treats the scale). A metric that is undefined for a
//! matrix (see [`Metric::absent_when`]) holds NaN in the bundle.

pub mod amax;
pub mod birkhoff;
mod bundle;
pub mod spectral;
pub mod structure;

pub use amax::{
    amax_backward, amax_forward, column_sums, inf_norm, negative_mass, one_norm, row_sums,
};
pub use birkhoff::{
    BirkhoffProjection, birkhoff_distance, birkhoff_projection, dykstra_projection,
};
pub use spectral::{
    distance_to_average, sigma2, singular_values, singular_values_4_many, spectral_norm,
};
pub use structure::{
    EntropyUndefined, frobenius_distance, identity_distance, mixing_entropy,
    mixing_entropy_checked, nearest_permutation, nearest_permutation_scaled,
};

use serde::{Deserialize, Serialize};

use crate::compose::{ScaledMatrix, scale_by_power_of_two};

/// Every metric the tool reports, in output order. The serde name is the CSV/JSON spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// max_i |Σ_j P_ij|: forward Amax gain (the paper's, signed sums).
    AmaxForward,
    /// max_j |Σ_i P_ij|: backward Amax gain.
    AmaxBackward,
    /// max_i Σ_j |P_ij|: induced ∞-norm.
    InfNorm,
    /// max_j Σ_i |P_ij|: induced 1-norm.
    OneNorm,
    /// σ₁(P) = ‖P‖₂.
    SpectralNorm,
    /// σ₂(P): second singular value (stream collapse when → 0 for doubly stochastic P).
    Sigma2,
    /// ‖P − J/n‖₂: distance to the averaging matrix.
    DistanceToAverage,
    /// min ‖X − P‖_F over the Birkhoff polytope (exact).
    BirkhoffDistance,
    /// min_i Σ_j P_ij.
    RowSumMin,
    /// max_i Σ_j P_ij.
    RowSumMax,
    /// min_j Σ_i P_ij.
    ColSumMin,
    /// max_j Σ_i P_ij.
    ColSumMax,
    /// max_i |Σ_j P_ij − 1|: row marginal error.
    RowSumError,
    /// max_j |Σ_i P_ij − 1|: column marginal error.
    ColSumError,
    /// Σ_ij max(−P_ij, 0).
    NegativeMass,
    /// log10 amax_forward (finite even where the value overflows f64).
    Log10AmaxForward,
    /// log10 amax_backward.
    Log10AmaxBackward,
    /// log10 spectral_norm.
    Log10SpectralNorm,
    /// max(amax_forward, amax_backward): the larger Amax gain of the two directions.
    AmaxLarger,
    /// ‖P − I‖_F: how far from a plain residual connection.
    IdentityDistance,
    /// min_Π ‖P − Π‖_F over permutation matrices (exact): how far from a pure routing of
    /// streams ([`nearest_permutation_scaled`] gives the routing).
    PermutationDistance,
    /// (1/n)·Σ_i H(P_i· / Σ_j P_ij) / ln n: 0 for a permutation, 1 for J/n; NaN (absent) when a
    /// row has a negative entry (HC) or sums to zero.
    MixingEntropy,
}

impl Metric {
    /// All metrics in output order.
    pub const ALL: [Metric; 22] = [
        Metric::AmaxForward,
        Metric::AmaxBackward,
        Metric::InfNorm,
        Metric::OneNorm,
        Metric::SpectralNorm,
        Metric::Sigma2,
        Metric::DistanceToAverage,
        Metric::BirkhoffDistance,
        Metric::RowSumMin,
        Metric::RowSumMax,
        Metric::ColSumMin,
        Metric::ColSumMax,
        Metric::RowSumError,
        Metric::ColSumError,
        Metric::NegativeMass,
        Metric::Log10AmaxForward,
        Metric::Log10AmaxBackward,
        Metric::Log10SpectralNorm,
        Metric::AmaxLarger,
        Metric::IdentityDistance,
        Metric::PermutationDistance,
        Metric::MixingEntropy,
    ];

    /// Position in [`Metric::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The CSV/JSON name, e.g. `amax_forward`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::AmaxForward => "amax_forward",
            Metric::AmaxBackward => "amax_backward",
            Metric::InfNorm => "inf_norm",
            Metric::OneNorm => "one_norm",
            Metric::SpectralNorm => "spectral_norm",
            Metric::Sigma2 => "sigma2",
            Metric::DistanceToAverage => "distance_to_average",
            Metric::BirkhoffDistance => "birkhoff_distance",
            Metric::RowSumMin => "row_sum_min",
            Metric::RowSumMax => "row_sum_max",
            Metric::ColSumMin => "col_sum_min",
            Metric::ColSumMax => "col_sum_max",
            Metric::RowSumError => "row_sum_error",
            Metric::ColSumError => "col_sum_error",
            Metric::NegativeMass => "negative_mass",
            Metric::Log10AmaxForward => "log10_amax_forward",
            Metric::Log10AmaxBackward => "log10_amax_backward",
            Metric::Log10SpectralNorm => "log10_spectral_norm",
            Metric::AmaxLarger => "amax_larger",
            Metric::IdentityDistance => "identity_distance",
            Metric::PermutationDistance => "permutation_distance",
            Metric::MixingEntropy => "mixing_entropy",
        }
    }

    /// When the metric has no value (NaN in [`MatrixMetrics`]), the condition, for reports to
    /// print beside the missing value; `None` for metrics that are always defined.
    pub(crate) fn absent_when(self) -> Option<&'static str> {
        match self {
            Metric::MixingEntropy => {
                Some("undefined when a row has a negative entry (HC) or sums to zero")
            }
            _ => None,
        }
    }

    /// The metric with CSV/JSON name `name`.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// All [`Metric`]s of one matrix, indexed by [`Metric::index`].
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixMetrics {
    values: [f64; Metric::ALL.len()],
}

/// Reusable buffers of [`MatrixMetrics::of_many_into`] for 4×4 batches: the SVD inputs (each
/// mantissa and its shift by J/4), their singular values, the shifts' exponents, and what the
/// lane bundle ([`bundle::bundle_4_many`]) reads.
#[derive(Debug, Default)]
pub(crate) struct MetricsWorkspace {
    inputs: Vec<[f64; 16]>,
    sigmas: Vec<[f64; 4]>,
    shift_exponents: Vec<i64>,
    /// The singular values of each P (every other entry of `sigmas`).
    own_sigmas: Vec<[f64; 4]>,
    /// ‖P − J/4‖₂ of each P.
    distances: Vec<f64>,
}

/// Largest n whose work buffers in [`MatrixMetrics::of`] live on the stack.
const STACK_VECTOR: usize = 8;
const STACK_MATRIX: usize = STACK_VECTOR * STACK_VECTOR;

/// Above this Frobenius norm times √n the Birkhoff distance equals ‖P‖_F to f64 precision
/// (|dist_B(P) − ‖P‖_F| ≤ ‖X*‖_F ≤ √n): 2^60.
const BIRKHOFF_FAR: f64 = (1u64 << 60) as f64;

impl MatrixMetrics {
    /// Computes every metric of `p = mantissa · 2^exponent`.
    ///
    /// Amax, the induced norms, singular values, sums and negative mass are homogeneous: they
    /// are computed on the mantissa and scaled by 2^exponent, so they are exact wherever the
    /// true value fits f64 and +inf only where it does not; the `log10_*` metrics stay finite.
    /// The marginal errors subtract 1 from the scaled sums. ‖P − J/n‖₂ is computed as
    /// 2^e·‖M − 2^−e·J/n‖₂ (on the plain matrix when P is tiny). The Birkhoff distance is not
    /// homogeneous: it is computed exactly on the plain matrix, except where ‖P‖_F > 2^60·√n,
    /// where it equals ‖P‖_F to f64 precision and is reported as such. The identity and
    /// permutation distances are computed as 2^e·‖M − 2^−e·Π‖_F (on the plain matrix when P is
    /// tiny), finite wherever the true value fits f64 and ≈ ‖P‖_F for a huge P; the nearest
    /// permutation and the mixing entropy are scale invariant and read from the mantissa. The
    /// mixing entropy is NaN where it is undefined (a negative entry or a zero row).
    pub fn of(p: &ScaledMatrix) -> Self {
        Self::of_many(std::slice::from_ref(p))
            .pop()
            .expect("one matrix in, one bundle out")
    }

    /// [`Self::of`] for each matrix, in order: the same values, faster for many 4×4 matrices,
    /// whose singular values (of P and of P − J/n) are computed side by side in SIMD lanes
    /// ([`spectral::singular_values_4_many`]).
    pub fn of_many(matrices: &[ScaledMatrix]) -> Vec<Self> {
        let mut out = Vec::with_capacity(matrices.len());
        Self::of_many_into(matrices, true, &mut MetricsWorkspace::default(), &mut out);
        out
    }

    /// [`Self::of_many`] into `out` (cleared first), with reusable work space (allocation-free
    /// once the buffers have grown to the batch), computing the Birkhoff distance (a quadratic
    /// program per matrix, the costliest metric) only if `birkhoff`; without it that value is
    /// NaN and every other value is the same.
    pub(crate) fn of_many_into(
        matrices: &[ScaledMatrix],
        birkhoff: bool,
        work: &mut MetricsWorkspace,
        out: &mut Vec<Self>,
    ) {
        out.clear();
        if matrices.iter().all(|p| p.n() == 4) {
            // Inputs [P_0, P_0 − J/4 (shifted), P_1, …]; see `shifted_by_average`.
            let MetricsWorkspace {
                inputs,
                sigmas,
                shift_exponents,
                own_sigmas,
                distances,
            } = work;
            inputs.clear();
            shift_exponents.clear();
            for p in matrices {
                let mut mantissa = [0.0; 16];
                mantissa.copy_from_slice(p.mantissa());
                let mut shifted = [0.0; 16];
                shift_exponents.push(shifted_by_average(p, &mut shifted));
                inputs.push(mantissa);
                inputs.push(shifted);
            }
            sigmas.resize(inputs.len(), [0.0; 4]);
            spectral::singular_values_4_many(inputs, sigmas);
            // Every other entry is P's; the shifted matrices' σ₁ become ‖P − J/4‖₂.
            own_sigmas.clear();
            distances.clear();
            for (sigma, &exponent) in sigmas.chunks_exact(2).zip(shift_exponents.iter()) {
                own_sigmas.push(sigma[0]);
                distances.push(scale_by_power_of_two(sigma[1][0], exponent));
            }
            bundle::bundle_4_many(matrices, own_sigmas, distances, birkhoff, out);
            return;
        }
        out.extend(matrices.iter().map(|p| {
            let n = p.n();
            let (mut stack, mut heap) = ([0.0; WORK_BUFFER], Vec::new());
            let (sigma, rest) = work_buffer(n, &mut stack, &mut heap).split_at_mut(n);
            let shifted = &mut rest[..n * n];
            spectral::singular_values_into(p.mantissa(), n, sigma);
            let exponent = shifted_by_average(p, shifted);
            let distance = scale_by_power_of_two(spectral_norm(shifted, n), exponent);
            Self::assemble(p, sigma, distance, birkhoff)
        }));
    }

    /// The bundle from the singular values `sigma` of the mantissa (largest first) and
    /// ‖P − J/n‖₂; everything else is computed here.
    fn assemble(p: &ScaledMatrix, sigma: &[f64], distance_to_average: f64, birkhoff: bool) -> Self {
        Self::assemble_for(p, p.n(), sigma, distance_to_average, birkhoff)
    }

    /// [`Self::assemble`] with `n = p.n()` passed in, so that a caller with a constant n gets
    /// loops the compiler unrolls.
    #[inline(always)]
    fn assemble_for(
        p: &ScaledMatrix,
        n: usize,
        sigma: &[f64],
        distance_to_average: f64,
        birkhoff: bool,
    ) -> Self {
        debug_assert_eq!(n, p.n());
        let m = &p.mantissa()[..n * n];
        let e = p.exponent();
        let scaled = |x: f64| scale_by_power_of_two(x, e);
        let (mut stack, mut heap) = ([0.0; WORK_BUFFER], Vec::new());
        let (rows, rest) = work_buffer(n, &mut stack, &mut heap).split_at_mut(n);
        let (cols, rest) = rest.split_at_mut(n);
        let matrix = &mut rest[..n * n];
        for (sum, row) in rows.iter_mut().zip(m.chunks_exact(n)) {
            *sum = row.iter().sum();
        }
        cols.fill(0.0);
        for row in m.chunks_exact(n) {
            for (sum, x) in cols.iter_mut().zip(row) {
                *sum += x;
            }
        }
        let (rows, cols) = (&*rows, &*cols);
        let fold_min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let fold_max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let amax_forward_mantissa = amax::max_abs(rows);
        let amax_backward_mantissa = amax::max_abs(cols);
        let sigma1 = sigma[0];
        let sigma2 = sigma.get(1).copied().unwrap_or(0.0);

        let frobenius_mantissa = m.iter().map(|x| x * x).sum::<f64>().sqrt();
        // ‖P‖_F = 2^e·‖M‖_F (+inf when it overflows, which is far too).
        let birkhoff = if !birkhoff {
            f64::NAN
        } else if scaled(frobenius_mantissa) > BIRKHOFF_FAR * (n as f64).sqrt() {
            scaled(frobenius_mantissa)
        } else {
            p.write_f64(matrix);
            birkhoff_distance(matrix, n)
        };

        let marginal_error = |sums: &[f64]| {
            sums.iter()
                .map(|s| (scaled(*s) - 1.0).abs())
                .fold(0.0, f64::max)
        };

        let mut values = [0.0; Metric::ALL.len()];
        values[Metric::AmaxForward.index()] = scaled(amax_forward_mantissa);
        values[Metric::AmaxBackward.index()] = scaled(amax_backward_mantissa);
        values[Metric::InfNorm.index()] = scaled(inf_norm(m, n));
        values[Metric::OneNorm.index()] = scaled(one_norm(m, n));
        values[Metric::SpectralNorm.index()] = scaled(sigma1);
        values[Metric::Sigma2.index()] = scaled(sigma2);
        values[Metric::DistanceToAverage.index()] = distance_to_average;
        values[Metric::BirkhoffDistance.index()] = birkhoff;
        values[Metric::RowSumMin.index()] = scaled(fold_min(rows));
        values[Metric::RowSumMax.index()] = scaled(fold_max(rows));
        values[Metric::ColSumMin.index()] = scaled(fold_min(cols));
        values[Metric::ColSumMax.index()] = scaled(fold_max(cols));
        values[Metric::RowSumError.index()] = marginal_error(rows);
        values[Metric::ColSumError.index()] = marginal_error(cols);
        values[Metric::NegativeMass.index()] = scaled(negative_mass(m));
        values[Metric::Log10AmaxForward.index()] = p.log10_scaled(amax_forward_mantissa);
        values[Metric::Log10AmaxBackward.index()] = p.log10_scaled(amax_backward_mantissa);
        values[Metric::Log10SpectralNorm.index()] = p.log10_scaled(sigma1);
        values[Metric::AmaxLarger.index()] =
            scaled(amax_forward_mantissa.max(amax_backward_mantissa));
        let (identity, permutation) = structure::distances_scaled(p, n);
        values[Metric::IdentityDistance.index()] = identity;
        values[Metric::PermutationDistance.index()] = permutation;
        values[Metric::MixingEntropy.index()] = structure::entropy_of(m, n).unwrap_or(f64::NAN);
        Self { values }
    }

    /// Every metric of a plain (finite) row-major n×n matrix.
    pub fn of_matrix(p: &[f64], n: usize) -> Self {
        Self::of(&ScaledMatrix::new(n, p.to_vec()))
    }

    /// One metric's value.
    pub fn get(&self, metric: Metric) -> f64 {
        self.values[metric.index()]
    }

    /// All values, indexed by [`Metric::index`].
    pub fn values(&self) -> &[f64] {
        &self.values
    }
}

/// Writes into `out` (length n²) a matrix S and returns an exponent k with
/// ‖P − J/n‖₂ = 2^k·‖S‖₂: S = M − 2^−e·J/n with k = e (homogeneity) unless P is tiny
/// (e < −60, where 2^−e/n would dwarf M), then S = P − J/n in plain f64 with k = 0.
fn shifted_by_average(p: &ScaledMatrix, out: &mut [f64]) -> i64 {
    let n = p.n();
    let e = p.exponent();
    let out = &mut out[..n * n];
    if e >= -60 {
        let average = scale_by_power_of_two(1.0 / n as f64, -e);
        for (shifted, x) in out.iter_mut().zip(p.mantissa()) {
            *shifted = x - average;
        }
        e
    } else {
        p.write_f64(out);
        let average = 1.0 / n as f64;
        out.iter_mut().for_each(|x| *x -= average);
        0
    }
}

/// Values in a work buffer on the stack: 2n + n² for every n ≤ 8 (every published model).
const WORK_BUFFER: usize = 2 * STACK_VECTOR + STACK_MATRIX;

/// A zeroed work buffer of 2n + n² values: `stack` for n ≤ 8, else `heap`, resized.
fn work_buffer<'a>(
    n: usize,
    stack: &'a mut [f64; WORK_BUFFER],
    heap: &'a mut Vec<f64>,
) -> &'a mut [f64] {
    let len = 2 * n + n * n;
    if n <= STACK_VECTOR {
        &mut stack[..len]
    } else {
        heap.resize(len, 0.0);
        heap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for metric in Metric::ALL {
            assert_eq!(Metric::from_name(metric.name()), Some(metric));
            assert_eq!(
                serde_json::to_string(&metric).unwrap(),
                format!("\"{}\"", metric.name())
            );
        }
        assert_eq!(
            Metric::ALL
                .iter()
                .enumerate()
                .filter(|(i, m)| m.index() != *i)
                .count(),
            0
        );
    }

    #[test]
    fn many_at_once_equals_one_at_a_time() {
        let matrices: Vec<ScaledMatrix> = (0..37)
            .map(|k| {
                let scale = 10f64.powi(k % 9 - 4);
                let values = (0..16)
                    .map(|i| scale * ((((k * 16 + i) as f64) * 0.618_033_988_7).fract() - 0.3))
                    .collect();
                ScaledMatrix::new(4, values)
            })
            .collect();
        let many = MatrixMetrics::of_many(&matrices);
        for (p, bundle) in matrices.iter().zip(&many) {
            let alone = MatrixMetrics::of(p);
            for (a, b) in alone.values().iter().zip(bundle.values()) {
                assert_eq!(a.to_bits(), b.to_bits());
            }
        }
    }

    #[test]
    fn without_the_birkhoff_distance_only_that_value_changes() {
        // 4×4 (the lane bundle) and 3×3 (the general path), HC-like with negative entries so
        // that the projection is not the affine one.
        for n in [4, 3] {
            let matrices: Vec<ScaledMatrix> = (0..9)
                .map(|k| {
                    let values = (0..n * n)
                        .map(|i| (((k * 16 + i) as f64) * 0.754_877_666).fract() * 3.0 - 1.0)
                        .collect();
                    ScaledMatrix::new(n, values)
                })
                .collect();
            let with = MatrixMetrics::of_many(&matrices);
            let mut without = Vec::new();
            MatrixMetrics::of_many_into(
                &matrices,
                false,
                &mut MetricsWorkspace::default(),
                &mut without,
            );
            for (a, b) in with.iter().zip(&without) {
                assert!(a.get(Metric::BirkhoffDistance) > 0.0);
                assert!(b.get(Metric::BirkhoffDistance).is_nan());
                for metric in Metric::ALL {
                    if metric != Metric::BirkhoffDistance {
                        assert_eq!(
                            a.get(metric).to_bits(),
                            b.get(metric).to_bits(),
                            "{metric:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn averaging_matrix() {
        let metrics = MatrixMetrics::of_matrix(&[0.25; 16], 4);
        assert!((metrics.get(Metric::AmaxForward) - 1.0).abs() < 1e-15);
        assert!((metrics.get(Metric::SpectralNorm) - 1.0).abs() < 1e-15);
        assert!(metrics.get(Metric::Sigma2) < 1e-15);
        assert!(metrics.get(Metric::DistanceToAverage) < 1e-15);
        assert!(metrics.get(Metric::BirkhoffDistance) < 1e-15);
        assert!(metrics.get(Metric::Log10AmaxForward).abs() < 1e-15);
        // Every permutation is √3 away (4 entries ¾ off, 12 entries ¼ off: 9/16·4 + 12/16 = 3).
        assert!((metrics.get(Metric::IdentityDistance) - 3f64.sqrt()).abs() < 1e-15);
        assert!((metrics.get(Metric::PermutationDistance) - 3f64.sqrt()).abs() < 1e-15);
        assert!((metrics.get(Metric::MixingEntropy) - 1.0).abs() < 1e-15);
    }

    #[test]
    fn structure_metrics_of_a_routing_and_of_an_hc_layer() {
        // The cyclic routing π = (1, 2, 0) plus 0.1 on the diagonal (row sums 1.1):
        // ‖P − Π‖_F = √(3·0.01), ‖P − I‖_F = √(3·0.81 + 3·1) = √5.43, rows (0.1, 1)/1.1.
        let p = [0.1, 1.0, 0.0, 0.0, 0.1, 1.0, 1.0, 0.0, 0.1];
        let metrics = MatrixMetrics::of_matrix(&p, 3);
        assert!((metrics.get(Metric::PermutationDistance) - 0.03f64.sqrt()).abs() < 1e-15);
        assert!((metrics.get(Metric::IdentityDistance) - 5.43f64.sqrt()).abs() < 1e-14);
        let (a, b) = (0.1 / 1.1, 1.0 / 1.1);
        let entropy = -(a * f64::ln(a) + b * f64::ln(b)) / 3f64.ln();
        assert!((metrics.get(Metric::MixingEntropy) - entropy).abs() < 1e-15);
        // HC's Figure 8 layer 30 has negative entries: no entropy, and the metric says why.
        let h30 = [
            0.94, -0.07, -0.05, 0.02, -0.08, 0.89, -0.07, -0.07, -0.10, -0.14, 0.81, -0.07, 0.06,
            0.05, -0.03, 0.87,
        ];
        let metrics = MatrixMetrics::of_matrix(&h30, 4);
        assert!(metrics.get(Metric::MixingEntropy).is_nan());
        assert!(
            Metric::MixingEntropy
                .absent_when()
                .unwrap()
                .contains("negative")
        );
        assert!(
            Metric::ALL
                .iter()
                .filter(|m| **m != Metric::MixingEntropy)
                .all(|m| m.absent_when().is_none() && !metrics.get(*m).is_nan())
        );
        // Nearly the identity, so its nearest permutation is I itself.
        let identity = metrics.get(Metric::IdentityDistance);
        assert_eq!(metrics.get(Metric::PermutationDistance), identity);
        assert!((identity - structure::identity_distance(&h30, 4)).abs() < 1e-15);
    }

    #[test]
    fn huge_scaled_matrix_is_measured_exactly() {
        // 10^400 · (J/4): amax = 10^400 overflows, its log10 does not.
        let h = [10.0, 0.0, 0.0, 10.0];
        let layers: Vec<&[f64]> = vec![&h; 400];
        let prefix = crate::compose::prefix_composites(&layers, 2);
        let metrics = MatrixMetrics::of(prefix.last().unwrap());
        assert_eq!(metrics.get(Metric::AmaxForward), f64::INFINITY);
        assert!((metrics.get(Metric::Log10AmaxForward) - 400.0).abs() < 1e-9);
        assert_eq!(metrics.get(Metric::BirkhoffDistance), f64::INFINITY);
        assert_eq!(metrics.get(Metric::IdentityDistance), f64::INFINITY);
        assert_eq!(metrics.get(Metric::PermutationDistance), f64::INFINITY);
        assert_eq!(metrics.get(Metric::MixingEntropy), 0.0);
        // 10^250: finite and exact to rounding; Birkhoff distance = ‖P‖_F = √2·10^250.
        let metrics = MatrixMetrics::of(&prefix[249]);
        assert!((metrics.get(Metric::AmaxForward) / 1e250 - 1.0).abs() < 1e-12);
        let expected = 2f64.sqrt() * 1e250;
        assert!((metrics.get(Metric::BirkhoffDistance) / expected - 1.0).abs() < 1e-12);
        assert!((metrics.get(Metric::DistanceToAverage) / 1e250 - 1.0).abs() < 1e-12);
        // ‖10^250·I − I‖_F = √2·(10^250 − 1) = √2·10^250 to f64 precision; I is the nearest.
        assert!((metrics.get(Metric::IdentityDistance) / expected - 1.0).abs() < 1e-12);
        assert!((metrics.get(Metric::PermutationDistance) / expected - 1.0).abs() < 1e-12);
        // 10^-250: tiny; distance to J/n is ‖J/n‖₂ = 1, Birkhoff distance ‖J/n‖_F = 1.
        let small = [0.1, 0.0, 0.0, 0.1];
        let layers: Vec<&[f64]> = vec![&small; 250];
        let prefix = crate::compose::prefix_composites(&layers, 2);
        let metrics = MatrixMetrics::of(prefix.last().unwrap());
        assert!((metrics.get(Metric::AmaxForward) / 1e-250 - 1.0).abs() < 1e-12);
        assert!((metrics.get(Metric::DistanceToAverage) - 1.0).abs() < 1e-15);
        assert!((metrics.get(Metric::BirkhoffDistance) - 1.0).abs() < 1e-15);
        assert!((metrics.get(Metric::Log10AmaxForward) + 250.0).abs() < 1e-9);
        // ‖10^−250·I − I‖_F = √2·(1 − 10^−250) = √2.
        assert!((metrics.get(Metric::IdentityDistance) - 2f64.sqrt()).abs() < 1e-15);
        assert!((metrics.get(Metric::PermutationDistance) - 2f64.sqrt()).abs() < 1e-15);
    }
}
