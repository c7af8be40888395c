#!/usr/bin/env python3
"""Generates the small GGUF files used by tests/load.rs and tests/cli_audit.rs.

Run from the repository root, after make_checkpoints.py (it reads deepseek_v4.safetensors and
dtype_values.npy):

    /work/venv/bin/python tests/data/make_gguf.py

Written with Python 3.11, numpy 2.4.6, safetensors 0.8.0 and the `gguf` package 0.19.0
(llama.cpp's gguf-py). Output is deterministic (fixed seeds).

tests/data/checkpoints/
  deepseek_v4.gguf          the model of deepseek_v4.safetensors as llama.cpp's converter names
                            it (`layers.N.hc_attn_base` -> `blk.N.hc_attn_base.weight`,
                            `hc_head_*` -> `output_hc_*.weight`; f32 kept f32), with the converter's
                            hyper-connection metadata (`deepseek4.hyper_connection.count` ...),
                            alignment 64, and quantised / integer tensors (q8_0, q4_k, mxfp4,
                            i32, f16) between the hc tensors
  dtypes.gguf               dtype_values.npy as f16, bf16, f32 and f64; a [2, 3, 5] f32 arange
                            (non-square, to see the dimension order); q8_0 and i32 tensors; one
                            metadata pair of every value type, nested and long arrays
  dtypes_big_endian.gguf    the same, big-endian
  stack.gguf                one f32 [3, 2, 4, 4] stack (dtype_values) beside q8_0 and i32
                            tensors: auto-detection must pick the stack
tests/data/bad/
  gguf_*.gguf               a valid two-tensor file with one field broken each (see bad_corpus)
"""

import os
import struct

import numpy as np
from safetensors.numpy import load_file

import gguf
from gguf import GGMLQuantizationType as T

ROOT = os.path.dirname(os.path.abspath(__file__))
CHECKPOINTS = os.path.join(ROOT, "checkpoints")
BAD = os.path.join(ROOT, "bad")


def write(path, arch, add, endianess=gguf.GGUFEndian.LITTLE, alignment=None):
    """Writes a GGUF file: `add(writer)` adds metadata and tensors."""
    writer = gguf.GGUFWriter(path, arch, endianess=endianess)
    if alignment is not None:
        writer.add_custom_alignment(alignment)
    add(writer)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def q8_0(rng, rows, cols):
    """Random values quantised to q8_0 by gguf-py (uint8 blocks)."""
    values = rng.normal(0, 1, (rows, cols)).astype(np.float32)
    return gguf.quants.quantize(values, T.Q8_0)


