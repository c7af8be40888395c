//! Gains from row and column sums, and the induced ∞- and 1-norms.
//!
//! All functions take a row-major n×n slice `p` with the crate's orientation (rows = output
//! streams): the forward gain reads rows, the backward gain (gradients flow through Pᵀ) columns.

/// Signed row sums r = P·1.
pub fn row_sums(p: &[f64], n: usize) -> Vec<f64> {
    p.chunks_exact(n).map(|row| row.iter().sum()).collect()
}

/// Signed column sums c = Pᵀ·1.
pub fn column_sums(p: &[f64], n: usize) -> Vec<f64> {
    let mut sums = vec![0.0; n];
    for row in p.chunks_exact(n) {
        for (s, x) in sums.iter_mut().zip(row) {
            *s += x;
        }
    }
    sums
}

/// Forward Amax gain: the largest absolute row sum, max_i |Σ_j P_ij| = ‖P·1‖_∞.
/// Equals 1 for a row-stochastic `P`; at most [`inf_norm`], with equality when `P ≥ 0`.
pub fn amax_forward(p: &[f64], n: usize) -> f64 {
    max_abs(&row_sums(p, n))
}

/// Backward Amax gain: the largest absolute column sum, max_j |Σ_i P_ij| = ‖Pᵀ·1‖_∞.
/// Equals 1 for a column-stochastic `P`; at most [`one_norm`], with equality when `P ≥ 0`.
pub fn amax_backward(p: &[f64], n: usize) -> f64 {
    max_abs(&column_sums(p, n))
}

/// Induced ∞-norm, max_i Σ_j |P_ij|: the worst forward gain over inputs with max_j |x_j| ≤ 1.
#[inline]
pub fn inf_norm(p: &[f64], n: usize) -> f64 {
    p.chunks_exact(n)
        .map(|row| row.iter().map(|x| x.abs()).sum::<f64>())
        .fold(0.0, f64::max)
}

/// Induced 1-norm, max_j Σ_i |P_ij|: the worst backward gain.
#[inline]
pub fn one_norm(p: &[f64], n: usize) -> f64 {
    (0..n)
        .map(|j| p[j..].iter().step_by(n).fold(0.0, |sum, x| sum + x.abs()))
        .fold(0.0, f64::max)
}

/// Negative mass Σ_ij max(−P_ij, 0): zero for every mHC matrix. Each term is −P_ij where
/// P_ij < 0 and +0 otherwise (NaN and ±0 entries included), so the sign of a zero result is
/// defined (`f64::max` leaves the sign of max(−0, +0) to the compiler).
#[inline]
pub fn negative_mass(p: &[f64]) -> f64 {
    p.iter().map(|&x| if x < 0.0 { -x } else { 0.0 }).sum()
}

/// max_k |v_k| (0 for an empty slice).
pub(crate) fn max_abs(values: &[f64]) -> f64 {
    values.iter().fold(0.0, |m: f64, x| m.max(x.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_permutation_have_unit_gains() {
        let identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let permutation = [0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        for p in [identity, permutation] {
            assert_eq!(amax_forward(&p, 3), 1.0);
            assert_eq!(amax_backward(&p, 3), 1.0);
            assert_eq!(inf_norm(&p, 3), 1.0);
            assert_eq!(one_norm(&p, 3), 1.0);
        }
    }

    #[test]
    fn negative_entries_separate_amax_from_induced_norms() {
        // [[2, -1], [0.5, 0.5]]: row sums 1, 1; column sums 2.5, -0.5.
        let p = [2.0, -1.0, 0.5, 0.5];
        assert_eq!(amax_forward(&p, 2), 1.0);
        assert_eq!(inf_norm(&p, 2), 3.0);
        assert_eq!(amax_backward(&p, 2), 2.5);
        assert_eq!(one_norm(&p, 2), 2.5);
        assert_eq!(negative_mass(&p), 1.0);
        // The sign is taken after summing: column sums (-3, 1) give amax_backward 3.
        let q = [-2.0, 0.5, -1.0, 0.5];
        assert_eq!(amax_backward(&q, 2), 3.0);
        assert_eq!(column_sums(&q, 2), vec![-3.0, 1.0]);
    }

    #[test]
    fn paper_hc_h1_labels() {
        // Figure 8, HC H1: rows 18.73 -15.29 -14.79 -15.88, cols -6.81 each (printed entries).
        let p = [
            5.43, 4.43, 4.43, 4.43, -4.07, -3.07, -4.07, -4.07, -3.95, -3.95, -2.95, -3.95, -4.22,
            -4.22, -4.22, -3.22,
        ];
        assert!((amax_forward(&p, 4) - 18.72).abs() < 1e-12);
        assert!((amax_backward(&p, 4) - 6.81).abs() < 1e-12);
    }
}
