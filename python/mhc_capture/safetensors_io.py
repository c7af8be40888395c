"""A small safetensors writer and reader that need torch only.

File layout (https://github.com/huggingface/safetensors, "Format"): an unsigned 64-bit
little-endian header length N, N bytes of JSON, then the tensor data. The JSON maps each tensor
name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets relative to the start of the
data) and may hold ``"__metadata__"``, a map of string to string. Data is little-endian, C order.
The header is padded with spaces so that the data starts at a multiple of 8 bytes.

The writer streams: it writes the header first (every size is known then) and each tensor's bytes
in order, so a tensor made of many parts is never concatenated in memory. It writes to a temporary
file beside the target and renames it, so a reader never sees half a file.
"""

from __future__ import annotations

import array
import json
import os
import secrets
import struct
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

try:  # optional: torch does not require numpy; without it only float32 can be written
    import numpy as _numpy
except ImportError:
    _numpy = None

# safetensors dtype names and the torch dtypes they are read into.
_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


class SafetensorsError(ValueError):
    """A file that is not valid safetensors, or a tensor this reader does not handle."""


@dataclass(frozen=True)
class TensorEntry:
    """One tensor to write: its name, safetensors dtype, shape and data in C order as parts.

    ``parts`` are contiguous tensors of ``dtype`` whose elements, concatenated in order, are the
    tensor's elements in C order (for example one ``[T, n, n]`` block per layer of an
    ``[L, T, n, n]`` tensor).
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    parts: tuple[torch.Tensor, ...]

    def nbytes(self) -> int:
        return sum(part.numel() * part.element_size() for part in self.parts)


def _little_endian_bytes(part: torch.Tensor) -> bytes:
    """The raw little-endian bytes of a contiguous CPU tensor."""
    part = part.detach().to("cpu").contiguous()
    if _numpy is not None:
        raw = part.numpy()
        if sys.byteorder != "little":
            raw = raw.byteswap()
        return raw.tobytes()
    if part.dtype != torch.float32:
        raise SafetensorsError(f"without numpy only float32 can be written, got {part.dtype}")
    values = array.array("f", part.flatten().tolist())
    if sys.byteorder != "little":
        values.byteswap()
    return values.tobytes()


def write_safetensors(
    path: str | os.PathLike, entries: Iterable[TensorEntry], metadata: Mapping[str, str]
) -> None:
    """Writes ``entries`` (data in the given order) and ``metadata`` to ``path`` atomically."""
    entries = list(entries)
    header: dict[str, object] = {}
    if metadata:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise SafetensorsError(
                    f"metadata must map strings to strings, got {key!r}: {value!r}"
                )
        header["__metadata__"] = dict(metadata)
    offset = 0
    for entry in entries:
        if entry.dtype not in _DTYPES:
            raise SafetensorsError(f"tensor '{entry.name}': unknown dtype {entry.dtype}")
        expected = 1
        for dim in entry.shape:
            expected *= dim
        count = sum(part.numel() for part in entry.parts)
        if count != expected:
            raise SafetensorsError(
                f"tensor '{entry.name}': shape {list(entry.shape)} needs {expected} elements, "
                f"the parts hold {count}"
            )
        for part in entry.parts:
            if part.dtype != _DTYPES[entry.dtype]:
                raise SafetensorsError(
                    f"tensor '{entry.name}': a part has dtype {part.dtype}, expected {entry.dtype}"
                )
        size = entry.nbytes()
        header[entry.name] = {
            "dtype": entry.dtype,
            "shape": list(entry.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)

    path = os.fspath(path)
    directory, base = os.path.split(os.path.abspath(path))
    temporary = os.path.join(directory, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # O_EXCL: never reuse an existing file; mode 0o666 minus the umask, as open() would give.
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(struct.pack("<Q", len(text)))
            file.write(text)
            for entry in entries:
                for part in entry.parts:
                    file.write(_little_endian_bytes(part))
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Reads every tensor of a safetensors file (into memory) and its ``__metadata__``."""
    path = os.fspath(path)
    with open(path, "rb") as file:
        data = file.read()
    if len(data) < 8:
        raise SafetensorsError(f"{path}: {len(data)} bytes, too short for a safetensors header")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise SafetensorsError(
            f"{path}: header length {length} exceeds the file ({len(data) - 8} bytes after it)"
        )
    try:
        header = json.loads(data[8 : 8 + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SafetensorsError(f"{path}: header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    body = data[8 + length :]
    tensors: dict[str, torch.Tensor] = {}
    for name, info in header.items():
        dtype_name = info.get("dtype")
        if dtype_name not in _DTYPES:
            raise SafetensorsError(f"{path}: tensor '{name}': unsupported dtype {dtype_name}")
        dtype = _DTYPES[dtype_name]
        shape = [int(d) for d in info["shape"]]
        begin, end = (int(v) for v in info["data_offsets"])
        count = 1
        for dim in shape:
            count *= dim
        item = torch.empty((), dtype=dtype).element_size()
        if not 0 <= begin <= end <= len(body) or end - begin != count * item:
            raise SafetensorsError(
                f"{path}: tensor '{name}': data_offsets [{begin}, {end}] do not fit shape "
                f"{shape} of {dtype_name} in a {len(body)}-byte data section"
            )
        if sys.byteorder != "little" and item > 1:
            raise SafetensorsError(f"{path}: reading on a big-endian machine is not supported")
        if count == 0:
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:
            raw = bytearray(body[begin:end])
            tensors[name] = torch.frombuffer(raw, dtype=dtype).reshape(shape)
    return tensors, dict(metadata)
