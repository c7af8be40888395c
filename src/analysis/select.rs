//! Order statistics (the k-th smallest values) of f64 data in `f64::total_cmp` order, for the
//! exact quantiles of [`super::stats`].
//!
//! Values are mapped to integer keys whose signed order is `total_cmp`'s (flip the magnitude
//! bits of negative numbers), then selected by quickselect: partition around a pivot (median of
//! nine), keep the parts that hold requested ranks, sort parts of at most 24. On x86-64 with
//! AVX2 (detected once by `crate::cpu`, whose `MHC_ANALYZE_PORTABLE` forces the portable path)
//! a partition moves four keys per step: one comparison, then a
//! table lookup and a lane permutation pack the smaller keys to the front of a second buffer
//! and the others to its back. Elsewhere the standard library's `select_nth_unstable_by`
//! selects on the values themselves. Both give the exact order statistics, so the answers do
//! not depend on the path; with AVX2 the quantiles of a 64-layer `gain` run at S = 1000
//! (6920 columns of 1000 values) take 25 ms instead of 42 ms on one core.

use std::cell::RefCell;

#[cfg(target_arch = "x86_64")]
use crate::cpu::Avx2;

/// Parts this small are sorted by insertion.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const SMALL: usize = 24;

/// Writes into `out[i]` the `ranks[i]`-th smallest of `values` (0-based, `ranks` ascending and
/// distinct, each below `values.len()`), in `f64::total_cmp` order. May reorder `values`.
pub(crate) fn order_statistics(values: &mut [f64], ranks: &[usize], out: &mut [f64]) {
    assert_eq!(
        ranks.len(),
        out.len(),
        "order_statistics: one output per rank"
    );
    debug_assert!(ranks.windows(2).all(|pair| pair[0] < pair[1]));
    debug_assert!(ranks.last().is_none_or(|&rank| rank < values.len()));
    #[cfg(target_arch = "x86_64")]
    if let Some(avx2) = Avx2::detect() {
        return with_keys(avx2, values, ranks, out);
    }
    by_standard_library(values, ranks, out);
}

/// The portable path: `select_nth_unstable_by(total_cmp)` on the values, the median requested
/// rank first, then each side for the ranks that fall in it.
fn by_standard_library(values: &mut [f64], ranks: &[usize], out: &mut [f64]) {
    select_in_place(values, ranks, 0);
    for (slot, &rank) in out.iter_mut().zip(ranks) {
        *slot = values[rank];
    }
}

/// Reorders `values` (which start at rank `offset` of the whole) so that `values[r − offset]`
/// holds the r-th smallest value for every r in `ranks`.
fn select_in_place(values: &mut [f64], ranks: &[usize], offset: usize) {
    if ranks.is_empty() {
        return;
    }
    let middle = ranks.len() / 2;
    let position = ranks[middle] - offset;
    values.select_nth_unstable_by(position, f64::total_cmp);
    let (below, from_position) = values.split_at_mut(position);
    select_in_place(below, &ranks[..middle], offset);
    select_in_place(
        &mut from_position[1..],
        &ranks[middle + 1..],
        ranks[middle] + 1,
    );
}

/// The integer whose signed order is `f64::total_cmp`'s: negative numbers get their magnitude
/// bits flipped. Its own inverse.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn total_order_key(x: f64) -> i64 {
    let bits = x.to_bits() as i64;
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn from_total_order_key(key: i64) -> f64 {
    f64::from_bits((key ^ ((((key >> 63) as u64) >> 1) as i64)) as u64)
}

