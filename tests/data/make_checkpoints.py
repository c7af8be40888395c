#!/usr/bin/env python3
"""Generates the small checkpoints and the bad-input corpus used by tests/load.rs.

Run from the repository root (writes tests/data/checkpoints/* and tests/data/bad/*):

    /work/venv/bin/python tests/data/make_checkpoints.py

Written with Python 3.11, numpy 2.4.6 and safetensors 0.8.0; torch is NOT needed: the `.pt`
files are written by hand in torch.save's zip layout (`archive/data.pkl`, `archive/data/N`,
`archive/byteorder`, `archive/version`, 64-byte aligned storages) with a pickle produced by the
`pickle` module against stand-in `torch` / `torch._utils` modules (protocol 2, like torch.save).
Output is deterministic (fixed seeds). Every expected H_res is computed here in float64 numpy,
independently of the Rust code.

Not generated here: the lucidrains mHC fixture (checkpoint.safetensors, checkpoint.pt,
hres.npy, hres.safetensors, static_hres.npy), copied from the project's shared fixtures.
"""

import collections
import io
import json
import os
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = os.path.dirname(os.path.abspath(__file__))
CHECKPOINTS = os.path.join(ROOT, "checkpoints")
BAD = os.path.join(ROOT, "bad")

EPS_DEEPSEEK = 1e-6
ITERATIONS = 20


# ---------------------------------------------------------------------------------------------
# Writers


def write_safetensors(path, entries, metadata=None, header_order=None):
    """Writes a safetensors file by hand. `entries`: (name, dtype, shape, raw bytes) in data
    order; `header_order`: the order of names in the JSON header (default: data order)."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    offsets = {}
    position = 0
    for name, dtype, shape, raw in entries:
        offsets[name] = (dtype, list(shape), [position, position + len(raw)])
        position += len(raw)
    for name in header_order or [e[0] for e in entries]:
        dtype, shape, span = offsets[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": span}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, raw in entries:
            f.write(raw)


def f32_entry(name, array):
    array = np.ascontiguousarray(array, dtype="<f4")
    return (name, "F32", array.shape, array.tobytes())


def bf16_bytes(array):
    """bfloat16 bytes of an array whose values are exact in bfloat16 (checked)."""
    bits = np.ascontiguousarray(array, dtype="<f4").view("<u4")
    assert np.all(bits & 0xFFFF == 0), "value not exact in bfloat16"
    return (bits >> 16).astype("<u2").tobytes()


# Stand-ins so that pickle writes torch's GLOBAL names; nothing here is ever called.
_torch = types.ModuleType("torch")
_torch_utils = types.ModuleType("torch._utils")
STORAGE_TYPES = {}
for _name in ["FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage"]:
    _cls = type(_name, (), {})
    _cls.__module__ = "torch"
    setattr(_torch, _name, _cls)
    STORAGE_TYPES[_name] = _cls


def _rebuild_tensor_v2(*args):
    raise RuntimeError("stand-in: never called")


_rebuild_tensor_v2.__module__ = "torch._utils"
_torch_utils._rebuild_tensor_v2 = _rebuild_tensor_v2
_torch._utils = _torch_utils
sys.modules.setdefault("torch", _torch)
sys.modules.setdefault("torch._utils", _torch_utils)


class Storage:
    def __init__(self, key, storage_type, numel, raw):
        self.key, self.storage_type, self.numel, self.raw = key, storage_type, numel, raw


class Tensor:
    """Pickles exactly like a torch tensor: _rebuild_tensor_v2(storage, offset, size, stride,
    requires_grad, backward_hooks)."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        return (
            _rebuild_tensor_v2,
            (self.storage, self.offset, tuple(self.size), tuple(self.stride), False,
             collections.OrderedDict()),
        )


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", STORAGE_TYPES[obj.storage_type], obj.key, "cpu", obj.numel)
        return None


def write_torch_zip(path, pickle_bytes, storages, root="archive"):
    """torch.save's zip layout, storages 64-byte aligned with 'FB' padding extras."""
    members = [(f"{root}/data.pkl", pickle_bytes), (f"{root}/.format_version", b"1"),
               (f"{root}/.storage_alignment", b"64"), (f"{root}/byteorder", b"little")]
    members += [(f"{root}/data/{s.key}", s.raw) for s in storages]
    members += [(f"{root}/version", b"3\n"), (f"{root}/.data/serialization_id", b"0" * 40)]
    with open(path, "wb") as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as z:
            for name, data in members:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED
                start = f.tell() + 30 + len(name.encode())
                pad = (-(start + 4)) % 64
                info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
                z.writestr(info, data)


