"""Inference backends: the ``backend`` axis next to profile and variant.

``get(name)`` returns the adapter; ``BACKENDS`` lists them.  See
:mod:`harness.backends.base` for the protocol.
"""
from __future__ import annotations

import importlib

from harness.backends.base import Backend, Runner
from harness.core.errors import HarnessError

DEFAULT = "torch"

# name -> (module, class), imported only when asked for: a fresh onnxruntime worker loads the
# onnxruntime adapter alone and never imports torch.
_ADAPTERS = {"torch": ("harness.backends.torch_eager", "TorchEager"),
             "onnxruntime": ("harness.backends.onnxruntime", "OnnxRuntime"),
             "onnxruntime-fused": ("harness.backends.onnxruntime", "OnnxRuntimeFused"),
             "openvino": ("harness.backends.openvino", "OpenVino"),
             "torch-compile": ("harness.backends.torch_compile", "TorchCompile")}
BACKENDS = tuple(_ADAPTERS)


def get(name: str) -> Backend:
    """The backend adapter ``name``.  Raises HarnessError for an unknown name."""
    if name not in _ADAPTERS:
        raise HarnessError(f"unknown backend '{name}'; known backends: {', '.join(BACKENDS)}")
    module, cls = _ADAPTERS[name]
    return getattr(importlib.import_module(module), cls)()


__all__ = ["BACKENDS", "DEFAULT", "Backend", "Runner", "get"]
