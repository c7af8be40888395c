#!/usr/bin/env python3
"""Small models with their per-token H_res, for the dynamic (token-dependent) tests in
tests/load.rs. Run from the repository root:

    /work/venv/bin/python tests/data/make_dynamic.py

Written with Python 3.11, torch 2.15 (CPU), numpy 2.4.6, safetensors 0.8.0 and
hyper-connections 0.4.11. Deterministic (fixed seeds, one thread).

For each model it writes tests/data/checkpoints/dynamic_<name>.safetensors (the parameters, under
the names the model's own state dict uses, layers as `layers.<i>.`) and
dynamic_<name>_expected.npz with
    inputs [L, T, rows, dim]  the hidden state each layer receives for each token (float64
                              holding float32 values): the n residual streams (rows = n), or,
                              for mhc-pytorch, the module's single input vector (rows = 1)
    hres   [L, T, n, n]       the H_res that layer applies to that token, rows = output streams
                              (x_out = H_res @ x_in)

lucidrains `hyper-connections` 0.4.11 (HyperConnections with and without tanh,
ManifoldConstrainedHyperConnections, mHCv2 with two proposals and stream mixing before the
norm): the package's own modules run each token; H_res is taken from inside the forward pass
(HC: the tanh/identity output `wc_weight`, alpha = static_alpha + dynamic_alpha_scale·wc_weight;
mHC: the output of `residual_mix_constraint_fn`, i.e. the package's Sinkhorn, averaged over
proposals as the package does) and checked against the module's real output: H_res @ x_in equals
the residual streams `width_connection` passes on, to float32 rounding. Computed in float32, as
the package runs.

mhc-pytorch 0.2.3 (`mhc/hyper_connection.py`, `ManifoldHyperConnections.forward`, and
`mhc/sinkhorn_knopp.py`; the package needs Python >= 3.12, so this is a float64 numpy
re-implementation of that published source): x_vec = n copies of x, flattened;
x̂ = x_vec · rsqrt(mean(x_vec²) + eps) with torch's default eps for float32 (finfo.eps, checked
below against torch.nn.functional.rms_norm), no weight (the module's `norm` is never used);
logits = alpha_res · (phi_res.weight @ x̂ + phi_res.bias).view(n, n) + b_res;
H_res = 20 × (rows, then columns) of exp(logits), no transpose.

DeepSeek-V4 reference inference code (deepseek-ai, published with the model weights:
inference/model.py `Block.hc_pre`, inference/kernel.py `hc_split_sinkhorn_kernel`; read from
public copies, no commit id available): a float64 numpy re-implementation. x = flatten(streams)
[n·dim]; mixes = (fn @ x) · rsqrt(mean(x²) + norm_eps), norm_eps = 1e-6;
comb[j, k] = mixes[2n + j·n + k] · scale[2] + base[2n + j·n + k]; softmax over k + eps;
divide by column sums + eps; 19 × (rows + eps, columns + eps); eps = hc_eps = 1e-6.
hc_post gives output k = Σ_j comb[j, k] x_j, so H_res = combᵀ.
"""

import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

import hyper_connections
from hyper_connections.hyper_connections import HyperConnections
from hyper_connections.manifold_constrained_hyper_connections import (
    ManifoldConstrainedHyperConnections,
)
from hyper_connections.mHCv2 import ManifoldConstrainedHyperConnections as MHCv2

ROOT = os.path.dirname(os.path.abspath(__file__))
CHECKPOINTS = os.path.join(ROOT, "checkpoints")

N, DIM, LAYERS, TOKENS = 4, 12, 3, 6
ITERATIONS = 20
HC_EPS = 1e-6
NORM_EPS = 1e-6

torch.set_num_threads(1)


def save(name, tensors, inputs, hres, metadata=None):
    tensors = {k: np.array(v, dtype=np.float32, order="C") for k, v in tensors.items()}
    save_file(tensors, os.path.join(CHECKPOINTS, f"dynamic_{name}.safetensors"), metadata)
    np.savez(os.path.join(CHECKPOINTS, f"dynamic_{name}_expected.npz"),
             inputs=np.asarray(inputs, dtype=np.float64), hres=np.asarray(hres, dtype=np.float64))


