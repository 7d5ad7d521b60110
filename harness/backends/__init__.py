"""Inference backends: the ``backend`` axis next to profile and variant.

``get(name)`` returns the adapter; ``BACKENDS`` lists them.  See
:mod:`harness.backends.base` for the protocol.
"""
from __future__ import annotations

from harness.backends.base import Backend, Runner
from harness.core.errors import HarnessError

DEFAULT = "torch"


def _registry() -> dict[str, Backend]:
    from harness.backends.onnxruntime import OnnxRuntime
    from harness.backends.torch_eager import TorchEager

    return {b.name: b for b in (TorchEager(), OnnxRuntime())}


BACKENDS = ("torch", "onnxruntime")


def get(name: str) -> Backend:
    """The backend adapter ``name``.  Raises HarnessError for an unknown name."""
    reg = _registry()
    if name not in reg:
        raise HarnessError(f"unknown backend '{name}'; known backends: {', '.join(BACKENDS)}")
    return reg[name]


__all__ = ["BACKENDS", "DEFAULT", "Backend", "Runner", "get"]
