//! The one summariser: statistics over draws (seeds of `gain`, tokens of `audit`), folded as the
//! draws arrive.
//!
//! [`DrawStatistics`] receives one row of `width` values per draw, in draw order. Mean, min and
//! max are always exact (the mean sums in draw order). Quantiles (median, p05, p90, p95, p99) are
//! **exact** — numpy's default linear interpolation between order statistics — while
//! `draws × width` fits [`EXACT_VALUE_BUDGET`]: the rows are stored (a producer may write them in
//! place, [`DrawStatistics::exact_rows_mut`]) and summarised at the end. A run known to exceed the
//! budget is **sketched** from its first draw, so memory stays flat in the number of draws: each
//! value's distance to a reference point `c` (1 for metrics that equal 1 on doubly stochastic
//! matrices, such as the Amax gains; 0 otherwise), d = x − c, is counted in log-linear buckets
//! read off the bits of |d| (64 buckets per power of two), so a sketched quantile q̂ of a true
//! order statistic q satisfies |q̂ − q| ≤ [`SKETCH_RELATIVE_ACCURACY`]·|q − c|. Measuring the
//! distance to c keeps the drift of an mHC gain (1 + 3.6e-7) visible, where a sketch of the value
//! itself could only say "1 ± 1 %". Each side of c keeps at most [`SKETCH_MAX_BUCKETS`] buckets
//! (64 powers of two below the largest |d| seen); smaller |d| are counted in the lowest kept
//! bucket (an over-estimate of |d|, below 2⁻⁶⁴ of the column's largest distance).
//!
//! Both paths are deterministic: a result depends only on the values and their draw order, never
//! on how draws were chunked or on the thread count (each value's own updates run in draw order,
//! and a sketch's buckets depend only on the multiset of values).
//!
//! A value that is NaN in any draw (an absent metric) gets NaN for every statistic.

use rayon::prelude::*;

use super::results::{Quantiles, Stat, Summary};
use super::select;

/// Columns per rayon task when rows are folded into sketches or summarised.
const COLUMN_BLOCK: usize = 64;

/// Stored values (draws × width) up to which quantiles are exact: 64 MB of f64, enough for 1000
/// seeds of a 64-layer `gain` run or 1700 tokens of a 60-layer audit with every metric.
pub(crate) const EXACT_VALUE_BUDGET: usize = 8_000_000;

/// Bits of the mantissa that pick a sketch bucket: 2⁶ = 64 buckets per power of two.
const SUB_BUCKET_BITS: u32 = 6;

/// Guaranteed relative accuracy of a sketched quantile with respect to its distance to the
/// reference point: half a bucket, 2⁻⁷ = 0.78 %.
pub(crate) const SKETCH_RELATIVE_ACCURACY: f64 = 1.0 / 128.0;

/// Buckets kept on each side of the reference point: 64 powers of two.
pub(crate) const SKETCH_MAX_BUCKETS: u32 = 64 << SUB_BUCKET_BITS;

/// The largest number of draws a run accepts (sketch counts are u32).
pub(crate) const MAX_DRAWS: u64 = u32::MAX as u64;

/// Running statistics of `width` values per draw.
#[derive(Clone, Debug)]
pub struct DrawStatistics {
    width: usize,
    count: usize,
    storage: Storage,
}

#[derive(Clone, Debug)]
enum Storage {
    /// Rows stored draw-major (`capacity × width`).
    Exact { rows: Vec<f64>, capacity: usize },
    /// One running column per value.
    Sketched(Vec<Column>),
}

impl DrawStatistics {
    /// Statistics of `width` values per draw for `draws` draws; `references` gives each value's
    /// reference point for the sketch (length `width`; see the module docs). Quantiles are exact
    /// when `draws × width` ≤ [`EXACT_VALUE_BUDGET`], sketched otherwise.
    pub fn new(references: &[f64], draws: usize) -> Self {
        Self::with_budget(references, draws, EXACT_VALUE_BUDGET)
    }

