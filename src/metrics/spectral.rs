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
//!   division, orthogonal to rounding, which is all that the accuracy of the singular values
//!   depends on.
//! - Dot products and squared norms are summed in pairs, `(x₀ + x₁) + (x₂ + x₃) + …`, and the
//!   norms are recomputed from the columns after each rotation.
//! - A sweep visits every pair of columns: for n = 4 in three rounds of two disjoint pairs
//!   (two rotations in a row are independent), for other n row by row, (0, 1), (0, 2), …,
//!   (n − 2, n − 1). A matrix is done after a sweep without rotation.
//!
//! The kernel is written once, generic over the lanes of `crate::lanes`, with one matrix per
//! lane. A single matrix runs in one scalar lane ([`singular_values_into`]); many 4×4 matrices
//! (every published model) run 24 at a time in SIMD lanes ([`singular_values_4_many`]: AVX when
//! the CPU has it, else `wide::f64x4`), a lane refilled as soon as its matrix converges. Every
//! lane runs the same instructions, so the answers do not depend on the batch, the lane or the
//! CPU. n ≤ 8 works on the stack; only larger n allocate. The public functions other than
//! [`singular_values`] (which returns a `Vec`) allocate nothing for n ≤ 8.

// Comparisons are written `!(x > y)` on purpose: a NaN must take the skip/failure branch.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use std::ops::{Add, Mul};

use crate::compose::{binary_exponent, power_of_two};
use crate::lanes::{self, Kernel, Lanes, MAX_LANES, Scalar, Simd};

/// Largest n whose work buffers live on the stack.
const STACK_N: usize = 8;

/// Column squared norms below this (after scaling the largest entry into [1, 2)) are not rotated.
const NEGLIGIBLE: f64 = 3.872_591_914_849_318_3e-121; // 2^-400

/// Sweeps before giving up (convergence takes 3 to 8 for n ≤ 8).
const MAX_SWEEPS: usize = 60;

/// Singular values of the row-major n×n matrix `p`, largest first.
pub fn singular_values(p: &[f64], n: usize) -> Vec<f64> {
    let mut sigma = vec![0.0; n];
    singular_values_into(p, n, &mut sigma);
    sigma
}

/// Singular values of the row-major n×n matrix `p` into `out[..n]`, largest first: the kernel
/// of [`singular_values_4_many`] in one scalar lane, the same bits. Allocates nothing for
/// n ≤ 8. Non-finite input gives NaN.
pub(crate) fn singular_values_into(p: &[f64], n: usize, out: &mut [f64]) {
    assert_eq!(p.len(), n * n, "singular_values: expected an n×n matrix");
    let out = &mut out[..n];
    if n <= STACK_N {
        let mut columns = [[0.0]; STACK_N * STACK_N];
        let mut norms = [[0.0]; STACK_N];
        jacobi(Scalar, p, n, out, &mut columns[..n * n], &mut norms[..n]);
    } else {
        let mut columns = vec![[0.0]; n * n];
        let mut norms = vec![[0.0]; n];
        jacobi(Scalar, p, n, out, &mut columns, &mut norms);
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
    let (matrices, out) = (matrices.as_flattened(), out.as_flattened_mut());
    // Up to four matrices fill one lane group: the other five would only cost time (a lone
    // matrix takes 0.7 µs this way, 1.3 µs in the full kernel).
    if matrices.len() <= 4 * 16 {
        lanes::dispatch(JacobiMany::<4, 1> { matrices, out });
    } else {
        lanes::dispatch(JacobiMany::<4, LANE_GROUPS> { matrices, out });
    }
}

/// Groups of lanes in flight: independent dependency chains that hide the latency of the
/// √, √, ÷ chain of each rotation (gain, S = 1000, one thread: 2 groups 655 ms, 4 → 645, 6 → 635,
/// 8 → 640).
const LANE_GROUPS: usize = 6;

/// The most matrices in flight: [`LANE_GROUPS`] groups of the widest lanes.
const MAX_SLOTS: usize = MAX_LANES * LANE_GROUPS;

/// The column pairs of a 4×4 sweep, in three rounds of two disjoint pairs.
const ROUNDS_4: [(usize, usize); 6] = [(0, 2), (1, 3), (0, 1), (2, 3), (0, 3), (1, 2)];

/// [`jacobi`] on the N×N matrices `matrices` (consecutive row-major blocks) with `GROUPS`
/// lane groups, as a [`Kernel`] for `lanes::dispatch`: N is a constant, so the loops over
/// rows and columns unroll.
struct JacobiMany<'a, const N: usize, const GROUPS: usize> {
    matrices: &'a [f64],
    /// N singular values per matrix, largest first.
    out: &'a mut [f64],
}

