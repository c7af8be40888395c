//! The metric bundle of 4×4 matrices, a lane group at a time.
//!
//! [`bundle_4_many`] computes the [`MatrixMetrics`] of many 4×4 scaled matrices P = M·2^e with
//! one matrix per SIMD lane (four with AVX or `wide::f64x4`). Each metric is the scalar
//! bundle's formula (`MatrixMetrics::assemble`) with the same operations in the same order, so
//! every lane gives the scalar bits:
//!
//! - sums are left to right from the same start: row sums and Σ_ij M_ij² from the value of an
//!   empty `Iterator::sum`, column sums and column |·| sums from +0, the mixing entropy's total
//!   from +0;
//! - `f64::max(a, b)` and `f64::min(a, b)` become `b > a ? b : a` and `b < a ? b : a` with `b`
//!   where `a` is NaN (how the compiler lowers them on x86-64, so ties between ±0 resolve as in
//!   the scalar code; the tests compare the two on signed zeros);
//! - the distances to I and to the nearest permutation Π follow `frobenius_norm`: the largest
//!   |M − 2^−e·Π| sets an exact power-of-two rescaling, then √(Σ squares) rescaled back;
//! - the nearest permutation is the first of the 24 in lexicographic order whose diagonal sum
//!   Σ_i M_{i,π(i)} lies within 32·ε·max|M_ij| of the largest.
//!
//! What has no lane form stays scalar, lane by lane: the platform's `ln` (16 per matrix for the
//! entropy, only where it is defined) and `log10` (3), the Birkhoff projection (an iterative
//! solver per matrix), and any power-of-two scaling whose exponent leaves the normal range. A lane
//! whose structure distances need the rare paths of `frobenius_norm` (a tiny matrix, e < −60; a
//! rescaling exponent out of range; an infinite or NaN difference) takes the scalar function.

use super::structure::{self, PERMUTATIONS_4, TIE_ULPS, TINY_EXPONENT};
use super::{BIRKHOFF_FAR, MatrixMetrics, Metric, birkhoff_distance};
use crate::compose::{ScaledMatrix, binary_exponent, power_of_two, scale_by_power_of_two};
use crate::lanes::{self, Kernel, Lanes, MAX_LANES, Simd};

/// The metrics of `matrices` (every one 4×4) into `out`, in order: `sigmas[i]` holds the
/// singular values of matrix i's mantissa (largest first), `distances[i]` its ‖P − J/4‖₂. The
/// values are bit-identical to the scalar bundle's on every lane type.
pub(crate) fn bundle_4_many(
    matrices: &[ScaledMatrix],
    sigmas: &[[f64; 4]],
    distances: &[f64],
    birkhoff: bool,
    out: &mut Vec<MatrixMetrics>,
) {
    assert!(
        sigmas.len() == matrices.len() && distances.len() == matrices.len(),
        "bundle_4_many: one sigma and one distance per matrix"
    );
    assert!(matrices.iter().all(|p| p.n() == 4), "bundle_4_many: 4×4");
    let start = out.len();
    out.resize(
        start + matrices.len(),
        MatrixMetrics {
            values: [0.0; Metric::ALL.len()],
        },
    );
    lanes::dispatch(Bundle4 {
        matrices,
        sigmas,
        distances,
        birkhoff,
        out: &mut out[start..],
    });
}

/// [`bundle_4_many`] as a [`Kernel`].
struct Bundle4<'a> {
    matrices: &'a [ScaledMatrix],
    sigmas: &'a [[f64; 4]],
    distances: &'a [f64],
    /// Whether to compute the Birkhoff distance (NaN otherwise).
    birkhoff: bool,
    out: &'a mut [MatrixMetrics],
}