def raw_blocks(rng, qtype, rows, elements):
    """Random bytes for `rows` rows of `elements` elements of a block type gguf-py cannot
    quantise to (q4_k, mxfp4): the reader lists them, never decodes them."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    return rng.integers(0, 256, (rows, elements // block * size), dtype=np.uint8)


def bf16_bits(values):
    """bfloat16 bit patterns (upper halves of the f32 patterns; exact for these values)."""
    bits = values.astype(np.float32).view(np.uint32)
    assert np.all(bits & 0xFFFF == 0)
    return (bits >> 16).astype(np.uint16)


def deepseek_v4():
    source = load_file(os.path.join(CHECKPOINTS, "deepseek_v4.safetensors"))
    rng = np.random.default_rng(14)
    blocks = 3

    def add(w):
        w.add_name("DeepSeek-V4 toy")
        w.add_block_count(blocks)
        w.add_uint32("general.quantization_version", 2)
        w.add_uint32("deepseek4.hyper_connection.count", 4)
        w.add_uint32("deepseek4.hyper_connection.sinkhorn_iterations", 20)
        w.add_float32("deepseek4.hyper_connection.epsilon", 1e-6)
        w.add_array("deepseek4.attention.compress_ratios", [4, 128, 0])
        w.add_tensor("token_embd.weight", source["embed.weight"].astype(np.float16))
        for b in range(blocks):
            for sub in ["attn", "ffn"]:
                for part in ["fn", "base", "scale"]:
                    w.add_tensor(f"blk.{b}.hc_{sub}_{part}.weight",
                                 source[f"layers.{b}.hc_{sub}_{part}"])
                if sub == "attn":
                    w.add_tensor(f"blk.{b}.attn_q_a.weight", q8_0(rng, 8, 32), raw_dtype=T.Q8_0)
                else:
                    w.add_tensor(f"blk.{b}.ffn_gate_exps.weight",
                                 raw_blocks(rng, T.Q4_K, 2, 256), raw_dtype=T.Q4_K)
                    w.add_tensor(f"blk.{b}.ffn_up_exps.weight",
                                 raw_blocks(rng, T.MXFP4, 2, 32), raw_dtype=T.MXFP4)
        w.add_tensor("blk.0.ffn_gate_tid2eid.weight",
                     rng.integers(0, 8, (16, 2)).astype(np.int32))
        for part in ["fn", "base", "scale"]:
            w.add_tensor(f"output_hc_{part}.weight", source[f"hc_head_{part}"])

    write(os.path.join(CHECKPOINTS, "deepseek_v4.gguf"), "deepseek4", add, alignment=64)


def dtypes(endianess, name):
    values = np.load(os.path.join(CHECKPOINTS, "dtype_values.npy"))
    rng = np.random.default_rng(15)

    def add(w):
        w.add_uint8("test.uint8", 200)
        w.add_int8("test.int8", -100)
        w.add_uint16("test.uint16", 60000)
        w.add_int16("test.int16", -30000)
        w.add_uint32("test.uint32", 4000000000)
        w.add_int32("test.int32", -2000000000)
        w.add_float32("test.float32", 0.1)
        w.add_bool("test.bool", True)
        w.add_string("test.string", "line one\nline \"two\"")
        w.add_uint64("test.uint64", 2**64 - 1)
        w.add_int64("test.int64", -(2**63))
        w.add_float64("test.float64", -2.5e-300)
        w.add_array("test.array_u32", [4, 128, 0])
        w.add_array("test.array_f32", [0.5, -1.25])
        w.add_array("test.array_str", ["a", "b\"c"])
        w.add_array("test.array_bool", [True, False])
        w.add_array("test.nested", [[1, 2], [3]])
        w.add_array("test.long", bytes(i % 256 for i in range(5000)))
        w.add_tensor("dtype_f16", values.astype(np.float16))
        w.add_tensor("dtype_bf16", bf16_bits(values), raw_shape=values.shape, raw_dtype=T.BF16)
        w.add_tensor("dtype_f32", values.astype(np.float32))
        w.add_tensor("dtype_f64", values.astype(np.float64))
        w.add_tensor("shape_2x3x5", np.arange(30, dtype=np.float32).reshape(2, 3, 5))
        w.add_tensor("quantised_q8_0", q8_0(rng, 2, 32), raw_dtype=T.Q8_0)
        w.add_tensor("integers_i32", np.array([1, -2, 3], dtype=np.int32))

    write(os.path.join(CHECKPOINTS, name), "test", add, endianess=endianess)


def stack():
    values = np.load(os.path.join(CHECKPOINTS, "dtype_values.npy"))
    rng = np.random.default_rng(16)

    def add(w):
        w.add_tensor("quantised_q8_0", q8_0(rng, 4, 32), raw_dtype=T.Q8_0)
        w.add_tensor("hres", values.astype(np.float32))
        w.add_tensor("integers_i32", np.arange(16, dtype=np.int32).reshape(4, 4))

    write(os.path.join(CHECKPOINTS, "stack.gguf"), "test", add)


def bad_corpus():
    """A valid file with metadata and two f32 [8] tensors, then one field broken per file."""
    path = os.path.join(BAD, "gguf_base.tmp")

    def add(w):
        w.add_uint32("test.streams", 4)
        w.add_tensor("tensor_a", np.arange(8, dtype=np.float32))
        w.add_tensor("tensor_b", np.arange(8, dtype=np.float32))

    write(path, "test", add)
    with open(path, "rb") as f:
        base = f.read()
    os.remove(path)

    def info_at(name):
        """Byte position of the rank field of tensor `name`'s info (after its name)."""
        encoded = name.encode()
        at = base.index(struct.pack("<Q", len(encoded)) + encoded)
        return at + 8 + len(encoded)

    def patched(edits):
        data = bytearray(base)
        for at, raw in edits:
            data[at:at + len(raw)] = raw
        return bytes(data)

    rank_b = info_at("tensor_b")
    type_b = rank_b + 4 + 8  # rank (u32) and one dimension (u64)
    offset_b = type_b + 4
    assert struct.unpack_from("<I", base, rank_b)[0] == 1
    assert struct.unpack_from("<Q", base, offset_b)[0] == 32
    cases = {
        # Cut in the middle of the tensor infos.
        "gguf_truncated.gguf": base[:rank_b],
        "gguf_version_1.gguf": patched([(4, struct.pack("<I", 1))]),
        "gguf_offset_beyond_file.gguf": patched([(offset_b, struct.pack("<Q", 4096))]),
        "gguf_absurd_kv_count.gguf": patched([(16, struct.pack("<Q", 1 << 60))]),
        "gguf_unknown_dtype.gguf": patched([(type_b, struct.pack("<I", 99))]),
        "gguf_misaligned_offset.gguf": patched([(offset_b, struct.pack("<Q", 36))]),
        "gguf_duplicate_names.gguf": patched([(rank_b - 1, b"a")]),
    }
    for name, data in cases.items():
        with open(os.path.join(BAD, name), "wb") as f:
            f.write(data)


def main():
    deepseek_v4()
    dtypes(gguf.GGUFEndian.LITTLE, "dtypes.gguf")
    dtypes(gguf.GGUFEndian.BIG, "dtypes_big_endian.gguf")
    stack()
    bad_corpus()


if __name__ == "__main__":
    main()