    /// [`Self::new`] with another exact budget (tests reach the sketch with small runs).
    pub(crate) fn with_budget(references: &[f64], draws: usize, budget: usize) -> Self {
        let width = references.len();
        let exact = draws.saturating_mul(width.max(1)) <= budget;
        let storage = if exact {
            Storage::Exact {
                rows: vec![0.0; draws * width],
                capacity: draws,
            }
        } else {
            Storage::Sketched(references.iter().map(|&c| Column::new(c)).collect())
        };
        Self {
            width,
            count: 0,
            storage,
        }
    }

    /// Statistics of the rows of `layout` for `draws` draws, each value sketched around its
    /// metric's reference point when quantiles cannot be exact.
    pub fn for_layout(layout: &super::results::RowLayout, draws: usize) -> Self {
        Self::new(&layout.sketch_references(), draws)
    }

    /// Values per draw.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Draws folded so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// How quantiles are computed.
    pub fn quantiles(&self) -> Quantiles {
        match self.storage {
            Storage::Exact { .. } => Quantiles::Exact,
            Storage::Sketched(_) => Quantiles::Sketched {
                relative_accuracy: SKETCH_RELATIVE_ACCURACY,
            },
        }
    }

    /// The storage for the next `draws` rows (`[draw][value]`), to be written in place, when
    /// quantiles are exact; they count as folded from now on. `None` for a sketched run.
    ///
    /// # Panics
    /// When more draws arrive than were announced to [`Self::new`].
    pub(crate) fn exact_rows_mut(&mut self, draws: usize) -> Option<&mut [f64]> {
        let Storage::Exact { rows, capacity } = &mut self.storage else {
            return None;
        };
        assert!(
            self.count + draws <= *capacity,
            "more draws than announced ({} > {capacity})",
            self.count + draws
        );
        let start = self.count * self.width;
        self.count += draws;
        Some(&mut rows[start..self.count * self.width])
    }

    /// Whether quantiles are exact (rows are stored).
    pub(crate) fn is_exact(&self) -> bool {
        matches!(self.storage, Storage::Exact { .. })
    }

    /// The stored rows of draws `draws` (exact runs only; empty for a sketched run).
    pub(crate) fn stored_rows(&self, draws: std::ops::Range<u64>) -> &[f64] {
        match &self.storage {
            Storage::Exact { rows, .. } => {
                &rows[draws.start as usize * self.width..draws.end as usize * self.width]
            }
            Storage::Sketched(_) => &[],
        }
    }

    /// Folds consecutive draws, in order: `rows` holds `width` values per draw. Sketches are
    /// updated in column blocks on the ambient rayon pool; each column's updates run in draw
    /// order.
    pub fn push_rows(&mut self, rows: &[f64]) {
        let width = self.width.max(1);
        assert_eq!(rows.len() % width, 0, "rows of {width} values expected");
        let draws = rows.len() / width;
        if let Some(stored) = self.exact_rows_mut(draws) {
            stored.copy_from_slice(rows);
            return;
        }
        let Storage::Sketched(columns) = &mut self.storage else {
            unreachable!("exact storage returned above");
        };
        self.count += draws;
        // Blocks of columns in parallel; within a block, column by column, each over the rows
        // in order: a column's buckets stay in the L1 cache while its values are counted (row
        // by row, every value would touch another column's buckets, a cache miss per value
        // once the sketches outgrow L2), and the block's slice of the rows (the same cache
        // lines for neighbouring columns) stays there too.
        // The block's values are first copied column-major into a scratch buffer, reading the
        // rows in order (a row's slice of the block is a few consecutive cache lines; read
        // column by column, every value would be a cache and TLB miss, the rows being a chunk
        // of several MB written just before). A column's values are then reduced to bucket
        // codes (sums, minima and maxima on the way, in registers), then counted: the counting
        // loop's addresses are known ahead, so the cache misses on the buckets overlap instead
        // of each waiting for its value's load.
        columns
            .par_chunks_mut(COLUMN_BLOCK)
            .enumerate()
            .for_each_init(
                || (Vec::new(), Vec::new()),
                |(block_values, codes), (block, columns)| {
                    let first = block * COLUMN_BLOCK;
                    let count = columns.len();
                    block_values.clear();
                    block_values.resize(count * draws, 0.0);
                    for (r, row) in rows.chunks_exact(width).enumerate() {
                        for (k, &x) in row[first..first + count].iter().enumerate() {
                            block_values[k * draws + r] = x;
                        }
                    }
                    for (column, values) in columns.iter_mut().zip(block_values.chunks_exact(draws))
                    {
                        column.fold(values, codes);
                    }
                },
            );
    }

