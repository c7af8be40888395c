//! Exact Euclidean distance to the Birkhoff polytope B_n (the doubly stochastic matrices):
//!
//! `dist_B(M) = min ‖X − M‖_F  subject to  X ≥ 0, X·1 = 1, Xᵀ·1 = 1.`
//!
//! The minimiser X* is unique and has the form `X*_ij = max(0, M_ij − u_i − v_j)` for multipliers
//! u (rows) and v (columns) that maximise the concave dual
//! `g(u, v) = Σ_ij ½M_ij² − ½ max(0, M_ij − u_i − v_j)² − Σ_i u_i − Σ_j v_j`,
//! whose gradient is the marginal error of X(u, v): `∂g/∂u_i = Σ_j X_ij − 1`,
//! `∂g/∂v_j = Σ_i X_ij − 1`. X(u, v) is non-negative and complementary by construction, so the
//! KKT conditions reduce to exact marginals.
//!
//! [`birkhoff_projection`] maximises g by a semismooth Newton method:
//!
//! - **Start** at the multipliers of the affine projection P_A(M) (docs/theory.md §2.4). When P_A(M) ≥ 0
//!   (every mHC matrix in practice) that is already the optimum and no Newton step is taken.
//!   Should Newton not converge from there in [`MAX_NEWTON_ITERATIONS`] (matrices far outside
//!   B_n, such as HC composites with entries of 1e10, whose X* lies on a small face), it starts
//!   again where X is the permutation matrix of a maximum-weight assignment of M, with the
//!   assignment's dual potentials as multipliers; from there it takes a few steps.
//! - **Direction**: the generalised Hessian is the signless Laplacian of the bipartite graph of
//!   the positive entries. Each connected component that has as many rows as columns is grounded
//!   at one column (its null direction is a pure gauge); a Levenberg–Marquardt shift
//!   `μ = min(1, residual)·1e-2` keeps the system definite and turns the gradient along the null
//!   direction of an unbalanced component (the support must change there) into a long step. The
//!   row unknowns are eliminated (their block is diagonal), leaving an n×n Schur complement in
//!   the column steps, solved by LDLᵀ.
//! - **Exact line search**: along the direction the dual is piecewise quadratic with one kink per
//!   entry that changes sign, so its directional derivative is piecewise linear and increasing;
//!   walking the sorted kinks finds its zero, the exact minimiser along the line (no backtracking).
//!   The step is capped at the Newton step t = 1 unless the previous step stalled (see
//!   `step_cap`).
//!
//! g is piecewise quadratic, so once the support of X* is found a full step lands on the
//! optimum: 4×4 HC-like inputs take a few iterations. The stopping rule asks for marginal errors
//! at rounding level, `64·n·ε·max(1, max|M|)`; up to two more steps polish towards
//! `4·n·ε·max(1, max|M|)` and the best iterate is returned. Should Newton fail to get there
//! from both starts, [`dykstra_projection`] (alternating projections with Dykstra's
//! correction, docs/theory.md §2.4) takes over; the result says which method answered.
//!
//! The solver is written once. The two steps that touch every entry (the primal point with its
//! gradient, and the line search; module `rows`) hold each row of M in lanes of `crate::lanes`:
//! four at a time (AVX when the CPU has it, else `wide::f64x4`) when n is a multiple of four,
//! one scalar lane otherwise, with the same operations in the same order either way, so the
//! answers do not depend on the lanes or the CPU. For n ≤ 8 the solver works in a stack buffer
//! (no heap allocation; [`birkhoff_distance`] allocates nothing at all); larger n use one heap
//! buffer.

// Comparisons are written `!(x > 0.0)` on purpose: a NaN must take the failure branch.
// Index loops mirror the textbook LDLᵀ and Schur-complement formulas they implement.
#![allow(clippy::neg_cmp_op_on_partial_ord, clippy::needless_range_loop)]

mod rows;

use crate::lanes::{self, Kernel, Lanes, Scalar, Simd};
use crate::metrics::structure::with_best_permutation;

/// Newton iterations before falling back to Dykstra.
pub(crate) const MAX_NEWTON_ITERATIONS: u32 = 100;

/// Which algorithm produced a [`BirkhoffProjection`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectionMethod {
    /// Semismooth Newton on the dual; exact up to rounding.
    Newton,
    /// Dykstra's alternating projections, run to the tolerance it reports.
    Dykstra,
}

/// The Euclidean projection of M onto B_n and its certificate.
#[derive(Clone, Debug)]
pub struct BirkhoffProjection {
    /// dist_B(M) = ‖X* − M‖_F.
    pub distance: f64,
    /// X*, row-major n×n.
    pub projection: Vec<f64>,
    /// Row multipliers u (X*_ij = max(0, M_ij − u_i − v_j)); empty for Dykstra.
    pub row_multipliers: Vec<f64>,
    /// Column multipliers v; empty for Dykstra.
    pub column_multipliers: Vec<f64>,
    /// Largest |row or column sum − 1| of X*.
    pub marginal_error: f64,
    /// Newton iterations from the start that answered (or Dykstra iterations).
    pub iterations: u32,
    /// Which method answered.
    pub method: ProjectionMethod,
}

