//! Structure of a mixing matrix P (row-major n×n, rows = output streams, columns = input
//! streams): how far it is from the identity (a plain residual connection) and from the nearest
//! permutation matrix (a pure routing of streams), and how evenly its rows mix.
//!
//! - `identity_distance(P) = ‖P − I‖_F`;
//! - `permutation_distance(P) = min_Π ‖P − Π‖_F` over the n! permutation matrices, exact: since
//!   `‖P − Π‖²_F = ‖P‖²_F − 2·Σ_i P_{i,π(i)} + n`, the nearest Π maximises `Σ_i P_{i,π(i)}`, a
//!   linear assignment problem, solved in O(n³) by the Hungarian (Kuhn–Munkres) method in its
//!   shortest-augmenting-path form (Jonker–Volgenant). The permutation is reported as a vector
//!   `π` with `π[i] = j`: output stream i takes input stream j (Π_{i,π(i)} = 1).
//! - `mixing_entropy(P) = (1/n)·Σ_i H(p_i) / ln n` with `p_ij = P_ij / Σ_k P_ik` and
//!   `H(p) = −Σ_j p_j ln p_j` (0·ln 0 = 0): 0 for a permutation, 1 for J/n. Defined only for
//!   matrices with non-negative entries and no zero row (see [`EntropyUndefined`]).
//!
//! **Ties.** When several permutations are (nearly) equally close, as for J/n where all n! are,
//! [`nearest_permutation`] returns the lexicographically smallest of those whose
//! `Σ_i P_{i,π(i)}` lies within `τ = 8·n·ε·max_ij |P_ij|` of the maximum (ε = 2^−52): compare
//! `π[0]` first, then `π[1]`, and so on. The tolerance keeps rounding noise (in a composite that
//! has converged to J/n to rounding) from picking an arbitrary routing; J/n gives the identity.
//! The search for ties runs on the reduced costs of the Hungarian method's dual potentials, and
//! only when some other permutation uses no entry with a reduced cost above τ (rare outside
//! ties).
//!
//! **Scaled composites** ([`ScaledMatrix`], P = M·2^e). The assignment and the entropy are
//! invariant under a positive scale and are computed on the mantissa M. The distances are
//! not homogeneous: they are computed as `2^e·‖M − 2^−e·Π‖_F`, exact to rounding wherever the
//! true value fits f64 and +inf only where it does not; for a huge P they equal ‖P‖_F to f64
//! precision, for a tiny P (e < −60) they are computed on the plain matrix and tend to
//! ‖Π‖_F = √n. Every Frobenius norm here is accumulated after an exact power-of-two rescaling,
//! so no square overflows or underflows.
//!
//! ```
//! use mhc_analyze::metrics::{identity_distance, mixing_entropy, nearest_permutation};
//! // Output 0 reads input 1 and vice versa, with 10 % leaking through.
//! let p = [0.1, 0.9, 0.9, 0.1];
//! let (routing, distance) = nearest_permutation(&p, 2);
//! assert_eq!(routing, vec![1, 0]);
//! assert!((distance - 0.2).abs() < 1e-15); // ‖P − Π‖_F = √(4 · 0.1²)
//! assert!((identity_distance(&p, 2) - 1.8).abs() < 1e-15);
//! let entropy = mixing_entropy(&p, 2).unwrap(); // H(0.1, 0.9) / ln 2
//! assert!((entropy - 0.468_995_593_589_281_2).abs() < 1e-15);
//! assert_eq!(mixing_entropy(&[1.0, -0.1, 0.0, 1.0], 2), None); // an HC-like negative entry
//! ```

// Index loops mirror the textbook assignment algorithm they implement.
#![allow(clippy::needless_range_loop)]

use crate::compose::{ScaledMatrix, binary_exponent, power_of_two, scale_by_power_of_two};

/// Ties in [`nearest_permutation`]: sums within `TIE_ULPS·n·ε·max|P|` of the best count as equal.
pub(crate) const TIE_ULPS: f64 = 8.0;

/// Below this exponent a scaled matrix is measured as a plain f64 matrix (2^−e·Π would dwarf
/// the mantissa; the same threshold as the distance to J/n).
pub(crate) const TINY_EXPONENT: i64 = -60;

/// Largest n whose assignment work buffers live on the stack.
const STACK_STREAMS: usize = 8;

/// Why [`mixing_entropy`] has no value for a matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntropyUndefined {
    /// Some entry is negative (HC layers and composites): a row is not a distribution.
    NegativeEntry,
    /// Some row sums to zero: that output stream receives nothing.
    ZeroRow,
    /// Some entry is NaN or infinite.
    NotFinite,
}

impl EntropyUndefined {
    /// One line saying why the entropy is absent, for reports.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NegativeEntry => "a row has a negative entry, so it is not a distribution",
            Self::ZeroRow => "a row sums to zero",
            Self::NotFinite => "an entry is not finite",
        }
    }
}

impl std::fmt::Display for EntropyUndefined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

/// ‖A − B‖_F = √(Σ_k (a_k − b_k)²) for two matrices of the same shape (any layout, as long as
/// both use it). Accumulated after an exact power-of-two rescaling: +inf only when the true
/// value exceeds f64, never a spurious 0 for tiny differences; NaN if an entry is NaN.
///
/// # Panics
/// When the lengths differ (a programming error, not bad data).
pub fn frobenius_distance(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "frobenius_distance: shapes differ");
    frobenius_norm(|k| a[k] - b[k], a.len())
}

