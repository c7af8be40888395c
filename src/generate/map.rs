//! How a layer's logits (our orientation: rows = output streams) become its H_res: the maps of
//! every supported implementation, in one type shared by the per-token model
//! ([`crate::load::dynamic`]), the probe and the certificate ([`crate::analysis::certify`]).

use serde::Serialize;

use super::sinkhorn::{SinkhornParams, sinkhorn_in_place};

/// How one layer's logits (our orientation) become its H_res.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum HresMap {
    /// H_res = the logits (lucidrains HC: no constraint).
    Identity,
    /// H_res = Sinkhorn–Knopp of exp(logits) ([`sinkhorn_in_place`], which subtracts the
    /// maximum first; the normalisations cancel the shift, so this equals the packages' plain
    /// exp): lucidrains mHC and mhc-pytorch, 20 × (rows, then columns) in our orientation.
    Sinkhorn(SinkhornParams),
    /// DeepSeek-V4's Sinkhorn, written in our orientation (H = combᵀ): softmax over each
    /// **column** of the logits + ε, divide each row by its sum + ε, then `iterations − 1` ×
    /// (columns + ε, rows + ε). Row sums end within ε of 1.
    DeepseekSinkhorn {
        /// `hc_sinkhorn_iters` (20).
        iterations: u32,
        /// `hc_eps` (1e-6).
        eps: f64,
    },
}

impl HresMap {
    /// Replaces the row-major n×n `logits` (our orientation) by the H_res they give.
    pub fn apply(&self, logits: &mut [f64], n: usize) {
        match *self {
            Self::Identity => {}
            Self::Sinkhorn(params) => sinkhorn_in_place(logits, n, &params),
            Self::DeepseekSinkhorn { iterations, eps } => {
                transpose_in_place(logits, n);
                deepseek_sinkhorn(logits, n, iterations, eps);
                transpose_in_place(logits, n);
            }
        }
    }
}

/// DeepSeek-V4's Sinkhorn on a row-major n×n comb logit matrix, in the comb orientation
/// (`comb[i, j]`: input stream i → output stream j): softmax over the last dim + ε, divide by
/// column sums + ε, then `iterations − 1` × (rows + ε, columns + ε).
pub(crate) fn deepseek_sinkhorn(comb: &mut [f64], n: usize, iterations: u32, eps: f64) {
    for row in comb.chunks_exact_mut(n) {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        for v in row.iter_mut() {
            *v = *v / sum + eps;
        }
    }
    let columns = |m: &mut [f64]| {
        for j in 0..n {
            let sum: f64 = (0..n).map(|i| m[i * n + j]).sum();
            for i in 0..n {
                m[i * n + j] /= sum + eps;
            }
        }
    };
    let rows = |m: &mut [f64]| {
        for row in m.chunks_exact_mut(n) {
            let sum: f64 = row.iter().sum();
            for v in row.iter_mut() {
                *v /= sum + eps;
            }
        }
    };
    columns(comb);
    for _ in 1..iterations {
        rows(comb);
        columns(comb);
    }
}

/// Transposes a row-major n×n matrix in place.
fn transpose_in_place(m: &mut [f64], n: usize) {
    for i in 0..n {
        for j in i + 1..n {
            m.swap(i * n + j, j * n + i);
        }
    }
}
