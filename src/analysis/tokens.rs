//! The token fold: statistics over the tokens of a stack of per-token H_res, streamed in chunks
//! so that memory does not grow with the number of tokens.
//!
//! Tokens are to `audit` what seeds are to `gain`: independent draws of a stack. A
//! [`TokenSource`] (a captured file read by positional reads, a probe generator, or a stack in
//! memory) delivers tokens `first..first + count` of every layer; each token is measured
//! ([`super::measure`]) into one row, and the rows are folded by the one summariser
//! ([`DrawStatistics`]) in token order. While a chunk is measured on the rayon pool, the next one
//! is read. The result is identical for any chunk size and thread count (tested byte for byte).

use std::ops::Range;

use rayon::prelude::*;
use serde::Serialize;

use super::measure::{TokenWorkspace, measure_tokens};
use super::results::{Audited, Layer, Results, RowLayout, Selection};
use super::stats::{DrawStatistics, EXACT_VALUE_BUDGET, MAX_DRAWS};
use crate::compose::Composite;
use crate::error::{ConfigError, Error};
use crate::metrics::Metric;
use crate::stack::LayerStack;

/// Per-token stacks `[layers, tokens, n, n]` (rows = output streams), read in chunks of tokens.
pub trait TokenSource: Sync {
    /// Number of layers L.
    fn layers(&self) -> usize;
    /// Number of streams n.
    fn streams(&self) -> usize;
    /// Number of tokens T.
    fn tokens(&self) -> u64;
    /// Writes tokens `tokens` of every layer into `out`, **token-major**: the matrix of layer l
    /// (0-based) of the k-th token of the range starts at `(k·L + l)·n²` (row-major n×n, f64).
    /// Every value must be finite: a source reports the first non-finite one as an error naming
    /// its layer (1-based), token and entry.
    fn read_tokens(&self, tokens: Range<u64>, out: &mut [f64]) -> Result<(), Error>;
}

impl TokenSource for LayerStack {
    fn layers(&self) -> usize {
        LayerStack::layers(self)
    }
    fn streams(&self) -> usize {
        LayerStack::streams(self)
    }
    fn tokens(&self) -> u64 {
        LayerStack::tokens(self) as u64
    }
    fn read_tokens(&self, tokens: Range<u64>, out: &mut [f64]) -> Result<(), Error> {
        let n2 = self.streams() * self.streams();
        let layers = self.layers();
        for (k, token) in tokens.enumerate() {
            for (l, matrix) in self.token_slices(token as usize).into_iter().enumerate() {
                let start = (k * layers + l) * n2;
                out[start..start + n2].copy_from_slice(matrix);
            }
        }
        Ok(())
    }
}

/// The tokens with the largest whole-model values of one metric.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorstTokens {
    /// The metric ranked (of the whole-model composite prefix(L)).
    pub metric: Metric,
    /// `(token, value)`, largest value first; ties keep the lower token first.
    pub tokens: Vec<(u64, f64)>,
}

/// How many worst tokens are kept per metric.
pub(crate) const WORST_TOKENS_KEPT: usize = 10;

/// The metrics whose worst tokens are kept.
const WORST_TOKEN_METRICS: [Metric; 2] = [Metric::AmaxBackward, Metric::AmaxForward];

impl WorstTokens {
    fn new(metric: Metric) -> Self {
        Self {
            metric,
            tokens: Vec::with_capacity(WORST_TOKENS_KEPT + 1),
        }
    }

    /// Offers `token`'s value; kept if among the [`WORST_TOKENS_KEPT`] largest so far (a NaN is
    /// never kept). Tokens arrive in order, so a tie never displaces an earlier token.
    fn offer(&mut self, token: u64, value: f64) {
        if value.is_nan() {
            return;
        }
        let position = self.tokens.partition_point(|&(_, kept)| kept >= value);
        if position < WORST_TOKENS_KEPT {
            self.tokens.insert(position, (token, value));
            self.tokens.truncate(WORST_TOKENS_KEPT);
        }
    }
}

