//! Singular values of small dense matrices by one-sided (Hestenes) Jacobi rotations.
//!
//! One-sided Jacobi orthogonalises the columns of A by plane rotations; the column norms of the
//! result are the singular values, with high relative accuracy even for the small σ₂ of nearly
//! rank-one HC composites (squaring into AᵀA would lose half the digits). For n ≤ 64 it
//! converges in a handful of sweeps.

/// Singular values of the row-major n×n matrix `p`, largest first.
pub fn singular_values(p: &[f64], n: usize) -> Vec<f64> {
    // Work on columns: store A column-major so each column is contiguous.
    let mut columns = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            columns[j * n + i] = p[i * n + j];
        }
    }
    let max_sweeps = 60;
    for _ in 0..max_sweeps {
        let mut rotated = false;
        for j in 0..n {
            for k in (j + 1)..n {
                let (left, right) = columns.split_at_mut(k * n);
                let a = &mut left[j * n..(j + 1) * n];
                let b = &mut right[..n];
                let mut alpha = 0.0;
                let mut beta = 0.0;
                let mut gamma = 0.0;
                for (x, y) in a.iter().zip(b.iter()) {
                    alpha += x * x;
                    beta += y * y;
                    gamma += x * y;
                }
                if gamma == 0.0 || gamma.abs() <= f64::EPSILON * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                    let (xa, yb) = (*x, *y);
                    *x = c * xa - s * yb;
                    *y = s * xa + c * yb;
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let mut sigma: Vec<f64> = columns.chunks_exact(n).map(euclidean_norm).collect();
    sigma.sort_by(|a, b| b.total_cmp(a));
    sigma
}

/// Spectral norm σ₁(P) = ‖P‖₂: the worst Euclidean gain. Exactly 1 for doubly stochastic P.
pub fn spectral_norm(p: &[f64], n: usize) -> f64 {
    singular_values(p, n)[0]
}

/// Second singular value σ₂(P) (0 for n = 1). For doubly stochastic P it equals ‖P − J/n‖₂.
pub fn sigma2(p: &[f64], n: usize) -> f64 {
    singular_values(p, n).get(1).copied().unwrap_or(0.0)
}

/// ‖P − J/n‖₂: distance to the averaging matrix (stream collapse when it tends to 0).
pub fn distance_to_average(p: &[f64], n: usize) -> f64 {
    let average = 1.0 / n as f64;
    let shifted: Vec<f64> = p.iter().map(|x| x - average).collect();
    spectral_norm(&shifted, n)
}

/// ‖v‖₂ scaled to avoid overflow and underflow of the squares.
fn euclidean_norm(v: &[f64]) -> f64 {
    let scale = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if scale == 0.0 || !scale.is_finite() {
        return scale;
    }
    scale * v.iter().map(|x| (x / scale).powi(2)).sum::<f64>().sqrt()
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
