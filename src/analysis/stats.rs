//! Statistics over seeds, aggregated as the seeds arrive.
//!
//! [`SeedStatistics`] keeps, for each of `width` values per seed, the exact count, sum, min and
//! max. Quantiles (median, p05, p95) are exact (numpy's default linear interpolation) while the
//! number of stored values `seeds × width` stays within [`EXACT_VALUE_BUDGET`]: the values are
//! stored seed by seed (a producer may write them in place, [`SeedStatistics::exact_rows_mut`]),
//! and every statistic is computed from them at the end. Beyond the budget every value moves
//! into a log-bucketed sketch with relative accuracy [`SKETCH_RELATIVE_ACCURACY`] (DDSketch)
//! and running sums, so memory stays flat however many seeds run. Both paths are
//! deterministic: the result depends only on the values and their seed order, never on thread
//! count (sums are taken in seed order).

use rayon::prelude::*;
use serde::Serialize;

use super::select;
use crate::buffer::ZeroedBuffer;

/// Values per rayon task in [`SeedStatistics::push_seeds`] and [`SeedStatistics::summaries`].
const STATISTICS_COLUMN_BLOCK: usize = 64;

/// Stored values (seeds × width) up to which quantiles are exact: 64 MB of f64, enough for
/// 1000 seeds of a 64-layer `gain` run (6920 values per seed).
pub const EXACT_VALUE_BUDGET: usize = 8_000_000;

/// Relative accuracy of sketched quantiles: a reported quantile q̂ satisfies |q̂ − q| ≤ 1%·|q|
/// for the true order statistic q.
pub const SKETCH_RELATIVE_ACCURACY: f64 = 0.01;

/// The statistics reported for each value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// Arithmetic mean over seeds.
    Mean,
    /// 50th percentile.
    Median,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// 5th percentile.
    P05,
    /// 95th percentile.
    P95,
}

impl Stat {
    /// All statistics in output order.
    pub const ALL: [Stat; 6] = [
        Stat::Mean,
        Stat::Median,
        Stat::Min,
        Stat::Max,
        Stat::P05,
        Stat::P95,
    ];

    /// The CSV/JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Stat::Mean => "mean",
            Stat::Median => "median",
            Stat::Min => "min",
            Stat::Max => "max",
            Stat::P05 => "p05",
            Stat::P95 => "p95",
        }
    }
}

/// The six statistics of one value over seeds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub median: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// 5th percentile.
    pub p05: f64,
    /// 95th percentile.
    pub p95: f64,
}

impl Summary {
    /// One statistic.
    pub fn get(&self, stat: Stat) -> f64 {
        match stat {
            Stat::Mean => self.mean,
            Stat::Median => self.median,
            Stat::Min => self.min,
            Stat::Max => self.max,
            Stat::P05 => self.p05,
            Stat::P95 => self.p95,
        }
    }
}

/// Running statistics of `width` values per seed.
#[derive(Clone, Debug)]
pub struct SeedStatistics {
    width: usize,
    count: usize,
    /// Running sum, min and max of each value once sketched (while exact, they are computed
    /// from the stored values).
    sum: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
    /// Values seed-major (`exact_capacity × width`) while exact.
    exact: Option<ZeroedBuffer<f64>>,
    exact_capacity: usize,
    sketches: Vec<Sketch>,
}

impl SeedStatistics {
    /// Statistics for `width` values per seed, for about `expected_seeds` seeds (more may come;
    /// quantiles stay exact up to `min(expected_seeds, EXACT_VALUE_BUDGET / width)` seeds).
    pub fn new(width: usize, expected_seeds: usize) -> Self {
        let exact_capacity = expected_seeds.min(EXACT_VALUE_BUDGET / width.max(1)).max(1);
        // A run known to outgrow the budget sketches from the first seed: storing values only
        // to fold them into sketches later would put the whole budget in memory for nothing.
        let sketch_from_start = expected_seeds > exact_capacity;
        Self {
            width,
            count: 0,
            sum: vec![0.0; width],
            min: vec![f64::INFINITY; width],
            max: vec![f64::NEG_INFINITY; width],
            exact: (!sketch_from_start).then(|| ZeroedBuffer::new(width * exact_capacity)),
            exact_capacity,
            sketches: if sketch_from_start {
                vec![Sketch::default(); width]
            } else {
                Vec::new()
            },
        }
    }

