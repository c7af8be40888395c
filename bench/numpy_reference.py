#!/usr/bin/env python3
"""numpy reference for `mhc-analyze gain`: the same statistics, vectorised, timed.

Setup (bench/compare.sh does this for you):

    python3 -m venv bench/.venv && bench/.venv/bin/pip install numpy scipy quadprog

Run:

    bench/.venv/bin/python bench/numpy_reference.py --seeds 1000 --layers 64 --streams 4 \\
        --logits-out /tmp/logits.npy --csv-out /tmp/ref.csv

Versions used when writing it: Python 3.11.7, numpy 2.4.6, quadprog 0.1.14 (only for --verify; scipy 1.17.1
is installed by the setup line but not imported).

What it does:
  1. Draws logits = I + 0.3·G, G i.i.d. N(0,1) from numpy.random.default_rng(--seed), shape
     [S, L, T, n, n] (S draws, L layers, T = --tokens tokens), and saves them as float64 .npy (not timed).
  2. Timed with time.perf_counter: for every draw, method ∈ {hc, mhc} (HC: H_res = logits; mHC: the paper's
     Sinkhorn, exp(logits − max) then 20 × (columns, then rows)), composite ∈ {single, prefix, suffix}
     (prefix(l) = H_l ⋯ H_1, suffix(l) = H_L ⋯ H_l, layers 1-based), every metric of every matrix; the
     mean over tokens per draw; then mean, median, min, max, p05, p95 over the S draws (numpy's default
     linear-interpolation quantiles).
  3. Writes --csv-out with columns method,composite,layer,metric,stat,value (values as repr(float)), not
     timed, and prints `peak_rss_mib <MiB>` (whole process) and `compute_seconds <s>` (the last line).

Metrics (P n×n): amax_forward = max_i |Σ_j P_ij|, amax_backward = max_j |Σ_i P_ij|, inf_norm, one_norm,
spectral_norm = σ₁, sigma2 = σ₂ (np.linalg.svd, batched), distance_to_average = ‖P − J/n‖₂ (a second
batched SVD), birkhoff_distance (exact, below), row_sum_min/max, col_sum_min/max, row_sum_error =
max_i |r_i − 1|, col_sum_error = max_j |c_j − 1|, negative_mass = Σ max(−P_ij, 0).

Birkhoff distance, min ‖X − P‖_F over doubly stochastic X: a batched semismooth Newton method on the dual.
X(u, v) = max(0, P − u1ᵀ − 1vᵀ) minimises the Lagrangian; the dual objective
φ(u, v) = ½‖X(u, v)‖²_F + Σu + Σv is convex, piecewise quadratic, with gradient (1 − X1, 1 − Xᵀ1). Each step
solves (H + εI) d = −∇φ with the generalised Hessian H = [[diag(S1), S], [Sᵀ, diag(Sᵀ1)]], S = [X > 0],
ε = 1e-10 (H is singular along (1, −1)), and moves by an exact line search (sorted breakpoints of the
piecewise-linear φ'). It starts from the affine projection (exact when that is already ≥ 0) and stops when
the marginal errors of X are below 32·n·eps·max(1, max|P|); once the support is right the step is exact (HC
4×4 stacks: 0 to 14 steps, about 3 on average; mHC matrices are interior and need none). Before solving, the
gradient's rounding noise along the Hessian's null vectors (one per balanced connected component of the
support) is removed, which (H + εI)⁻¹ would otherwise amplify into useless steps. Matrices that have not
converged after 100 steps (none in our runs) go to quadprog (required then). --verify K checks K random
matrices per method (not timed) against quadprog's exact QP and prints the largest differences.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np

METRICS = (
    "amax_forward",
    "amax_backward",
    "inf_norm",
    "one_norm",
    "spectral_norm",
    "sigma2",
    "distance_to_average",
    "birkhoff_distance",
    "row_sum_min",
    "row_sum_max",
    "col_sum_min",
    "col_sum_max",
    "row_sum_error",
    "col_sum_error",
    "negative_mass",
)
COMPOSITES = ("single", "prefix", "suffix")
METHODS = ("hc", "mhc")
STATS = ("mean", "median", "min", "max", "p05", "p95")
HC_STD = 0.3
SINKHORN_ITERS = 20


# ----------------------------------------------------------------------------------------------------------
# Stacks


def sinkhorn(logits: np.ndarray) -> np.ndarray:
    """Paper's Sinkhorn on the last two axes: exp(x − max), then 20 × (columns, then rows)."""
    m = np.exp(logits - logits.max(axis=(-2, -1), keepdims=True))
    for _ in range(SINKHORN_ITERS):
        m /= m.sum(axis=-2, keepdims=True)
        m /= m.sum(axis=-1, keepdims=True)
    return m


