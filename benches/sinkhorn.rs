//! Sinkhorn–Knopp on one n×n matrix of logits `I + 0.3·G` (the `gain` generator's default draw),
//! with the default parameters (20 iterations, columns then rows), for n = 4, 8, 16, 64.
//!
//! Each iteration copies the logits into a reusable buffer and calls
//! [`sinkhorn_in_place`] on it (the path `mhc_stack` takes); the copy of n² values is negligible
//! next to the n² `exp` and 20 × 2 normalisations. Throughput is one matrix per iteration, so
//! criterion reports matrices per second.
//!
//! Run with `cargo bench --bench sinkhorn` (add a filter such as `-- sinkhorn/16` for one size).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mhc_analyze::generate::{LogitGenerator, SinkhornParams, sinkhorn_in_place, task_rng};

/// Master seed of every input drawn here.
const SEED: u64 = 0x5eed;

/// One n×n matrix of logits `I + 0.3·G`, row-major.
fn logits(n: usize) -> Vec<f64> {
    let mut rng = task_rng(SEED, n as u64);
    LogitGenerator::default()
        .draw(&mut rng, 1, 1, n)
        .iter()
        .copied()
        .collect()
}

fn bench_sinkhorn(c: &mut Criterion) {
    let params = SinkhornParams::default();
    let mut group = c.benchmark_group("sinkhorn");
    group.throughput(Throughput::Elements(1));
    for n in [4, 8, 16, 64] {
        let input = logits(n);
        let mut buffer = input.clone();
        group.bench_with_input(BenchmarkId::from_parameter(n), &input, |b, input| {
            b.iter(|| {
                buffer.copy_from_slice(input);
                sinkhorn_in_place(black_box(&mut buffer), n, &params);
                black_box(&buffer);
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .without_plots();
    targets = bench_sinkhorn
}
criterion_main!(benches);