    /// Number of seeds seen.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether quantiles are exact (false once the sketch took over).
    pub fn quantiles_exact(&self) -> bool {
        self.exact.is_some()
    }

    /// Adds one seed's values (length `width`).
    pub fn push(&mut self, values: &[f64]) {
        debug_assert_eq!(values.len(), self.width);
        if let Some(rows) = self.exact_rows_mut(1) {
            rows.copy_from_slice(values);
            return;
        }
        self.leave_exact();
        self.push_sketched(values);
    }

    /// Adds one seed's values to the running sums and the sketches.
    fn push_sketched(&mut self, values: &[f64]) {
        self.count += 1;
        for (k, &x) in values.iter().enumerate() {
            self.sum[k] += x;
            self.min[k] = self.min[k].min(x);
            self.max[k] = self.max[k].max(x);
            self.sketches[k].add(x);
        }
    }

    /// The storage for the next `seeds` seeds' values (`[seed][value]`, `seeds × width`), to be
    /// written in place, if they fit in exact storage; they count as pushed from now on. None
    /// once (or if) they do not fit: push them instead.
    pub fn exact_rows_mut(&mut self, seeds: usize) -> Option<&mut [f64]> {
        let exact = self.exact.as_mut()?;
        if self.count + seeds > self.exact_capacity {
            return None;
        }
        let rows = &mut exact[self.count * self.width..(self.count + seeds) * self.width];
        self.count += seeds;
        Some(rows)
    }

    /// Moves stored values (if any) into sketches and running sums, in seed order.
    fn leave_exact(&mut self) {
        let Some(stored) = self.exact.take() else {
            return;
        };
        let stored_seeds = std::mem::take(&mut self.count);
        self.sketches = vec![Sketch::default(); self.width];
        for values in stored.chunks_exact(self.width.max(1)).take(stored_seeds) {
            self.push_sketched(values);
        }
    }

    /// Adds the values of consecutive seeds, in order: `values` holds one row of `width` values
    /// per seed (`[seed][value]`). The same result as [`Self::push`] on each row; sketches are
    /// updated in column blocks that the ambient rayon pool runs in parallel (each value's own
    /// sequence of updates stays in seed order, so the result does not depend on the thread
    /// count).
    pub fn push_seeds(&mut self, values: &[f64]) {
        assert_eq!(
            values.len() % self.width.max(1),
            0,
            "push_seeds: rows of {} values expected",
            self.width
        );
        let seeds: Vec<&[f64]> = values.chunks_exact(self.width.max(1)).collect();
        if let Some(rows) = self.exact_rows_mut(seeds.len()) {
            rows.copy_from_slice(values);
            return;
        }
        if self.exact.is_some() {
            // The chunk crosses from exact storage into sketches: once per run, sequentially.
            seeds.iter().for_each(|values| self.push(values));
            return;
        }
        self.count += seeds.len();
        (
            &mut self.sum,
            &mut self.min,
            &mut self.max,
            &mut self.sketches,
        )
            .into_par_iter()
            .enumerate()
            .with_min_len(STATISTICS_COLUMN_BLOCK)
            .for_each(|(k, (sum, min, max, sketch))| {
                for values in &seeds {
                    let x = values[k];
                    *sum += x;
                    *min = min.min(x);
                    *max = max.max(x);
                    sketch.add(x);
                }
            });
    }

    /// The summary of value `k` (NaN everywhere before the first seed).
    pub fn summary(&self, k: usize) -> Summary {
        if self.count == 0 {
            return Summary::nan();
        }
        match &self.exact {
            Some(exact) => {
                let mut column: Vec<f64> = exact
                    .chunks_exact(self.width)
                    .take(self.count)
                    .map(|values| values[k])
                    .collect();
                exact_summary(&mut column)
            }
            None => self.sketched_summary(k),
        }
    }

