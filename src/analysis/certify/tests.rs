//! The certificate against sampled inputs: never below the gain of any logits in the boxes.

use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::enclosure::Methods;
use super::*;
use crate::compose::{ScaledMatrix, prefix_composites, suffix_composites};
use crate::generate::SinkhornParams;
use crate::metrics::{amax_backward, amax_forward};

/// H for one logit matrix, computed in f64 by the crate's own map (the one the probe and the
/// per-token model use).
fn model_h(logits: &[f64], n: usize, map: HresMap) -> Vec<f64> {
    let mut h = logits.to_vec();
    map.apply(&mut h, n);
    h
}

/// The precision in which sampled logits become H: f64 ([`model_h`]) or f32
/// ([`model_h_f32`], for logits that are f32 values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Precision {
    F64,
    F32,
}

impl Precision {
    fn h(self, logits: &[f64], n: usize, map: HresMap) -> Vec<f64> {
        match self {
            Precision::F64 => model_h(logits, n, map),
            Precision::F32 => model_h_f32(logits, n, map),
        }
    }
}

/// H for one logit matrix computed in f32 as the reference models do (the logits must be f32
/// values): exp(L − max L), then each normalisation divides by the f32 sum (+ ε).
fn model_h_f32(logits: &[f64], n: usize, map: HresMap) -> Vec<f64> {
    let mut h: Vec<f32> = logits.iter().map(|&x| x as f32).collect();
    debug_assert!(h.iter().zip(logits).all(|(&a, &b)| f64::from(a) == b));
    let divide = |h: &mut [f32], rows: bool, eps: f32| {
        for a in 0..n {
            let at = |b: usize| if rows { a * n + b } else { b * n + a };
            let sum: f32 = (0..n).map(|b| h[at(b)]).sum();
            (0..n).for_each(|b| h[at(b)] /= sum + eps);
        }
    };
    match map {
        HresMap::Identity => {}
        HresMap::Sinkhorn(SinkhornParams { order, iterations }) => {
            let max = h.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            h.iter_mut().for_each(|x| *x = (*x - max).exp());
            let rows_first = order == SinkhornOrder::RowsThenColumns;
            for _ in 0..iterations {
                divide(&mut h, rows_first, 0.0);
                divide(&mut h, !rows_first, 0.0);
            }
        }
        HresMap::DeepseekSinkhorn { iterations, eps } => {
            let eps = eps as f32;
            for j in 0..n {
                let max = (0..n)
                    .map(|i| h[i * n + j])
                    .fold(f32::NEG_INFINITY, f32::max);
                (0..n).for_each(|i| h[i * n + j] = (h[i * n + j] - max).exp());
                let sum: f32 = (0..n).map(|i| h[i * n + j]).sum();
                (0..n).for_each(|i| h[i * n + j] = h[i * n + j] / sum + eps);
            }
            divide(&mut h, true, eps);
            for _ in 1..iterations {
                divide(&mut h, false, eps);
                divide(&mut h, true, eps);
            }
        }
    }
    h.into_iter().map(f64::from).collect()
}

/// (value, log10) of both gains of a scaled matrix.
fn gains(p: &ScaledMatrix) -> [(f64, f64); 2] {
    let n = p.n();
    let f = amax_forward(p.mantissa(), n);
    let b = amax_backward(p.mantissa(), n);
    [
        (p.scale_value(f), p.log10_scaled(f)),
        (p.scale_value(b), p.log10_scaled(b)),
    ]
}

/// Whether a measured gain is within a bound.
fn within(bound: &Bound, (value, log10): (f64, f64)) -> bool {
    if bound.upper.is_finite() {
        value <= bound.upper
    } else {
        log10 <= bound.log10_upper
    }
}

