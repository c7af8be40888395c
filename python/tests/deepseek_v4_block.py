"""A pure-torch stand-in for the DeepSeek-V4 reference Block's hyper-connection math, for tests.

Follows inference/model.py (``Block.hc_pre``, ``Block.hc_post``, ``Block.forward``) and
inference/kernel.py (``hc_split_sinkhorn_kernel``, a tilelang kernel) of the DeepSeek-V4 release
(https://huggingface.co/deepseek-ai/DeepSeek-V4-Flash, directory ``inference/``), written here in
plain torch; the attention and the MoE are replaced by small MLPs, which do not touch H_res.

Per token, with x the n streams of width d flattened to n·d values:
  mixes = (x @ hc_fnᵀ) · rsqrt(mean(x²) + norm_eps)                    [(2 + n)·n]
  pre   = sigmoid(mixes[:n] · scale[0] + base[:n]) + eps                [n]
  post  = 2 · sigmoid(mixes[n:2n] · scale[1] + base[n:2n])              [n]
  comb  = mixes[2n:] · scale[2] + base[2n:] as n×n (row-major);
          softmax over the last dim, + eps; divide by column sums + eps;
          then (iters − 1) × (divide by row sums + eps, then by column sums + eps)
  branch input y = Σ_i pre[i] · x[i]
  hc_post: out[j] = post[j] · f(y) + Σ_i comb[i, j] · x[i]
so H_res = combᵀ (rows = output streams).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def hc_split_sinkhorn(mixes, hc_scale, hc_base, hc_mult: int, iters: int, eps: float):
    """pre [..., n], post [..., n], comb [..., n, n] (comb[..., i, j]: input i → output j)."""
    n = hc_mult
    pre = torch.sigmoid(mixes[..., :n] * hc_scale[0] + hc_base[:n]) + eps
    post = 2 * torch.sigmoid(mixes[..., n : 2 * n] * hc_scale[1] + hc_base[n : 2 * n])
    logits = mixes[..., 2 * n :] * hc_scale[2] + hc_base[2 * n :]
    comb = logits.unflatten(-1, (n, n))
    comb = torch.softmax(comb, dim=-1) + eps
    comb = comb / (comb.sum(dim=-2, keepdim=True) + eps)
    for _ in range(iters - 1):
        comb = comb / (comb.sum(dim=-1, keepdim=True) + eps)
        comb = comb / (comb.sum(dim=-2, keepdim=True) + eps)
    return pre, post, comb


class _Mlp(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.w1, self.w2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)))


class Block(nn.Module):
    """One transformer block with hyper-connections around attention and FFN sublayers."""

    def __init__(self, dim: int = 16, hc_mult: int = 4, sinkhorn_iters: int = 20):
        super().__init__()
        self.norm_eps = 1e-6
        self.hc_eps = 1e-6
        self.hc_mult = hc_mult
        self.hc_sinkhorn_iters = sinkhorn_iters
        mix_hc = (2 + hc_mult) * hc_mult
        self.attn = _Mlp(dim)
        self.ffn = _Mlp(dim)
        self.attn_norm = nn.RMSNorm(dim, eps=self.norm_eps)
        self.ffn_norm = nn.RMSNorm(dim, eps=self.norm_eps)
        for sub in ("attn", "ffn"):
            setattr(self, f"hc_{sub}_fn", nn.Parameter(torch.randn(mix_hc, hc_mult * dim) * 0.1))
            setattr(self, f"hc_{sub}_base", nn.Parameter(torch.randn(mix_hc)))
            setattr(self, f"hc_{sub}_scale", nn.Parameter(torch.rand(3) + 0.5))

    def hc_pre(self, x, hc_fn, hc_scale, hc_base):
        # x: [b, s, n, d] -> y: [b, s, d], post: [b, s, n], comb: [b, s, n, n]
        shape, dtype = x.size(), x.dtype
        x = x.flatten(2).float()
        rsqrt = torch.rsqrt(x.square().mean(-1, keepdim=True) + self.norm_eps)
        mixes = F.linear(x, hc_fn) * rsqrt
        pre, post, comb = hc_split_sinkhorn(
            mixes, hc_scale, hc_base, self.hc_mult, self.hc_sinkhorn_iters, self.hc_eps
        )
        y = torch.sum(pre.unsqueeze(-1) * x.view(shape), dim=2)
        return y.to(dtype), post, comb

    def hc_post(self, x, residual, post, comb):
        # x: [b, s, d], residual: [b, s, n, d] -> [b, s, n, d]
        mixed = torch.sum(comb.unsqueeze(-1) * residual.unsqueeze(-2), dim=2)
        return (post.unsqueeze(-1) * x.unsqueeze(-2) + mixed).type_as(x)

    def forward(self, x):
        residual = x
        x, post, comb = self.hc_pre(x, self.hc_attn_fn, self.hc_attn_scale, self.hc_attn_base)
        x = self.hc_post(self.attn(self.attn_norm(x)), residual, post, comb)
        residual = x
        x, post, comb = self.hc_pre(x, self.hc_ffn_fn, self.hc_ffn_scale, self.hc_ffn_base)
        return self.hc_post(self.ffn(self.ffn_norm(x)), residual, post, comb)


class Transformer(nn.Module):
    """Embedding copied into n streams (as the release's ``h.unsqueeze(2).repeat``), blocks,
    streams summed, output head."""

    def __init__(self, vocab: int = 32, dim: int = 16, hc_mult: int = 4, blocks: int = 3):
        super().__init__()
        self.hc_mult = hc_mult
        self.embed = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList([Block(dim, hc_mult) for _ in range(blocks)])
        self.head = nn.Linear(dim, vocab)

    def forward(self, tokens):
        h = self.embed(tokens).unsqueeze(2).repeat(1, 1, self.hc_mult, 1)
        for layer in self.layers:
            h = layer(h)
        return self.head(h.sum(dim=2))