/// What a token fold produced.
#[derive(Clone, Debug)]
pub struct TokenStatistics {
    /// Number of streams n.
    pub streams: usize,
    /// Statistics over tokens of every measured value.
    pub results: Results<Audited>,
    /// The tokens with the largest whole-model `amax_backward`, then `amax_forward`.
    pub worst_tokens: Vec<WorstTokens>,
    /// Each layer's matrix averaged over tokens, `(1/T)·Σ_t H_l(t)` summed in token order (for
    /// the metric-of-mean view); `None` unless asked for.
    pub mean_matrices: Option<Vec<Vec<f64>>>,
}

/// Options of a token fold. The default measures everything in chunks of about 8 MB.
#[derive(Clone, Debug, Default)]
pub struct TokenFoldOptions {
    /// What is measured of every token.
    pub selection: Selection,
    /// Tokens per chunk; `None` picks about a million values of rows per chunk. Never changes
    /// the results.
    pub chunk_tokens: Option<usize>,
    /// Also average each layer's matrices over tokens.
    pub mean_matrices: bool,
}

/// Values of measured rows per chunk when the chunk size is not given (8 MB of f64).
const CHUNK_VALUES: usize = 1 << 20;

/// A chunk of measured tokens, handed to the per-token consumer in token order.
pub struct TokenChunk<'a> {
    layout: &'a RowLayout,
    first: u64,
    rows: &'a [f64],
}

impl TokenChunk<'_> {
    /// The tokens of the chunk, with their rows, in order.
    pub fn tokens(&self) -> impl Iterator<Item = TokenRow<'_>> {
        let width = self.layout.width();
        self.rows
            .chunks_exact(width)
            .enumerate()
            .map(move |(k, row)| TokenRow {
                layout: self.layout,
                token: self.first + k as u64,
                row,
            })
    }
}

/// One measured token.
pub struct TokenRow<'a> {
    layout: &'a RowLayout,
    token: u64,
    row: &'a [f64],
}

impl TokenRow<'_> {
    /// The token's index (0-based, in the source's order).
    pub fn token(&self) -> u64 {
        self.token
    }

    /// The value of `metric` of `composite` at `layer` for this token; `None` when the metric
    /// was not measured.
    pub fn value(&self, composite: Composite, layer: Layer, metric: Metric) -> Option<f64> {
        self.layout
            .position(0, composite, layer, metric)
            .map(|position| self.row[position])
    }

    /// The token's whole row: every measured value in the order of the fold's
    /// [`RowLayout`](super::results::RowLayout) (for consumers that keep rows, such as the
    /// token benchmark).
    pub fn values(&self) -> &[f64] {
        self.row
    }

    /// The whole-model composite's value.
    pub fn whole_model(&self, metric: Metric) -> Option<f64> {
        self.value(Composite::Prefix, Layer::last(self.layout.layers()), metric)
    }
}