    /// Summaries of every value (computed in parallel on the ambient rayon pool). Stored values
    /// are read in blocks of columns, each block copied out seed by seed (contiguous reads).
    pub fn summaries(&self) -> Vec<Summary> {
        if self.count == 0 {
            return vec![Summary::nan(); self.width];
        }
        let Some(exact) = &self.exact else {
            return (0..self.width)
                .into_par_iter()
                .map(|k| self.sketched_summary(k))
                .collect();
        };
        let (width, count) = (self.width, self.count);
        let rows = &exact[..count * width];
        let mut summaries = vec![Summary::nan(); width];
        summaries
            .par_chunks_mut(STATISTICS_COLUMN_BLOCK)
            .enumerate()
            .for_each_init(Vec::new, |columns, (block, out)| {
                exact_block_summaries(rows, width, block * STATISTICS_COLUMN_BLOCK, out, columns);
            });
        summaries
    }

    /// The summary of value `k` from its sketch and running sums.
    fn sketched_summary(&self, k: usize) -> Summary {
        let [p05, median, p95] = [0.05, 0.5, 0.95].map(|q| self.sketches[k].quantile(q));
        // Sketched values may sit just outside the exact extremes; never report beyond them.
        let (lo, hi) = (self.min[k], self.max[k]);
        let clamp = |x: f64| {
            if x < lo {
                lo
            } else if x > hi {
                hi
            } else {
                x
            }
        };
        Summary {
            mean: self.sum[k] / self.count as f64,
            median: clamp(median),
            min: lo,
            max: hi,
            p05: clamp(p05),
            p95: clamp(p95),
        }
    }
}

impl Summary {
    /// NaN everywhere (no seeds).
    fn nan() -> Self {
        Summary {
            mean: f64::NAN,
            median: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
            p05: f64::NAN,
            p95: f64::NAN,
        }
    }
}

/// The summary of one value's seeds, `column` in seed order (possibly reordered on return):
/// the sum taken in seed order, exact quantiles.
fn exact_summary(column: &mut [f64]) -> Summary {
    let sum = column.iter().fold(0.0, |sum, x| sum + x);
    let min = column.iter().copied().fold(f64::INFINITY, f64::min);
    let max = column.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    summary_with_quantiles(column, sum, min, max)
}

/// The summary of `column` (any order; possibly reordered on return) given its sum, min and max.
/// A column of one repeated value needs no selection: every order statistic is that value (not
/// NaN, as min == max), and so is every quantile, since `QuantileBracket::between` returns a
/// when a == b.
fn summary_with_quantiles(column: &mut [f64], sum: f64, min: f64, max: f64) -> Summary {
    let first = column[0];
    let constant = min == max && column.iter().all(|x| x.to_bits() == first.to_bits());
    let [p05, median, p95] = if constant {
        [first; 3]
    } else {
        selected_quantiles(column, [0.05, 0.5, 0.95])
    };
    Summary {
        mean: sum / column.len() as f64,
        median,
        min,
        max,
        p05,
        p95,
    }
}

