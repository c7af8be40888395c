//! The two steps of the Newton solver that touch every entry of M — the primal point with its
//! gradient, and the exact line search — with each row of M in SIMD lanes.
//!
//! Row i is held as n/L lane values of L entries each (L = 1 for [`crate::lanes::Scalar`], 4
//! for the four-lane types): lane l of chunk c holds entry (i, c·L + l). Element-wise
//! operations become lane operations; sums along a row stay sequential in j (the lanes are read
//! out in order), sums down a column are lane operations, sequential in i; and the line
//! search's "first smallest kink in row-major order" is found as the smallest per-lane minimum
//! over the chunks in row-major order (the first chunk on ties), then the smallest row-major
//! index among equal minima. Every value is therefore the same whatever L: with one lane this
//! is the plain entry-by-entry code, with four a 4×4 M takes four vector divisions for its 16
//! kinks and three vector comparisons per pass over them.

// Comparisons are written `!(x < 0.0)` on purpose: a NaN must take the failure branch.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use super::{Workspace, segment_step};
use crate::lanes::{Lanes, Simd};

/// X(u, v) = max(0, M − u1ᵀ − 1vᵀ), its support (`ws.support`, `ws.row_mask`) and the gradient
/// of f = −g, (1 − row sums, 1 − column sums) (`ws.grad_rows`, `ws.grad_cols`), at the
/// workspace's multipliers. Returns max |gradient|. The lane count must divide n.
#[inline(always)]
pub(super) fn primal_and_gradient<S: Simd>(
    simd: S,
    m: &[f64],
    n: usize,
    ws: &mut Workspace<'_>,
) -> f64 {
    let lanes = S::F64s::COUNT;
    let (zero, one) = (simd.splat(0.0), simd.splat(1.0));
    ws.grad_cols[..n].fill(1.0);
    let mut worst = 0.0f64;
    for i in 0..n {
        let u = simd.splat(ws.u[i]);
        let mut row = 1.0;
        let mut mask = 0u64;
        for chunk in 0..n / lanes {
            let start = chunk * lanes;
            // (M_ij − u_i) − v_j.
            let a = simd.load(&m[i * n + start..]) - u - simd.load(&ws.v[start..]);
            let positive = a.greater(zero);
            // max(a, 0): a where a > 0, else +0 (as f64::max gives for a ≤ 0 and for NaN).
            let x = positive.select(a, zero);
            ws.support[i * n + start..][..lanes]
                .copy_from_slice(positive.select(one, zero).to_array().as_ref());
            // Bits past 64 (n > 64) are never read: the support graph then uses `support`.
            mask |= u64::from(positive.bitmask()) << (start % 64);
            let column = simd.load(&ws.grad_cols[start..]) - x;
            ws.grad_cols[start..][..lanes].copy_from_slice(column.to_array().as_ref());
            for &x in x.to_array().as_ref() {
                row -= x;
            }
        }
        ws.row_mask[i] = mask;
        ws.grad_rows[i] = row;
        worst = worst.max(row.abs());
    }
    ws.grad_cols[..n].iter().fold(worst, |w, g| w.max(g.abs()))
}

