"""The exceptions of mhc_capture: one base class, one subclass per way a capture can fail."""

from __future__ import annotations


class CaptureError(Exception):
    """Base class of every error raised by mhc_capture."""


class NoSupportedModulesError(CaptureError):
    """The model contains no module that mhc_capture knows how to capture."""


class UnsupportedModuleError(CaptureError):
    """A supported class in a configuration whose H_res is not one n×n matrix per token, or a
    module whose computation no longer has the layout its adapter expects."""


class InconsistentCaptureError(CaptureError):
    """Layers of one capture disagree on the number of tokens or streams, or nothing was
    captured: they cannot form one ``[layers, tokens, n, n]`` tensor."""
