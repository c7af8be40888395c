//! f64 lanes for kernels that work on several numbers at once, and the dispatch that picks them.
//!
//! A kernel is written once, generic over a [`Simd`] token `S` whose lane type `S::F64s`
//! implements [`Lanes`]. Three tokens exist:
//!
//! - [`Scalar`]: one lane, a plain `f64` (the one-matrix paths, any n);
//! - [`Portable`]: four lanes, `wide::f64x4` (SSE2 on x86-64, NEON on aarch64, plain f64
//!   elsewhere);
//! - `crate::cpu::Avx`: four lanes in one AVX register (`AvxF64x4`), on x86-64 CPUs that have
//!   AVX.
//!
//! Lane values are only made by a token (`splat`, `load` and the like) or by operations on other
//! lane values, so a value of the AVX lane type proves that an `Avx` token, hence AVX, exists:
//! its safe methods can execute AVX instructions soundly. [`dispatch`] runs a [`Kernel`] with
//! the AVX token when `crate::cpu` detected AVX (and `MHC_ANALYZE_PORTABLE` does not force the
//! portable path), else with `Portable`. [`Simd::vectorize`] compiles the kernel's body with the
//! token's instructions enabled; lane operations and kernel bodies are `#[inline(always)]` so
//! that they end up there.
//!
//! Every operation is a correctly rounded IEEE-754 operation (+, −, ×, ÷, √, no fused
//! multiply-add) or a bit operation, so the three lane types give bit-identical results lane by
//! lane: a kernel answers the same whatever the token, the CPU or the number of lanes.

use std::ops::{Add, Div, Mul, Sub};

#[cfg(target_arch = "x86_64")]
use crate::cpu::Avx;

/// The most lanes a lane type has ([`Lanes::COUNT`] ≤ this).
pub(crate) const MAX_LANES: usize = 4;

/// f64 lanes. Masks are lanes with all bits set (true) or clear (false). There are no
/// constructors here: values come from a [`Simd`] token.
pub(crate) trait Lanes:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self>
{
    /// Number of lanes.
    const COUNT: usize;
    /// `[f64; COUNT]`.
    type Array: Copy + Default + AsRef<[f64]> + AsMut<[f64]>;
    /// The lanes as an array.
    fn to_array(self) -> Self::Array;
    /// The lanes in place, for loading one lane.
    fn lanes_mut(&mut self) -> &mut Self::Array;
    /// √x per lane.
    fn sqrt(self) -> Self;
    /// |x| per lane.
    fn abs(self) -> Self;
    /// |self| with the sign of a·b (the XOR of their sign bits), per lane.
    fn abs_with_sign_of_product(self, a: Self, b: Self) -> Self;
    /// Mask of self > other (false where either is NaN).
    fn greater(self, other: Self) -> Self;
    /// Mask of self ≥ other (false where either is NaN).
    fn greater_or_equal(self, other: Self) -> Self;
    /// Bitwise AND.
    fn and(self, other: Self) -> Self;
    /// Bitwise OR.
    fn or(self, other: Self) -> Self;
    /// Per lane, `if_set` where the mask `self` is set, else `if_clear`.
    fn select(self, if_set: Self, if_clear: Self) -> Self;
    /// Bit i set where lane i of the mask is set.
    fn bitmask(self) -> u32;
}

/// A token that can make lane values of type [`Simd::F64s`]: holding one proves that their
/// instructions run on this CPU.
pub(crate) trait Simd: Copy {
    /// The lanes this token makes.
    type F64s: Lanes;
    /// All lanes equal to `x`.
    fn splat(self, x: f64) -> Self::F64s;
    /// The lanes from an array.
    fn load_array(self, lanes: <Self::F64s as Lanes>::Array) -> Self::F64s;

    /// Lane l equal to `lane(l)`.
    #[inline(always)]
    fn load_with(self, mut lane: impl FnMut(usize) -> f64) -> Self::F64s {
        let mut array = <Self::F64s as Lanes>::Array::default();
        for (l, x) in array.as_mut().iter_mut().enumerate() {
            *x = lane(l);
        }
        self.load_array(array)
    }

    /// The lanes from the first [`Lanes::COUNT`] values of `values`.
    #[inline(always)]
    fn load(self, values: &[f64]) -> Self::F64s {
        let mut array = <Self::F64s as Lanes>::Array::default();
        array
            .as_mut()
            .copy_from_slice(&values[..<Self::F64s as Lanes>::COUNT]);
        self.load_array(array)
    }

    /// Runs `kernel` with this token, compiled with the token's instructions enabled.
    #[inline(always)]
    fn vectorize<K: Kernel>(self, kernel: K) -> K::Output {
        kernel.run(self)
    }
}