impl<const N: usize, const GROUPS: usize> Kernel for JacobiMany<'_, N, GROUPS> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, simd: S) {
        let zero = [simd.splat(0.0); GROUPS];
        if N <= 4 {
            let mut columns = [zero; 16];
            let mut norms = [zero; 4];
            jacobi(
                simd,
                self.matrices,
                N,
                self.out,
                &mut columns[..N * N],
                &mut norms[..N],
            );
        } else {
            let mut columns = vec![zero; N * N];
            let mut norms = vec![zero; N];
            jacobi(simd, self.matrices, N, self.out, &mut columns, &mut norms);
        }
    }
}

/// The matrices in flight: slot `g·L + l` is lane l of group g (L lanes per value). The lane
/// groups are the innermost index, so that one column pair serves every group. The functions
/// that use it take n as an argument, a constant where the caller's is.
struct InFlight<'a, V, const GROUPS: usize> {
    /// `columns[j·n + i][g]`: entry (i, j) of the scaled matrices of group g, transformed by
    /// the rotations.
    columns: &'a mut [[V; GROUPS]],
    /// `norms[j][g]`: squared norm of column j, recomputed after each rotation.
    norms: &'a mut [[V; GROUPS]],
    /// Mask of the lanes rotated during the current sweep.
    rotated: [V; GROUPS],
    /// The power of two that undoes each slot's prescaling.
    unscale: [f64; MAX_SLOTS],
    /// Index of each slot's matrix in the input.
    matrix: [usize; MAX_SLOTS],
    /// Sweeps done on each slot's matrix.
    sweeps: [usize; MAX_SLOTS],
    /// Whether a slot holds a matrix.
    live: [bool; MAX_SLOTS],
}

/// One-sided Jacobi (module docs) on every n×n matrix of `matrices` (consecutive row-major
/// blocks of n² values), one matrix per lane, with `GROUPS` lane groups in flight (at most
/// [`LANE_GROUPS`]); the singular values of matrix m go to `out[m·n..(m + 1)·n]`, largest
/// first. `columns` (n² values) and `norms` (n) are work space.
#[inline(always)]
fn jacobi<S: Simd, const GROUPS: usize>(
    simd: S,
    matrices: &[f64],
    n: usize,
    out: &mut [f64],
    columns: &mut [[S::F64s; GROUPS]],
    norms: &mut [[S::F64s; GROUPS]],
) {
    if n == 0 {
        return;
    }
    let slots = GROUPS * S::F64s::COUNT;
    assert!(GROUPS <= LANE_GROUPS && slots <= MAX_SLOTS);
    let zero = simd.splat(0.0);
    let mut state = InFlight {
        columns: &mut columns[..n * n],
        norms: &mut norms[..n],
        rotated: [zero; GROUPS],
        unscale: [1.0; MAX_SLOTS],
        matrix: [0; MAX_SLOTS],
        sweeps: [0; MAX_SLOTS],
        live: [false; MAX_SLOTS],
    };
    let mut next = 0;
    for slot in 0..slots {
        load_next(&mut state, n, slot, matrices, &mut next, out);
    }
    while state.live.iter().any(|&live| live) {
        if n == 4 {
            for (j, k) in ROUNDS_4 {
                rotate_pair(simd, &mut state, n, j, k);
            }
        } else {
            for j in 0..n {
                for k in (j + 1)..n {
                    rotate_pair(simd, &mut state, n, j, k);
                }
            }
        }
        let mut rotated = 0;
        for (group, mask) in state.rotated.iter_mut().enumerate() {
            rotated |= mask.bitmask() << (S::F64s::COUNT * group);
            *mask = zero;
        }
        for slot in 0..slots {
            if !state.live[slot] {
                continue;
            }
            state.sweeps[slot] += 1;
            if rotated & (1 << slot) == 0 || state.sweeps[slot] >= MAX_SWEEPS {
                let (group, lane) = (slot / S::F64s::COUNT, slot % S::F64s::COUNT);
                let sigma = &mut out[state.matrix[slot] * n..][..n];
                for (s, norm) in sigma.iter_mut().zip(state.norms.iter()) {
                    *s = norm[group].to_array().as_ref()[lane].sqrt() * state.unscale[slot];
                }
                sort_descending(sigma);
                load_next(&mut state, n, slot, matrices, &mut next, out);
            }
        }
    }
}

