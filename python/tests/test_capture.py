"""The captured H_res are the matrices each supported module applies, in the promised order."""

from __future__ import annotations

import unittest

import torch
from torch import nn

from deepseek_v4_block import Transformer
from helpers import HAVE_LUCIDRAINS, assert_applied, needs_lucidrains
from mhc_capture import (
    InconsistentCaptureError,
    NoSupportedModulesError,
    UnsupportedModuleError,
    capture_hres,
)

if HAVE_LUCIDRAINS:
    from lucidrains_models import KINDS, ToyModel, randomize_hyper_connections

CLASSES = {
    "hc": "hyper_connections.hyper_connections.HyperConnections",
    "mhc": "hyper_connections.manifold_constrained_hyper_connections."
    "ManifoldConstrainedHyperConnections",
    "mhc_v2": "hyper_connections.mHCv2.ManifoldConstrainedHyperConnections",
}


def small_model(kind: str, seed: int = 0, **layer_kwargs):
    torch.manual_seed(seed)
    model = ToyModel(kind, layers=3, streams=4, dim=16, vocab=32, **layer_kwargs)
    randomize_hyper_connections(model, torch.Generator().manual_seed(seed + 1))
    return model


def record_width_connections(model, kind):
    """Wraps each layer's width_connection (before the capture wraps it) to keep, per call, the
    streams the mixing acts on and the mixed streams the module passes on, as [T, n, d]."""
    calls = []

    def tokens_first(t, n):
        if kind == "mhc_v2":  # [b, s, n, d]
            return t.reshape(-1, n, t.shape[-1])
        # HC, mHC: streams folded into the batch, [(b n), s, d] -> [b, s, n, d]
        t = t.reshape(t.shape[0] // n, n, *t.shape[1:]).movedim(1, -2)
        return t.reshape(-1, n, t.shape[-1])

    for layer in model.layers:
        bound = layer.width_connection

        def width_connection(residuals, *args, _layer=layer, _bound=bound, **kwargs):
            branch_input, passed_on, extra = _bound(residuals, *args, **kwargs)
            n = _layer.num_residual_streams
            x_in = getattr(_layer, "residual_transform", lambda t: t)(residuals)
            calls.append((tokens_first(x_in, n), tokens_first(passed_on, n)))
            return branch_input, passed_on, extra

        layer.__dict__["width_connection"] = width_connection
    return calls


class FirstView(nn.Module):
    """A branch for num_input_views = 2: it receives [views, b, s, d] and uses view 0."""

    def __init__(self, branch: nn.Module):
        super().__init__()
        self.inner = branch

    def forward(self, views):
        return self.inner(views[0])


@needs_lucidrains
class LucidrainsCaptureTest(unittest.TestCase):
    def check_applied(self, kind, **layer_kwargs):
        model = small_model(kind, **layer_kwargs)
        calls = record_width_connections(model, kind)
        tokens = torch.randint(0, 32, (2, 5), generator=torch.Generator().manual_seed(7))
        with capture_hres(model) as cap:
            model(tokens)
        hres = cap.hres()
        self.assertEqual(tuple(hres.shape), (3, 10, 4, 4))
        self.assertEqual(len(calls), 3)
        for layer, (x_in, passed_on) in enumerate(calls):
            assert_applied(self, hres[layer], x_in, passed_on, f"{kind} layer {layer + 1}")
        # Per-token matrices really differ between tokens, and are not symmetric.
        self.assertGreater(float((hres[:, 0] - hres[:, 1]).abs().max()), 1e-3)
        self.assertGreater(float((hres - hres.transpose(-1, -2)).abs().max()), 1e-3)
        entries = [layer.description() for layer in cap.layers]
        self.assertEqual(
            entries,
            [
                {
                    "layer": i + 1,
                    "name": f"layers.{i}",
                    "class": CLASSES[kind],
                    "call": 1,
                    "kind": kind,
                }
                for i in range(3)
            ],
        )
        return hres

    def test_hc_matrices_are_the_applied_ones(self):
        hres = self.check_applied("hc")
        self.assertLess(float(hres.min()), 0.0, "HC is unconstrained: expected negative entries")

    def test_mhc_matrices_are_the_applied_ones(self):
        hres = self.check_applied("mhc")
        # Sinkhorn in the package's order leaves the column sums exact (float32).
        self.assertLess(float((hres.sum(-2) - 1).abs().max()), 1e-5)

    def test_mhc_v2_matrices_are_the_applied_ones(self):
        self.check_applied("mhc_v2")

    def test_mhc_with_several_dynamic_alpha_proposals(self):
        self.check_applied("mhc", num_dynamic_alpha_proposals=3)

    def test_hc_with_two_input_views_uses_the_residual_columns(self):
        model = small_model("hc", num_input_views=2)
        calls = record_width_connections(model, "hc")
        for layer in model.layers:
            layer.branch = FirstView(layer.branch)
        with capture_hres(model) as cap:
            model(torch.arange(6).reshape(2, 3))
        for layer, (x_in, passed_on) in enumerate(calls):
            assert_applied(self, cap.hres()[layer], x_in, passed_on, f"views=2 layer {layer + 1}")

    def test_tokens_are_batch_major_then_sequence(self):
        for kind in KINDS:
            model = small_model(kind)
            tokens = torch.randint(0, 32, (3, 4), generator=torch.Generator().manual_seed(3))
            with capture_hres(model) as cap:
                model(tokens)
            together = cap.hres()
            for b in range(3):
                with capture_hres(model) as alone:
                    model(tokens[b : b + 1])
                torch.testing.assert_close(
                    together[:, 4 * b : 4 * (b + 1)], alone.hres(), atol=1e-6, rtol=1e-6,
                    msg=f"{kind}: sequence {b}",
                )

    def test_a_module_called_twice_is_two_layers(self):
        model = small_model("mhc")
        shared = model.layers[1]
        model.layers = nn.ModuleList([model.layers[0], shared, model.layers[2], shared])
        with capture_hres(model) as cap:
            model(torch.arange(4).reshape(1, 4))
        entries = [(e.layer, e.name, e.call) for e in cap.layers]
        self.assertEqual(
            entries,
            [(1, "layers.0", 1), (2, "layers.1", 1), (3, "layers.2", 1), (4, "layers.1", 2)],
        )
        self.assertEqual(len(cap.modules), 3)

    def test_capturing_changes_nothing_and_detaches(self):
        model = small_model("mhc")
        tokens = torch.arange(8).reshape(2, 4)
        expected = model(tokens)
        with capture_hres(model) as cap:
            logits = model(tokens)
            logits.sum().backward()  # gradients still flow through the wrapped method
        self.assertTrue(torch.equal(logits, expected))
        self.assertIsNotNone(model.layers[0].static_alpha.grad)
        for layer in model.layers:
            self.assertNotIn("width_connection", layer.__dict__)
        model(tokens)
        self.assertEqual(len(cap.layers), 3, "nothing is recorded after the with block")

    def test_different_batch_shapes_fail_at_save_naming_the_layer(self):
        model = small_model("hc")
        with capture_hres(model) as cap:
            model(torch.zeros(2, 4, dtype=torch.long))
            model(torch.zeros(1, 4, dtype=torch.long))
        with self.assertRaises(InconsistentCaptureError) as raised:
            cap.save("/nonexistent/never-written.safetensors")
        message = str(raised.exception)
        self.assertIn("layer 4 ('layers.0', call 2", message)
        self.assertIn("has 4 tokens", message)
        self.assertIn("has 8", message)
        cap.clear()
        self.assertRaises(InconsistentCaptureError, cap.hres)

    def test_frac_connections_are_refused(self):
        model = ToyModel("mhc", layers=2, dim=16, vocab=8, num_fracs=2)
        with self.assertRaisesRegex(UnsupportedModuleError, "layers.0.*num_fracs = 2"):
            capture_hres(model)


class DeepseekV4CaptureTest(unittest.TestCase):
    def test_comb_transposed_is_the_applied_mixing(self):
        torch.manual_seed(0)
        model = Transformer(vocab=32, dim=16, hc_mult=4, blocks=3)
        calls = []
        for block in model.layers:
            bound = block.hc_post

            def hc_post(x, residual, post, comb, _bound=bound):
                # The module's own hc_post with a zero branch output is its mixing term alone.
                mixed = _bound(torch.zeros_like(x), residual, post, comb)
                n, d = residual.shape[-2:]
                calls.append((residual.reshape(-1, n, d), mixed.reshape(-1, n, d)))
                return _bound(x, residual, post, comb)

            block.__dict__["hc_post"] = hc_post
        tokens = torch.randint(0, 32, (2, 5), generator=torch.Generator().manual_seed(1))
        with capture_hres(model) as cap:
            model(tokens)
        hres = cap.hres()
        self.assertEqual(tuple(hres.shape), (6, 10, 4, 4))
        for layer, (x_in, mixed) in enumerate(calls):
            assert_applied(self, hres[layer], x_in, mixed, f"deepseek layer {layer + 1}")
        self.assertGreater(float((hres - hres.transpose(-1, -2)).abs().max()), 1e-3)
        # The reference Sinkhorn ends with a column normalisation of comb: row sums of H exact.
        self.assertLess(float((hres.sum(-1) - 1).abs().max()), 1e-5)
        described = [(e.layer, e.name, e.call, e.kind, e.sublayer) for e in cap.layers]
        expected = []
        for block in range(3):
            for sub in ("attn", "ffn"):
                expected.append((len(expected) + 1, f"layers.{block}", 1, "deepseek_v4", sub))
        self.assertEqual(described, expected)
        self.assertEqual(cap.metadata()["implementation"], "deepseek_v4")
        for block in model.layers:
            self.assertNotIn("hc_pre", block.__dict__)


class ErrorTest(unittest.TestCase):
    def test_a_model_without_supported_modules_is_refused(self):
        model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
        expected = "no supported hyper-connection module in Sequential"
        with self.assertRaisesRegex(NoSupportedModulesError, expected):
            capture_hres(model)

    def test_nothing_captured_cannot_be_saved(self):
        model = Transformer(blocks=1)
        with capture_hres(model) as cap:
            pass
        with self.assertRaisesRegex(InconsistentCaptureError, "nothing captured"):
            cap.save("/nonexistent/never-written.safetensors")

    def test_reserved_metadata_keys_cannot_be_overridden(self):
        model = Transformer(blocks=1)
        with capture_hres(model) as cap:
            model(torch.zeros(1, 2, dtype=torch.long))
        with self.assertRaisesRegex(ValueError, "may not set 'streams'"):
            cap.metadata(extra_metadata={"streams": "5"})


if __name__ == "__main__":
    unittest.main()
