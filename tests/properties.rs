//! Property tests of the mathematics (proptest), with independent cross-checks.

use mhc_analyze::analysis::stats::{exact_quantile, selected_quantiles};
use mhc_analyze::compose::{Composite, ScaledMatrix, prefix_composites, suffix_composites};
use mhc_analyze::generate::{SinkhornOrder, SinkhornParams, sinkhorn_in_place};
use mhc_analyze::metrics::birkhoff::{ProjectionMethod, marginal_error_of};
use mhc_analyze::metrics::{
    MatrixMetrics, Metric, birkhoff_projection, column_sums, dykstra_projection, row_sums,
    singular_values,
};
use proptest::prelude::*;

/// Square matrices: size in `sizes`, entries uniform in ±`scale`.
fn matrix(
    sizes: std::ops::RangeInclusive<usize>,
    scale: f64,
) -> impl Strategy<Value = (usize, Vec<f64>)> {
    sizes.prop_flat_map(move |n| (Just(n), prop::collection::vec(-scale..scale, n * n)))
}

/// HC-like matrices of varied scale: identity plus noise, times a magnitude 1e-3 … 1e4.
fn hc_like() -> impl Strategy<Value = (usize, Vec<f64>)> {
    (matrix(2..=8, 1.0), -3.0f64..4.0).prop_map(|((n, mut m), log_scale)| {
        let scale = 10f64.powf(log_scale);
        for i in 0..n {
            m[i * n + i] += 1.0;
        }
        m.iter_mut().for_each(|x| *x *= scale);
        (n, m)
    })
}

/// Exactly doubly stochastic matrices: convex combinations of permutations.
fn doubly_stochastic(n: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        (
            Just(()).prop_perturb(move |_, mut rng| {
                let mut p: Vec<usize> = (0..n).collect();
                for i in (1..n).rev() {
                    p.swap(i, rng.random_range(0..=i));
                }
                p
            }),
            0.01f64..1.0,
        ),
        1..5,
    )
    .prop_map(move |terms| {
        let total: f64 = terms.iter().map(|(_, w)| w).sum();
        let mut m = vec![0.0; n * n];
        for (perm, w) in terms {
            for (i, &j) in perm.iter().enumerate() {
                m[i * n + j] += w / total;
            }
        }
        m
    })
}

