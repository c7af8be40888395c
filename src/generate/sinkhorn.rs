//! Sinkhorn–Knopp normalisation of `exp(logits)` into a (nearly) doubly stochastic matrix.
//!
//! As the paper runs it (Eq. 9): `M⁰ = exp(logits − max(logits))` (the shift cancels exactly in
//! the normalisations and keeps `exp` from overflowing), then `iterations` times a column step
//! followed by a row step. **The side normalised last is exact** (up to rounding): rows for
//! [`SinkhornOrder::ColumnsThenRows`] (the paper, DeepSeek-V4), columns for
//! [`SinkhornOrder::RowsThenColumns`] (lucidrains `hyper-connections`, `mhc-pytorch`, in our
//! orientation). All truncation error sits in the other side's sums.
//!
//! Logit ranges above [`LOG_DOMAIN_RANGE`] would underflow `exp` to 0 and could empty a row; those
//! matrices are normalised in the log domain instead (the same iterates in exact arithmetic), so
//! large logits never produce NaN.
//!
//! The ordinary iteration is written once, generic over the lanes of `crate::lanes` with one
//! matrix per lane: [`sinkhorn_in_place`] runs it in one scalar lane, [`sinkhorn_4_many`] on
//! four 4×4 matrices per SIMD operation, with the same bits.

use serde::{Deserialize, Serialize};

use crate::lanes::{self, Kernel, Lanes, MAX_LANES, Scalar, Simd};

/// Which marginal each iteration normalises first; the other one ends exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkhornOrder {
    /// The paper's order: columns, then rows. Row sums end exact.
    #[default]
    ColumnsThenRows,
    /// Rows, then columns (lucidrains, mhc-pytorch). Column sums end exact.
    RowsThenColumns,
}

impl SinkhornOrder {
    /// Human-readable order, e.g. "columns, then rows".
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::ColumnsThenRows => "columns, then rows",
            Self::RowsThenColumns => "rows, then columns",
        }
    }
}

/// Sinkhorn–Knopp settings. `Default` is the paper's: 20 iterations, columns then rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkhornParams {
    /// Number of full iterations t_max; each is one column step and one row step.
    pub iterations: u32,
    /// Which marginal each iteration normalises first.
    pub order: SinkhornOrder,
}

impl Default for SinkhornParams {
    fn default() -> Self {
        Self {
            iterations: 20,
            order: SinkhornOrder::ColumnsThenRows,
        }
    }
}

/// Logit range (max − min) above which the log-domain iteration is used: `exp(−600)` ≈ 1e-261
/// still leaves room for the scaling factors before f64 underflows at ≈ 1e-308.
pub(crate) const LOG_DOMAIN_RANGE: f64 = 600.0;

/// Sinkhorn of an n×n matrix of logits (row-major slice), returning a new matrix.
pub fn sinkhorn(
    logits: ndarray::ArrayView2<'_, f64>,
    params: &SinkhornParams,
) -> ndarray::Array2<f64> {
    let n = logits.nrows();
    assert_eq!(n, logits.ncols(), "sinkhorn needs a square matrix");
    let mut data: Vec<f64> = logits.iter().copied().collect();
    sinkhorn_in_place(&mut data, n, params);
    ndarray::Array2::from_shape_vec((n, n), data).expect("n·n values")
}

/// Replaces the n×n row-major `logits` by their Sinkhorn normalisation (see the module docs).
/// The logits must be finite.
pub fn sinkhorn_in_place(matrix: &mut [f64], n: usize, params: &SinkhornParams) {
    debug_assert_eq!(matrix.len(), n * n);
    if !exponentiate(matrix) {
        sinkhorn_log_domain(matrix, n, params);
        return;
    }
    iterate(Scalar, matrix, n, params);
}

