#!/usr/bin/env python3
"""Reference values for `mhc-analyze audit CHECKPOINT…` (a training run), computed independently of the crate.

    /work/venv/bin/python tests/data/make_series_reference.py           # (re)write the JSON below
    /work/venv/bin/python tests/data/make_series_reference.py --check   # recompute, compare with the file

Reads the ten checkpoints of experiments/data/training/ (lucidrains `hyper-connections` 0.4.11 HC and mHC toy
models, 8 layers, n = 4, steps 0, 50, 100, 200, 400; see the README there for how they were made) with
`safetensors.numpy` and writes tests/data/reference/series_training.json.

Every number is computed twice: in float64 numpy, and from the same float32 parameters (exactly converted) in
mpmath at 50 significant digits. The script stops unless the two agree (to 1e-12 relative, 1e-13 absolute), and
writes the mpmath values, each rounded once to the nearest float64. numpy's results depend in their last bits on
the machine (its SIMD kernels for exp and OpenBLAS/LAPACK's kernels for products and the SVD are chosen by CPU: two
machines differed in 47 of the file's numbers, by up to 3e-14 relative); mpmath's are pure
integer arithmetic, so the file regenerates byte for byte anywhere.

Versions used for the committed file: Python 3.11.7, numpy 2.4.6, safetensors 0.8.0 (reading only), mpmath 1.4.1.

For each run (hc, mhc) and each checkpoint, sorted by the `step` in the file's metadata:
  - the static (input-independent) H_res of each layer, rebuilt as the package builds it from
    `layers.{i}.static_alpha[:, 1:]`, stored alpha[s_in, t_out]: HC uses it as is; mHC applies the package's
    `sinkhorn_knopps` (subtract the max over dim -2, exp, then 20 x (normalise dim -2, then dim -1)); both
    transposed to rows = output streams (x_{l+1} = H_l x_l);
  - per layer: identity_distance ||H_l - I||_F; permutation_distance min over the 24 permutation matrices P of
    ||H_l - P||_F (brute force); init_distance ||H_l - H_l(init)||_F where the package initialises
    static_alpha[:, 1:] to the identity (`torch.eye` in hyper_connections.py and
    manifold_constrained_hyper_connections.py), mapped like the trained logits; change_from_first
    max_ij |H_l - H_l(first checkpoint)|;
  - the whole model H_L ... H_1: amax_forward = max_i |row sum|, amax_backward = max_j |column sum|, sigma2 =
    second singular value (numpy.linalg.svd; mpmath.svd_r).
Per run: largest_change (per layer, the maximum of change_from_first over checkpoints) and the unmoved layers
(numbered from 1, change never above the tolerance) at several tolerances.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys

import mpmath
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINING = os.path.join(HERE, "..", "..", "experiments", "data", "training")
OUTPUT = os.path.join(HERE, "reference", "series_training.json")
RUNS = ("hc", "mhc")
TOLERANCES = (1e-4, 5e-3, 0.03, 0.06, 0.2)
SINKHORN_ITERATIONS = 20
mpmath.mp.dps = 50


# --- float64 numpy ---------------------------------------------------------------------------------------------


def package_map(alpha: np.ndarray, kind: str) -> np.ndarray:
    """The package's H_res of residual logits alpha[s_in, t_out], returned with rows = output streams."""
    if kind == "mhc":
        alpha = np.exp(alpha - alpha.max(axis=-2, keepdims=True))
        for _ in range(SINKHORN_ITERATIONS):
            alpha = alpha / alpha.sum(axis=-2, keepdims=True)
            alpha = alpha / alpha.sum(axis=-1, keepdims=True)
    return alpha.T


def permutation_distance(h: np.ndarray) -> float:
    n = h.shape[0]
    return min(
        float(np.linalg.norm(h - np.eye(n)[list(p)])) for p in itertools.permutations(range(n))
    )


def numpy_checkpoint(logits: list[np.ndarray], first: list[np.ndarray], kind: str) -> dict:
    hres = [package_map(a, kind) for a in logits]
    first = [package_map(a, kind) for a in first]
    n = hres[0].shape[0]
    initial = package_map(np.eye(n), kind)
    whole = np.eye(n)
    for h in hres:
        whole = h @ whole
    return {
        "identity_distance": [float(np.linalg.norm(h - np.eye(n))) for h in hres],
        "permutation_distance": [permutation_distance(h) for h in hres],
        "init_distance": [float(np.linalg.norm(h - initial)) for h in hres],
        "change_from_first": [float(np.abs(h - f).max()) for h, f in zip(hres, first)],
        "whole_model": {
            "amax_forward": float(np.abs(whole.sum(axis=1)).max()),
            "amax_backward": float(np.abs(whole.sum(axis=0)).max()),
            "sigma2": float(np.linalg.svd(whole, compute_uv=False)[1]),
        },
    }


# --- mpmath, 50 digits -----------------------------------------------------------------------------------------


