"""Parameter and non-zero counts of a (possibly quantized) model.

Counted over the model's ``state_dict`` so packed INT8 weights (which torch.ao
keeps outside ``parameters()``) count too: every floating-point or quantized
tensor is a parameter tensor; integer buffers (``position_ids``) and torch.ao's ``scale``/``zero_point``
entries are not.
A quantized weight's element is non-zero when its dequantized value is.
"""
from __future__ import annotations

from typing import Any, Iterator

import torch
import torch.nn as nn


def _weight_tensors(state: dict[str, Any]) -> Iterator[torch.Tensor]:
    for name, value in state.items():
        if name.endswith((".scale", ".zero_point")):
            continue  # quantization bookkeeping of torch.ao modules, not weights
        items = value if isinstance(value, (tuple, list)) else (value,)
        for t in items:
            if isinstance(t, torch.Tensor) and (t.is_quantized or t.is_floating_point()):
                yield t


def count_params(model: nn.Module) -> tuple[int, int]:
    """``(params, nonzero_params)`` of ``model``'s weights and biases."""
    params = nonzero = 0
    for t in _weight_tensors(model.state_dict()):
        params += t.numel()
        nonzero += int((t.dequantize() if t.is_quantized else t).count_nonzero())
    return params, nonzero