/// [`sinkhorn_in_place`] on every 4×4 matrix of `matrices` (consecutive row-major blocks of 16
/// values), bit for bit the same answers, about four times faster: the same iteration with one
/// matrix per SIMD lane, so four matrices share each operation (AVX when the CPU has it, see
/// `crate::lanes`).
pub fn sinkhorn_4_many(matrices: &mut [f64], params: &SinkhornParams) {
    assert_eq!(matrices.len() % 16, 0, "sinkhorn_4_many: 4×4 matrices");
    lanes::dispatch(SinkhornMany { matrices, params });
}

/// Sinkhorn on groups of 4×4 matrices, lane l holding matrix l of the group: `entries[k]` is
/// entry k (row-major) of all of them. A matrix that needs the log domain leaves its lane
/// unused and is normalised alone; so is the remainder of fewer matrices than lanes.
struct SinkhornMany<'a> {
    matrices: &'a mut [f64],
    params: &'a SinkhornParams,
}

impl Kernel for SinkhornMany<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, simd: S) {
        let lanes = S::F64s::COUNT;
        let mut groups = self.matrices.chunks_exact_mut(16 * lanes);
        for group in &mut groups {
            let mut ordinary = [true; MAX_LANES];
            for (lane, matrix) in group.chunks_exact_mut(16).enumerate() {
                ordinary[lane] = exponentiate(matrix);
            }
            let mut entries = [simd.splat(0.0); 16];
            for (k, entry) in entries.iter_mut().enumerate() {
                *entry = simd.load_with(|lane| group[16 * lane + k]);
            }
            iterate(simd, &mut entries, 4, self.params);
            for (k, value) in entries.iter().enumerate() {
                for (lane, &x) in value.to_array().as_ref().iter().enumerate() {
                    if ordinary[lane] {
                        group[16 * lane + k] = x;
                    }
                }
            }
            for (lane, matrix) in group.chunks_exact_mut(16).enumerate() {
                if !ordinary[lane] {
                    sinkhorn_log_domain(matrix, 4, self.params);
                }
            }
        }
        for matrix in groups.into_remainder().chunks_exact_mut(16) {
            sinkhorn_in_place(matrix, 4, self.params);
        }
    }
}

/// The ordinary iteration on n×n matrices held entry by entry in lanes (`entries[i·n + j]`:
/// entry (i, j) of one matrix per lane), after [`exponentiate`].
#[inline(always)]
fn iterate<S: Simd>(simd: S, entries: &mut [S::F64s], n: usize, params: &SinkhornParams) {
    for _ in 0..params.iterations {
        match params.order {
            SinkhornOrder::ColumnsThenRows => {
                normalise_columns(simd, entries, n);
                normalise_rows(simd, entries, n);
            }
            SinkhornOrder::RowsThenColumns => {
                normalise_rows(simd, entries, n);
                normalise_columns(simd, entries, n);
            }
        }
    }
}

/// Each row times 1/(its sum), the sum taken from the first entry across.
#[inline(always)]
fn normalise_rows<S: Simd>(simd: S, entries: &mut [S::F64s], n: usize) {
    for row in entries.chunks_exact_mut(n) {
        let mut sum = row[0];
        for &value in &row[1..] {
            sum = sum + value;
        }
        let inverse = simd.splat(1.0) / sum;
        for value in row {
            *value = *value * inverse;
        }
    }
}

/// Each column times 1/(its sum), the sum taken from the first entry down.
#[inline(always)]
fn normalise_columns<S: Simd>(simd: S, entries: &mut [S::F64s], n: usize) {
    for j in 0..n {
        let mut sum = entries[j];
        for i in 1..n {
            sum = sum + entries[i * n + j];
        }
        let inverse = simd.splat(1.0) / sum;
        for i in 0..n {
            entries[i * n + j] = entries[i * n + j] * inverse;
        }
    }
}

