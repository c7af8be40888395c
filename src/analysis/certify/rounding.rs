//! Outward rounding for the certificate's own f64 evaluation.
//!
//! Every bound the certificate computes must hold for the exact real numbers it stands for, so
//! each f64 operation whose result feeds an upper bound is followed by one step up
//! ([`f64::next_up`]) and each one feeding a lower bound by one step down. Under IEEE 754
//! round-to-nearest the exact result of `+ − × ÷` lies between the two neighbours of the
//! rounded one, including in the subnormal range and on overflow (an overflowed result is
//! ±∞, and `next_down(∞)` is `f64::MAX`, still below the exact value).
//!
//! `exp`, `ln` and `ln_1p` come from the platform's libm, which IEEE 754 does not pin down:
//! we assume their error is below 2 ulp (glibc documents < 1 ulp) and step twice.

use crate::compose::{binary_exponent, scale_by_power_of_two};

/// One step towards +∞.
#[inline]
pub(crate) fn up(x: f64) -> f64 {
    x.next_up()
}

/// One step towards −∞.
#[inline]
pub(crate) fn down(x: f64) -> f64 {
    x.next_down()
}

/// An upper bound of eˣ.
#[inline]
pub(crate) fn exp_up(x: f64) -> f64 {
    up(up(x.exp()))
}

/// A lower bound of eˣ (never negative).
#[inline]
pub(crate) fn exp_down(x: f64) -> f64 {
    down(down(x.exp())).max(0.0)
}

/// An upper bound of ln x for x ≥ 0 (−∞ at 0).
#[inline]
pub(crate) fn ln_up(x: f64) -> f64 {
    up(up(x.ln()))
}

/// A lower bound of ln x for x ≥ 0 (−∞ at 0).
#[inline]
pub(crate) fn ln_down(x: f64) -> f64 {
    down(down(x.ln()))
}

/// An upper bound of ln(1 + x) for x ≥ −1.
#[inline]
pub(crate) fn ln_1p_up(x: f64) -> f64 {
    up(up(x.ln_1p()))
}

/// A lower bound of ln(1 + x) for x ≥ −1.
#[inline]
pub(crate) fn ln_1p_down(x: f64) -> f64 {
    down(down(x.ln_1p()))
}

/// `a · b` rounded up, for a, b ≥ 0, with 0 · ∞ = 0: an infinite factor is only ever a bound
/// on a finite quantity, and a zero factor is exactly zero.
#[inline]
pub(crate) fn mul_up(a: f64, b: f64) -> f64 {
    if a == 0.0 || b == 0.0 { 0.0 } else { up(a * b) }
}

/// `a · b` rounded down, for a, b ≥ 0 (0 · ∞ = 0 as in [`mul_up`]).
#[inline]
pub(crate) fn mul_down(a: f64, b: f64) -> f64 {
    if a == 0.0 || b == 0.0 {
        0.0
    } else {
        down(a * b).max(0.0)
    }
}

/// Σ values, rounded up after each addition.
pub(crate) fn sum_up(values: impl IntoIterator<Item = f64>) -> f64 {
    values.into_iter().fold(0.0, |s, x| up(s + x))
}

/// Σ values, rounded down after each addition.
pub(crate) fn sum_down(values: impl IntoIterator<Item = f64>) -> f64 {
    values.into_iter().fold(0.0, |s, x| down(s + x))
}

/// An upper bound of log-sum-exp, ln Σ_k e^{x_k}, given upper bounds of the x_k.
/// −∞ for no terms (or all −∞), +∞ if a term is +∞.
pub(crate) fn lse_up(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    let sum = sum_up(values.iter().map(|&x| exp_up(up(x - max))));
    up(max + ln_up(sum))
}

/// A lower bound of log-sum-exp given lower bounds of the x_k.
pub(crate) fn lse_down(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    // The term at the maximum is e⁰ = 1 exactly; the others are bounded below.
    let sum = sum_down(values.iter().map(|&x| {
        if x == max {
            1.0
        } else {
            exp_down(down(x - max))
        }
    }));
    down(max + ln_down(sum))
}

/// γ_m = m·u / (1 − m·u), rounded up: the classical bound on the relative error of m
/// consecutive roundings with unit roundoff u (Higham, *Accuracy and Stability of Numerical
/// Algorithms*, 2nd ed., Lemma 3.1). +∞ when m·u ≥ 1.
pub(crate) fn gamma_up(m: f64, u: f64) -> f64 {
    if u == 0.0 {
        return 0.0;
    }
    let mu = up(m * u);
    if mu >= 1.0 {
        return f64::INFINITY;
    }
    up(mu / down(1.0 - mu))
}

