"""FLOP and MAC counts of one forward pass.

``count_flops`` uses ``torch.utils.flop_counter.FlopCounterMode`` (1 MAC =
2 FLOPs).  It does not know scaled-dot-product attention on the CPU nor
torch.ao's dynamic-quantized Linear, so those ops are registered here; for the
latter: an INT8 matmul does the same number of multiply-adds as the
FP32 one it replaces, and we count them as 2 operations each.
``count_macs_fvcore`` is the independent cross-check (fvcore counts one
multiply-add as one "flop", i.e. it counts MACs; we call the figure ``macs``).
fvcore's tracer skips scaled-dot-product attention, so ``2 × macs`` falls short
of ``flops`` by the attention matmuls (4·L·S²·d FLOPs at batch 1).
"""
from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode


def _linear_dynamic_flops(x_shape, packed_params, *args, out_shape=None, **kwargs) -> int:
    weight, _bias = torch.ops.quantized.linear_unpack(packed_params)
    out_features, in_features = weight.shape
    rows = 1
    for d in x_shape[:-1]:
        rows *= d
    return 2 * rows * in_features * out_features


def _sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _custom_mapping() -> dict[Any, Any]:
    # FlopCounterMode knows the CUDA attention kernels but not the CPU path, where
    # the dispatcher sees aten.scaled_dot_product_attention (or its CPU flash op):
    # without these the Q·K^T and P·V matmuls would count as zero.
    aten = torch.ops.aten
    return {
        torch.ops.quantized.linear_dynamic: _linear_dynamic_flops,
        aten.scaled_dot_product_attention: _sdpa_flops,
        aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_flops,
    }


def count_flops(model: nn.Module, inputs: dict[str, torch.Tensor]) -> int:
    """FLOPs of ``model(**inputs)`` (e.g. input_ids (B, S) int64), 1 MAC = 2 FLOPs."""
    with FlopCounterMode(display=False, custom_mapping=_custom_mapping()) as counter, torch.inference_mode():
        model(**inputs)
    return int(counter.get_total_flops())


def count_macs_fvcore(model: nn.Module, inputs: dict[str, torch.Tensor]) -> int | None:
    """fvcore's MAC count, or None when its tracer cannot handle the model
    (e.g. quantized modules); positional order follows ``inputs``."""
    from fvcore.nn import FlopCountAnalysis

    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            analysis = FlopCountAnalysis(model, tuple(inputs.values()))
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            return int(analysis.total())
    except Exception:  # noqa: BLE001 -- a cross-check that cannot trace is reported as absent
        return None


INT8_OPS = ("quantized.linear_dynamic", "aten._int_mm")


def int8_flops_fraction(model: nn.Module, inputs: dict[str, torch.Tensor]) -> float:
    """Share (0..1) of ``model(**inputs)``'s FLOPs that run in INT8 kernels.

    Dynamic quantization replaces only ``nn.Linear``: on ConvNeXt the
    pointwise (Linear) layers go INT8 while the stem, depthwise and
    downsampling convolutions stay FP32 (issue 9), so this is below 1 even
    when every Linear is quantized.  Counted ops: torch.ao's
    ``quantized.linear_dynamic`` and torchao's ``aten._int_mm``.
    """
    with FlopCounterMode(display=False, custom_mapping=_custom_mapping()) as counter, torch.inference_mode():
        model(**inputs)
    by_op = counter.get_flop_counts().get("Global", {})
    total = sum(by_op.values())
    int8 = sum(n for op, n in by_op.items() if any(str(op).startswith(k) for k in INT8_OPS))
    return int8 / total if total else 0.0


def count_macs_onnx(path, inputs: list[str] | tuple[str, ...], batch_size: int, length: int) -> int:
    """MACs of one forward of the ONNX text classifier at ``path`` on (``batch_size``, ``length``)
    int64 ``inputs``: every ``MatMul`` and ``Gemm`` (the attention products included), from the
    shapes ONNX Runtime's symbolic shape inference gives each node at those input sizes.  A MatMul
    with output shape (..., M, N) does ``prod(output) x K`` multiply-adds.  Elementwise ops,
    softmax and LayerNorm are not counted (as ``count_flops`` does not count them either).

    Raises:
        HarnessError: a MatMul/Gemm whose shapes inference cannot resolve (names the node).
    """
    import math

    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    from harness.core.errors import HarnessError

    model = onnx.load(str(path))
    for value in model.graph.input:
        if value.name in inputs:
            for dim, size in zip(value.type.tensor_type.shape.dim, (batch_size, length)):
                dim.Clear()
                dim.dim_value = size
    inferred = SymbolicShapeInference.infer_shapes(model, auto_merge=True)

    def dims(value) -> list[int | None]:
        return [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]

    g = inferred.graph
    shapes = {v.name: dims(v) for v in (*g.value_info, *g.input, *g.output)}
    shapes.update({t.name: list(t.dims) for t in g.initializer})
    macs = 0
    for node in g.node:
        if node.op_type not in ("MatMul", "Gemm"):
            continue
        a, out = shapes.get(node.input[0]), shapes.get(node.output[0])
        if not a or not out or None in a or None in out:
            raise HarnessError(f"{path}: the shapes of {node.op_type} node '{node.name}' are unknown at "
                               f"{batch_size}x{length}; its MACs cannot be counted")
        trans_a = any(attr.name == "transA" and attr.i for attr in node.attribute)
        k = a[0] if node.op_type == "Gemm" and trans_a else a[-1]
        macs += math.prod(out) * k
    return macs
