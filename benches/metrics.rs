//! The per-matrix metrics on fixed sets of 1024 matrices, so criterion reports matrices per
//! second (`Throughput::Elements(1024)`; time per matrix = reported time / 1024).
//!
//! Matrix sets (all deterministic, drawn with the crate's own `task_rng` and `LogitGenerator`
//! default `I + 0.3·G`, 64-layer stacks, one token):
//!
//! - `hc_layers`: single HC layers (the logits themselves);
//! - `hc_composites`: HC prefix composites `H_l ⋯ H_1`, keeping those whose entries are at most
//!   1e4 in absolute value (the unconstrained products the Birkhoff solver has to work on);
//! - `mhc_layers`: single mHC layers (Sinkhorn, default parameters: nearly doubly stochastic);
//! - `mhc_composites`: mHC prefix composites (doubly stochastic-ish, collapsing toward J/n).
//!
//! Groups:
//!
//! - `metrics_4x4/<set>`: for n = 4, `amax_forward` (the cost class of every sum-based metric),
//!   `singular_values` (allocates the result), `spectral_norm` (allocation-free),
//!   `birkhoff_distance` (exact projection) and `matrix_metrics` (the whole
//!   `MatrixMetrics::of` bundle of 18 metrics, on a `ScaledMatrix`, as `profile_stack` calls it);
//! - `birkhoff/<set>/<n>`: `birkhoff_distance` for n = 4, 8, 16;
//! - `birkhoff/hc_hard/prefix/<l>`: two single large HC composites (entries ≈ 6e4 and 2e6) on
//!   which the Newton solver used to stall and fall back to Dykstra (see `bench_birkhoff_hard`);
//!   one matrix per iteration, not 1024.
//!
//! Run with `cargo bench --bench metrics` (a filter such as `-- birkhoff` runs one group).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mhc_analyze::LayerStack;
use mhc_analyze::compose::{ScaledMatrix, prefix_composites};
use mhc_analyze::generate::{LogitGenerator, SinkhornParams, mhc_stack, task_rng};
use mhc_analyze::metrics::{
    MatrixMetrics, amax_forward, birkhoff_distance, singular_values, singular_values_4_many,
    spectral_norm,
};

/// Master seed of every input drawn here.
const SEED: u64 = 0x5eed;
/// Matrices per set (and per benchmark iteration).
const COUNT: usize = 1024;
/// Layers of the stacks the sets are drawn from.
const LAYERS: usize = 64;
/// Largest |entry| kept in `hc_composites`.
const HC_COMPOSITE_MAX_ENTRY: f64 = 1e4;

#[derive(Clone, Copy, Debug)]
enum Set {
    HcLayers,
    HcComposites,
    MhcLayers,
    MhcComposites,
}

impl Set {
    const ALL: [Set; 4] = [
        Set::HcLayers,
        Set::HcComposites,
        Set::MhcLayers,
        Set::MhcComposites,
    ];

    fn name(self) -> &'static str {
        match self {
            Set::HcLayers => "hc_layers",
            Set::HcComposites => "hc_composites",
            Set::MhcLayers => "mhc_layers",
            Set::MhcComposites => "mhc_composites",
        }
    }

    /// `COUNT` row-major n×n matrices, concatenated.
    fn matrices(self, n: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(COUNT * n * n);
        let mut seed = 0;
        while out.len() < COUNT * n * n {
            let data = LogitGenerator::default().draw(&mut task_rng(SEED, seed), LAYERS, 1, n);
            seed += 1;
            let logits = LayerStack::new(data, "benchmark logits").expect("finite logits");
            let stack = match self {
                Set::HcLayers | Set::HcComposites => logits,
                Set::MhcLayers | Set::MhcComposites => {
                    mhc_stack(&logits, &SinkhornParams::default())
                }
            };
            let layers = stack.token_slices(0);
            match self {
                Set::HcLayers | Set::MhcLayers => {
                    for layer in layers {
                        out.extend_from_slice(layer);
                    }
                }
                Set::HcComposites | Set::MhcComposites => {
                    for composite in prefix_composites(&layers, n) {
                        let values = composite.to_f64();
                        let largest = values.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
                        if largest <= HC_COMPOSITE_MAX_ENTRY {
                            out.extend_from_slice(&values);
                        }
                    }
                }
            }
        }
        out.truncate(COUNT * n * n);
        out
    }
}