fn permute(m: &[f64], n: usize, perm: &[usize]) -> Vec<f64> {
    // Π P Πᵀ: relabel streams consistently on both sides.
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            out[perm[i] * n + perm[j]] = m[i * n + j];
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn sinkhorn_last_side_exact_and_converges((n, logits) in matrix(2..=8, 2.0),
                                               columns_first in any::<bool>()) {
        let order = if columns_first { SinkhornOrder::ColumnsThenRows } else { SinkhornOrder::RowsThenColumns };
        let mut h = logits.clone();
        sinkhorn_in_place(&mut h, n, &SinkhornParams { iterations: 20, order });
        let (rows, cols) = (row_sums(&h, n), column_sums(&h, n));
        let (exact, other) = if columns_first { (rows, cols) } else { (cols, rows) };
        let tol = 4.0 * n as f64 * f64::EPSILON;
        prop_assert!(exact.iter().all(|s| (s - 1.0).abs() <= tol), "{exact:?}");
        prop_assert!(h.iter().all(|&x| x >= 0.0));
        // Logits in ±2 converge quickly: the other side is close after 20 iterations and
        // exact to 1e-12 after 500.
        prop_assert!(other.iter().all(|s| (s - 1.0).abs() <= 1e-2), "{other:?}");
        let mut long = logits;
        sinkhorn_in_place(&mut long, n, &SinkhornParams { iterations: 500, order });
        prop_assert!(marginal_error_of(&long, n) <= 1e-12);
    }

    #[test]
    fn sinkhorn_never_produces_nan((n, logits) in matrix(2..=6, 5000.0)) {
        let mut h = logits;
        sinkhorn_in_place(&mut h, n, &SinkhornParams::default());
        prop_assert!(h.iter().all(|x| x.is_finite() && *x >= 0.0));
        prop_assert!(row_sums(&h, n).iter().all(|s| (s - 1.0).abs() <= 1e-14));
    }

    #[test]
    fn products_of_doubly_stochastic_stay_doubly_stochastic(
        layers in prop::collection::vec(doubly_stochastic(4), 1..40)
    ) {
        let slices: Vec<&[f64]> = layers.iter().map(Vec::as_slice).collect();
        for p in prefix_composites(&slices, 4) {
            let x = p.to_f64();
            prop_assert!(x.iter().all(|&v| v >= 0.0));
            prop_assert!(marginal_error_of(&x, 4) <= 1e-13);
            let metrics = MatrixMetrics::of(&p);
            prop_assert!((metrics.get(Metric::AmaxForward) - 1.0).abs() <= 1e-13);
            prop_assert!((metrics.get(Metric::AmaxBackward) - 1.0).abs() <= 1e-13);
            prop_assert!((metrics.get(Metric::SpectralNorm) - 1.0).abs() <= 1e-13);
            prop_assert!(metrics.get(Metric::BirkhoffDistance) <= 1e-13);
        }
    }

    #[test]
    fn prefix_at_l_equals_suffix_at_1(layers in prop::collection::vec(matrix(3..=3, 2.0), 1..30)) {
        let slices: Vec<&[f64]> = layers.iter().map(|(_, m)| m.as_slice()).collect();
        let prefix = prefix_composites(&slices, 3);
        let suffix = suffix_composites(&slices, 3);
        let (a, b) = (prefix.last().unwrap(), &suffix[0]);
        // Same product, different association: equal to rounding relative to the product of
        // the factors' norms (the scale the rounding errors live at).
        let scale: f64 = slices.iter().map(|m| m.iter().map(|x| x.abs()).sum::<f64>()).product();
        let (ea, eb) = (a.to_f64(), b.to_f64());
        for (x, y) in ea.iter().zip(&eb) {
            prop_assert!((x - y).abs() <= 1e-13 * scale.max(1.0), "{x} vs {y}");
        }
    }

    #[test]
    fn metrics_do_not_depend_on_stream_labels((n, m) in hc_like(), seed in any::<u64>()) {
        let mut perm: Vec<usize> = (0..n).collect();
        let mut state = seed;
        for i in (1..n).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            perm.swap(i, (state >> 33) as usize % (i + 1));
        }
        let a = MatrixMetrics::of_matrix(&m, n);
        let b = MatrixMetrics::of_matrix(&permute(&m, n, &perm), n);
        for metric in Metric::ALL {
            let (x, y) = (a.get(metric), b.get(metric));
            let tol = 1e-9 * x.abs().max(1.0);
            prop_assert!((x - y).abs() <= tol, "{metric:?}: {x} vs {y}");
        }
    }

    #[test]
    fn birkhoff_newton_satisfies_kkt((n, m) in hc_like()) {
        let p = birkhoff_projection(&m, n);
        prop_assert_eq!(p.method, ProjectionMethod::Newton);
        let scale = m.iter().fold(1.0f64, |s, x| s.max(x.abs()));
        let tol = 256.0 * n as f64 * f64::EPSILON * scale;
        // Primal feasibility.
        prop_assert!(p.projection.iter().all(|&x| x >= 0.0));
        prop_assert!(marginal_error_of(&p.projection, n) <= tol);
        // Stationarity + complementary slackness: X = max(0, M − u1ᵀ − 1vᵀ), i.e.
        // M − X = u_i + v_j where X > 0 and M − X ≤ u_i + v_j (X = 0 there, M ≤ u_i + v_j).
        for i in 0..n {
            for j in 0..n {
                let shift = p.row_multipliers[i] + p.column_multipliers[j];
                let x = p.projection[i * n + j];
                if x > 0.0 {
                    prop_assert!((m[i * n + j] - x - shift).abs() <= tol);
                } else {
                    prop_assert!(m[i * n + j] - shift <= tol);
                }
            }
        }
        // Lower bound: the distance to the affine hull alone.
        let nf = n as f64;
        let rows = row_sums(&m, n);
        let cols = column_sums(&m, n);
        let total: f64 = rows.iter().sum();
        let affine: f64 = (0..n * n).map(|k| {
            let (i, j) = (k / n, k % n);
            ((rows[i] - 1.0) / nf + (cols[j] - 1.0) / nf - (total - nf) / (nf * nf)).powi(2)
        }).sum::<f64>().sqrt();
        prop_assert!(p.distance + tol >= affine);
    }

    #[test]
    fn birkhoff_newton_agrees_with_dykstra((n, m) in matrix(2..=5, 2.0)) {
        let newton = birkhoff_projection(&m, n);
        let dykstra = dykstra_projection(&m, n, 1e-12, 2_000_000);
        prop_assert!(dykstra.marginal_error <= 1e-11);
        prop_assert!((newton.distance - dykstra.distance).abs() <= 1e-8 * newton.distance.max(1e-3),
            "{} vs {}", newton.distance, dykstra.distance);
    }

    #[test]
    fn singular_values_agree_with_nalgebra((n, m) in matrix(2..=8, 10.0)) {
        let ours = singular_values(&m, n);
        let reference = nalgebra::DMatrix::from_row_slice(n, n, &m);
        let mut theirs: Vec<f64> = reference.singular_values().iter().copied().collect();
        theirs.sort_by(|a, b| b.total_cmp(a));
        for (a, b) in ours.iter().zip(&theirs) {
            prop_assert!((a - b).abs() <= 1e-12 * ours[0].max(1.0), "{ours:?} vs {theirs:?}");
        }
        prop_assert!(ours.windows(2).all(|w| w[0] >= w[1]) && *ours.last().unwrap() >= 0.0);
    }

    #[test]
    fn scaled_metrics_match_plain_metrics((n, m) in hc_like(), shift in -200i64..200) {
        // Multiplying by 2^shift is exact; homogeneous metrics scale by it.
        let base = MatrixMetrics::of(&ScaledMatrix::new(n, m.clone()));
        let factor = 2f64.powi(shift as i32);
        let scaled = MatrixMetrics::of(&ScaledMatrix::new(n, m.iter().map(|x| x * factor).collect()));
        for metric in [Metric::AmaxForward, Metric::AmaxBackward, Metric::InfNorm, Metric::OneNorm,
                       Metric::SpectralNorm, Metric::Sigma2, Metric::NegativeMass] {
            let (x, y) = (base.get(metric) * factor, scaled.get(metric));
            prop_assert!((x - y).abs() <= 1e-13 * x.abs(), "{metric:?}");
        }
        let log_shift = shift as f64 * std::f64::consts::LOG10_2;
        let (x, y) = (base.get(Metric::Log10AmaxForward) + log_shift, scaled.get(Metric::Log10AmaxForward));
        prop_assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0));
    }

    #[test]
    fn selected_quantile_is_bit_identical_to_sorting(
        values in prop::collection::vec(
            prop_oneof![
                -3i32..3,
                Just(100),
                Just(101),
                Just(102),
            ].prop_map(|k| match k {
                100 => f64::NAN,
                101 => -0.0,
                102 => f64::INFINITY,
                k => k as f64 * 0.5,
            }),
            1..60,
        ),
        q in prop_oneof![Just(0.0), Just(0.05), Just(0.5), Just(0.95), Just(1.0), 0.0..1.0f64],
    ) {
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let mut scratch = values.clone();
        let expected = exact_quantile(&sorted, q);
        let [got] = selected_quantiles(&mut scratch, [q]);
        prop_assert!(expected.to_bits() == got.to_bits() || (expected.is_nan() && got.is_nan()),
                     "{expected} vs {got}");
        // Several levels at once, as the statistics ask for them.
        let levels = [0.05, q, 0.5, 0.95];
        let mut scratch = values.clone();
        let together = selected_quantiles(&mut scratch, levels);
        for (level, got) in levels.iter().zip(together) {
            let expected = exact_quantile(&sorted, *level);
            prop_assert!(expected.to_bits() == got.to_bits() || (expected.is_nan() && got.is_nan()),
                         "level {level}: {expected} vs {got}");
        }
    }
}

#[test]
fn composite_names_are_stable() {
    let names: Vec<&str> = Composite::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["single", "prefix", "suffix"]);
}
