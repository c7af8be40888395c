//! The per-token audit's two stages on one core, on mHC-like stacks of 60 layers × n = 4 (each
//! token's layers Sinkhorn-normalised `exp(I + 0.3·G + S_l)`, as `bench/make_capture.py` draws
//! them, from the crate's own generators):
//!
//! - `tokens/measure/<T>`: `fold_tokens` over T = 256 tokens with every metric (each token's 180
//!   single, prefix and suffix matrices composed and measured, batched across tokens into SIMD
//!   lanes), quantiles exact (the values are stored); throughput in tokens, so criterion
//!   reports tokens per second (× 60 = token-layers per second);
//! - `tokens/sketch/<rows>`: `DrawStatistics::push_rows` of 256 measured rows (3966 values each)
//!   into sketches, as a run beyond the exact budget folds every chunk; throughput in rows.
//!
//! Run with `cargo bench --bench tokens`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mhc_analyze::LayerStack;
use mhc_analyze::analysis::{DrawStatistics, TokenFoldOptions, fold_tokens};
use mhc_analyze::generate::{SinkhornParams, mhc_stack};
use ndarray::Array4;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const LAYERS: usize = 60;
const STREAMS: usize = 4;
const TOKENS: usize = 256;

/// `[LAYERS, TOKENS, 4, 4]` mHC-like matrices: Sinkhorn of `I + 0.3·G + S_l` (S_l = 0.5·G_l
/// shared by the layer's tokens).
fn stack() -> LayerStack {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut normal = || -> f64 { StandardNormal.sample(&mut rng) };
    let shifts: Vec<f64> = (0..LAYERS * STREAMS * STREAMS)
        .map(|_| 0.5 * normal())
        .collect();
    let logits = Array4::from_shape_fn((LAYERS, TOKENS, STREAMS, STREAMS), |(l, _, i, j)| {
        let identity = if i == j { 1.0 } else { 0.0 };
        identity + shifts[(l * STREAMS + i) * STREAMS + j] + 0.3 * normal()
    });
    let logits = LayerStack::new(logits, "benchmark logits").expect("finite logits");
    mhc_stack(&logits, &SinkhornParams::default())
}

fn bench_tokens(c: &mut Criterion) {
    let stack = stack();
    let mut group = c.benchmark_group("tokens");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("rayon pool");
    group.throughput(Throughput::Elements(TOKENS as u64));
    group.bench_function(BenchmarkId::new("measure", TOKENS), |b| {
        b.iter(|| {
            single.install(|| {
                fold_tokens(
                    black_box(&stack),
                    &TokenFoldOptions::default(),
                    |_| Ok(()),
                    |_| {},
                )
                .expect("fold")
            })
        })
    });
    // The rows of the same tokens, folded into sketches (a run announced beyond the budget).
    let mut rows = Vec::new();
    let folded = single
        .install(|| {
            fold_tokens(
                &stack,
                &TokenFoldOptions::default(),
                |chunk| {
                    for token in chunk.tokens() {
                        rows.extend_from_slice(token.values());
                    }
                    Ok(())
                },
                |_| {},
            )
        })
        .expect("fold");
    let layout = folded.results.layout();
    group.bench_function(BenchmarkId::new("sketch", TOKENS), |b| {
        b.iter_batched_ref(
            || DrawStatistics::for_layout(layout, 1 << 20),
            |statistics| single.install(|| statistics.push_rows(black_box(&rows))),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_tokens);
criterion_main!(benches);
