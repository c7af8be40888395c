//! The 4×4 Newton solver with each row of M in four SIMD lanes.
//!
//! The iteration is [`fixed::solve_with`]; this module supplies the two steps that touch all
//! 16 entries (the primal point and the exact line search) as a [`Kernel`] whose lane j of
//! row vector i holds entry (i, j). Every value is computed by the same IEEE operations in the
//! same order as [`fixed::Scalar`]: element-wise operations become lane operations, sums along
//! a row stay sequential in j, and the line search's "first smallest kink in row-major order"
//! is found as the smallest per-column minimum (first row on ties), then the smallest index
//! among equal minima. The solver therefore returns bit-identical multipliers (a test checks
//! this on HC composites). The 16 kink divisions become four vector divisions and each pass
//! over the kinks three vector comparisons: an HC composite takes 630 ns instead of 733 ns
//! (the rest is the latency chain of one Newton step, which lanes within a matrix cannot
//! shorten).
//!
//! AVX is used when the CPU has it (checked at run time), `wide::f64x4` otherwise (see
//! `crate::lanes`).

// Comparisons are written `!(x < 0.0)` on purpose: a NaN must take the failure branch.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use super::fixed::{self, Kernel, Solution, State};
#[cfg(target_arch = "x86_64")]
use crate::lanes::Avx;
use crate::lanes::Lanes;

/// The multipliers of the projection of the 4×4 matrix `m` onto the Birkhoff polytope:
/// [`fixed::solve`] with the entry-wise steps done four lanes at a time.
pub(super) fn solve(m: &[[f64; 4]; 4]) -> Option<Solution<4>> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX (checked just above).
        return unsafe { solve_avx(m) };
    }
    solve_lanes::<wide::f64x4>(m)
}

/// [`solve_lanes`] with AVX registers.
///
/// # Safety
/// The CPU must support AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn solve_avx(m: &[[f64; 4]; 4]) -> Option<Solution<4>> {
    solve_lanes::<Avx>(m)
}

#[inline(always)]
fn solve_lanes<V: Lanes>(m: &[[f64; 4]; 4]) -> Option<Solution<4>> {
    fixed::solve_with(&Rows {
        matrix: m,
        rows: m.map(V::from_array),
    })
}

/// M, and M as four row vectors.
struct Rows<'a, V> {
    matrix: &'a [[f64; 4]; 4],
    rows: [V; 4],
}

impl<V: Lanes> Rows<'_, V> {
    /// Row i of A = M − u 1ᵀ − 1 vᵀ, as (M_ij − u_i) − v_j.
    #[inline(always)]
    fn shifted_row(&self, i: usize, u: &[f64; 4], v: V) -> V {
        self.rows[i] - V::splat(u[i]) - v
    }
}

impl<V: Lanes> Kernel<4> for Rows<'_, V> {
    fn matrix(&self) -> &[[f64; 4]; 4] {
        self.matrix
    }

    #[inline(always)]
    fn primal(&self, u: &[f64; 4], v: &[f64; 4]) -> (State<4>, f64) {
        let (zero, one) = (V::splat(0.0), V::splat(1.0));
        let v = V::from_array(*v);
        let mut state = State {
            support: [[0.0; 4]; 4],
            masks: [0; 4],
            grad_rows: [0.0; 4],
            grad_cols: [1.0; 4],
        };
        let mut grad_cols = one;
        let mut worst = 0.0f64;
        for i in 0..4 {
            let a = self.shifted_row(i, u, v);
            let positive = a.greater(zero);
            // max(a, 0): a where a > 0, else +0 (as f64::max gives for a ≤ 0 and for NaN).
            let x = positive.select(a, zero);
            state.support[i] = positive.select(one, zero).to_array();
            state.masks[i] = u64::from(positive.bitmask());
            grad_cols = grad_cols - x;
            let x = x.to_array();
            let row = 1.0 - x[0] - x[1] - x[2] - x[3];
            state.grad_rows[i] = row;
            worst = worst.max(row.abs());
        }
        state.grad_cols = grad_cols.to_array();
        let worst = state.grad_cols.iter().fold(worst, |w, g| w.max(g.abs()));
        (state, worst)
    }

    #[inline(always)]
    fn line_search(
        &self,
        u: &[f64; 4],
        v: &[f64; 4],
        du: &[f64; 4],
        dv: &[f64; 4],
        cap: f64,
    ) -> Option<f64> {
        let (zero, minus_one, infinity) = (V::splat(0.0), V::splat(-1.0), V::splat(f64::INFINITY));
        let (v, dv_lanes) = (V::from_array(*v), V::from_array(*dv));
        let mut offset = du.iter().sum::<f64>() + dv.iter().sum::<f64>();
        let mut slope = 0.0;
        let mut kink_t = [infinity; 4];
        let mut kink_offset = [[0.0; 4]; 4];
        let mut kink_slope = [[0.0; 4]; 4];
        for i in 0..4 {
            let a = self.shifted_row(i, u, v);
            let b = V::splat(du[i]) + dv_lanes;
            let (ab, bb) = (b * a, b * b);
            let active = a.greater(zero);
            let (active_ab, active_bb) = (
                active.select(ab, zero).to_array(),
                active.select(bb, zero).to_array(),
            );
            for j in 0..4 {
                offset -= active_ab[j];
                slope += active_bb[j];
            }
            let leaves = active.and(b.greater(zero));
            // Not active (a ≤ 0 or NaN) and b < 0; a zero mask has all bits clear.
            let enters = active.select(zero, zero.greater(b));
            kink_t[i] = leaves.or(enters).select(a / b, infinity);
            // −x as (−1)·x: an exact sign flip, zeros included.
            kink_offset[i] = leaves.select(ab, minus_one * ab).to_array();
            kink_slope[i] = leaves.select(minus_one * bb, bb).to_array();
        }
        if !(offset < 0.0) {
            return None;
        }
        let mut low = 0.0f64;
        loop {
            let (t, row, column) = first_smallest(&kink_t);
            if let Some(step) = super::segment_step(offset, slope, low, t, cap) {
                return step;
            }
            offset += kink_offset[row][column];
            slope += kink_slope[row][column];
            low = t;
            kink_t[row].lanes_mut()[column] = f64::INFINITY;
        }
    }
}

