#!/usr/bin/env python3
"""Trains the small HC and mHC toy models and writes their checkpoints along the way.

    /work/venv/bin/python experiments/data/training/train.py

Writes, next to this script, `{hc,mhc}_step{0,50,100,200,400}.safetensors` (full state_dicts,
float32, metadata: implementation, step, seed, lr, shape, versions) and `summary.json` (training
curve at the checkpoints, per-layer change of the static H_res between the first and the last
checkpoint, file sizes and SHA-256). Deterministic: seeded, CPU, one thread; the same torch
build gives the same bytes (checked by running it twice). See README.md for what was run.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from toy_model import ToyModel, permutation, save_state_dict, sha256, train, versions

HERE = os.path.dirname(os.path.abspath(__file__))

SEED = 0  # model initialisation (torch.manual_seed before building each model)
DATA_SEED = 1  # the batches
LAYERS, STREAMS, DIM, HIDDEN, VOCAB = 8, 4, 32, 16, 16
LR = 5e-3
WEIGHT_DECAY = 0.01  # AdamW's default
BATCH, SEQUENCE = 16, 32
CHECKPOINT_STEPS = (0, 50, 100, 200, 400)
IMPLEMENTATIONS = {"hc": "lucidrains_hc", "mhc": "lucidrains_mhc"}
SINKHORN_ITERATIONS = 20


def static_hres(state: dict[str, np.ndarray], kind: str) -> np.ndarray:
    """The input-independent H_res of every layer, [L, n, n], rows = output streams, rebuilt in
    float64 numpy as the package builds it from `static_alpha[:, 1:]` (stored alpha[s_in, t_out]):
    HC uses it as is; mHC applies the package's Sinkhorn (subtract the max over dim -2, exp, then
    20 × (normalise dim -2, then dim -1)). Both are transposed to rows = output streams."""
    matrices = []
    for i in range(LAYERS):
        alpha = state[f"layers.{i}.static_alpha"].astype(np.float64)[:, 1:]
        if kind == "mhc":
            alpha = np.exp(alpha - alpha.max(axis=-2, keepdims=True))
            for _ in range(SINKHORN_ITERATIONS):
                alpha = alpha / alpha.sum(axis=-2, keepdims=True)
                alpha = alpha / alpha.sum(axis=-1, keepdims=True)
        matrices.append(alpha.T)
    return np.stack(matrices)


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    summary: dict[str, object] = {
        "versions": versions(),
        "settings": {
            "seed": SEED,
            "data_seed": DATA_SEED,
            "layers": LAYERS,
            "streams": STREAMS,
            "dim": DIM,
            "mlp_hidden": HIDDEN,
            "vocab": VOCAB,
            "lr": LR,
            "weight_decay": WEIGHT_DECAY,
            "optimizer": "torch.optim.AdamW(lr=5e-3, weight_decay=0.01), betas and eps default",
            "batch": BATCH,
            "sequence": SEQUENCE,
            "checkpoint_steps": list(CHECKPOINT_STEPS),
            "task_targets": permutation(VOCAB).tolist(),
        },
        "runs": {},
    }
    for kind in ("hc", "mhc"):
        torch.manual_seed(SEED)
        model = ToyModel(kind, LAYERS, STREAMS, DIM, HIDDEN, VOCAB)
        files = {}

        def on_step(step, model, kind=kind, files=files):
            if step not in CHECKPOINT_STEPS:
                return
            name = f"{kind}_step{step}.safetensors"
            path = os.path.join(HERE, name)
            metadata = {
                "implementation": IMPLEMENTATIONS[kind],
                "step": str(step),
                "seed": str(SEED),
                "data_seed": str(DATA_SEED),
                "lr": str(LR),
                "n_layers": str(LAYERS),
                "n_streams": str(STREAMS),
                "dim": str(DIM),
                "generator": "experiments/data/training/train.py",
                "versions": json.dumps(versions()),
            }
            save_state_dict(path, model, metadata)
            files[step] = name

        steps = max(CHECKPOINT_STEPS)
        history = train(
            model, VOCAB, steps, LR, BATCH, SEQUENCE, DATA_SEED, WEIGHT_DECAY, on_step
        )
        first_state = load(os.path.join(HERE, files[CHECKPOINT_STEPS[0]]))
        first = static_hres(first_state, kind)
        last = static_hres(load(os.path.join(HERE, files[CHECKPOINT_STEPS[-1]])), kind)
        change = np.abs(last - first).max(axis=(1, 2))
        # Where a layer's static_alpha got no gradient, AdamW's decoupled weight decay alone
        # moves it: p_k = p_0 · (1 − lr·wd)^k. The change beyond that is the gradient's.
        decay = (1.0 - LR * WEIGHT_DECAY) ** (steps - CHECKPOINT_STEPS[0])
        decayed = {
            name: value * decay if name.endswith("static_alpha") else value
            for name, value in first_state.items()
        }
        beyond_decay = np.abs(last - static_hres(decayed, kind)).max(axis=(1, 2))
        curve = {str(step): {"loss": loss, "accuracy": acc} for step, loss, acc in history
                 if step in CHECKPOINT_STEPS}
        summary["runs"][kind] = {
            "curve_at_checkpoints": curve,
            "max_abs_static_hres_change_first_to_last": {
                "from_step": CHECKPOINT_STEPS[0],
                "to_step": CHECKPOINT_STEPS[-1],
                "per_layer": [float(v) for v in change],
                "per_layer_beyond_weight_decay_alone": [float(v) for v in beyond_decay],
            },
            "files": {
                name: {"bytes": os.path.getsize(os.path.join(HERE, name)),
                       "sha256": sha256(os.path.join(HERE, name))}
                for name in files.values()
            },
        }
        print(f"{kind}: loss/accuracy at checkpoints {curve}")
        print(f"{kind}: max |ΔH_res| per layer, step {CHECKPOINT_STEPS[0]} → "
              f"{CHECKPOINT_STEPS[-1]}: " + ", ".join(f"{v:.3g}" for v in change))
        print(f"{kind}: the same beyond weight decay alone: "
              + ", ".join(f"{v:.3g}" for v in beyond_decay))
    with open(os.path.join(HERE, "summary.json"), "w") as file:
        json.dump(summary, file, indent=1)
        file.write("\n")


def load(path: str) -> dict[str, np.ndarray]:
    from mhc_capture import read_safetensors

    tensors, _ = read_safetensors(path)
    return {name: tensor.numpy() for name, tensor in tensors.items()}


if __name__ == "__main__":
    main()