/// ‖P − I‖_F for a row-major n×n `p`: 0 for the identity (a plain residual connection).
pub fn identity_distance(p: &[f64], n: usize) -> f64 {
    check_square(p, n);
    frobenius_norm(|k| p[k] - unit_if(k % (n + 1) == 0), n * n)
}

/// ‖P − I‖_F of a scaled matrix `P = M·2^e`, without overflow (see the module docs).
#[cfg(test)]
fn identity_distance_scaled(p: &ScaledMatrix) -> f64 {
    let n = p.n();
    distance_to_permutation_scaled(p, |i| i, n)
}

/// The permutation π nearest to P in Frobenius norm and the distance `‖P − Π‖_F`
/// (`Π_{i,π(i)} = 1`; `π[i]` = the input stream routed to output stream i). Exact: π maximises
/// `Σ_i P_{i,π(i)}` (Hungarian method, O(n³)); ties are broken towards the lexicographically
/// smallest π as described in the module docs. The distance is computed directly as
/// `√(Σ_ij (P_ij − Π_ij)²)`, not from the expansion, so it keeps full relative precision near a
/// permutation. For an input with a non-finite entry: the identity and NaN.
pub fn nearest_permutation(p: &[f64], n: usize) -> (Vec<usize>, f64) {
    check_square(p, n);
    let mut permutation = vec![0; n];
    if !p.iter().all(|x| x.is_finite()) {
        permutation.iter_mut().enumerate().for_each(|(i, j)| *j = i);
        return (permutation, f64::NAN);
    }
    best_permutation_into(p, n, &mut permutation);
    let distance = frobenius_norm(|k| p[k] - unit_if(permutation[k / n] == k % n), n * n);
    (permutation, distance)
}

/// [`nearest_permutation`] of a scaled matrix `P = M·2^e`: the permutation from the mantissa
/// (the same as P's, the scale being positive), the distance without overflow (+inf only when
/// it exceeds f64; ≈ ‖P‖_F for a huge P).
pub fn nearest_permutation_scaled(p: &ScaledMatrix) -> (Vec<usize>, f64) {
    let n = p.n();
    let mut permutation = vec![0; n];
    best_permutation_into(p.mantissa(), n, &mut permutation);
    let distance = distance_to_permutation_scaled(p, |i| permutation[i], n);
    (permutation, distance)
}

/// The structure metrics of the bundle for a scaled matrix with `n = p.n()` (a constant where
/// the caller's is, so that the loops unroll): `(‖P − I‖_F, min_Π ‖P − Π‖_F)`, the same values
/// as ‖P − I‖_F computed alone and [`nearest_permutation_scaled`]. When the nearest
/// permutation is the identity (every matrix near a plain residual connection) the two distances
/// are one computation, done once. Allocation-free for n ≤ 8.
#[inline(always)]
pub(crate) fn distances_scaled(p: &ScaledMatrix, n: usize) -> (f64, f64) {
    debug_assert_eq!(n, p.n());
    with_best_permutation(&p.mantissa()[..n * n], n, |permutation| {
        let identity = distance_to_permutation_scaled(p, |i| i, n);
        let nearest = if permutation.iter().enumerate().all(|(i, &j)| i == j) {
            identity
        } else {
            distance_to_permutation_scaled(p, |i| permutation[i], n)
        };
        (identity, nearest)
    })
}

/// Mean normalised row entropy `(1/n)·Σ_i H(p_i)/ln n`, `p_ij = P_ij / Σ_k P_ik`, in [0, 1]:
/// 0 for a permutation, 1 for J/n. Scale invariant (each row is normalised by its sum), so a
/// [`ScaledMatrix`]'s mantissa gives its value. `None` when undefined (see
/// [`mixing_entropy_checked`] for the reason). For n = 1 it is 0.
pub fn mixing_entropy(p: &[f64], n: usize) -> Option<f64> {
    mixing_entropy_checked(p, n).ok()
}

/// [`mixing_entropy`], or why it is undefined: a negative entry (every HC matrix in practice), a
/// row summing to zero, or a non-finite entry.
pub fn mixing_entropy_checked(p: &[f64], n: usize) -> Result<f64, EntropyUndefined> {
    check_square(p, n);
    entropy_of(p, n)
}

/// [`mixing_entropy_checked`] of a checked n×n `p`, inlined so that a caller with a constant n
/// (the metric bundle) gets unrolled loops; the same operations in the same order.
#[inline(always)]
pub(crate) fn entropy_of(p: &[f64], n: usize) -> Result<f64, EntropyUndefined> {
    let p = &p[..n * n];
    if !p.iter().all(|x| x.is_finite()) {
        return Err(EntropyUndefined::NotFinite);
    }
    if p.iter().any(|&x| x < 0.0) {
        return Err(EntropyUndefined::NegativeEntry);
    }
    let mut total = 0.0;
    for row in p.chunks_exact(n) {
        let sum: f64 = row.iter().sum();
        if sum == 0.0 {
            return Err(EntropyUndefined::ZeroRow);
        }
        let entropy: f64 = row
            .iter()
            .filter(|&&x| x > 0.0)
            .map(|&x| {
                let q = x / sum;
                -q * q.ln()
            })
            .sum();
        total += entropy;
    }
    if n == 1 {
        return Ok(0.0);
    }
    Ok(total / (n as f64 * (n as f64).ln()))
}

fn check_square(p: &[f64], n: usize) {
    assert_eq!(p.len(), n * n, "expected a row-major n×n matrix");
}

fn unit_if(condition: bool) -> f64 {
    if condition { 1.0 } else { 0.0 }
}