/// Sorts largest first (the values are never NaN): four values through a network of five
/// compare-exchanges without branches (the order of singular values is data, so the branches of
/// an insertion sort were mispredicted about once per matrix), others by insertion. Either way
/// the result is the same sorted multiset, bit for bit.
#[inline(always)]
fn sort_descending(values: &mut [f64]) {
    if let Ok(four) = <&mut [f64; 4]>::try_from(&mut *values) {
        for (i, j) in [(0, 1), (2, 3), (0, 2), (1, 3), (1, 2)] {
            let (a, b) = (four[i], four[j]);
            let (larger, smaller) = if b > a { (b, a) } else { (a, b) };
            (four[i], four[j]) = (larger, smaller);
        }
        return;
    }
    for i in 1..values.len() {
        let value = values[i];
        let mut j = i;
        while j > 0 && values[j - 1] < value {
            values[j] = values[j - 1];
            j -= 1;
        }
        values[j] = value;
    }
}

/// A sum whose terms are added in pairs, `(t₀ + t₁) + (t₂ + t₃) + …`, the pair sums from the
/// left (a lone last term is added as it is): the order of every dot product and squared
/// norm here. (No closure touches lane values in this kernel: a closure body is not
/// `#[inline(always)]`, so its lane operations could miss the AVX code that
/// `Simd::vectorize` compiles.)
#[derive(Clone, Copy)]
struct PairSum<T> {
    total: Option<T>,
    unpaired: Option<T>,
}

impl<T: Copy + Add<Output = T>> PairSum<T> {
    #[inline(always)]
    fn new() -> Self {
        Self {
            total: None,
            unpaired: None,
        }
    }

    #[inline(always)]
    fn push(&mut self, term: T) {
        match self.unpaired.take() {
            None => self.unpaired = Some(term),
            Some(first) => {
                let pair = first + term;
                self.total = Some(match self.total {
                    None => pair,
                    Some(total) => total + pair,
                });
            }
        }
    }

    /// The sum of at least one term.
    #[inline(always)]
    fn sum(self) -> T {
        match (self.total, self.unpaired) {
            (Some(total), Some(last)) => total + last,
            (Some(total), None) => total,
            (None, Some(last)) => last,
            (None, None) => panic!("PairSum: no terms"),
        }
    }
}

/// Σ x_i[g]·y_i[g] over the entries of two columns, for lane group g, in pairs ([`PairSum`]).
#[inline(always)]
fn dot<T: Copy + Add<Output = T> + Mul<Output = T>, const GROUPS: usize>(
    x: &[[T; GROUPS]],
    y: &[[T; GROUPS]],
    g: usize,
) -> T {
    let mut sum = PairSum::new();
    for (x, y) in x.iter().zip(y) {
        sum.push(x[g] * y[g]);
    }
    sum.sum()
}

/// Loads the next matrix that needs rotations into `slot` (answering zero and non-finite
/// matrices on the way), or empties the slot when none is left.
#[inline(always)]
fn load_next<V: Lanes, const GROUPS: usize>(
    state: &mut InFlight<'_, V, GROUPS>,
    n: usize,
    slot: usize,
    matrices: &[f64],
    next: &mut usize,
    out: &mut [f64],
) {
    let (group, lane) = (slot / V::COUNT, slot % V::COUNT);
    while let Some(p) = matrices.get(*next * n * n..(*next + 1) * n * n) {
        let index = *next;
        *next += 1;
        let Some((factor, unscale)) = prescale(p) else {
            let zero = p.iter().all(|x| *x == 0.0);
            out[index * n..][..n].fill(if zero { 0.0 } else { f64::NAN });
            continue;
        };
        for j in 0..n {
            let mut squares = PairSum::new();
            for i in 0..n {
                let x = p[i * n + j] * factor;
                state.columns[j * n + i][group].lanes_mut().as_mut()[lane] = x;
                squares.push(x * x);
            }
            state.norms[j][group].lanes_mut().as_mut()[lane] = squares.sum();
        }
        state.unscale[slot] = unscale;
        state.matrix[slot] = index;
        state.sweeps[slot] = 0;
        state.live[slot] = true;
        return;
    }
    // Nothing left: zero columns are never rotated.
    for entry in state.columns.iter_mut().chain(state.norms.iter_mut()) {
        entry[group].lanes_mut().as_mut()[lane] = 0.0;
    }
    state.live[slot] = false;
}