/// Folds every token of `source` into statistics over tokens. `on_chunk` sees each measured
/// chunk in token order (for a streamed per-token export; an error stops the fold);
/// `on_progress(done)` is called after each chunk. Parallelism comes from the ambient rayon pool.
pub fn fold_tokens(
    source: &dyn TokenSource,
    options: &TokenFoldOptions,
    on_chunk: impl FnMut(&TokenChunk<'_>) -> Result<(), Error>,
    on_progress: impl FnMut(u64),
) -> Result<TokenStatistics, Error> {
    fold_tokens_within(source, options, EXACT_VALUE_BUDGET, on_chunk, on_progress)
}

/// [`fold_tokens`] with another exact budget of stored values (tests reach the sketch with
/// small stacks).
fn fold_tokens_within(
    source: &dyn TokenSource,
    options: &TokenFoldOptions,
    exact_budget: usize,
    mut on_chunk: impl FnMut(&TokenChunk<'_>) -> Result<(), Error>,
    mut on_progress: impl FnMut(u64),
) -> Result<TokenStatistics, Error> {
    let (layers, n, tokens) = (source.layers(), source.streams(), source.tokens());
    if tokens > MAX_DRAWS {
        return Err(ConfigError::TooLarge {
            name: "tokens",
            maximum: MAX_DRAWS,
            value: tokens,
        }
        .into());
    }
    let layout = RowLayout::new(1, layers, options.selection.clone());
    let width = layout.width();
    let mut statistics =
        DrawStatistics::with_budget(&layout.sketch_references(), tokens as usize, exact_budget);
    let chunk = options
        .chunk_tokens
        .unwrap_or(CHUNK_VALUES / width.max(1))
        .clamp(1, 1 << 16) as u64;
    let matrix_values = layers * n * n;
    let mut worst: Vec<WorstTokens> = WORST_TOKEN_METRICS
        .into_iter()
        .filter(|m| layout.metrics().contains(*m))
        .map(WorstTokens::new)
        .collect();
    let mut mean: Option<Vec<f64>> = options.mean_matrices.then(|| vec![0.0; matrix_values]);
    let mut current = vec![0.0; chunk as usize * matrix_values];
    let mut next = vec![0.0; chunk as usize * matrix_values];
    let mut scratch = Vec::new();
    let range_at = |first: u64| first..(first + chunk).min(tokens);
    if tokens > 0 {
        let range = range_at(0);
        source.read_tokens(range.clone(), &mut current[..span(&range) * matrix_values])?;
    }
    let mut first = 0;
    while first < tokens {
        let range = range_at(first);
        let count = span(&range);
        let following = range_at(range.end);
        let matrices = &current[..count * matrix_values];
        // Read the next chunk while this one is measured.
        let read_next = || {
            if following.is_empty() {
                return Ok(());
            }
            let len = span(&following) * matrix_values;
            source.read_tokens(following.clone(), &mut next[..len])
        };
        let rows: &[f64] = if statistics.is_exact() {
            let rows = statistics
                .exact_rows_mut(count)
                .expect("exact statistics store rows");
            let (read, ()) = rayon::join(read_next, || measure_rows(&layout, n, matrices, rows));
            read?;
            statistics.stored_rows(range.clone())
        } else {
            scratch.resize(count * width, 0.0);
            let (read, ()) = rayon::join(read_next, || {
                measure_rows(&layout, n, matrices, &mut scratch)
            });
            read?;
            statistics.push_rows(&scratch);
            &scratch
        };
        let measured = TokenChunk {
            layout: &layout,
            first: range.start,
            rows,
        };
        for row in measured.tokens() {
            for kept in &mut worst {
                if let Some(value) = row.whole_model(kept.metric) {
                    kept.offer(row.token(), value);
                }
            }
        }
        on_chunk(&measured)?;
        if let Some(sum) = &mut mean {
            for token in matrices.chunks_exact(matrix_values) {
                for (s, x) in sum.iter_mut().zip(token) {
                    *s += x;
                }
            }
        }
        std::mem::swap(&mut current, &mut next);
        first = range.end;
        on_progress(first);
    }
    let results = Results::new(
        layout,
        statistics.summaries(),
        tokens,
        statistics.quantiles(),
    );
    let mean_matrices = mean.map(|sum| {
        sum.chunks_exact(n * n)
            .map(|m| m.iter().map(|x| x / tokens as f64).collect())
            .collect()
    });
    Ok(TokenStatistics {
        streams: n,
        results,
        worst_tokens: worst,
        mean_matrices,
    })
}

fn span(range: &Range<u64>) -> usize {
    (range.end - range.start) as usize
}

/// Measures each token of `matrices` (token-major, see [`TokenSource::read_tokens`]) into its
/// row of `rows`, in parallel over tokens.
fn measure_rows(layout: &RowLayout, n: usize, matrices: &[f64], rows: &mut [f64]) {
    let layers = layout.layers();
    let matrix_values = layers * n * n;
    let width = layout.width();
    rows.par_chunks_mut(width * BATCH_TOKENS)
        .zip(matrices.par_chunks(matrix_values * BATCH_TOKENS))
        .for_each_init(
            || (TokenWorkspace::default(), Vec::new()),
            |(work, slices), (rows, tokens)| {
                slices.clear();
                slices.extend(tokens.chunks_exact(n * n));
                measure_tokens(slices, n, layout, rows, width, work);
                for row in rows.chunks_exact_mut(width) {
                    layout.fill_peaks(0, row);
                }
            },
        );
}

/// Tokens measured together by one worker: their composites share one batch of SIMD lanes.
const BATCH_TOKENS: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::results::{Quantiles, Stat};
    use crate::compose::Composite;
    use ndarray::Array4;

    /// 4 layers × 300 tokens of HC-like matrices (entries 0.25 ± 0.3, row sums near 1).
    fn stack() -> LayerStack {
        let data = Array4::from_shape_fn((4, 300, 3, 3), |(l, t, i, j)| {
            let u = ((l * 7919 + t * 104_729 + i * 13 + j * 7) as f64 * 0.618_033_988_7).fract();
            let base = if i == j { 0.7 } else { 0.15 };
            base + 0.3 * (u - 0.5)
        });
        LayerStack::new(data, "test").unwrap()
    }

    fn fold(chunk: usize, threads: usize, budget: usize) -> TokenStatistics {
        let options = TokenFoldOptions {
            chunk_tokens: Some(chunk),
            ..TokenFoldOptions::default()
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| fold_tokens_within(&stack(), &options, budget, |_| Ok(()), |_| {}))
            .unwrap()
    }

    fn bits(statistics: &TokenStatistics) -> Vec<u64> {
        let results = &statistics.results;
        let mut out = Vec::new();
        for composite in Composite::ALL {
            for layer in Layer::all(results.layers()) {
                for &metric in results.layout().metrics().metrics() {
                    let summary = results.summary(Audited::Stack, composite, layer, metric);
                    out.extend(Stat::ALL.map(|s| summary.get(s).to_bits()));
                }
            }
        }
        for worst in &statistics.worst_tokens {
            out.extend(worst.tokens.iter().flat_map(|(t, v)| [*t, v.to_bits()]));
        }
        out
    }

    #[test]
    fn sketched_and_exact_folds_do_not_depend_on_chunks_or_threads() {
        for budget in [EXACT_VALUE_BUDGET, 1000] {
            let reference = fold(300, 1, budget);
            assert_eq!(
                matches!(reference.results.quantiles(), Quantiles::Exact),
                budget == EXACT_VALUE_BUDGET
            );
            for (chunk, threads) in [(1, 2), (7, 3), (64, 2), (299, 1)] {
                assert_eq!(bits(&fold(chunk, threads, budget)), bits(&reference));
            }
        }
    }

    #[test]
    fn the_sketch_stays_within_its_accuracy_of_the_exact_statistics() {
        let exact = fold(64, 2, EXACT_VALUE_BUDGET).results;
        let sketched = fold(64, 2, 1000).results;
        for composite in Composite::ALL {
            for layer in Layer::all(exact.layers()) {
                for metric in [Metric::AmaxForward, Metric::Sigma2, Metric::RowSumMin] {
                    let e = exact.summary(Audited::Stack, composite, layer, metric);
                    let s = sketched.summary(Audited::Stack, composite, layer, metric);
                    assert_eq!((e.min, e.max, e.mean), (s.min, s.max, s.mean));
                    let reference = crate::analysis::results::sketch_reference(metric);
                    for stat in [Stat::Median, Stat::P90, Stat::P99] {
                        let (a, b) = (e.get(stat), s.get(stat));
                        // Interpolation between two ranks can mix buckets: allow the accuracy of
                        // the larger of the bracketing distances (the spread of this column).
                        let scale = (a - reference).abs().max((e.max - reference).abs());
                        assert!(
                            (a - b).abs()
                                <= crate::analysis::stats::SKETCH_RELATIVE_ACCURACY * scale * 1.01,
                            "{composite:?} {layer} {metric:?} {stat:?}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
}