/// The summaries of values `first..first + out.len()` (at most [`STATISTICS_COLUMN_BLOCK`])
/// of `rows` (`[seed][value]`, `width` values per seed), the same as [`exact_summary`] on each
/// column. One pass over the rows copies the block out column by column into `columns` (a
/// buffer reused between blocks) and adds the sums, minima and maxima of all its columns side
/// by side, each in seed order: 64 independent sums where one column alone is a chain of
/// dependent additions.
fn exact_block_summaries(
    rows: &[f64],
    width: usize,
    first: usize,
    out: &mut [Summary],
    columns: &mut Vec<f64>,
) {
    const BLOCK: usize = STATISTICS_COLUMN_BLOCK;
    let count = rows.len() / width;
    let w = out.len();
    assert!(w <= BLOCK, "exact_block_summaries: at most {BLOCK} columns");
    if columns.len() < w * count {
        columns.resize(w * count, 0.0);
    }
    let (mut sum, mut min, mut max) = (
        [0.0; BLOCK],
        [f64::INFINITY; BLOCK],
        [f64::NEG_INFINITY; BLOCK],
    );
    for (seed, values) in rows.chunks_exact(width).enumerate() {
        let values = &values[first..first + w];
        // Two loops: the first vectorises (one lane per column), the scattered copy would not.
        for (((sum, min), max), &x) in sum.iter_mut().zip(&mut min).zip(&mut max).zip(values) {
            *sum += x;
            *min = min.min(x);
            *max = max.max(x);
        }
        for (c, &x) in values.iter().enumerate() {
            columns[c * count + seed] = x;
        }
    }
    // Columns equal bit for bit to an earlier one of the block (for mHC, amax_forward,
    // inf_norm and row_sum_max, among others) take its summary: about a tenth of the columns
    // of a 64-layer gain run. Equal columns have equal sums, minima and maxima, which pick the
    // candidates to compare; the comparisons run before any selection reorders a column.
    let same_bits = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
    let key = |c: usize| [sum[c], min[c], max[c]].map(f64::to_bits);
    let mut copy_of = [None; BLOCK];
    for c in 0..w {
        let column = &columns[c * count..(c + 1) * count];
        copy_of[c] = (0..c).find(|&earlier| {
            copy_of[earlier].is_none()
                && key(earlier) == key(c)
                && same_bits(&columns[earlier * count..(earlier + 1) * count], column)
        });
    }
    for c in 0..w {
        if let Some(earlier) = copy_of[c] {
            out[c] = out[earlier];
            continue;
        }
        let column = &mut columns[c * count..(c + 1) * count];
        out[c] = summary_with_quantiles(column, sum[c], min[c], max[c]);
    }
}

/// Quantile `q` of sorted values by linear interpolation between order statistics (numpy's
/// default): h = (N − 1)·q, x[⌊h⌋] + (h − ⌊h⌋)(x[⌊h⌋+1] − x[⌊h⌋]).
pub fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    QuantileBracket::new(sorted.len(), q).interpolate(sorted)
}

/// [`exact_quantile`] at several levels of unsorted `values`, by selection (O(N) where sorting
/// is O(N log N); may reorder `values`). Only the order statistics the levels need are selected
/// (module [`super::select`]). They are those of `sort_by(f64::total_cmp)`, so the result is
/// bit-identical to sorting first.
pub fn selected_quantiles<const LEVELS: usize>(
    values: &mut [f64],
    levels: [f64; LEVELS],
) -> [f64; LEVELS] {
    if values.is_empty() {
        return [f64::NAN; LEVELS];
    }
    let brackets = levels.map(|q| QuantileBracket::new(values.len(), q));
    let mut ranks: Vec<usize> = brackets
        .iter()
        .flat_map(|bracket| [bracket.low, bracket.high])
        .collect();
    ranks.sort_unstable();
    ranks.dedup();
    let mut ordered = vec![0.0; ranks.len()];
    select::order_statistics(values, &ranks, &mut ordered);
    let at = |rank: usize| ordered[ranks.binary_search(&rank).expect("a requested rank")];
    brackets.map(|bracket| bracket.between(at(bracket.low), at(bracket.high)))
}

/// The two order statistics a quantile interpolates between: h = (N − 1)·q, ranks ⌊h⌋ and
/// ⌊h⌋ + 1 (capped at N − 1).
struct QuantileBracket {
    h: f64,
    low: usize,
    high: usize,
}

impl QuantileBracket {
    fn new(len: usize, q: f64) -> Self {
        let last = len - 1;
        let h = last as f64 * q;
        let low = h.floor() as usize;
        Self {
            h,
            low,
            high: (low + 1).min(last),
        }
    }

    /// x[low] + (h − low)(x[high] − x[low]) for sorted values `x`.
    fn interpolate(&self, sorted: &[f64]) -> f64 {
        self.between(sorted[self.low], sorted[self.high])
    }

