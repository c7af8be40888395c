"""Shared pieces of the Python tests: paths, skips and the float32 tolerance."""

from __future__ import annotations

import os
import unittest

import torch

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECKPOINTS = os.path.join(REPOSITORY, "tests", "data", "checkpoints")

try:
    import hyper_connections  # noqa: F401

    HAVE_LUCIDRAINS = True
except ImportError:
    HAVE_LUCIDRAINS = False

needs_lucidrains = unittest.skipUnless(
    HAVE_LUCIDRAINS, "hyper_connections not importable (pip install hyper-connections==0.4.11)"
)

FLOAT32_EPSILON = 2.0**-23


def assert_applied(case: unittest.TestCase, hres, x_in, passed_on, what: str) -> float:
    """Checks ``passed_on[t] == hres[t] @ x_in[t]`` to float32 rounding and returns the largest
    error. ``hres`` [T, n, n]; ``x_in``, ``passed_on`` [T, n, d].

    The reference product is computed in float64; the module computed it in float32, each output
    a sum of n products, so its error is at most about n·ε₃₂·Σ_j |H_ij||x_j| (the tolerance
    is 4× that).
    """
    h = hres.detach().double()
    x = x_in.detach().double()
    reference = h @ x
    bound = h.abs() @ x.abs()
    n = h.shape[-1]
    error = (passed_on.detach().double() - reference).abs()
    tolerance = 4 * n * FLOAT32_EPSILON * bound + 1e-30
    worst = float((error / tolerance).max())
    case.assertLessEqual(
        worst,
        1.0,
        f"{what}: H_res @ x_in differs from the streams passed on beyond float32 rounding "
        f"(max error {float(error.max()):.3e})",
    )
    return float(error.max())