/// dist_B(M) for the finite row-major n×n matrix `m` (see the module docs). Allocation-free for
/// n ≤ 8 (unless Newton fails and Dykstra takes over).
pub fn birkhoff_distance(m: &[f64], n: usize) -> f64 {
    assert_eq!(m.len(), n * n, "birkhoff_distance: expected an n×n matrix");
    solve(m, n, |solution| match solution {
        Some(solution) => frobenius_distance(m, solution.x),
        None => dykstra_fallback(m, n).distance,
    })
}

/// The projection of `m` onto B_n with its multipliers (see the module docs).
pub fn birkhoff_projection(m: &[f64], n: usize) -> BirkhoffProjection {
    assert_eq!(
        m.len(),
        n * n,
        "birkhoff_projection: expected an n×n matrix"
    );
    solve(m, n, |solution| match solution {
        Some(solution) => BirkhoffProjection {
            distance: frobenius_distance(m, solution.x),
            projection: solution.x.to_vec(),
            row_multipliers: solution.u.to_vec(),
            column_multipliers: solution.v.to_vec(),
            marginal_error: solution.outcome.residual,
            iterations: solution.outcome.iterations,
            method: ProjectionMethod::Newton,
        },
        None => dykstra_fallback(m, n),
    })
}

/// The Newton solver on `m`, then `finish` on its solution (None if it failed). The rows of M
/// go in the widest lanes that fit them: four (AVX or portable) when n is a multiple of four,
/// else one. Small n are compile-time constants, so that their loops unroll.
fn solve<R>(m: &[f64], n: usize, finish: impl FnOnce(Option<Solution<'_>>) -> R) -> R {
    match n {
        2 => Scalar.vectorize(Newton::<_, 2> { m, n, finish }),
        3 => Scalar.vectorize(Newton::<_, 3> { m, n, finish }),
        4 => lanes::dispatch(Newton::<_, 4> { m, n, finish }),
        8 => lanes::dispatch(Newton::<_, 8> { m, n, finish }),
        _ if n.is_multiple_of(4) => lanes::dispatch(Newton::<_, 0> { m, n, finish }),
        _ => Scalar.vectorize(Newton::<_, 0> { m, n, finish }),
    }
}

/// [`newton`] on the n×n matrix `m`, then `finish` on its solution (`finish` computes no lane
/// values, so a closure will do), as a [`Kernel`]. N = n when N > 0 (a constant), any n for
/// N = 0. The lanes it runs with must divide n.
struct Newton<'a, F, const N: usize> {
    m: &'a [f64],
    n: usize,
    finish: F,
}