    /// The summaries of every value, in row order (computed on the ambient rayon pool).
    pub fn summaries(&self) -> Vec<Summary> {
        if self.count == 0 {
            return vec![Summary::nan(); self.width];
        }
        match &self.storage {
            Storage::Exact { rows, .. } => {
                let rows = &rows[..self.count * self.width];
                (0..self.width)
                    .into_par_iter()
                    .with_min_len(COLUMN_BLOCK)
                    .map_init(Vec::new, |column, k| {
                        column.clear();
                        column.extend(rows.chunks_exact(self.width).map(|row| row[k]));
                        exact_summary(column)
                    })
                    .collect()
            }
            Storage::Sketched(columns) => columns
                .par_iter()
                .with_min_len(COLUMN_BLOCK)
                .map(|column| column.summary(self.count))
                .collect(),
        }
    }
}

/// Every statistic of one value's draws, `column` in draw order (reordered on return): the sum
/// in draw order, exact quantiles. NaN everywhere if any draw is NaN.
pub(crate) fn exact_summary(column: &mut [f64]) -> Summary {
    if column.is_empty() || column.iter().any(|x| x.is_nan()) {
        return Summary::nan();
    }
    let mean = column.iter().fold(0.0, |sum, x| sum + x) / column.len() as f64;
    let min = column.iter().copied().fold(f64::INFINITY, f64::min);
    let max = column.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let [median, p05, p90, p95, p99] = selected_quantiles(column, QUANTILE_LEVELS);
    Summary {
        mean,
        median,
        min,
        max,
        p05,
        p90,
        p95,
        p99,
    }
}

/// The quantile levels of a [`Summary`], in the order of [`QUANTILE_STATS`].
const QUANTILE_LEVELS: [f64; 5] = [0.5, 0.05, 0.9, 0.95, 0.99];
/// The statistics of [`QUANTILE_LEVELS`].
const QUANTILE_STATS: [Stat; 5] = [Stat::Median, Stat::P05, Stat::P90, Stat::P95, Stat::P99];

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

    /// a + (h − low)(b − a), and exactly a when a == b (also for infinities).
    fn between(&self, a: f64, b: f64) -> f64 {
        if a == b {
            return a;
        }
        a + (self.h - self.low as f64) * (b - a)
    }
}

/// One value's running statistics in a sketched run.
#[derive(Clone, Debug)]
struct Column {
    reference: f64,
    sum: f64,
    min: f64,
    max: f64,
    not_a_number: bool,
    sketch: Sketch,
}

impl Column {
    fn new(reference: f64) -> Self {
        Self {
            reference,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            not_a_number: false,
            sketch: Sketch::default(),
        }
    }

