//! The `gain` sweep: HC and mHC from the same logits, measured across depth and over seeds.
//!
//! For every seed (a draw of logits `[layers, tokens, n, n]`), HC's H_res are the logits
//! themselves and mHC's are their Sinkhorn normalisation, so the comparison is paired. Each
//! method's stack is profiled ([`profile_stack`]); the per-seed values are folded into
//! [`SeedStatistics`] in seed order, chunk by chunk, so memory does not grow with the number of
//! seeds and the result is identical for any thread count.

use std::path::Path;

use ndarray::{Array4, Array5, ArrayD, ArrayView4, Axis, Ix5};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::measure::{TokenAggregation, measure_stack};
use super::results::{LayerSelection, Results, RowLayout, Selection, Series};
use super::stats::{DrawStatistics, MAX_DRAWS};
use crate::error::{ConfigError, Error, StackError};
use crate::generate::{LogitGenerator, SinkhornParams, mhc_stack, read_logits_npy, task_rng};
use crate::load::numpy::NpyBlocks;
use crate::stack::{LayerStack, wrong_rank};

/// The two ways of turning logits into H_res.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Unconstrained hyper-connections: H_res = logits.
    Hc,
    /// Manifold-constrained: H_res = Sinkhorn(exp(logits)).
    Mhc,
}

impl Method {
    /// Both methods in output order.
    pub const ALL: [Method; 2] = [Method::Hc, Method::Mhc];

    /// The CSV/JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Hc => "hc",
            Method::Mhc => "mhc",
        }
    }

    /// The display name.
    pub fn label(self) -> &'static str {
        match self {
            Method::Hc => "HC",
            Method::Mhc => "mHC",
        }
    }
}

impl Series for Method {
    const ALL: &'static [Self] = &Method::ALL;
    fn position(self) -> usize {
        match self {
            Method::Hc => 0,
            Method::Mhc => 1,
        }
    }
    fn name(self) -> &'static str {
        Method::name(self)
    }
}

/// Where the logits come from.
#[derive(Clone, Debug)]
pub enum LogitSource {
    /// Drawn per seed from the generator.
    Random(LogitGenerator),
    /// Given draws (from a file): one stack of logits per draw, all the same shape.
    Given {
        /// Where they came from (a path), for outputs.
        origin: String,
        /// The draws, `[draws, layers, tokens, n, n]`, each validated as a [`LayerStack`].
        draws: GivenDraws,
    },
}

/// Where given draws `[draws, layers, tokens, n, n]` live. A draw's stack is copied out when
/// its seed runs.
#[derive(Clone, Debug)]
pub enum GivenDraws {
    /// In memory, as one array (memory holds the input once).
    Memory(Array5<f64>),
    /// In a C-order `.npy` file, read one draw at a time when its seed runs, so memory does not
    /// grow with the file.
    NpyFile(NpyBlocks),
}

/// A validated `gain` configuration.
#[derive(Clone, Debug)]
pub struct GainConfig {
    layers: usize,
    streams: usize,
    tokens: usize,
    seeds: u64,
    seed: u64,
    source: LogitSource,
    sinkhorn: SinkhornParams,
    token_aggregation: TokenAggregation,
    selection: Selection,
}

/// The parameters of a random-logits `gain` sweep, checked by [`GainParams::validate`].
/// `Default` is the command line's: 64 layers, 4 streams, 1 token, 1 seed, master seed 0, the
/// default generator, the paper's Sinkhorn, mean-of-metrics.
#[derive(Clone, Debug)]
pub struct GainParams {
    /// Number of H_res matrices L.
    pub layers: usize,
    /// Residual streams n.
    pub streams: usize,
    /// Tokens per layer (each with its own draw; metrics are averaged over tokens).
    pub tokens: usize,
    /// Independent draws S.
    pub seeds: u64,
    /// Master seed: seed i draws from [`task_rng`]`(seed, i)`.
    pub seed: u64,
    /// How logits are drawn.
    pub generator: LogitGenerator,
    /// Sinkhorn settings for mHC.
    pub sinkhorn: SinkhornParams,
    /// How a seed's tokens are combined.
    pub token_aggregation: TokenAggregation,
}