#[cfg(target_arch = "x86_64")]
thread_local! {
    /// Keys and the partition buffer, reused by every call on the thread.
    static KEY_BUFFERS: RefCell<(Vec<i64>, Vec<i64>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// The AVX2 path (see the module docs); `values` is left as it is.
#[cfg(target_arch = "x86_64")]
fn with_keys(_avx2: Avx2, values: &[f64], ranks: &[usize], out: &mut [f64]) {
    KEY_BUFFERS.with_borrow_mut(|(keys, spare)| {
        keys.clear();
        keys.extend(values.iter().map(|&x| total_order_key(x)));
        spare.clear();
        spare.resize(values.len(), 0);
        let mut found = vec![0; ranks.len()];
        // Introselect's bound: after 2·log2(n) partitions a part is sorted instead.
        let depth = 2 * (usize::BITS - values.len().leading_zeros());
        // SAFETY: the `Avx2` token proves that the CPU has AVX2.
        unsafe { select_keys(keys, spare, ranks, 0, &mut found, depth) };
        for (slot, &key) in out.iter_mut().zip(found.iter()) {
            *slot = from_total_order_key(key);
        }
    });
}

/// Writes into `found[i]` the key of rank `ranks[i]` of `keys` (whose first element has rank
/// `offset` in the whole), partitioning into `spare` (same length) and recursing into the parts
/// that hold requested ranks, the buffers' roles swapped.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn select_keys(
    keys: &mut [i64],
    spare: &mut [i64],
    ranks: &[usize],
    offset: usize,
    found: &mut [i64],
    depth: u32,
) {
    if ranks.is_empty() {
        return;
    }
    let n = keys.len();
    if n <= SMALL || depth == 0 {
        if n <= SMALL {
            insertion_sort(keys);
        } else {
            keys.sort_unstable();
        }
        for (slot, &rank) in found.iter_mut().zip(ranks) {
            *slot = keys[rank - offset];
        }
        return;
    }
    let median3 = |a: i64, b: i64, c: i64| a.max(b).min(a.min(b).max(c));
    let s = n / 8;
    let pivot = median3(
        median3(keys[0], keys[s], keys[2 * s]),
        median3(keys[3 * s], keys[4 * s], keys[5 * s]),
        median3(keys[6 * s], keys[7 * s], keys[n - 1]),
    );
    // Keys below the pivot go first. When there are none (the pivot is the smallest key),
    // the keys equal to it go first instead, and all of that part's ranks are the pivot.
    // SAFETY (both calls): AVX2 is this function's precondition.
    let mut below = unsafe { partition(keys, spare, pivot, false) };
    let all_pivot = below == 0;
    if all_pivot {
        below = unsafe { partition(keys, spare, pivot, true) };
    }
    let split = ranks.partition_point(|&rank| rank - offset < below);
    let (spare_low, spare_high) = spare.split_at_mut(below);
    let (keys_low, keys_high) = keys.split_at_mut(below);
    let (found_low, found_high) = found.split_at_mut(split);
    if all_pivot {
        found_low.fill(pivot);
    } else {
        // SAFETY: as above.
        unsafe {
            select_keys(
                spare_low,
                keys_low,
                &ranks[..split],
                offset,
                found_low,
                depth - 1,
            )
        };
    }
    // SAFETY: as above.
    unsafe {
        select_keys(
            spare_high,
            keys_high,
            &ranks[split..],
            offset + below,
            found_high,
            depth - 1,
        )
    };
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn insertion_sort(keys: &mut [i64]) {
    for i in 1..keys.len() {
        let key = keys[i];
        let mut j = i;
        while j > 0 && keys[j - 1] > key {
            keys[j] = keys[j - 1];
            j -= 1;
        }
        keys[j] = key;
    }
}

/// Lane permutations (pairs of 32-bit indices per 64-bit lane) for each 4-bit mask: `FRONT`
/// packs the lanes whose bit is set into the low lanes, in order; `BACK` packs the others into
/// the high lanes, in order.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const PERMUTATIONS: ([[u32; 8]; 16], [[u32; 8]; 16]) = {
    let mut front = [[0u32; 8]; 16];
    let mut back = [[0u32; 8]; 16];
    let mut mask = 0;
    while mask < 16 {
        let set = (mask as u32).count_ones() as usize;
        let (mut to_front, mut to_back) = (0, set);
        let mut lane = 0;
        while lane < 4 {
            let (low, high) = (2 * lane as u32, 2 * lane as u32 + 1);
            if (mask >> lane) & 1 == 1 {
                front[mask][2 * to_front] = low;
                front[mask][2 * to_front + 1] = high;
                to_front += 1;
            } else {
                back[mask][2 * to_back] = low;
                back[mask][2 * to_back + 1] = high;
                to_back += 1;
            }
            lane += 1;
        }
        mask += 1;
    }
    (front, back)
};

/// Copies `source` into `target` (same length): the keys below `pivot` (at most `pivot` when
/// `or_equal`) to the front, the others to the back, and returns how many went to the front.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn partition(source: &[i64], target: &mut [i64], pivot: i64, or_equal: bool) -> usize {
    use std::arch::x86_64::*;
    let n = source.len();
    assert_eq!(target.len(), n, "partition: buffers of one length");
    let (mut front, mut back) = (0, n);
    let mut read = 0;
    let pivots = _mm256_set1_epi64x(pivot);
    let (to_front_table, to_back_table) = &PERMUTATIONS;
    // Four keys per step while the unwritten gap (back − front = keys left) holds two full
    // vectors, so the garbage lanes of one store never land on the other store's keys.
    while back - front >= 8 {
        // SAFETY: read + 4 ≤ n (keys left ≥ 8); front + 4 ≤ back ≤ n and back − 4 ≥ front,
        // so both stores stay inside `target`; unaligned loads and stores.
        unsafe {
            let x = _mm256_loadu_si256(source.as_ptr().add(read).cast());
            let greater = _mm256_cmpgt_epi64(x, pivots);
            let goes_front = if or_equal {
                _mm256_xor_si256(greater, _mm256_set1_epi64x(-1))
            } else {
                _mm256_cmpgt_epi64(pivots, x)
            };
            let mask = _mm256_movemask_pd(_mm256_castsi256_pd(goes_front)) as usize;
            let to_front = _mm256_loadu_si256(to_front_table[mask].as_ptr().cast());
            let to_back = _mm256_loadu_si256(to_back_table[mask].as_ptr().cast());
            let target = target.as_mut_ptr();
            _mm256_storeu_si256(
                target.add(front).cast(),
                _mm256_permutevar8x32_epi32(x, to_front),
            );
            _mm256_storeu_si256(
                target.add(back - 4).cast(),
                _mm256_permutevar8x32_epi32(x, to_back),
            );
            let count = mask.count_ones() as usize;
            front += count;
            back -= 4 - count;
        }
        read += 4;
    }
    for &key in &source[read..] {
        if key < pivot || (or_equal && key == pivot) {
            target[front] = key;
            front += 1;
        } else {
            back -= 1;
            target[back] = key;
        }
    }
    front
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs that trouble selection: ties, ±0, ±inf, NaNs of both signs, sorted and reversed
    /// runs, organ pipes, a constant, and sizes around the small-part and vector boundaries.
    fn awkward_inputs() -> Vec<Vec<f64>> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut inputs = Vec::new();
        for n in [1, 2, 3, 7, 8, 9, 23, 24, 25, 31, 33, 100, 129, 1000, 1003] {
            inputs.push(
                (0..n)
                    .map(|_| (next() % 1000) as f64 / 7.0 - 50.0)
                    .collect(),
            );
            inputs.push((0..n).map(|_| (next() % 5) as f64).collect());
            inputs.push((0..n).map(|i| i as f64).collect());
            inputs.push((0..n).map(|i| -(i as f64)).collect());
            inputs.push((0..n).map(|i| (i.min(n - i)) as f64).collect());
            inputs.push(vec![2.5; n]);
            inputs.push(
                (0..n)
                    .map(|_| match next() % 9 {
                        0 => f64::NAN,
                        1 => -f64::NAN,
                        2 => 0.0,
                        3 => -0.0,
                        4 => f64::INFINITY,
                        5 => f64::NEG_INFINITY,
                        6 => f64::MIN_POSITIVE / 4.0,
                        _ => f64::from_bits(next()),
                    })
                    .collect(),
            );
        }
        inputs
    }

    fn check(select: impl Fn(&mut [f64], &[usize], &mut [f64])) {
        for input in awkward_inputs() {
            let mut sorted = input.clone();
            sorted.sort_by(f64::total_cmp);
            let n = input.len();
            let mut ranks = vec![0, n / 20, n / 20 + 1, n / 2, n / 2 + 1, n - 1];
            ranks.retain(|&r| r < n);
            ranks.sort_unstable();
            ranks.dedup();
            let mut values = input.clone();
            let mut out = vec![0.0; ranks.len()];
            select(&mut values, &ranks, &mut out);
            for (got, &rank) in out.iter().zip(&ranks) {
                assert_eq!(
                    got.to_bits(),
                    sorted[rank].to_bits(),
                    "rank {rank} of {input:?}"
                );
            }
        }
    }

    #[test]
    fn the_portable_path_finds_the_sorted_ranks() {
        check(by_standard_library);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_path_finds_the_sorted_ranks() {
        let avx2 = Avx2::detect_ignoring_override();
        assert_eq!(avx2.is_some(), std::is_x86_feature_detected!("avx2"));
        if let Some(avx2) = avx2 {
            check(|values, ranks, out| with_keys(avx2, values, ranks, out));
        }
    }

    #[test]
    fn keys_order_like_total_cmp_and_invert() {
        let xs = [
            f64::NEG_INFINITY,
            -1.0,
            -0.0,
            0.0,
            1e-310,
            1.0,
            f64::INFINITY,
            f64::NAN,
        ];
        for a in xs {
            assert_eq!(
                from_total_order_key(total_order_key(a)).to_bits(),
                a.to_bits()
            );
            for b in xs {
                assert_eq!(total_order_key(a).cmp(&total_order_key(b)), a.total_cmp(&b));
            }
        }
    }
}