impl Kernel for Bundle4<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, simd: S) {
        let width = S::F64s::COUNT;
        let chunks = self
            .matrices
            .chunks(width)
            .zip(self.sigmas.chunks(width))
            .zip(self.distances.chunks(width))
            .zip(self.out.chunks_mut(width));
        for (((matrices, sigmas), distances), out) in chunks {
            bundle_lanes(simd, matrices, sigmas, distances, self.birkhoff, out);
        }
    }
}

/// Per-lane power-of-two scaling `x·2^e`: one product with 2^e per lane when every lane's e is
/// a normal exponent (what `scale_by_power_of_two` computes then), else lane by lane.
struct Scaling<V> {
    factor: Option<V>,
    exponents: [i64; MAX_LANES],
}

impl<V: Lanes> Scaling<V> {
    #[inline(always)]
    fn new<S: Simd<F64s = V>>(simd: S, exponents: [i64; MAX_LANES]) -> Self {
        let normal = exponents[..V::COUNT]
            .iter()
            .all(|e| (-1022..=1023).contains(e));
        let factor = if normal {
            Some(simd.load_with(|l| power_of_two(exponents[l])))
        } else {
            None
        };
        Self { factor, exponents }
    }

    #[inline(always)]
    fn apply<S: Simd<F64s = V>>(&self, simd: S, x: V) -> V {
        match self.factor {
            Some(factor) => x * factor,
            None => {
                let x = x.to_array();
                simd.load_with(|l| scale_by_power_of_two(x.as_ref()[l], self.exponents[l]))
            }
        }
    }
}

/// `f64::max(a, b)` per lane as compiled on x86-64: `b > a ? b : a`, and `b` where `a` is NaN.
#[inline(always)]
fn max_num<V: Lanes>(a: V, b: V) -> V {
    let larger = b.greater(a).select(b, a);
    a.greater_or_equal(a).select(larger, b)
}

/// `f64::min(a, b)` per lane as compiled on x86-64: `b < a ? b : a`, and `b` where `a` is NaN.
#[inline(always)]
fn min_num<V: Lanes>(a: V, b: V) -> V {
    let smaller = a.greater(b).select(b, a);
    a.greater_or_equal(a).select(smaller, b)
}

/// `values.fold(init, f64::max)`, or of the |values| with `absolute`.
#[inline(always)]
fn fold_max<V: Lanes>(values: &[V; 4], init: V, absolute: bool) -> V {
    let mut acc = init;
    for &x in values {
        acc = max_num(acc, if absolute { x.abs() } else { x });
    }
    acc
}

/// `values.fold(init, f64::min)`.
#[inline(always)]
fn fold_min<V: Lanes>(values: &[V; 4], init: V) -> V {
    let mut acc = init;
    for &x in values {
        acc = min_num(acc, x);
    }
    acc
}

/// The start of `Iterator::sum` over f64 (the sum of nothing), so that lane sums add from the
/// same value as the scalar ones.
fn sum_start() -> f64 {
    std::iter::empty::<f64>().sum()
}

/// Lane l of `x` into `values[metric][l]`.
#[inline(always)]
fn put<V: Lanes>(values: &mut [[f64; MAX_LANES]; Metric::ALL.len()], metric: Metric, x: V) {
    values[metric.index()][..V::COUNT].copy_from_slice(x.to_array().as_ref());
}

