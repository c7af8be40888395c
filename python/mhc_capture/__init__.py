"""mhc_capture: record the per-token residual-mixing matrices H_res of Hyper-Connections (HC) and
mHC modules during any PyTorch forward pass, and save them for ``mhc-analyze audit``.

>>> from mhc_capture import capture_hres
>>> with capture_hres(model) as cap:
...     model(batch)
>>> cap.save("hres.safetensors")      # [L, T, n, n] f32, rows = output streams

Convention: ``hres[l, t, i, j]`` is the weight of input stream j in output stream i, so
``x_next = H @ x`` (mHC, arXiv 2512.24880, eq. 3).
"""

__version__ = "0.1.0"

from .adapters import Adapter, register_adapter  # noqa: E402
from .capture import Capture, CapturedLayer, capture_hres, read_capture  # noqa: E402
from .errors import (  # noqa: E402
    CaptureError,
    InconsistentCaptureError,
    NoSupportedModulesError,
    UnsupportedModuleError,
)
from .safetensors_io import SafetensorsError, read_safetensors  # noqa: E402

__all__ = [
    "Adapter",
    "Capture",
    "CaptureError",
    "CapturedLayer",
    "InconsistentCaptureError",
    "NoSupportedModulesError",
    "SafetensorsError",
    "UnsupportedModuleError",
    "capture_hres",
    "read_capture",
    "read_safetensors",
    "register_adapter",
]
