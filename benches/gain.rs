//! The full `gain` sweep, as `mhc-analyze gain --layers 64 --streams 4 --seeds S` runs it:
//! `GainConfig::random` with the CLI's defaults (logits `I + 0.3·G`, one token, master seed 0,
//! 20 Sinkhorn iterations columns-then-rows, mean-of-metrics) and `run_gain` inside a rayon pool
//! built the way the CLI's `--threads` builds it (`ThreadPoolBuilder::num_threads(N)`, or the
//! default pool size, i.e. all cores, when `--threads` is absent).
//!
//! What is timed is `run_gain` alone: drawing the logits, Sinkhorn, every single/prefix/suffix
//! composite of both methods and its 18 metrics, and the statistics over seeds. Argument parsing,
//! the stdout table and the files of `--out` are not included. Throughput is the number of seeds,
//! so criterion reports seeds per second.
//!
//! Groups: `gain_64x4/one_seed` (`seed_values` for one seed, no pool),
//! `gain_64x4/statistics/seeds_{100,1000}` (only the serial fold into `SeedStatistics` and the
//! summaries, on precomputed values), and `gain_64x4/seeds_100` and `gain_64x4/seeds_1000`
//! (sample size 10), each with `threads_1` and `threads_default`.
//!
//! Run with `cargo bench --bench gain` (a filter such as `-- seeds_100` runs one group).

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use mhc_analyze::analysis::gain::seed_values;
use mhc_analyze::analysis::{DrawStatistics, GainConfig, GainParams, run_gain};
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

/// `mhc-analyze gain --layers 64 --streams 4 --seeds <seeds>` with every other option at its
/// default.
fn cli_config(seeds: u64) -> GainConfig {
    GainParams {
        seeds,
        ..GainParams::default()
    }
    .validate()
    .expect("valid gain configuration")
}

/// The pools to compare: one thread, and the default size (all cores, as without `--threads`).
fn pools() -> Vec<(String, ThreadPool)> {
    let single = ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("rayon pool");
    let default = ThreadPoolBuilder::new().build().expect("rayon pool");
    vec![
        ("threads_1".to_string(), single),
        ("threads_default".to_string(), default),
    ]
}

fn sweep(pool: &ThreadPool, config: &GainConfig) {
    let result = pool
        .install(|| run_gain(config, |_, _| Ok(()), |_| {}))
        .expect("gain sweep");
    black_box(result);
}

fn bench_one_seed(c: &mut Criterion) {
    let config = cli_config(1);
    let mut group = c.benchmark_group("gain_64x4");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_seed", |b| {
        b.iter(|| seed_values(black_box(&config), 0).expect("random logits"))
    });
    group.finish();
}

fn bench_sweeps(c: &mut Criterion) {
    let pools = pools();
    for (seeds, sample_size, measurement) in [(100, 10, 3), (1000, 10, 10)] {
        // A 1000-seed sweep takes about a second, so criterion may warn that 10 samples do not
        // fit in 10 s and stretch the budget (one sweep per sample); 10 is its minimum.
        let config = cli_config(seeds);
        let mut group = c.benchmark_group(format!("gain_64x4/seeds_{seeds}"));
        group
            .throughput(Throughput::Elements(seeds))
            .sampling_mode(SamplingMode::Flat)
            .sample_size(sample_size)
            .measurement_time(Duration::from_secs(measurement));
        for (name, pool) in &pools {
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| sweep(pool, &config))
            });
        }
        group.finish();
    }
}

/// The statistics part of `run_gain`: folding every seed's values into `DrawStatistics` in seed
/// order, chunk by chunk, and computing the summaries (exact quantiles: 1000 seeds × 6920
/// values fit the exact budget), on the global rayon pool. The values are
/// the real ones of the sweep, computed once before timing.
fn bench_statistics(c: &mut Criterion) {
    let config = cli_config(1000);
    let layout = config.row_layout();
    let width = seed_values(&config, 0).expect("random logits").len();
    // `[seed][value]`, as run_gain holds a chunk.
    let values: Vec<f64> = (0..config.seeds())
        .into_par_iter()
        .map(|index| seed_values(&config, index).expect("random logits"))
        .collect::<Vec<_>>()
        .concat();
    let mut group = c.benchmark_group("gain_64x4/statistics");
    group
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(4));
    for seeds in [100, 1000] {
        group.throughput(Throughput::Elements(seeds as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("seeds_{seeds}")),
            &values[..seeds * width],
            |b, values| {
                b.iter(|| {
                    let mut statistics = DrawStatistics::for_layout(&layout, seeds);
                    // In chunks of 64 seeds, as run_gain folds them (on the ambient pool).
                    for chunk in values.chunks(64 * width) {
                        statistics.push_rows(chunk);
                    }
                    black_box(statistics.summaries())
                })
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots();
    targets = bench_one_seed, bench_statistics, bench_sweeps
}
criterion_main!(benches);