/// A computation written once for every lane type.
pub(crate) trait Kernel {
    /// What the kernel returns.
    type Output;
    /// Runs the kernel with the lanes of `simd`. Implementations are `#[inline(always)]`, and so
    /// is every generic function they call with lane values, so that [`Simd::vectorize`]
    /// compiles them with the token's instructions. Closures must not compute with lane values:
    /// a closure body cannot be marked `#[inline(always)]`, and one left out of line would
    /// execute each lane operation as a call.
    fn run<S: Simd>(self, simd: S) -> Self::Output;
}

/// Runs `kernel` with the widest lanes this CPU has: AVX when `crate::cpu` detected it (and the
/// portable path is not forced), [`Portable`] otherwise.
#[inline]
pub(crate) fn dispatch<K: Kernel>(kernel: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    if let Some(avx) = Avx::detect() {
        return avx.vectorize(kernel);
    }
    Portable.vectorize(kernel)
}

/// One lane: a plain `f64`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scalar;

impl Simd for Scalar {
    type F64s = f64;
    #[inline(always)]
    fn splat(self, x: f64) -> f64 {
        x
    }
    #[inline(always)]
    fn load_array(self, lanes: [f64; 1]) -> f64 {
        lanes[0]
    }
}

/// The sign bit of an f64.
const SIGN: u64 = 1 << 63;

