#!/usr/bin/env python3
"""Per-token H_res logits of the lucidrains fixture model, for the certificate's real-capture test.

Rebuilds the 12-layer toy model of tests/data/checkpoints (hyper-connections 0.4.11, mHC, n = 4) from
checkpoint.safetensors, runs it on the 32 tokens stored in hres.safetensors, and records the input of each
layer's `residual_mix_constraint_fn` (the Sinkhorn logits, float32, in the package's alpha[s_in, t_out]
orientation). Writes them transposed into our orientation (rows = output streams):

    lucidrains_logits.npy   float32 [layer = 12, token = 32, out = 4, in = 4]

and checks that the package's own H_res of that forward pass equals hres.npy (the captured fixture) and
that Sinkhorn of the logits in our orientation (rows, then columns, 20 iterations, float64) reproduces it to
within float32 rounding.

Run from the repository root with torch and hyper-connections==0.4.11 installed:

    python tests/data/certify/make_lucidrains_logits.py

Versions used for the committed file: Python 3.11, torch 2.15 (CPU), hyper-connections 0.4.11, numpy 2.
"""
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import hyper_connections as hc
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
CHECKPOINTS = HERE.parent / "checkpoints"


class MLP(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Model(nn.Module):  # n = 4 streams, dim 64, 12 layers, vocabulary 64
    def __init__(self):
        super().__init__()
        init, self.expand, self.reduce = hc.mc_get_init_and_expand_reduce_stream_functions(4, dim=64)
        self.emb = nn.Embedding(64, 64)
        self.layers = nn.ModuleList([init(branch=MLP(64), layer_index=i) for i in range(12)])
        self.norm, self.head = nn.RMSNorm(64), nn.Linear(64, 64)

    def forward(self, tok):
        x = self.expand(self.emb(tok))
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(self.reduce(x)))


def sinkhorn_rows_then_columns(logits, iterations=20):
    """Our orientation: exp(L − max), then `iterations` × (rows, then columns), float64."""
    m = np.exp(logits - logits.max())
    for _ in range(iterations):
        m = m / m.sum(axis=1, keepdims=True)
        m = m / m.sum(axis=0, keepdims=True)
    return m


def main():
    model = Model()
    model.load_state_dict(load_file(CHECKPOINTS / "checkpoint.safetensors"), strict=True)
    model.eval()
    fixture = load_file(CHECKPOINTS / "hres.safetensors")
    tokens = fixture["tokens"].reshape(1, 32)

    logits, outputs = [], []
    for layer in model.layers:
        original = layer.residual_mix_constraint_fn

        def recorder(log_alpha, original=original):
            logits.append(log_alpha.detach().clone())
            out = original(log_alpha)
            outputs.append(out.detach().clone())
            return out

        layer.residual_mix_constraint_fn = recorder
    with torch.no_grad():
        model(tokens)
    assert len(logits) == 12, len(logits)

    # [proposal = 1, batch = 1, token, s_in, t_out] → [token, out, in].
    ours = np.stack([l.reshape(32, 4, 4).numpy().transpose(0, 2, 1) for l in logits]).astype(np.float32)
    hres_package = np.stack([o.reshape(32, 4, 4).numpy().transpose(0, 2, 1) for o in outputs])
    captured = np.load(CHECKPOINTS / "hres.npy")
    assert np.array_equal(hres_package, captured), np.abs(hres_package - captured).max()
    ours64 = ours.astype(np.float64)
    rebuilt = np.stack([[sinkhorn_rows_then_columns(ours64[l, t]) for t in range(32)] for l in range(12)])
    error = np.abs(rebuilt - captured).max()
    assert error < 1e-6, error
    np.save(HERE / "lucidrains_logits.npy", ours)
    width = (ours.max(axis=1) - ours.min(axis=1)).max()
    print(f"wrote lucidrains_logits.npy {ours.shape}; Sinkhorn of the logits vs capture: {error:.2e}; "
          f"largest box width over tokens: {width:.4f}")


if __name__ == "__main__":
    main()
