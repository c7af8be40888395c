"""Small models built with the lucidrains ``hyper-connections`` package, for the tests.

``ToyModel`` is the shared fixture's model (tests/data/checkpoints/checkpoint.safetensors, a
12-layer mHC with n = 4 and dim 64): an embedding, HC-wrapped MLP branches, RMSNorm and a head;
``kind`` picks the package's HC, mHC or mHCv2 class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

try:
    import hyper_connections
    from hyper_connections import mHCv2
except ImportError:  # the tests that need it are skipped
    hyper_connections = None
    mHCv2 = None

KINDS = ("hc", "mhc", "mhc_v2")


def stream_functions(kind: str, streams: int, dim: int):
    """(init, expand, reduce) of the package for ``kind``."""
    if kind == "hc":
        return hyper_connections.get_init_and_expand_reduce_stream_functions(streams, dim=dim)
    if kind == "mhc":
        return hyper_connections.mc_get_init_and_expand_reduce_stream_functions(streams, dim=dim)
    if kind == "mhc_v2":
        return mHCv2.get_init_and_expand_reduce_stream_functions(streams, dim=dim)
    raise ValueError(f"unknown kind {kind!r}, expected one of {KINDS}")


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class ToyModel(nn.Module):
    def __init__(
        self,
        kind: str,
        layers: int = 12,
        streams: int = 4,
        dim: int = 64,
        vocab: int = 64,
        hidden: int | None = None,
        **layer_kwargs,
    ):
        super().__init__()
        init, self.expand, self.reduce = stream_functions(kind, streams, dim)
        hidden = hidden or 2 * dim
        self.emb = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(
            [init(branch=Mlp(dim, hidden), layer_index=i, **layer_kwargs) for i in range(layers)]
        )
        self.norm, self.head = nn.RMSNorm(dim), nn.Linear(dim, vocab)

    def forward(self, tokens):
        x = self.expand(self.emb(tokens))
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(self.reduce(x)))


def randomize_hyper_connections(model: nn.Module, generator: torch.Generator) -> None:
    """Gives every hyper-connection parameter a random value of size ~0.5 around its start, so
    that H_res differs between tokens, is not symmetric, and (for HC) has negative entries."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".branch." in name or not name.startswith("layers."):
                continue
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.add_(0.5 * noise)
