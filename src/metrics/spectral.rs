//! Singular values of small dense matrices by one-sided (Hestenes) Jacobi rotations.
//!
//! One-sided Jacobi orthogonalises the columns of A by plane rotations; the column norms of the
//! result are the singular values. Rotations act on A itself, never on AᵀA, so a rotation
//! between a large and a small column perturbs the small one relative to its own size: the small
//! σ₂ of nearly rank-one HC composites keeps its digits (squaring into AᵀA would lose half).
//!
//! - The matrix is first scaled by a power of two (exact) so that its largest entry lies in
//!   [1, 2): no overflow or underflow in the squared column norms.
//! - A pair of columns is rotated when `|aᵀb| > n·ε·‖a‖‖b‖` (the accuracy of the computed dot
//!   product; LAPACK's `dgesvj` uses the same threshold), so the last sweep only checks. Columns
//!   whose norm is below 2⁻²⁰⁰ of the largest entry are left alone: they are zero to any
//!   precision the input carries, and rotating rounding noise against them would never
//!   converge.
//! - The rotation comes from α = ‖a‖², β = ‖b‖², γ = aᵀb as `h = √((β−α)² + 4γ²)`,
//!   `c = (|β−α| + h)·w`, `s = ±2γ·w` with `w = 1/√(2h(|β−α| + h))`: two square roots and one
//!   division; for small angles (|2γ| < 2⁻¹³|β−α|) a series in `x = 2γ/(β−α)` needs only the
//!   division. Both are orthogonal to rounding, which is all that the accuracy of the singular
//!   values depends on.
//! - Column norms are cached and recomputed from the columns after each rotation.
//!
//! n = 4 (every published model) has a batched path, [`singular_values_4_many`]: 24 matrices
//! in flight in SIMD lanes (AVX when the CPU has it, checked at run time; otherwise
//! `wide::f64x4`), with the six pairs of a sweep in three rounds of two disjoint pairs and a
//! lane refilled as soon as its matrix converges. It always uses the two-square-root formula
//! (no series branch), so every lane runs the same instructions; the answers do not depend on
//! the batch, the lane or the CPU. n ≤ 8 works on the stack; only larger n allocate. The public
//! functions other than [`singular_values`] (which returns a `Vec`) allocate nothing for n ≤ 8.

// Comparisons are written `!(x > y)` on purpose: a NaN must take the skip/failure branch.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use crate::compose::{binary_exponent, power_of_two};
#[cfg(target_arch = "x86_64")]
use crate::lanes::Avx;
use crate::lanes::Lanes;

/// Largest n whose work buffers live on the stack.
const STACK_N: usize = 8;

/// Column squared norms below this (after scaling the largest entry into [1, 2)) are not rotated.
const NEGLIGIBLE: f64 = 3.872_591_914_849_318_3e-121; // 2^-400

/// Above |2γ| < SMALL_ANGLE·|β − α| the rotation uses the series (see the module docs).
const SMALL_ANGLE: f64 = 1.220_703_125e-4; // 2^-13

/// Sweeps before giving up (convergence takes 3 to 8 for n ≤ 8).
const MAX_SWEEPS: usize = 60;

/// Singular values of the row-major n×n matrix `p`, largest first.
pub fn singular_values(p: &[f64], n: usize) -> Vec<f64> {
    let mut sigma = vec![0.0; n];
    singular_values_into(p, n, &mut sigma);
    sigma
}

/// Singular values of the row-major n×n matrix `p` into `out[..n]`, largest first. Allocates
/// nothing for n ≤ 8. Non-finite input gives NaN.
pub fn singular_values_into(p: &[f64], n: usize, out: &mut [f64]) {
    assert_eq!(p.len(), n * n, "singular_values: expected an n×n matrix");
    let out = &mut out[..n];
    if n == 4 {
        out.copy_from_slice(&singular_values_4(p));
        return;
    }
    let Some((factor, unscale)) = prescale(p) else {
        let zero = p.iter().all(|x| *x == 0.0);
        out.fill(if zero { 0.0 } else { f64::NAN });
        return;
    };
    if n <= STACK_N {
        let mut columns = [0.0; STACK_N * STACK_N];
        let mut norms = [0.0; STACK_N];
        jacobi(p, n, factor, &mut columns[..n * n], &mut norms[..n]);
        finish(&norms[..n], unscale, out);
    } else {
        let mut columns = vec![0.0; n * n];
        let mut norms = vec![0.0; n];
        jacobi(p, n, factor, &mut columns, &mut norms);
        finish(&norms, unscale, out);
    }
}

