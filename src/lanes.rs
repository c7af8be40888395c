//! Four f64 lanes for kernels that work on several small matrices at once.
//!
//! [`Lanes`] is the handful of operations those kernels need. Two types implement it:
//!
//! - `wide::f64x4`, on every target (SSE2 on x86-64, NEON on aarch64, plain f64 elsewhere);
//! - [`Avx`] on x86-64, used only after `is_x86_feature_detected!("avx")` said yes, from inside
//!   a `#[target_feature(enable = "avx")]` function.
//!
//! Every operation is a correctly rounded IEEE-754 operation (+, −, ×, ÷, √, no fused
//! multiply-add) or a bit operation, so both types give bit-identical results: a kernel written
//! against [`Lanes`] answers the same on any x86-64 CPU, with or without AVX.

use std::ops::{Add, Div, Mul, Sub};

/// Four f64 lanes. Masks are lanes with all bits set (true) or clear (false).
pub(crate) trait Lanes:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self>
{
    /// All four lanes equal to `x`.
    fn splat(x: f64) -> Self;
    /// The lanes from an array.
    fn from_array(lanes: [f64; 4]) -> Self;
    /// The lanes as an array.
    fn to_array(self) -> [f64; 4];
    /// The lanes in place, for loading one lane.
    fn lanes_mut(&mut self) -> &mut [f64; 4];
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

impl Lanes for wide::f64x4 {
    #[inline(always)]
    fn splat(x: f64) -> Self {
        wide::f64x4::splat(x)
    }
    #[inline(always)]
    fn from_array(lanes: [f64; 4]) -> Self {
        wide::f64x4::from(lanes)
    }
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
pub(crate) use avx::Avx;

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    /// Four lanes in one AVX register.
    ///
    /// Safety contract: values of this type are only created and used inside a function
    /// compiled with `#[target_feature(enable = "avx")]` that runs after
    /// `is_x86_feature_detected!("avx")` returned true. Every method is `#[inline(always)]`,
    /// so its AVX instructions end up in that function.
    #[derive(Clone, Copy)]
    #[repr(transparent)]
    pub(crate) struct Avx(__m256d);

    macro_rules! binary {
        ($trait:ident, $method:ident, $intrinsic:ident) => {
            impl std::ops::$trait for Avx {
                type Output = Avx;
                #[inline(always)]
                fn $method(self, other: Avx) -> Avx {
                    // SAFETY: see the type's safety contract.
                    unsafe { Avx($intrinsic(self.0, other.0)) }
                }
            }
        };
    }
    binary!(Add, add, _mm256_add_pd);
    binary!(Sub, sub, _mm256_sub_pd);
    binary!(Mul, mul, _mm256_mul_pd);
    binary!(Div, div, _mm256_div_pd);

    // SAFETY (every block below): see the type's safety contract.
    impl super::Lanes for Avx {
        #[inline(always)]
        fn splat(x: f64) -> Self {
            unsafe { Avx(_mm256_set1_pd(x)) }
        }
        #[inline(always)]
        fn from_array(lanes: [f64; 4]) -> Self {
            unsafe { Avx(_mm256_loadu_pd(lanes.as_ptr())) }
        }
        #[inline(always)]
        fn to_array(self) -> [f64; 4] {
            let mut out = [0.0; 4];
            unsafe { _mm256_storeu_pd(out.as_mut_ptr(), self.0) };
            out
        }
        #[inline(always)]
        fn lanes_mut(&mut self) -> &mut [f64; 4] {
            // __m256d is four f64 in memory order, 32-byte aligned (more than [f64; 4] needs).
            unsafe { &mut *(self as *mut Avx as *mut [f64; 4]) }
        }
        #[inline(always)]
        fn sqrt(self) -> Self {
            unsafe { Avx(_mm256_sqrt_pd(self.0)) }
        }
        #[inline(always)]
        fn abs(self) -> Self {
            unsafe { Avx(_mm256_andnot_pd(_mm256_set1_pd(-0.0), self.0)) }
        }
        #[inline(always)]
        fn abs_with_sign_of_product(self, a: Self, b: Self) -> Self {
            unsafe {
                let sign_bit = _mm256_set1_pd(-0.0);
                let sign = _mm256_and_pd(_mm256_xor_pd(a.0, b.0), sign_bit);
                Avx(_mm256_or_pd(_mm256_andnot_pd(sign_bit, self.0), sign))
            }
        }
        #[inline(always)]
        fn greater(self, other: Self) -> Self {
            unsafe { Avx(_mm256_cmp_pd::<_CMP_GT_OQ>(self.0, other.0)) }
        }
        #[inline(always)]
        fn greater_or_equal(self, other: Self) -> Self {
            unsafe { Avx(_mm256_cmp_pd::<_CMP_GE_OQ>(self.0, other.0)) }
        }
        #[inline(always)]
        fn and(self, other: Self) -> Self {
            unsafe { Avx(_mm256_and_pd(self.0, other.0)) }
        }
        #[inline(always)]
        fn or(self, other: Self) -> Self {
            unsafe { Avx(_mm256_or_pd(self.0, other.0)) }
        }
        #[inline(always)]
        fn select(self, if_set: Self, if_clear: Self) -> Self {
            unsafe { Avx(_mm256_blendv_pd(if_clear.0, if_set.0, self.0)) }
        }
        #[inline(always)]
        fn bitmask(self) -> u32 {
            unsafe { _mm256_movemask_pd(self.0) as u32 }
        }
    }
}
