//! Composites across depth of one 64-layer, n = 4 stack (one token): `single(l)`, `prefix(l)`,
//! `suffix(l)` for l = 1 … 64, and all three kinds together (what `profile_stack` computes per
//! token before measuring), for HC (logits `I + 0.3·G` as H_res) and mHC (their Sinkhorn
//! normalisation, default parameters).
//!
//! Composites are [`ScaledMatrix`](mhc_analyze::compose::ScaledMatrix) values (mantissa and
//! power-of-two exponent, rescaled after every product), so HC and mHC cost the same work; the
//! two groups show whether the magnitudes matter. Throughput is the number of composites
//! produced (64 per kind, 192 for `all`), so criterion reports composites per second.
//!
//! Run with `cargo bench --bench compose`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mhc_analyze::LayerStack;
use mhc_analyze::compose::{
    Composite, composites, prefix_composites, single_composites, suffix_composites,
};
use mhc_analyze::generate::{LogitGenerator, SinkhornParams, mhc_stack, task_rng};

/// Master seed of every input drawn here.
const SEED: u64 = 0x5eed;
const LAYERS: usize = 64;
const STREAMS: usize = 4;

fn bench_compose(c: &mut Criterion) {
    let mut rng = task_rng(SEED, 0);
    let data = LogitGenerator::default().draw(&mut rng, LAYERS, 1, STREAMS);
    let hc = LayerStack::new(data, "benchmark logits").expect("generated logits are finite");
    let mhc = mhc_stack(&hc, &SinkhornParams::default());

    for (method, stack) in [("hc", &hc), ("mhc", &mhc)] {
        let layers = stack.token_slices(0);
        let n = STREAMS;
        let mut group = c.benchmark_group(format!("compose_64x4/{method}"));
        group.throughput(Throughput::Elements(LAYERS as u64));
        group.bench_function("single", |b| {
            b.iter(|| single_composites(black_box(&layers), n))
        });
        group.bench_function("prefix", |b| {
            b.iter(|| prefix_composites(black_box(&layers), n))
        });
        group.bench_function("suffix", |b| {
            b.iter(|| suffix_composites(black_box(&layers), n))
        });
        group.throughput(Throughput::Elements((Composite::ALL.len() * LAYERS) as u64));
        group.bench_function("all", |b| {
            b.iter(|| Composite::ALL.map(|kind| composites(kind, black_box(&layers), n)))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .without_plots();
    targets = bench_compose
}
criterion_main!(benches);
