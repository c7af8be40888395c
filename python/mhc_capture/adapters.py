"""Adapters: for each supported module class, where H_res is computed and how to record it.

An adapter finds its modules (``matches``), rejects configurations whose mixing is not one n×n
matrix per token (``check``), and wraps one method of each module instance so that every call
hands the matrices the module applies to ``emit`` as an ``[tokens, n, n]`` tensor with **rows =
output streams** (``x_next = H @ x``). The wrapper is an instance attribute that shadows the
class's method; ``detach`` removes it. The module's own computation is never replaced: the
wrapper calls it and reads what it produced.

Supported:

* lucidrains ``hyper-connections`` 0.4.x: ``HyperConnections`` (kind ``hc``),
  ``ManifoldConstrainedHyperConnections`` (``mhc``) and
  ``mHCv2.ManifoldConstrainedHyperConnections`` (``mhc_v2``). Their ``width_connection`` mixes
  the streams with one einsum, ``mix = einsum(alpha, streams)``, where ``alpha[..., s_in, t]``
  holds the H_pre weights in columns ``t < v`` (v = ``num_input_views``) and the residual mixing
  in columns ``t >= v`` (``alpha[..., s_in, v + s_out]``). The wrapper runs
  ``width_connection`` under a ``TorchFunctionMode`` that remembers the operands of the last
  two-operand ``torch.einsum`` (the mixing one in all three classes), and records
  ``alpha[..., v:]`` transposed. This is the tensor the product really receives: after the
  Sinkhorn (mHC), the tanh and scales (HC), and the mean over dynamic-alpha proposals.
* DeepSeek-V4 reference ``Block`` (kind ``deepseek_v4``; inference/model.py of the DeepSeek-V4
  release, https://huggingface.co/deepseek-ai/DeepSeek-V4-Flash): ``hc_pre(x, hc_fn, hc_scale,
  hc_base)`` returns ``(y, post, comb)`` and ``hc_post`` adds
  ``sum_i comb[..., i, j] * residual[..., i, :]`` to output stream j, so H_res = ``comb``
  transposed. The wrapper records the ``comb`` that ``hc_pre`` returns, whatever computes it
  (the release's tilelang kernel, a fused operator, or plain torch). Each Block calls ``hc_pre``
  twice, attention then FFN: two layers, told apart by ``sublayer`` ("attn" / "ffn").
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import SimpleNamespace

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .errors import UnsupportedModuleError

Emit = Callable[[torch.Tensor, "str | None"], None]
"""Receives one call's H_res, ``[tokens, n, n]`` (rows = output streams), and its sublayer."""

Detach = Callable[[], None]

_MISSING = object()


def class_path(module: nn.Module) -> str:
    """``package.module.Class`` of a module: unambiguous where two classes share a name (the
    package's mHC and mHCv2 classes are both ``ManifoldConstrainedHyperConnections``)."""
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


class Adapter(ABC):
    """Knows one family of modules that compute H_res. Subclass it and pass an instance to
    :func:`mhc_capture.register_adapter` to support another implementation."""

    #: The ``kind`` written for each layer in the capture's metadata.
    kind: str

    @abstractmethod
    def matches(self, module: nn.Module) -> bool:
        """Whether ``module`` is one of this adapter's modules."""

    def check(self, module: nn.Module, name: str) -> None:
        """Raises :class:`UnsupportedModuleError` if ``module``'s configuration cannot be
        captured as one n×n matrix per token. Called once per module before attaching."""

    @abstractmethod
    def attach(self, module: nn.Module, name: str, emit: Emit) -> Detach:
        """Starts recording ``module``'s H_res into ``emit`` at each call; returns the function
        that stops it."""


def wrap_method(
    module: nn.Module,
    attribute: str,
    make_wrapper: Callable[[Callable, SimpleNamespace], Callable],
) -> Detach:
    """Shadows ``module.<attribute>`` with ``make_wrapper(bound, state)`` on this instance.

    ``bound`` is the method as it was (the class's, or an instance override already present);
    ``state.active`` turns False at detach, after which the wrapper must just call ``bound``
    (needed when something else wrapped the same method after us and ours cannot be removed).
    """
    previous = module.__dict__.get(attribute, _MISSING)
    bound = getattr(module, attribute)
    state = SimpleNamespace(active=True)
    wrapper = make_wrapper(bound, state)
    module.__dict__[attribute] = wrapper

    def detach() -> None:
        state.active = False
        if module.__dict__.get(attribute) is wrapper:
            if previous is _MISSING:
                del module.__dict__[attribute]
            else:
                module.__dict__[attribute] = previous

    return detach