/// Spectral norm σ₁(P) = ‖P‖₂: the worst Euclidean gain. Exactly 1 for doubly stochastic P.
pub fn spectral_norm(p: &[f64], n: usize) -> f64 {
    with_singular_values(p, n, |s| s.first().copied().unwrap_or(0.0))
}

/// Second singular value σ₂(P) (0 for n = 1). For doubly stochastic P it equals ‖P − J/n‖₂.
pub fn sigma2(p: &[f64], n: usize) -> f64 {
    with_singular_values(p, n, |s| s.get(1).copied().unwrap_or(0.0))
}

/// ‖P − J/n‖₂: distance to the averaging matrix (stream collapse when it tends to 0).
pub fn distance_to_average(p: &[f64], n: usize) -> f64 {
    assert_eq!(
        p.len(),
        n * n,
        "distance_to_average: expected an n×n matrix"
    );
    let average = 1.0 / n as f64;
    if n <= STACK_N {
        let mut shifted = [0.0; STACK_N * STACK_N];
        for (s, x) in shifted.iter_mut().zip(p) {
            *s = x - average;
        }
        spectral_norm(&shifted[..n * n], n)
    } else {
        let shifted: Vec<f64> = p.iter().map(|x| x - average).collect();
        spectral_norm(&shifted, n)
    }
}

/// Runs `f` on the singular values, on the stack for n ≤ 8.
fn with_singular_values(p: &[f64], n: usize, f: impl FnOnce(&[f64]) -> f64) -> f64 {
    if n <= STACK_N {
        let mut sigma = [0.0; STACK_N];
        singular_values_into(p, n, &mut sigma);
        f(&sigma[..n])
    } else {
        f(&singular_values(p, n))
    }
}

/// The exact power-of-two factor that brings max |p_ij| into [1, 2), and its inverse (clamped so
/// that both are normal numbers). None for an all-zero or non-finite matrix.
fn prescale(p: &[f64]) -> Option<(f64, f64)> {
    let max = p.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() || p.iter().any(|x| x.is_nan()) {
        return None;
    }
    // ⌊log2 max⌋, clamped so that 2^-e and 2^e are normal numbers.
    let exponent = binary_exponent(max).clamp(-1000, 1000);
    Some((power_of_two(-exponent), power_of_two(exponent)))
}

/// Sorted singular values from the squared column norms.
fn finish(norms: &[f64], unscale: f64, out: &mut [f64]) {
    for (s, &norm) in out.iter_mut().zip(norms) {
        *s = norm.sqrt() * unscale;
    }
    out.sort_unstable_by(|a, b| b.total_cmp(a));
}

/// The rotation (c, s) that orthogonalises columns with squared norms α, β and dot product γ
/// (see the module docs).
#[inline(always)]
fn rotation(alpha: f64, beta: f64, gamma: f64) -> (f64, f64) {
    let d = beta - alpha;
    let two_gamma = 2.0 * gamma;
    if two_gamma.abs() < SMALL_ANGLE * d.abs() {
        let x = two_gamma / d;
        let t = 0.5 * x - 0.125 * x * x * x;
        let t2 = t * t;
        let c = 1.0 - 0.5 * t2 + 0.375 * t2 * t2;
        return (c, t * c);
    }
    let h = (d * d + two_gamma * two_gamma).sqrt();
    let ad = d.abs() + h;
    let w = 1.0 / ((h + h) * ad).sqrt();
    (ad * w, with_sign_of_product(two_gamma, gamma, d) * w)
}

/// |x| with the sign of a·b.
#[inline(always)]
fn with_sign_of_product(x: f64, a: f64, b: f64) -> f64 {
    const SIGN: u64 = 1 << 63;
    f64::from_bits((x.to_bits() & !SIGN) | ((a.to_bits() ^ b.to_bits()) & SIGN))
}

