#!/usr/bin/env python3
"""Reference values for `mhc-analyze audit CHECKPOINT…` (a training run), computed independently in numpy.

    /work/venv/bin/python tests/data/make_series_reference.py           # (re)write the JSON below
    /work/venv/bin/python tests/data/make_series_reference.py --check   # recompute, compare with the file

Reads the ten checkpoints of experiments/data/training/ (lucidrains `hyper-connections` 0.4.11 HC and mHC toy
models, 8 layers, n = 4, steps 0, 50, 100, 200, 400; see the README there for how they were made) with
`safetensors.numpy` and writes tests/data/reference/series_training.json.

Versions used for the committed file: Python 3.11.7, numpy 2.4.6, safetensors 0.8.0 (reading only).

For each run (hc, mhc) and each checkpoint, sorted by the `step` in the file's metadata:
  - the static (input-independent) H_res of each layer, rebuilt in float64 as the package builds it from
    `layers.{i}.static_alpha[:, 1:]`, stored alpha[s_in, t_out]: HC uses it as is; mHC applies the package's
    `sinkhorn_knopps` (subtract the max over dim -2, exp, then 20 x (normalise dim -2, then dim -1)); both
    transposed to rows = output streams (x_{l+1} = H_l x_l);
  - per layer: identity_distance ||H_l - I||_F; permutation_distance min over the 24 permutation matrices P of
    ||H_l - P||_F (brute force); init_distance ||H_l - H_l(init)||_F where the package initialises
    static_alpha[:, 1:] to the identity (`torch.eye` in hyper_connections.py and
    manifold_constrained_hyper_connections.py), mapped like the trained logits; change_from_first
    max_ij |H_l - H_l(first checkpoint)|;
  - the whole model H_L ... H_1 (plain float64 products): amax_forward = max_i |row sum|, amax_backward =
    max_j |column sum|, sigma2 = second singular value (numpy.linalg.svd).
Per run: largest_change (per layer, the maximum of change_from_first over checkpoints) and the unmoved layers
(numbered from 1, change never above the tolerance) at several tolerances.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINING = os.path.join(HERE, "..", "..", "experiments", "data", "training")
OUTPUT = os.path.join(HERE, "reference", "series_training.json")
RUNS = ("hc", "mhc")
TOLERANCES = (1e-4, 5e-3, 0.03, 0.06, 0.2)
SINKHORN_ITERATIONS = 20


def package_map(alpha: np.ndarray, kind: str) -> np.ndarray:
    """The package's H_res of residual logits alpha[s_in, t_out], returned with rows = output streams."""
    if kind == "mhc":
        alpha = np.exp(alpha - alpha.max(axis=-2, keepdims=True))
        for _ in range(SINKHORN_ITERATIONS):
            alpha = alpha / alpha.sum(axis=-2, keepdims=True)
            alpha = alpha / alpha.sum(axis=-1, keepdims=True)
    return alpha.T


def static_hres(path: str, kind: str) -> list[np.ndarray]:
    state = load_file(path)
    layers = sorted(
        {int(name.split(".")[1]) for name in state if name.endswith(".static_alpha")}
    )
    return [
        package_map(state[f"layers.{i}.static_alpha"].astype(np.float64)[:, 1:], kind)
        for i in layers
    ]


def permutation_distance(h: np.ndarray) -> float:
    n = h.shape[0]
    return min(
        float(np.linalg.norm(h - np.eye(n)[list(p)])) for p in itertools.permutations(range(n))
    )


def run_reference(kind: str) -> dict:
    files = sorted(f for f in os.listdir(TRAINING) if f.startswith(f"{kind}_step"))
    found = []
    for name in files:
        path = os.path.join(TRAINING, name)
        with safe_open(path, "np") as handle:
            step = int(handle.metadata()["step"])
        found.append((step, name, static_hres(path, kind)))
    found.sort()
    first = found[0][2]
    n = first[0].shape[0]
    initial = package_map(np.eye(n), kind)
    checkpoints = []
    for step, name, hres in found:
        whole = np.eye(n)
        for h in hres:
            whole = h @ whole
        checkpoints.append(
            {
                "step": step,
                "checkpoint": name,
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
        )
    largest = np.max([c["change_from_first"] for c in checkpoints], axis=0)
    return {
        "checkpoints": checkpoints,
        "largest_change": [float(v) for v in largest],
        "unmoved_layers": {
            repr(tol): [int(k) + 1 for k in np.flatnonzero(largest <= tol)] for tol in TOLERANCES
        },
    }


def build() -> dict:
    return {
        "generator": "tests/data/make_series_reference.py",
        "versions": {"numpy": np.__version__, "python": sys.version.split()[0]},
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
            committed = json.load(handle)
        if committed != json.loads(text):
            sys.exit(f"{OUTPUT} differs from a fresh computation")
        print(f"{OUTPUT}: up to date")
        return
    with open(OUTPUT, "w") as handle:
        handle.write(text)
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
