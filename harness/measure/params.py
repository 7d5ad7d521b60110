"""Parameter and non-zero counts of a (possibly quantized) model.

Counted over the model's ``state_dict`` so packed INT8 weights (which torch.ao
keeps outside ``parameters()``) count too: every floating-point or quantized
tensor is a parameter tensor; integer buffers (``position_ids``) and torch.ao's ``scale``/``zero_point``
entries are not.
A quantized weight's element is non-zero when its dequantized value is.

Pruning leaves zeros in dense tensors: :func:`layer_sparsity` shows where they
are (per Linear layer) and :func:`sparse_size_bytes` what a sparse (CSR) file
would take, next to the dense size on disk that pruning does not change.
"""
from __future__ import annotations

from typing import Any, Iterator

import torch
import torch.nn as nn

from compressors.architecture import is_head


def _weight_tensors(state: dict[str, Any]) -> Iterator[torch.Tensor]:
    seen: set[tuple[int, int, torch.dtype]] = set()
    for name, value in state.items():
        if name.endswith((".scale", ".zero_point")):
            continue  # quantization bookkeeping of torch.ao modules, not weights
        items = value if isinstance(value, (tuple, list)) else (value,)
        for t in items:
            if isinstance(t, torch.Tensor) and (t.is_quantized or t.is_floating_point()):
                # Tied weights (an MLM projector that is the word embeddings) appear under
                # two names but are one tensor: count them once, as parameters() does.
                # (a tensor subclass such as torchao's Int8Tensor has no storage of its own to compare)
                plain = type(t) in (torch.Tensor, nn.Parameter) or t.is_quantized
                key = (t.data_ptr() if plain else id(t), t.numel(), t.dtype)
                if t.numel() and key in seen:
                    continue
                seen.add(key)
                yield t


def count_params(model: nn.Module) -> tuple[int, int]:
    """``(params, nonzero_params)`` of ``model``'s weights and biases."""
    params = nonzero = 0
    for t in _weight_tensors(model.state_dict()):
        params += t.numel()
        nonzero += int(_values(t).count_nonzero())
    return params, nonzero


def _quantized(t: torch.Tensor) -> bool:
    """torch.ao's quantized tensors and torchao's INT8 tensor subclasses (``Int8Tensor``, which
    implements few aten ops and reports its float dtype)."""
    return t.is_quantized or (type(t) not in (torch.Tensor, nn.Parameter) and hasattr(t, "dequantize"))


def _values(t: torch.Tensor) -> torch.Tensor:
    """A plain tensor of ``t``'s values (a quantized one dequantized)."""
    return t.dequantize() if _quantized(t) else t


def zero_split(model: nn.Module, pruned_linear_zeros: int | None) -> tuple[int | None, int | None]:
    """``(pruned_zeros, quantization_zeros)``: the zero weights of ``model`` (``params -
    nonzero_params`` of :func:`count_params`) split into those a pruner set (or that were zero
    in the float weights) and those INT8 rounding made (a float weight under half a step).

    ``pruned_linear_zeros`` is what the quantizer counted in the float Linears it quantized
    (``compressors.quantize``'s ``describe()``); a model without quantized Linears needs none
    (every zero is a pruned one).  A quantized model without it: ``(None, None)``, unknown.
    """
    params, nonzero = count_params(model)
    zeros = params - nonzero
    quantized = [w for name, w in _linear_weights(model, quantized_only=True)]
    if not quantized:
        return zeros, 0
    if pruned_linear_zeros is None:
        return None, None
    rounding = sum(int((w == 0).sum()) for w in quantized) - pruned_linear_zeros
    return zeros - rounding, rounding


def _dense_weight(module: nn.Module) -> torch.Tensor | None:
    """The float weight of a Linear-like module (dequantized for torch.ao / torchao INT8)."""
    weight = getattr(module, "weight", None)
    if callable(weight) and not isinstance(weight, torch.Tensor):
        weight = weight()  # torch.ao dynamic-quantized Linear: weight() unpacks the INT8 tensor
    if not isinstance(weight, torch.Tensor):
        return None
    weight = weight.detach()
    # torchao keeps nn.Linear but stores its weight as a quantized tensor subclass.
    if weight.is_quantized or type(weight) is not torch.Tensor:
        weight = weight.dequantize()
    return weight



def _linear_weights(model: nn.Module, quantized_only: bool = False) -> Iterator[tuple[str, torch.Tensor]]:
    """``(module name, dense float weight)`` of every Linear-like layer
    (float ``nn.Linear``, torch.ao dynamic INT8 Linear, torchao quantized weights); with
    ``quantized_only`` the INT8 ones alone."""
    import torch.ao.nn.quantized.dynamic as nnqd

    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Linear, nnqd.Linear)):
            if quantized_only and not (isinstance(mod, nnqd.Linear) or type(mod.weight.data) is not torch.Tensor):
                continue
            weight = _dense_weight(mod)
            if weight is not None and weight.numel():
                yield name, weight


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """Fraction of exactly-zero weights (biases excluded) of every Linear layer.

    Keys are module names (``"distilbert.transformer.layer.0.attention.q_lin"``);
    a quantized weight counts as zero when its dequantized value is.
    """
    return {name: int((w == 0).sum()) / w.numel() for name, w in _linear_weights(model)}


def linear_sparsity(model: nn.Module) -> float:
    """Fraction of zero weights over all encoder Linear layers together (the
    classification head excluded): the sparsity a pruning method targets.
    Returns 0.0 for a model without such layers."""
    zeros = total = 0
    for name, weight in _linear_weights(model):
        if not is_head(name):
            zeros += int((weight == 0).sum())
            total += weight.numel()
    return zeros / total if total else 0.0


def sparse_size_bytes(model: nn.Module) -> int:
    """Bytes the model's weights would take with every 2-D float tensor in CSR.

    Counted over the same tensors as :func:`count_params`.  A 2-D float tensor
    of shape (rows, cols) with ``nnz`` non-zeros costs ``nnz * 4`` (float32
    values) + ``nnz * 4`` (int32 column indices) + ``(rows + 1) * 4`` (int32
    row pointers); 1-D tensors (biases, LayerNorm) and quantized tensors are
    counted dense at their element size (INT8: 1 byte; scales and zero points
    not counted).  Compare with the dense file size: CSR only pays off above
    ~50% sparsity, so an unpruned model comes out about twice as large.
    """
    total = 0
    for t in _weight_tensors(model.state_dict()):
        if _quantized(t):
            total += t.numel() * (t.element_size() if t.is_quantized else 1)  # torchao's: INT8 values
        elif t.ndim != 2:
            total += t.numel() * t.element_size()
        else:
            nnz = int(t.count_nonzero())
            total += nnz * 4 + nnz * 4 + (t.shape[0] + 1) * 4
    return total


def count_params_onnx(path) -> tuple[int, int]:
    """``(parameters, non-zero parameters)`` of an ONNX file: the elements of its floating-point
    initializers of rank >= 1 (weights, biases, embeddings, LayerNorm scales; integer shape
    constants and scalars are not parameters).  For a float graph exported from a module this is
    the module's parameter count, each tensor counted once."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16)
    total = nonzero = 0
    for tensor in onnx.load(str(path)).graph.initializer:
        if tensor.data_type in floats and len(tensor.dims) >= 1:
            values = numpy_helper.to_array(tensor)
            total += values.size
            nonzero += int(np.count_nonzero(values))
    return total, nonzero