def randomise(module, generator):
    """Every parameter drawn afresh (the package initialises the dynamic part to zero, which
    would make H_res token-independent)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("static_alpha"):
                p.copy_(p + 0.5 * torch.randn(p.shape, generator=generator))
            elif "dynamic_alpha_fn" in name:
                p.copy_(0.4 * torch.randn(p.shape, generator=generator))
            elif name.endswith("gamma"):
                p.copy_(0.3 * torch.randn(p.shape, generator=generator))
            elif name.endswith(("dynamic_alpha_scale", "residual_scale")):
                p.copy_(torch.full(p.shape, 0.7) + 0.1 * torch.randn(p.shape, generator=generator))
            elif "maybe_mix_streams" in name:
                p.copy_(torch.eye(N).view(N, N, 1, 1) + 0.3 * torch.randn(p.shape, generator=generator))
            else:
                p.copy_(p + 0.1 * torch.randn(p.shape, generator=generator))


def lucidrains(name, seed, make, layout_v2=False):
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    tensors, inputs, hres = {}, [], []
    for layer in range(LAYERS):
        module = make(layer)
        randomise(module, generator)
        module.eval()
        for key, value in module.state_dict().items():
            tensors[f"layers.{layer}.{key}"] = value.detach().numpy()
        x = torch.randn(TOKENS, N, DIM, generator=generator)
        captured = {}
        if isinstance(module, HyperConnections):
            # `act` runs twice per forward: first on the alpha projection, then on beta's.
            def keep_first(_module, _inputs, output):
                captured.setdefault("wc", output)  # returns None: the output is unchanged

            module.act.register_forward_hook(keep_first)
        else:
            constraint = module.residual_mix_constraint_fn

            def capture_constraint(t, constraint=constraint):
                out = constraint(t)
                captured["res"] = out
                return out

            module.residual_mix_constraint_fn = capture_constraint
        with torch.no_grad():
            if layout_v2:
                residuals_in = x.unsqueeze(0)  # [b = 1, T, s, d]
            else:
                residuals_in = x.permute(1, 0, 2).contiguous()  # [(b s), T, d], b = 1
            _, residuals_out, _ = module.width_connection(residuals_in)
            if layout_v2:
                out = residuals_out[0]  # [T, s, d]
            else:
                out = residuals_out.permute(1, 0, 2)  # [T, s, d]
        if isinstance(module, HyperConnections):
            # alpha[s_in, t] = static_alpha + scale · act(normed_s @ fn); H[t_out, s_in].
            wc = captured["wc"].reshape(TOKENS, N, -1)  # [b = 1, T, f = 1, s, t] → [T, s, t]
            alpha = wc * module.dynamic_alpha_scale + module.static_alpha
            h = alpha[..., 1:].transpose(-1, -2)
        else:
            res = captured["res"]  # [P, b = 1, T, (f = 1,) s, t] after the package's Sinkhorn
            h = res.mean(dim=0).reshape(TOKENS, N, N).transpose(-1, -2)
        h = h.detach()
        recon = torch.einsum("tij,tjd->tid", h, x)
        err = (recon - out).abs().max().item()
        assert err < 1e-5 * max(1.0, out.abs().max().item()), (name, layer, err)
        inputs.append(x.numpy())
        hres.append(h.numpy())
    save(name, tensors, inputs, hres)


def sinkhorn_rows_then_columns(logits):
    m = np.exp(logits - logits.max())
    for _ in range(ITERATIONS):
        m = m / m.sum(axis=1, keepdims=True)
        m = m / m.sum(axis=0, keepdims=True)
    return m


def mhc_pytorch():
    rng = np.random.default_rng(23)
    f32_eps = float(np.finfo(np.float32).eps)
    # torch's rms_norm without eps uses finfo(dtype).eps: check on a tiny vector, where it shows.
    tiny = torch.full((1, 8), 1e-4)
    assert torch.allclose(F.rms_norm(tiny, (8,)), tiny / torch.sqrt(tiny.square().mean() + f32_eps))
    assert not torch.allclose(F.rms_norm(tiny, (8,)), tiny / torch.sqrt(tiny.square().mean() + 1e-6))
    tensors, inputs, hres = {}, [], []
    n, c = N, DIM
    for layer in range(LAYERS):
        p = f"layers.{layer}.hc."
        f32 = lambda a: np.asarray(a, dtype=np.float32)
        weight = f32(rng.normal(0, 0.15, (n * n, n * c)))
        bias = f32(rng.normal(0, 0.3, n * n))
        alpha = f32([0.8 + 0.2 * layer])
        b_res = f32(np.eye(n) + rng.normal(0, 0.3, (n, n)))
        tensors.update({
            p + "phi_pre.weight": rng.normal(0, 0.1, (n, n * c)), p + "phi_pre.bias": np.zeros(n),
            p + "phi_post.weight": rng.normal(0, 0.1, (n, n * c)), p + "phi_post.bias": np.zeros(n),
            p + "phi_res.weight": weight, p + "phi_res.bias": bias,
            p + "alpha_pre": np.ones(1), p + "alpha_post": np.ones(1), p + "alpha_res": alpha,
            p + "b_pre": np.zeros(n), p + "b_post": np.zeros(n), p + "b_res": b_res,
            p + "norm.weight": np.ones(c),
        })
        xs = f32(rng.normal(0, 1.0, (TOKENS, 1, c)))
        xs[0] *= 1e-3  # a small input, where eps matters
        layer_h = []
        for x in xs.astype(np.float64):
            x_vec = np.tile(x[0], n)
            x_hat = x_vec / np.sqrt(np.mean(x_vec ** 2) + f32_eps)
            logits = alpha.astype(np.float64)[0] * (weight.astype(np.float64) @ x_hat + bias).reshape(n, n) \
                + b_res.astype(np.float64)
            probs = np.exp(logits)
            for _ in range(ITERATIONS):
                probs = probs / probs.sum(axis=-1, keepdims=True)
                probs = probs / probs.sum(axis=-2, keepdims=True)
            layer_h.append(probs)
        inputs.append(xs)
        hres.append(layer_h)
    save("mhc_pytorch", tensors, inputs, hres)


def deepseek_v4():
    rng = np.random.default_rng(4)
    n, dim = N, DIM
    mix = (2 + n) * n
    tensors, inputs, hres = {}, [], []
    for block in range(2):
        for sub in ["attn", "ffn"]:
            p = f"layers.{block}.hc_{sub}_"
            fn = np.asarray(rng.normal(0, 0.2, (mix, n * dim)), dtype=np.float32)
            scale = np.asarray(rng.uniform(0.3, 1.5, 3), dtype=np.float32)
            base = np.asarray(rng.normal(0, 1.0, mix), dtype=np.float32)
            tensors.update({p + "fn": fn, p + "scale": scale, p + "base": base})
            xs = np.asarray(rng.normal(0, 1.0, (TOKENS, n, dim)), dtype=np.float32)
            layer_h = []
            for x in xs.astype(np.float64):
                flat = x.reshape(-1)
                mixes = fn.astype(np.float64) @ flat / np.sqrt(np.mean(flat ** 2) + NORM_EPS)
                comb = (mixes[2 * n:] * float(scale[2]) + base[2 * n:].astype(np.float64)).reshape(n, n)
                comb = np.exp(comb - comb.max(axis=-1, keepdims=True))
                comb = comb / comb.sum(axis=-1, keepdims=True) + HC_EPS
                comb = comb / (comb.sum(axis=-2, keepdims=True) + HC_EPS)
                for _ in range(ITERATIONS - 1):
                    comb = comb / (comb.sum(axis=-1, keepdims=True) + HC_EPS)
                    comb = comb / (comb.sum(axis=-2, keepdims=True) + HC_EPS)
                h = comb.T
                # hc_post's residual part: y[k] = Σ_j comb[j, k] x_j.
                y = np.einsum("jk,jd->kd", comb, x)
                assert np.allclose(h @ x, y, rtol=0, atol=1e-12)
                layer_h.append(h)
            inputs.append(xs)
            hres.append(layer_h)
    save("deepseek", tensors, inputs, hres)


def main():
    assert hyper_connections.__name__ == "hyper_connections"
    lucidrains("hc", 1, lambda i: HyperConnections(N, dim=DIM, layer_index=i))
    lucidrains("hc_notanh", 2, lambda i: HyperConnections(N, dim=DIM, layer_index=i, tanh=False))
    lucidrains("mhc", 3, lambda i: ManifoldConstrainedHyperConnections(N, dim=DIM, layer_index=i))
    lucidrains(
        "mhcv2",
        4,
        lambda i: MHCv2(N, dim=DIM, layer_index=i, num_dynamic_alpha_proposals=2,
                        mix_streams_before_norm=True),
        layout_v2=True,
    )
    mhc_pytorch()
    deepseek_v4()


if __name__ == "__main__":
    main()
