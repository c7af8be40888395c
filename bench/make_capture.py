#!/usr/bin/env python3
"""Writes a large per-token capture `[layers, tokens, n, n]` (f32 .npy) for timing `mhc-analyze audit`.

Usage:
    python3 bench/make_capture.py OUT.npy [--layers 60] [--tokens 1000000] [--streams 4] [--seed 0]
    python3 bench/make_capture.py OUT.npz --zeros [--layers 60] [--tokens 2000000]

The default file is what issue 13 asks the tool to audit in 256 MB: 60 layers × 1,000,000 tokens
of 4×4 f32 matrices, 3.84 GB. Each matrix is an mHC-like H_res: Sinkhorn (20 iterations, columns
then rows) of exp(I + 0.3·G + S_l), with G standard normal per token and S_l = 0.5·G_l a per-layer
shift shared by the layer's tokens (so layers differ and composite gains drift from 1 as in a
trained model). The array is written through a memory map one block of tokens at a time, so
memory stays small whatever the size. `--zeros` writes the decompression-bomb case instead: an
.npz (savez_compressed) of zeros, 7.7 GB inflated for the defaults of 60 × 2,000,000, a few MB on
disk.

Needs numpy (a venv with `pip install numpy`). Deterministic for a seed.
"""
import argparse
import sys
import zipfile

import numpy as np


def sinkhorn_columns_then_rows(logits, iterations=20):
    """Sinkhorn of exp(logits) over the last two axes: each iteration normalises columns, then rows."""
    k = np.exp(logits - logits.max(axis=(-2, -1), keepdims=True))
    for _ in range(iterations):
        k /= k.sum(axis=-2, keepdims=True)
        k /= k.sum(axis=-1, keepdims=True)
    return k


def write_capture(path, layers, tokens, n, seed, block=250_000):
    out = np.lib.format.open_memmap(path, mode="w+", dtype="<f4", shape=(layers, tokens, n, n))
    rng = np.random.default_rng(seed)
    shifts = 0.5 * rng.standard_normal((layers, n, n))
    eye = np.eye(n)
    for layer in range(layers):
        for start in range(0, tokens, block):
            count = min(block, tokens - start)
            logits = eye + shifts[layer] + 0.3 * rng.standard_normal((count, n, n))
            out[layer, start:start + count] = sinkhorn_columns_then_rows(logits).astype("<f4")
        out.flush()
        print(f"layer {layer + 1}/{layers}", file=sys.stderr, flush=True)
    del out


def write_zeros_npz(path, layers, tokens, n):
    """A deflated npz member of zeros, written in pieces (never held in memory)."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1,), "<f4"))
    header["shape"] = (layers, tokens, n, n)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        with archive.open("hres.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            zeros = np.zeros(1 << 20, "<f4").tobytes()
            remaining = layers * tokens * n * n * 4
            while remaining > 0:
                piece = zeros[: min(len(zeros), remaining)]
                member.write(piece)
                remaining -= len(piece)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--layers", type=int, default=60)
    parser.add_argument("--tokens", type=int, default=None)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--zeros", action="store_true", help="write the deflated zeros .npz")
    args = parser.parse_args()
    if args.zeros:
        write_zeros_npz(args.out, args.layers, args.tokens or 2_000_000, args.streams)
    else:
        write_capture(args.out, args.layers, args.tokens or 1_000_000, args.streams, args.seed)


if __name__ == "__main__":
    main()