/// The exact minimiser t ∈ (0, `cap`] of f along the step (`ws.du`, `ws.dv`), or None when the
/// step is not a descent direction. (Capped at the full step t = 1 unless the previous step
/// stalled: beyond it the piecewise quadratic model behind the direction is stale, and
/// minimising further can jump to a far worse support; see `step_cap`.)
///
/// With a_ij = M_ij − u_i − v_j and b_ij = du_i + dv_j, f(t) = ½Σ max(0, a_ij − t·b_ij)² + Σu +
/// Σv + t(Σdu + Σdv) is convex and piecewise quadratic; its derivative
/// `f'(t) = Σdu + Σdv − Σ_active b_ij (a_ij − t·b_ij)` is piecewise linear and increasing, with a
/// kink where an entry leaves (a > 0, b > 0) or enters (a ≤ 0, b < 0) the support. Visiting the
/// kinks in order finds the segment where f' crosses zero (or reaches the cap first); the next
/// kink is selected lazily, since the zero usually comes after a few of them.
#[inline(always)]
pub(super) fn line_search<S: Simd>(
    simd: S,
    m: &[f64],
    n: usize,
    ws: &mut Workspace<'_>,
    cap: f64,
) -> Option<f64> {
    let lanes = S::F64s::COUNT;
    let (zero, minus_one, infinity) =
        (simd.splat(0.0), simd.splat(-1.0), simd.splat(f64::INFINITY));
    // f'(t) = offset + slope·t on the current segment.
    let mut offset = ws.du[..n].iter().sum::<f64>() + ws.dv[..n].iter().sum::<f64>();
    let mut slope = 0.0;
    for i in 0..n {
        let (u, du) = (simd.splat(ws.u[i]), simd.splat(ws.du[i]));
        for chunk in 0..n / lanes {
            let start = chunk * lanes;
            let k = i * n + start;
            let a = simd.load(&m[k..]) - u - simd.load(&ws.v[start..]);
            let b = du + simd.load(&ws.dv[start..]);
            let (ab, bb) = (b * a, b * b);
            let active = a.greater(zero);
            let (active_ab, active_bb) = (
                active.select(ab, zero).to_array(),
                active.select(bb, zero).to_array(),
            );
            for (ab, bb) in active_ab.as_ref().iter().zip(active_bb.as_ref()) {
                offset -= ab;
                slope += bb;
            }
            let leaves = active.and(b.greater(zero));
            // Not active (a ≤ 0 or NaN) and b < 0; a zero mask has all bits clear.
            let enters = active.select(zero, zero.greater(b));
            let kink = leaves.or(enters).select(a / b, infinity);
            ws.kink_t[k..][..lanes].copy_from_slice(kink.to_array().as_ref());
            // −x as (−1)·x: an exact sign flip, zeros included.
            let kink_offset = leaves.select(ab, minus_one * ab);
            let kink_slope = leaves.select(minus_one * bb, bb);
            ws.kink_offset[k..][..lanes].copy_from_slice(kink_offset.to_array().as_ref());
            ws.kink_slope[k..][..lanes].copy_from_slice(kink_slope.to_array().as_ref());
        }
    }
    if !(offset < 0.0) {
        return None;
    }
    let mut low = 0.0f64;
    loop {
        let (t, next) = first_smallest(simd, &ws.kink_t[..n * n]);
        if let Some(step) = segment_step(offset, slope, low, t, cap) {
            return step;
        }
        offset += ws.kink_offset[next];
        slope += ws.kink_slope[next];
        low = t;
        ws.kink_t[next] = f64::INFINITY;
    }
}

