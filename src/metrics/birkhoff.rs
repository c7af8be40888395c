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
//! [`birkhoff_projection`] maximises g by a semismooth Newton method (generalised Hessian: the
//! bipartite graph of the positive entries, each connected component grounded at one column, with
//! an Armijo line search). g is piecewise quadratic, so once the support of X* is found a full
//! step lands on the optimum: 4×4 inputs take a few iterations. The stopping rule asks for
//! marginal errors at rounding level, `64·n·ε·max(1, max|M|)`. Should Newton fail to get there in
//! [`MAX_NEWTON_ITERATIONS`], [`dykstra_projection`] (alternating projections with Dykstra's
//! correction, primer §2.5) takes over; the result says which method answered.

/// Newton iterations before falling back to Dykstra.
pub const MAX_NEWTON_ITERATIONS: u32 = 100;

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
    /// Newton (or Dykstra) iterations used.
    pub iterations: u32,
    /// Which method answered.
    pub method: ProjectionMethod,
}

/// dist_B(M) for the finite row-major n×n matrix `m` (see the module docs).
pub fn birkhoff_distance(m: &[f64], n: usize) -> f64 {
    birkhoff_projection(m, n).distance
}

/// The projection of `m` onto B_n with its multipliers (see the module docs).
pub fn birkhoff_projection(m: &[f64], n: usize) -> BirkhoffProjection {
    let scale = m.iter().fold(1.0f64, |s, x| s.max(x.abs()));
    let tolerance = 64.0 * n as f64 * f64::EPSILON * scale;
    match newton(m, n, tolerance, scale) {
        Some(result) => result,
        None => dykstra_projection(m, n, tolerance, 2_000_000),
    }
}

struct Workspace {
    x: Vec<f64>,
    gradient: Vec<f64>,
    hessian: Vec<f64>,
    step: Vec<f64>,
    /// Union-find parent of each node (rows 0..n, columns n..2n) of the support graph.
    component: Vec<usize>,
    /// Position of each node among the Newton unknowns (usize::MAX: not an unknown).
    unknown: Vec<usize>,
}

fn find(parent: &mut [usize], mut node: usize) -> usize {
    while parent[node] != node {
        parent[node] = parent[parent[node]];
        node = parent[node];
    }
    node
}

/// The regularised semismooth Newton direction for f, into `w.step` (u steps, then v steps):
/// `(H + μI)·d = −∇f` with `μ = min(1, residual)·1e-2` (Levenberg–Marquardt: always a descent
/// direction, and the regularisation vanishes quadratically near the optimum).
///
/// The generalised Hessian H is the signless Laplacian of the bipartite graph of positive
/// entries: singular once per connected component (u + c, v − c leaves X unchanged). A component
/// with as many rows as columns is grounded at one column (that column's step is 0): there the
/// null direction is a pure gauge. In an unbalanced component (including a lone row or column)
/// the gradient has a part along the null direction — the support must change — and the
/// regularisation turns it into a long step that the line search shortens.
fn newton_direction(w: &mut Workspace, n: usize, residual: f64) -> bool {
    let mu = residual.min(1.0) * 1e-2;
    let dim = 2 * n;
    for (node, parent) in w.component.iter_mut().enumerate() {
        *parent = node;
    }
    let mut degree = vec![0usize; dim];
    for i in 0..n {
        for j in 0..n {
            if w.x[i * n + j] > 0.0 {
                degree[i] += 1;
                degree[n + j] += 1;
                let (a, b) = (find(&mut w.component, i), find(&mut w.component, n + j));
                if a != b {
                    w.component[a] = b;
                }
            }
        }
    }
    // Ground one column per component that has an edge; number the other nodes.
    let mut grounded = vec![false; dim];
    let mut unknowns = 0;
    for node in 0..dim {
        w.unknown[node] = usize::MAX;
        w.step[node] = 0.0;
    }
    // Rows minus columns per component: zero when the component can be doubly stochastic on
    // its own, and only then is its null direction a pure gauge (∇f ⊥ it).
    let mut balance = vec![0i64; dim];
    for node in 0..dim {
        let root = find(&mut w.component, node);
        balance[root] += if node < n { 1 } else { -1 };
    }
    for node in n..dim {
        let root = find(&mut w.component, node);
        if degree[node] > 0 && balance[root] == 0 && !grounded[root] {
            grounded[root] = true;
            w.unknown[node] = usize::MAX - 1; // the ground: not an unknown
        }
    }
    for node in 0..dim {
        if w.unknown[node] == usize::MAX {
            w.unknown[node] = unknowns;
            unknowns += 1;
        }
    }
    if unknowns == 0 {
        return true;
    }
    let size = unknowns;
    let hessian = &mut w.hessian[..size * size];
    hessian.iter_mut().for_each(|h| *h = 0.0);
    let mut rhs = vec![0.0; size];
    for node in 0..dim {
        let k = w.unknown[node];
        if k < size {
            hessian[k * size + k] = degree[node] as f64 + mu;
            rhs[k] = -w.gradient[node];
        }
    }
    for i in 0..n {
        for j in 0..n {
            if w.x[i * n + j] > 0.0 {
                let (a, b) = (w.unknown[i], w.unknown[n + j]);
                if a < size && b < size {
                    hessian[a * size + b] += 1.0;
                    hessian[b * size + a] += 1.0;
                }
            }
        }
    }
    if !cholesky_solve(hessian, &mut rhs, size) {
        return false;
    }
    for node in 0..dim {
        let k = w.unknown[node];
        if k < size {
            w.step[node] = rhs[k];
        }
    }
    true
}