impl Default for GainParams {
    fn default() -> Self {
        Self {
            layers: 64,
            streams: 4,
            tokens: 1,
            seeds: 1,
            seed: 0,
            generator: LogitGenerator::default(),
            sinkhorn: SinkhornParams::default(),
            token_aggregation: TokenAggregation::MeanOfMetrics,
        }
    }
}

impl GainParams {
    /// Checks every parameter and builds the configuration.
    pub fn validate(self) -> Result<GainConfig, ConfigError> {
        let Self {
            layers,
            streams,
            tokens,
            seeds,
            seed,
            generator,
            sinkhorn,
            token_aggregation,
        } = self;
        at_least("layers", layers as u64, 1)?;
        at_most("layers", layers as u64, MAX_LAYERS as u64)?;
        at_least("streams", streams as u64, 2)?;
        at_most("streams", streams as u64, MAX_STREAMS as u64)?;
        at_least("tokens", tokens as u64, 1)?;
        at_most("tokens", tokens as u64, MAX_TOKENS as u64)?;
        at_least("seeds", seeds, 1)?;
        at_most("seeds", seeds, MAX_DRAWS)?;
        at_least("sinkhorn-iters", sinkhorn.iterations as u64, 1)?;
        // One seed's logits live in memory at once (8 bytes each, per worker thread).
        at_most(
            "layers × tokens × streams² (values per seed)",
            (layers * tokens * streams * streams) as u64,
            MAX_VALUES_PER_SEED,
        )?;
        Ok(GainConfig {
            layers,
            streams,
            tokens,
            seeds,
            seed,
            source: LogitSource::Random(generator),
            sinkhorn,
            token_aggregation,
            selection: Selection::all(),
        })
    }
}

/// Largest accepted stream count (the Birkhoff solver is dense in 2n unknowns).
pub(crate) const MAX_STREAMS: usize = 64;
/// Largest accepted layer count.
pub(crate) const MAX_LAYERS: usize = 100_000;
/// Largest accepted token count.
pub(crate) const MAX_TOKENS: usize = 100_000;
/// Largest number of logits per seed (100 M values = 800 MB per worker thread).
pub(crate) const MAX_VALUES_PER_SEED: u64 = 100_000_000;

fn at_least(name: &'static str, value: u64, minimum: u64) -> Result<(), ConfigError> {
    if value < minimum {
        return Err(ConfigError::TooSmall {
            name,
            minimum,
            value,
        });
    }
    Ok(())
}

fn at_most(name: &'static str, value: u64, maximum: u64) -> Result<(), ConfigError> {
    if value > maximum {
        return Err(ConfigError::TooLarge {
            name,
            maximum,
            value,
        });
    }
    Ok(())
}

/// The matrix size of a logits file must lie in 2..=[`MAX_STREAMS`].
fn check_streams(streams: usize) -> Result<(), ConfigError> {
    at_least(
        "streams (matrix size in the logits file)",
        streams as u64,
        2,
    )?;
    at_most(
        "streams (matrix size in the logits file)",
        streams as u64,
        MAX_STREAMS as u64,
    )
}

impl GainConfig {
    /// A sweep over the logits in the `.npy` file `path` (f16, f32 or f64): shape
    /// `[layers, n, n]`, `[layers, tokens, n, n]` or `[draws, layers, tokens, n, n]`. A
    /// C-order 5-D file is read one draw at a time (twice: every draw is validated now, and read
    /// again when its seed runs), so memory does not grow with the number of draws; other files
    /// are read whole ([`Self::from_logits`]).
    pub fn from_npy(
        path: &Path,
        sinkhorn: SinkhornParams,
        token_aggregation: TokenAggregation,
    ) -> Result<Self, Error> {
        let origin = path.display().to_string();
        let draws = match NpyBlocks::open(path)? {
            Some(draws) if draws.shape().len() == 5 => draws,
            _ => {
                return Self::from_logits(
                    read_logits_npy(path)?,
                    &origin,
                    sinkhorn,
                    token_aggregation,
                );
            }
        };
        at_least("sinkhorn-iters", sinkhorn.iterations as u64, 1)?;
        let shape = draws.shape();
        let (layers, tokens, streams) = (shape[1], shape[2], shape[3]);
        let stack_shape = [shape[1], shape[2], shape[3], shape[4]];
        if draws.blocks() == 0 {
            return Err(StackError::Empty {
                what: origin,
                shape: stack_shape,
            }
            .into());
        }
        // Every draw is checked now (in parallel on the ambient rayon pool), so a bad value
        // stops the run before it starts; the error is the first bad draw's, whatever the
        // thread count.
        let check = |draw: usize| -> Result<(), Error> {
            let values = draws.read_block(draw)?;
            let stack = ArrayView4::from_shape(stack_shape, &values)
                .expect("a block holds one [layers, tokens, n, n] stack");
            LayerStack::validate(stack, &format!("{origin} (draw {draw})"))?;
            Ok(())
        };
        if let Some(error) = (0..draws.blocks())
            .into_par_iter()
            .map(check)
            .find_first(Result::is_err)
        {
            error?;
        }
        let shape = [draws.blocks(), layers, tokens, streams];
        Self::given(
            origin,
            GivenDraws::NpyFile(draws),
            shape,
            sinkhorn,
            token_aggregation,
        )
    }