fn bench_metrics_4x4(c: &mut Criterion) {
    let n = 4;
    for set in Set::ALL {
        let matrices = set.matrices(n);
        let scaled: Vec<ScaledMatrix> = matrices
            .chunks_exact(n * n)
            .map(|m| ScaledMatrix::new(n, m.to_vec()))
            .collect();
        let mut group = c.benchmark_group(format!("metrics_4x4/{}", set.name()));
        group.throughput(Throughput::Elements(COUNT as u64));
        group.bench_function("amax_forward", |b| {
            b.iter(|| {
                for m in black_box(&matrices).chunks_exact(n * n) {
                    black_box(amax_forward(m, n));
                }
            })
        });
        group.bench_function("singular_values", |b| {
            b.iter(|| {
                for m in black_box(&matrices).chunks_exact(n * n) {
                    black_box(singular_values(m, n));
                }
            })
        });
        let arrays: Vec<[f64; 16]> = matrices
            .chunks_exact(16)
            .map(|m| m.try_into().expect("4×4"))
            .collect();
        let mut sigmas = vec![[0.0; 4]; arrays.len()];
        group.bench_function("singular_values_many", |b| {
            b.iter(|| singular_values_4_many(black_box(&arrays), &mut sigmas))
        });
        group.bench_function("spectral_norm", |b| {
            b.iter(|| {
                for m in black_box(&matrices).chunks_exact(n * n) {
                    black_box(spectral_norm(m, n));
                }
            })
        });
        group.bench_function("birkhoff_distance", |b| {
            b.iter(|| {
                for m in black_box(&matrices).chunks_exact(n * n) {
                    black_box(birkhoff_distance(m, n));
                }
            })
        });
        group.bench_function("matrix_metrics", |b| {
            b.iter(|| {
                for p in black_box(&scaled) {
                    black_box(MatrixMetrics::of(p));
                }
            })
        });
        group.bench_function("matrix_metrics_many", |b| {
            b.iter(|| black_box(MatrixMetrics::of_many(black_box(&scaled))))
        });
        group.finish();
    }
}

fn bench_birkhoff_sizes(c: &mut Criterion) {
    for set in [Set::HcLayers, Set::HcComposites, Set::MhcLayers] {
        let mut group = c.benchmark_group(format!("birkhoff/{}", set.name()));
        // n = 16 HC matrices take ≈ 50–90 ms per set of 1024: 10 samples fit in the 1 s budget.
        group
            .throughput(Throughput::Elements(COUNT as u64))
            .sample_size(10);
        for n in [4, 8, 16] {
            let matrices = set.matrices(n);
            group.bench_with_input(BenchmarkId::from_parameter(n), &matrices, |b, matrices| {
                b.iter(|| {
                    for m in black_box(matrices).chunks_exact(n * n) {
                        black_box(birkhoff_distance(m, n));
                    }
                })
            });
        }
        group.finish();
    }
}

/// Two large HC composites from seed 445 of `mhc-analyze gain --seeds 1000` (master seed 0):
/// `prefix(44)` (|entries| up to ≈ 6e4) and `prefix(64)`, the whole model (|entries| up to
/// ≈ 2e6). Before commit c0f24d6 the n = 4 Newton solver stalled on them and Dykstra's fallback
/// ran ≈ 10⁵ iterations and up to its 2·10⁶ cap (≈ 9 ms and ≈ 190 ms; that one seed took ≈ 0.6 s
/// of the 1000-seed sweep); kept as a regression target. One matrix per iteration.
fn bench_birkhoff_hard(c: &mut Criterion) {
    let n = 4;
    let data = LogitGenerator::default().draw(&mut task_rng(0, 445), LAYERS, 1, n);
    let stack = LayerStack::new(data, "benchmark logits").expect("finite logits");
    let prefix = prefix_composites(&stack.token_slices(0), n);
    let mut group = c.benchmark_group("birkhoff/hc_hard");
    group.throughput(Throughput::Elements(1));
    for layer in [44, 64] {
        let matrix = prefix[layer - 1].to_f64();
        group.bench_with_input(BenchmarkId::new("prefix", layer), &matrix, |b, matrix| {
            b.iter(|| birkhoff_distance(black_box(matrix), n))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .without_plots();
    targets = bench_metrics_4x4, bench_birkhoff_sizes, bench_birkhoff_hard
}
criterion_main!(benches);