/// √(Σ_k x(k)²) over k < len, after rescaling by the power of two of max |x(k)| (exact), so
/// the squares neither overflow nor underflow.
#[inline(always)]
fn frobenius_norm(x: impl Fn(usize) -> f64, len: usize) -> f64 {
    let mut largest = 0.0f64;
    for k in 0..len {
        let v = x(k).abs();
        if v.is_nan() {
            return f64::NAN;
        }
        largest = largest.max(v);
    }
    if largest == 0.0 || largest.is_infinite() {
        return largest;
    }
    let shift = binary_exponent(largest);
    let sum: f64 = if (-1022..=1023).contains(&-shift) {
        // The same products scale_by_power_of_two forms, with the factor built once.
        let factor = power_of_two(-shift);
        (0..len).map(|k| (x(k) * factor).powi(2)).sum()
    } else {
        (0..len)
            .map(|k| scale_by_power_of_two(x(k), -shift).powi(2))
            .sum()
    };
    scale_by_power_of_two(sum.sqrt(), shift)
}

/// ‖P − Π‖_F for `P = M·2^e` and `Π_{i,π(i)} = 1` with `π(i) = column(i)`: `2^e·‖M − 2^−e·Π‖_F`
/// unless P is tiny (e < −60), then `‖P − Π‖_F` on the plain values.
#[inline(always)]
fn distance_to_permutation_scaled(
    p: &ScaledMatrix,
    column: impl Fn(usize) -> usize,
    n: usize,
) -> f64 {
    let m = p.mantissa();
    let e = p.exponent();
    let on_permutation = |k: usize| column(k / n) == k % n;
    if e >= TINY_EXPONENT {
        let unit = scale_by_power_of_two(1.0, -e);
        let norm = frobenius_norm(
            |k| {
                if on_permutation(k) { m[k] - unit } else { m[k] }
            },
            n * n,
        );
        scale_by_power_of_two(norm, e)
    } else {
        frobenius_norm(
            |k| scale_by_power_of_two(m[k], e) - unit_if(on_permutation(k)),
            n * n,
        )
    }
}

/// Work space of the assignment: reduced costs (n²), dual potentials and the search state of one
/// augmentation (n + 1 each, the last column being the virtual start), and the greedy
/// tie-breaking's bookkeeping.
struct Workspace<'a> {
    reduced: &'a mut [f64],
    row_potential: &'a mut [f64],
    column_potential: &'a mut [f64],
    slack: &'a mut [f64],
    column_owner: &'a mut [usize],
    came_from: &'a mut [usize],
    visited: &'a mut [bool],
    column_taken: &'a mut [bool],
    witness: &'a mut [usize],
    sub_rows: &'a mut [usize],
    sub_columns: &'a mut [usize],
    sub_assignment: &'a mut [usize],
}

const STACK_FLOATS: usize = STACK_STREAMS * STACK_STREAMS + 3 * (STACK_STREAMS + 1);
const STACK_INDICES: usize = 2 * (STACK_STREAMS + 1) + 4 * STACK_STREAMS;
const STACK_FLAGS: usize = 2 * STACK_STREAMS + 1;

/// Largest n whose nearest permutation is found by enumerating all n! permutations (24 sums for
/// n = 4, the common case, cost less than setting up the assignment).
const ENUMERATED_STREAMS: usize = 4;

/// `f` of the π maximising Σ_i m_{i,π(i)} ([`best_permutation_into`]), held on the stack for
/// n ≤ 8.
#[inline(always)]
pub(crate) fn with_best_permutation<R>(m: &[f64], n: usize, f: impl FnOnce(&[usize]) -> R) -> R {
    let (mut stack, mut heap) = ([0usize; STACK_STREAMS], Vec::new());
    let permutation = if n <= STACK_STREAMS {
        &mut stack[..n]
    } else {
        heap.resize(n, 0);
        &mut heap[..]
    };
    best_permutation_into(m, n, permutation);
    f(permutation)
}

/// Writes into `permutation` the π maximising Σ_i m_{i,π(i)} (finite m), ties broken as in the
/// module docs. Allocation-free for n ≤ 8.
#[inline(always)]
pub(crate) fn best_permutation_into(m: &[f64], n: usize, permutation: &mut [usize]) {
    if n == ENUMERATED_STREAMS {
        // A constant table: the 24 sums unroll into loads at known offsets.
        enumerate_best_permutation(m, ENUMERATED_STREAMS, &PERMUTATIONS_4, permutation);
    } else if n < ENUMERATED_STREAMS {
        enumerate_best_permutation(m, n, lexicographic_permutations(n), permutation);
    } else {
        assign_best_permutation(m, n, permutation);
    }
}

/// [`best_permutation_into`] by the Hungarian method with tie-breaking (any n).
fn assign_best_permutation(m: &[f64], n: usize, permutation: &mut [usize]) {
    let floats = n * n + 3 * (n + 1);
    let indices = 2 * (n + 1) + 4 * n;
    let flags = 2 * n + 1;
    let mut stack = (
        [0.0; STACK_FLOATS],
        [0usize; STACK_INDICES],
        [false; STACK_FLAGS],
    );
    let mut heap = (Vec::new(), Vec::new(), Vec::new());
    let (f, u, b) = if n <= STACK_STREAMS {
        (
            &mut stack.0[..floats],
            &mut stack.1[..indices],
            &mut stack.2[..flags],
        )
    } else {
        heap.0.resize(floats, 0.0);
        heap.1.resize(indices, 0);
        heap.2.resize(flags, false);
        (&mut heap.0[..], &mut heap.1[..], &mut heap.2[..])
    };
    let (reduced, f) = f.split_at_mut(n * n);
    let (row_potential, f) = f.split_at_mut(n + 1);
    let (column_potential, slack) = f.split_at_mut(n + 1);
    let (column_owner, u) = u.split_at_mut(n + 1);
    let (came_from, u) = u.split_at_mut(n + 1);
    let (witness, u) = u.split_at_mut(n);
    let (sub_rows, u) = u.split_at_mut(n);
    let (sub_columns, sub_assignment) = u.split_at_mut(n);
    let (visited, column_taken) = b.split_at_mut(n + 1);
    let mut work = Workspace {
        reduced,
        row_potential,
        column_potential,
        slack,
        column_owner,
        came_from,
        visited,
        column_taken,
        witness,
        sub_rows,
        sub_columns,
        sub_assignment,
    };
    assign_with_ties(m, n, &mut work, permutation);
}