def torch_pickle(obj):
    buffer = io.BytesIO()
    TorchPickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def state_dict(tensors):
    """An OrderedDict with a `_metadata` attribute, as nn.Module.state_dict() returns (pickles
    with a BUILD opcode)."""
    sd = collections.OrderedDict(tensors)
    sd._metadata = collections.OrderedDict({"": {"version": 1}})
    return sd


# ---------------------------------------------------------------------------------------------
# Reference computations (float64)


def sinkhorn_rows_then_columns(logits, iterations=ITERATIONS):
    m = np.exp(logits - logits.max())
    for _ in range(iterations):
        m = m / m.sum(axis=1, keepdims=True)
        m = m / m.sum(axis=0, keepdims=True)
    return m


def deepseek_comb(base, n):
    """DeepSeek-V4 reference procedure on the static comb logits; returns H_res = combᵀ."""
    comb = base[2 * n:].reshape(n, n)
    comb = np.exp(comb - comb.max(axis=-1, keepdims=True))
    comb = comb / comb.sum(axis=-1, keepdims=True) + EPS_DEEPSEEK
    comb = comb / (comb.sum(axis=-2, keepdims=True) + EPS_DEEPSEEK)
    for _ in range(ITERATIONS - 1):
        comb = comb / (comb.sum(axis=-1, keepdims=True) + EPS_DEEPSEEK)
        comb = comb / (comb.sum(axis=-2, keepdims=True) + EPS_DEEPSEEK)
    return comb.T


def amax_forward(p):
    return np.abs(p.sum(axis=1)).max()


# ---------------------------------------------------------------------------------------------
# Checkpoints


def lucidrains_hc_24():
    """Unconstrained HC, lucidrains layout, 24 layers, n = 4, dim = 8: static_alpha[:, 1:] =
    I + noise (non-symmetric), so the composite grows well beyond 10."""
    rng = np.random.default_rng(24)
    n, dim, layers = 4, 8, 24
    tensors, expected = {}, []
    for i in range(layers):
        alpha = np.zeros((n, n + 1), dtype=np.float32)
        alpha[i % n, 0] = 1.0
        alpha[:, 1:] = np.eye(n) + rng.normal(0.0, 0.3, (n, n)) + 0.05
        p = f"layers.{i}."
        tensors[p + "static_alpha"] = alpha
        tensors[p + "dynamic_alpha_fn"] = rng.normal(0, 0.02, (dim, n + 1)).astype(np.float32)
        tensors[p + "dynamic_alpha_scale"] = np.array(0.01, dtype=np.float32)
        tensors[p + "static_beta"] = np.ones((n, 1), dtype=np.float32)
        tensors[p + "dynamic_beta_fn"] = np.zeros((dim, 1), dtype=np.float32)
        tensors[p + "dynamic_beta_scale"] = np.array(0.01, dtype=np.float32)
        tensors[p + "norm.gamma"] = np.zeros(dim, dtype=np.float32)
        expected.append(alpha[:, 1:].astype(np.float64).T)
    expected = np.stack(expected)
    composite = np.eye(n)
    for h in expected:
        composite = h @ composite
    assert amax_forward(composite) > 10, amax_forward(composite)
    save_file(tensors, os.path.join(CHECKPOINTS, "lucidrains_hc_24.safetensors"))
    np.save(os.path.join(CHECKPOINTS, "lucidrains_hc_24_expected.npy"), expected)


def layer_order_shuffled():
    """12 HC layers whose header and data order are both shuffled; layer i has
    H_res[0, 0] = 1 + i/16 (exact in f32)."""
    rng = np.random.default_rng(12)
    n = 4
    entries = []
    for i in range(12):
        alpha = np.zeros((n, n + 1), dtype=np.float32)
        alpha[0, 0] = 1.0
        alpha[:, 1:] = np.eye(n)
        alpha[0, 1] = 1.0 + i / 16.0
        alpha[1, 2] = -i / 32.0
        entries.append(f32_entry(f"layers.{i}.static_alpha", alpha))
    data_order = [entries[k] for k in rng.permutation(12)]
    header_order = [entries[k][0] for k in rng.permutation(12)]
    write_safetensors(
        os.path.join(CHECKPOINTS, "layer_order_shuffled.safetensors"),
        data_order,
        metadata={"implementation": "hyper_connections.HyperConnections"},
        header_order=header_order,
    )