/// The bundles of up to [`Lanes::COUNT`] matrices, one per lane (the last matrix fills the lanes
/// of a short group; their results are dropped).
#[inline(always)]
fn bundle_lanes<S: Simd>(
    simd: S,
    matrices: &[ScaledMatrix],
    sigmas: &[[f64; 4]],
    distances: &[f64],
    birkhoff: bool,
    out: &mut [MatrixMetrics],
) {
    let count = matrices.len();
    let last = count - 1;
    let zero = simd.splat(0.0);
    let mut m = [zero; 16];
    for (k, entry) in m.iter_mut().enumerate() {
        *entry = simd.load_with(|l| matrices[l.min(last)].mantissa()[k]);
    }
    let mut exponents = [0i64; MAX_LANES];
    for (l, e) in exponents.iter_mut().enumerate().take(S::F64s::COUNT) {
        *e = matrices[l.min(last)].exponent();
    }
    let scaling = Scaling::new(simd, exponents);
    let start = simd.splat(sum_start());

    let mut rows = [zero; 4];
    let mut row_abs = [zero; 4];
    for i in 0..4 {
        let (mut sum, mut abs) = (start, start);
        for j in 0..4 {
            sum = sum + m[4 * i + j];
            abs = abs + m[4 * i + j].abs();
        }
        rows[i] = sum;
        row_abs[i] = abs;
    }
    let mut cols = [zero; 4];
    let mut col_abs = [zero; 4];
    for i in 0..4 {
        for j in 0..4 {
            cols[j] = cols[j] + m[4 * i + j];
            col_abs[j] = col_abs[j] + m[4 * i + j].abs();
        }
    }
    let amax_forward = fold_max(&rows, zero, true);
    let amax_backward = fold_max(&cols, zero, true);
    let inf_norm = fold_max(&row_abs, zero, false);
    let one_norm = fold_max(&col_abs, zero, false);
    let minus_one = simd.splat(-1.0);
    let mut squares = start;
    let mut negative = start;
    for &x in &m {
        squares = squares + x * x;
        // −x (|x| with the sign of x·(−1)) where x < 0, else +0, as `amax::negative_mass`.
        let minus_x = x.abs_with_sign_of_product(x, minus_one);
        negative = negative + zero.greater(x).select(minus_x, zero);
    }
    let frobenius = squares.sqrt();
    let one = simd.splat(1.0);
    let mut row_errors = [zero; 4];
    let mut col_errors = [zero; 4];
    for i in 0..4 {
        row_errors[i] = (scaling.apply(simd, rows[i]) - one).abs();
        col_errors[i] = (scaling.apply(simd, cols[i]) - one).abs();
    }
    let sigma1 = simd.load_with(|l| sigmas[l.min(last)][0]);
    let sigma2 = simd.load_with(|l| sigmas[l.min(last)][1]);
    let infinity = simd.splat(f64::INFINITY);
    let negative_infinity = simd.splat(f64::NEG_INFINITY);

    let mut values = [[0.0; MAX_LANES]; Metric::ALL.len()];
    let v = &mut values;
    put(v, Metric::AmaxForward, scaling.apply(simd, amax_forward));
    put(v, Metric::AmaxBackward, scaling.apply(simd, amax_backward));
    put(v, Metric::InfNorm, scaling.apply(simd, inf_norm));
    put(v, Metric::OneNorm, scaling.apply(simd, one_norm));
    put(v, Metric::SpectralNorm, scaling.apply(simd, sigma1));
    put(v, Metric::Sigma2, scaling.apply(simd, sigma2));
    for (l, x) in v[Metric::DistanceToAverage.index()].iter_mut().enumerate() {
        *x = distances[l.min(last)];
    }
    let row_min = fold_min(&rows, infinity);
    let row_max = fold_max(&rows, negative_infinity, false);
    let col_min = fold_min(&cols, infinity);
    let col_max = fold_max(&cols, negative_infinity, false);
    put(v, Metric::RowSumMin, scaling.apply(simd, row_min));
    put(v, Metric::RowSumMax, scaling.apply(simd, row_max));
    put(v, Metric::ColSumMin, scaling.apply(simd, col_min));
    put(v, Metric::ColSumMax, scaling.apply(simd, col_max));
    put(v, Metric::RowSumError, fold_max(&row_errors, zero, false));
    put(v, Metric::ColSumError, fold_max(&col_errors, zero, false));
    put(v, Metric::NegativeMass, scaling.apply(simd, negative));
    let larger = max_num(amax_forward, amax_backward);
    put(v, Metric::AmaxLarger, scaling.apply(simd, larger));
    let (identity, nearest) = structure_distances(simd, &m, &exponents, &scaling);
    put(v, Metric::IdentityDistance, identity);
    put(v, Metric::PermutationDistance, nearest);
    put(v, Metric::MixingEntropy, mixing_entropy(simd, &m, &rows));

    // Scalar per lane: logarithms, the Birkhoff distance, the rare structure paths.
    let frobenius = frobenius.to_array();
    let amax_forward = amax_forward.to_array();
    let amax_backward = amax_backward.to_array();
    let sigma1 = sigma1.to_array();
    let far = BIRKHOFF_FAR * 4f64.sqrt();
    for (l, bundle) in out.iter_mut().enumerate() {
        let p = &matrices[l];
        let mut lane = [0.0; Metric::ALL.len()];
        for (x, metric) in lane.iter_mut().zip(&values) {
            *x = metric[l];
        }
        let frobenius = p.scale_value(frobenius.as_ref()[l]);
        lane[Metric::BirkhoffDistance.index()] = if !birkhoff {
            f64::NAN
        } else if frobenius > far {
            frobenius
        } else {
            let mut plain = [0.0; 16];
            p.write_f64(&mut plain);
            birkhoff_distance(&plain, 4)
        };
        lane[Metric::Log10AmaxForward.index()] = p.log10_scaled(amax_forward.as_ref()[l]);
        lane[Metric::Log10AmaxBackward.index()] = p.log10_scaled(amax_backward.as_ref()[l]);
        lane[Metric::Log10SpectralNorm.index()] = p.log10_scaled(sigma1.as_ref()[l]);
        let (identity, nearest) = (
            lane[Metric::IdentityDistance.index()],
            lane[Metric::PermutationDistance.index()],
        );
        if identity.is_nan() || nearest.is_nan() {
            // The lanes left this matrix to the scalar function (see the module docs).
            let (identity, nearest) = structure::distances_scaled(p, 4);
            lane[Metric::IdentityDistance.index()] = identity;
            lane[Metric::PermutationDistance.index()] = nearest;
        }
        bundle.values = lane;
    }
}

