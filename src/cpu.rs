//! Which SIMD instruction sets the kernels may use, detected once per process.
//!
//! Executing an AVX instruction on a CPU without it is undefined behaviour, so code that does
//! must hold a token: [`Avx`], a zero-sized type that only its `detect` function creates, and
//! only after the CPU said it has the feature. Every function that can
//! execute such an instruction either takes the token, is a method of a type whose values only
//! a token can make (`crate::lanes`), or is `unsafe` with the token's existence as its
//! precondition. The CPU is asked once ([`std::sync::OnceLock`]); later calls read the cached
//! answer.
//!
//! **Forcing the portable path.** When the environment variable `MHC_ANALYZE_PORTABLE` is set to
//! anything but the empty string or `0` (read once, at the first detection), `detect` answers
//! `None` whatever the CPU has: every kernel then runs its portable path (`wide::f64x4` lanes).
//! Both paths give the same bits — every lane operation is a
//! correctly rounded IEEE-754 operation or a bit operation — and CI runs the test suite both
//! ways. The kernels' own tests compare the two paths explicitly, whatever the variable says.
//!
//! On targets other than x86-64 the token does not exist and the portable path is the only one.

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::Avx;

/// The environment variable that forces the portable path (see the module docs).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const PORTABLE_VARIABLE: &str = "MHC_ANALYZE_PORTABLE";

/// Whether `value` (of [`PORTABLE_VARIABLE`]) asks for the portable path: set, not empty, not `0`.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn asks_for_portable(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|value| !value.is_empty() && value != "0")
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::sync::OnceLock;

    /// What the CPU has, and whether [`super::PORTABLE_VARIABLE`] forbids using it.
    #[derive(Clone, Copy)]
    struct Detected {
        avx: bool,
        forced_portable: bool,
    }

    fn detected() -> Detected {
        static DETECTED: OnceLock<Detected> = OnceLock::new();
        *DETECTED.get_or_init(|| Detected {
            avx: std::is_x86_feature_detected!("avx"),
            forced_portable: super::asks_for_portable(
                std::env::var_os(super::PORTABLE_VARIABLE).as_deref(),
            ),
        })
    }

    /// Proof that the CPU executes AVX instructions (256-bit f64 arithmetic). Only
    /// [`Avx::detect`] makes one.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Avx(());

    impl Avx {
        /// The token when the CPU has AVX and the portable path is not forced (module docs).
        pub(crate) fn detect() -> Option<Self> {
            let detected = detected();
            (detected.avx && !detected.forced_portable).then_some(Self(()))
        }

        /// The token when the CPU has AVX, whatever `MHC_ANALYZE_PORTABLE` says: for tests that
        /// compare the two paths.
        #[cfg(test)]
        pub(crate) fn detect_ignoring_override() -> Option<Self> {
            detected().avx.then_some(Self(()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn the_variable_forces_the_portable_path_unless_empty_or_zero() {
        assert!(!asks_for_portable(None));
        assert!(!asks_for_portable(Some(OsStr::new(""))));
        assert!(!asks_for_portable(Some(OsStr::new("0"))));
        assert!(asks_for_portable(Some(OsStr::new("1"))));
        assert!(asks_for_portable(Some(OsStr::new("yes"))));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn detection_follows_the_cpu_and_the_variable() {
        let forced = asks_for_portable(std::env::var_os(PORTABLE_VARIABLE).as_deref());
        let avx = std::is_x86_feature_detected!("avx");
        assert_eq!(Avx::detect().is_some(), avx && !forced);
        assert_eq!(Avx::detect_ignoring_override().is_some(), avx);
    }
}