    /// A sweep over validated `draws` of shape `[draws, layers, tokens, n, n]` (`shape` is the
    /// first four), once their matrix size n is checked.
    fn given(
        origin: String,
        draws: GivenDraws,
        [seeds, layers, tokens, streams]: [usize; 4],
        sinkhorn: SinkhornParams,
        token_aggregation: TokenAggregation,
    ) -> Result<Self, Error> {
        check_streams(streams)?;
        Ok(Self {
            layers,
            streams,
            tokens,
            seeds: seeds as u64,
            seed: 0,
            source: LogitSource::Given { origin, draws },
            sinkhorn,
            token_aggregation,
            selection: Selection::all(),
        })
    }

    /// A sweep over given logits: `array` of shape `[layers, n, n]`, `[layers, tokens, n, n]` or
    /// `[draws, layers, tokens, n, n]`; each draw is one "seed" of the statistics.
    pub fn from_logits(
        array: ArrayD<f64>,
        origin: &str,
        sinkhorn: SinkhornParams,
        token_aggregation: TokenAggregation,
    ) -> Result<Self, Error> {
        at_least("sinkhorn-iters", sinkhorn.iterations as u64, 1)?;
        let draws: Array5<f64> = match array.ndim() {
            5 => {
                let draws = array
                    .into_dimensionality::<Ix5>()
                    .expect("the match arm checked that the array has rank 5");
                if draws.shape()[0] == 0 {
                    return Err(StackError::Empty {
                        what: origin.to_string(),
                        shape: [0, 0, 0, 0],
                    }
                    .into());
                }
                // Every draw is checked now, in place, so a bad value stops the run before it
                // starts; `logits` copies a draw out when its seed runs.
                for (draw, stack) in draws.axis_iter(Axis(0)).enumerate() {
                    LayerStack::validate(stack, &format!("{origin} (draw {draw})"))?;
                }
                draws
            }
            3 | 4 => LayerStack::from_dynamic(array.view(), origin)?
                .into_array()
                .insert_axis(Axis(0)),
            _ => {
                return Err(wrong_rank(
                    origin,
                    array.shape(),
                    ", or [draws, layers, tokens, n, n]",
                )
                .into());
            }
        };
        let (seeds, layers, tokens, streams, _) = draws.dim();
        Self::given(
            origin.to_string(),
            GivenDraws::Memory(draws),
            [seeds, layers, tokens, streams],
            sinkhorn,
            token_aggregation,
        )
    }

    /// Number of layers L.
    pub fn layers(&self) -> usize {
        self.layers
    }
    /// Number of streams n.
    pub fn streams(&self) -> usize {
        self.streams
    }
    /// Tokens per layer.
    pub fn tokens(&self) -> usize {
        self.tokens
    }
    /// Number of seeds (draws).
    pub fn seeds(&self) -> u64 {
        self.seeds
    }
    /// The master seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Where the logits come from.
    pub fn source(&self) -> &LogitSource {
        &self.source
    }
    /// Sinkhorn settings for mHC.
    pub fn sinkhorn(&self) -> &SinkhornParams {
        &self.sinkhorn
    }
    /// Token aggregation.
    pub fn token_aggregation(&self) -> TokenAggregation {
        self.token_aggregation
    }
    /// The same sweep measuring only `selection` (fewer metrics and layers cost less).
    ///
    /// # Errors
    /// When a selected layer lies beyond the sweep's depth.
    pub fn with_selection(mut self, selection: Selection) -> Result<Self, ConfigError> {
        for layers in selection.composites.iter().flatten() {
            if let LayerSelection::Only(only) = layers
                && let Some(beyond) = only.iter().find(|l| l.number() > self.layers)
            {
                return Err(ConfigError::Conflict(format!(
                    "layer {beyond} is selected, but the stacks have {} layers",
                    self.layers
                )));
            }
        }
        self.selection = selection;
        Ok(self)
    }