def mp_map(alpha: np.ndarray, kind: str) -> mpmath.matrix:
    """`package_map` in mpmath: alpha (float64 holding float32 values, converted exactly)."""
    n = alpha.shape[0]
    a = mpmath.matrix([[mpmath.mpf(float(alpha[s, t])) for t in range(n)] for s in range(n)])
    if kind == "mhc":
        for t in range(n):
            top = max(a[s, t] for s in range(n))
            for s in range(n):
                a[s, t] = mpmath.exp(a[s, t] - top)
        for _ in range(SINKHORN_ITERATIONS):
            for t in range(n):  # dim -2: each column sums to 1
                total = mpmath.fsum(a[s, t] for s in range(n))
                for s in range(n):
                    a[s, t] = a[s, t] / total
            for s in range(n):  # dim -1: each row sums to 1
                total = mpmath.fsum(a[s, t] for t in range(n))
                for t in range(n):
                    a[s, t] = a[s, t] / total
    return a.T


def frobenius(a: mpmath.matrix) -> mpmath.mpf:
    return mpmath.sqrt(mpmath.fsum(a[i, j] ** 2 for i in range(a.rows) for j in range(a.cols)))


def mp_checkpoint(logits: list[np.ndarray], first: list[np.ndarray], kind: str) -> dict:
    hres = [mp_map(a, kind) for a in logits]
    first = [mp_map(a, kind) for a in first]
    n = hres[0].rows
    eye = mpmath.eye(n)
    initial = mp_map(np.eye(n), kind)
    permutations = [
        mpmath.matrix([[1 if p[i] == j else 0 for j in range(n)] for i in range(n)])
        for p in itertools.permutations(range(n))
    ]
    whole = mpmath.eye(n)
    for h in hres:
        whole = h * whole
    singular = sorted(mpmath.svd_r(whole, compute_uv=False), reverse=True)
    return {
        "identity_distance": [frobenius(h - eye) for h in hres],
        "permutation_distance": [min(frobenius(h - p) for p in permutations) for h in hres],
        "init_distance": [frobenius(h - initial) for h in hres],
        "change_from_first": [
            max(abs(h[i, j] - f[i, j]) for i in range(n) for j in range(n)) for h, f in zip(hres, first)
        ],
        "whole_model": {
            "amax_forward": max(abs(mpmath.fsum(whole[i, j] for j in range(n))) for i in range(n)),
            "amax_backward": max(abs(mpmath.fsum(whole[i, j] for i in range(n))) for j in range(n)),
            "sigma2": singular[1],
        },
    }


def rounded(exact, approximate, where: str):
    """`exact` (mpmath) rounded to float64, after checking that numpy's `approximate` agrees."""
    if isinstance(exact, dict):
        return {k: rounded(v, approximate[k], f"{where} {k}") for k, v in exact.items()}
    if isinstance(exact, list):
        assert len(exact) == len(approximate), where
        return [rounded(v, a, f"{where} {k}") for k, (v, a) in enumerate(zip(exact, approximate))]
    value = float(exact)
    if not abs(value - approximate) <= 1e-13 + 1e-12 * abs(value):
        sys.exit(f"{where}: numpy {approximate!r} and mpmath {value!r} disagree")
    return value


# --- the runs --------------------------------------------------------------------------------------------------


def residual_logits(path: str) -> list[np.ndarray]:
    """`layers.{i}.static_alpha[:, 1:]` of every layer, in float64."""
    state = load_file(path)
    layers = sorted({int(name.split(".")[1]) for name in state if name.endswith(".static_alpha")})
    return [state[f"layers.{i}.static_alpha"].astype(np.float64)[:, 1:] for i in layers]


def run_reference(kind: str) -> dict:
    files = sorted(f for f in os.listdir(TRAINING) if f.startswith(f"{kind}_step"))
    found = []
    for name in files:
        path = os.path.join(TRAINING, name)
        with safe_open(path, "np") as handle:
            step = int(handle.metadata()["step"])
        found.append((step, name, residual_logits(path)))
    found.sort(key=lambda item: item[0])
    first = found[0][2]
    checkpoints = []
    for step, name, logits in found:
        where = f"{kind} step {step}"
        values = rounded(mp_checkpoint(logits, first, kind), numpy_checkpoint(logits, first, kind), where)
        checkpoints.append({"step": step, "checkpoint": name, **values})
    largest = [max(c["change_from_first"][k] for c in checkpoints) for k in range(len(first))]
    return {
        "checkpoints": checkpoints,
        "largest_change": largest,
        "unmoved_layers": {
            repr(tol): [k + 1 for k, change in enumerate(largest) if change <= tol] for tol in TOLERANCES
        },
    }


def build() -> dict:
    return {
        "generator": "tests/data/make_series_reference.py",
        "versions": {
            "numpy": np.__version__,
            "mpmath": mpmath.__version__,
            "python": sys.version.split()[0],
        },
        "precision": "mpmath at 50 significant digits, each value rounded once to float64; numpy float64 agrees",
        "runs": {kind: run_reference(kind) for kind in RUNS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file")
    args = parser.parse_args()
    reference = build()
    text = json.dumps(reference, indent=1) + "\n"
    if args.check:
        with open(OUTPUT) as handle:
            committed = handle.read()
        if committed != text:
            sys.exit(f"{OUTPUT} differs from a fresh computation (byte for byte)")
        print(f"{OUTPUT}: up to date")
        return
    with open(OUTPUT, "w") as handle:
        handle.write(text)
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