def composites(h: np.ndarray) -> np.ndarray:
    """h [s, L, T, n, n] → [3, s, L, T, n, n]: single, prefix (H_l ⋯ H_1), suffix (H_L ⋯ H_l)."""
    n_layers = h.shape[1]
    out = np.empty((3,) + h.shape)
    out[0] = h
    out[1, :, 0] = h[:, 0]
    for l in range(1, n_layers):
        np.matmul(h[:, l], out[1, :, l - 1], out=out[1, :, l])
    out[2, :, -1] = h[:, -1]
    for l in range(n_layers - 2, -1, -1):
        np.matmul(out[2, :, l + 1], h[:, l], out=out[2, :, l])
    return out


# ----------------------------------------------------------------------------------------------------------
# Exact Birkhoff distance, batched


def _exact_line_search(z: np.ndarray, delta: np.ndarray, c0: np.ndarray) -> np.ndarray:
    """argmin over t ≥ 0 of ½Σ max(0, z − tδ)² + t·c0, per row of z, δ [B, N] (c0 [B], φ'(0) < 0)."""
    active0 = (z > 0) | ((z == 0) & (delta < 0))
    dz, d2 = delta * z, delta * delta
    with np.errstate(divide="ignore", invalid="ignore"):
        tb = z / delta
    # Active entries with δ > 0 leave the support at tb; inactive ones with δ < 0 join it at tb.
    leaves = active0 & (delta > 0)
    joins = ~active0 & (delta < 0)
    toggles = (leaves | joins) & (tb > 0)
    tb = np.where(toggles, tb, np.inf)
    sign = np.where(leaves, -1.0, 1.0)
    order = np.argsort(tb, axis=1)
    tb_s = np.take_along_axis(tb, order, axis=1)
    a = (active0 * d2).sum(1, keepdims=True) + np.cumsum(np.take_along_axis(sign * d2 * toggles, order, 1), 1)
    b = (active0 * dz).sum(1, keepdims=True) + np.cumsum(np.take_along_axis(sign * dz * toggles, order, 1), 1)
    a = np.concatenate([(active0 * d2).sum(1, keepdims=True), a], axis=1)  # interval k: [tb_s[k−1], tb_s[k]]
    b = np.concatenate([(active0 * dz).sum(1, keepdims=True), b], axis=1)
    start = np.concatenate([np.zeros((z.shape[0], 1)), tb_s], axis=1)
    end = np.concatenate([tb_s, np.full((z.shape[0], 1), np.inf)], axis=1)
    with np.errstate(invalid="ignore"):
        slope_end = c0[:, None] - b + end * a  # φ'(t) = c0 − Σ_active δz + t Σ_active δ²
    slope_end[:, -1] = np.where(a[:, -1] > 0, np.inf, slope_end[:, -1])
    ok = (slope_end >= 0) & (start < np.inf)
    ok[:, -1] = True
    k = ok.argmax(axis=1)
    rows = np.arange(z.shape[0])
    ak, bk = a[rows, k], b[rows, k]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(ak > 0, (bk - c0) / ak, start[rows, k])
    t = np.clip(t, start[rows, k], end[rows, k])
    return np.where(np.isfinite(t), t, 0.0)  # no finite minimiser only through rounding: stay (→ fallback)