/// M ← exp(M − max M), the start of the ordinary iteration; returns true. When the logits'
/// range exceeds [`LOG_DOMAIN_RANGE`] (exp would underflow), leaves M as it is and returns
/// false: the log-domain iteration must take over.
fn exponentiate(matrix: &mut [f64]) -> bool {
    let (min, max) = matrix
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    if max - min > LOG_DOMAIN_RANGE {
        return false;
    }
    for value in matrix.iter_mut() {
        *value = (*value - max).exp();
    }
    true
}

/// The same iteration on log-entries: each step subtracts the log-sum-exp of a row or column.
fn sinkhorn_log_domain(m: &mut [f64], n: usize, params: &SinkhornParams) {
    let mut scratch = vec![0.0; n];
    let row_step = |m: &mut [f64], scratch: &mut [f64]| {
        for row in m.chunks_exact_mut(n) {
            scratch.copy_from_slice(row);
            let lse = log_sum_exp(scratch);
            row.iter_mut().for_each(|x| *x -= lse);
        }
    };
    let column_step = |m: &mut [f64], scratch: &mut [f64]| {
        for j in 0..n {
            for i in 0..n {
                scratch[i] = m[i * n + j];
            }
            let lse = log_sum_exp(scratch);
            for i in 0..n {
                m[i * n + j] -= lse;
            }
        }
    };
    for _ in 0..params.iterations {
        match params.order {
            SinkhornOrder::ColumnsThenRows => {
                column_step(m, &mut scratch);
                row_step(m, &mut scratch);
            }
            SinkhornOrder::RowsThenColumns => {
                row_step(m, &mut scratch);
                column_step(m, &mut scratch);
            }
        }
    }
    for value in m.iter_mut() {
        *value = value.exp();
    }
}