/// f(u, v) = −g(u, v) + const = ½ Σ max(0, a_ij)² + Σu + Σv, with a_ij = M_ij − u_i − v_j.
fn objective(m: &[f64], n: usize, u: &[f64], v: &[f64]) -> f64 {
    let mut total = u.iter().sum::<f64>() + v.iter().sum::<f64>();
    for i in 0..n {
        for j in 0..n {
            let a = m[i * n + j] - u[i] - v[j];
            if a > 0.0 {
                total += 0.5 * a * a;
            }
        }
    }
    total
}

/// X(u, v) and the gradient of f: (1 − row sums, 1 − column sums). Returns max |gradient|.
fn primal_and_gradient(m: &[f64], n: usize, u: &[f64], v: &[f64], w: &mut Workspace) -> f64 {
    w.gradient.iter_mut().for_each(|g| *g = 1.0);
    for i in 0..n {
        for j in 0..n {
            let a = (m[i * n + j] - u[i] - v[j]).max(0.0);
            w.x[i * n + j] = a;
            w.gradient[i] -= a;
            w.gradient[n + j] -= a;
        }
    }
    w.gradient.iter().fold(0.0f64, |s, g| s.max(g.abs()))
}

/// max |marginal − 1| of X(u, v), without storing X.
fn marginal_residual(m: &[f64], n: usize, u: &[f64], v: &[f64]) -> f64 {
    let mut worst = 0.0f64;
    let mut columns = vec![0.0f64; n];
    for i in 0..n {
        let mut row = 0.0;
        for j in 0..n {
            let a = (m[i * n + j] - u[i] - v[j]).max(0.0);
            row += a;
            columns[j] += a;
        }
        worst = worst.max((row - 1.0).abs());
    }
    columns[..n]
        .iter()
        .fold(worst, |w, c| w.max((c - 1.0).abs()))
}