impl Lanes for f64 {
    const COUNT: usize = 1;
    type Array = [f64; 1];
    #[inline(always)]
    fn to_array(self) -> [f64; 1] {
        [self]
    }
    #[inline(always)]
    fn lanes_mut(&mut self) -> &mut [f64; 1] {
        std::array::from_mut(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f64::abs(self)
    }
    #[inline(always)]
    fn abs_with_sign_of_product(self, a: Self, b: Self) -> Self {
        f64::from_bits((self.to_bits() & !SIGN) | ((a.to_bits() ^ b.to_bits()) & SIGN))
    }
    #[inline(always)]
    fn greater(self, other: Self) -> Self {
        mask(self > other)
    }
    #[inline(always)]
    fn greater_or_equal(self, other: Self) -> Self {
        mask(self >= other)
    }
    #[inline(always)]
    fn and(self, other: Self) -> Self {
        f64::from_bits(self.to_bits() & other.to_bits())
    }
    #[inline(always)]
    fn or(self, other: Self) -> Self {
        f64::from_bits(self.to_bits() | other.to_bits())
    }
    #[inline(always)]
    fn select(self, if_set: Self, if_clear: Self) -> Self {
        let mask = self.to_bits();
        f64::from_bits((if_set.to_bits() & mask) | (if_clear.to_bits() & !mask))
    }
    #[inline(always)]
    fn bitmask(self) -> u32 {
        (self.to_bits() >> 63) as u32
    }
}

/// The one-lane mask of `condition`: all bits set or all clear.
#[inline(always)]
fn mask(condition: bool) -> f64 {
    f64::from_bits(0u64.wrapping_sub(u64::from(condition)))
}

/// Four lanes of `wide::f64x4`, on every target.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Portable;

impl Simd for Portable {
    type F64s = wide::f64x4;
    #[inline(always)]
    fn splat(self, x: f64) -> wide::f64x4 {
        wide::f64x4::splat(x)
    }
    #[inline(always)]
    fn load_array(self, lanes: [f64; 4]) -> wide::f64x4 {
        wide::f64x4::from(lanes)
    }
}

const _: () = assert!(<wide::f64x4 as Lanes>::COUNT <= MAX_LANES);

impl Lanes for wide::f64x4 {
    const COUNT: usize = 4;
    type Array = [f64; 4];
    #[inline(always)]
    fn to_array(self) -> [f64; 4] {
        wide::f64x4::to_array(self)
    }
    #[inline(always)]
    fn lanes_mut(&mut self) -> &mut [f64; 4] {
        self.as_mut_array()
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        wide::f64x4::sqrt(self)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        wide::f64x4::abs(self)
    }
    #[inline(always)]
    fn abs_with_sign_of_product(self, a: Self, b: Self) -> Self {
        wide::f64x4::abs(self).flip_signs(a ^ b)
    }
    #[inline(always)]
    fn greater(self, other: Self) -> Self {
        wide::f64x4::simd_gt(self, other)
    }
    #[inline(always)]
    fn greater_or_equal(self, other: Self) -> Self {
        wide::f64x4::simd_ge(self, other)
    }
    #[inline(always)]
    fn and(self, other: Self) -> Self {
        self & other
    }
    #[inline(always)]
    fn or(self, other: Self) -> Self {
        self | other
    }
    #[inline(always)]
    fn select(self, if_set: Self, if_clear: Self) -> Self {
        self.bitselect(if_set, if_clear)
    }
    #[inline(always)]
    fn bitmask(self) -> u32 {
        self.to_bitmask()
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    use super::{Kernel, Lanes, Simd};
    use crate::cpu::Avx;

    /// Four f64 lanes in one AVX register.
    ///
    /// Only an [`Avx`] token makes a value of this type (the field is private to this module and
    /// every other value comes from operations on existing ones), and only `crate::cpu`'s
    /// detection makes the token. So wherever a value exists the CPU has AVX, and every method
    /// may execute AVX instructions. The methods are `#[inline(always)]`: inside
    /// [`Simd::vectorize`] they compile to single instructions.
    #[derive(Clone, Copy)]
    #[repr(transparent)]
    pub(crate) struct AvxF64x4(__m256d);

    // SAFETY (every `unsafe` block in this module): the CPU has AVX, proven by the `Avx` token
    // at hand or by the existence of an `AvxF64x4` value (see the type's docs).
    impl Simd for Avx {
        type F64s = AvxF64x4;
        #[inline(always)]
        fn splat(self, x: f64) -> AvxF64x4 {
            unsafe { AvxF64x4(_mm256_set1_pd(x)) }
        }
        #[inline(always)]
        fn load_array(self, lanes: [f64; 4]) -> AvxF64x4 {
            unsafe { AvxF64x4(_mm256_loadu_pd(lanes.as_ptr())) }
        }
        #[inline(always)]
        fn vectorize<K: Kernel>(self, kernel: K) -> K::Output {
            /// `kernel` compiled with AVX: its `#[inline(always)]` body and lane operations are
            /// inlined here.
            #[target_feature(enable = "avx")]
            fn with_avx<K: Kernel>(avx: Avx, kernel: K) -> K::Output {
                kernel.run(avx)
            }
            unsafe { with_avx(self, kernel) }
        }
    }

    macro_rules! binary {
        ($trait:ident, $method:ident, $intrinsic:ident) => {
            impl std::ops::$trait for AvxF64x4 {
                type Output = AvxF64x4;
                #[inline(always)]
                fn $method(self, other: AvxF64x4) -> AvxF64x4 {
                    unsafe { AvxF64x4($intrinsic(self.0, other.0)) }
                }
            }
        };
    }
    binary!(Add, add, _mm256_add_pd);
    binary!(Sub, sub, _mm256_sub_pd);
    binary!(Mul, mul, _mm256_mul_pd);
    binary!(Div, div, _mm256_div_pd);

    const _: () = assert!(<AvxF64x4 as Lanes>::COUNT <= super::MAX_LANES);

    impl Lanes for AvxF64x4 {
        const COUNT: usize = 4;
        type Array = [f64; 4];
        #[inline(always)]
        fn to_array(self) -> [f64; 4] {
            let mut out = [0.0; 4];
            unsafe { _mm256_storeu_pd(out.as_mut_ptr(), self.0) };
            out
        }
        #[inline(always)]
        fn lanes_mut(&mut self) -> &mut [f64; 4] {
            // SAFETY: __m256d is four f64 in memory order, 32-byte aligned (more than [f64; 4]
            // needs); no instruction is executed.
            unsafe { &mut *(self as *mut AvxF64x4 as *mut [f64; 4]) }
        }
        #[inline(always)]
        fn sqrt(self) -> Self {
            unsafe { AvxF64x4(_mm256_sqrt_pd(self.0)) }
        }
        #[inline(always)]
        fn abs(self) -> Self {
            unsafe { AvxF64x4(_mm256_andnot_pd(_mm256_set1_pd(-0.0), self.0)) }
        }
        #[inline(always)]
        fn abs_with_sign_of_product(self, a: Self, b: Self) -> Self {
            unsafe {
                let sign_bit = _mm256_set1_pd(-0.0);
                let sign = _mm256_and_pd(_mm256_xor_pd(a.0, b.0), sign_bit);
                AvxF64x4(_mm256_or_pd(_mm256_andnot_pd(sign_bit, self.0), sign))
            }
        }
        #[inline(always)]
        fn greater(self, other: Self) -> Self {
            unsafe { AvxF64x4(_mm256_cmp_pd::<_CMP_GT_OQ>(self.0, other.0)) }
        }
        #[inline(always)]
        fn greater_or_equal(self, other: Self) -> Self {
            unsafe { AvxF64x4(_mm256_cmp_pd::<_CMP_GE_OQ>(self.0, other.0)) }
        }
        #[inline(always)]
        fn and(self, other: Self) -> Self {
            unsafe { AvxF64x4(_mm256_and_pd(self.0, other.0)) }
        }
        #[inline(always)]
        fn or(self, other: Self) -> Self {
            unsafe { AvxF64x4(_mm256_or_pd(self.0, other.0)) }
        }
        #[inline(always)]
        fn select(self, if_set: Self, if_clear: Self) -> Self {
            unsafe { AvxF64x4(_mm256_blendv_pd(if_clear.0, if_set.0, self.0)) }
        }
        #[inline(always)]
        fn bitmask(self) -> u32 {
            unsafe { _mm256_movemask_pd(self.0) as u32 }
        }
    }
}

/// Runs `kernel` (made afresh by `make`) with every token this CPU supports, whatever
/// `MHC_ANALYZE_PORTABLE` says: the answers with their token's name, scalar first.
#[cfg(test)]
pub(crate) fn on_every_path<K: Kernel>(
    mut make: impl FnMut() -> K,
) -> Vec<(&'static str, K::Output)> {
    let mut answers = vec![
        ("scalar", Scalar.vectorize(make())),
        ("portable", Portable.vectorize(make())),
    ];
    #[cfg(target_arch = "x86_64")]
    if let Some(avx) = Avx::detect_ignoring_override() {
        answers.push(("avx", avx.vectorize(make())));
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Awkward inputs: lane l of the values made at start s holds `VALUES[(s + l + offset) % 10]`.
    const VALUES: [f64; 10] = [
        1.5,
        -2.25,
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        3e-310,
        -1e300,
        7.0,
    ];

    /// Every lane operation at every start: `bits[s][operation][lane]`.
    struct EveryOperation;

    impl Kernel for EveryOperation {
        type Output = Vec<Vec<Vec<u64>>>;
        #[inline(always)]
        fn run<S: Simd>(self, simd: S) -> Self::Output {
            let lanes = |x: S::F64s| x.to_array().as_ref().iter().map(|x| x.to_bits()).collect();
            (0..VALUES.len())
                .map(|s| {
                    let at = |offset: usize| simd.load_with(|l| VALUES[(s + l + offset) % 10]);
                    let (x, y, z) = (at(0), at(3), at(7));
                    // Equal pairs too: x with itself, and 0.0 beside −0.0.
                    let next = at(1);
                    let mut loaded = z;
                    loaded.lanes_mut().as_mut()[0] = -VALUES[s % 10];
                    let rotated: Vec<f64> = (0..10).map(|k| VALUES[(s + k) % 10]).collect();
                    let bitmask = x.greater(y).bitmask();
                    let mut operations: Vec<Vec<u64>> = [
                        x + y,
                        x - y,
                        x * y,
                        x / y,
                        x.sqrt(),
                        x.abs(),
                        x.abs_with_sign_of_product(y, z),
                        x.greater(y),
                        x.greater_or_equal(y),
                        x.greater(x),
                        x.greater_or_equal(x),
                        x.greater(next),
                        x.greater_or_equal(next),
                        x.greater(y).and(y.greater_or_equal(z)),
                        x.greater(y).or(y.greater(z)),
                        x.greater(z).select(x, y),
                        simd.splat(2.5) * x,
                        simd.load(&rotated).greater(z).select(z, x),
                    ]
                    .into_iter()
                    .map(lanes)
                    .collect();
                    operations.push(
                        (0..S::F64s::COUNT)
                            .map(|l| u64::from((bitmask >> l) & 1))
                            .collect(),
                    );
                    operations.push(lanes(loaded)[..1].to_vec());
                    operations
                })
                .collect()
        }
    }

    #[test]
    fn every_lane_type_gives_the_scalar_bits_lane_by_lane() {
        let answers = on_every_path(|| EveryOperation);
        let (_, scalar) = &answers[0];
        for (name, bits) in &answers[1..] {
            for (s, operations) in bits.iter().enumerate() {
                for (operation, lanes) in operations.iter().enumerate() {
                    for (l, lane) in lanes.iter().enumerate() {
                        let expected = scalar[(s + l) % 10][operation][0];
                        assert_eq!(
                            *lane, expected,
                            "{name}: start {s}, operation {operation}, lane {l}"
                        );
                    }
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx") {
            assert_eq!(answers.len(), 3);
        }
    }

    #[test]
    fn scalar_lanes_follow_ieee_and_mask_conventions() {
        let all = f64::from_bits(u64::MAX);
        assert_eq!(2.0f64.greater(1.0).to_bits(), u64::MAX);
        assert_eq!(1.0f64.greater(1.0).to_bits(), 0);
        assert_eq!(f64::NAN.greater_or_equal(1.0).to_bits(), 0);
        assert_eq!(1.0f64.greater_or_equal(1.0).to_bits(), u64::MAX);
        assert_eq!(all.select(3.0, 4.0), 3.0);
        assert_eq!(0.0f64.select(3.0, 4.0), 4.0);
        assert_eq!(all.bitmask(), 1);
        assert_eq!(0.0f64.bitmask(), 0);
        assert_eq!(2.0f64.abs_with_sign_of_product(-1.0, 3.0), -2.0);
        assert_eq!((-2.0f64).abs_with_sign_of_product(-1.0, -3.0), 2.0);
    }
}