fn log_sum_exp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    max + values.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn sums(m: &ndarray::Array2<f64>) -> (Vec<f64>, Vec<f64>) {
        (
            m.sum_axis(ndarray::Axis(1)).to_vec(),
            m.sum_axis(ndarray::Axis(0)).to_vec(),
        )
    }

    #[test]
    fn zero_logits_give_the_averaging_matrix() {
        let h = sinkhorn(
            ndarray::Array2::zeros((4, 4)).view(),
            &SinkhornParams::default(),
        );
        assert!(h.iter().all(|&x| (x - 0.25).abs() < 1e-15));
    }

    #[test]
    fn one_iteration_by_hand() {
        // exp(logits) = [[1, e], [1, 1]] after the max shift by 1 cancels.
        let logits = array![[0.0, 1.0], [0.0, 0.0]];
        let e = std::f64::consts::E;
        let params = SinkhornParams {
            iterations: 1,
            order: SinkhornOrder::ColumnsThenRows,
        };
        let h = sinkhorn(logits.view(), &params);
        // columns: [[1/2, e/(e+1)], [1/2, 1/(e+1)]]; then rows.
        let row0 = 0.5 + e / (e + 1.0);
        let row1 = 0.5 + 1.0 / (e + 1.0);
        let expected = array![
            [0.5 / row0, e / (e + 1.0) / row0],
            [0.5 / row1, 1.0 / (e + 1.0) / row1]
        ];
        for (a, b) in h.iter().zip(expected.iter()) {
            assert!((a - b).abs() < 1e-15, "{h} vs {expected}");
        }
    }

    #[test]
    fn last_normalised_side_is_exact() {
        let logits = array![[3.0, -2.0, 0.5], [0.0, 4.0, -1.0], [2.5, 0.0, 1.0]];
        for order in [
            SinkhornOrder::ColumnsThenRows,
            SinkhornOrder::RowsThenColumns,
        ] {
            let h = sinkhorn(
                logits.view(),
                &SinkhornParams {
                    iterations: 3,
                    order,
                },
            );
            let (rows, cols) = sums(&h);
            let (exact, inexact) = match order {
                SinkhornOrder::ColumnsThenRows => (rows, cols),
                SinkhornOrder::RowsThenColumns => (cols, rows),
            };
            assert!(exact.iter().all(|s| (s - 1.0).abs() < 4e-16), "{exact:?}");
            assert!(
                inexact.iter().any(|s| (s - 1.0).abs() > 1e-6),
                "{inexact:?}"
            );
        }
    }

    #[test]
    fn huge_logits_use_the_log_domain_and_stay_finite() {
        let logits = array![[1000.0, -1000.0], [-500.0, 200.0]];
        let h = sinkhorn(logits.view(), &SinkhornParams::default());
        assert!(h.iter().all(|x| x.is_finite() && *x >= 0.0), "{h}");
        let (rows, _) = sums(&h);
        assert!(rows.iter().all(|s| (s - 1.0).abs() < 1e-15));
        // The same matrix shifted down stays in the ordinary domain and agrees.
        let moderate = array![[10.0, -10.0], [-5.0, 2.0]];
        let a = sinkhorn(moderate.view(), &SinkhornParams::default());
        let mut b = moderate.iter().copied().collect::<Vec<_>>();
        sinkhorn_log_domain(&mut b, 2, &SinkhornParams::default());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-13, "{x} vs {y}");
        }
    }

    /// Matrices for the lane kernel: random logits of several scales, ties, a zero matrix and
    /// one that needs the log domain, `count` of them.
    fn lane_inputs(count: usize) -> Vec<f64> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut values = Vec::new();
        for index in 0..count {
            let scale = [0.3, 3.0, 40.0, 0.0][index % 4];
            for k in 0..16 {
                values.push(match index {
                    5 => 1500.0 * next(), // a range above LOG_DOMAIN_RANGE
                    _ => scale * next() + f64::from(u8::from(k % 5 == 0)),
                });
            }
        }
        values
    }

    /// [`SinkhornMany`] on its own copy of the matrices, returning them.
    struct OnCopy {
        matrices: Vec<f64>,
        params: SinkhornParams,
    }

    impl Kernel for OnCopy {
        type Output = Vec<f64>;
        #[inline(always)]
        fn run<S: Simd>(mut self, simd: S) -> Vec<f64> {
            SinkhornMany {
                matrices: &mut self.matrices,
                params: &self.params,
            }
            .run(simd);
            self.matrices
        }
    }

    #[test]
    fn lanes_match_one_matrix_at_a_time_bit_for_bit() {
        for order in [
            SinkhornOrder::ColumnsThenRows,
            SinkhornOrder::RowsThenColumns,
        ] {
            let params = SinkhornParams {
                iterations: 7,
                order,
            };
            // 11 matrices: two full groups (one with a log-domain matrix) and a remainder of 3.
            let inputs = lane_inputs(11);
            let log_domain = &inputs[80..96];
            let range = log_domain.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x))
                - log_domain.iter().fold(f64::INFINITY, |m, &x| m.min(x));
            assert!(range > LOG_DOMAIN_RANGE, "{range}");
            let mut one_by_one = inputs.clone();
            for matrix in one_by_one.chunks_exact_mut(16) {
                sinkhorn_in_place(matrix, 4, &params);
            }
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let paths = lanes::on_every_path(|| OnCopy {
                matrices: inputs.clone(),
                params,
            });
            assert!(paths.len() >= 2);
            for (path, answer) in paths {
                assert_eq!(bits(&answer), bits(&one_by_one), "{path}, {order:?}");
            }
            let mut dispatched = inputs.clone();
            sinkhorn_4_many(&mut dispatched, &params);
            assert_eq!(bits(&dispatched), bits(&one_by_one), "{order:?}");
            // The log-domain matrix (index 5) was normalised: the side normalised last sums
            // to 1.
            let h = &one_by_one[80..96];
            for line in 0..4 {
                let sum: f64 = match order {
                    SinkhornOrder::ColumnsThenRows => h[4 * line..4 * line + 4].iter().sum(),
                    SinkhornOrder::RowsThenColumns => (0..4).map(|i| h[4 * i + line]).sum(),
                };
                assert!((sum - 1.0).abs() < 1e-12, "{order:?}: {h:?}");
            }
        }
    }
}