    /// Folds this column's `values` (consecutive draws, in order): each x is added to the sum
    /// and folded into the minimum and maximum in draw order, and counted in the sketch
    /// ([`Sketch::code`] of x − c, collected in `codes` and then [`Sketch::count`]ed); a NaN
    /// only marks the column. The running values stay in registers for the whole slice.
    #[inline]
    fn fold(&mut self, values: &[f64], codes: &mut Vec<u32>) {
        codes.clear();
        let reference = self.reference;
        let (mut sum, mut min, mut max) = (self.sum, self.min, self.max);
        let mut not_a_number = false;
        for &x in values {
            if x.is_nan() {
                not_a_number = true;
                continue;
            }
            sum += x;
            min = min.min(x);
            max = max.max(x);
            codes.push(Sketch::code(x - reference));
        }
        (self.sum, self.min, self.max) = (sum, min, max);
        self.not_a_number |= not_a_number;
        self.sketch.count(codes);
    }

    fn summary(&self, count: usize) -> Summary {
        if self.not_a_number {
            return Summary::nan();
        }
        if self.min == self.max {
            return Summary {
                mean: self.sum / count as f64,
                ..Summary::constant(self.min)
            };
        }
        // Sketched values may sit just outside the exact extremes; never report beyond them.
        let clamp = |x: f64| x.clamp(self.min, self.max);
        let [median, p05, p90, p95, p99] =
            QUANTILE_LEVELS.map(|q| clamp(self.reference + self.sketch.quantile(q)));
        debug_assert_eq!(QUANTILE_STATS[0], Stat::Median);
        Summary {
            mean: self.sum / count as f64,
            median,
            min: self.min,
            max: self.max,
            p05,
            p90,
            p95,
            p99,
        }
    }
}

/// Counts of d = x − c in log-linear buckets on each side of 0 (see the module docs).
#[derive(Clone, Debug, Default)]
struct Sketch {
    /// The buckets of d > 0 (index 0) and of d < 0 (index 1, keyed by |d|): indexed by the
    /// sign bit, so that a column whose values fall on both sides of c at random costs no
    /// mispredicted branch.
    sides: [Buckets; 2],
    zero: u32,
    positive_infinite: u32,
    negative_infinite: u32,
}

/// The bucket of a positive finite d: its exponent bits and the top [`SUB_BUCKET_BITS`]
/// mantissa bits, monotone in d.
#[inline]
fn bucket_key(d: f64) -> u32 {
    (d.to_bits() >> (52 - SUB_BUCKET_BITS)) as u32
}

/// The value a bucket stands for: the midpoint of [lowest, next bucket's lowest), within
/// [`SKETCH_RELATIVE_ACCURACY`] of every value in it (for normal numbers).
fn bucket_value(key: u32) -> f64 {
    let low = f64::from_bits(u64::from(key) << (52 - SUB_BUCKET_BITS));
    let high = f64::from_bits(u64::from(key + 1) << (52 - SUB_BUCKET_BITS));
    low + (high - low) * 0.5
}

/// Sketch codes: a finite non-zero d is its [`bucket_key`] (below 2¹⁷) with the sign bit of d
/// in bit 31; ±0 and ±∞ have codes of their own, with bit 30 set.
const SPECIAL_CODE: u32 = 1 << 30;
const ZERO_CODE: u32 = SPECIAL_CODE;
const POSITIVE_INFINITE_CODE: u32 = SPECIAL_CODE + 1;
const NEGATIVE_INFINITE_CODE: u32 = SPECIAL_CODE + 2;
const SIGN_CODE: u32 = 1 << 31;

impl Sketch {
    /// Counts d (not NaN): finite non-zero d in the bucket of |d| on its side, 0 and ±∞ apart.
    #[cfg(test)]
    fn add(&mut self, d: f64) {
        self.count(&[Self::code(d)]);
    }

    /// The code of d (not NaN) that [`Self::count`] counts.
    #[inline]
    fn code(d: f64) -> u32 {
        let magnitude = d.abs();
        if magnitude > 0.0 && magnitude < f64::INFINITY {
            bucket_key(magnitude) | ((d.to_bits() >> 32) as u32 & SIGN_CODE)
        } else if d == f64::INFINITY {
            POSITIVE_INFINITE_CODE
        } else if d == f64::NEG_INFINITY {
            NEGATIVE_INFINITE_CODE
        } else {
            ZERO_CODE
        }
    }