/// Rotates columns j and k in every lane whose pair is not orthogonal to the tolerance (see the
/// module docs); the other lanes get the identity rotation, which leaves them unchanged.
#[inline(always)]
fn rotate_pair<S: Simd, const GROUPS: usize>(
    simd: S,
    state: &mut InFlight<'_, S::F64s, GROUPS>,
    n: usize,
    j: usize,
    k: usize,
) {
    assert!(j < k && k < n, "rotate_pair: columns j < k < n");
    // (n·ε)², n·ε being the accuracy of a computed dot product.
    let tolerance = n as f64 * f64::EPSILON;
    let tolerance2 = simd.splat(tolerance * tolerance);
    let negligible = simd.splat(NEGLIGIBLE);
    let zero = simd.splat(0.0);
    let (left, right) = state.columns[..n * n].split_at_mut(k * n);
    let (a, b) = (&mut left[j * n..][..n], &mut right[..n]);
    let mut gamma = [zero; GROUPS];
    let mut active = [zero; GROUPS];
    let mut any = 0;
    for group in 0..GROUPS {
        let (alpha, beta) = (state.norms[j][group], state.norms[k][group]);
        gamma[group] = dot(a, b, group);
        active[group] = (gamma[group] * gamma[group])
            .greater(tolerance2 * alpha * beta)
            .and(alpha.greater_or_equal(negligible))
            .and(beta.greater_or_equal(negligible));
        any |= active[group].bitmask();
    }
    if any == 0 {
        return;
    }
    // In stages over all groups, so that the groups' square roots and divisions (long
    // latencies, one chain per group) are in flight together instead of one group at a time.
    let one = simd.splat(1.0);
    let mut h = [one; GROUPS];
    let mut ad = [one; GROUPS];
    let mut d = [one; GROUPS];
    for group in 0..GROUPS {
        d[group] = state.norms[k][group] - state.norms[j][group];
        let two_gamma = gamma[group] + gamma[group];
        h[group] = (d[group] * d[group] + two_gamma * two_gamma).sqrt();
        ad[group] = d[group].abs() + h[group];
    }
    let mut w = [one; GROUPS];
    for group in 0..GROUPS {
        w[group] = one / ((h[group] + h[group]) * ad[group]).sqrt();
    }
    for group in 0..GROUPS {
        if active[group].bitmask() == 0 {
            // The identity rotation everywhere in this group: nothing to do.
            continue;
        }
        let gamma = gamma[group];
        let two_gamma = gamma + gamma;
        let c = active[group].select(ad[group] * w[group], one);
        let s = active[group].select(
            two_gamma.abs_with_sign_of_product(gamma, d[group]) * w[group],
            zero,
        );
        let (mut squares_a, mut squares_b) = (PairSum::new(), PairSum::new());
        for (x, y) in a.iter_mut().zip(b.iter_mut()) {
            let (xa, yb) = (x[group], y[group]);
            let (xa, yb) = (c * xa - s * yb, s * xa + c * yb);
            (x[group], y[group]) = (xa, yb);
            squares_a.push(xa * xa);
            squares_b.push(yb * yb);
        }
        state.norms[j][group] = squares_a.sum();
        state.norms[k][group] = squares_b.sum();
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

    /// [`JacobiMany`] on `matrices`, returning the singular values.
    struct Batch<'a, const N: usize, const GROUPS: usize>(&'a [f64]);

    impl<const N: usize, const GROUPS: usize> Kernel for Batch<'_, N, GROUPS> {
        type Output = Vec<u64>;
        #[inline(always)]
        fn run<S: Simd>(self, simd: S) -> Vec<u64> {
            let mut out = vec![0.0; self.0.len() / N];
            JacobiMany::<N, GROUPS> {
                matrices: self.0,
                out: &mut out,
            }
            .run(simd);
            out.iter().map(|x| x.to_bits()).collect()
        }
    }

    /// `singular_values` on each N×N matrix of `matrices`, as bits.
    fn one_at_a_time<const N: usize>(matrices: &[f64]) -> Vec<u64> {
        matrices
            .chunks_exact(N * N)
            .flat_map(|p| singular_values(p, N))
            .map(f64::to_bits)
            .collect()
    }

    #[test]
    fn batch_equals_one_at_a_time_on_every_lane_type() {
        let matrices = assorted_4x4();
        let flat = matrices.as_flattened();
        let alone = one_at_a_time::<4>(flat);
        let mut paths = lanes::on_every_path(|| Batch::<4, LANE_GROUPS>(flat));
        paths.extend(lanes::on_every_path(|| Batch::<4, 1>(flat)));
        assert!(paths.len() >= 4);
        for (path, batch) in &paths {
            assert_eq!(batch, &alone, "{path}");
        }
        let mut dispatched = vec![[0.0; 4]; matrices.len()];
        singular_values_4_many(&matrices, &mut dispatched);
        let dispatched: Vec<u64> = dispatched
            .as_flattened()
            .iter()
            .map(|x| x.to_bits())
            .collect();
        assert_eq!(dispatched, alone);
        // The special cases: zeros for the zero matrix, NaN for non-finite input.
        let batch = singular_values_4_many_vec(&matrices);
        assert_eq!(batch[63], [0.0; 4]);
        assert!(batch[64].iter().chain(&batch[65]).all(|x| x.is_nan()));
        assert!(batch[66][0] > 1e299 && batch[67][0] > 0.0);
    }

    fn singular_values_4_many_vec(matrices: &[[f64; 16]]) -> Vec<[f64; 4]> {
        let mut out = vec![[0.0; 4]; matrices.len()];
        singular_values_4_many(matrices, &mut out);
        out
    }

    #[test]
    fn lanes_equal_one_lane_for_other_sizes() {
        // Dense matrices of n = 3, 5 and 8 (the row-by-row sweep order), 30 of each.
        fn dense<const N: usize>() -> Vec<f64> {
            (0..30 * N * N)
                .map(|k| ((k as f64 * 0.754_877_666_2).fract() - 0.5) * (1.0 + (k % 7) as f64))
                .collect()
        }
        fn check<const N: usize>() {
            let matrices = dense::<N>();
            let alone = one_at_a_time::<N>(&matrices);
            for (path, batch) in lanes::on_every_path(|| Batch::<N, LANE_GROUPS>(&matrices)) {
                assert_eq!(batch, alone, "n = {N}, {path}");
            }
        }
        check::<3>();
        check::<5>();
        check::<8>();
    }

    #[test]
    fn agrees_with_nalgebra_on_assorted_matrices() {
        // An independent SVD (nalgebra's bidiagonalisation and implicit QR): the same values
        // to rounding, relative to σ₁.
        for matrix in assorted_4x4()
            .iter()
            .filter(|m| m.iter().all(|x| x.is_finite()) && m.iter().any(|x| *x != 0.0))
        {
            let ours = singular_values(matrix, 4);
            let reference = nalgebra::Matrix4::from_row_slice(matrix);
            let mut theirs: Vec<f64> = reference.singular_values().iter().copied().collect();
            theirs.sort_by(|a, b| b.total_cmp(a));
            for (a, b) in ours.iter().zip(&theirs) {
                assert!((a - b).abs() <= 1e-14 * ours[0], "{ours:?} vs {theirs:?}");
            }
        }
    }

    #[test]
    fn the_sorting_network_sorts_every_order_of_four_values() {
        // Every ordering of 4 values with and without ties (zeros, equal pairs, huge and tiny),
        // against the standard library's sort; the network must give the same bits.
        let sets: [[f64; 4]; 4] = [
            [3.0, 1.0, 2.0, 0.0],
            [1.0, 1.0, 0.5, 0.5],
            [0.0, 0.0, 7.0, 0.0],
            [1e300, 1e-300, 1.0, 1e-300],
        ];
        for set in sets {
            for order in 0..24usize {
                let mut values = set;
                let mut code = order;
                for i in (1..4).rev() {
                    values.swap(i, code % (i + 1));
                    code /= i + 1;
                }
                let mut expected = values;
                expected.sort_by(|a, b| b.total_cmp(a));
                sort_descending(&mut values);
                assert_eq!(
                    values.map(f64::to_bits),
                    expected.map(f64::to_bits),
                    "{set:?}"
                );
                let mut five = [values[0], 4.0, values[1], values[2], values[3]];
                sort_descending(&mut five);
                assert!(five.windows(2).all(|w| w[0] >= w[1]), "{five:?}");
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