/// (‖P − I‖_F, min_Π ‖P − Π‖_F) per lane, as `structure::distances_scaled`; NaN in both where
/// the lane needs the scalar function instead.
#[inline(always)]
fn structure_distances<S: Simd>(
    simd: S,
    m: &[S::F64s; 16],
    exponents: &[i64; MAX_LANES],
    scaling: &Scaling<S::F64s>,
) -> (S::F64s, S::F64s) {
    let width = S::F64s::COUNT;
    let zero = simd.splat(0.0);
    let start = simd.splat(sum_start());
    // The nearest permutation: the first within the tie tolerance of the largest diagonal sum.
    let mut sums = [start; 24];
    for (sum, pi) in sums.iter_mut().zip(&PERMUTATIONS_4) {
        for (i, &j) in pi.iter().enumerate() {
            *sum = *sum + m[4 * i + j as usize];
        }
    }
    let mut best = simd.splat(f64::NEG_INFINITY);
    for &sum in &sums {
        best = max_num(best, sum);
    }
    let mut largest = zero;
    for &x in m {
        largest = max_num(largest, x.abs());
    }
    let tolerance = simd.splat(TIE_ULPS * 4.0 * f64::EPSILON) * largest;
    let mut chosen = simd.splat(24.0);
    let mut found = zero;
    for (k, &sum) in sums.iter().enumerate() {
        let within = tolerance.greater_or_equal(best - sum);
        let first = found.select(zero, within);
        chosen = first.select(simd.splat(k as f64), chosen);
        found = found.or(within);
    }
    let chosen = chosen.to_array();
    let mut permutations = [None; MAX_LANES];
    for (l, permutation) in permutations.iter_mut().enumerate().take(width) {
        let index = chosen.as_ref()[l];
        // Without a finite input no sum is within the tolerance: the scalar function decides.
        if index < 24.0 {
            *permutation = Some(PERMUTATIONS_4[index as usize]);
        }
    }
    let mut units = [0.0; MAX_LANES];
    for (l, unit) in units.iter_mut().enumerate().take(width) {
        *unit = scale_by_power_of_two(1.0, -exponents[l]);
    }
    let unit = simd.load_with(|l| units[l]);
    let mut diffs = [zero; 16];
    for (k, d) in diffs.iter_mut().enumerate() {
        // M − 0 is M, bit for bit.
        *d = if k.is_multiple_of(5) {
            m[k] - unit
        } else {
            m[k] - zero
        };
    }
    let identity = frobenius_lanes(simd, &diffs, scaling);
    let identity_everywhere = permutations[..width]
        .iter()
        .all(|p| *p == Some([0, 1, 2, 3]));
    let nearest = if identity_everywhere {
        identity
    } else {
        for (k, d) in diffs.iter_mut().enumerate() {
            let on = simd.load_with(|l| match permutations[l] {
                Some(pi) if usize::from(pi[k / 4]) == k % 4 => units[l],
                _ => 0.0,
            });
            *d = m[k] - on;
        }
        frobenius_lanes(simd, &diffs, scaling)
    };
    let scalar = simd.load_with(|l| {
        let needs = exponents[l] < TINY_EXPONENT || permutations[l].is_none();
        if needs { 1.0 } else { 0.0 }
    });
    let needs = scalar.greater(zero);
    if needs.bitmask() == 0 {
        return (identity, nearest);
    }
    let nan = simd.splat(f64::NAN);
    (needs.select(nan, identity), needs.select(nan, nearest))
}

