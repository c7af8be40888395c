#!/usr/bin/env python3
"""Runs the mhc_capture tests (unittest; pytest is not needed).

    python3 python/tests/run.py

Without torch it prints one SKIP line and exits 0; tests that need hyper-connections or
safetensors are skipped one by one when those are missing. Exit 1 if any test fails.
"""

import os
import sys
import unittest

sys.dont_write_bytecode = True  # keep __pycache__ out of the checkout

try:
    import torch
except ImportError:
    print(
        "SKIP python capture tests: torch not importable "
        "(pip install torch hyper-connections==0.4.11)"
    )
    sys.exit(0)

TESTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(TESTS))  # mhc_capture without installing it
sys.path.insert(0, TESTS)

torch.set_num_threads(1)
suite = unittest.defaultTestLoader.discover(TESTS, pattern="test_*.py", top_level_dir=TESTS)
result = unittest.TextTestRunner(verbosity=2).run(suite)
sys.exit(0 if result.wasSuccessful() else 1)