/// One-sided Jacobi on the n×n matrix `p·factor`, stored column-major in `columns`; the squared
/// column norms end in `norms`.
fn jacobi(p: &[f64], n: usize, factor: f64, columns: &mut [f64], norms: &mut [f64]) {
    for i in 0..n {
        for j in 0..n {
            columns[j * n + i] = p[i * n + j] * factor;
        }
    }
    for (j, norm) in norms.iter_mut().enumerate() {
        *norm = dot(&columns[j * n..(j + 1) * n], &columns[j * n..(j + 1) * n]);
    }
    let tolerance = n as f64 * f64::EPSILON;
    let tolerance2 = tolerance * tolerance;
    for _ in 0..MAX_SWEEPS {
        let mut rotated = false;
        for j in 0..n {
            for k in (j + 1)..n {
                let (alpha, beta) = (norms[j], norms[k]);
                if alpha < NEGLIGIBLE || beta < NEGLIGIBLE {
                    continue;
                }
                let (left, right) = columns.split_at_mut(k * n);
                let a = &mut left[j * n..(j + 1) * n];
                let b = &mut right[..n];
                let gamma = dot(a, b);
                if !(gamma * gamma > tolerance2 * alpha * beta) {
                    continue;
                }
                rotated = true;
                let (c, s) = rotation(alpha, beta, gamma);
                for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                    let (xa, yb) = (*x, *y);
                    *x = c * xa - s * yb;
                    *y = s * xa + c * yb;
                }
                norms[j] = dot(a, a);
                norms[k] = dot(b, b);
            }
        }
        if !rotated {
            break;
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Singular values of one 4×4 matrix, largest first: [`singular_values_4_many`] on one matrix.
fn singular_values_4(p: &[f64]) -> [f64; 4] {
    let mut matrix = [0.0; 16];
    matrix.copy_from_slice(&p[..16]);
    let mut out = [[0.0; 4]];
    singular_values_4_many(&[matrix], &mut out);
    out[0]
}

/// Singular values of many row-major 4×4 matrices, each largest first: `out[i]` for
/// `matrices[i]`. Bit-identical to [`singular_values`] on each matrix, whatever the batch and
/// whatever the CPU (see `crate::lanes`). Non-finite input gives NaN, the zero matrix zeros.
///
/// The kernel keeps 24 matrices in flight in SIMD lanes (six groups of four, so six
/// independent dependency chains). All lanes run the same rotation rounds; a lane whose matrix
/// finished a sweep without rotating is emptied and refilled with the next matrix, so no lane
/// idles while others converge. With AVX (detected at run time) a group is one register; without
/// it, `wide::f64x4` (two SSE2 registers on x86-64, NEON on aarch64).
///
/// # Panics
/// If `out` is shorter than `matrices`.
pub fn singular_values_4_many(matrices: &[[f64; 16]], out: &mut [[f64; 4]]) {
    assert!(
        out.len() >= matrices.len(),
        "singular_values_4_many: output too short"
    );
    // Up to four matrices fill one lane group: the other five would only cost time (a lone
    // matrix takes 0.7 µs this way, 1.3 µs in the full kernel).
    let one_group = matrices.len() <= 4;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX (checked just above).
        unsafe {
            if one_group {
                jacobi_4_avx_one_group(matrices, out);
            } else {
                jacobi_4_avx(matrices, out);
            }
        }
        return;
    }
    if one_group {
        jacobi_4_lanes::<wide::f64x4, 1>(matrices, out);
    } else {
        jacobi_4_lanes::<wide::f64x4, LANE_GROUPS>(matrices, out);
    }
}

/// [`jacobi_4_lanes`] with AVX registers.
///
/// # Safety
/// The CPU must support AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn jacobi_4_avx(matrices: &[[f64; 16]], out: &mut [[f64; 4]]) {
    jacobi_4_lanes::<Avx, LANE_GROUPS>(matrices, out);
}

/// [`jacobi_4_lanes`] with AVX registers and one lane group (kept out of [`jacobi_4_avx`], whose
/// code stays that of the full kernel).
///
/// # Safety
/// The CPU must support AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn jacobi_4_avx_one_group(matrices: &[[f64; 16]], out: &mut [[f64; 4]]) {
    jacobi_4_lanes::<Avx, 1>(matrices, out);
}

/// Groups of four lanes in flight: independent dependency chains that hide the latency of the
/// √, √, ÷ chain of each rotation (gain, S = 1000, one thread: 2 groups 655 ms, 4 → 645, 6 → 635,
/// 8 → 640).
const LANE_GROUPS: usize = 6;

/// Matrices in flight.
const IN_FLIGHT: usize = 4 * LANE_GROUPS;