/// `2^e·‖D‖_F` per lane from the differences D = M − 2^−e·Π, as `frobenius_norm` computes it
/// (largest |D_k| → exact rescaling → √Σ squares → scaled back) followed by the scaling by 2^e;
/// NaN where a lane needs the scalar function (a NaN or infinite difference, or a rescaling
/// exponent out of the normal range).
#[inline(always)]
fn frobenius_lanes<S: Simd>(simd: S, diffs: &[S::F64s; 16], scaling: &Scaling<S::F64s>) -> S::F64s {
    let width = S::F64s::COUNT;
    let mut largest = simd.splat(0.0);
    let mut number = simd.splat(0.0).greater_or_equal(simd.splat(0.0));
    for d in diffs {
        let v = d.abs();
        number = number.and(v.greater_or_equal(v));
        largest = max_num(largest, v);
    }
    let largest_lanes = largest.to_array();
    let number = number.bitmask();
    let mut factors = [1.0; MAX_LANES];
    let mut shifts = [0i64; MAX_LANES];
    let mut special = [false; MAX_LANES];
    for l in 0..width {
        let x = largest_lanes.as_ref()[l];
        if number & (1 << l) == 0 || x == 0.0 || x.is_infinite() {
            special[l] = true;
            continue;
        }
        let shift = binary_exponent(x);
        if (-1022..=1023).contains(&-shift) {
            factors[l] = power_of_two(-shift);
            shifts[l] = shift;
        } else {
            special[l] = true;
        }
    }
    let factor = simd.load_with(|l| factors[l]);
    let mut sum = simd.splat(sum_start());
    for &d in diffs {
        let x = d * factor;
        sum = sum + x * x;
    }
    let root = sum.sqrt().to_array();
    let norm = simd.load_with(|l| scale_by_power_of_two(root.as_ref()[l], shifts[l]));
    let scaled = scaling.apply(simd, norm).to_array();
    // Zero or infinite largest: frobenius_norm returns it, scaled by 2^e like any norm.
    simd.load_with(|l| {
        let x = largest_lanes.as_ref()[l];
        if !special[l] {
            scaled.as_ref()[l]
        } else if number & (1 << l) != 0 && (x == 0.0 || x.is_infinite()) {
            scale_by_power_of_two(x, scaling.exponents[l])
        } else {
            f64::NAN
        }
    })
}