def mhc_pytorch():
    """mhc-pytorch layout: 3 blocks × (attention, FFN) modules, n = 4, C = 8."""
    rng = np.random.default_rng(7)
    n, c = 4, 8
    tensors, expected = {}, []
    for block in range(3):
        for module in ["attn_hc", "ffn_hc"]:
            p = f"blocks.{block}.{module}."
            tensors[p + "phi_pre.weight"] = rng.normal(0, 0.1, (n, n * c)).astype(np.float32)
            tensors[p + "phi_pre.bias"] = rng.normal(0, 0.1, n).astype(np.float32)
            tensors[p + "phi_post.weight"] = rng.normal(0, 0.1, (n, n * c)).astype(np.float32)
            tensors[p + "phi_post.bias"] = rng.normal(0, 0.1, n).astype(np.float32)
            tensors[p + "phi_res.weight"] = rng.normal(0, 0.1, (n * n, n * c)).astype(np.float32)
            bias = rng.normal(0, 1.0, n * n).astype(np.float32)
            alpha = np.array([rng.uniform(0.5, 2.0)], dtype=np.float32)
            b_res = (rng.normal(0, 1.0, (n, n)) + 2 * np.eye(n)).astype(np.float32)
            tensors[p + "phi_res.bias"] = bias
            tensors[p + "alpha_pre"] = np.ones(1, dtype=np.float32)
            tensors[p + "alpha_post"] = np.ones(1, dtype=np.float32)
            tensors[p + "alpha_res"] = alpha
            tensors[p + "b_pre"] = np.zeros(n, dtype=np.float32)
            tensors[p + "b_post"] = np.zeros(n, dtype=np.float32)
            tensors[p + "b_res"] = b_res
            logits = alpha.astype(np.float64)[0] * bias.astype(np.float64).reshape(n, n) \
                + b_res.astype(np.float64)
            expected.append(sinkhorn_rows_then_columns(logits))
        tensors[f"blocks.{block}.attn.weight"] = rng.normal(0, 0.1, (c, c)).astype(np.float32)
    save_file(tensors, os.path.join(CHECKPOINTS, "mhc_pytorch.safetensors"))
    np.save(os.path.join(CHECKPOINTS, "mhc_pytorch_expected.npy"), np.stack(expected))


def deepseek_v4():
    """DeepSeek-V4 layout: 3 blocks, n = 4, dim = 8, plus hc_head_* and other weights."""
    rng = np.random.default_rng(4)
    n, dim = 4, 8
    tensors, expected = {}, []
    for block in range(3):
        p = f"layers.{block}."
        for sub in ["attn", "ffn"]:
            base = rng.normal(0, 1.0, (2 + n) * n)
            base[2 * n:] += 4.0 * np.eye(n).ravel()
            base = base.astype(np.float32)
            tensors[p + f"hc_{sub}_fn"] = rng.normal(0, 0.02, ((2 + n) * n, n * dim)).astype(
                np.float32)
            tensors[p + f"hc_{sub}_base"] = base
            tensors[p + f"hc_{sub}_scale"] = np.array([0.1, 0.1, 0.1], dtype=np.float32)
            expected.append(deepseek_comb(base.astype(np.float64), n))
        tensors[p + "attn.wq.weight"] = rng.normal(0, 0.1, (dim, dim)).astype(np.float32)
        tensors[p + "ffn.w1.weight"] = rng.normal(0, 0.1, (2 * dim, dim)).astype(np.float32)
    tensors["hc_head_fn"] = rng.normal(0, 0.02, (n, n * dim)).astype(np.float32)
    tensors["hc_head_base"] = rng.normal(0, 1.0, n).astype(np.float32)
    tensors["hc_head_scale"] = np.array([0.1], dtype=np.float32)
    tensors["embed.weight"] = rng.normal(0, 0.1, (16, dim)).astype(np.float32)
    save_file(tensors, os.path.join(CHECKPOINTS, "deepseek_v4.safetensors"))
    np.save(os.path.join(CHECKPOINTS, "deepseek_v4_expected.npy"), np.stack(expected))


def dtype_values():
    """A [3, 2, 4, 4] stack of multiples of 1/32 in [-2, 2): exact in f16, bf16, f32, f64."""
    rng = np.random.default_rng(16)
    return rng.integers(-64, 64, (3, 2, 4, 4)).astype(np.float64) / 32.0