fn newton(m: &[f64], n: usize, tolerance: f64, scale: f64) -> Option<BirkhoffProjection> {
    let nf = n as f64;
    let rows: Vec<f64> = (0..n)
        .map(|i| m[i * n..(i + 1) * n].iter().sum::<f64>() - 1.0)
        .collect();
    let cols: Vec<f64> = (0..n)
        .map(|j| (0..n).map(|i| m[i * n + j]).sum::<f64>() - 1.0)
        .collect();
    let total: f64 = rows.iter().sum::<f64>();
    // Start at the multipliers of the affine projection P_A(M): optimal when it is non-negative.
    let mut u: Vec<f64> = rows
        .iter()
        .map(|r| r / nf - total / (2.0 * nf * nf))
        .collect();
    let mut v: Vec<f64> = cols
        .iter()
        .map(|c| c / nf - total / (2.0 * nf * nf))
        .collect();
    let dim = 2 * n;
    let mut w = Workspace {
        x: vec![0.0; n * n],
        gradient: vec![0.0; dim],
        hessian: vec![0.0; dim * dim],
        step: vec![0.0; dim],
        component: vec![0; dim],
        unknown: vec![usize::MAX; dim],
    };
    let mut trial_u = vec![0.0; n];
    let mut trial_v = vec![0.0; n];
    let mut value = objective(m, n, &u, &v);
    // After reaching the tolerance, up to two more full steps polish the answer down to the
    // rounding floor; the best iterate is returned.
    let floor = 4.0 * n as f64 * f64::EPSILON * scale;
    let mut best: Option<(f64, Vec<f64>, Vec<f64>, Vec<f64>, u32)> = None;
    let mut polish_steps = 0;
    for iteration in 0..MAX_NEWTON_ITERATIONS {
        let residual = primal_and_gradient(m, n, &u, &v, &mut w);
        if residual <= tolerance {
            if best.as_ref().is_none_or(|b| residual < b.0) {
                best = Some((residual, u.clone(), v.clone(), w.x.clone(), iteration));
            }
            if residual <= floor || polish_steps == 2 {
                break;
            }
            polish_steps += 1;
        }
        if !newton_direction(&mut w, n, residual) {
            break;
        }
        // Armijo backtracking on f along the Newton direction. Near the optimum the decrease of
        // f falls below its rounding, so a step that halves the marginal error is taken too.
        let slope: f64 = (0..dim).map(|k| w.gradient[k] * w.step[k]).sum();
        if slope >= 0.0 {
            break;
        }
        // Within this residual the support is settled and full steps converge quadratically.
        let local = residual <= 1e-6 * scale;
        let mut t = 1.0;
        loop {
            for i in 0..n {
                trial_u[i] = u[i] + t * w.step[i];
            }
            for j in 0..n {
                trial_v[j] = v[j] + t * w.step[n + j];
            }
            let trial = objective(m, n, &trial_u, &trial_v);
            if trial <= value + 1e-4 * t * slope
                || t < 1e-12
                || (local && marginal_residual(m, n, &trial_u, &trial_v) <= 0.5 * residual)
            {
                value = trial;
                break;
            }
            t *= 0.5;
        }
        std::mem::swap(&mut u, &mut trial_u);
        std::mem::swap(&mut v, &mut trial_v);
    }
    let (residual, u, v, x, iterations) = best?;
    Some(finish(
        m,
        u,
        v,
        x,
        residual,
        iterations,
        ProjectionMethod::Newton,
    ))
}

fn finish(
    m: &[f64],
    u: Vec<f64>,
    v: Vec<f64>,
    x: Vec<f64>,
    marginal_error: f64,
    iterations: u32,
    method: ProjectionMethod,
) -> BirkhoffProjection {
    let distance = frobenius_distance(m, &x);
    BirkhoffProjection {
        distance,
        projection: x,
        row_multipliers: u,
        column_multipliers: v,
        marginal_error,
        iterations,
        method,
    }
}

/// ‖a − b‖_F, scaled against overflow.
fn frobenius_distance(a: &[f64], b: &[f64]) -> f64 {
    let scale = a
        .iter()
        .zip(b)
        .fold(0.0f64, |s, (x, y)| s.max((x - y).abs()));
    if scale == 0.0 || !scale.is_finite() {
        return scale;
    }
    scale
        * a.iter()
            .zip(b)
            .map(|(x, y)| ((x - y) / scale).powi(2))
            .sum::<f64>()
            .sqrt()
}

/// Solves A x = b in place for symmetric positive definite A (dim×dim, row-major); false if a
/// pivot is not positive.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], dim: usize) -> bool {
    for j in 0..dim {
        let mut d = a[j * dim + j];
        for k in 0..j {
            d -= a[j * dim + k] * a[j * dim + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * dim + j] = d;
        for i in (j + 1)..dim {
            let mut s = a[i * dim + j];
            for k in 0..j {
                s -= a[i * dim + k] * a[j * dim + k];
            }
            a[i * dim + j] = s / d;
        }
    }
    for i in 0..dim {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * dim + k] * b[k];
        }
        b[i] = s / a[i * dim + i];
    }
    for i in (0..dim).rev() {
        let mut s = b[i];
        for k in (i + 1)..dim {
            s -= a[k * dim + i] * b[k];
        }
        b[i] = s / a[i * dim + i];
    }
    true
}

/// Dykstra's alternating projections between the affine set A = {X1 = 1, Xᵀ1 = 1} and the
/// orthant K = {X ≥ 0} (primer §2.5), stopped when ‖X − Y‖_F and X's marginal errors are both
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
    let mut iterations = 0;
    let mut marginal_error = f64::INFINITY;
    while iterations < max_iterations {
        iterations += 1;
        // Y = P_A(X).
        let rows: Vec<f64> = (0..n)
            .map(|i| x[i * n..(i + 1) * n].iter().sum::<f64>() - 1.0)
            .collect();
        let cols: Vec<f64> = (0..n)
            .map(|j| (0..n).map(|i| x[i * n + j]).sum::<f64>() - 1.0)
            .collect();
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
        // The primer's table: 16.69 for HC H1 (two significant digits of printed input).
        assert!(
            (newton.distance - 16.69).abs() < 0.01,
            "{}",
            newton.distance
        );
    }
}