/// A closed interval [lo, hi] of reals (lo ≤ hi; either end may be infinite).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Interval {
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    /// The interval [lo, hi].
    pub fn new(lo: f64, hi: f64) -> Self {
        debug_assert!(lo <= hi, "interval [{lo}, {hi}]");
        Self { lo, hi }
    }

    /// The single point x.
    pub fn point(x: f64) -> Self {
        Self { lo: x, hi: x }
    }

    /// max(|lo|, |hi|): the largest magnitude of a member.
    pub(crate) fn mag(self) -> f64 {
        self.lo.abs().max(self.hi.abs())
    }

    /// hi − lo, rounded up.
    pub fn width(self) -> f64 {
        up(self.hi - self.lo)
    }

    /// The sum interval, rounded outward.
    pub fn add(self, other: Self) -> Self {
        Self {
            lo: down(self.lo + other.lo),
            hi: up(self.hi + other.hi),
        }
    }

    /// The product interval (any signs), rounded outward. 0 · ∞ is taken as 0 (see
    /// [`mul_up`]).
    pub(crate) fn mul(self, other: Self) -> Self {
        let corners = [
            product(self.lo, other.lo),
            product(self.lo, other.hi),
            product(self.hi, other.lo),
            product(self.hi, other.hi),
        ];
        let lo = corners.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = corners.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Self {
            lo: if lo == 0.0 { 0.0 } else { down(lo) },
            hi: if hi == 0.0 { 0.0 } else { up(hi) },
        }
    }

    /// {−x : x ∈ self} (exact).
    pub(crate) fn neg(self) -> Self {
        Self {
            lo: -self.hi,
            hi: -self.lo,
        }
    }

    /// The interval widened by `r ≥ 0` on both sides, rounded outward.
    pub(crate) fn widen(self, r: f64) -> Self {
        if r == 0.0 {
            return self;
        }
        Self {
            lo: down(self.lo - r),
            hi: up(self.hi + r),
        }
    }

    /// The intersection with `other`, assuming both enclose the same quantity (so they meet).
    /// If rounding left them disjoint by a hair, the narrower one is kept.
    pub(crate) fn intersect(self, other: Self) -> Self {
        let lo = self.lo.max(other.lo);
        let hi = self.hi.min(other.hi);
        if lo <= hi {
            Self { lo, hi }
        } else if self.width() <= other.width() {
            self
        } else {
            other
        }
    }

    /// The smallest interval holding both.
    pub fn hull(self, other: Self) -> Self {
        Self {
            lo: self.lo.min(other.lo),
            hi: self.hi.max(other.hi),
        }
    }

    /// {eˣ : x ∈ self}, rounded outward.
    pub fn exp(self) -> Self {
        Self {
            lo: exp_down(self.lo),
            hi: exp_up(self.hi),
        }
    }
}

/// x · y with 0 · ±∞ = 0.
fn product(x: f64, y: f64) -> f64 {
    if x == 0.0 || y == 0.0 { 0.0 } else { x * y }
}

/// A non-negative upper bound `mantissa · 2^exponent` that does not overflow: the mantissa is 0
/// or lies in [1, 2), and scaling by a power of two is exact.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Scaled {
    mantissa: f64,
    exponent: i64,
}

impl Scaled {
    /// Zero.
    pub(crate) const ZERO: Scaled = Scaled {
        mantissa: 0.0,
        exponent: 0,
    };

    /// +∞ (a bound that says nothing).
    pub const INFINITY: Scaled = Scaled {
        mantissa: f64::INFINITY,
        exponent: 0,
    };

    /// `x · 2^exponent` for x ≥ 0 (exact; +∞ stays +∞).
    pub(crate) fn from_parts_up(x: f64, exponent: i64) -> Self {
        debug_assert!(x >= 0.0, "{x}");
        if x == 0.0 {
            return Self::ZERO;
        }
        if !x.is_finite() {
            return Self::INFINITY;
        }
        let shift = binary_exponent(x);
        let mantissa = scale_by_power_of_two(x, -shift);
        // Exact unless x was subnormal (then the scaled value is still exact: scaling up a
        // subnormal by a power of two into [1, 2) loses nothing).
        Self {
            mantissa,
            exponent: exponent + shift,
        }
    }

    /// `x` itself, for a finite x ≥ 0.
    pub(crate) fn from_f64(x: f64) -> Self {
        Self::from_parts_up(x, 0)
    }

    /// An upper bound of `self · other`.
    pub(crate) fn mul_up(self, other: Self) -> Self {
        if self.mantissa == 0.0 || other.mantissa == 0.0 {
            return Self::ZERO;
        }
        if self.is_infinite() || other.is_infinite() {
            return Self::INFINITY;
        }
        Self::from_parts_up(
            up(self.mantissa * other.mantissa),
            self.exponent + other.exponent,
        )
    }