    /// a + (h − low)(b − a) for the order statistics a = x[low] and b = x[high].
    fn between(&self, a: f64, b: f64) -> f64 {
        if a == b {
            return a;
        }
        a + (self.h - self.low as f64) * (b - a)
    }
}

/// A DDSketch: counts per logarithmic bucket, separately for positive and negative values.
#[derive(Clone, Debug, Default)]
struct Sketch {
    positive: DenseStore,
    negative: DenseStore,
    zero: u64,
    positive_infinite: u64,
    negative_infinite: u64,
    not_a_number: u64,
}

/// Bucket ratio γ = (1 + α)/(1 − α).
fn gamma_ln() -> f64 {
    ((1.0 + SKETCH_RELATIVE_ACCURACY) / (1.0 - SKETCH_RELATIVE_ACCURACY)).ln()
}

/// Magnitudes below this count as zero in the sketch.
const SKETCH_MIN_MAGNITUDE: f64 = 1e-300;

impl Sketch {
    fn add(&mut self, x: f64) {
        if x.is_nan() {
            self.not_a_number += 1;
        } else if x == f64::INFINITY {
            self.positive_infinite += 1;
        } else if x == f64::NEG_INFINITY {
            self.negative_infinite += 1;
        } else if x.abs() < SKETCH_MIN_MAGNITUDE {
            self.zero += 1;
        } else {
            let index = ceil_to_i32(x.abs().ln() / gamma_ln());
            if x > 0.0 {
                self.positive.add(index);
            } else {
                self.negative.add(index);
            }
        }
    }

    fn total(&self) -> u64 {
        self.positive.total
            + self.negative.total
            + self.zero
            + self.positive_infinite
            + self.negative_infinite
            + self.not_a_number
    }

    /// The value of the `rank`-th smallest element (0-based), to relative accuracy α.
    fn value_at_rank(&self, rank: u64) -> f64 {
        let mut seen = self.negative_infinite;
        if rank < seen {
            return f64::NEG_INFINITY;
        }
        // Negative values: largest magnitude first.
        for (index, count) in self.negative.buckets_descending() {
            seen += count;
            if rank < seen {
                return -bucket_value(index);
            }
        }
        seen += self.zero;
        if rank < seen {
            return 0.0;
        }
        for (index, count) in self.positive.buckets_ascending() {
            seen += count;
            if rank < seen {
                return bucket_value(index);
            }
        }
        seen += self.positive_infinite;
        if rank < seen {
            return f64::INFINITY;
        }
        f64::NAN
    }

    fn quantile(&self, q: f64) -> f64 {
        let total = self.total();
        if total == 0 || self.not_a_number > 0 {
            return f64::NAN;
        }
        let h = (total - 1) as f64 * q;
        let lo = h.floor() as u64;
        let a = self.value_at_rank(lo);
        let b = self.value_at_rank((lo + 1).min(total - 1));
        if a == b {
            return a;
        }
        a + (h - lo as f64) * (b - a)
    }
}

/// ⌈y⌉ for |y| < 2³¹ (bucket indices are within ±40,000): the same as `y.ceil() as i32`, without
/// a call into libm (x86-64's baseline has no rounding instruction).
fn ceil_to_i32(y: f64) -> i32 {
    let truncated = y as i32;
    if f64::from(truncated) < y {
        truncated + 1
    } else {
        truncated
    }
}

/// The representative value of bucket `index`: 2γ^i/(γ + 1), within α of every member.
fn bucket_value(index: i32) -> f64 {
    let gamma = gamma_ln().exp();
    2.0 * (index as f64 * gamma_ln()).exp() / (gamma + 1.0)
}

/// Counts for a contiguous range of bucket indices.
#[derive(Clone, Debug, Default)]
struct DenseStore {
    offset: i32,
    /// u32 counts: a sketch sees at most one value per seed, and half the memory of u64 keeps
    /// the 6,912 sketches of a 64-layer run in cache better.
    counts: Vec<u32>,
    total: u64,
}