/// The mixing entropy per lane (`structure::entropy_of`): NaN where undefined (a negative or
/// non-finite entry, a row summing to zero); `rows` are the row sums of `m`.
#[inline(always)]
fn mixing_entropy<S: Simd>(simd: S, m: &[S::F64s; 16], rows: &[S::F64s; 4]) -> S::F64s {
    let width = S::F64s::COUNT;
    let zero = simd.splat(0.0);
    let infinity = simd.splat(f64::INFINITY);
    // Defined: every entry finite (|x| < ∞, false for NaN) and ≥ 0, no row summing to 0.
    let mut defined = zero.greater_or_equal(zero);
    for &x in m {
        defined = defined
            .and(infinity.greater(x.abs()))
            .and(x.greater_or_equal(zero));
    }
    for &sum in rows {
        defined = defined.and(sum.greater(zero).or(zero.greater(sum)));
    }
    let defined = defined.bitmask();
    let nan = f64::NAN;
    if defined == 0 {
        return simd.splat(nan);
    }
    let start = sum_start();
    let mut total = [0.0; MAX_LANES];
    for i in 0..4 {
        let mut x = [[0.0; MAX_LANES]; 4];
        let mut q = [[0.0; MAX_LANES]; 4];
        for j in 0..4 {
            x[j][..width].copy_from_slice(m[4 * i + j].to_array().as_ref());
            q[j][..width].copy_from_slice((m[4 * i + j] / rows[i]).to_array().as_ref());
        }
        for (l, total) in total.iter_mut().enumerate().take(width) {
            if defined & (1 << l) == 0 {
                continue;
            }
            let mut entropy = start;
            for j in 0..4 {
                if x[j][l] > 0.0 {
                    let q = q[j][l];
                    entropy += -q * q.ln();
                }
            }
            *total += entropy;
        }
    }
    let normaliser = 4.0 * 4f64.ln();
    simd.load_with(|l| {
        if defined & (1 << l) != 0 {
            total[l] / normaliser
        } else {
            nan
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::prefix_composites;
    use crate::metrics::{shifted_by_average, singular_values, spectral_norm};

    /// 4×4 matrices of every kind the bundle meets: mHC-like (positive, near doubly
    /// stochastic), HC-like (negative entries), permutations exact and perturbed, J/4, zero rows
    /// and signed zeros (ties of min and max between ±0), huge and tiny scales.
    fn assorted() -> Vec<ScaledMatrix> {
        let mut matrices: Vec<Vec<f64>> = Vec::new();
        let noise = |k: usize, i: usize| ((k * 16 + i) as f64 * 0.618_033_988_7).fract() - 0.5;
        for (k, pi) in PERMUTATIONS_4.iter().enumerate() {
            let diagonal = |i: usize| if i.is_multiple_of(5) { 0.7 } else { 0.1 };
            matrices.push((0..16).map(|i| diagonal(i) + 0.05 * noise(k, i)).collect());
            matrices.push((0..16).map(|i| diagonal(i) + 0.6 * noise(k, i)).collect());
            // A routing other than the identity, exact and with noise.
            let routing: Vec<f64> = (0..16)
                .map(|i| {
                    if usize::from(pi[i / 4]) == i % 4 {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            matrices.push(routing.clone());
            matrices.push(
                routing
                    .iter()
                    .enumerate()
                    .map(|(i, x)| x + 0.01 * noise(k, i).abs())
                    .collect(),
            );
        }
        matrices.push(vec![0.25; 16]);
        matrices.push(vec![0.0; 16]);
        matrices.push(vec![-0.0; 16]);
        let mut signed = vec![0.5; 16];
        signed[..4].fill(-0.0);
        signed[4..8].fill(0.0);
        signed[9] = -0.0;
        matrices.push(signed);
        let mut cancel = vec![0.3; 16];
        cancel[0] = -0.9;
        cancel[4] = -0.3;
        cancel[8] = -0.9;
        matrices.push(cancel);
        let mut out: Vec<ScaledMatrix> = matrices
            .into_iter()
            .map(|m| ScaledMatrix::new(4, m))
            .collect();
        // Composites far beyond f64's range both ways, and tiny ones (e < −60).
        let big = [
            10.0, 0.5, 0.25, 0.0, 0.5, 9.0, 0.0, 0.25, 0.25, 0.0, 11.0, 0.5, 0.0, 0.25, 0.5, 10.0,
        ];
        let small = big.map(|x| x * 0.01);
        for (layers, count) in [
            (&big, 400),
            (&big, 300),
            (&small, 40),
            (&small, 200),
            (&small, 400),
        ] {
            let slices: Vec<&[f64]> = vec![&layers[..]; count];
            out.push(prefix_composites(&slices, 4).pop().unwrap());
        }
        out
    }

    /// σ of each mantissa and ‖P − J/4‖₂, as `of_many_into` hands them to the lanes.
    fn inputs(matrices: &[ScaledMatrix]) -> (Vec<[f64; 4]>, Vec<f64>) {
        let sigmas = matrices
            .iter()
            .map(|p| singular_values(p.mantissa(), 4).try_into().unwrap())
            .collect();
        let distances = matrices
            .iter()
            .map(|p| {
                let mut shifted = [0.0; 16];
                let exponent = shifted_by_average(p, &mut shifted);
                scale_by_power_of_two(spectral_norm(&shifted, 4), exponent)
            })
            .collect();
        (sigmas, distances)
    }

    struct Run<'a>(&'a [ScaledMatrix], &'a [[f64; 4]], &'a [f64]);

    impl Kernel for Run<'_> {
        type Output = Vec<u64>;
        #[inline(always)]
        fn run<S: Simd>(self, simd: S) -> Vec<u64> {
            let empty = MatrixMetrics {
                values: [0.0; Metric::ALL.len()],
            };
            let mut out = vec![empty; self.0.len()];
            Bundle4 {
                matrices: self.0,
                sigmas: self.1,
                distances: self.2,
                birkhoff: true,
                out: &mut out,
            }
            .run(simd);
            out.iter()
                .flat_map(|bundle| bundle.values().iter().map(|x| x.to_bits()))
                .collect()
        }
    }

    #[test]
    fn every_lane_type_gives_the_scalar_bundle_bit_for_bit() {
        let matrices = assorted();
        let (sigmas, distances) = inputs(&matrices);
        let scalar: Vec<u64> = matrices
            .iter()
            .zip(&sigmas)
            .zip(&distances)
            .flat_map(|((p, sigma), &distance)| {
                MatrixMetrics::assemble(p, sigma, distance, true)
                    .values()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect::<Vec<_>>()
            })
            .collect();
        let paths = lanes::on_every_path(|| Run(&matrices, &sigmas, &distances));
        for (path, bits) in paths {
            for (k, (lane, expected)) in bits
                .chunks(Metric::ALL.len())
                .zip(scalar.chunks(Metric::ALL.len()))
                .enumerate()
            {
                for (metric, (a, b)) in Metric::ALL.iter().zip(lane.iter().zip(expected)) {
                    assert_eq!(
                        a,
                        b,
                        "{path}, matrix {k}, {metric:?}: {} vs {}",
                        f64::from_bits(*a),
                        f64::from_bits(*b)
                    );
                }
            }
        }
        // The batch entry point, short last group included.
        let mut out = Vec::new();
        bundle_4_many(
            &matrices[..37],
            &sigmas[..37],
            &distances[..37],
            true,
            &mut out,
        );
        let batch: Vec<u64> = out
            .iter()
            .flat_map(|bundle| bundle.values().iter().map(|x| x.to_bits()))
            .collect();
        assert_eq!(batch, scalar[..37 * Metric::ALL.len()]);
    }
}