def dtypes():
    values = dtype_values()
    np.save(os.path.join(CHECKPOINTS, "dtype_values.npy"), values)
    shape = values.shape
    for name, dtype, raw in [
        ("f16", "F16", values.astype("<f2").tobytes()),
        ("bf16", "BF16", bf16_bytes(values)),
        ("f32", "F32", values.astype("<f4").tobytes()),
        ("f64", "F64", values.astype("<f8").tobytes()),
    ]:
        write_safetensors(os.path.join(CHECKPOINTS, f"dtype_{name}.safetensors"),
                          [("hres", dtype, shape, raw)])
    np.save(os.path.join(CHECKPOINTS, "dtype_f16.npy"), values.astype("<f2"))
    np.save(os.path.join(CHECKPOINTS, "dtype_f64_big_endian.npy"), values.astype(">f8"))
    np.save(os.path.join(CHECKPOINTS, "dtype_f32_fortran.npy"),
            np.asfortranarray(values.astype("<f4")))
    np.savez(os.path.join(CHECKPOINTS, "dtypes_stored.npz"), f16=values.astype("<f2"),
             f32=values.astype("<f4"), f64=values)
    np.savez_compressed(os.path.join(CHECKPOINTS, "dtypes_deflated.npz"),
                        f16=values.astype("<f2"), f32=values.astype("<f4"), f64=values)

    # A .pt with one storage per dtype, plus views that exercise offsets and strides.
    numel = values.size
    storages = [
        Storage("0", "HalfStorage", numel, values.astype("<f2").tobytes()),
        Storage("1", "BFloat16Storage", numel, bf16_bytes(values)),
        Storage("2", "FloatStorage", numel, values.astype("<f4").tobytes()),
        Storage("3", "DoubleStorage", numel, values.astype("<f8").tobytes()),
        Storage("4", "LongStorage", 3, np.arange(3, dtype="<i8").tobytes()),
    ]
    contiguous = [32, 16, 4, 1]  # C-order strides of [3, 2, 4, 4]
    tensors = [
        ("f16", Tensor(storages[0], 0, shape, contiguous)),
        ("bf16", Tensor(storages[1], 0, shape, contiguous)),
        ("f32", Tensor(storages[2], 0, shape, contiguous)),
        ("f64", Tensor(storages[3], 0, shape, contiguous)),
        # values[1] (offset 32 elements) as a [2, 4, 4] view.
        ("f64_offset", Tensor(storages[3], 32, shape[1:], [16, 4, 1])),
        # values[2, 1] transposed: a non-contiguous [4, 4] view with strides (1, 4).
        ("f32_transposed", Tensor(storages[2], 2 * 32 + 16, [4, 4], [1, 4])),
        ("tokens", Tensor(storages[4], 0, [3], [1])),
    ]
    obj = {"model": state_dict(tensors), "step": 300, "lr": 5e-3, "tags": ["a", "b"]}
    write_torch_zip(os.path.join(CHECKPOINTS, "dtypes.pt"), torch_pickle(obj), storages)