/// The smallest of `values` (a multiple of the lane count, at least one chunk) with its index,
/// the first among equal values, as a sequential scan with `<` finds it (the values are never
/// NaN here: a kink is a finite a over a non-zero b, or +∞).
#[inline(always)]
fn first_smallest<S: Simd>(simd: S, values: &[f64]) -> (f64, usize) {
    let lanes = S::F64s::COUNT;
    // Per lane: the smallest value and the first chunk holding it.
    let mut smallest = simd.load(values);
    let mut chunk = simd.splat(0.0);
    for index in 1..values.len() / lanes {
        let candidate = simd.load(&values[index * lanes..]);
        let smaller = smallest.greater(candidate);
        smallest = smaller.select(candidate, smallest);
        chunk = smaller.select(simd.splat(index as f64), chunk);
    }
    let (smallest, chunk) = (smallest.to_array(), chunk.to_array());
    // Across lanes: the smallest value, then the smallest index lanes·chunk + lane.
    let (smallest, chunk) = (smallest.as_ref(), chunk.as_ref());
    let mut best = (smallest[0], chunk[0] as usize * lanes);
    for lane in 1..lanes {
        let (t, index) = (smallest[lane], chunk[lane] as usize * lanes + lane);
        if t < best.0 || (t == best.0 && index < best.1) {
            best = (t, index);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::super::{Newton, Solution, solve};
    use super::*;
    use crate::compose::{Composite, composites};
    use crate::generate::{LogitGenerator, task_rng};
    use crate::lanes::{self, Kernel};
    use crate::stack::LayerStack;

    /// What the solver found: (u, v, residual, iterations) as bits, None if it failed.
    type Answer = Option<(Vec<u64>, Vec<u64>, u64, u32)>;

    fn answer(solution: Option<Solution<'_>>) -> Answer {
        let bits = |x: &[f64]| x.iter().map(|x| x.to_bits()).collect();
        solution.map(|s| {
            (
                bits(s.u),
                bits(s.v),
                s.outcome.residual.to_bits(),
                s.outcome.iterations,
            )
        })
    }

    /// The solver on the n×n matrix `m` with whatever lanes it is run with.
    fn newton(m: &[f64], n: usize) -> Newton<'_, fn(Option<Solution<'_>>) -> Answer, 0> {
        Newton {
            m,
            n,
            finish: answer,
        }
    }

    /// HC composites (single, prefix, suffix) of 20 draws of n×n logits with entries up to 1e6.
    fn composites_of(n: usize, draws: u64) -> Vec<Vec<f64>> {
        let mut cases = Vec::new();
        let generator = LogitGenerator::default();
        for seed in 0..draws {
            let draw = generator.draw(&mut task_rng(0, seed), 64, 1, n);
            let stack = LayerStack::new(draw, "test").unwrap();
            let layers = stack.token_slices(0);
            for composite in Composite::ALL {
                for p in composites(composite, &layers, n) {
                    let x = p.to_f64();
                    if x.iter().all(|e| e.abs() <= 1e6) {
                        cases.push(x);
                    }
                }
            }
        }
        cases
    }

    /// 4×4 HC composites of 20 draws, a matrix with exact ties among kinks, and an all-negative
    /// one.
    fn cases_4x4() -> Vec<Vec<f64>> {
        let mut cases = composites_of(4, 20);
        cases.push(vec![
            2.0, -1.0, 2.0, -1.0, -1.0, 2.0, -1.0, 2.0, 2.0, -1.0, 2.0, -1.0, -1.0, 2.0, -1.0, 2.0,
        ]);
        cases.push(vec![-3.0; 16]);
        cases
    }

    #[test]
    fn every_lane_type_gives_the_scalar_multipliers_bit_for_bit() {
        let cases = cases_4x4();
        assert!(cases.len() > 3000, "{} cases", cases.len());
        let mut newton_steps = 0;
        for m in &cases {
            let paths = lanes::on_every_path(|| newton(m, 4));
            assert!(paths.len() >= 3 || !cfg!(target_arch = "x86_64"));
            let (_, scalar) = &paths[0];
            newton_steps += scalar.as_ref().map_or(0, |s| s.3);
            for (path, answer) in &paths[1..] {
                assert_eq!(answer, scalar, "{path} differs for {m:?}");
            }
            // The dispatched solver (what `birkhoff_projection` runs) answers the same.
            let dispatched = solve(m, 4, answer);
            assert_eq!(&dispatched, scalar, "dispatched differs for {m:?}");
        }
        // Most cases need several Newton steps (mHC-like ones would need none).
        assert!(
            newton_steps > 2 * cases.len() as u32,
            "{newton_steps} steps"
        );
    }

    #[test]
    fn eight_streams_in_two_chunks_per_row_give_the_scalar_bits() {
        let cases = composites_of(8, 3);
        assert!(cases.len() > 300, "{} cases", cases.len());
        for m in &cases {
            let paths = lanes::on_every_path(|| newton(m, 8));
            for (path, answer) in &paths[1..] {
                assert_eq!(answer, &paths[0].1, "{path} differs for {m:?}");
            }
        }
    }

    /// [`first_smallest`] on `values` with the given lanes.
    struct FirstSmallest<'a>(&'a [f64]);

    impl Kernel for FirstSmallest<'_> {
        type Output = (u64, usize);
        #[inline(always)]
        fn run<S: Simd>(self, simd: S) -> (u64, usize) {
            let (t, index) = first_smallest(simd, self.0);
            (t.to_bits(), index)
        }
    }

    #[test]
    fn first_smallest_matches_a_sequential_scan() {
        let infinity = f64::INFINITY;
        let grids: [[f64; 16]; 5] = [
            [infinity; 16],
            [
                3.0, infinity, 1.0, 2.0, 1.0, 0.5, infinity, 0.5, infinity, 0.5, -0.0, 0.0, 7.0,
                0.0, 0.0, infinity,
            ],
            [2.0; 16],
            [
                infinity, infinity, infinity, infinity, infinity, infinity, 5.0, infinity,
                infinity, 5.0, infinity, infinity, 5.0, infinity, infinity, infinity,
            ],
            [
                9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0,
            ],
        ];
        for grid in grids {
            let mut expected = (grid[0], 0);
            for (k, &t) in grid.iter().enumerate().skip(1) {
                if t < expected.0 {
                    expected = (t, k);
                }
            }
            for (path, found) in lanes::on_every_path(|| FirstSmallest(&grid)) {
                assert_eq!(
                    found,
                    (expected.0.to_bits(), expected.1),
                    "{path}: {grid:?}"
                );
            }
        }
    }
}
