"""The capture file: safetensors written by hand, read back identically by us and by the
safetensors package, with the agreed metadata."""

from __future__ import annotations

import json
import os
import struct
import tempfile
import unittest

import torch

import mhc_capture
from deepseek_v4_block import Transformer
from mhc_capture import SafetensorsError, capture_hres, read_capture, read_safetensors
from mhc_capture import safetensors_io

try:
    from safetensors import safe_open

    HAVE_SAFETENSORS = True
except ImportError:
    HAVE_SAFETENSORS = False


def captured(blocks=2, batch=2, seq=3):
    torch.manual_seed(5)
    model = Transformer(vocab=16, dim=8, hc_mult=4, blocks=blocks)
    with capture_hres(model) as cap:
        model(torch.randint(0, 16, (batch, seq)))
    return cap


class CaptureFileTest(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.directory.name, "hres.safetensors")

    def tearDown(self):
        self.directory.cleanup()

    def test_layout_header_and_metadata(self):
        cap = captured()
        cap.save(self.path, extra_metadata={"step": "300"})
        with open(self.path, "rb") as file:
            raw = file.read()
        (length,) = struct.unpack("<Q", raw[:8])
        self.assertEqual((8 + length) % 8, 0, "data must start 8-byte aligned")
        header = json.loads(raw[8 : 8 + length])
        self.assertEqual(
            header["hres"],
            {"dtype": "F32", "shape": [4, 6, 4, 4], "data_offsets": [0, 4 * 6 * 16 * 4]},
        )
        self.assertEqual(len(raw), 8 + length + 4 * 6 * 16 * 4)
        meta = header["__metadata__"]
        self.assertEqual(meta["format"], "mhc-capture")
        self.assertEqual(meta["format_version"], "1")
        self.assertEqual(meta["tensor"], "hres")
        self.assertEqual(meta["layout"], "[layer, token, out, in]")
        self.assertEqual(meta["orientation"], "rows are output streams")
        self.assertEqual((meta["streams"], meta["layers"], meta["tokens"]), ("4", "4", "6"))
        self.assertEqual(
            meta["token_order"],
            "flattened leading dimensions of the module input, batch-major then sequence",
        )
        self.assertEqual(meta["implementation"], "deepseek_v4")
        self.assertEqual(meta["step"], "300")
        modules = json.loads(meta["modules"])
        self.assertEqual(
            modules[1],
            {
                "layer": 2,
                "name": "layers.0",
                "class": "deepseek_v4_block.Block",
                "call": 1,
                "kind": "deepseek_v4",
                "sublayer": "ffn",
            },
        )
        versions = json.loads(meta["versions"])
        self.assertEqual(versions["mhc_capture"], mhc_capture.__version__)
        self.assertEqual(versions["torch"], torch.__version__)
        self.assertIn("python", versions)
        self.assertTrue(all(isinstance(v, str) for v in meta.values()))

    def test_our_reader_gives_back_the_same_bits(self):
        cap = captured()
        cap.save(self.path)
        hres, meta = read_capture(self.path)
        self.assertTrue(torch.equal(hres, cap.hres()))
        self.assertEqual(meta["modules"], [layer.description() for layer in cap.layers])

    @unittest.skipUnless(HAVE_SAFETENSORS, "safetensors not importable (pip install safetensors)")
    def test_the_safetensors_package_reads_it_identically(self):
        cap = captured()
        cap.save(self.path, implementation="custom")
        with safe_open(self.path, "pt") as file:
            self.assertEqual(list(file.keys()), ["hres"])
            self.assertEqual(file.metadata(), cap.metadata("custom"))
            hres = file.get_tensor("hres")
        self.assertEqual(hres.dtype, torch.float32)
        self.assertTrue(torch.equal(hres, cap.hres()))

    def test_the_writer_without_numpy_writes_the_same_bytes(self):
        cap = captured()
        cap.save(self.path)
        with open(self.path, "rb") as file:
            with_numpy = file.read()
        saved, safetensors_io._numpy = safetensors_io._numpy, None
        try:
            cap.save(self.path)
        finally:
            safetensors_io._numpy = saved
        with open(self.path, "rb") as file:
            self.assertEqual(file.read(), with_numpy)

    def test_no_temporary_file_is_left_behind(self):
        captured().save(self.path)
        self.assertEqual(os.listdir(self.directory.name), ["hres.safetensors"])

    def test_a_lying_header_is_an_error(self):
        captured().save(self.path)
        with open(self.path, "r+b") as file:
            file.write(struct.pack("<Q", 10**9))
        with self.assertRaisesRegex(SafetensorsError, "header length 1000000000 exceeds the file"):
            read_safetensors(self.path)


if __name__ == "__main__":
    unittest.main()