    /// An upper bound of `self + other`.
    pub(crate) fn add_up(self, other: Self) -> Self {
        if self.is_infinite() || other.is_infinite() {
            return Self::INFINITY;
        }
        let (big, small) = if self.exponent >= other.exponent {
            (self, other)
        } else {
            (other, self)
        };
        if small.mantissa == 0.0 {
            return big;
        }
        let gap = big.exponent - small.exponent;
        // A term more than 2^60 times smaller is bounded by one ulp of the larger one.
        let small_scaled = if gap > 60 {
            f64::EPSILON
        } else {
            up(scale_by_power_of_two(small.mantissa, -gap))
        };
        Self::from_parts_up(up(big.mantissa + small_scaled), big.exponent)
    }

    /// Whether the bound is +∞.
    pub fn is_infinite(self) -> bool {
        self.mantissa.is_infinite()
    }

    /// Whether `self < other` as numbers.
    pub(crate) fn less_than(self, other: Self) -> bool {
        if self.is_infinite() {
            return false;
        }
        if other.is_infinite() {
            return true;
        }
        match (self.mantissa == 0.0, other.mantissa == 0.0) {
            (true, true) => false,
            (true, false) => true,
            (false, true) => false,
            _ => (self.exponent, self.mantissa) < (other.exponent, other.mantissa),
        }
    }

    /// The bound as an f64 upper bound: +∞ when it exceeds `f64::MAX`.
    pub(crate) fn to_f64_up(self) -> f64 {
        if self.mantissa == 0.0 || self.is_infinite() {
            return self.mantissa;
        }
        let value = scale_by_power_of_two(self.mantissa, self.exponent);
        if value < f64::MIN_POSITIVE {
            // Subnormal or zero: the scaling may have rounded down.
            up(value)
        } else {
            value
        }
    }

    /// An upper bound of log10 of the value (−∞ for zero).
    pub(crate) fn log10_up(self) -> f64 {
        if self.mantissa == 0.0 {
            return f64::NEG_INFINITY;
        }
        if self.is_infinite() {
            return f64::INFINITY;
        }
        let log2 = up(up(self.mantissa.log2()) + self.exponent as f64);
        let log10 = if log2 >= 0.0 {
            up(log2 * up(std::f64::consts::LOG10_2))
        } else {
            up(log2 * down(std::f64::consts::LOG10_2))
        };
        up(up(log10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lse_bounds_bracket_the_value_by_a_few_ulps() {
        // ln(e⁰ + e⁰) = ln 2; ln(e^1000 + e^1000) = 1000 + ln 2 (no overflow).
        for (values, exact) in [
            (vec![0.0, 0.0], std::f64::consts::LN_2),
            (vec![1000.0, 1000.0], 1000.0 + std::f64::consts::LN_2),
            (vec![-3.0], -3.0),
        ] {
            let hi = lse_up(&values);
            let lo = lse_down(&values);
            assert!(lo <= exact && exact <= hi, "{lo} ≤ {exact} ≤ {hi}");
            let tol = 16.0 * f64::EPSILON * exact.abs().max(1.0);
            assert!(hi - lo < tol, "{lo} {hi}");
        }
        assert_eq!(lse_up(&[]), f64::NEG_INFINITY);
    }

    #[test]
    fn interval_products_take_every_corner() {
        let a = Interval::new(-2.0, 3.0);
        let b = Interval::new(-5.0, 1.0);
        let p = a.mul(b);
        // Corners: 10, −2, −15, 3 → [−15, 10], rounded outward by one step.
        assert!(p.lo <= -15.0 && p.lo > -15.0 - 1e-13);
        assert!(p.hi >= 10.0 && p.hi < 10.0 + 1e-13);
        assert_eq!(
            Interval::point(0.0)
                .mul(Interval::new(f64::NEG_INFINITY, 1.0))
                .hi,
            0.0
        );
    }

    #[test]
    fn gamma_matches_its_formula() {
        let u = f64::EPSILON / 2.0;
        let g = gamma_up(6.0, u);
        assert!(g >= 6.0 * u / (1.0 - 6.0 * u) && g < 6.0 * u * (1.0 + 1e-12));
        assert_eq!(gamma_up(6.0, 0.0), 0.0);
        assert_eq!(gamma_up(1e20, 0.5), f64::INFINITY);
    }

    #[test]
    fn scaled_bounds_survive_beyond_f64() {
        let big = Scaled::from_f64(1e200);
        let product = big.mul_up(big); // 1e400
        assert_eq!(product.to_f64_up(), f64::INFINITY);
        let log10 = product.log10_up();
        assert!((400.0..400.0 + 1e-12).contains(&log10), "{log10}");
        let sum = product.add_up(Scaled::from_f64(1.0));
        assert!(!sum.less_than(product));
        assert!(Scaled::from_f64(2.0).less_than(Scaled::from_f64(3.0)));
        assert!(Scaled::ZERO.less_than(Scaled::from_f64(1e-300)));
        let half = Scaled::from_f64(0.75).mul_up(Scaled::from_f64(2.0));
        assert!(half.to_f64_up() >= 1.5 && half.to_f64_up() < 1.5 + 1e-15);
    }
}