impl<R, F, const N: usize> Kernel for Newton<'_, F, N>
where
    F: FnOnce(Option<Solution<'_>>) -> R,
{
    type Output = R;

    /// The workspace is made here, inside the code that `Simd::vectorize` compiles, so that
    /// the lengths of its slices are constants wherever n is (no bounds checks in the loops).
    #[inline(always)]
    fn run<S: Simd>(self, simd: S) -> R {
        let n = if N == 0 { self.n } else { N };
        debug_assert_eq!(n, self.n);
        if n <= 4 {
            let mut floats = [0.0; float_len(4)];
            let mut masks = [0u64; 4];
            let ws = Workspace::new(n, &mut floats, &mut masks, &mut [], &mut []);
            newton_then(simd, self.m, n, ws, self.finish)
        } else if n <= STACK_N {
            let mut floats = [0.0; float_len(STACK_N)];
            let mut masks = [0u64; STACK_N];
            let ws = Workspace::new(n, &mut floats, &mut masks, &mut [], &mut []);
            newton_then(simd, self.m, n, ws, self.finish)
        } else {
            let mut floats = vec![0.0; float_len(n)];
            let mut masks = vec![0u64; n];
            let graph = if n > MASK_N { 2 * n } else { 0 };
            let mut parent = vec![0usize; graph];
            let mut balance = vec![0isize; graph];
            let ws = Workspace::new(n, &mut floats, &mut masks, &mut parent, &mut balance);
            newton_then(simd, self.m, n, ws, self.finish)
        }
    }
}

/// [`newton`], then `finish` on the solution it found (X computed here, where n is known).
#[inline(always)]
fn newton_then<S: Simd, R>(
    simd: S,
    m: &[f64],
    n: usize,
    mut ws: Workspace<'_>,
    finish: impl FnOnce(Option<Solution<'_>>) -> R,
) -> R {
    affine_start(m, n, &mut ws);
    let outcome = newton(simd, m, n, &mut ws).or_else(|| {
        assignment_start(m, n, &mut ws);
        newton(simd, m, n, &mut ws)
    });
    let Some(outcome) = outcome else {
        return finish(None);
    };
    // X = max(0, M − u 1ᵀ − 1 vᵀ) at the best multipliers.
    for ((x, m), &u) in
        ws.x.chunks_exact_mut(n)
            .zip(m.chunks_exact(n))
            .zip(&*ws.best_u)
    {
        for ((x, &m), &v) in x.iter_mut().zip(m).zip(&*ws.best_v) {
            *x = (m - u - v).max(0.0);
        }
    }
    finish(Some(Solution {
        outcome,
        u: ws.best_u,
        v: ws.best_v,
        x: ws.x,
    }))
}

/// The optimum the Newton solver found.
struct Solution<'a> {
    outcome: Outcome,
    /// Row and column multipliers.
    u: &'a [f64],
    v: &'a [f64],
    /// X*, row-major.
    x: &'a [f64],
}

fn dykstra_fallback(m: &[f64], n: usize) -> BirkhoffProjection {
    dykstra_projection(m, n, tolerance(m, n), 2_000_000)
}

/// max(1, max|M|): the scale of the tolerances.
fn scale_of(m: &[f64]) -> f64 {
    m.iter().fold(1.0f64, |s, x| s.max(x.abs()))
}

/// The stopping tolerance for marginal errors, `64·n·ε·max(1, max|M|)`.
fn tolerance(m: &[f64], n: usize) -> f64 {
    64.0 * n as f64 * f64::EPSILON * scale_of(m)
}

/// Buffers of the Newton solver, all sized for one n.
struct Workspace<'a> {
    /// Current multipliers.
    u: &'a mut [f64],
    v: &'a mut [f64],
    /// Newton step.
    du: &'a mut [f64],
    dv: &'a mut [f64],
    /// Multipliers of the best iterate.
    best_u: &'a mut [f64],
    best_v: &'a mut [f64],
    /// Gradient of f = −g: 1 − row sums and 1 − column sums of X.
    grad_rows: &'a mut [f64],
    grad_cols: &'a mut [f64],
    /// 1/(row degree + μ).
    row_weight: &'a mut [f64],
    /// 1 for a column whose step is an unknown, 0 for a grounded one.
    column_free: &'a mut [f64],
    /// 1 for a row or column of an unbalanced component (regularised), else 0.
    row_shift: &'a mut [f64],
    column_shift: &'a mut [f64],
    /// X*, row-major: X at the best multipliers, computed once Newton is done.
    x: &'a mut [f64],
    /// 1 where X > 0, else 0 (row-major).
    support: &'a mut [f64],
    /// The Schur complement in the column steps (row-major n×n).
    schur: &'a mut [f64],
    /// Line search: kink positions (+∞: none), and the change of f′'s offset and slope there.
    kink_t: &'a mut [f64],
    kink_offset: &'a mut [f64],
    kink_slope: &'a mut [f64],
    /// Bit j of row i's mask: X_ij > 0 (n ≤ 64).
    row_mask: &'a mut [u64],
    /// Union-find parents of the support graph (rows 0..n, columns n..2n), for n > 64.
    parent: &'a mut [usize],
    /// Rows minus columns per component root, for n > 64.
    balance: &'a mut [isize],
}

/// f64 values a workspace for n needs.
const fn float_len(n: usize) -> usize {
    12 * n + 6 * n * n
}

/// Largest n whose workspace lives on the stack.
const STACK_N: usize = 8;

/// Largest n whose support graph fits the 64-bit row masks.
const MASK_N: usize = 64;

impl<'a> Workspace<'a> {
    #[inline(always)]
    fn new(
        n: usize,
        floats: &'a mut [f64],
        row_mask: &'a mut [u64],
        parent: &'a mut [usize],
        balance: &'a mut [isize],
    ) -> Self {
        let (u, rest) = floats.split_at_mut(n);
        let (v, rest) = rest.split_at_mut(n);
        let (du, rest) = rest.split_at_mut(n);
        let (dv, rest) = rest.split_at_mut(n);
        let (best_u, rest) = rest.split_at_mut(n);
        let (best_v, rest) = rest.split_at_mut(n);
        let (grad_rows, rest) = rest.split_at_mut(n);
        let (grad_cols, rest) = rest.split_at_mut(n);
        let (row_weight, rest) = rest.split_at_mut(n);
        let (column_free, rest) = rest.split_at_mut(n);
        let (row_shift, rest) = rest.split_at_mut(n);
        let (column_shift, rest) = rest.split_at_mut(n);
        let (x, rest) = rest.split_at_mut(n * n);
        let (support, rest) = rest.split_at_mut(n * n);
        let (schur, rest) = rest.split_at_mut(n * n);
        let (kink_t, rest) = rest.split_at_mut(n * n);
        let (kink_offset, rest) = rest.split_at_mut(n * n);
        let (kink_slope, _) = rest.split_at_mut(n * n);
        Self {
            u,
            v,
            du,
            dv,
            best_u,
            best_v,
            grad_rows,
            grad_cols,
            row_weight,
            column_free,
            row_shift,
            column_shift,
            x,
            support,
            schur,
            kink_t,
            kink_offset,
            kink_slope,
            row_mask: &mut row_mask[..n],
            parent,
            balance,
        }
    }
}