impl DenseStore {
    fn add(&mut self, index: i32) {
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(0);
        } else if index < self.offset {
            let grow = (self.offset - index) as usize;
            let mut counts = vec![0; grow];
            counts.extend_from_slice(&self.counts);
            self.counts = counts;
            self.offset = index;
        } else if (index - self.offset) as usize >= self.counts.len() {
            self.counts.resize((index - self.offset) as usize + 1, 0);
        }
        self.counts[(index - self.offset) as usize] += 1;
        self.total += 1;
    }

    fn buckets_ascending(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(k, c)| (self.offset + k as i32, u64::from(*c)))
    }

    fn buckets_descending(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, c)| **c > 0)
            .map(|(k, c)| (self.offset + k as i32, u64::from(*c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_quantiles_match_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4, 10], [5, 50, 95]) = [1.2, 3.0, 8.8]
        let mut stats = SeedStatistics::new(1, 5);
        for x in [3.0, 1.0, 10.0, 2.0, 4.0] {
            stats.push(&[x]);
        }
        let s = stats.summary(0);
        assert!((s.p05 - 1.2).abs() < 1e-12);
        assert_eq!(s.median, 3.0);
        assert!((s.p95 - 8.8).abs() < 1e-12);
        assert_eq!((s.min, s.max, s.mean), (1.0, 10.0, 4.0));
    }

    #[test]
    fn pushing_chunks_equals_pushing_seeds_one_by_one() {
        let width = 300;
        let rows: Vec<Vec<f64>> = (0..250)
            .map(|seed| {
                (0..width)
                    .map(|k| ((seed * 31 + k * 17) as f64 * 0.618).fract() * 1e3 - 100.0)
                    .collect()
            })
            .collect();
        // Exact throughout, exact then sketched (unannounced), sketched from the start.
        for expected in [250, 100, 1000] {
            let capacity_limited = |expected| {
                let mut s = SeedStatistics::new(width, expected);
                s.exact_capacity = s.exact_capacity.min(120);
                if let Some(exact) = &mut s.exact {
                    *exact = ZeroedBuffer::new(width * s.exact_capacity);
                }
                s
            };
            let mut one_by_one = capacity_limited(expected);
            rows.iter().for_each(|row| one_by_one.push(row));
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let mut chunked = capacity_limited(expected);
                pool.install(|| {
                    rows.chunks(64)
                        .for_each(|c| chunked.push_seeds(&c.concat()))
                });
                // As `run_gain` does: written in place while they fit, pushed after.
                let mut in_place = capacity_limited(expected);
                for c in rows.chunks(64) {
                    let values = c.concat();
                    match in_place.exact_rows_mut(c.len()) {
                        Some(storage) => storage.copy_from_slice(&values),
                        None => pool.install(|| in_place.push_seeds(&values)),
                    }
                }
                let b = one_by_one.summaries();
                // Each value alone as well as all at once.
                let single: Vec<Summary> = (0..width).map(|k| one_by_one.summary(k)).collect();
                for other in [&chunked, &in_place] {
                    assert_eq!(other.count(), one_by_one.count());
                    assert_eq!(other.quantiles_exact(), one_by_one.quantiles_exact());
                    let a = pool.install(|| other.summaries());
                    for (x, y) in a.iter().zip(&b).chain(single.iter().zip(&b)) {
                        for stat in Stat::ALL {
                            assert_eq!(x.get(stat).to_bits(), y.get(stat).to_bits(), "{stat:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn repeated_and_constant_columns_summarise_like_any_other() {
        // Columns that copy an earlier one, that differ from it in one seed only, that hold one
        // value (+0, −0 mixed with +0, ±inf, NaN), or NaN in one seed: the block path (which
        // reuses summaries and skips selection) must equal the column-by-column one bit for bit.
        let seeds = 37;
        // Whole numbers, so that sums are exact and do not depend on the order of the terms.
        let base: Vec<f64> = (0..seeds)
            .map(|s| ((s * 7919) % 101) as f64 - 50.0)
            .collect();
        // The same sum, min and max as `base` (what picks the candidates), other values.
        let mut same_totals = base.clone();
        let mut order: Vec<usize> = (0..seeds).collect();
        order.sort_by(|&a, &b| base[a].total_cmp(&base[b]));
        same_totals[order[seeds / 2]] += 3.0;
        same_totals[order[seeds / 2 - 1]] -= 3.0;
        let mut near = base.clone();
        near[20] = f64::from_bits(near[20].to_bits() + 1);
        let mut mixed_zero = vec![0.0; seeds];
        mixed_zero[5] = -0.0;
        let mut one_nan = base.clone();
        one_nan[3] = f64::NAN;
        let columns: Vec<Vec<f64>> = vec![
            base.clone(),
            vec![0.0; seeds],
            same_totals,
            near,
            mixed_zero,
            vec![f64::INFINITY; seeds],
            vec![f64::NAN; seeds],
            one_nan.clone(),
            base,
            vec![-2.5; seeds],
            one_nan,
            vec![0.0; seeds],
        ];
        let width = columns.len();
        let mut stats = SeedStatistics::new(width, seeds);
        for seed in 0..seeds {
            let row: Vec<f64> = columns.iter().map(|column| column[seed]).collect();
            stats.push(&row);
        }
        let all = stats.summaries();
        for (k, summary) in all.iter().enumerate() {
            let alone = stats.summary(k);
            for stat in Stat::ALL {
                assert_eq!(
                    summary.get(stat).to_bits(),
                    alone.get(stat).to_bits(),
                    "column {k}, {stat:?}"
                );
            }
        }
        assert_ne!(all[0].median, all[2].median, "same totals, other median");
        assert_eq!(all[5].median, f64::INFINITY);
        assert_eq!(all[9].p05, -2.5);
    }

    #[test]
    fn bucket_index_rounds_up_like_ceil() {
        let mut y = -40_000.0;
        while y < 40_000.0 {
            for x in [y, y + 0.5, y + 1e-9, -y, f64::from(y as i32)] {
                assert_eq!(ceil_to_i32(x), x.ceil() as i32, "{x}");
            }
            y += 0.731;
        }
        for x in [0.0, -0.0, -0.5, 0.5, -1.0, 1.0, f64::EPSILON, -f64::EPSILON] {
            assert_eq!(ceil_to_i32(x), x.ceil() as i32, "{x}");
        }
    }

    #[test]
    fn one_seed_gives_equal_statistics() {
        let mut stats = SeedStatistics::new(2, 1);
        stats.push(&[2.5, -1.0]);
        let s = stats.summary(1);
        assert_eq!([s.mean, s.median, s.min, s.max, s.p05, s.p95], [-1.0; 6]);
    }

    #[test]
    fn sketch_takes_over_within_its_accuracy() {
        // Announced (sketched from the first seed) and unannounced (exact, then folded into
        // sketches at seed 101): the same accuracy.
        for expected in [1000, 100] {
            sketch_within_accuracy(expected);
        }
    }

    fn sketch_within_accuracy(expected_seeds: usize) {
        let width = EXACT_VALUE_BUDGET / 100; // exact for 100 seeds, sketched after
        let mut stats = SeedStatistics::new(width, expected_seeds);
        let mut row = vec![0.0; width];
        let values: Vec<f64> = (0..1000)
            .map(|k| 1.0 + (k as f64 * 0.618).fract() * 1e3)
            .collect();
        for &x in &values {
            row[0] = x;
            row[1] = -x;
            stats.push(&row);
        }
        assert!(!stats.quantiles_exact());
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.05, 0.5, 0.95] {
            let exact = exact_quantile(&sorted, q);
            let sketched = stats.sketches[0].quantile(q);
            assert!(
                (sketched / exact - 1.0).abs() <= 0.011,
                "{q}: {sketched} vs {exact}"
            );
            let negative = stats.sketches[1].quantile(1.0 - q);
            assert!((negative / -exact - 1.0).abs() <= 0.011);
        }
        let s = stats.summary(0);
        assert_eq!(s.max, *sorted.last().unwrap());
    }
}
