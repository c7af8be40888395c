//! Composites of per-layer matrices across depth.
//!
//! Convention (as everywhere in this crate): `x_{l+1} = H_l x_l`, rows are output streams, layers
//! are numbered l = 1 … L.
//!
//! - `single(l)` = H_l;
//! - `prefix(l)` = H_l H_{l−1} ⋯ H_1: what a forward signal from the bottom has passed once
//!   layer l is done, built going up as `P ← H_l · P`;
//! - `suffix(l)` = H_L H_{L−1} ⋯ H_l: the path of a gradient from the top down to the input of
//!   layer l, built going down as `S ← S · H_l`.
//!
//! `prefix(L) = suffix(1)` is the whole-model composite.
//!
//! HC products reach 1e300 and beyond within a few hundred layers, so every composite is kept as
//! a [`ScaledMatrix`]: a mantissa whose largest |entry| lies in [1, 2) and an integer power-of-two
//! exponent. Rescaling by a power of two is exact, so nothing overflows or loses precision until
//! a metric is finally expressed as a plain f64.

use serde::{Deserialize, Serialize};

/// Which product of layers a matrix is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Composite {
    /// H_l alone.
    Single,
    /// H_l ⋯ H_1.
    Prefix,
    /// H_L ⋯ H_l.
    Suffix,
}

impl Composite {
    /// All composites in output order.
    pub const ALL: [Composite; 3] = [Composite::Single, Composite::Prefix, Composite::Suffix];

    /// The name used in CSV and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Prefix => "prefix",
            Self::Suffix => "suffix",
        }
    }
}

/// An n×n matrix `mantissa · 2^exponent` (row-major). The mantissa's largest |entry| lies in
/// [1, 2), unless the matrix is exactly zero (then the mantissa is zero and the exponent 0).
#[derive(Clone, Debug, PartialEq)]
pub struct ScaledMatrix {
    n: usize,
    mantissa: Vec<f64>,
    exponent: i64,
}

impl ScaledMatrix {
    /// Wraps a finite row-major n×n matrix, normalising its scale.
    pub fn new(n: usize, values: Vec<f64>) -> Self {
        debug_assert_eq!(values.len(), n * n);
        let mut matrix = Self {
            n,
            mantissa: values,
            exponent: 0,
        };
        matrix.normalise();
        matrix
    }

    /// Number of rows and columns.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The row-major mantissa M (true matrix = M · 2^exponent).
    pub fn mantissa(&self) -> &[f64] {
        &self.mantissa
    }

    /// The power-of-two exponent.
    pub fn exponent(&self) -> i64 {
        self.exponent
    }

    /// `value · 2^exponent` as an f64: exact when representable, ±inf only when the true
    /// magnitude exceeds f64, 0 (or subnormal) when it is below.
    pub(crate) fn scale_value(&self, value: f64) -> f64 {
        scale_by_power_of_two(value, self.exponent)
    }

    /// log10 of `|value| · 2^exponent` without overflow (−inf for 0).
    pub(crate) fn log10_scaled(&self, value: f64) -> f64 {
        value.abs().log10() + self.exponent as f64 * std::f64::consts::LOG10_2
    }

    /// The true matrix as f64 (entries may overflow to ±inf for astronomically large products).
    pub fn to_f64(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.mantissa.len()];
        self.write_f64(&mut out);
        out
    }

    /// [`Self::to_f64`] into `out` (length n²), without allocating.
    pub(crate) fn write_f64(&self, out: &mut [f64]) {
        for (o, &x) in out.iter_mut().zip(&self.mantissa) {
            *o = scale_by_power_of_two(x, self.exponent);
        }
    }

    /// `self · right` (both scaled), renormalised.
    pub fn matmul(&self, right: &ScaledMatrix) -> ScaledMatrix {
        let mut product = ScaledMatrix::empty();
        self.matmul_to(right, &mut product);
        product
    }

    /// An empty 0×0 matrix, a place to [`Self::assign`] or multiply into.
    pub(crate) fn empty() -> Self {
        Self {
            n: 0,
            mantissa: Vec::new(),
            exponent: 0,
        }
    }

    /// Makes `self` the finite row-major n×n `values`, normalised as by [`Self::new`], reusing
    /// the mantissa's allocation.
    pub(crate) fn assign(&mut self, n: usize, values: &[f64]) {
        debug_assert_eq!(values.len(), n * n);
        self.n = n;
        self.mantissa.clear();
        self.mantissa.extend_from_slice(values);
        self.exponent = 0;
        self.normalise();
    }

    /// Makes `self` a copy of `other`, reusing the mantissa's allocation.
    pub(crate) fn copy_from(&mut self, other: &ScaledMatrix) {
        self.n = other.n;
        self.mantissa.clear();
        self.mantissa.extend_from_slice(&other.mantissa);
        self.exponent = other.exponent;
    }

    /// `out = self · right`, renormalised ([`Self::matmul`] into `out`'s allocation).
    pub(crate) fn matmul_to(&self, right: &ScaledMatrix, out: &mut ScaledMatrix) {
        let n = self.n;
        out.n = n;
        out.mantissa.resize(n * n, 0.0);
        matmul_into(&self.mantissa, &right.mantissa, &mut out.mantissa, n);
        out.exponent = self.exponent + right.exponent;
        out.normalise();
    }

    fn normalise(&mut self) {
        let max = self.mantissa.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        if max == 0.0 {
            self.exponent = 0;
            return;
        }
        if !max.is_finite() {
            return;
        }
        // Exponent e with max·2^-e in [1, 2): the unbiased binary exponent of max.
        let shift = binary_exponent(max);
        if shift != 0 {
            for x in &mut self.mantissa {
                *x = scale_by_power_of_two(*x, -shift);
            }
            self.exponent += shift;
        }
    }
}