    /// The layout of one seed's row: both methods' profiles, then their peaks.
    pub fn row_layout(&self) -> RowLayout {
        RowLayout::new(Method::ALL.len(), self.layers, self.selection.clone())
    }

    /// The logits of seed `index`. Fails only when a logits file can no longer be read (it was
    /// validated whole when the configuration was made).
    pub fn logits(&self, index: u64) -> Result<LayerStack, Error> {
        match &self.source {
            LogitSource::Random(generator) => {
                let mut rng = task_rng(self.seed, index);
                let data = generator.draw(&mut rng, self.layers, self.tokens, self.streams);
                Ok(LayerStack::new(data, "generated logits").expect("generated logits are finite"))
            }
            LogitSource::Given {
                origin,
                draws: GivenDraws::Memory(draws),
            } => Ok(LayerStack::new(
                draws.index_axis(Axis(0), index as usize).to_owned(),
                &format!("{origin} (draw {index})"),
            )
            .expect("given draws are validated in GainConfig::from_logits")),
            LogitSource::Given {
                origin,
                draws: GivenDraws::NpyFile(draws),
            } => {
                let values = draws.read_block(index as usize)?;
                let shape = (self.layers, self.tokens, self.streams, self.streams);
                let data = Array4::from_shape_vec(shape, values)
                    .expect("a block holds one [layers, tokens, n, n] stack");
                // Validated once already; a file changed since then is reported, not trusted.
                Ok(LayerStack::new(data, &format!("{origin} (draw {index})"))?)
            }
        }
    }
}

/// One seed's row, laid out as [`GainConfig::row_layout`].
pub fn seed_values(config: &GainConfig, index: u64) -> Result<Vec<f64>, Error> {
    let layout = config.row_layout();
    let mut values = vec![0.0; layout.width()];
    seed_values_into(config, &layout, index, &mut values)?;
    Ok(values)
}

/// [`seed_values`] written into `out` (length `layout.width()`).
fn seed_values_into(
    config: &GainConfig,
    layout: &RowLayout,
    index: u64,
    out: &mut [f64],
) -> Result<(), Error> {
    let logits = config.logits(index)?;
    let aggregation = config.token_aggregation;
    measure_stack(&logits, aggregation, layout, Method::Hc.position(), out);
    let mhc = mhc_stack(&logits, &config.sinkhorn);
    measure_stack(&mhc, aggregation, layout, Method::Mhc.position(), out);
    Ok(())
}

/// Seeds computed in parallel per chunk; a constant (not the thread count), for determinism.
pub(crate) const SEED_CHUNK: u64 = 64;

/// The statistics of a finished sweep: over seeds, per method.
pub type GainResult = Results<Method>;