/// The column pairs of one sweep, in three rounds of two disjoint pairs.
const SWEEP_PAIRS: [(usize, usize); 6] = [(0, 2), (1, 3), (0, 1), (2, 3), (0, 3), (1, 2)];

/// The matrices in flight: slot `g·4 + m` is lane m of group g.
struct InFlight<V> {
    /// `columns[g][j][i]`: entry (i, j) of the scaled matrix, transformed by the rotations.
    columns: [[[V; 4]; 4]; LANE_GROUPS],
    /// Squared column norms, recomputed from the columns after each rotation.
    norms: [[V; 4]; LANE_GROUPS],
    /// Mask of the lanes rotated during the current sweep.
    rotated: [V; LANE_GROUPS],
    /// The power of two that undoes each slot's prescaling.
    unscale: [f64; IN_FLIGHT],
    /// Index of each slot's matrix in the input.
    matrix: [usize; IN_FLIGHT],
    /// Sweeps done on each slot's matrix.
    sweeps: [usize; IN_FLIGHT],
    /// Whether a slot holds a matrix.
    live: [bool; IN_FLIGHT],
}

/// One-sided Jacobi on every 4×4 matrix of `matrices` (see [`singular_values_4_many`]), with
/// the first `GROUPS` lane groups in use (at most [`LANE_GROUPS`]).
#[inline(always)]
fn jacobi_4_lanes<V: Lanes, const GROUPS: usize>(matrices: &[[f64; 16]], out: &mut [[f64; 4]]) {
    let zero = V::splat(0.0);
    let mut state = InFlight {
        columns: [[[zero; 4]; 4]; LANE_GROUPS],
        norms: [[zero; 4]; LANE_GROUPS],
        rotated: [zero; LANE_GROUPS],
        unscale: [1.0; IN_FLIGHT],
        matrix: [0; IN_FLIGHT],
        sweeps: [0; IN_FLIGHT],
        live: [false; IN_FLIGHT],
    };
    let mut next = 0;
    for slot in 0..4 * GROUPS {
        load_next(&mut state, slot, matrices, &mut next, out);
    }
    while state.live.iter().any(|&live| live) {
        for (j, k) in SWEEP_PAIRS {
            rotate_pair::<V, GROUPS>(&mut state, j, k);
        }
        let mut rotated = 0;
        for (group, mask) in state.rotated.iter_mut().enumerate() {
            rotated |= mask.bitmask() << (4 * group);
            *mask = zero;
        }
        for slot in 0..4 * GROUPS {
            if !state.live[slot] {
                continue;
            }
            state.sweeps[slot] += 1;
            if rotated & (1 << slot) == 0 || state.sweeps[slot] >= MAX_SWEEPS {
                let (group, lane) = (slot / 4, slot % 4);
                let mut sigma = [0.0; 4];
                for (s, norm) in sigma.iter_mut().zip(&state.norms[group]) {
                    *s = norm.to_array()[lane].sqrt() * state.unscale[slot];
                }
                // Sorting network, largest first.
                for (a, b) in [(0, 1), (2, 3), (0, 2), (1, 3), (1, 2)] {
                    if sigma[a] < sigma[b] {
                        sigma.swap(a, b);
                    }
                }
                out[state.matrix[slot]] = sigma;
                load_next(&mut state, slot, matrices, &mut next, out);
            }
        }
    }
}

/// Loads the next matrix that needs rotations into `slot` (answering zero and non-finite
/// matrices on the way), or empties the slot when none is left.
#[inline(always)]
fn load_next<V: Lanes>(
    state: &mut InFlight<V>,
    slot: usize,
    matrices: &[[f64; 16]],
    next: &mut usize,
    out: &mut [[f64; 4]],
) {
    let (group, lane) = (slot / 4, slot % 4);
    while let Some(p) = matrices.get(*next) {
        let index = *next;
        *next += 1;
        let Some((factor, unscale)) = prescale(p) else {
            let zero = p.iter().all(|x| *x == 0.0);
            out[index] = [if zero { 0.0 } else { f64::NAN }; 4];
            continue;
        };
        for (j, (column, norm)) in state.columns[group]
            .iter_mut()
            .zip(&mut state.norms[group])
            .enumerate()
        {
            let x: [f64; 4] = std::array::from_fn(|i| p[i * 4 + j] * factor);
            for (entry, value) in column.iter_mut().zip(x) {
                entry.lanes_mut()[lane] = value;
            }
            norm.lanes_mut()[lane] = (x[0] * x[0] + x[1] * x[1]) + (x[2] * x[2] + x[3] * x[3]);
        }
        state.unscale[slot] = unscale;
        state.matrix[slot] = index;
        state.sweeps[slot] = 0;
        state.live[slot] = true;
        return;
    }
    // Nothing left: zero columns are never rotated.
    for (column, norm) in state.columns[group].iter_mut().zip(&mut state.norms[group]) {
        for entry in column.iter_mut() {
            entry.lanes_mut()[lane] = 0.0;
        }
        norm.lanes_mut()[lane] = 0.0;
    }
    state.live[slot] = false;
}