def _balanced_null_part(supp: np.ndarray, g: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """The part of g along H's null vectors that are rounding noise.

    H's null space is spanned by one vector per connected component K of the support's bipartite graph:
    e_K = +1 on K's rows, −1 on K's columns (moving u up and v down on K leaves X unchanged on the support).
    In exact arithmetic g·e_K = |rows of K| − |columns of K|: an integer. For a balanced component it is 0 and
    what the rounded g holds is noise, which (H + εI)⁻¹ would amplify by 1/ε; it is returned to be removed. An
    unbalanced component (e.g. an empty row) keeps its component: that long step is what the line search
    needs to bring new entries into the support."""
    bsz, n = supp.shape[0], supp.shape[1]
    adj = np.zeros((bsz, 2 * n, 2 * n))
    adj[:, :n, n:] = supp
    adj[:, n:, :n] = supp.transpose(0, 2, 1)
    reach = adj + np.eye(2 * n)
    for _ in range(int(np.ceil(np.log2(2 * n)))):  # paths of length ≤ 2n: the connected components
        reach = np.minimum(reach @ reach, 1.0)
    size = reach.sum(2)
    balanced = (reach @ sign) == 0  # exact: sums of ±1
    coef = (reach @ (sign * g)[:, :, None])[:, :, 0] / size
    return np.where(balanced, sign * coef, 0.0)


def birkhoff_distance(m: np.ndarray, max_steps: int = 100) -> tuple[np.ndarray, int]:
    """Exact Frobenius distance of each m[b] (n×n) to the Birkhoff polytope; returns (distance, fallbacks)."""
    bsz, n, _ = m.shape
    scale = np.maximum(1.0, np.abs(m).max(axis=(1, 2)))
    tol = 32 * n * np.finfo(float).eps * scale
    # Start: the affine projection P_A(m) = m − u1ᵀ − 1vᵀ.
    r = m.sum(2) - 1.0
    c = m.sum(1) - 1.0
    s = (m.sum((1, 2)) - n)[:, None] / (2 * n * n)
    u = r / n - s
    v = c / n - s
    x = np.empty_like(m)
    todo = np.arange(bsz)
    reg = 1e-10 * np.eye(2 * n)
    sign = np.concatenate([np.ones(n), -np.ones(n)])
    for _ in range(max_steps + 1):
        mt, ut, vt = m[todo], u[todo], v[todo]
        z = mt - ut[:, :, None] - vt[:, None, :]
        xt = np.maximum(z, 0.0)
        gu = 1.0 - xt.sum(2)
        gv = 1.0 - xt.sum(1)
        err = np.maximum(np.abs(gu).max(1), np.abs(gv).max(1))
        done = err <= tol[todo]
        x[todo[done]] = xt[done]
        keep = ~done
        todo, z, ut, vt, gu, gv = todo[keep], z[keep], ut[keep], vt[keep], gu[keep], gv[keep]
        if todo.size == 0:
            break
        supp = (z > 0).astype(float)
        h = np.zeros((todo.size, 2 * n, 2 * n))
        h[:, :n, n:] = supp
        h[:, n:, :n] = supp.transpose(0, 2, 1)
        idx = np.arange(n)
        h[:, idx, idx] = supp.sum(2)
        h[:, n + idx, n + idx] = supp.sum(1)
        g = np.concatenate([gu, gv], axis=1)
        near = err[keep] <= 1e-6 * scale[todo]  # the noise only matters once g is small
        if near.any():
            g[near] -= _balanced_null_part(supp[near], g[near], sign)
        d = np.linalg.solve(h + reg, -g[:, :, None])[:, :, 0]
        du, dv = d[:, :n], d[:, n:]
        delta = (du[:, :, None] + dv[:, None, :]).reshape(todo.size, n * n)
        t = _exact_line_search(z.reshape(todo.size, n * n), delta, du.sum(1) + dv.sum(1))
        u[todo] = ut + t[:, None] * du
        v[todo] = vt + t[:, None] * dv
    fallbacks = int(todo.size)
    if fallbacks:
        x[todo] = [quadprog_projection(mm) for mm in m[todo]]
    return np.linalg.norm((x - m).reshape(bsz, -1), axis=1), fallbacks


def quadprog_projection(m: np.ndarray) -> np.ndarray:
    """Exact projection with quadprog (Goldfarb–Idnani), for verification and as a fallback."""
    import quadprog  # noqa: PLC0415  (optional dependency)

    n = m.shape[0]
    nn = n * n
    c = np.zeros((nn, 2 * n - 1 + nn))
    for i in range(n):
        c[i * n : (i + 1) * n, i] = 1.0
    for j in range(n - 1):
        c[j::n, n + j] = 1.0
    c[:, 2 * n - 1 :] = np.eye(nn)
    b = np.concatenate([np.ones(2 * n - 1), np.zeros(nn)])
    return quadprog.solve_qp(np.eye(nn), m.ravel().copy(), c, b, 2 * n - 1)[0].reshape(n, n)


# ----------------------------------------------------------------------------------------------------------
# Metrics


def metrics(p: np.ndarray) -> tuple[dict[str, np.ndarray], int]:
    """All metrics of p [..., n, n], each shaped p.shape[:-2]; plus the number of quadprog fallbacks."""
    n = p.shape[-1]
    flat = p.reshape(-1, n, n)
    r, c = flat.sum(2), flat.sum(1)
    a = np.abs(flat)
    sv = np.linalg.svd(flat, compute_uv=False)
    dist, fallbacks = birkhoff_distance(flat)
    out = {
        "amax_forward": np.abs(r).max(1),
        "amax_backward": np.abs(c).max(1),
        "inf_norm": a.sum(2).max(1),
        "one_norm": a.sum(1).max(1),
        "spectral_norm": sv[:, 0],
        "sigma2": sv[:, 1],
        "distance_to_average": np.linalg.svd(flat - 1.0 / n, compute_uv=False)[:, 0],
        "birkhoff_distance": dist,
        "row_sum_min": r.min(1),
        "row_sum_max": r.max(1),
        "col_sum_min": c.min(1),
        "col_sum_max": c.max(1),
        "row_sum_error": np.abs(r - 1).max(1),
        "col_sum_error": np.abs(c - 1).max(1),
        "negative_mass": np.maximum(-flat, 0.0).sum((1, 2)),
    }
    return {k: val.reshape(p.shape[:-2]) for k, val in out.items()}, fallbacks


def compute(logits: np.ndarray, chunk_matrices: int) -> tuple[dict, int]:
    """Per-draw, token-averaged metrics: {(method, composite, metric): [S, L]}; plus quadprog fallbacks."""
    s_total, n_layers, n_tokens = logits.shape[:3]
    per_chunk = max(1, chunk_matrices // (n_layers * n_tokens))
    res = {(m, c, k): np.empty((s_total, n_layers)) for m in METHODS for c in COMPOSITES for k in METRICS}
    fallbacks = 0
    for lo in range(0, s_total, per_chunk):
        hi = min(s_total, lo + per_chunk)
        hc = logits[lo:hi]
        for method, h in (("hc", hc), ("mhc", sinkhorn(hc.copy()))):
            mets, fb = metrics(composites(h))  # each [3, s, L, T]
            fallbacks += fb
            for name, val in mets.items():
                tok_mean = val.mean(axis=3)
                for ci, comp in enumerate(COMPOSITES):
                    res[(method, comp, name)][lo:hi] = tok_mean[ci]
    return res, fallbacks


def stats(per_draw: dict) -> dict:
    out = {}
    for key, arr in per_draw.items():
        p05, med, p95 = np.percentile(arr, [5, 50, 95], axis=0)
        out[key] = {"mean": arr.mean(0), "median": med, "min": arr.min(0), "max": arr.max(0), "p05": p05,
                    "p95": p95}
    return out


def write_csv(path: str, st: dict, n_layers: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("method,composite,layer,metric,stat,value\n")
        for method in METHODS:
            for comp in COMPOSITES:
                for layer in range(n_layers):
                    for name in METRICS:
                        block = st[(method, comp, name)]
                        for stat in STATS:
                            f.write(f"{method},{comp},{layer + 1},{name},{stat},{float(block[stat][layer])!r}\n")


def verify(logits: np.ndarray, k: int, seed: int) -> None:
    """Compare the Newton Birkhoff distance with quadprog on k random matrices per method (all composites)."""
    rng = np.random.default_rng(seed + 1)
    for method in METHODS:
        draws = rng.choice(logits.shape[0], size=min(logits.shape[0], max(1, k // 64)), replace=False)
        h = logits[draws] if method == "hc" else sinkhorn(logits[draws].copy())
        comps = composites(h).reshape(-1, h.shape[-1], h.shape[-1])
        pick = comps[rng.choice(comps.shape[0], size=min(k, comps.shape[0]), replace=False)]
        newton, _ = birkhoff_distance(pick)
        exact = np.array([np.linalg.norm(quadprog_projection(mm) - mm) for mm in pick])
        diff = np.abs(newton - exact)
        big = exact > 1e-9
        rel = f"{(diff[big] / exact[big]).max():.3e}" if big.any() else "n/a"
        print(f"verify {method}: {len(pick)} matrices (distances {exact.min():.3g} .. {exact.max():.3g}): "
              f"max |newton − quadprog| = {diff.max():.3e}, max relative (distance > 1e-9) = {rel}",
              file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description="numpy reference for `mhc-analyze gain`, timed.")
    ap.add_argument("--seeds", type=int, required=True, help="number of independent draws S")
    ap.add_argument("--layers", type=int, default=64)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0, help="numpy default_rng seed for the logits")
    ap.add_argument("--logits-out", required=True, help=".npy file to write, float64 [S, L, T, n, n]")
    ap.add_argument("--csv-out", required=True)
    ap.add_argument("--chunk-matrices", type=int, default=1 << 13,
                    help="matrices per method processed at once (bounds memory; default 8192)")
    ap.add_argument("--verify", type=int, default=0, metavar="K",
                    help="check K Birkhoff distances per method against quadprog (not timed)")
    args = ap.parse_args()
    if min(args.seeds, args.layers, args.tokens) < 1 or args.streams < 2:
        ap.error("need --seeds, --layers, --tokens ≥ 1 and --streams ≥ 2")

    rng = np.random.default_rng(args.seed)
    shape = (args.seeds, args.layers, args.tokens, args.streams, args.streams)
    logits = np.eye(args.streams) + HC_STD * rng.standard_normal(shape)
    np.save(args.logits_out, logits)

    t0 = time.perf_counter()
    per_draw, fallbacks = compute(logits, args.chunk_matrices)
    st = stats(per_draw)
    seconds = time.perf_counter() - t0

    write_csv(args.csv_out, st, args.layers)
    sys.stdout.flush()
    if args.verify:
        verify(logits, args.verify, args.seed)
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":
        rss_kb //= 1024
    n_mat = 2 * 3 * args.seeds * args.layers * args.tokens
    print(f"numpy {np.__version__}: S={args.seeds} L={args.layers} T={args.tokens} n={args.streams}: "
          f"{n_mat} matrices, quadprog fallbacks {fallbacks}, peak RSS {rss_kb / 1024:.0f} MiB", file=sys.stderr)
    print(f"peak_rss_mib {rss_kb / 1024:.0f}")
    print(f"compute_seconds {seconds:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