/// ⌊log2 |x|⌋ for finite non-zero x, read from the bits (subnormals included).
pub(crate) fn binary_exponent(x: f64) -> i64 {
    let biased = ((x.to_bits() >> 52) & 0x7ff) as i64;
    if biased == 0 {
        // Subnormal: |x| = m·2^-1074 with the integer m < 2^52.
        let m = x.to_bits() & ((1 << 52) - 1);
        return 63 - m.leading_zeros() as i64 - 1074;
    }
    biased - 1023
}

/// 2^e for e in [-1022, 1023] (a normal number), built from its bits.
pub(crate) fn power_of_two(e: i64) -> f64 {
    debug_assert!((-1022..=1023).contains(&e));
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// `value · 2^exponent`, computed in steps so that intermediate powers never overflow. Exact
/// unless the result leaves the normal range (then rounded once per step, like any product).
pub(crate) fn scale_by_power_of_two(value: f64, exponent: i64) -> f64 {
    if (-1022..=1023).contains(&exponent) {
        return value * power_of_two(exponent);
    }
    let mut value = value;
    let mut remaining = exponent;
    while remaining != 0 && value != 0.0 && value.is_finite() {
        let step = remaining.clamp(-1000, 1000);
        value *= power_of_two(step);
        remaining -= step;
    }
    value
}

/// `out = a · b` for row-major n×n slices: out_ij = Σ_k a_ik·b_kj, added in k order from 0.
#[inline]
pub(crate) fn matmul_into(a: &[f64], b: &[f64], out: &mut [f64], n: usize) {
    if n == 4 {
        // The same sums in the same order, with n known: the loops unroll.
        return matmul_fixed::<4>(a, b, out);
    }
    matmul_rows(a, b, out, n);
}

#[inline(always)]
fn matmul_fixed<const N: usize>(a: &[f64], b: &[f64], out: &mut [f64]) {
    let (a, b) = (&a[..N * N], &b[..N * N]);
    matmul_rows(a, b, &mut out[..N * N], N);
}

#[inline(always)]
fn matmul_rows(a: &[f64], b: &[f64], out: &mut [f64], n: usize) {
    for i in 0..n {
        let row = &mut out[i * n..(i + 1) * n];
        row.iter_mut().for_each(|x| *x = 0.0);
        for k in 0..n {
            let a_ik = a[i * n + k];
            let b_row = &b[k * n..(k + 1) * n];
            for (x, &b_kj) in row.iter_mut().zip(b_row) {
                *x += a_ik * b_kj;
            }
        }
    }
}

/// `single(l) = H_l` for l = 1 … L, as scaled matrices.
pub fn single_composites(layers: &[&[f64]], n: usize) -> Vec<ScaledMatrix> {
    composites(Composite::Single, layers, n)
}

/// `prefix(l) = H_l ⋯ H_1` for l = 1 … L (index l − 1), computed going up as `P ← H_l · P`.
pub fn prefix_composites(layers: &[&[f64]], n: usize) -> Vec<ScaledMatrix> {
    composites(Composite::Prefix, layers, n)
}

/// `suffix(l) = H_L ⋯ H_l` for l = 1 … L (index l − 1), computed going down as `S ← S · H_l`.
pub fn suffix_composites(layers: &[&[f64]], n: usize) -> Vec<ScaledMatrix> {
    composites(Composite::Suffix, layers, n)
}

/// The composites of kind `kind` of `layers` into `out[k]` for layer k (`out.len()` =
/// `layers.len()`), reusing the matrices' allocations; `layer` is work space. Every layer
/// matrix is normalised ([`ScaledMatrix::new`]) before it enters a product: `single(l) = H_l`;
/// `prefix(1) = H_1`, `prefix(l) = H_l · prefix(l − 1)`; `suffix(L) = H_L`,
/// `suffix(l) = suffix(l + 1) · H_l`.
pub(crate) fn composites_into(
    kind: Composite,
    layers: &[&[f64]],
    n: usize,
    out: &mut [ScaledMatrix],
    layer: &mut ScaledMatrix,
) {
    assert_eq!(out.len(), layers.len(), "one composite per layer");
    let count = layers.len();
    if count == 0 {
        return;
    }
    match kind {
        Composite::Single => {
            for (matrix, h) in out.iter_mut().zip(layers) {
                matrix.assign(n, h);
            }
        }
        Composite::Prefix => {
            out[0].assign(n, layers[0]);
            for l in 1..count {
                layer.assign(n, layers[l]);
                let (below, rest) = out.split_at_mut(l);
                layer.matmul_to(&below[l - 1], &mut rest[0]);
            }
        }
        Composite::Suffix => {
            out[count - 1].assign(n, layers[count - 1]);
            for l in (0..count - 1).rev() {
                layer.assign(n, layers[l]);
                let (here, above) = out.split_at_mut(l + 1);
                above[0].matmul_to(layer, &mut here[l]);
            }
        }
    }
}

/// The composites of one kind.
pub fn composites(kind: Composite, layers: &[&[f64]], n: usize) -> Vec<ScaledMatrix> {
    let mut out = vec![ScaledMatrix::empty(); layers.len()];
    composites_into(kind, layers, n, &mut out, &mut ScaledMatrix::empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_of_products() {
        // A = [[1,1],[0,1]], B = [[1,0],[1,1]]: AB ≠ BA.
        let a = [1.0, 1.0, 0.0, 1.0];
        let b = [1.0, 0.0, 1.0, 1.0];
        let layers: Vec<&[f64]> = vec![&a, &b];
        let prefix = prefix_composites(&layers, 2);
        let suffix = suffix_composites(&layers, 2);
        // prefix(2) = H_2 H_1 = B A = [[1,1],[1,2]]; suffix(1) = H_2 H_1 too.
        assert_eq!(prefix[1].to_f64(), vec![1.0, 1.0, 1.0, 2.0]);
        assert_eq!(suffix[0].to_f64(), vec![1.0, 1.0, 1.0, 2.0]);
        // suffix(2) = H_2 = B; prefix(1) = H_1 = A.
        assert_eq!(suffix[1].to_f64(), b.to_vec());
        assert_eq!(prefix[0].to_f64(), a.to_vec());
    }

    #[test]
    fn mantissa_is_normalised_and_scale_exact() {
        let m = ScaledMatrix::new(2, vec![3.0, -8.0, 0.5, 0.0]);
        assert_eq!(m.exponent(), 3);
        assert_eq!(m.mantissa(), &[0.375, -1.0, 0.0625, 0.0]);
        assert_eq!(m.to_f64(), vec![3.0, -8.0, 0.5, 0.0]);
        let zero = ScaledMatrix::new(2, vec![0.0; 4]);
        assert_eq!(zero.exponent(), 0);
    }

    #[test]
    fn products_beyond_f64_keep_their_exponent() {
        // 2000 layers of 10·I: the true product is 1e2000.
        let h = [10.0, 0.0, 0.0, 10.0];
        let layers: Vec<&[f64]> = vec![&h; 2000];
        let prefix = prefix_composites(&layers, 2);
        let last = prefix.last().unwrap();
        assert!((last.log10_scaled(last.mantissa()[0]) - 2000.0).abs() < 1e-9);
        assert_eq!(last.to_f64()[0], f64::INFINITY);
        // 1e300 is still exact to rounding.
        let p300 = &prefix[299];
        assert!((p300.to_f64()[0] / 1e300 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn binary_exponent_is_floor_log2() {
        for (x, e) in [
            (1.0, 0),
            (1.999_999_999_999_999_8, 0),
            (2.0, 1),
            (-0.75, -1),
            (f64::MAX, 1023),
            (f64::MIN_POSITIVE, -1022),
            (f64::from_bits(1), -1074),
            (f64::from_bits(3), -1073),
        ] {
            assert_eq!(binary_exponent(x), e, "{x:e}");
        }
        let tiny = ScaledMatrix::new(1, vec![3.0 * f64::from_bits(1)]);
        assert_eq!((tiny.mantissa()[0], tiny.exponent()), (1.5, -1073));
    }

    #[test]
    fn scale_by_power_of_two_handles_extremes() {
        assert_eq!(scale_by_power_of_two(1.5, 1100), f64::INFINITY);
        assert_eq!(scale_by_power_of_two(1.5, -1100), 0.0);
        assert_eq!(scale_by_power_of_two(1.0, -1074), f64::from_bits(1));
        assert_eq!(scale_by_power_of_two(1.0, 1023), 2f64.powi(1023));
    }
}