/// What the Newton solver reports; the multipliers are in the workspace's `best_u`, `best_v`.
struct Outcome {
    residual: f64,
    iterations: u32,
}

/// Starts at the multipliers of the affine projection P_A(M): optimal when it is non-negative.
#[inline(always)]
fn affine_start(m: &[f64], n: usize, ws: &mut Workspace<'_>) {
    let nf = n as f64;
    let mut total = 0.0;
    for i in 0..n {
        let row = m[i * n..(i + 1) * n].iter().sum::<f64>() - 1.0;
        ws.grad_rows[i] = row;
        total += row;
    }
    for j in 0..n {
        ws.grad_cols[j] = (0..n).map(|i| m[i * n + j]).sum::<f64>() - 1.0;
    }
    let shift = total / (2.0 * nf * nf);
    for i in 0..n {
        ws.u[i] = ws.grad_rows[i] / nf - shift;
        ws.v[i] = ws.grad_cols[i] / nf - shift;
    }
}

/// Starts where X(u, v) is the permutation matrix Π of a maximum-weight assignment π of M
/// (maximising Σ_i M_{iπ(i)}), the face of B_n that the linear term −⟨X, M⟩ of ½‖X − M‖² favours
/// when M is large. The multipliers are dual potentials of the assignment problem
/// (`u_i + v_j ≥ M_ij`, with equality on π), each lowered by ½, so that
/// `X_{iπ(i)} = M_{iπ(i)} − u_i − v_{π(i)} = 1` and every other entry of X is
/// `max(0, 1 − reduced cost)`.
/// The column potentials are shortest distances (Bellman–Ford, at most n rounds) in the graph
/// with an edge j → π(i) of length `M_{iπ(i)} − M_ij`, which has no negative cycle because π is
/// optimal.
fn assignment_start(m: &[f64], n: usize, ws: &mut Workspace<'_>) {
    with_best_permutation(m, n, |permutation| {
        let v = &mut ws.v[..n];
        v.fill(0.0);
        for _ in 0..n {
            let mut changed = false;
            for (i, &p) in permutation.iter().enumerate() {
                let row = &m[i * n..(i + 1) * n];
                for j in 0..n {
                    let candidate = v[j] + (row[p] - row[j]);
                    if candidate < v[p] {
                        v[p] = candidate;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        for (i, &p) in permutation.iter().enumerate() {
            ws.u[i] = m[i * n + p] - v[p] - 0.5;
        }
        v.iter_mut().for_each(|v| *v -= 0.5);
    })
}

/// The semismooth Newton iteration (module docs) from the workspace's multipliers, with the
/// entry-wise steps in the lanes of `simd` (their count must divide n).
#[inline(always)]
fn newton<S: Simd>(simd: S, m: &[f64], n: usize, ws: &mut Workspace<'_>) -> Option<Outcome> {
    assert!(
        n.is_multiple_of(S::F64s::COUNT),
        "newton: lanes must divide n"
    );
    let m = &m[..n * n];
    let nf = n as f64;
    let scale = scale_of(m);
    let tolerance = 64.0 * nf * f64::EPSILON * scale;
    // After reaching the tolerance, up to two more full steps polish the answer down to the
    // rounding floor; the best iterate is returned.
    let floor = 4.0 * nf * f64::EPSILON * scale;
    let mut best: Option<Outcome> = None;
    let mut polish_steps = 0;
    let mut last_residual = f64::INFINITY;
    for iteration in 0..MAX_NEWTON_ITERATIONS {
        let residual = rows::primal_and_gradient(simd, m, n, ws);
        if residual <= tolerance {
            if best.as_ref().is_none_or(|b| residual < b.residual) {
                best = Some(Outcome {
                    residual,
                    iterations: iteration,
                });
                ws.best_u.copy_from_slice(ws.u);
                ws.best_v.copy_from_slice(ws.v);
            }
            if residual <= floor || polish_steps == 2 {
                break;
            }
            polish_steps += 1;
        }
        if !newton_direction(n, ws, residual) {
            break;
        }
        let Some(t) = rows::line_search(simd, m, n, ws, step_cap(residual, &mut last_residual))
        else {
            break;
        };
        for i in 0..n {
            ws.u[i] += t * ws.du[i];
            ws.v[i] += t * ws.dv[i];
        }
    }
    best
}

/// Marks the grounded columns (`column_free` = 0): the first column of every connected
/// component of the support graph that has as many rows as columns and at least one edge. The
/// rows and columns of those balanced components get no regularisation: `row_shift` and
/// `column_shift` are 0 there and 1 elsewhere (a factor of μ).
#[inline(always)]
fn ground_balanced_components(n: usize, ws: &mut Workspace<'_>) {
    ws.column_free[..n].iter_mut().for_each(|f| *f = 1.0);
    ws.row_shift[..n].iter_mut().for_each(|f| *f = 1.0);
    ws.column_shift[..n].iter_mut().for_each(|f| *f = 1.0);
    if n > MASK_N {
        return ground_by_union_find(n, ws);
    }
    let masks = &ws.row_mask[..n];
    let mut remaining = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
    while remaining != 0 {
        let (rows, cols) = component_of(masks, remaining.trailing_zeros() as usize);
        if cols != 0 && rows.count_ones() == cols.count_ones() {
            ws.column_free[cols.trailing_zeros() as usize] = 0.0;
            for k in 0..n {
                if (rows >> k) & 1 == 1 {
                    ws.row_shift[k] = 0.0;
                }
                if (cols >> k) & 1 == 1 {
                    ws.column_shift[k] = 0.0;
                }
            }
        }
        remaining &= !rows;
    }
}

/// The connected component of row `first` in the bipartite support graph whose row i is
/// adjacent to the columns of `masks[i]` (bit j: X_ij > 0): (its rows, its columns) as masks.
#[inline(always)]
fn component_of(masks: &[u64], first: usize) -> (u64, u64) {
    let mut rows = 1u64 << first;
    let mut cols = masks[first];
    loop {
        let mut grown = rows;
        for (i, &mask) in masks.iter().enumerate() {
            grown |= (((mask & cols) != 0) as u64) << i;
        }
        if grown == rows {
            return (rows, cols);
        }
        rows = grown;
        for (i, &mask) in masks.iter().enumerate() {
            cols |= mask & 0u64.wrapping_sub((rows >> i) & 1);
        }
    }
}

fn find(parent: &mut [usize], mut node: usize) -> usize {
    while parent[node] != node {
        parent[node] = parent[parent[node]];
        node = parent[node];
    }
    node
}

/// [`ground_balanced_components`] for n > 64, by union-find.
fn ground_by_union_find(n: usize, ws: &mut Workspace<'_>) {
    for (node, parent) in ws.parent.iter_mut().enumerate() {
        *parent = node;
    }
    for i in 0..n {
        for j in 0..n {
            if ws.support[i * n + j] > 0.0 {
                let (a, b) = (find(ws.parent, i), find(ws.parent, n + j));
                if a != b {
                    ws.parent[a] = b;
                }
            }
        }
    }
    ws.balance.iter_mut().for_each(|b| *b = 0);
    for node in 0..2 * n {
        let root = find(ws.parent, node);
        ws.balance[root] += if node < n { 1 } else { -1 };
    }
    for i in 0..n {
        if ws.balance[find(ws.parent, i)] == 0 {
            ws.row_shift[i] = 0.0;
        }
    }
    for j in 0..n {
        let root = find(ws.parent, n + j);
        let has_edge = (0..n).any(|i| ws.support[i * n + j] > 0.0);
        if has_edge && ws.balance[root] == 0 {
            ws.column_shift[j] = 0.0;
        }
    }
    for j in 0..n {
        let root = find(ws.parent, n + j);
        if ws.column_shift[j] == 0.0 && ws.balance[root] == 0 {
            ws.balance[root] = isize::MIN; // one ground per component
            ws.column_free[j] = 0.0;
        }
    }
}

/// The regularised semismooth Newton direction for f = −g, into `ws.du`, `ws.dv`:
/// `(H + μI)·d = −∇f` with `μ = min(1, residual)·1e-2` (Levenberg–Marquardt: always a descent
/// direction, and the regularisation vanishes quadratically near the optimum).
///
/// The generalised Hessian H is the signless Laplacian of the bipartite graph of positive
/// entries: singular once per connected component (u + c, v − c leaves X unchanged). A component
/// with as many rows as columns is grounded at one column (that column's step is 0): there the
/// null direction is a pure gauge. In an unbalanced component (including a lone row or column)
/// the gradient has a part along the null direction — the support must change — and the
/// regularisation turns it into a long step that the line search shortens.
///
/// The row block of H + μI is diagonal (row degree + μ), so the rows are eliminated:
/// `S·dv = −∇_v f + Aᵀ W ∇_u f` with `S = D_c + μI − Aᵀ W A`, `W = diag(1/(row degree + μ))`,
/// A the 0/1 support, then `du = W (−∇_u f − A dv)`. A grounded column's row and column of S
/// are replaced by the identity's (its step is exactly 0). S is solved by LDLᵀ; false if it is
/// not numerically positive definite.
#[inline(always)]
fn newton_direction(n: usize, ws: &mut Workspace<'_>, residual: f64) -> bool {
    let mu = residual.min(1.0) * 1e-2;
    ground_balanced_components(n, ws);
    let support = &ws.support[..n * n];
    let schur = &mut ws.schur[..n * n];
    schur.iter_mut().for_each(|s| *s = 0.0);
    for j in 0..n {
        schur[j * n + j] = mu * ws.column_shift[j];
        ws.dv[j] = -ws.grad_cols[j];
    }
    for i in 0..n {
        let row = &support[i * n..(i + 1) * n];
        let w = 1.0 / (row.iter().sum::<f64>() + mu * ws.row_shift[i]);
        ws.row_weight[i] = w;
        let wg = w * ws.grad_rows[i];
        for j in 0..n {
            // Column degree on the diagonal, minus the row's rank-one term.
            let pj = row[j];
            schur[j * n + j] += pj;
            ws.dv[j] += pj * wg;
            let wp = w * pj;
            for l in 0..n {
                schur[j * n + l] -= wp * row[l];
            }
        }
    }
    for j in 0..n {
        let fj = ws.column_free[j];
        ws.dv[j] *= fj;
        for l in 0..n {
            let identity = if j == l { 1.0 - fj } else { 0.0 };
            schur[j * n + l] = fj * ws.column_free[l] * schur[j * n + l] + identity;
        }
    }
    if !ldlt_solve(schur, &mut ws.dv[..n], n) {
        return false;
    }
    for i in 0..n {
        let row = &support[i * n..(i + 1) * n];
        let mut s = -ws.grad_rows[i];
        for j in 0..n {
            s -= row[j] * ws.dv[j];
        }
        ws.du[i] = ws.row_weight[i] * s;
    }
    true
}

/// The longest step the line search may take: the Newton step (t ≤ 1) while each step cuts the
/// residual by at least 10 %, the exact minimiser along the line (no cap) after one that did
/// not. A
/// stall happens on an unbalanced support component far from the optimum: the regularised
/// step then moves along the component's null direction, which leaves X unchanged until an
/// entry crosses zero, and capped steps would crawl towards that kink (HC composites with
/// entries of 1e5 needed thousands of steps).
#[inline(always)]
fn step_cap(residual: f64, last_residual: &mut f64) -> f64 {
    let stalled = residual > 0.9 * *last_residual;
    *last_residual = residual;
    if stalled { f64::INFINITY } else { 1.0 }
}

/// One segment of the line search: f'(τ) = offset + slope·τ on [low, t] (t: the next kink),
/// with steps capped at `cap`. `Some(step)` ends the search: the zero of f' when it lies on
/// the segment, `cap` when the cap is reached first (None if the cap is infinite: f' < 0 for
/// ever, which only rounding produces). `None`: go on past the kink.
#[inline(always)]
fn segment_step(offset: f64, slope: f64, low: f64, t: f64, cap: f64) -> Option<Option<f64>> {
    let end = t.min(cap);
    if offset + slope * end >= 0.0 {
        // f' < 0 at `low` and ≥ 0 at `end`: the zero is on this segment.
        return Some(Some(if slope > 0.0 {
            (-offset / slope).clamp(low, end)
        } else {
            end
        }));
    }
    (end == cap).then_some(cap.is_finite().then_some(cap))
}

/// Solves S·x = b in place for symmetric positive definite S (n×n, row-major) by LDLᵀ (the lower
/// triangle and diagonal of S are overwritten); false if a pivot is not positive.
#[inline(always)]
fn ldlt_solve(s: &mut [f64], b: &mut [f64], n: usize) -> bool {
    let s = &mut s[..n * n];
    let b = &mut b[..n];
    for j in 0..n {
        let mut d = s[j * n + j];
        for k in 0..j {
            let l = s[j * n + k];
            d -= l * l * s[k * n + k];
        }
        if !(d > 0.0) || !d.is_finite() {
            return false;
        }
        s[j * n + j] = d;
        for i in (j + 1)..n {
            let mut v = s[i * n + j];
            for k in 0..j {
                v -= s[i * n + k] * s[j * n + k] * s[k * n + k];
            }
            s[i * n + j] = v / d;
        }
    }
    for i in 0..n {
        let mut v = b[i];
        for k in 0..i {
            v -= s[i * n + k] * b[k];
        }
        b[i] = v;
    }
    for i in 0..n {
        b[i] /= s[i * n + i];
    }
    for i in (0..n).rev() {
        let mut v = b[i];
        for k in (i + 1)..n {
            v -= s[k * n + i] * b[k];
        }
        b[i] = v;
    }
    true
}

/// ‖a − b‖_F: the plain sum of squares when it is safely inside the normal range (no
/// overflow, no underflow of the terms that matter), else scaled by max |a − b| first.
fn frobenius_distance(a: &[f64], b: &[f64]) -> f64 {
    /// Sums of squares from here up are exact to rounding even if some terms underflow.
    const SAFE_LOW: f64 = 1e-270;
    let plain = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>();
    if (SAFE_LOW..f64::MAX).contains(&plain) {
        return plain.sqrt();
    }
    let scale = a
        .iter()
        .zip(b)
        .fold(0.0f64, |s, (x, y)| s.max((x - y).abs()));
    if scale == 0.0 || !scale.is_finite() {
        return scale;
    }
    let inverse = 1.0 / scale;
    scale
        * a.iter()
            .zip(b)
            .map(|(x, y)| ((x - y) * inverse).powi(2))
            .sum::<f64>()
            .sqrt()
}

/// Dykstra's alternating projections between the affine set A = {X1 = 1, Xᵀ1 = 1} and the
/// orthant K = {X ≥ 0} (docs/theory.md §2.4), stopped when ‖X − Y‖_F and X's marginal errors are both
/// below `tolerance` or after `max_iterations`. Slow (linear convergence) but simple: the
/// independent cross-check of [`birkhoff_projection`] and its fallback.
pub fn dykstra_projection(
    m: &[f64],
    n: usize,
    tolerance: f64,
    max_iterations: u32,
) -> BirkhoffProjection {
    let nf = n as f64;
    let mut x = m.to_vec();
    let mut y = vec![0.0; n * n];
    let mut correction = vec![0.0; n * n];
    let mut rows = vec![0.0; n];
    let mut cols = vec![0.0; n];
    let mut iterations = 0;
    let mut marginal_error = f64::INFINITY;
    while iterations < max_iterations {
        iterations += 1;
        // Y = P_A(X).
        for i in 0..n {
            rows[i] = x[i * n..(i + 1) * n].iter().sum::<f64>() - 1.0;
        }
        for j in 0..n {
            cols[j] = (0..n).map(|i| x[i * n + j]).sum::<f64>() - 1.0;
        }
        let total: f64 = rows.iter().sum();
        for i in 0..n {
            for j in 0..n {
                y[i * n + j] = x[i * n + j] - rows[i] / nf - cols[j] / nf + total / (nf * nf);
            }
        }
        // X = P_K(Y + Q); Q = Y + Q − X.
        let mut change = 0.0;
        for k in 0..n * n {
            let shifted = y[k] + correction[k];
            let clipped = shifted.max(0.0);
            correction[k] = shifted - clipped;
            change += (clipped - y[k]).powi(2);
            x[k] = clipped;
        }
        marginal_error = marginal_error_of(&x, n);
        if change.sqrt() <= tolerance && marginal_error <= tolerance {
            break;
        }
    }
    BirkhoffProjection {
        distance: frobenius_distance(m, &x),
        projection: x,
        row_multipliers: Vec::new(),
        column_multipliers: Vec::new(),
        marginal_error,
        iterations,
        method: ProjectionMethod::Dykstra,
    }
}

/// max over rows and columns of |sum − 1|.
pub fn marginal_error_of(x: &[f64], n: usize) -> f64 {
    let mut worst = 0.0f64;
    for i in 0..n {
        worst = worst.max((x[i * n..(i + 1) * n].iter().sum::<f64>() - 1.0).abs());
    }
    for j in 0..n {
        worst = worst.max(((0..n).map(|i| x[i * n + j]).sum::<f64>() - 1.0).abs());
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::structure::best_permutation_into;

    /// Checks the KKT conditions of a Newton answer from scratch: X ≥ 0, exact marginals, and
    /// X_ij = max(0, M_ij − u_i − v_j) (stationarity with complementary slackness).
    pub(crate) fn assert_kkt(m: &[f64], n: usize, p: &BirkhoffProjection) {
        let scale = m.iter().fold(1.0f64, |s, x| s.max(x.abs()));
        let tol = 256.0 * n as f64 * f64::EPSILON * scale;
        assert_eq!(p.method, ProjectionMethod::Newton);
        assert!(p.projection.iter().all(|&x| x >= 0.0));
        assert!(marginal_error_of(&p.projection, n) <= tol);
        for i in 0..n {
            for j in 0..n {
                let expected =
                    (m[i * n + j] - p.row_multipliers[i] - p.column_multipliers[j]).max(0.0);
                assert!((p.projection[i * n + j] - expected).abs() <= tol);
            }
        }
    }

    #[test]
    fn doubly_stochastic_has_distance_zero() {
        let p = [0.5, 0.25, 0.25, 0.25, 0.5, 0.25, 0.25, 0.25, 0.5];
        let projection = birkhoff_projection(&p, 3);
        assert!(projection.distance < 1e-15);
        assert_kkt(&p, 3, &projection);
        let identity = [1.0, 0.0, 0.0, 1.0];
        assert!(birkhoff_distance(&identity, 2) < 1e-15);
    }

    #[test]
    fn near_rank_one_hc_composite_converges_without_dykstra() {
        // A 64-layer HC prefix composite (gain seed 445): Newton stalled on an unbalanced
        // support component until the line search could step past t = 1 (it used to need
        // 1e5 Dykstra sweeps).
        let m = [
            5935.171855895193,
            -7488.024979803403,
            -8432.389497176628,
            7582.958846773268,
            2747.3364366046685,
            -3466.071068754077,
            -3903.487707955577,
            3510.0478674823507,
            -42025.32961725316,
            53020.445191905244,
            59708.04103636568,
            -53692.780359640885,
            -3103.83928902769,
            3915.8837351642924,
            4409.873366497737,
            -3965.545689410348,
        ];
        let projection = birkhoff_projection(&m, 4);
        assert_kkt(&m, 4, &projection);
        assert!(
            projection.iterations < 20,
            "{} iterations",
            projection.iterations
        );
        let dykstra = dykstra_projection(&m, 4, 1e-9, 2_000_000);
        let relative = (dykstra.distance - projection.distance).abs() / projection.distance;
        assert!(relative < 1e-9, "Dykstra differs by {relative:e}");
    }

    #[test]
    fn far_from_the_polytope_newton_restarts_at_the_assignment() {
        // An HC composite with entries of 1e10 (`gain --logit-std 3`, seed 0): from the affine
        // start Newton wandered for 100 iterations and Dykstra took 2·10⁶ sweeps; from the
        // assignment's potentials it converges in a step.
        let m = [
            -4602789502.646887,
            19255470407.696823,
            -10182830731.838228,
            -6890604019.382592,
            8574273134.699694,
            -33286004437.013474,
            18319567148.994644,
            12073141108.77332,
            1975324846.1713386,
            -8379010563.452522,
            4400198098.88058,
            2992827996.8412094,
            -7479243824.996843,
            29768574461.83735,
            -16163194522.690428,
            -10746537952.098312,
        ];
        let projection = birkhoff_projection(&m, 4);
        assert_kkt(&m, 4, &projection);
        assert!(projection.iterations <= 3, "{}", projection.iterations);
        // X* is the permutation matrix of the best assignment.
        let mut best = [0usize; 4];
        best_permutation_into(&m, 4, &mut best);
        for (i, &j) in best.iter().enumerate() {
            assert_eq!(projection.projection[i * 4 + j], 1.0);
        }
        assert_eq!(projection.projection.iter().sum::<f64>(), 4.0);
    }

    #[test]
    fn multiple_of_all_ones_projects_to_average() {
        // M = c·J: by symmetry X* = J/n, distance = n·|c − 1/n|.
        for c in [0.0, 0.1, 3.0, -2.0] {
            let m = [c; 16];
            let d = birkhoff_distance(&m, 4);
            assert!((d - 4.0 * (c - 0.25f64).abs()).abs() < 1e-13, "c={c}: {d}");
        }
    }

    #[test]
    fn affine_direction_without_clipping() {
        // M = J/n + t·D with D in the affine hull's direction (zero row and column sums) and
        // M ≥ 0 is doubly stochastic: distance 0. M = c·I has a* = (2c + 2)/4, so for c = 0.5
        // X* = [[0.75, 0.25], [0.25, 0.75]] and the distance is ‖0.25·J‖_F = 0.5.
        let m = [0.5, 0.0, 0.0, 0.5];
        assert!((birkhoff_distance(&m, 2) - 0.5).abs() < 1e-15);
        let shifted = [0.75, 0.25, 0.25, 0.75];
        assert!(birkhoff_distance(&shifted, 2) < 1e-15);
        let scaled = [1.0, 0.5, 0.5, 1.0]; // = 2·shifted − ... sums 1.5: distance ‖0.25·J‖ = 0.5
        assert!((birkhoff_distance(&scaled, 2) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn two_by_two_with_clipping_by_hand() {
        // B_2 = {[[a, 1−a], [1−a, a]] : a ∈ [0, 1]}. For M = [[3, 0], [0, 3]] the nearest a is
        // clipped at 1: X* = I, distance ‖M − I‖_F = √8.
        let m = [3.0, 0.0, 0.0, 3.0];
        let p = birkhoff_projection(&m, 2);
        assert!((p.distance - 8f64.sqrt()).abs() < 1e-14);
        assert_kkt(&m, 2, &p);
        // General 2×2: a* = clamp((M00 + M11 − M01 − M10 + 2)/4, 0, 1).
        let m = [0.9, -0.4, 0.2, 0.1];
        let a: f64 = ((0.9 + 0.1 + 0.4 - 0.2 + 2.0) / 4.0f64).clamp(0.0, 1.0);
        let x = [a, 1.0 - a, 1.0 - a, a];
        let expected = frobenius_distance(&m, &x);
        let p = birkhoff_projection(&m, 2);
        assert!((p.distance - expected).abs() < 1e-14);
        assert_kkt(&m, 2, &p);
    }

    #[test]
    fn newton_agrees_with_dykstra_on_hc_like_matrices() {
        let m = [
            5.43, 4.43, 4.43, 4.43, -4.07, -3.07, -4.07, -4.07, -3.95, -3.95, -2.95, -3.95, -4.22,
            -4.22, -4.22, -3.22,
        ];
        let newton = birkhoff_projection(&m, 4);
        assert_kkt(&m, 4, &newton);
        let dykstra = dykstra_projection(&m, 4, 1e-13, 5_000_000);
        assert!((newton.distance - dykstra.distance).abs() < 1e-9 * newton.distance);
        // docs/theory.md §5.2: 16.69 for HC H1 (two significant digits of printed input).
        assert!(
            (newton.distance - 16.69).abs() < 0.01,
            "{}",
            newton.distance
        );
    }
}