/// [`best_permutation_into`] for n ≤ [`ENUMERATED_STREAMS`]: every permutation's sum, in
/// the lexicographic order of `table` (the permutations of 0..n); the first whose sum lies
/// within the tie tolerance of the largest.
#[inline(always)]
fn enumerate_best_permutation(
    m: &[f64],
    n: usize,
    table: &[[u8; ENUMERATED_STREAMS]],
    permutation: &mut [usize],
) {
    let m = &m[..n * n];
    let mut sums = [0.0; 24];
    for (sum, pi) in sums.iter_mut().zip(table) {
        *sum = (0..n).map(|i| m[i * n + pi[i] as usize]).sum();
    }
    let sums = &sums[..table.len()];
    let best = sums.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let largest = m.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    let tolerance = TIE_ULPS * n as f64 * f64::EPSILON * largest;
    let chosen = sums
        .iter()
        .position(|&sum| best - sum <= tolerance)
        .expect("the best sum is within the tolerance of itself");
    for (slot, &j) in permutation.iter_mut().zip(&table[chosen][..n]) {
        *slot = j as usize;
    }
}

/// The 24 permutations of 0..4 in lexicographic order (the table of
/// [`lexicographic_permutations`] for n = 4, built at compile time).
pub(crate) const PERMUTATIONS_4: [[u8; ENUMERATED_STREAMS]; 24] = {
    let mut table = [[0u8; ENUMERATED_STREAMS]; 24];
    let mut current = [0u8, 1, 2, 3];
    let mut k = 0;
    while k < 24 {
        table[k] = current;
        // The next permutation: the last ascent i − 1 < i, swapped with the last larger
        // entry after it, then the tail reversed.
        let mut i = ENUMERATED_STREAMS - 1;
        while i > 0 && current[i - 1] >= current[i] {
            i -= 1;
        }
        if i > 0 {
            let mut j = ENUMERATED_STREAMS - 1;
            while current[j] <= current[i - 1] {
                j -= 1;
            }
            let swapped = current[i - 1];
            current[i - 1] = current[j];
            current[j] = swapped;
            let mut last = ENUMERATED_STREAMS - 1;
            while i < last {
                let swapped = current[i];
                current[i] = current[last];
                current[last] = swapped;
                i += 1;
                last -= 1;
            }
        }
        k += 1;
    }
    table
};

/// Every permutation of 0..n (n ≤ [`ENUMERATED_STREAMS`]) in lexicographic order, built once.
fn lexicographic_permutations(n: usize) -> &'static [[u8; ENUMERATED_STREAMS]] {
    static TABLES: std::sync::OnceLock<Vec<Vec<[u8; ENUMERATED_STREAMS]>>> =
        std::sync::OnceLock::new();
    let tables = TABLES.get_or_init(|| {
        (0..=ENUMERATED_STREAMS)
            .map(|n| {
                let mut current: Vec<usize> = (0..n).collect();
                let mut all = Vec::new();
                loop {
                    let mut row = [0u8; ENUMERATED_STREAMS];
                    for (slot, &j) in row.iter_mut().zip(&current) {
                        *slot = j as u8;
                    }
                    all.push(row);
                    if !next_permutation(&mut current) {
                        break all;
                    }
                }
            })
            .collect()
    });
    &tables[n]
}

/// The next permutation in lexicographic order, in place; false (and unchanged) after the last.
fn next_permutation(p: &mut [usize]) -> bool {
    let Some(i) = (1..p.len()).rev().find(|&i| p[i - 1] < p[i]) else {
        return false;
    };
    let j = (i..p.len())
        .rev()
        .find(|&j| p[j] > p[i - 1])
        .expect("p[i] > p[i − 1] itself qualifies");
    p.swap(i - 1, j);
    p[i..].reverse();
    true
}