def to_capture_rows(matrices: torch.Tensor, n: int) -> torch.Tensor:
    """``[..., n, n]`` matrices flattened over their leading dimensions (C order: batch-major,
    then sequence) into a new CPU float32 ``[tokens, n, n]`` tensor, detached from autograd."""
    return matrices.detach().reshape(-1, n, n).to(device="cpu", dtype=torch.float32, copy=True)


class _MixingEinsumRecorder(TorchFunctionMode):
    """While active, remembers the operands of the last ``torch.einsum`` with two operands."""

    def __init__(self) -> None:
        super().__init__()
        self.operands: tuple[torch.Tensor, ...] | None = None
        self.equation: str | None = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.einsum and args:
            operands = args[1:]
            if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
                operands = tuple(operands[0])
            if len(operands) == 2:
                self.equation = args[0]
                self.operands = tuple(operands)
        return func(*args, **kwargs)


class LucidrainsAdapter(Adapter):
    """One class of the lucidrains ``hyper-connections`` package (0.4.x).

    ``alpha_tail`` names the trailing dimensions of the mixing einsum's first operand after the
    token dimensions: ``("f1", "s", "f2", "t")`` for HC and mHC (``'... f1 s f2 t, ... f1 s d'``),
    ``("s", "f", "t")`` for mHCv2 (``'... s f tf, ... s f d'``).
    """

    def __init__(self, kind: str, module_path: str, class_name: str, alpha_tail: tuple[str, ...]):
        self.kind = kind
        self._module_path = module_path
        self._class_name = class_name
        self._alpha_tail = alpha_tail
        self._cls: type | None | object = _MISSING

    def _class(self) -> type | None:
        if self._cls is _MISSING:
            try:
                self._cls = getattr(importlib.import_module(self._module_path), self._class_name)
            except (ImportError, AttributeError):
                self._cls = None
        return self._cls  # type: ignore[return-value]

    def matches(self, module: nn.Module) -> bool:
        cls = self._class()
        return cls is not None and isinstance(module, cls)

    def check(self, module: nn.Module, name: str) -> None:
        fracs = getattr(module, "num_fracs", 1)
        if fracs != 1:
            raise UnsupportedModuleError(
                f"module '{name}' ({class_path(module)}) has num_fracs = {fracs}: frac-connections "
                "mix (fraction, stream) pairs, which is not one n×n H_res per token; only "
                "num_fracs = 1 is supported"
            )
        if not getattr(module, "add_branch_out_to_residual", True):
            raise UnsupportedModuleError(
                f"module '{name}' ({class_path(module)}) has add_branch_out_to_residual = False: "
                "it returns the branch output alone, so its mixed streams are never passed on"
            )

    def _hres(self, module: nn.Module, name: str, recorder: _MixingEinsumRecorder) -> torch.Tensor:
        n = module.num_residual_streams
        views = module.num_input_views
        if recorder.operands is None:
            raise UnsupportedModuleError(
                f"module '{name}' ({class_path(module)}): width_connection made no two-operand "
                "einsum; this version of hyper-connections is not supported (0.4.x is)"
            )
        alpha = recorder.operands[0]
        tail = self._alpha_tail
        expected = {"f1": 1, "f2": 1, "f": 1, "s": n, "t": views + n}
        shape = tuple(alpha.shape)
        if len(shape) < len(tail) or any(
            shape[len(shape) - len(tail) + k] != expected[d] for k, d in enumerate(tail)
        ):
            want = ", ".join(f"{d}={expected[d]}" for d in tail)
            raise UnsupportedModuleError(
                f"module '{name}' ({class_path(module)}): the mixing einsum "
                f"'{recorder.equation}' got alpha of shape {list(shape)}, expected [..., {want}]; "
                "this version of hyper-connections is not supported (0.4.x is)"
            )
        if tail == ("f1", "s", "f2", "t"):
            residual_mixing = alpha[..., 0, :, 0, views:]
        else:
            residual_mixing = alpha[..., :, 0, views:]
        # alpha[..., s_in, v + s_out]: the transpose has rows = output streams.
        return to_capture_rows(residual_mixing.transpose(-1, -2), n)

    def attach(self, module: nn.Module, name: str, emit: Emit) -> Detach:
        def make_wrapper(bound: Callable, state: SimpleNamespace) -> Callable:
            def width_connection(*args, **kwargs):
                if not state.active:
                    return bound(*args, **kwargs)
                recorder = _MixingEinsumRecorder()
                with recorder:
                    result = bound(*args, **kwargs)
                emit(self._hres(module, name, recorder), None)
                return result

            return width_connection

        return wrap_method(module, "width_connection", make_wrapper)