/// Runs the sweep. `on_seed(index, values)` sees every seed's row in seed order (for a
/// per-seed export; it may fail, which stops the run); `on_progress(done)` is called after each
/// chunk. Parallelism comes from the ambient rayon pool.
pub fn run_gain(
    config: &GainConfig,
    mut on_seed: impl FnMut(u64, &[f64]) -> Result<(), Error>,
    mut on_progress: impl FnMut(u64),
) -> Result<GainResult, Error> {
    let layout = config.row_layout();
    let width = layout.width();
    let mut statistics = DrawStatistics::for_layout(&layout, config.seeds as usize);
    // Computes seeds `start..` into `rows` (`[seed][value]`) in parallel, then shows them to
    // `on_seed` in order.
    let mut fill = |start: u64, rows: &mut [f64]| -> Result<(), Error> {
        rows.par_chunks_mut(width)
            .enumerate()
            .try_for_each(|(offset, values)| {
                seed_values_into(config, &layout, start + offset as u64, values)
            })?;
        for (offset, values) in rows.chunks_exact(width).enumerate() {
            on_seed(start + offset as u64, values)?;
        }
        Ok(())
    };
    // A chunk's values go straight into the statistics' exact storage when quantiles are
    // exact; otherwise into this buffer (reused), then into the sketches.
    let mut buffer = Vec::new();
    let mut start = 0;
    while start < config.seeds {
        let end = (start + SEED_CHUNK).min(config.seeds);
        let seeds = (end - start) as usize;
        if let Some(rows) = statistics.exact_rows_mut(seeds) {
            fill(start, rows)?;
        } else {
            buffer.resize(seeds * width, 0.0);
            fill(start, &mut buffer)?;
            statistics.push_rows(&buffer);
        }
        start = end;
        on_progress(start);
    }
    Ok(Results::new(
        config.row_layout(),
        statistics.summaries(),
        config.seeds,
        statistics.quantiles(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::results::{Layer, Peak};
    use crate::compose::Composite;
    use crate::metrics::Metric;

    fn small(seeds: u64) -> GainConfig {
        GainParams {
            layers: 16,
            tokens: 2,
            seeds,
            seed: 11,
            ..GainParams::default()
        }
        .validate()
        .unwrap()
    }

    #[test]
    fn rejects_degenerate_sizes() {
        let make = |layers, streams, tokens, seeds| {
            GainParams {
                layers,
                streams,
                tokens,
                seeds,
                ..GainParams::default()
            }
            .validate()
        };
        assert_eq!(
            make(0, 4, 1, 1).unwrap_err().to_string(),
            "layers must be at least 1, got 0"
        );
        assert!(make(4, 1, 1, 1).is_err());
        assert!(make(4, 4, 0, 1).is_err());
        assert!(make(4, 4, 1, 0).is_err());
        assert!(make(4, 65, 1, 1).is_err());
    }

    #[test]
    fn whole_model_is_prefix_at_l_and_suffix_at_1() {
        let result = run_gain(&small(3), |_, _| Ok(()), |_| {}).unwrap();
        for method in Method::ALL {
            for metric in [
                Metric::AmaxForward,
                Metric::SpectralNorm,
                Metric::BirkhoffDistance,
            ] {
                let prefix = result
                    .summary(method, Composite::Prefix, Layer::last(16), metric)
                    .mean;
                let suffix = result
                    .summary(method, Composite::Suffix, Layer::FIRST, metric)
                    .mean;
                // The same product, associated differently: equal up to rounding.
                let tolerance = 1e-11 * prefix.abs().max(1e-3);
                assert!(
                    (prefix - suffix).abs() <= tolerance,
                    "{method:?} {metric:?}"
                );
                assert_eq!(prefix, result.whole_model(method, metric).mean);
            }
        }
    }

    #[test]
    fn mhc_rows_are_exact_and_peaks_bound_layers() {
        let result = run_gain(&small(4), |_, _| Ok(()), |_| {}).unwrap();
        let row_error = result.whole_model(Method::Mhc, Metric::RowSumError).max;
        assert!(row_error < 1e-14, "{row_error}");
        let peak = result.peak(Method::Hc, Peak::PrefixAmaxForward).max;
        for layer in Layer::all(16) {
            let s = result.summary(Method::Hc, Composite::Prefix, layer, Metric::AmaxForward);
            assert!(s.max <= peak);
        }
    }

    /// A seed's values as bit patterns, so that equal runs compare equal even where a metric is
    /// absent (NaN, e.g. the mixing entropy of HC matrices).
    fn seed_bits(config: &GainConfig, seed: u64) -> Vec<u64> {
        seed_values(config, seed)
            .unwrap()
            .into_iter()
            .map(f64::to_bits)
            .collect()
    }

    /// The draws of `small(count)` as one `[draws, layers, tokens, n, n]` array.
    fn small_draws(count: u64) -> ndarray::Array5<f64> {
        let config = small(count);
        let draws: Vec<_> = (0..count)
            .map(|i| config.logits(i).unwrap().into_array())
            .collect();
        let views: Vec<_> = draws.iter().map(|a| a.view()).collect();
        ndarray::stack(Axis(0), &views).unwrap()
    }

    fn npy_config(path: &Path) -> Result<GainConfig, Error> {
        GainConfig::from_npy(
            path,
            SinkhornParams::default(),
            TokenAggregation::MeanOfMetrics,
        )
    }

    #[test]
    fn a_five_dimensional_npy_is_read_draw_by_draw_with_the_same_results() {
        use ndarray_npy::WriteNpyExt;
        let dir = tempfile::tempdir().unwrap();
        let draws = small_draws(3);
        let f64_path = dir.path().join("draws.npy");
        draws
            .write_npy(std::fs::File::create(&f64_path).unwrap())
            .unwrap();
        let streamed = npy_config(&f64_path).unwrap();
        assert!(matches!(
            streamed.source(),
            LogitSource::Given {
                draws: GivenDraws::NpyFile(_),
                ..
            }
        ));
        let reference = small(3);
        for seed in 0..3 {
            assert_eq!(seed_bits(&streamed, seed), seed_bits(&reference, seed));
        }
        // f32 files stream too: the same as the in-memory f32 → f64 conversion.
        let f32_path = dir.path().join("draws32.npy");
        let narrow = draws.mapv(|x| x as f32);
        narrow
            .write_npy(std::fs::File::create(&f32_path).unwrap())
            .unwrap();
        let in_memory = GainConfig::from_logits(
            narrow.mapv(f64::from).into_dyn(),
            "x",
            SinkhornParams::default(),
            TokenAggregation::MeanOfMetrics,
        )
        .unwrap();
        assert_eq!(
            seed_bits(&npy_config(&f32_path).unwrap(), 2),
            seed_bits(&in_memory, 2)
        );
        // Fortran order cannot be read by blocks: the file is read whole, with the same result.
        let fortran_path = dir.path().join("fortran.npy");
        let fortran = draws.t().as_standard_layout().into_owned().reversed_axes();
        assert_eq!(fortran, draws);
        assert!(!fortran.is_standard_layout());
        fortran
            .write_npy(std::fs::File::create(&fortran_path).unwrap())
            .unwrap();
        let whole = npy_config(&fortran_path).unwrap();
        assert!(matches!(
            whole.source(),
            LogitSource::Given {
                draws: GivenDraws::Memory(_),
                ..
            }
        ));
        assert_eq!(seed_bits(&whole, 1), seed_bits(&reference, 1));
    }

    #[test]
    fn a_bad_draw_or_a_short_file_stops_before_the_run() {
        use ndarray_npy::WriteNpyExt;
        let dir = tempfile::tempdir().unwrap();
        let mut draws = small_draws(3);
        draws[[1, 3, 0, 2, 1]] = f64::INFINITY;
        draws[[2, 0, 0, 0, 0]] = f64::NAN;
        let path = dir.path().join("bad.npy");
        draws
            .write_npy(std::fs::File::create(&path).unwrap())
            .unwrap();
        // Draws are checked in parallel; the first bad one is reported on any thread count.
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let err = pool.install(|| npy_config(&path)).unwrap_err().to_string();
            assert!(
                err.contains(
                    "bad.npy (draw 1): non-finite value inf at layer 4, token 0, entry [2, 1]"
                ),
                "{err}"
            );
        }
        let bytes = std::fs::read(&path).unwrap();
        let short = dir.path().join("short.npy");
        std::fs::write(&short, &bytes[..bytes.len() - 8]).unwrap();
        let err = npy_config(&short).unwrap_err().to_string();
        assert!(
            err.contains("short.npy") && err.contains("truncated"),
            "{err}"
        );
        let err = npy_config(dir.path()).unwrap_err().to_string();
        assert!(
            err.ends_with("is a directory, expected a .npy file"),
            "{err}"
        );
    }

    #[test]
    fn logits_from_an_array_of_draws() {
        let config = small(2);
        let stacked = small_draws(2).into_dyn();
        let given = GainConfig::from_logits(
            stacked,
            "draws.npy",
            SinkhornParams::default(),
            TokenAggregation::MeanOfMetrics,
        )
        .unwrap();
        assert_eq!(given.seeds(), 2);
        assert_eq!(seed_bits(&given, 1), seed_bits(&config, 1));
        let rank2 = ndarray::Array2::<f64>::zeros((4, 4)).into_dyn();
        let err = GainConfig::from_logits(
            rank2,
            "x.npy",
            SinkhornParams::default(),
            TokenAggregation::MeanOfMetrics,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("x.npy: expected shape [layers, n, n]"),
            "{err}"
        );
    }
}