/// The smallest entry of the 4×4 array held as row vectors, with its (row, column); the first
/// in row-major order among equal entries, as a sequential scan with `<` finds it (entries
/// are never NaN here: a kink is a finite a over a non-zero b, or +∞).
#[inline(always)]
fn first_smallest<V: Lanes>(rows: &[V; 4]) -> (f64, usize, usize) {
    // Per column: the smallest entry and the first row holding it.
    let mut smallest = rows[0];
    let mut row = V::splat(0.0);
    for (i, &candidate) in rows.iter().enumerate().skip(1) {
        let smaller = smallest.greater(candidate);
        smallest = smaller.select(candidate, smallest);
        row = smaller.select(V::splat(i as f64), row);
    }
    let (smallest, row) = (smallest.to_array(), row.to_array());
    // Across columns: the smallest value, then the smallest row-major index 4·row + column.
    let mut best = (smallest[0], row[0] as usize, 0);
    for column in 1..4 {
        let (t, i) = (smallest[column], row[column] as usize);
        if t < best.0 || (t == best.0 && 4 * i + column < 4 * best.1 + best.2) {
            best = (t, i, column);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{Composite, composites};
    use crate::generate::{LogitGenerator, task_rng};
    use crate::stack::LayerStack;

    fn assert_same(m: &[[f64; 4]; 4], lanes: Option<Solution<4>>, what: &str) {
        let scalar = fixed::solve(m);
        match (scalar, lanes) {
            (None, None) => {}
            (Some(s), Some(l)) => {
                let bits = |x: &[f64; 4]| x.map(f64::to_bits);
                assert_eq!(bits(&s.u), bits(&l.u), "{what}: u differs for {m:?}");
                assert_eq!(bits(&s.v), bits(&l.v), "{what}: v differs for {m:?}");
                assert_eq!(s.residual.to_bits(), l.residual.to_bits(), "{what}");
                assert_eq!(s.iterations, l.iterations, "{what}");
            }
            (s, l) => panic!(
                "{what}: scalar answered {}, lanes {} for {m:?}",
                s.is_some(),
                l.is_some()
            ),
        }
    }

    /// HC composites (single, prefix, suffix) of 20 draws with entries up to 1e6, a matrix
    /// with exact ties among kinks, and an all-negative one.
    fn cases() -> Vec<[[f64; 4]; 4]> {
        let mut cases = Vec::new();
        let generator = LogitGenerator::default();
        for seed in 0..20 {
            let draw = generator.draw(&mut task_rng(0, seed), 64, 1, 4);
            let stack = LayerStack::new(draw, "test").unwrap();
            let layers = stack.token_slices(0);
            for composite in Composite::ALL {
                for p in composites(composite, &layers, 4) {
                    let x = p.to_f64();
                    if x.iter().all(|e| e.abs() <= 1e6) {
                        cases.push(std::array::from_fn(|i| {
                            std::array::from_fn(|j| x[4 * i + j])
                        }));
                    }
                }
            }
        }
        cases.push([
            [2.0, -1.0, 2.0, -1.0],
            [-1.0, 2.0, -1.0, 2.0],
            [2.0, -1.0, 2.0, -1.0],
            [-1.0, 2.0, -1.0, 2.0],
        ]);
        cases.push([[-3.0; 4]; 4]);
        cases
    }

    #[test]
    fn lanes_give_the_scalar_multipliers_bit_for_bit() {
        let cases = cases();
        assert!(cases.len() > 3000, "{} cases", cases.len());
        let newton_steps: u32 = cases
            .iter()
            .map(|m| fixed::solve(m).map_or(0, |s| s.iterations))
            .sum();
        // Most cases need several Newton steps (mHC-like ones would need none).
        assert!(
            newton_steps > 2 * cases.len() as u32,
            "{newton_steps} steps"
        );
        for m in &cases {
            assert_same(m, solve(m), "dispatched");
            assert_same(m, solve_lanes::<wide::f64x4>(m), "wide");
        }
    }

    #[test]
    fn first_smallest_matches_a_sequential_scan() {
        let infinity = f64::INFINITY;
        let grids = [
            [[infinity; 4]; 4],
            [
                [3.0, infinity, 1.0, 2.0],
                [1.0, 0.5, infinity, 0.5],
                [infinity, 0.5, -0.0, 0.0],
                [7.0, 0.0, 0.0, infinity],
            ],
            [[2.0; 4]; 4],
            [
                [infinity, infinity, infinity, infinity],
                [infinity, infinity, 5.0, infinity],
                [infinity, 5.0, infinity, infinity],
                [5.0, infinity, infinity, infinity],
            ],
        ];
        for grid in grids {
            let flat = grid.as_flattened();
            let mut expected = (flat[0], 0);
            for (k, &t) in flat.iter().enumerate().skip(1) {
                if t < expected.0 {
                    expected = (t, k);
                }
            }
            let (t, row, column) = first_smallest(&grid.map(wide::f64x4::from_array));
            assert_eq!(
                (t.to_bits(), 4 * row + column),
                (expected.0.to_bits(), expected.1)
            );
        }
    }
}