class DeepseekV4Adapter(Adapter):
    """The DeepSeek-V4 reference ``Block``: any module with an ``hc_pre`` method and the six
    ``hc_{attn,ffn}_{fn,base,scale}`` parameters."""

    kind = "deepseek_v4"
    _PARAMETERS = tuple(
        f"hc_{sub}_{role}" for sub in ("attn", "ffn") for role in ("fn", "base", "scale")
    )

    def matches(self, module: nn.Module) -> bool:
        return callable(getattr(module, "hc_pre", None)) and all(
            isinstance(getattr(module, p, None), torch.Tensor) for p in self._PARAMETERS
        )

    def attach(self, module: nn.Module, name: str, emit: Emit) -> Detach:
        def sublayer(args: tuple, kwargs: dict) -> str | None:
            given = list(args) + list(kwargs.values())
            for sub in ("attn", "ffn"):
                if any(value is getattr(module, f"hc_{sub}_fn") for value in given):
                    return sub
            return None

        def make_wrapper(bound: Callable, state: SimpleNamespace) -> Callable:
            def hc_pre(*args, **kwargs):
                result = bound(*args, **kwargs)
                if not state.active:
                    return result
                if not (isinstance(result, tuple) and len(result) == 3):
                    raise UnsupportedModuleError(
                        f"module '{name}' ({class_path(module)}): hc_pre returned "
                        f"{type(result).__name__}, expected the tuple (y, post, comb)"
                    )
                comb = result[2]
                n = getattr(module, "hc_mult", comb.shape[-1])
                if comb.dim() < 2 or tuple(comb.shape[-2:]) != (n, n):
                    raise UnsupportedModuleError(
                        f"module '{name}' ({class_path(module)}): hc_pre returned comb of shape "
                        f"{list(comb.shape)}, expected [..., {n}, {n}] (hc_mult = {n})"
                    )
                # comb[..., s_in, s_out]: the transpose has rows = output streams.
                emit(to_capture_rows(comb.transpose(-1, -2), n), sublayer(args, kwargs))
                return result

            return hc_pre

        return wrap_method(module, "hc_pre", make_wrapper)


_ADAPTERS: list[Adapter] = [
    LucidrainsAdapter(
        "hc", "hyper_connections.hyper_connections", "HyperConnections", ("f1", "s", "f2", "t")
    ),
    LucidrainsAdapter(
        "mhc",
        "hyper_connections.manifold_constrained_hyper_connections",
        "ManifoldConstrainedHyperConnections",
        ("f1", "s", "f2", "t"),
    ),
    LucidrainsAdapter(
        "mhc_v2", "hyper_connections.mHCv2", "ManifoldConstrainedHyperConnections", ("s", "f", "t")
    ),
    DeepseekV4Adapter(),
]


def register_adapter(adapter: Adapter) -> None:
    """Adds ``adapter`` to the ones :func:`mhc_capture.capture_hres` tries (after the built-in
    ones; the first that matches a module wins)."""
    if not isinstance(adapter, Adapter):
        raise TypeError(f"expected an mhc_capture.Adapter, got {type(adapter).__name__}")
    _ADAPTERS.append(adapter)


def adapter_for(module: nn.Module) -> Adapter | None:
    """The first registered adapter that matches ``module``, if any."""
    for adapter in _ADAPTERS:
        if adapter.matches(module):
            return adapter
    return None