    /// Counts the values of `codes` ([`Self::code`]) in order.
    #[inline]
    fn count(&mut self, codes: &[u32]) {
        // Each side's total is added once at the end (a counter in memory per value would
        // chain every update through a store and a load).
        let mut counted = [0u64; 2];
        for &code in codes {
            if code & SPECIAL_CODE == 0 {
                let side = (code >> 31) as usize;
                self.sides[side].add_uncounted(code & !SIGN_CODE);
                counted[side] += 1;
            } else {
                self.count_special(code);
            }
        }
        for (side, counted) in self.sides.iter_mut().zip(counted) {
            side.total += counted;
        }
    }

    /// [`Self::count`] for d = ±0 or ±∞.
    #[cold]
    fn count_special(&mut self, code: u32) {
        match code {
            POSITIVE_INFINITE_CODE => self.positive_infinite += 1,
            NEGATIVE_INFINITE_CODE => self.negative_infinite += 1,
            _ => self.zero += 1,
        }
    }

    /// The buckets of d > 0.
    fn positive(&self) -> &Buckets {
        &self.sides[0]
    }

    /// The buckets of d < 0, keyed by |d|.
    fn negative(&self) -> &Buckets {
        &self.sides[1]
    }

    fn total(&self) -> u64 {
        self.positive().total
            + self.negative().total
            + u64::from(self.zero)
            + u64::from(self.positive_infinite)
            + u64::from(self.negative_infinite)
    }

    /// The value of rank `rank` (0-based, ascending).
    fn value_at_rank(&self, rank: u64) -> f64 {
        let mut seen = u64::from(self.negative_infinite);
        if rank < seen {
            return f64::NEG_INFINITY;
        }
        for (key, count) in self.negative().descending() {
            seen += count;
            if rank < seen {
                return -bucket_value(key);
            }
        }
        seen += u64::from(self.zero);
        if rank < seen {
            return 0.0;
        }
        for (key, count) in self.positive().ascending() {
            seen += count;
            if rank < seen {
                return bucket_value(key);
            }
        }
        f64::INFINITY
    }

    /// Quantile `q` with numpy's interpolation between the two bracketing ranks.
    fn quantile(&self, q: f64) -> f64 {
        let total = self.total();
        if total == 0 {
            return f64::NAN;
        }
        let bracket = QuantileBracket::new(total as usize, q);
        bracket.between(
            self.value_at_rank(bracket.low as u64),
            self.value_at_rank(bracket.high as u64),
        )
    }
}

/// Dense u32 counts over bucket keys `[base, base + counts.len())`, covering every key seen
/// at or above `floor()`; keys below `floor()` are counted in the floor bucket.
#[derive(Clone, Debug, Default)]
struct Buckets {
    base: u32,
    counts: Vec<u32>,
    max_key: u32,
    total: u64,
}

impl Buckets {
    /// The lowest kept key: [`SKETCH_MAX_BUCKETS`] − 1 below the largest key seen.
    fn floor(&self) -> u32 {
        self.max_key.saturating_sub(SKETCH_MAX_BUCKETS - 1)
    }

    /// Counts `key` in its bucket; the caller adds the number of keys counted to `total`.
    #[inline]
    fn add_uncounted(&mut self, key: u32) {
        // Inside the window (the window starts at or above the floor and ends at the largest
        // key): one subtraction and a comparison.
        let offset = key.wrapping_sub(self.base) as usize;
        if offset < self.counts.len() {
            self.counts[offset] += 1;
            return;
        }
        self.add_outside(key);
    }

