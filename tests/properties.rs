//! Property tests of the mathematics (proptest), with independent cross-checks.

use mhc_analyze::analysis::stats::{exact_quantile, selected_quantiles};
use mhc_analyze::compose::{Composite, ScaledMatrix, prefix_composites, suffix_composites};
use mhc_analyze::generate::{SinkhornOrder, SinkhornParams, sinkhorn_in_place};
use mhc_analyze::metrics::birkhoff::{ProjectionMethod, marginal_error_of};
use mhc_analyze::metrics::{
    MatrixMetrics, Metric, birkhoff_distance, birkhoff_projection, column_sums, dykstra_projection,
    frobenius_distance, identity_distance, mixing_entropy, nearest_permutation,
    nearest_permutation_scaled, row_sums, singular_values,
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

/// Matrices far outside the Birkhoff polytope, as HC composites are: n up to 16, entries
/// uniform in ±1 times 1e3 … 1e12 (the projection lies on a small face near a permutation).
fn far_from_the_polytope() -> impl Strategy<Value = (usize, Vec<f64>)> {
    (matrix(2..=16, 1.0), 3.0f64..12.0).prop_map(|((n, mut m), log_scale)| {
        let scale = 10f64.powf(log_scale);
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
            // An undefined metric (NaN) must be undefined either way.
            prop_assert!((x - y).abs() <= tol || (x.is_nan() && y.is_nan()), "{metric:?}: {x} vs {y}");
        }
    }

    #[test]
    fn birkhoff_newton_satisfies_kkt((n, m) in prop_oneof![hc_like(), far_from_the_polytope()]) {
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

/// Every permutation of 0..n in lexicographic order (π[0] first, then π[1], …).
fn lexicographic_permutations(n: usize) -> Vec<Vec<usize>> {
    let mut current: Vec<usize> = (0..n).collect();
    let mut out = vec![current.clone()];
    // Next permutation: the longest decreasing suffix, swap its predecessor with the smallest
    // larger element of it, reverse the suffix.
    loop {
        let Some(i) = (1..n).rev().find(|&i| current[i - 1] < current[i]) else {
            return out;
        };
        let j = (i..n).rev().find(|&j| current[j] > current[i - 1]).unwrap();
        current.swap(i - 1, j);
        current[i..].reverse();
        out.push(current.clone());
    }
}

/// The nearest permutation by brute force, with the library's tie rule: the lexicographically
/// first π whose Σ_i P_{i,π(i)} is within 8·n·ε·max|P| of the best.
fn brute_force_nearest(p: &[f64], n: usize) -> Vec<usize> {
    let all = lexicographic_permutations(n);
    let value = |pi: &[usize]| {
        pi.iter()
            .enumerate()
            .map(|(i, &j)| p[i * n + j])
            .sum::<f64>()
    };
    let best = all
        .iter()
        .map(|pi| value(pi))
        .fold(f64::NEG_INFINITY, f64::max);
    let largest = p.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    let tolerance = 8.0 * n as f64 * f64::EPSILON * largest;
    all.into_iter()
        .find(|pi| value(pi) >= best - tolerance)
        .unwrap()
}

fn permutation_matrix(permutation: &[usize]) -> Vec<f64> {
    let n = permutation.len();
    let mut m = vec![0.0; n * n];
    for (i, &j) in permutation.iter().enumerate() {
        m[i * n + j] = 1.0;
    }
    m
}

/// Matrices with many exact ties: entries k·step for k in 0..=2 (step 1 or 0.1, the latter
/// giving sums that differ in the last bit).
fn tie_heavy() -> impl Strategy<Value = (usize, Vec<f64>)> {
    (1usize..=7, prop_oneof![Just(1.0), Just(0.1)]).prop_flat_map(|(n, step)| {
        (
            Just(n),
            prop::collection::vec((0u8..=2).prop_map(move |k| k as f64 * step), n * n),
        )
    })
}

/// A permutation of 0..n drawn from a seed (Fisher–Yates with a fixed LCG).
fn permutation_from_seed(n: usize, seed: u64) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n).collect();
    let mut state = seed;
    for i in (1..n).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        perm.swap(i, (state >> 33) as usize % (i + 1));
    }
    perm
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn nearest_permutation_equals_brute_force(
        (n, p) in prop_oneof![
            matrix(1..=7, 1.0),
            hc_like().prop_filter("n ≤ 7", |(n, _)| *n <= 7),
            tie_heavy(),
        ]
    ) {
        let (ours, distance) = nearest_permutation(&p, n);
        let expected = brute_force_nearest(&p, n);
        prop_assert_eq!(&ours, &expected);
        let direct = frobenius_distance(&p, &permutation_matrix(&expected));
        prop_assert!((distance - direct).abs() <= 1e-15 * direct.max(1.0),
                     "{distance} vs {direct}");
    }

    #[test]
    fn birkhoff_below_permutation_below_identity_distance((n, p) in hc_like()) {
        // Permutations lie in the Birkhoff polytope and I is a permutation.
        let metrics = MatrixMetrics::of_matrix(&p, n);
        let birkhoff = birkhoff_distance(&p, n);
        let permutation = metrics.get(Metric::PermutationDistance);
        let identity = metrics.get(Metric::IdentityDistance);
        let tol = 1e-12 * identity.max(1.0);
        prop_assert!(birkhoff <= permutation + tol, "{birkhoff} > {permutation}");
        prop_assert!(permutation <= identity + tol, "{permutation} > {identity}");
        prop_assert!((identity - identity_distance(&p, n)).abs() <= tol);
    }

    #[test]
    fn routing_the_rows_routes_the_nearest_permutation((n, p) in matrix(2..=8, 1.0),
                                                        seed in any::<u64>()) {
        // (QP)_i· = P_q(i)· for Q_{i,q(i)} = 1: an isometry that maps permutations to
        // permutations, so the distances agree and π_QP(i) = π_P(q(i)) (no ties in continuous
        // random matrices).
        let q = permutation_from_seed(n, seed);
        let mut routed = vec![0.0; n * n];
        for i in 0..n {
            routed[i * n..(i + 1) * n].copy_from_slice(&p[q[i] * n..(q[i] + 1) * n]);
        }
        let (pi, distance) = nearest_permutation(&p, n);
        let (pi_routed, distance_routed) = nearest_permutation(&routed, n);
        let composed: Vec<usize> = (0..n).map(|i| pi[q[i]]).collect();
        prop_assert_eq!(pi_routed, composed);
        prop_assert!((distance - distance_routed).abs() <= 1e-14 * distance.max(1.0));
    }

    #[test]
    fn mixing_entropy_ignores_row_scales_and_stays_in_unit_interval(
        (n, p) in matrix(2..=8, 1.0),
        scales in prop::collection::vec(-20i32..20, 8),
    ) {
        let p: Vec<f64> = p.iter().map(|x| x.abs()).collect();
        let base = mixing_entropy(&p, n).unwrap();
        prop_assert!((-1e-15..=1.0 + 1e-15).contains(&base), "{base}");
        // Each row divided by its own sum first: row scales 10^k change nothing.
        let mut scaled = p.clone();
        for (i, row) in scaled.chunks_exact_mut(n).enumerate() {
            row.iter_mut().for_each(|x| *x *= 10f64.powi(scales[i]));
        }
        let again = mixing_entropy(&scaled, n).unwrap();
        prop_assert!((base - again).abs() <= 1e-14, "{base} vs {again}");
        // A negative entry anywhere makes it undefined.
        let mut negative = p;
        negative[n * n - 1] = -1e-300;
        prop_assert_eq!(mixing_entropy(&negative, n), None);
    }

    #[test]
    fn scaled_structure_metrics_match_plain_ones((n, m) in hc_like(), shift in -200i64..200) {
        // 2^shift·P fits f64 here, so the plain functions apply; the scaled path must agree.
        let factor = 2f64.powi(shift as i32);
        let plain: Vec<f64> = m.iter().map(|x| x * factor).collect();
        let scaled = ScaledMatrix::new(n, plain.clone());
        let metrics = MatrixMetrics::of(&scaled);
        let (pi, distance) = nearest_permutation(&plain, n);
        let (pi_scaled, distance_scaled) = nearest_permutation_scaled(&scaled);
        prop_assert_eq!(pi, pi_scaled);
        prop_assert!((distance - distance_scaled).abs() <= 1e-14 * distance,
                     "{distance} vs {distance_scaled}");
        let identity = identity_distance(&plain, n);
        let ours = metrics.get(Metric::IdentityDistance);
        prop_assert!((identity - ours).abs() <= 1e-14 * identity, "{identity} vs {ours}");
        prop_assert_eq!(metrics.get(Metric::PermutationDistance).to_bits(),
                        distance_scaled.to_bits());
    }
}

#[test]
fn lexicographic_permutations_are_complete_and_ordered() {
    let all = lexicographic_permutations(4);
    assert_eq!(all.len(), 24);
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(all[1], [0, 1, 3, 2]);
    assert_eq!(lexicographic_permutations(1), vec![vec![0]]);
}
