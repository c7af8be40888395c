"""Recording per-token H_res during forward passes, and the capture file.

Orientation: ``hres[l, t, i, j]`` is the weight of input stream j in output stream i of layer
l + 1 for token t, so ``x_next = H @ x`` (rows = output streams), as in mHC (arXiv 2512.24880,
eq. 3: x_{l+1} = H_l^res x_l + ...).

Layers are module calls in execution order: a module called twice gives two layers, and a
DeepSeek-V4 Block gives two per call (attention, FFN). Tokens are the module input's leading
dimensions flattened in C order (batch-major, then sequence).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from . import __version__
from .adapters import Adapter, Detach, adapter_for, class_path
from .errors import InconsistentCaptureError, NoSupportedModulesError
from .safetensors_io import SafetensorsError, TensorEntry, read_safetensors, write_safetensors

FORMAT = "mhc-capture"
FORMAT_VERSION = "1"
TENSOR = "hres"
LAYOUT = "[layer, token, out, in]"
ORIENTATION = "rows are output streams"
TOKEN_ORDER = "flattened leading dimensions of the module input, batch-major then sequence"

#: Metadata keys written by :meth:`Capture.save`; ``extra_metadata`` may not use them.
RESERVED_KEYS = (
    "format",
    "format_version",
    "tensor",
    "layout",
    "orientation",
    "streams",
    "layers",
    "tokens",
    "token_order",
    "modules",
    "versions",
    "implementation",
)

# The implementation written when every layer has one kind.
_IMPLEMENTATIONS = {
    "hc": "lucidrains_hc",
    "mhc": "lucidrains_mhc",
    "mhc_v2": "lucidrains_mhc_v2",
    "deepseek_v4": "deepseek_v4",
}


@dataclass(frozen=True)
class CapturedLayer:
    """One recorded call: its 1-based layer number and the matrices it applied."""

    layer: int
    name: str
    module_class: str
    call: int
    kind: str
    sublayer: str | None
    hres: torch.Tensor  # [tokens, n, n] float32 on the CPU, rows = output streams

    def description(self) -> dict[str, object]:
        """The entry of this layer in the ``modules`` metadata."""
        entry: dict[str, object] = {
            "layer": self.layer,
            "name": self.name,
            "class": self.module_class,
            "call": self.call,
            "kind": self.kind,
        }
        if self.sublayer is not None:
            entry["sublayer"] = self.sublayer
        return entry

    def label(self) -> str:
        sub = f" {self.sublayer}" if self.sublayer else ""
        return f"layer {self.layer} ('{self.name}'{sub}, call {self.call}, {self.module_class})"


def package_versions() -> dict[str, str]:
    """Versions of this package, torch, hyper-connections (when installed) and Python."""
    versions = {"mhc_capture": __version__, "torch": torch.__version__}
    try:
        versions["hyper_connections"] = importlib.metadata.version("hyper-connections")
    except importlib.metadata.PackageNotFoundError:
        pass
    versions["python"] = platform.python_version()
    return versions


class Capture:
    """The H_res of every supported module call made while it is active.

    Made by :func:`capture_hres`; use it as a context manager. Each call of a supported module
    appends one ``[tokens, n, n]`` CPU float32 tensor (no other copy is kept); :meth:`save`
    streams them into one ``[layers, tokens, n, n]`` tensor on disk.
    """

    def __init__(self, modules: list[tuple[str, nn.Module, Adapter]]):
        self._modules = modules
        self._detaches: list[Detach] = []
        self._layers: list[CapturedLayer] = []
        self._calls: dict[tuple[int, str | None], int] = {}

    # -- context manager ------------------------------------------------------------------

    def __enter__(self) -> Capture:
        if self._detaches:
            raise RuntimeError("this capture is already active")
        try:
            for name, module, adapter in self._modules:
                emit = self._recorder(name, module, adapter)
                self._detaches.append(adapter.attach(module, name, emit))
        except BaseException:
            self._detach_all()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self._detach_all()

    def _detach_all(self) -> None:
        while self._detaches:
            self._detaches.pop()()

    def _recorder(self, name: str, module: nn.Module, adapter: Adapter):
        def emit(hres: torch.Tensor, sublayer: str | None) -> None:
            key = (id(module), sublayer)
            self._calls[key] = self._calls.get(key, 0) + 1
            self._layers.append(
                CapturedLayer(
                    layer=len(self._layers) + 1,
                    name=name,
                    module_class=class_path(module),
                    call=self._calls[key],
                    kind=adapter.kind,
                    sublayer=sublayer,
                    hres=hres,
                )
            )

        return emit

    # -- contents -------------------------------------------------------------------------

    @property
    def modules(self) -> list[tuple[str, nn.Module]]:
        """The supported modules found in the model, ``(name, module)`` in registration order."""
        return [(name, module) for name, module, _ in self._modules]

    @property
    def layers(self) -> list[CapturedLayer]:
        """Every recorded call so far, in execution order."""
        return list(self._layers)

    def clear(self) -> None:
        """Forgets every recorded call (for example between two forward passes)."""
        self._layers.clear()
        self._calls.clear()

    def _checked_shape(self) -> tuple[int, int, int]:
        """(layers, tokens, streams), after checking that every layer agrees with layer 1."""
        if not self._layers:
            raise InconsistentCaptureError(
                "nothing captured: no supported module was called inside the 'with' block"
            )
        first = self._layers[0]
        tokens, n = first.hres.shape[0], first.hres.shape[1]
        for layer in self._layers[1:]:
            if layer.hres.shape[1] != n:
                raise InconsistentCaptureError(
                    f"{layer.label()} has {layer.hres.shape[1]} streams, but {first.label()} "
                    f"has {n}: one capture file holds one stream count"
                )
            if layer.hres.shape[0] != tokens:
                raise InconsistentCaptureError(
                    f"{layer.label()} has {layer.hres.shape[0]} tokens, but {first.label()} has "
                    f"{tokens}: all layers of a capture must see the same tokens (one batch "
                    "shape); save after each forward pass and call clear() in between"
                )
        return len(self._layers), tokens, n

    def hres(self) -> torch.Tensor:
        """All layers as one ``[layers, tokens, n, n]`` float32 tensor (a new copy)."""
        self._checked_shape()
        return torch.stack([layer.hres for layer in self._layers])

    def metadata(
        self, implementation: str | None = None, extra_metadata: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The ``__metadata__`` that :meth:`save` writes."""
        layers, tokens, n = self._checked_shape()
        if implementation is None:
            kinds = sorted({layer.kind for layer in self._layers})
            implementation = (
                _IMPLEMENTATIONS.get(kinds[0], kinds[0]) if len(kinds) == 1 else "+".join(kinds)
            )
        metadata = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tensor": TENSOR,
            "layout": LAYOUT,
            "orientation": ORIENTATION,
            "streams": str(n),
            "layers": str(layers),
            "tokens": str(tokens),
            "token_order": TOKEN_ORDER,
            "modules": json.dumps([layer.description() for layer in self._layers]),
            "versions": json.dumps(package_versions()),
            "implementation": implementation,
        }
        for key, value in (extra_metadata or {}).items():
            if key in RESERVED_KEYS:
                raise ValueError(f"extra_metadata may not set '{key}': the capture writes it")
            if not isinstance(key, str) or not isinstance(value, str):
                raise ValueError(f"metadata must map strings to strings, got {key!r}: {value!r}")
            metadata[key] = value
        return metadata

    def save(
        self,
        path: str | os.PathLike,
        *,
        implementation: str | None = None,
        extra_metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Writes the capture as safetensors: one F32 tensor ``hres`` ``[layers, tokens, n, n]``
        (C order, rows = output streams) and the metadata of :meth:`metadata`.

        ``implementation`` defaults to the layers' kind (``lucidrains_mhc`` …), ``extra_metadata``
        adds string keys (for example the checkpoint's training step).
        """
        metadata = self.metadata(implementation, extra_metadata)
        layers, tokens, n = self._checked_shape()
        entry = TensorEntry(
            name=TENSOR,
            dtype="F32",
            shape=(layers, tokens, n, n),
            parts=tuple(layer.hres for layer in self._layers),
        )
        write_safetensors(path, [entry], metadata)


def capture_hres(model: nn.Module) -> Capture:
    """A context manager that records the H_res of every supported module of ``model``.

    >>> with capture_hres(model) as cap:
    ...     model(batch)
    >>> cap.save("hres.safetensors")     # [L, T, n, n] f32, rows = output streams

    Raises :class:`NoSupportedModulesError` if ``model`` (or any of its submodules) has no
    supported module, and :class:`UnsupportedModuleError` for a supported class in a
    configuration that has no n×n H_res per token.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"capture_hres expects a torch.nn.Module, got {type(model).__name__}")
    found: list[tuple[str, nn.Module, Adapter]] = []
    for name, module in model.named_modules():
        adapter = adapter_for(module)
        if adapter is not None:
            name = name or "(root)"
            adapter.check(module, name)
            found.append((name, module, adapter))
    if not found:
        raise NoSupportedModulesError(
            f"no supported hyper-connection module in {type(model).__name__}: mhc_capture knows "
            "hyper-connections 0.4.x HyperConnections, ManifoldConstrainedHyperConnections and "
            "mHCv2, and DeepSeek-V4 Blocks (hc_pre with hc_attn_*/hc_ffn_* parameters)"
            + ("" if _lucidrains_importable() else "; note: hyper_connections is not importable")
        )
    return Capture(found)


def _lucidrains_importable() -> bool:
    try:
        importlib.import_module("hyper_connections")
    except ImportError:
        return False
    return True


def read_capture(path: str | os.PathLike) -> tuple[torch.Tensor, dict[str, object]]:
    """Reads a capture file: the ``hres`` tensor and its metadata, with ``modules`` and
    ``versions`` decoded from JSON. Checks the format and that the shape matches the metadata."""
    path = os.fspath(path)
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != FORMAT:
        raise SafetensorsError(
            f"{path}: metadata format = {metadata.get('format')!r}, expected '{FORMAT}'"
        )
    if TENSOR not in tensors:
        raise SafetensorsError(f"{path}: no tensor '{TENSOR}'")
    hres = tensors[TENSOR]
    missing = [k for k in RESERVED_KEYS if k not in metadata]
    if missing:
        raise SafetensorsError(f"{path}: metadata lacks {', '.join(missing)}")
    expected = [int(metadata[k]) for k in ("layers", "tokens", "streams", "streams")]
    if list(hres.shape) != expected:
        raise SafetensorsError(
            f"{path}: tensor '{TENSOR}' has shape {list(hres.shape)}, the metadata says {expected}"
        )
    decoded: dict[str, object] = dict(metadata)
    decoded["modules"] = json.loads(metadata["modules"])
    decoded["versions"] = json.loads(metadata["versions"])
    return hres, decoded
