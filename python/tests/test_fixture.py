"""The companion reproduces the shared fixture's capture (made another way, without this package)
from the fixture's checkpoint and tokens: tests/data/checkpoints/{checkpoint,hres}.safetensors; and
the committed HC capture in tests/data/captures/ comes from the committed HC checkpoint there.

In this model the per-token H_res of a layer differ by at most 1.2e-7 between tokens: the
embedding is copied into identical streams and every stream receives the same branch output, so
the dynamic logits add one constant per output stream, which the Sinkhorn normalisation removes.
The test therefore checks the trained static part and the orientation; the per-token part is
checked by test_capture against each class's forward pass."""

from __future__ import annotations

import json
import os
import unittest

import torch

from helpers import CHECKPOINTS, HAVE_LUCIDRAINS, REPOSITORY, needs_lucidrains
from mhc_capture import capture_hres, read_capture, read_safetensors

if HAVE_LUCIDRAINS:
    from lucidrains_models import ToyModel

# Largest |difference| allowed between the companion's capture and the stored one. Both run the
# same float32 computation; differences come only from kernel choices between machines.
TOLERANCE = 1e-6


@needs_lucidrains
class FixtureTest(unittest.TestCase):
    def test_reproduces_the_stored_capture(self):
        state, meta = read_safetensors(os.path.join(CHECKPOINTS, "checkpoint.safetensors"))
        self.assertEqual(meta["implementation"], "lucidrains_mhc")
        stored, _ = read_safetensors(os.path.join(CHECKPOINTS, "hres.safetensors"))
        model = ToyModel("mhc", layers=12, streams=4, dim=64, vocab=64)
        model.load_state_dict(state, strict=True)
        model.eval()
        with torch.no_grad(), capture_hres(model) as cap:
            model(stored["tokens"].reshape(1, 32))
        hres = cap.hres()
        self.assertEqual(tuple(hres.shape), (12, 32, 4, 4))
        difference = float((hres - stored["hres"]).abs().max())
        print(f"\n  fixture capture: max |companion - stored| = {difference:.3e}", end=" ")
        self.assertLessEqual(difference, TOLERANCE)
        # The comparison can fail: a transposed capture, or the untrained model's, is far off.
        transposed = stored["hres"].transpose(-1, -2)
        self.assertGreater(float((stored["hres"] - transposed).abs().max()), 1e-3)
        self.assertGreater(float((stored["hres"] - stored["hres_init"]).abs().max()), 1e-3)

    def test_the_committed_hc_capture_comes_from_the_committed_checkpoint(self):
        """tests/data/captures/: the HC model trained by make_captures.py, captured again."""
        directory = os.path.join(REPOSITORY, "tests", "data", "captures")
        state, meta = read_safetensors(os.path.join(directory, "lucidrains_hc.safetensors"))
        self.assertEqual((meta["implementation"], meta["step"]), ("lucidrains_hc", "300"))
        capture_path = os.path.join(directory, "lucidrains_hc_hres.safetensors")
        stored, stored_meta = read_capture(capture_path)
        self.assertEqual(stored_meta["implementation"], "lucidrains_hc")
        self.assertEqual({m["kind"] for m in stored_meta["modules"]}, {"hc"})
        model = ToyModel("hc", layers=12, streams=4, dim=64, vocab=64)
        model.load_state_dict(state, strict=True)
        tokens = torch.tensor(json.loads(stored_meta["input_ids"])).reshape(1, -1)
        with torch.no_grad(), capture_hres(model) as cap:
            model(tokens)
        self.assertLessEqual(float((cap.hres() - stored).abs().max()), TOLERANCE)
        # HC's dynamic term makes the matrices differ between tokens.
        self.assertGreater(float((stored[:, 0] - stored[:, 1]).abs().max()), 1e-3)


if __name__ == "__main__":
    unittest.main()
