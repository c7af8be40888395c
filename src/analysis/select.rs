//! Order statistics (the k-th smallest values) of f64 data in `f64::total_cmp` order, for the
//! exact quantiles of [`super::stats`].
//!
//! The standard library's `select_nth_unstable_by(total_cmp)`, the median requested rank first,
//! then each side for the ranks that fall in it. The order statistics are exact, so the
//! quantiles are bit-identical to sorting first. (An AVX2 quickselect on integer keys was
//! measured against this and removed: it bought 4 % of the CPU of `gain --layers 60 --seeds 1000
//! --threads 1`, nothing measurable in wall time, and nothing at all where the statistics are
//! sketched; see `bench/README.md`.)

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs that trouble selection: ties, ±0, ±inf, NaNs of both signs, sorted and reversed
    /// runs, organ pipes, a constant, and sizes from 1 to 1003.
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
    fn order_statistics_are_the_sorted_ranks() {
        check(order_statistics);
    }
}