/// Rotates columns j and k in every lane whose pair is not orthogonal to the tolerance (see the
/// module docs); the other lanes get the identity rotation, which leaves them unchanged.
#[inline(always)]
fn rotate_pair<V: Lanes, const GROUPS: usize>(state: &mut InFlight<V>, j: usize, k: usize) {
    const TOLERANCE2: f64 = (4.0 * f64::EPSILON) * (4.0 * f64::EPSILON);
    let negligible = V::splat(NEGLIGIBLE);
    let mut gamma = [V::splat(0.0); LANE_GROUPS];
    let mut active = [V::splat(0.0); LANE_GROUPS];
    let mut any = 0;
    for group in 0..GROUPS {
        let (a, b) = (&state.columns[group][j], &state.columns[group][k]);
        let (alpha, beta) = (state.norms[group][j], state.norms[group][k]);
        gamma[group] = (a[0] * b[0] + a[1] * b[1]) + (a[2] * b[2] + a[3] * b[3]);
        active[group] = (gamma[group] * gamma[group])
            .greater(V::splat(TOLERANCE2) * alpha * beta)
            .and(alpha.greater_or_equal(negligible))
            .and(beta.greater_or_equal(negligible));
        any |= active[group].bitmask();
    }
    if any == 0 {
        return;
    }
    // In stages over all groups, so that the groups' square roots and divisions (long
    // latencies, one chain per group) are in flight together instead of one group at a time.
    let one = V::splat(1.0);
    let mut h = [one; LANE_GROUPS];
    let mut ad = [one; LANE_GROUPS];
    let mut d = [one; LANE_GROUPS];
    for group in 0..GROUPS {
        let (alpha, beta) = (state.norms[group][j], state.norms[group][k]);
        d[group] = beta - alpha;
        let two_gamma = gamma[group] + gamma[group];
        h[group] = (d[group] * d[group] + two_gamma * two_gamma).sqrt();
        ad[group] = d[group].abs() + h[group];
    }
    let mut w = [one; LANE_GROUPS];
    for group in 0..GROUPS {
        w[group] = one / ((h[group] + h[group]) * ad[group]).sqrt();
    }
    for group in 0..GROUPS {
        if active[group].bitmask() == 0 {
            // The identity rotation everywhere in this group: nothing to do.
            continue;
        }
        let (a, b) = (state.columns[group][j], state.columns[group][k]);
        let gamma = gamma[group];
        let two_gamma = gamma + gamma;
        let c = active[group].select(ad[group] * w[group], one);
        let s = active[group].select(
            two_gamma.abs_with_sign_of_product(gamma, d[group]) * w[group],
            V::splat(0.0),
        );
        let x: [V; 4] = std::array::from_fn(|i| c * a[i] - s * b[i]);
        let y: [V; 4] = std::array::from_fn(|i| s * a[i] + c * b[i]);
        state.norms[group][j] = (x[0] * x[0] + x[1] * x[1]) + (x[2] * x[2] + x[3] * x[3]);
        state.norms[group][k] = (y[0] * y[0] + y[1] * y[1]) + (y[2] * y[2] + y[3] * y[3]);
        state.columns[group][j] = x;
        state.columns[group][k] = y;
        state.rotated[group] = state.rotated[group].or(active[group]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagonal_and_permutation() {
        let p = [3.0, 0.0, 0.0, 0.0, -5.0, 0.0, 0.0, 0.0, 0.5];
        assert_eq!(singular_values(&p, 3), vec![5.0, 3.0, 0.5]);
        let perm = [0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        let s = singular_values(&perm, 3);
        assert!(s.iter().all(|x| (x - 1.0).abs() < 1e-15));
    }

    #[test]
    fn two_by_two_closed_form() {
        // [[1, 2], [3, 4]]: AᵀA has trace 30 and determinant 4, so σ² = (30 ± √884)/2.
        let s = singular_values(&[1.0, 2.0, 3.0, 4.0], 2);
        let root = 884f64.sqrt();
        assert!((s[0] - ((30.0 + root) / 2.0).sqrt()).abs() < 1e-14);
        assert!((s[1] - ((30.0 - root) / 2.0).sqrt()).abs() < 1e-14);
    }

    #[test]
    fn averaging_matrix_is_rank_one() {
        let j = [0.25; 16];
        let s = singular_values(&j, 4);
        assert!((s[0] - 1.0).abs() < 1e-15 && s[1] < 1e-15);
        assert!(distance_to_average(&j, 4) < 1e-15);
    }

    /// 4×4 test matrices of every kind the batch must handle: dense, nearly rank one, huge,
    /// tiny, zero, NaN, ±inf.
    fn assorted_4x4() -> Vec<[f64; 16]> {
        let mut matrices: Vec<[f64; 16]> = (0..61)
            .map(|k| std::array::from_fn(|i| ((k * 16 + i) as f64 * 0.618_033_988_7).fract() - 0.5))
            .collect();
        let rank_one: [f64; 16] =
            std::array::from_fn(|i| 1e4 * (1.0 + (i / 4) as f64) * (2.0 + (i % 4) as f64));
        let mut nearly = rank_one;
        nearly[5] += 1e-3;
        matrices.extend([rank_one, nearly, [0.0; 16]]);
        let mut nan = matrices[0];
        nan[7] = f64::NAN;
        let mut infinite = matrices[1];
        infinite[2] = f64::NEG_INFINITY;
        let huge = matrices[2].map(|x| x * 1e300);
        let tiny = matrices[3].map(|x| x * 1e-310);
        matrices.extend([nan, infinite, huge, tiny]);
        matrices
    }

    #[test]
    fn batch_equals_one_at_a_time_and_every_lane_type() {
        let matrices = assorted_4x4();
        let mut batch = vec![[0.0; 4]; matrices.len()];
        singular_values_4_many(&matrices, &mut batch);
        let mut portable = vec![[0.0; 4]; matrices.len()];
        jacobi_4_lanes::<wide::f64x4, LANE_GROUPS>(&matrices, &mut portable);
        for (k, matrix) in matrices.iter().enumerate() {
            let alone = singular_values(matrix, 4);
            let bits = |s: &[f64]| s.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&alone), bits(&batch[k]), "matrix {k}");
            assert_eq!(bits(&portable[k]), bits(&batch[k]), "matrix {k}");
        }
        // The special cases answer as the general path does.
        assert_eq!(batch[63], [0.0; 4]);
        assert!(batch[64].iter().chain(&batch[65]).all(|x| x.is_nan()));
        assert!(batch[66][0] > 1e299 && batch[67][0] > 0.0);
    }

    #[test]
    fn batch_agrees_with_the_general_path() {
        // The general one-sided Jacobi (n ≠ 4 code) on the same matrices: the same values to
        // rounding (different rotation formulas, different orders).
        for matrix in assorted_4x4()
            .iter()
            .filter(|m| m.iter().all(|x| x.is_finite()))
        {
            let batch = singular_values(matrix, 4);
            let mut general = [0.0; 4];
            match prescale(matrix) {
                Some((factor, unscale)) => {
                    let mut columns = [0.0; 16];
                    let mut norms = [0.0; 4];
                    jacobi(matrix, 4, factor, &mut columns, &mut norms);
                    finish(&norms, unscale, &mut general);
                }
                None => continue,
            }
            for (b, g) in batch.iter().zip(&general) {
                assert!(
                    (b - g).abs() <= 1e-14 * batch[0],
                    "{batch:?} vs {general:?}"
                );
            }
        }
    }

    #[test]
    fn nearly_rank_one_keeps_small_singular_value() {
        // u vᵀ·1e4 + 1e-3·I (2×2): σ₂ ≈ 1e-3 · something, accurate relative to itself.
        let p = [1e4 + 1e-3, 1e4, 1e4, 1e4 + 1e-3];
        let s = singular_values(&p, 2);
        // Eigenvalues of this symmetric matrix: 2e4 + 1e-3 and 1e-3.
        assert!((s[1] / 1e-3 - 1.0).abs() < 1e-8, "{s:?}");
    }
}
