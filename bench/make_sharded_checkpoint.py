#!/usr/bin/env python3
"""Writes a sparse multi-GB sharded safetensors model for timing `mhc-analyze audit`.

Usage: python3 bench/make_sharded_checkpoint.py OUT_DIR [--layers 60] [--shards 4] [--gib-per-shard 2]

Each shard holds large dummy `layers.{i}.mlp.weight` tensors (f32, their bytes are a hole in a
sparse file, so the disk holds almost nothing) and, interleaved with them, the lucidrains mHC
parameters of its layers: `layers.{i}.static_alpha [4, 5]`, `residual_scale`, `pre_branch_scale`,
`h_post_scale` (so auto-detection picks lucidrains-mhc). `model.safetensors.index.json` maps every
tensor to its shard. Only the standard library is needed (the format is written by hand: 8-byte
little-endian header length, JSON header, data).
"""
import argparse
import json
import os
import random
import struct


def write_shard(path, tensors, dummy_bytes):
    """tensors: list of (name, shape, bytes or None for a dummy of dummy_bytes)."""
    header = {}
    offset = 0
    for name, shape, data in tensors:
        size = dummy_bytes if data is None else len(data)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        start = f.tell()
        position = 0
        for name, shape, data in tensors:
            if data is None:
                position += dummy_bytes
                f.seek(start + position)
            else:
                f.write(data)
                position += len(data)
        f.truncate(start + position)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--layers", type=int, default=60)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--gib-per-shard", type=float, default=2.0)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(0)
    n = 4
    per_shard = -(-args.layers // args.shards)
    dummy_per_layer = int(args.gib_per_shard * 2**30 / per_shard) // 4 * 4
    weight_map = {}
    for shard in range(args.shards):
        name = f"model-{shard + 1:05d}-of-{args.shards:05d}.safetensors"
        tensors = []
        for layer in range(shard * per_shard, min(args.layers, (shard + 1) * per_shard)):
            prefix = f"layers.{layer}."
            tensors.append((prefix + "mlp.weight", [dummy_per_layer // 4], None))
            alpha = []
            for i in range(n):
                alpha.append(0.1 * rng.gauss(0, 1))  # the H_pre column
                alpha.extend((1.0 if i == j else 0.0) + 0.5 * rng.gauss(0, 1) for j in range(n))
            tensors.append((prefix + "static_alpha", [n, n + 1], struct.pack(f"<{len(alpha)}f", *alpha)))
            for extra in ["residual_scale", "pre_branch_scale"]:
                tensors.append((prefix + extra, [1], struct.pack("<f", 1.0)))
            tensors.append((prefix + "h_post_scale", [], struct.pack("<f", 1.0)))
        write_shard(os.path.join(args.out, name), tensors, dummy_per_layer)
        for tensor in tensors:
            weight_map[tensor[0]] = name
    with open(os.path.join(args.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": args.shards * int(args.gib_per_shard * 2**30)},
                   "weight_map": weight_map}, f, indent=1)


if __name__ == "__main__":
    main()