def write_pt_state_dict(path, named_arrays):
    """A `.pt` holding one state dict of f32 tensors, in the given (registration) order, one
    storage per tensor."""
    storages, tensors = [], []
    for key, (name, array) in enumerate(named_arrays):
        array = np.ascontiguousarray(array, dtype="<f4")
        storage = Storage(str(key), "FloatStorage", array.size, array.tobytes())
        strides = [int(s // 4) for s in array.strides]
        storages.append(storage)
        tensors.append((name, Tensor(storage, 0, list(array.shape), strides)))
    write_torch_zip(path, torch_pickle(state_dict(tensors)), storages)


def two_modules_per_block():
    """lucidrains mHC with two hyper-connection modules per block, registered (and executed)
    mixer first, then ffn: `blocks.{b}.mixer.*`, `blocks.{b}.ffn.*`, 3 blocks, n = 4, dim = 8.
    Alphabetical order would put ffn first. The .pt keeps registration order; the
    .safetensors (sorted header) cannot tell. Expected: the 6 static H_res in execution order."""
    rng = np.random.default_rng(6)
    n, dim = 4, 8
    named, expected = [], []
    for b in range(3):
        for module in ["mixer", "ffn"]:
            p = f"blocks.{b}.{module}."
            alpha = np.zeros((n, n + 1), dtype=np.float32)
            alpha[b % n, 0] = 1.0
            alpha[:, 1:] = 2.0 * np.eye(n) + rng.normal(0.0, 0.5, (n, n))
            named += [
                (p + "static_alpha", alpha),
                (p + "dynamic_alpha_fn", rng.normal(0, 0.02, (1, dim, n + 1))),
                (p + "pre_branch_scale", np.full(1, 0.01)),
                (p + "residual_scale", np.full(1, 0.01)),
                (p + "static_beta", np.ones(n)),
                (p + "dynamic_beta_fn", np.zeros(dim)),
                (p + "h_post_scale", np.array(0.01)),
                (p + "norm.gamma", np.zeros(dim)),
            ]
            expected.append(sinkhorn_rows_then_columns(alpha[:, 1:].astype(np.float64).T))
    write_pt_state_dict(os.path.join(CHECKPOINTS, "two_modules.pt"), named)
    save_file({k: np.asarray(v, dtype=np.float32) for k, v in named},
              os.path.join(CHECKPOINTS, "two_modules.safetensors"))
    np.save(os.path.join(CHECKPOINTS, "two_modules_expected.npy"), np.stack(expected))


def candidates_numeric():
    """Three square stacks named so that byte order differs from numeric order, and a
    non-square rank-3 tensor that cannot be a stack."""
    rng = np.random.default_rng(10)
    save_file({
        "hres.10": rng.normal(size=(2, 4, 4)).astype(np.float32),
        "hres.2": rng.normal(size=(2, 4, 4)).astype(np.float32),
        "hres.1": rng.normal(size=(2, 4, 4)).astype(np.float32),
        "proj.0": rng.normal(size=(2, 3, 5)).astype(np.float32),
    }, os.path.join(CHECKPOINTS, "candidates_numeric.safetensors"))


def sharded():
    """The lucidrains mHC fixture's static_alpha (and the parameters that mark it as mHC) split
    over two shards; a third shard holds only `lm_head.weight` and is deliberately garbage, so
    loading H_res proves that unneeded shards are never opened."""
    source = load_file(os.path.join(CHECKPOINTS, "checkpoint.safetensors"))
    directory = os.path.join(CHECKPOINTS, "sharded")
    os.makedirs(directory, exist_ok=True)
    shards = [{}, {}]
    for i in range(12):
        for role in ["static_alpha", "residual_scale", "pre_branch_scale", "h_post_scale"]:
            name = f"model.layers.{i}.{role}"
            shards[i // 6][name] = source[f"layers.{i}.{role}"]
    names = ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
             "model-00003-of-00003.safetensors"]
    weight_map = {}
    for shard, name in zip(shards, names):
        save_file(shard, os.path.join(directory, name), metadata={"format": "pt"})
        weight_map.update({tensor: name for tensor in shard})
    with open(os.path.join(directory, names[2]), "wb") as f:
        f.write(b"this shard is deliberately not a safetensors file\n")
    weight_map["lm_head.weight"] = names[2]
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 1234}, "weight_map": weight_map}, f, indent=2,
                  sort_keys=True)


# ---------------------------------------------------------------------------------------------
# Bad inputs


