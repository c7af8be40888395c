"""The toy model and task shared by train.py (here) and tests/data/captures/make_captures.py.

Model (the one of the trained mHC fixture tests/data/checkpoints/checkpoint.safetensors, which
has 12 layers, n = 4, dim 64, hidden 128 and vocabulary 64): an embedding of the vocabulary into
`dim`, copied into n residual streams by the package's `expand`; `layers`
hyper-connection modules of the lucidrains `hyper-connections` package, each wrapping an MLP
branch dim → hidden → dim (GELU); the streams summed by `reduce`; RMSNorm; a linear head back to
the vocabulary. `kind` picks the package's HC (`HyperConnections`, via
`get_init_and_expand_reduce_stream_functions`) or mHC (`ManifoldConstrainedHyperConnections`,
via `mc_get_init_and_expand_reduce_stream_functions`). Layer i gets `layer_index = i`, which
sets the stream its H_pre starts on (i mod n), so construction uses no unseeded randomness.

Task ("per-token map"): each input token t in 0 … vocab−1 must be mapped to PERMUTATION[t], a
fixed random permutation of the vocabulary (torch.randperm with a torch.Generator seeded with
TASK_SEED). Batches are sequences of independent uniform tokens; the loss is the mean
cross-entropy over all tokens, accuracy the fraction of tokens whose argmax is right. The model
has no attention, so every token is processed independently.
"""

from __future__ import annotations

import hashlib
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

import hyper_connections

REPOSITORY = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)
sys.path.insert(0, os.path.join(REPOSITORY, "python"))

from mhc_capture.safetensors_io import TensorEntry, write_safetensors  # noqa: E402

TASK_SEED = 1234

_SAFETENSORS_DTYPES = {torch.float32: "F32", torch.int64: "I64"}


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class ToyModel(nn.Module):
    def __init__(self, kind: str, layers: int, streams: int, dim: int, hidden: int, vocab: int):
        super().__init__()
        if kind == "hc":
            functions = hyper_connections.get_init_and_expand_reduce_stream_functions
        elif kind == "mhc":
            functions = hyper_connections.mc_get_init_and_expand_reduce_stream_functions
        else:
            raise ValueError(f"kind must be 'hc' or 'mhc', got {kind!r}")
        init, self.expand, self.reduce = functions(streams, dim=dim)
        self.emb = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(
            [init(branch=Mlp(dim, hidden), layer_index=i) for i in range(layers)]
        )
        self.norm, self.head = nn.RMSNorm(dim), nn.Linear(dim, vocab)

    def forward(self, tokens):
        x = self.expand(self.emb(tokens))
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(self.reduce(x)))


def permutation(vocab: int) -> torch.Tensor:
    """The task's target of each token."""
    return torch.randperm(vocab, generator=torch.Generator().manual_seed(TASK_SEED))


def train(
    model: nn.Module,
    vocab: int,
    steps: int,
    lr: float,
    batch: int,
    sequence: int,
    data_seed: int,
    weight_decay: float = 0.01,
    on_step=None,
) -> list[tuple[int, float, float]]:
    """torch.optim.AdamW(lr, weight_decay; betas (0.9, 0.999) and eps 1e-8 by default) on the
    per-token map, batches of `batch` × `sequence` uniform tokens drawn from a torch.Generator
    seeded with `data_seed`. Calls ``on_step(step, model)`` at step 0 (before any update) and
    after each update. Returns (step, loss, accuracy) of each update, measured on its batch
    before the update."""
    targets_of = permutation(vocab)
    data = torch.Generator().manual_seed(data_seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = []
    if on_step:
        on_step(0, model)
    for step in range(1, steps + 1):
        tokens = torch.randint(0, vocab, (batch, sequence), generator=data)
        logits = model(tokens)
        targets = targets_of[tokens]
        loss = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
        accuracy = (logits.argmax(-1) == targets).float().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append((step, float(loss.detach()), float(accuracy)))
        if on_step:
            on_step(step, model)
    return history


def save_state_dict(path: str, model: nn.Module, metadata: dict[str, str]) -> None:
    """The model's full state_dict as safetensors (F32), in state_dict order."""
    entries = []
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().contiguous()
        entries.append(
            TensorEntry(name, _SAFETENSORS_DTYPES[tensor.dtype], tuple(tensor.shape), (tensor,))
        )
    write_safetensors(path, entries, metadata)


def sha256(path: str) -> str:
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def versions() -> dict[str, str]:
    import importlib.metadata
    import platform

    return {
        "torch": torch.__version__,
        "hyper_connections": importlib.metadata.version("hyper-connections"),
        "python": platform.python_version(),
    }
