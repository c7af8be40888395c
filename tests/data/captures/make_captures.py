#!/usr/bin/env python3
"""Makes the real captures in this directory with the mhc_capture companion (python/).

    /work/venv/bin/python tests/data/captures/make_captures.py

Needs torch, hyper-connections==0.4.11 and numpy (written with torch 2.15.0, Python 3.11.7).
Deterministic: seeded, CPU, one thread; the same torch build gives the same bytes.

* `lucidrains_hc.safetensors`: a lucidrains HC model (`HyperConnections`, from
  `get_init_and_expand_reduce_stream_functions`) of the shared mHC fixture's shape — 12 layers,
  n = 4 streams, dim 64, MLP branch 64 → 128 → 64, vocabulary 64 — trained for 300 AdamW steps
  (lr 5e-3, weight decay 0.01, batches of 16 × 32 tokens) on the per-token map task of
  experiments/data/training/toy_model.py (token t → a fixed random permutation of t). Full
  state_dict, float32; metadata: implementation = lucidrains_hc, step = 300, seed, lr, shape.
* `lucidrains_hc_hres.safetensors`: its capture on the fixture's 32 tokens.
* `lucidrains_mhc_fixture_hres.safetensors`: the capture of the fixture's mHC model
  (tests/data/checkpoints/checkpoint.safetensors) on the same 32 tokens (the `tokens` tensor of
  tests/data/checkpoints/hres.safetensors, one sequence); compared here with the fixture's own
  capture (`hres` there), made without this package.
* `expected.json`: for each capture, the whole-model composite's Amax gains computed in float64
  numpy (P_t = H_L ⋯ H_1 per token t; forward max_i |Σ_j P_ij|, backward max_j |Σ_i P_ij|; mean
  and max over tokens), the fixture comparison, and each file's size and SHA-256.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(REPOSITORY, "python"))
sys.path.insert(0, os.path.join(REPOSITORY, "experiments", "data", "training"))

from mhc_capture import capture_hres, read_capture, read_safetensors  # noqa: E402
from toy_model import ToyModel, save_state_dict, sha256, train, versions  # noqa: E402

FIXTURE = os.path.join(REPOSITORY, "tests", "data", "checkpoints")
SEED, DATA_SEED = 0, 1
LAYERS, STREAMS, DIM, HIDDEN, VOCAB = 12, 4, 64, 128, 64
STEPS, LR, WEIGHT_DECAY, BATCH, SEQUENCE = 300, 5e-3, 0.01, 16, 32


def amax_gains(hres: np.ndarray) -> dict[str, dict[str, float]]:
    """Whole-model forward and backward Amax gain of a [L, T, n, n] capture, float64."""
    layers, tokens, n, _ = hres.shape
    composite = np.broadcast_to(np.eye(n), (tokens, n, n)).copy()
    for h in hres.astype(np.float64):
        composite = h @ composite
    forward = np.abs(composite.sum(axis=2)).max(axis=1)
    backward = np.abs(composite.sum(axis=1)).max(axis=1)
    return {
        "amax_forward": {"mean": float(forward.mean()), "max": float(forward.max())},
        "amax_backward": {"mean": float(backward.mean()), "max": float(backward.max())},
    }


def capture(model: torch.nn.Module, tokens: torch.Tensor, path: str, extra: dict) -> np.ndarray:
    model.eval()
    with torch.no_grad(), capture_hres(model) as cap:
        model(tokens.reshape(1, -1))
    extra = dict(extra, input_ids=json.dumps(tokens.tolist()))
    cap.save(path, extra_metadata=extra)
    hres, _ = read_capture(path)
    return hres.numpy()


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    fixture, _ = read_safetensors(os.path.join(FIXTURE, "hres.safetensors"))
    tokens = fixture["tokens"]
    expected: dict[str, object] = {"versions": versions(), "input_ids": tokens.tolist()}

    # The fixture's mHC model, captured by the companion.
    state, _ = read_safetensors(os.path.join(FIXTURE, "checkpoint.safetensors"))
    mhc = ToyModel("mhc", LAYERS, STREAMS, DIM, HIDDEN, VOCAB)
    mhc.load_state_dict(state, strict=True)
    mhc_path = os.path.join(HERE, "lucidrains_mhc_fixture_hres.safetensors")
    mhc_hres = capture(
        mhc, tokens, mhc_path, {"checkpoint": "tests/data/checkpoints/checkpoint.safetensors"}
    )
    difference = float(np.abs(mhc_hres - fixture["hres"].numpy()).max())
    print(f"fixture mHC: max |companion − stored capture| = {difference:.3e}")

    # A lucidrains HC model of the same shape, trained here.
    torch.manual_seed(SEED)
    hc = ToyModel("hc", LAYERS, STREAMS, DIM, HIDDEN, VOCAB)
    history = train(hc, VOCAB, STEPS, LR, BATCH, SEQUENCE, DATA_SEED, WEIGHT_DECAY)
    step, loss, accuracy = history[-1]
    print(f"HC training: step {step}, loss {loss:.4g}, accuracy {accuracy:.3f}")
    checkpoint = os.path.join(HERE, "lucidrains_hc.safetensors")
    save_state_dict(
        checkpoint,
        hc,
        {
            "implementation": "lucidrains_hc",
            "step": str(STEPS),
            "seed": str(SEED),
            "data_seed": str(DATA_SEED),
            "lr": str(LR),
            "weight_decay": str(WEIGHT_DECAY),
            "n_layers": str(LAYERS),
            "n_streams": str(STREAMS),
            "dim": str(DIM),
            "generator": "tests/data/captures/make_captures.py",
            "versions": json.dumps(versions()),
        },
    )
    hc_path = os.path.join(HERE, "lucidrains_hc_hres.safetensors")
    hc_hres = capture(
        hc,
        tokens,
        hc_path,
        {"checkpoint": "tests/data/captures/lucidrains_hc.safetensors", "step": str(STEPS)},
    )

    expected["captures"] = {
        "lucidrains_hc_hres.safetensors": {
            "whole_model": amax_gains(hc_hres),
            "training": {"step": step, "loss": loss, "accuracy": accuracy},
            "max_abs_difference_between_tokens": float(np.abs(hc_hres - hc_hres[:, :1]).max()),
        },
        "lucidrains_mhc_fixture_hres.safetensors": {
            "whole_model": amax_gains(mhc_hres),
            "max_abs_difference_to_the_fixture_capture": difference,
            "max_abs_difference_between_tokens": float(np.abs(mhc_hres - mhc_hres[:, :1]).max()),
        },
    }
    expected["files"] = {}
    for name in sorted(os.listdir(HERE)):
        if name.endswith(".safetensors"):
            path = os.path.join(HERE, name)
            expected["files"][name] = {"bytes": os.path.getsize(path), "sha256": sha256(path)}
    for name, entry in expected["captures"].items():
        gains = entry["whole_model"]
        print(
            f"{name}: whole-model amax_forward mean {gains['amax_forward']['mean']:.6g} "
            f"max {gains['amax_forward']['max']:.6g}; amax_backward mean "
            f"{gains['amax_backward']['mean']:.6g} max {gains['amax_backward']['max']:.6g}"
        )
    with open(os.path.join(HERE, "expected.json"), "w") as file:
        json.dump(expected, file, indent=1)
        file.write("\n")


if __name__ == "__main__":
    main()