def bad_corpus():
    small = [f32_entry("a", np.arange(4)), f32_entry("b", np.arange(4) + 4)]
    path = lambda name: os.path.join(BAD, name)  # noqa: E731

    open(path("empty.safetensors"), "wb").close()
    with open(path("tiny.safetensors"), "wb") as f:
        f.write(b"\x10\x00\x00")

    write_safetensors(path("truncated.safetensors"), small)
    with open(path("truncated.safetensors"), "r+b") as f:
        f.truncate(os.path.getsize(path("truncated.safetensors")) - 10)

    write_safetensors(path("header_length_lies.safetensors"), small)
    with open(path("header_length_lies.safetensors"), "r+b") as f:
        f.write(struct.pack("<Q", 99999999))

    # b claims 1000 floats (4000 bytes, consistent with its shape) but the file holds 16.
    entries = [small[0], ("b", "F32", [1000], small[1][3])]
    write_safetensors(path("offsets_out_of_range.safetensors"), entries)
    with open(path("offsets_out_of_range.safetensors"), "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header["b"]["data_offsets"] = [16, 4016]
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path("offsets_out_of_range.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + raw[8 + n:])

    buffer = io.BytesIO()
    np.save(buffer, np.zeros((3, 4, 4)))
    raw = bytearray(buffer.getvalue())
    start = raw.index(b"{")
    raw[start:start + 20] = b"{'descr': <f8 ,,,, ("
    with open(path("corrupt_header.npy"), "wb") as f:
        f.write(raw)

    np.savez(path("truncated.npz"), a=np.zeros((3, 4, 4)), b=np.ones((3, 4, 4)))
    with open(path("truncated.npz"), "r+b") as f:
        f.truncate(os.path.getsize(path("truncated.npz")) // 2)

    # A pickle that would run a shell command if Python unpickled it. Must be refused, never
    # executed (the command is a harmless echo anyway).
    evil = (b"\x80\x02cposix\nsystem\nq\x00X\x25\x00\x00\x00echo mhc-analyze-must-not-execute-this"
            b"q\x01\x85q\x02Rq\x03.")
    write_torch_zip(path("evil_reduce.pt"), evil, [])

    # A valid start, then NEWOBJ (0x81) at byte 13, outside torch's subset.
    opcode = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01" + b"\x81" + b"."
    assert opcode.index(b"\x81") == 13
    write_torch_zip(path("unsupported_opcode.pt"), opcode, [])

    # A tensor view reaching past its storage (offset 10 + 16 elements in a 16-element storage).
    storage = Storage("0", "FloatStorage", 16, np.zeros(16, dtype="<f4").tobytes())
    obj = {"hres": Tensor(storage, 10, [1, 4, 4], [16, 4, 1])}
    write_torch_zip(path("view_out_of_range.pt"), torch_pickle(obj), [storage])

    with open(path("legacy.pt"), "wb") as f:
        f.write(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.")

    save_file({"hres": np.zeros((3, 4, 5), dtype=np.float32)}, path("non_square.safetensors"))
    np.save(path("rank2.npy"), np.eye(4))

    stack = np.tile(np.eye(4), (6, 8, 1, 1))
    stack[2, 5, 1, 3] = np.nan
    np.save(path("nan_layer3_token5.npy"), stack)

    tensors = {}
    for i in range(4):
        alpha = np.hstack([np.zeros((4, 1)), np.eye(4)]).astype(np.float32)
        if i == 2:
            alpha[1, 2] = np.nan
        tensors[f"layers.{i}.static_alpha"] = alpha
        tensors[f"layers.{i}.dynamic_alpha_scale"] = np.array(0.01, dtype=np.float32)
    save_file(tensors, path("nan_static_alpha.safetensors"))

    save_file({"layers.0.mlp.weight": np.zeros((8, 8), dtype=np.float32),
               "layers.0.mlp.bias": np.zeros(8, dtype=np.float32),
               "layers.0.attn.alpha": np.zeros(8, dtype=np.float32),
               "emb.weight": np.zeros((16, 8), dtype=np.float32)},
              path("no_hres.safetensors"))

    tensors = {}
    for i in range(3):
        tensors[f"layers.{i}.static_alpha"] = np.zeros((4, 6 if i == 1 else 5), dtype=np.float32)
        tensors[f"layers.{i}.residual_scale"] = np.zeros(1, dtype=np.float32)
    save_file(tensors, path("wrong_shape_static_alpha.safetensors"))

    tensors = {}
    for i in [0, 1, 3]:
        tensors[f"layers.{i}.static_alpha"] = np.zeros((4, 5), dtype=np.float32)
        tensors[f"layers.{i}.residual_scale"] = np.zeros(1, dtype=np.float32)
    save_file(tensors, path("missing_layer.safetensors"))

    save_file({f"layers.{i}.static_alpha": np.zeros((4, 5), dtype=np.float32) for i in range(2)},
              path("hc_or_mhc_unknown.safetensors"))

    with open(path("not_a_tensor_file.txt"), "w") as f:
        f.write("hello, this is text\n")

    os.makedirs(path("directory.safetensors"), exist_ok=True)
    with open(os.path.join(path("directory.safetensors"), ".gitkeep"), "w"):
        pass


def main():
    os.makedirs(CHECKPOINTS, exist_ok=True)
    os.makedirs(BAD, exist_ok=True)
    lucidrains_hc_24()
    layer_order_shuffled()
    two_modules_per_block()
    candidates_numeric()
    mhc_pytorch()
    deepseek_v4()
    dtypes()
    sharded()
    bad_corpus()


if __name__ == "__main__":
    main()