    /// [`Self::add_uncounted`] for a key outside the current window (or the first key).
    #[cold]
    fn add_outside(&mut self, key: u32) {
        if self.counts.is_empty() {
            self.base = key;
            self.max_key = key;
            self.counts.push(0);
        }
        if key > self.max_key {
            self.raise_max(key);
        }
        let key = key.max(self.floor());
        if key < self.base {
            let grow = (self.base - key) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.base = key;
        }
        self.counts[(key - self.base) as usize] += 1;
    }

    /// Extends the counts up to `key` and folds what falls below the new floor into it.
    fn raise_max(&mut self, key: u32) {
        self.max_key = key;
        let needed = (key - self.base) as usize + 1;
        if needed > self.counts.len() {
            self.counts.resize(needed, 0);
        }
        let floor = self.floor();
        if floor > self.base {
            let drop = (floor - self.base) as usize;
            let folded: u32 = self.counts[..drop].iter().sum();
            self.counts.drain(..drop);
            self.base = floor;
            self.counts[0] += folded;
        }
    }

    fn ascending(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(k, c)| (self.base + k as u32, u64::from(*c)))
    }

    fn descending(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, c)| **c > 0)
            .map(|(k, c)| (self.base + k as u32, u64::from(*c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summaries_of(values: &[f64], reference: f64, exact: bool) -> Summary {
        let draws = if exact {
            values.len()
        } else {
            EXACT_VALUE_BUDGET + 1
        };
        let mut stats = DrawStatistics::new(&[reference], draws);
        assert_eq!(matches!(stats.quantiles(), Quantiles::Exact), exact);
        stats.push_rows(values);
        stats.summaries()[0]
    }

    #[test]
    fn exact_quantiles_match_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4, 10], [5, 50, 90, 95, 99])
        //   = [1.2, 3.0, 7.6, 8.8, 9.76]
        let s = summaries_of(&[3.0, 1.0, 10.0, 2.0, 4.0], 0.0, true);
        assert!((s.p05 - 1.2).abs() < 1e-12);
        assert_eq!(s.median, 3.0);
        assert!((s.p90 - 7.6).abs() < 1e-12);
        assert!((s.p95 - 8.8).abs() < 1e-12);
        assert!((s.p99 - 9.76).abs() < 1e-12);
        assert_eq!((s.min, s.max, s.mean), (1.0, 10.0, 4.0));
    }

    #[test]
    fn a_nan_makes_every_statistic_nan_on_both_paths() {
        for exact in [true, false] {
            let s = summaries_of(&[1.0, f64::NAN, 2.0], 0.0, exact);
            assert!(Stat::ALL.iter().all(|&stat| s.get(stat).is_nan()), "{s:?}");
        }
    }

    #[test]
    fn one_draw_or_one_value_gives_equal_statistics() {
        for exact in [true, false] {
            let s = summaries_of(&[2.5, 2.5, 2.5], 1.0, exact);
            assert_eq!(s, Summary::constant(2.5));
        }
    }

    #[test]
    fn chunking_does_not_change_anything() {
        let values: Vec<f64> = (0..3000)
            .map(|i| 1.0 + ((i as f64 * 0.618_033_988_7).fract() - 0.4) * 1e-6)
            .collect();
        for draws in [values.len() / 2, EXACT_VALUE_BUDGET] {
            let width = 2;
            let references = [1.0, 0.0];
            let run = |chunk: usize| {
                let mut stats = DrawStatistics::new(&references, draws.max(values.len() / 2));
                for rows in values.chunks(chunk * width) {
                    stats.push_rows(rows);
                }
                stats.summaries()
            };
            let one = run(1);
            for chunk in [7, 64, 1500] {
                assert_eq!(run(chunk), one);
            }
        }
    }

    #[test]
    fn sketched_quantiles_keep_the_distance_to_the_reference() {
        // mHC-like gains: 1 + d with d spread over [1e-8, 1e-6]; a sketch of x itself would be
        // accurate to 1 % of 1, this one to 0.78 % of d.
        let values: Vec<f64> = (0..10_000)
            .map(|i| 1.0 + 1e-8 * 100f64.powf(i as f64 / 9_999.0))
            .collect();
        let exact = summaries_of(&values, 1.0, true);
        let sketched = summaries_of(&values, 1.0, false);
        assert_eq!(exact.mean, sketched.mean);
        assert_eq!((exact.min, exact.max), (sketched.min, sketched.max));
        for stat in [Stat::Median, Stat::P05, Stat::P90, Stat::P95, Stat::P99] {
            let (e, s) = (exact.get(stat) - 1.0, sketched.get(stat) - 1.0);
            assert!(
                (s - e).abs() <= SKETCH_RELATIVE_ACCURACY * e.abs() * 1.001,
                "{stat:?}: exact 1 + {e:e}, sketched 1 + {s:e}"
            );
        }
    }

    #[test]
    fn sketched_quantiles_are_accurate_on_both_sides_and_with_infinities() {
        let mut values: Vec<f64> = (0..2001)
            .map(|i| (i as f64 - 1000.0) * 0.37 + ((i * 7) % 13) as f64)
            .collect();
        values.push(f64::INFINITY);
        values.push(f64::NEG_INFINITY);
        let exact = summaries_of(&values, 0.0, true);
        let sketched = summaries_of(&values, 0.0, false);
        // +inf and −inf among the values: the mean is NaN on both paths.
        assert!(exact.mean.is_nan() && sketched.mean.is_nan());
        for stat in [Stat::Median, Stat::P05, Stat::P90, Stat::P95, Stat::P99] {
            let (e, s) = (exact.get(stat), sketched.get(stat));
            assert!(
                (s - e).abs() <= SKETCH_RELATIVE_ACCURACY * e.abs() * 1.001 + 1e-12,
                "{stat:?}: {e} vs {s}"
            );
        }
        assert_eq!(sketched.max, f64::INFINITY);
        assert_eq!(sketched.min, f64::NEG_INFINITY);
    }

    #[test]
    fn bucket_values_lie_within_the_accuracy_of_their_members() {
        for d in [1e-300, 3.7e-17, 0.999, 1.0, 1.015_625, 12345.678, 1e300] {
            let represented = bucket_value(bucket_key(d));
            assert!(
                (represented - d).abs() <= SKETCH_RELATIVE_ACCURACY * d,
                "{d:e} → {represented:e}"
            );
        }
        // Monotone: a larger value never lands in a lower bucket.
        let keys: Vec<u32> = [1e-5, 1e-5 * 1.01, 2e-5, 1.0, 1.5, 2.0]
            .map(bucket_key)
            .to_vec();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "{keys:?}");
    }

    #[test]
    fn far_below_the_largest_distance_values_share_the_floor_bucket() {
        // Values spanning 2^-200 … 2^10: only the top 64 powers of two keep their buckets.
        let values: Vec<f64> = (-200..=10).map(|e| 2f64.powi(e)).collect();
        let mut forward = Sketch::default();
        let mut backward = Sketch::default();
        values.iter().for_each(|&d| forward.add(d));
        values.iter().rev().for_each(|&d| backward.add(d));
        // The result depends on the multiset only, not on arrival order.
        let (ahead, behind) = (forward.positive(), backward.positive());
        assert_eq!(ahead.base, behind.base);
        assert_eq!(ahead.counts, behind.counts);
        assert!(ahead.counts.len() <= SKETCH_MAX_BUCKETS as usize);
        assert_eq!(ahead.total, values.len() as u64);
        // The median (2^-95) is reported at the floor, 2^-53 ≈ 1.1e-16: far below 2^10.
        let median = forward.quantile(0.5);
        assert!(median > 1e-17 && median < 1e-15, "{median:e}");
        assert_eq!(forward.quantile(1.0), bucket_value(bucket_key(1024.0)));
    }
}
