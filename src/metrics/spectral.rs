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
//! n = 4 (every published model) has a dedicated path: columns in registers and the six pairs
//! in three rounds of two disjoint pairs, computed side by side (two independent dependency
//! chains). n ≤ 8 works on the stack; only larger n allocate. The public functions other than
//! [`singular_values`] (which returns a `Vec`) allocate nothing for n ≤ 8.

// Comparisons are written `!(x > y)` on purpose: a NaN must take the skip/failure branch.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

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
    // Biased exponent of max (0 for subnormals), clamped so that 2^-e and 2^e are normal.
    let biased = ((max.to_bits() >> 52) & 0x7ff).clamp(23, 2023);
    let factor = f64::from_bits((2046 - biased) << 52); // 2^(1023 - biased)
    let unscale = f64::from_bits(biased << 52); // 2^(biased - 1023)
    Some((factor, unscale))
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

/// Singular values of a 4×4 matrix, largest first (see the module docs).
fn singular_values_4(p: &[f64]) -> [f64; 4] {
    let Some((factor, unscale)) = prescale(&p[..16]) else {
        let zero = p[..16].iter().all(|x| *x == 0.0);
        return [if zero { 0.0 } else { f64::NAN }; 4];
    };
    let mut columns = [[0.0; 4]; 4];
    for (i, row) in p[..16].chunks_exact(4).enumerate() {
        for (j, &x) in row.iter().enumerate() {
            columns[j][i] = x * factor;
        }
    }
    let mut norms = [0.0; 4];
    for (norm, column) in norms.iter_mut().zip(&columns) {
        *norm = column.iter().map(|x| x * x).sum();
    }
    for _ in 0..MAX_SWEEPS {
        let mut rotated = rotate_two_pairs(&mut columns, &mut norms, [0, 2], [1, 3]);
        rotated |= rotate_two_pairs(&mut columns, &mut norms, [0, 1], [2, 3]);
        rotated |= rotate_two_pairs(&mut columns, &mut norms, [0, 1], [3, 2]);
        if !rotated {
            break;
        }
    }
    let mut sigma = norms.map(|norm| norm.sqrt() * unscale);
    // Sorting network, largest first.
    for (a, b) in [(0, 1), (2, 3), (0, 2), (1, 3), (1, 2)] {
        if sigma[a] < sigma[b] {
            sigma.swap(a, b);
        }
    }
    sigma
}

/// Rotates the disjoint column pairs (j[0], k[0]) and (j[1], k[1]) of a 4×4 matrix, each if its
/// columns are not orthogonal to the tolerance, computing both side by side. Returns whether
/// either was rotated.
#[inline(always)]
fn rotate_two_pairs(
    columns: &mut [[f64; 4]; 4],
    norms: &mut [f64; 4],
    j: [usize; 2],
    k: [usize; 2],
) -> bool {
    const TOLERANCE2: f64 = (4.0 * f64::EPSILON) * (4.0 * f64::EPSILON);
    let a = [columns[j[0]], columns[j[1]]];
    let b = [columns[k[0]], columns[k[1]]];
    let alpha = [norms[j[0]], norms[j[1]]];
    let beta = [norms[k[0]], norms[k[1]]];
    let mut gamma = [0.0; 2];
    let mut active = [false; 2];
    for q in 0..2 {
        gamma[q] =
            (a[q][0] * b[q][0] + a[q][1] * b[q][1]) + (a[q][2] * b[q][2] + a[q][3] * b[q][3]);
        active[q] = gamma[q] * gamma[q] > TOLERANCE2 * alpha[q] * beta[q]
            && alpha[q] >= NEGLIGIBLE
            && beta[q] >= NEGLIGIBLE;
    }
    if !(active[0] || active[1]) {
        return false;
    }
    let mut d = [0.0; 2];
    let mut two_gamma = [0.0; 2];
    let mut small = [false; 2];
    for q in 0..2 {
        d[q] = beta[q] - alpha[q];
        two_gamma[q] = 2.0 * gamma[q];
        small[q] = !active[q] || two_gamma[q].abs() < SMALL_ANGLE * d[q].abs();
    }
    let (mut c, mut s) = ([1.0; 2], [0.0; 2]);
    if small[0] && small[1] {
        for q in 0..2 {
            let x = two_gamma[q] / d[q];
            let t = 0.5 * x - 0.125 * x * x * x;
            let t2 = t * t;
            c[q] = 1.0 - 0.5 * t2 + 0.375 * t2 * t2;
            s[q] = t * c[q];
        }
    } else {
        for q in 0..2 {
            let h = (d[q] * d[q] + two_gamma[q] * two_gamma[q]).sqrt();
            let ad = d[q].abs() + h;
            let w = 1.0 / ((h + h) * ad).sqrt();
            c[q] = ad * w;
            s[q] = with_sign_of_product(two_gamma[q], gamma[q], d[q]) * w;
        }
    }
    for q in 0..2 {
        if !active[q] {
            continue;
        }
        let (mut x, mut y) = ([0.0; 4], [0.0; 4]);
        for i in 0..4 {
            x[i] = c[q] * a[q][i] - s[q] * b[q][i];
            y[i] = s[q] * a[q][i] + c[q] * b[q][i];
        }
        columns[j[q]] = x;
        columns[k[q]] = y;
        norms[j[q]] = (x[0] * x[0] + x[1] * x[1]) + (x[2] * x[2] + x[3] * x[3]);
        norms[k[q]] = (y[0] * y[0] + y[1] * y[1]) + (y[2] * y[2] + y[3] * y[3]);
    }
    true
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

    #[test]
    fn nearly_rank_one_keeps_small_singular_value() {
        // u vᵀ·1e4 + 1e-3·I (2×2): σ₂ ≈ 1e-3 · something, accurate relative to itself.
        let p = [1e4 + 1e-3, 1e4, 1e4, 1e4 + 1e-3];
        let s = singular_values(&p, 2);
        // Eigenvalues of this symmetric matrix: 2e4 + 1e-3 and 1e-3.
        assert!((s[1] / 1e-3 - 1.0).abs() < 1e-8, "{s:?}");
    }
}