/// The Hungarian method on costs −m, then the lexicographic tie-breaking on its reduced costs.
fn assign_with_ties(m: &[f64], n: usize, work: &mut Workspace<'_>, permutation: &mut [usize]) {
    if n == 0 {
        return;
    }
    let assignment = &mut *work.witness;
    min_cost_assignment(
        n,
        |i, j| -m[i * n + j],
        work.row_potential,
        work.column_potential,
        work.slack,
        work.column_owner,
        work.came_from,
        work.visited,
        assignment,
    );
    // Reduced costs r_ij = −m_ij − u_i − v_j ≥ 0, zero on the optimum: any permutation's sum
    // falls short of the best by exactly Σ_i r_{i,π(i)}. Negative values are rounding.
    for i in 0..n {
        for j in 0..n {
            let r = -m[i * n + j] - work.row_potential[i] - work.column_potential[j];
            work.reduced[i * n + j] = r.max(0.0);
        }
    }
    let largest = m.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    let tolerance = TIE_ULPS * n as f64 * f64::EPSILON * largest;
    // Usually the optimum is alone within the tolerance and the search ends here (`sub_rows`
    // and `sub_columns` lend their space to the cycle search).
    if !has_alternative(
        n,
        work.reduced,
        work.witness,
        tolerance,
        work.sub_rows,
        work.sub_columns,
    ) {
        permutation.copy_from_slice(&work.witness[..n]);
        return;
    }
    // Greedy in row order: the smallest column j that still admits a completion within the
    // tolerance. `witness` holds one such completion for the rows not yet fixed (at first the
    // optimum itself), so its column is always accepted and the loop always chooses.
    work.column_taken[..n].fill(false);
    let mut spent = 0.0;
    for i in 0..n {
        let mut chosen = None;
        for j in 0..n {
            if work.column_taken[j] {
                continue;
            }
            if j == work.witness[i] {
                chosen = Some(j);
                break;
            }
            let r = work.reduced[i * n + j];
            if spent + r > tolerance {
                continue;
            }
            if spent + r + completion_cost(n, i, j, work) <= tolerance {
                // The completion becomes the witness of the rows below.
                for (a, &row) in work.sub_rows[..n - i - 1].iter().enumerate() {
                    work.witness[row] = work.sub_columns[work.sub_assignment[a]];
                }
                chosen = Some(j);
                break;
            }
        }
        let j = chosen.expect("the witness column is always free");
        spent += work.reduced[i * n + j];
        work.column_taken[j] = true;
        permutation[i] = j;
    }
}

/// Whether a permutation other than `assignment` uses only entries with reduced cost ≤
/// `tolerance` (the only candidates for a tie: the reduced costs are ≥ 0 and add up). Such a
/// permutation differs from `assignment` by cycles of rows each taking the next one's column,
/// so this is a cycle search (Kahn's algorithm, O(n²)) in the graph with an arc a → b when row a
/// could take row b's column. `indegree` and `queue` are work buffers of length n.
fn has_alternative(
    n: usize,
    reduced: &[f64],
    assignment: &[usize],
    tolerance: f64,
    indegree: &mut [usize],
    queue: &mut [usize],
) -> bool {
    let arc = |a: usize, b: usize| a != b && reduced[a * n + assignment[b]] <= tolerance;
    let mut length = 0;
    for b in 0..n {
        indegree[b] = (0..n).filter(|&a| arc(a, b)).count();
        if indegree[b] == 0 {
            queue[length] = b;
            length += 1;
        }
    }
    let mut next = 0;
    while next < length {
        let a = queue[next];
        next += 1;
        for b in 0..n {
            if arc(a, b) {
                indegree[b] -= 1;
                if indegree[b] == 0 {
                    queue[length] = b;
                    length += 1;
                }
            }
        }
    }
    // Rows left over lie on (or behind) a cycle.
    length < n
}

/// The least total reduced cost of assigning rows i+1 … n−1 to the free columns other than j
/// (0 when no rows are left); leaves the rows, the columns and the assignment in the
/// workspace's `sub_*` buffers.
fn completion_cost(n: usize, i: usize, j: usize, work: &mut Workspace<'_>) -> f64 {
    let size = n - i - 1;
    if size == 0 {
        return 0.0;
    }
    for (a, row) in (i + 1..n).enumerate() {
        work.sub_rows[a] = row;
    }
    let mut b = 0;
    for column in 0..n {
        if !work.column_taken[column] && column != j {
            work.sub_columns[b] = column;
            b += 1;
        }
    }
    debug_assert_eq!(b, size);
    let (rows, columns, reduced) = (&*work.sub_rows, &*work.sub_columns, &*work.reduced);
    min_cost_assignment(
        size,
        |a, b| reduced[rows[a] * n + columns[b]],
        work.row_potential,
        work.column_potential,
        work.slack,
        work.column_owner,
        work.came_from,
        work.visited,
        work.sub_assignment,
    );
    (0..size)
        .map(|a| reduced[rows[a] * n + columns[work.sub_assignment[a]]])
        .sum()
}