/// Checks every composite of the H computed from `logits` (one matrix per layer) against the
/// certificate; returns the first violation.
fn check(
    certificate: &Certificate,
    logits: &[Vec<f64>],
    map: HresMap,
    compute: Precision,
) -> Result<(), String> {
    let n = certificate.streams;
    let hs: Vec<Vec<f64>> = logits.iter().map(|l| compute.h(l, n, map)).collect();
    let slices: Vec<&[f64]> = hs.iter().map(Vec::as_slice).collect();
    let prefix = prefix_composites(&slices, n);
    let suffix = suffix_composites(&slices, n);
    for l in 0..hs.len() {
        let single = ScaledMatrix::new(n, hs[l].clone());
        for (kind, matrix, bounds) in [
            ("single", &single, &certificate.single[l]),
            ("prefix", &prefix[l], &certificate.prefix[l]),
            ("suffix", &suffix[l], &certificate.suffix[l]),
        ] {
            let [forward, backward] = gains(matrix);
            for (direction, measured, bound) in [
                ("forward", forward, &bounds.forward),
                ("backward", backward, &bounds.backward),
            ] {
                if !within(bound, measured) {
                    return Err(format!(
                        "{kind}({}) {direction}: measured {measured:?} above bound {bound:?}",
                        l + 1
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Every bound is a number or +∞, never NaN, and its log10 is not NaN.
fn well_formed(certificate: &Certificate) -> Result<(), String> {
    for bounds in certificate
        .single
        .iter()
        .chain(&certificate.prefix)
        .chain(&certificate.suffix)
    {
        for b in [bounds.forward, bounds.backward] {
            if b.upper.is_nan() || b.log10_upper.is_nan() || b.upper < 0.0 {
                return Err(format!("malformed bound {b:?}"));
            }
        }
    }
    Ok(())
}

/// The whole-model gain (log10) in one direction for a choice of logits.
fn whole_model_log10(logits: &[Vec<f64>], n: usize, map: HresMap, direction: usize) -> f64 {
    whole_model_log10_with(logits, n, map, direction, Precision::F64)
}

/// [`whole_model_log10`] with H computed by `compute`.
fn whole_model_log10_with(
    logits: &[Vec<f64>],
    n: usize,
    map: HresMap,
    direction: usize,
    compute: Precision,
) -> f64 {
    let hs: Vec<Vec<f64>> = logits.iter().map(|l| compute.h(l, n, map)).collect();
    let slices: Vec<&[f64]> = hs.iter().map(Vec::as_slice).collect();
    let whole = prefix_composites(&slices, n).pop().expect("layers");
    gains(&whole)[direction].1
}

/// Coordinate ascent on the whole-model gain within the boxes: each entry tries its lower
/// end, upper end and midpoint, keeping the best, for `sweeps` passes.
fn ascend(boxes: &[LogitBox], map: HresMap, direction: usize, sweeps: usize) -> Vec<Vec<f64>> {
    ascend_with(boxes, map, direction, sweeps, Precision::F64)
}

/// [`ascend`] with H computed by `compute`; the midpoints are rounded to f32 values inside the
/// box when `compute` is f32 (the bounds are f32 values there).
fn ascend_with(
    boxes: &[LogitBox],
    map: HresMap,
    direction: usize,
    sweeps: usize,
    compute: Precision,
) -> Vec<Vec<f64>> {
    let n = boxes[0].n();
    let mut logits: Vec<Vec<f64>> = boxes
        .iter()
        .map(|b| {
            b.lower()
                .iter()
                .zip(b.upper())
                .map(|(&l, &h)| f32_inside(l + 0.5 * (h - l), l, h))
                .collect()
        })
        .collect();
    let mut best = whole_model_log10_with(&logits, n, map, direction, compute);
    for _ in 0..sweeps {
        for (layer, b) in boxes.iter().enumerate() {
            for k in 0..n * n {
                let (lo, hi) = (b.lower()[k], b.upper()[k]);
                if lo == hi {
                    continue;
                }
                let original = logits[layer][k];
                let mut keep = original;
                for candidate in [lo, hi, f32_inside(lo + 0.5 * (hi - lo), lo, hi)] {
                    logits[layer][k] = candidate;
                    let value = whole_model_log10_with(&logits, n, map, direction, compute);
                    if value > best {
                        best = value;
                        keep = candidate;
                    }
                }
                logits[layer][k] = keep;
            }
        }
    }
    logits
}

/// x rounded to the nearest f32 value, moved into [lo, hi] (whose ends are f32 values when
/// the model computes in f32; in f64 tests the rounded value stays inside the box too).
fn f32_inside(x: f64, lo: f64, hi: f64) -> f64 {
    f64::from(x as f32).clamp(lo, hi)
}

/// Samples of logits in the boxes: centre, both extreme corners, random corners, uniform
/// points, and the coordinate-ascent maximisers of both whole-model gains.
fn samples(boxes: &[LogitBox], map: HresMap, rng: &mut ChaCha8Rng) -> Vec<Vec<Vec<f64>>> {
    samples_with(boxes, map, rng, Precision::F64)
}

/// [`samples`] with H computed by `compute` (samples rounded to f32 values for
/// [`model_h_f32`]).
fn samples_with(
    boxes: &[LogitBox],
    map: HresMap,
    rng: &mut ChaCha8Rng,
    compute: Precision,
) -> Vec<Vec<Vec<f64>>> {
    let rounding = compute == Precision::F32;
    let pick = |f: &mut dyn FnMut(f64, f64) -> f64| -> Vec<Vec<f64>> {
        boxes
            .iter()
            .map(|b| {
                b.lower()
                    .iter()
                    .zip(b.upper())
                    .map(|(&l, &h)| {
                        let x = f(l, h);
                        if rounding { f32_inside(x, l, h) } else { x }
                    })
                    .collect()
            })
            .collect()
    };
    let mut out = vec![
        pick(&mut |l, h| l + 0.5 * (h - l)),
        pick(&mut |l, _| l),
        pick(&mut |_, h| h),
    ];
    for _ in 0..3 {
        out.push(pick(&mut |l, h| if rng.random::<bool>() { l } else { h }));
        out.push(pick(&mut |l, h| l + rng.random::<f64>() * (h - l)));
    }
    out.push(ascend_with(boxes, map, 0, 2, compute));
    out.push(ascend_with(boxes, map, 1, 2, compute));
    out
}

/// Random boxes: centres scale·N(0,1)-like (uniform in ±scale, plus `diagonal` on the
/// diagonal), widths `width` times uniform(0, 1), or zero.
fn random_boxes(
    n: usize,
    layers: usize,
    scale: f64,
    diagonal: f64,
    width: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<LogitBox> {
    (0..layers)
        .map(|_| {
            let mut lower = Vec::with_capacity(n * n);
            let mut upper = Vec::with_capacity(n * n);
            for k in 0..n * n {
                let centre = scale * (2.0 * rng.random::<f64>() - 1.0)
                    + if k / n == k % n { diagonal } else { 0.0 };
                let w = width * rng.random::<f64>();
                lower.push(centre - 0.5 * w);
                upper.push(centre + 0.5 * w);
            }
            LogitBox::new(n, lower, upper).expect("valid box")
        })
        .collect()
}

/// The certificate's methods, and each alone.
const METHOD_CHOICES: [Methods; 4] = [
    Methods::ALL,
    Methods {
        scalings: true,
        hilbert: false,
        mean_value: false,
    },
    Methods {
        scalings: false,
        hilbert: true,
        mean_value: false,
    },
    Methods {
        scalings: false,
        hilbert: false,
        mean_value: true,
    },
];

/// The maps under test; the last one exaggerates ε so that its terms are visible.
const MAPS: [HresMap; 6] = [
    HresMap::Identity,
    HresMap::Sinkhorn(SinkhornParams {
        order: SinkhornOrder::ColumnsThenRows,
        iterations: 20,
    }),
    HresMap::Sinkhorn(SinkhornParams {
        order: SinkhornOrder::RowsThenColumns,
        iterations: 20,
    }),
    HresMap::DeepseekSinkhorn {
        iterations: 20,
        eps: 1e-6,
    },
    HresMap::DeepseekSinkhorn {
        iterations: 3,
        eps: 1e-3,
    },
    HresMap::DeepseekSinkhorn {
        iterations: 2,
        eps: 0.5,
    },
];

/// A map of the same kind with `iterations` instead.
fn with_iterations(map: HresMap, iterations: u32) -> HresMap {
    match map {
        HresMap::Identity => HresMap::Identity,
        HresMap::Sinkhorn(SinkhornParams { order, .. }) => {
            HresMap::Sinkhorn(SinkhornParams { order, iterations })
        }
        HresMap::DeepseekSinkhorn { eps, .. } => HresMap::DeepseekSinkhorn { iterations, eps },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// The bound is never below the gain of any sampled input, for every map, composite and
    /// direction (f64 model arithmetic, as the samples are computed).
    #[test]
    fn bound_is_never_below_a_sampled_gain(
        n in 2usize..=6,
        layers in 1usize..=8,
        map_index in 0usize..MAPS.len(),
        iterations in 1u32..=20,
        scale in prop::sample::select(vec![0.1, 1.0, 3.0, 8.0]),
        diagonal in prop::sample::select(vec![0.0, 4.0]),
        width in prop::sample::select(vec![0.0, 1e-6, 1e-2, 0.5, 3.0]),
        seed in any::<u64>(),
    ) {
        let map = with_iterations(MAPS[map_index], iterations);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let boxes = random_boxes(n, layers, scale, diagonal, width, &mut rng);
        // The certificate, and each per-layer method on its own.
        let certificates: Vec<Certificate> = METHOD_CHOICES
            .iter()
            .map(|&methods| certify_with(&boxes, map, Arithmetic::F64, methods).expect("valid input"))
            .collect();
        for certificate in &certificates {
            well_formed(certificate).map_err(TestCaseError::fail)?;
        }
        for logits in samples(&boxes, map, &mut rng) {
            for (certificate, methods) in certificates.iter().zip(METHOD_CHOICES) {
                check(certificate, &logits, map, Precision::F64)
                    .map_err(|e| TestCaseError::fail(format!("{methods:?}: {e}")))?;
            }
        }
    }
}

/// Relative closeness for hand-worked values.
fn close(a: f64, b: f64, relative: f64) -> bool {
    (a - b).abs() <= relative * a.abs().max(b.abs())
}

/// A point box.
fn point(n: usize, values: &[f64]) -> LogitBox {
    LogitBox::point(n, values.to_vec()).expect("valid values")
}

#[test]
fn hc_point_boxes_give_the_exact_gains() {
    // A = [[1, −2], [3, 0.5]], B = [[0.5, 1], [2, −1]] (layer 1 = A, layer 2 = B).
    // single(1) = A: row sums (−1, 3.5), column sums (4, −1.5).
    // prefix(2) = BA = [[3.5, −0.5], [−1, −4.5]]: row sums (3, −5.5), column sums (2.5, −5).
    // suffix(2) = B: row sums (1.5, 1), column sums (2.5, 0).
    let boxes = [
        point(2, &[1.0, -2.0, 3.0, 0.5]),
        point(2, &[0.5, 1.0, 2.0, -1.0]),
    ];
    let c = certify(&boxes, HresMap::Identity, Arithmetic::Exact).unwrap();
    let expect = [
        (&c.single[0], 3.5, 4.0),
        (&c.prefix[1], 5.5, 5.0),
        (&c.suffix[0], 5.5, 5.0),
        (&c.suffix[1], 1.5, 2.5),
        (&c.prefix[0], 3.5, 4.0),
    ];
    for (bounds, forward, backward) in expect {
        assert!(bounds.forward.upper >= forward && close(bounds.forward.upper, forward, 1e-14));
        assert!(bounds.backward.upper >= backward && close(bounds.backward.upper, backward, 1e-14));
        assert_eq!(bounds.forward.strength, Strength::Informative);
    }
    assert_eq!(c.prefix[1].forward.method, BoundMethod::IntervalPropagation);
}

#[test]
fn hc_single_layer_bounds_are_the_extreme_row_and_column_sums() {
    // Row 0 ∈ [−1, 0] + [−3, 2] = [−4, 2] → 4; row 1 ∈ [1, 2] + [0, 0] → 2.
    // Column 0 ∈ [−1, 0] + [1, 2] = [0, 2]; column 1 ∈ [−3, 2] + [0, 0] → 3.
    let b = LogitBox::new(2, vec![-1.0, -3.0, 1.0, 0.0], vec![0.0, 2.0, 2.0, 0.0]).unwrap();
    let c = certify(&[b], HresMap::Identity, Arithmetic::Exact).unwrap();
    assert!(c.single[0].forward.upper >= 4.0 && close(c.single[0].forward.upper, 4.0, 1e-14));
    assert!(c.single[0].backward.upper >= 3.0 && close(c.single[0].backward.upper, 3.0, 1e-14));
}

#[test]
fn hc_products_beyond_f64_keep_a_finite_log10() {
    // 200 layers of [[1e3, 1], [0, 1e3]] ± 1: the gain exceeds 1e600.
    let b = LogitBox::new(
        2,
        vec![999.0, 0.0, -1.0, 999.0],
        vec![1001.0, 2.0, 1.0, 1001.0],
    )
    .unwrap();
    let boxes = vec![b; 200];
    let c = certify(&boxes, HresMap::Identity, Arithmetic::Exact).unwrap();
    let whole = c.whole_model();
    assert_eq!(whole.forward.upper, f64::INFINITY);
    assert_eq!(whole.forward.strength, Strength::BeyondF64);
    // The true maximum is the all-upper corner: (1001 + 2)·…; log10 of it is ≥ 600.
    let logits: Vec<Vec<f64>> = boxes.iter().map(|b| b.upper().to_vec()).collect();
    let measured = whole_model_log10(&logits, 2, HresMap::Identity, 0);
    assert!(
        measured > 600.0 && measured <= whole.forward.log10_upper,
        "{measured}"
    );
    assert!(
        whole.forward.log10_upper - measured < 1e-6,
        "{whole:?} vs {measured}"
    );
}

#[test]
fn the_exact_side_bound_is_one_up_to_rounding() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for (order, exact) in [
        (SinkhornOrder::RowsThenColumns, Direction::Backward),
        (SinkhornOrder::ColumnsThenRows, Direction::Forward),
    ] {
        let boxes = random_boxes(4, 8, 3.0, 2.0, 1.0, &mut rng);
        let map = HresMap::Sinkhorn(SinkhornParams {
            order,
            iterations: 20,
        });
        for (arithmetic, slack) in [(Arithmetic::Exact, 1e-13), (Arithmetic::F64, 1e-13)] {
            let c = certify(&boxes, map, arithmetic).unwrap();
            for bounds in c.single.iter().chain(&c.prefix).chain(&c.suffix) {
                let b = match exact {
                    Direction::Forward => bounds.forward,
                    Direction::Backward => bounds.backward,
                };
                assert!(b.upper >= 1.0 && b.upper <= 1.0 + slack, "{order:?} {b:?}");
                assert_eq!(b.strength, Strength::ExactSide);
            }
        }
    }
}

#[test]
fn zero_logits_reach_the_fixed_point_and_every_gain_is_one() {
    // exp(0) = J: one column step gives J/n, doubly stochastic, and every composite is J/n.
    let boxes = vec![point(3, &[0.0; 9]); 5];
    for map in MAPS[1..3].iter().copied() {
        let c = certify(&boxes, map, Arithmetic::Exact).unwrap();
        for bounds in c.single.iter().chain(&c.prefix).chain(&c.suffix) {
            for b in [bounds.forward, bounds.backward] {
                assert!(b.upper >= 1.0 && b.upper < 1.0 + 1e-13, "{map:?} {b:?}");
            }
        }
        let diagnostics = c.layers[0].sinkhorn.as_ref().unwrap();
        // Δ = 0 up to one outward rounding step, so τ is at most a few ulps.
        assert!(diagnostics.cross_ratio_bound < 1e-300, "{diagnostics:?}");
        assert!(diagnostics.contraction < 1e-15, "{diagnostics:?}");
    }
}

#[test]
fn deepseek_forward_gains_never_exceed_one() {
    // Rows end divided by (sum + ε): every row sum is below 1, and so is every product's.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let boxes = random_boxes(4, 6, 10.0, 0.0, 20.0, &mut rng);
    let map = HresMap::DeepseekSinkhorn {
        iterations: 20,
        eps: 1e-6,
    };
    let c = certify(&boxes, map, Arithmetic::Exact).unwrap();
    for bounds in c.single.iter().chain(&c.prefix).chain(&c.suffix) {
        assert!(bounds.forward.upper <= 1.0 + 1e-13, "{bounds:?}");
    }
}

#[test]
fn wide_boxes_leave_only_the_structural_cap() {
    // Logits anywhere in [−30, 30]: nothing beyond "non-negative, one exact side": the inexact
    // side of a product of k ≥ 2 layers is bounded by n(1 + allowance) only.
    let n = 4;
    let boxes = vec![LogitBox::new(n, vec![-30.0; 16], vec![30.0; 16]).unwrap(); 6];
    for map in MAPS[1..5].iter().copied() {
        let c = certify(&boxes, map, Arithmetic::F32).unwrap();
        let whole = c.whole_model();
        let inexact = match map {
            HresMap::Sinkhorn(SinkhornParams {
                order: SinkhornOrder::RowsThenColumns,
                ..
            }) => whole.forward,
            _ => whole.backward,
        };
        assert_eq!(
            inexact.strength,
            Strength::StructuralCapOnly,
            "{map:?} {inexact:?}"
        );
        assert_eq!(inexact.method, BoundMethod::MassCap);
        assert!(
            inexact.upper >= 4.0 && inexact.upper < 4.0 * (1.0 + 1e-4),
            "{inexact:?}"
        );
    }
}

#[test]
fn worked_example_of_the_docs() {
    // n = 2, paper order, one iteration, L = [[1, 0], [0, 0]] (docs §9).
    // Column step: [[e/(e+1), 1/2], [1/(e+1), 1/2]]; row sums r = (e/(e+1) + 1/2, 1/(e+1) + 1/2).
    let e = std::f64::consts::E;
    let r = [e / (e + 1.0) + 0.5, 1.0 / (e + 1.0) + 0.5];
    let h = [
        e / (e + 1.0) / r[0],
        0.5 / r[0],
        1.0 / (e + 1.0) / r[1],
        0.5 / r[1],
    ];
    let column_max = (h[1] + h[3]).max(h[0] + h[2]);
    // Hilbert route: Δ = 1, τ = tanh(1/4), d_1 = ln(r_0/r_1), d ≤ τ·d_1 after the row step,
    // largest column sum ≤ 2 / (1 + e^{−d}).
    let d1 = (r[0] / r[1]).ln();
    let tau = (0.25f64).tanh();
    let hilbert = 2.0 / (1.0 + (-tau * d1).exp());
    assert!(enclosure::tau_up(1.0) >= tau && close(enclosure::tau_up(1.0), tau, 1e-14));
    let spread = enclosure::spread_bounds(2, 2.0, 2.0, tau * d1);
    assert!(spread.hi >= hilbert && close(spread.hi, hilbert, 1e-14));
    assert!((d1 - 0.470_615).abs() < 1e-6 && (hilbert - 1.057_567).abs() < 1e-6);
    assert!((column_max - 1.056_399).abs() < 1e-6, "{column_max}");
    let map = HresMap::Sinkhorn(SinkhornParams {
        order: SinkhornOrder::ColumnsThenRows,
        iterations: 1,
    });
    // The point box: the enclosure is exact to rounding.
    let c = certify(&[point(2, &[1.0, 0.0, 0.0, 0.0])], map, Arithmetic::Exact).unwrap();
    let b = c.single[0].backward.upper;
    assert!(
        b >= column_max && close(b, column_max, 1e-12),
        "{b} vs {column_max}"
    );
    // The box L_00 ∈ [0, 1] over three layers.
    let boxed = LogitBox::new(2, vec![0.0; 4], vec![1.0, 0.0, 0.0, 0.0]).unwrap();
    let boxes = vec![boxed; 3];
    let c = certify(&boxes, map, Arithmetic::Exact).unwrap();
    let sampled = 10f64.powf(whole_model_log10(&ascend(&boxes, map, 1, 3), 2, map, 1));
    let whole = c.whole_model().backward;
    println!(
        "worked example: whole-model backward bound {} vs sampled {sampled}",
        whole.upper
    );
    assert!(
        whole.upper >= sampled && whole.upper < 1.25 * sampled,
        "{whole:?} {sampled}"
    );
}

#[test]
fn narrow_boxes_around_a_trained_like_mhc_are_tight() {
    // 24 layers, n = 4, near-identity logits (diagonal 6, others within ±2), each entry free
    // within a window of 1e-3: the bound on the inexact side of the whole model is within a
    // few per cent of the largest gain coordinate ascent finds.
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    for map in MAPS[1..4].iter().copied() {
        let boxes = random_boxes(4, 24, 2.0, 6.0, 1e-3, &mut rng);
        let c = certify(&boxes, map, Arithmetic::F64).unwrap();
        for direction in [0, 1] {
            let sampled = 10f64.powf(whole_model_log10(
                &ascend(&boxes, map, direction, 1),
                4,
                map,
                direction,
            ));
            let whole = c.whole_model();
            let bound = if direction == 0 {
                whole.forward
            } else {
                whole.backward
            };
            let ratio = bound.upper / sampled;
            println!(
                "{map:?} direction {direction}: sampled {sampled:.6}, bound {:.6}, ratio {ratio:.6}",
                bound.upper
            );
            assert!(
                (1.0..1.03).contains(&ratio),
                "{map:?} {direction}: {sampled} vs {bound:?}"
            );
        }
    }
}

/// Reads an f32 or f64 .npy file from tests/data as f64.
fn read_npy(relative: &str) -> ndarray::ArrayD<f64> {
    use ndarray_npy::ReadNpyExt;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    let open = || std::fs::File::open(&path).expect("test data present");
    match ndarray::ArrayD::<f64>::read_npy(open()) {
        Ok(a) => a,
        Err(_) => ndarray::ArrayD::<f32>::read_npy(open())
            .expect("f32 npy")
            .mapv(f64::from),
    }
}

#[test]
fn the_lucidrains_capture_is_within_its_certificate() {
    // Logit boxes = the range over the 32 captured tokens of each layer's logits
    // (tests/data/certify/make_lucidrains_logits.py); H_res as the model computed it in f32.
    let logits = read_npy("tests/data/certify/lucidrains_logits.npy");
    let hres = read_npy("tests/data/checkpoints/hres.npy");
    let (layers, tokens, n) = (logits.shape()[0], logits.shape()[1], logits.shape()[2]);
    let boxes: Vec<LogitBox> = (0..layers)
        .map(|l| {
            let values = |t: usize| -> Vec<f64> {
                logits
                    .slice(ndarray::s![l, t, .., ..])
                    .iter()
                    .copied()
                    .collect()
            };
            let (mut lower, mut upper) = (values(0), values(0));
            for t in 1..tokens {
                for (k, v) in values(t).into_iter().enumerate() {
                    lower[k] = lower[k].min(v);
                    upper[k] = upper[k].max(v);
                }
            }
            LogitBox::new(n, lower, upper).unwrap()
        })
        .collect();
    let map = HresMap::Sinkhorn(SinkhornParams {
        order: SinkhornOrder::RowsThenColumns,
        iterations: 20,
    });
    let c = certify(&boxes, map, Arithmetic::F32).unwrap();
    let mut largest = [0.0f64; 2];
    for t in 0..tokens {
        let hs: Vec<Vec<f64>> = (0..layers)
            .map(|l| {
                hres.slice(ndarray::s![l, t, .., ..])
                    .iter()
                    .copied()
                    .collect()
            })
            .collect();
        let slices: Vec<&[f64]> = hs.iter().map(Vec::as_slice).collect();
        let prefix = prefix_composites(&slices, n);
        let suffix = suffix_composites(&slices, n);
        for l in 0..layers {
            let single = ScaledMatrix::new(n, hs[l].clone());
            for (matrix, bounds) in [
                (&single, &c.single[l]),
                (&prefix[l], &c.prefix[l]),
                (&suffix[l], &c.suffix[l]),
            ] {
                let [f, b] = gains(matrix);
                assert!(
                    within(&bounds.forward, f),
                    "token {t} layer {l}: {f:?} {bounds:?}"
                );
                assert!(
                    within(&bounds.backward, b),
                    "token {t} layer {l}: {b:?} {bounds:?}"
                );
                largest = [largest[0].max(f.0), largest[1].max(b.0)];
            }
        }
    }
    let whole = c.whole_model();
    println!(
        "lucidrains capture: largest measured gains {largest:?}; whole-model bounds {} (forward), {} (backward)",
        whole.forward.upper, whole.backward.upper
    );
    // The certificate is informative here: within 1e-4 of 1 both ways.
    assert!(
        whole.forward.upper < 1.0 + 1e-4 && whole.backward.upper < 1.0 + 1e-4,
        "{whole:?}"
    );
    // Exact arithmetic would not cover the f32 capture: the allowance is needed.
    let exact = certify(&boxes, map, Arithmetic::Exact).unwrap();
    let below = (0..tokens).any(|t| {
        let hs: Vec<Vec<f64>> = (0..layers)
            .map(|l| {
                hres.slice(ndarray::s![l, t, .., ..])
                    .iter()
                    .copied()
                    .collect()
            })
            .collect();
        let slices: Vec<&[f64]> = hs.iter().map(Vec::as_slice).collect();
        let whole = prefix_composites(&slices, n).pop().unwrap();
        gains(&whole)[1].0 > exact.whole_model().backward.upper
    });
    assert!(
        below,
        "an exact-arithmetic certificate should be undercut by some f32 capture"
    );
}

#[test]
fn bad_input_gives_one_line_errors() {
    let e = LogitBox::new(2, vec![0.0; 3], vec![0.0; 4]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "logit box: expected n² = 4 lower and upper bounds for n = 2, got 3 and 4"
    );
    let e = LogitBox::new(2, vec![0.0, 1.0, 0.0, 0.0], vec![0.0; 4]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "logit box: entry [0, 1] has lower bound 1 above upper bound 0"
    );
    let e = LogitBox::point(2, vec![0.0, f64::NAN, 0.0, 0.0]).unwrap_err();
    assert!(
        e.to_string().starts_with("logit box: entry [0, 1] is NaN"),
        "{e}"
    );
    assert_eq!(
        certify(&[], HresMap::Identity, Arithmetic::Exact).unwrap_err(),
        CertifyError::NoLayers
    );
    let mixed = [point(2, &[0.0; 4]), point(3, &[0.0; 9])];
    assert_eq!(
        certify(&mixed, HresMap::Identity, Arithmetic::Exact)
            .unwrap_err()
            .to_string(),
        "logit box of layer 2: 3 streams, expected 2 as in layer 1"
    );
    let one = [point(2, &[0.0; 4])];
    let zero = HresMap::Sinkhorn(SinkhornParams {
        order: SinkhornOrder::ColumnsThenRows,
        iterations: 0,
    });
    assert_eq!(
        certify(&one, zero, Arithmetic::Exact).unwrap_err(),
        CertifyError::NoIterations
    );
    let bad_eps = HresMap::DeepseekSinkhorn {
        iterations: 20,
        eps: -1.0,
    };
    assert_eq!(
        certify(&one, bad_eps, Arithmetic::Exact).unwrap_err(),
        CertifyError::BadEps(-1.0)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// More rounding allowance never gives a smaller bound: Exact ≤ F64 ≤ F32.
    #[test]
    fn bounds_grow_with_the_rounding_allowance(
        map_index in 1usize..MAPS.len(),
        width in prop::sample::select(vec![0.0, 1e-3, 1.0]),
        seed in any::<u64>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let boxes = random_boxes(3, 4, 2.0, 2.0, width, &mut rng);
        let map = MAPS[map_index];
        let certificates: Vec<Certificate> = [Arithmetic::Exact, Arithmetic::F64, Arithmetic::F32]
            .into_iter()
            .map(|a| certify(&boxes, map, a).unwrap())
            .collect();
        for pair in certificates.windows(2) {
            for (a, b) in pair[0].prefix.iter().zip(&pair[1].prefix) {
                prop_assert!(a.forward.upper <= b.forward.upper * (1.0 + 1e-12), "{a:?} {b:?}");
                prop_assert!(a.backward.upper <= b.backward.upper * (1.0 + 1e-12), "{a:?} {b:?}");
            }
        }
    }
}

/// Whether H computed from `logits` lies in the enclosure: every entry, row sum and column sum.
fn inside(enclosure: &Enclosure, h: &[f64]) -> Result<(), String> {
    let n = enclosure.n;
    for (k, (e, &x)) in enclosure.entries.iter().zip(h).enumerate() {
        if !(e.lo <= x && x <= e.hi) {
            return Err(format!("entry [{}, {}] = {x} outside {e:?}", k / n, k % n));
        }
    }
    for a in 0..n {
        let row: f64 = (0..n).map(|b| h[a * n + b]).sum();
        let column: f64 = (0..n).map(|b| h[b * n + a]).sum();
        // The sums of the computed entries, rounded once more here: allow that rounding.
        let slack = 4.0 * n as f64 * f64::EPSILON;
        let (r, c) = (enclosure.row_sums[a], enclosure.column_sums[a]);
        if row < r.lo * (1.0 - slack) || row > r.hi * (1.0 + slack) {
            return Err(format!("row sum {a} = {row} outside {r:?}"));
        }
        if column < c.lo * (1.0 - slack) || column > c.hi * (1.0 + slack) {
            return Err(format!("column sum {a} = {column} outside {c:?}"));
        }
    }
    Ok(())
}

/// Coordinate search within one box for the logits that push `objective(H)` up.
fn push(b: &LogitBox, map: HresMap, objective: &dyn Fn(&[f64]) -> f64) -> Vec<f64> {
    let n = b.n();
    let mut logits: Vec<f64> = b
        .lower()
        .iter()
        .zip(b.upper())
        .map(|(l, h)| l + 0.5 * (h - l))
        .collect();
    let mut best = objective(&model_h(&logits, n, map));
    for _ in 0..2 {
        for k in 0..n * n {
            let (lo, hi) = (b.lower()[k], b.upper()[k]);
            let original = logits[k];
            let mut keep = original;
            for candidate in [lo, hi] {
                logits[k] = candidate;
                let value = objective(&model_h(&logits, n, map));
                if value > best {
                    best = value;
                    keep = candidate;
                }
            }
            logits[k] = keep;
        }
    }
    logits
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Each method's enclosure of one layer holds H for every sampled logit matrix: random
    /// points, corners, and for each entry and each sum the logits that push it up or down.
    #[test]
    fn each_method_encloses_sampled_matrices(
        n in 2usize..=5,
        map_index in 1usize..MAPS.len(),
        iterations in 1u32..=20,
        scale in prop::sample::select(vec![0.1, 1.0, 3.0]),
        diagonal in prop::sample::select(vec![0.0, 4.0]),
        width in prop::sample::select(vec![0.0, 1e-4, 1e-2, 0.3, 2.0]),
        seed in any::<u64>(),
    ) {
        let map = with_iterations(MAPS[map_index], iterations);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let b = random_boxes(n, 1, scale, diagonal, width, &mut rng).pop().unwrap();
        let enclosures: Vec<Enclosure> = METHOD_CHOICES
            .iter()
            .map(|&m| layer_enclosure(&b, map, Arithmetic::F64, m))
            .collect();
        let mut candidates: Vec<Vec<f64>> = (0..4)
            .map(|_| {
                b.lower()
                    .iter()
                    .zip(b.upper())
                    .map(|(&l, &h)| l + rng.random::<f64>() * (h - l))
                    .collect()
            })
            .collect();
        candidates.push(b.lower().to_vec());
        candidates.push(b.upper().to_vec());
        for sign in [1.0, -1.0] {
            for k in 0..n * n {
                candidates.push(push(&b, map, &|h: &[f64]| sign * h[k]));
            }
            for a in 0..n {
                candidates.push(push(&b, map, &|h: &[f64]| sign * (0..n).map(|j| h[a * n + j]).sum::<f64>()));
                candidates.push(push(&b, map, &|h: &[f64]| sign * (0..n).map(|i| h[i * n + a]).sum::<f64>()));
            }
        }
        for logits in &candidates {
            let h = model_h(logits, n, map);
            for (enclosure, methods) in enclosures.iter().zip(METHOD_CHOICES) {
                inside(enclosure, &h).map_err(|e| TestCaseError::fail(format!("{methods:?}: {e}")))?;
            }
        }
    }
}

/// Boxes whose bounds are f32 values (rounded outward), as logits a model computed in f32.
fn f32_boxes(boxes: Vec<LogitBox>) -> Vec<LogitBox> {
    let outward = |x: f64, up: bool| {
        let y = x as f32;
        let y = match (f64::from(y) < x, f64::from(y) > x, up) {
            (true, _, true) => y.next_up(),
            (_, true, false) => y.next_down(),
            _ => y,
        };
        f64::from(y)
    };
    boxes
        .into_iter()
        .map(|b| {
            let lower = b.lower().iter().map(|&x| outward(x, false)).collect();
            let upper = b.upper().iter().map(|&x| outward(x, true)).collect();
            LogitBox::new(b.n(), lower, upper).unwrap()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// With the f32 allowance, the bound covers matrices computed in f32 (and the f64
    /// certificate need not: see the lucidrains capture test).
    #[test]
    fn the_f32_allowance_covers_matrices_computed_in_f32(
        n in 2usize..=6,
        layers in 1usize..=8,
        map_index in 1usize..MAPS.len(),
        iterations in 1u32..=20,
        scale in prop::sample::select(vec![0.1, 1.0, 3.0]),
        diagonal in prop::sample::select(vec![0.0, 4.0]),
        width in prop::sample::select(vec![0.0, 1e-5, 1e-2, 0.5]),
        seed in any::<u64>(),
    ) {
        let map = with_iterations(MAPS[map_index], iterations);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let boxes = f32_boxes(random_boxes(n, layers, scale, diagonal, width, &mut rng));
        let certificate = certify(&boxes, map, Arithmetic::F32).expect("valid input");
        for logits in samples_with(&boxes, map, &mut rng, Precision::F32) {
            check(&certificate, &logits, map, Precision::F32).map_err(TestCaseError::fail)?;
        }
    }
}

#[test]
fn the_deepseek_fixture_matches_the_map_and_is_within_its_certificate() {
    // tests/data/checkpoints/deepseek_v4.safetensors: 3 blocks × (attention, FFN); the loader
    // turns each hc_*_base's comb part (mixes = 0) into H = Sinkhorn(comb)ᵀ
    // (deepseek_v4_expected.npy). In our orientation the logits are combᵀ.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/checkpoints/deepseek_v4.safetensors");
    let bytes = std::fs::read(path).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let expected = read_npy("tests/data/checkpoints/deepseek_v4_expected.npy");
    let n = 4;
    let map = HresMap::DeepseekSinkhorn {
        iterations: 20,
        eps: 1e-6,
    };
    let mut boxes = Vec::new();
    let mut hs = Vec::new();
    for block in 0..3 {
        for sub in ["attn", "ffn"] {
            let tensor = tensors
                .tensor(&format!("layers.{block}.hc_{sub}_base"))
                .unwrap();
            let base: Vec<f64> = tensor
                .data()
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect();
            let comb = &base[2 * n..];
            let logits: Vec<f64> = (0..n * n).map(|k| comb[(k % n) * n + k / n]).collect();
            let layer = hs.len();
            let h: Vec<f64> = expected
                .slice(ndarray::s![layer, .., ..])
                .iter()
                .copied()
                .collect();
            let reference = model_h(&logits, n, map);
            let diff = h
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(
                diff < 1e-12,
                "layer {}: reference differs by {diff}",
                layer + 1
            );
            boxes.push(point(n, &logits));
            hs.push(h);
        }
    }
    let c = certify(&boxes, map, Arithmetic::F64).unwrap();
    let slices: Vec<&[f64]> = hs.iter().map(Vec::as_slice).collect();
    let prefix = prefix_composites(&slices, n);
    for (l, h) in hs.iter().enumerate() {
        let [f, b] = gains(&ScaledMatrix::new(n, h.clone()));
        let bounds = &c.single[l];
        // Point boxes: the bound is the gain itself, up to the f64 allowance.
        assert!(within(&bounds.forward, f) && close(bounds.forward.upper, f.0, 1e-9));
        assert!(within(&bounds.backward, b) && close(bounds.backward.upper, b.0, 1e-9));
        let [f, b] = gains(&prefix[l]);
        assert!(within(&c.prefix[l].forward, f) && close(c.prefix[l].forward.upper, f.0, 1e-9));
        assert!(within(&c.prefix[l].backward, b) && close(c.prefix[l].backward.upper, b.0, 1e-9));
    }
}

#[test]
fn one_stream_and_extreme_boxes_give_numbers_never_nan() {
    // n = 1: Sinkhorn gives H = [1], DeepSeek a number a few ε below 1, HC the logit itself.
    let one = vec![LogitBox::new(1, vec![-2.0], vec![3.0]).unwrap(); 3];
    let c = certify(&one, HresMap::Identity, Arithmetic::Exact).unwrap();
    assert!(close(c.whole_model().forward.upper, 27.0, 1e-12));
    for map in MAPS[1..].iter().copied() {
        let c = certify(&one, map, Arithmetic::F32).unwrap();
        let whole = model_h(&[3.0], 1, map)[0].powi(3);
        for b in [c.whole_model().forward, c.whole_model().backward] {
            assert!(
                b.upper >= whole && close(b.upper, whole, 1e-4),
                "{map:?} {b:?}"
            );
        }
    }
    // Logits at ±1e100: no NaN anywhere, whatever the arithmetic.
    let extreme = vec![
        LogitBox::new(2, vec![-1e100; 4], vec![1e100; 4]).unwrap(),
        LogitBox::point(2, vec![1e100, -1e100, 0.0, 1e100]).unwrap(),
    ];
    for map in MAPS {
        for arithmetic in [Arithmetic::Exact, Arithmetic::F64, Arithmetic::F32] {
            let c = certify(&extreme, map, arithmetic).unwrap();
            well_formed(&c).unwrap();
            let whole = c.whole_model();
            assert!(
                whole.forward.upper > 0.0 && whole.backward.upper > 0.0,
                "{whole:?}"
            );
        }
    }
}
