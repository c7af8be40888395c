#!/usr/bin/env python3
"""Splits tests/data/checkpoints/deepseek_v4.safetensors into a sharded model with FP8 and INT8 tensors
around the hc_* tensors, as DeepSeek-V4's released checkpoints hold them.

Run from anywhere (needs numpy only; safetensors is written by hand):

    python3 tests/data/make_deepseek_sharded.py

Writes tests/data/checkpoints/deepseek_v4_sharded/{model-0000{1,2}-of-00002.safetensors,
model.safetensors.index.json}. Blocks 0 and 1 go to shard 1, block 2 and the head to shard 2; every
layer's attention and FFN weights become F8_E4M3 bytes (layers.N.attn.wq.weight) with an F32 scale
(layers.N.attn.wq.scale), and an I8 tensor (layers.N.ffn.w1.weight) sits beside them. The hc_* tensors
keep their f32 values, so the H_res (static, probed or certified) must equal those of the single file.
Deterministic.
"""
import json
import struct
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "checkpoints" / "deepseek_v4.safetensors"
OUT = HERE / "checkpoints" / "deepseek_v4_sharded"


def read_safetensors(path):
    raw = path.read_bytes()
    length = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + length])
    data = raw[8 + length:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        tensors[name] = (entry["dtype"], entry["shape"], data[start:end])
    return tensors


def write_safetensors(path, entries):
    header, position, blobs = {}, 0, []
    for name, (dtype, shape, raw) in entries:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [position, position + len(raw)]}
        position += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    tensors = read_safetensors(SOURCE)
    rng = np.random.default_rng(4)
    shards = {1: [], 2: []}
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        parts = name.split(".")
        shard = 1 if parts[0] == "layers" and int(parts[1]) < 2 else 2
        if name.endswith("attn.wq.weight"):
            fp8 = rng.integers(0, 256, size=int(np.prod(shape)), dtype=np.uint8).tobytes()
            shards[shard].append((name, ("F8_E4M3", shape, fp8)))
            scale = np.ones(1, "<f4").tobytes()
            shards[shard].append((name.replace(".weight", ".scale"), ("F32", [1], scale)))
        elif name.endswith("ffn.w1.weight"):
            int8 = rng.integers(-128, 128, size=int(np.prod(shape)), dtype=np.int8).tobytes()
            shards[shard].append((name, ("I8", shape, int8)))
        else:
            shards[shard].append((name, (dtype, shape, raw)))
    OUT.mkdir(exist_ok=True)
    weight_map = {}
    for k, entries in shards.items():
        file = f"model-0000{k}-of-00002.safetensors"
        write_safetensors(OUT / file, entries)
        weight_map.update({name: file for name, _ in entries})
    index = {"metadata": {"total_size": sum(len(e[1][2]) for v in shards.values() for e in v)},
             "weight_map": dict(sorted(weight_map.items()))}
    (OUT / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