/// Minimum-cost perfect assignment of `size` rows to `size` columns: writes the column of row a
/// into `assignment[a]` and leaves dual potentials u (rows) and v (columns) with
/// `cost(a, b) − u_a − v_b ≥ 0`, zero on the assignment. Shortest augmenting paths with
/// potentials (Kuhn–Munkres in the Jonker–Volgenant form), rows added in order 0, 1, …; among
/// equal slacks the smallest column index is taken, so the result depends only on the costs.
#[allow(clippy::too_many_arguments)]
fn min_cost_assignment(
    size: usize,
    cost: impl Fn(usize, usize) -> f64,
    row_potential: &mut [f64],
    column_potential: &mut [f64],
    slack: &mut [f64],
    column_owner: &mut [usize],
    came_from: &mut [usize],
    visited: &mut [bool],
    assignment: &mut [usize],
) {
    const NONE: usize = usize::MAX;
    // Column `size` is the virtual start of each augmenting path.
    let start = size;
    row_potential[..size].fill(0.0);
    column_potential[..=size].fill(0.0);
    column_owner[..=size].fill(NONE);
    for row in 0..size {
        column_owner[start] = row;
        let mut current = start;
        slack[..=size].fill(f64::INFINITY);
        visited[..=size].fill(false);
        loop {
            visited[current] = true;
            let owner = column_owner[current];
            let mut delta = f64::INFINITY;
            let mut next = NONE;
            for column in 0..size {
                if visited[column] {
                    continue;
                }
                let reduced = cost(owner, column) - row_potential[owner] - column_potential[column];
                if reduced < slack[column] {
                    slack[column] = reduced;
                    came_from[column] = current;
                }
                if next == NONE || slack[column] < delta {
                    delta = slack[column];
                    next = column;
                }
            }
            for column in 0..=size {
                if visited[column] {
                    row_potential[column_owner[column]] += delta;
                    column_potential[column] -= delta;
                } else {
                    slack[column] -= delta;
                }
            }
            current = next;
            if column_owner[current] == NONE {
                break;
            }
        }
        // Flip the path back to the start.
        while current != start {
            let previous = came_from[current];
            column_owner[current] = column_owner[previous];
            current = previous;
        }
    }
    for column in 0..size {
        assignment[column_owner[column]] = column;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every permutation of 0..n in lexicographic order.
    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for first in 0..n {
            for rest in permutations(n - 1) {
                let mut p = vec![first];
                p.extend(rest.into_iter().map(|x| if x >= first { x + 1 } else { x }));
                out.push(p);
            }
        }
        out
    }

    fn matrix_of(permutation: &[usize]) -> Vec<f64> {
        let n = permutation.len();
        let mut m = vec![0.0; n * n];
        for (i, &j) in permutation.iter().enumerate() {
            m[i * n + j] = 1.0;
        }
        m
    }

    /// The Hungarian method's own optimum, before tie-breaking.
    fn hungarian_alone(m: &[f64], n: usize) -> Vec<usize> {
        let (mut u, mut v, mut slack) = (vec![0.0; n + 1], vec![0.0; n + 1], vec![0.0; n + 1]);
        let (mut owner, mut came_from) = (vec![0; n + 1], vec![0; n + 1]);
        let mut visited = vec![false; n + 1];
        let mut assignment = vec![0; n];
        min_cost_assignment(
            n,
            |i, j| -m[i * n + j],
            &mut u,
            &mut v,
            &mut slack,
            &mut owner,
            &mut came_from,
            &mut visited,
            &mut assignment,
        );
        assignment
    }

    #[test]
    fn tie_breaking_overrides_the_hungarian_pass() {
        // [[1, 2], [1, 2]]: both routings sum to 3. The augmenting paths end at (1, 0); the
        // rule asks for the lexicographically smaller (0, 1).
        let p = [1.0, 2.0, 1.0, 2.0];
        assert_eq!(hungarian_alone(&p, 2), vec![1, 0]);
        assert_eq!(nearest_permutation(&p, 2).0, vec![0, 1]);
        let mut assigned = [0; 2];
        assign_best_permutation(&p, 2, &mut assigned);
        assert_eq!(assigned, [0, 1]);
    }

    #[test]
    fn enumeration_and_assignment_agree_on_small_matrices() {
        // Both ways of finding the nearest permutation, on ties and on generic values, n ≤ 4.
        let mut state = 7u64;
        for n in 1..=ENUMERATED_STREAMS {
            for case in 0..300 {
                let p: Vec<f64> = (0..n * n)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                        let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                        if case % 2 == 0 {
                            (u * 3.0).floor()
                        } else {
                            u - 0.3
                        }
                    })
                    .collect();
                let (mut enumerated, mut assigned) = ([0; 4], [0; 4]);
                best_permutation_into(&p, n, &mut enumerated[..n]);
                assign_best_permutation(&p, n, &mut assigned[..n]);
                assert_eq!(enumerated[..n], assigned[..n], "{p:?}");
            }
        }
    }

    #[test]
    fn the_constant_table_is_the_lexicographic_one() {
        assert_eq!(&PERMUTATIONS_4[..], lexicographic_permutations(4));
    }

    #[test]
    fn permutations_are_lexicographic() {
        let all = permutations(3);
        assert_eq!(all.len(), 6);
        assert_eq!(all[0], [0, 1, 2]);
        assert_eq!(all[1], [0, 2, 1]);
        assert_eq!(all[5], [2, 1, 0]);
    }

    #[test]
    fn identity_and_permutations_are_their_own_nearest() {
        for n in 1..=5 {
            for permutation in permutations(n) {
                let p = matrix_of(&permutation);
                let (found, distance) = nearest_permutation(&p, n);
                assert_eq!(found, permutation);
                assert_eq!(distance, 0.0);
                assert_eq!(mixing_entropy(&p, n), Some(0.0));
                let moved = permutation
                    .iter()
                    .enumerate()
                    .filter(|(i, j)| i != *j)
                    .count();
                // Each moved stream leaves a 1 off the diagonal and a 0 on it.
                let expected = (2.0 * moved as f64).sqrt();
                assert!((identity_distance(&p, n) - expected).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn averaging_matrix_ties_give_the_identity() {
        // J/n: every permutation is at ‖J/n − Π‖_F = √(n − 1) (n² entries, (n−1)/n off… worked
        // out: n entries (1 − 1/n)², n² − n entries 1/n²: n(n−1)²/n² + (n²−n)/n² = n − 1).
        for n in 2..=8 {
            let p = vec![1.0 / n as f64; n * n];
            let (found, distance) = nearest_permutation(&p, n);
            assert_eq!(found, (0..n).collect::<Vec<_>>());
            assert!(
                (distance - ((n - 1) as f64).sqrt()).abs() < 1e-14,
                "n = {n}"
            );
            assert!((identity_distance(&p, n) - ((n - 1) as f64).sqrt()).abs() < 1e-14);
            let entropy = mixing_entropy(&p, n).unwrap();
            assert!((entropy - 1.0).abs() < 1e-15, "n = {n}: {entropy}");
        }
    }

    #[test]
    fn hand_worked_three_by_three() {
        // P = [[0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.7, 0.1, 0.2]]: the cyclic routing π = (1, 2, 0)
        // has Σ P_iπ(i) = 2.1 (the identity only 0.6). ‖P‖²_F = 3·(0.04 + 0.49 + 0.01) = 1.62,
        // so ‖P − Π‖²_F = 1.62 − 4.2 + 3 = 0.42 and ‖P − I‖²_F = 1.62 − 1.2 + 3 = 3.42.
        let p = [0.2, 0.7, 0.1, 0.1, 0.2, 0.7, 0.7, 0.1, 0.2];
        let (found, distance) = nearest_permutation(&p, 3);
        assert_eq!(found, vec![1, 2, 0]);
        assert!((distance - 0.42f64.sqrt()).abs() < 1e-15);
        assert!((identity_distance(&p, 3) - 3.42f64.sqrt()).abs() < 1e-15);
        // Every row is the distribution (0.2, 0.7, 0.1):
        // H = −(0.2 ln 0.2 + 0.7 ln 0.7 + 0.1 ln 0.1) = 0.801_818_55…, over ln 3.
        let h = -(0.2f64 * 0.2f64.ln() + 0.7 * 0.7f64.ln() + 0.1 * 0.1f64.ln());
        assert!((h - 0.801_818_552_543_337_2).abs() < 1e-15);
        let entropy = mixing_entropy(&p, 3).unwrap();
        assert!((entropy - h / 3f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn a_tie_between_two_routings_takes_the_smaller() {
        // ½(I + swap of streams 0 and 1) ⊕ 1: π = (0, 1, 2) and (1, 0, 2) tie; (0, 1, 2) is
        // lexicographically smaller.
        let p = [0.5, 0.5, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 1.0];
        assert_eq!(nearest_permutation(&p, 3).0, vec![0, 1, 2]);
        // Antidiagonal and diagonal tie in [[1, 1], [1, 1]] scaled by 3: the identity wins.
        assert_eq!(nearest_permutation(&[3.0; 4], 2).0, vec![0, 1]);
        // Rows 0 and 1 both prefer columns 1 and 2 equally and row 2 needs column 0: the ties
        // are (1, 2, 0) and (2, 1, 0).
        let q = [0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0];
        assert_eq!(nearest_permutation(&q, 3).0, vec![1, 2, 0]);
    }

    #[test]
    fn ties_within_rounding_count_as_ties() {
        // J/4 with entry (0, 1) raised by 2e-16 (a few ulps of the sums, below the tolerance
        // 8·4·ε·0.25 ≈ 1.8e-15): still a tie of all 24 routings, so the identity.
        let mut p = vec![0.25; 16];
        p[1] = 0.25 + 2e-16;
        assert_eq!(nearest_permutation(&p, 4).0, vec![0, 1, 2, 3]);
        // Raised by 1e-6, far beyond it: the routings through (0, 1) win, and the smallest of
        // them is (1, 0, 2, 3).
        p[1] = 0.25 + 1e-6;
        assert_eq!(nearest_permutation(&p, 4).0, vec![1, 0, 2, 3]);
        // Entries k/10 summed in different orders differ in the last bit: the tie between
        // (0, 1, 2) and (1, 0, 2) below is still a tie.
        let q = [0.3, 0.7, 0.1, 0.7, 0.3, 0.1, 0.2, 0.2, 0.6];
        assert_eq!(nearest_permutation(&q, 3).0, vec![1, 0, 2]);
        let r = [0.7, 0.3, 0.1, 0.3, 0.7, 0.1, 0.2, 0.2, 0.6];
        assert_eq!(nearest_permutation(&r, 3).0, vec![0, 1, 2]);
    }

    #[test]
    fn brute_force_agrees_on_small_structured_matrices() {
        // Entries from {0, 1, 2}: many exact ties, all resolved like the brute force does.
        let mut state = 2_512_248_800u64;
        for n in 1..=5 {
            let all = permutations(n);
            for _ in 0..200 {
                let p: Vec<f64> = (0..n * n)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                        ((state >> 33) % 3) as f64
                    })
                    .collect();
                let value = |pi: &[usize]| {
                    pi.iter()
                        .enumerate()
                        .map(|(i, &j)| p[i * n + j])
                        .sum::<f64>()
                };
                let best = all
                    .iter()
                    .map(|pi| value(pi))
                    .fold(f64::NEG_INFINITY, f64::max);
                let expected = all.iter().find(|pi| value(pi) == best).unwrap();
                assert_eq!(&nearest_permutation(&p, n).0, expected, "{p:?}");
            }
        }
    }

    #[test]
    fn entropy_is_undefined_for_negative_entries_and_zero_rows() {
        let hc = [0.94, -0.07, 0.02, 0.89];
        assert_eq!(
            mixing_entropy_checked(&hc, 2),
            Err(EntropyUndefined::NegativeEntry)
        );
        let zero_row = [0.5, 0.5, 0.0, 0.0];
        assert_eq!(
            mixing_entropy_checked(&zero_row, 2),
            Err(EntropyUndefined::ZeroRow)
        );
        assert_eq!(
            mixing_entropy_checked(&[f64::NAN, 0.0, 0.0, 1.0], 2),
            Err(EntropyUndefined::NotFinite)
        );
        // −0.0 is not negative; a 1×1 matrix mixes nothing.
        assert_eq!(mixing_entropy(&[1.0, -0.0, 0.0, 1.0], 2), Some(0.0));
        assert_eq!(mixing_entropy(&[3.0], 1), Some(0.0));
        assert!(
            EntropyUndefined::NegativeEntry
                .to_string()
                .contains("negative")
        );
    }

    #[test]
    fn entropy_normalises_each_row_so_scale_does_not_matter() {
        // Row sums 1 and 4: rows (0.5, 0.5) → H = ln 2 (1 after normalising), (1, 3)/4 →
        // H = −(¼ ln ¼ + ¾ ln ¾) = 0.562_335_144_5…, normalised 0.811_278_124_5….
        let p = [0.5, 0.5, 1.0, 3.0];
        let second = -(0.25f64 * 0.25f64.ln() + 0.75 * 0.75f64.ln()) / 2f64.ln();
        assert!((second - 0.811_278_124_459_132_8).abs() < 1e-15);
        let expected = (1.0 + second) / 2.0;
        assert!((mixing_entropy(&p, 2).unwrap() - expected).abs() < 1e-15);
        let scaled: Vec<f64> = p.iter().map(|x| x * 1e-300).collect();
        assert!((mixing_entropy(&scaled, 2).unwrap() - expected).abs() < 1e-15);
    }

    #[test]
    fn frobenius_distance_neither_overflows_nor_underflows() {
        assert_eq!(frobenius_distance(&[3.0, 0.0], &[0.0, 4.0]), 5.0);
        let big = frobenius_distance(&[3e200, 0.0], &[0.0, 4e200]);
        assert!((big / 5e200 - 1.0).abs() < 1e-15);
        let tiny = frobenius_distance(&[3e-200, 0.0], &[0.0, 4e-200]);
        assert!((tiny / 5e-200 - 1.0).abs() < 1e-15);
        assert_eq!(
            frobenius_distance(&[f64::MAX, 0.0], &[-f64::MAX, 0.0]),
            f64::INFINITY
        );
        assert!(frobenius_distance(&[f64::NAN], &[0.0]).is_nan());
        assert_eq!(frobenius_distance(&[], &[]), 0.0);
        // Near the identity the distance keeps its relative precision (no cancellation).
        let p = [1.0 + 1e-10, 0.0, 0.0, 1.0];
        assert!((identity_distance(&p, 2) / 1e-10 - 1.0).abs() < 1e-6);
        assert!((nearest_permutation(&p, 2).1 / 1e-10 - 1.0).abs() < 1e-6);
    }

    /// 2^k·P as a scaled matrix, built by exact products with 2^s·I (k beyond f64 allowed).
    fn times_power_of_two(p: &[f64], n: usize, k: i64) -> ScaledMatrix {
        let mut out = ScaledMatrix::new(n, p.to_vec());
        let mut left = k;
        while left != 0 {
            let step = left.clamp(-500, 500);
            let mut diagonal = vec![0.0; n * n];
            (0..n).for_each(|i| diagonal[i * n + i] = 2f64.powi(step as i32));
            out = out.matmul(&ScaledMatrix::new(n, diagonal));
            left -= step;
        }
        out
    }

    #[test]
    fn scaled_distances_follow_the_exponent() {
        // P = 2^k·[[0.5, 1.5], [1, 0.25]]. Nearest permutation: the anti-diagonal (1.5 + 1 > 0.75).
        let base = [0.5, 1.5, 1.0, 0.25];
        for k in [-1100i64, -500, -61, -60, -3, 0, 1, 40, 60, 500, 1023, 1100] {
            let scaled = times_power_of_two(&base, 2, k);
            let (permutation, distance) = nearest_permutation_scaled(&scaled);
            assert_eq!(permutation, vec![1, 0]);
            // Exact in real arithmetic: with s = 2^k, ‖sB − Π‖² = s²‖B‖² − 2s(1.5 + 1) + 2 and
            // ‖sB − I‖² = s²‖B‖² − 2s(0.75) + 2, ‖B‖² = 3.5625; both ≈ √3.5625·s when s is huge.
            let s2 = |k: i64| 2f64.powi(k.clamp(-1074, 1023) as i32);
            let expected = |sum: f64| -> f64 {
                if k > 200 {
                    // √(3.5625)·2^k (the other terms are below rounding), possibly beyond f64.
                    scale_by_power_of_two(3.5625f64.sqrt(), k)
                } else if k < -200 {
                    2f64.sqrt()
                } else {
                    let s = s2(k);
                    (s * s * 3.5625 - 2.0 * s * sum + 2.0).sqrt()
                }
            };
            let tolerance = |x: f64| 1e-14 * x;
            let want = expected(2.5);
            if want.is_infinite() {
                assert_eq!(distance, f64::INFINITY, "k = {k}");
            } else {
                assert!(
                    (distance - want).abs() <= tolerance(want),
                    "k = {k}: {distance} vs {want}"
                );
            }
            let want = expected(0.75);
            let got = identity_distance_scaled(&scaled);
            let (identity, nearest) = distances_scaled(&scaled, 2);
            assert_eq!(identity.to_bits(), got.to_bits());
            if want.is_infinite() {
                assert_eq!(got, f64::INFINITY, "k = {k}");
            } else {
                assert!(
                    (got - want).abs() <= tolerance(want),
                    "k = {k}: {got} vs {want}"
                );
            }
            assert_eq!(nearest.to_bits(), distance.to_bits());
        }
    }

    #[test]
    fn larger_matrices_use_the_heap_path() {
        // n = 12 (beyond the stack buffers): a reversed routing plus noise.
        let n = 12;
        let mut p = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                p[i * n + j] = 0.01 * (((i * 7 + j * 3) % 5) as f64);
            }
            p[i * n + (n - 1 - i)] += 1.0;
        }
        let (found, _) = nearest_permutation(&p, n);
        assert_eq!(found, (0..n).rev().collect::<Vec<_>>());
    }
}
