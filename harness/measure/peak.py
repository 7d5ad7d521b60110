"""This machine's attainable GEMM ceilings, measured in the same run as the variants.

A roofline needs a ceiling; a datasheet peak (cores x clock x FMA width) is
never reached by a framework's kernels, so -- like the "attainable" ceilings
of the Empirical Roofline Toolkit -- we time, with the benchmark's thread count,
the GEMM kernel each kind of variant actually calls (:data:`CEILINGS`):

* ``fp32``: ``torch.mm`` of two ``n x n`` float32 matrices (MKL / oneDNN sgemm), the
  ceiling of every FP32 variant on either backend;
* ``int8``: ``torch.ops.quantized.linear_dynamic`` of an ``n x n`` float input on an
  ``n x n`` prepacked qint8 weight, under the session's ``torch.backends.quantized.engine``
  -- the call a torch dynamic-INT8 ``Linear`` makes (FBGEMM's prepacked kernels on x86),
  its activation quantization included;
* ``int8_ort``: one ``MatMulInteger`` (uint8 x int8 -> int32) ONNX graph in onnxruntime --
  MLAS's integer GEMM, which onnxruntime's dynamic-INT8 ``MatMulInteger`` /
  ``DynamicQuantizeMatMul`` nodes run.

Each counts ``2 n^3`` operations (1 MAC = 2 ops).  The peak is the best round
(the ceiling the kernel reached), the median is reported next to it so a
reader sees how much the machine's noise moved it.

``efficiency`` turns a variant's counted FLOPs and its p50 into achieved
GFLOP/s and the fraction of its kernel's ceiling: how much speed is left on
the table.  A fraction above 1 means the ceiling is not that variant's kernel
(or the ceiling round was unlucky) and is never reported as a percentage.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any, Callable, Sequence

from harness.core.errors import HarnessError

DEFAULT_SIZE = 2048


@dataclasses.dataclass(frozen=True)
class GemmPeak:
    """One kernel's measured throughput.

    ``best`` and ``median`` are in GFLOP/s (FP32) or GOPS (INT8), i.e. 10^9
    operations per second with 1 MAC = 2 operations.
    """

    kernel: str
    size: int
    threads: int
    rounds: int
    best: float
    median: float


def _time_gemm(fn: Callable[[], Any], ops: float, seconds: float, min_rounds: int) -> tuple[float, float, int]:
    fn()  # warm-up: thread pool start, packing buffers, page faults
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_rounds or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 10_000:
            break
    return ops / min(times) / 1e9, ops / statistics.median(times) / 1e9, len(times)


def _sgemm(size: int, g) -> Callable[[], Any]:
    import torch

    a, b = torch.randn(size, size, generator=g), torch.randn(size, size, generator=g)
    return lambda: torch.mm(a, b)


def _linear_dynamic(size: int, g) -> Callable[[], Any]:
    import torch

    w = torch.randn(size, size, generator=g)
    packed = torch.ops.quantized.linear_prepack(torch.quantize_per_tensor(w, float(w.abs().max()) / 127, 0,
                                                                          torch.qint8), None)
    x = torch.randn(size, size, generator=g)
    return lambda: torch.ops.quantized.linear_dynamic(x, packed)


def _ort_matmul_integer(size: int, g, threads: int) -> Callable[[], Any]:
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    b = numpy_helper.from_array(rng.integers(-128, 128, (size, size), dtype=np.int8), "B")
    graph = helper.make_graph([helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "int8_gemm",
                              [helper.make_tensor_value_info("A", TensorProto.UINT8, [size, size])],
                              [helper.make_tensor_value_info("Y", TensorProto.INT32, [size, size])], [b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = min(model.ir_version, 8)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {"A": rng.integers(0, 256, (size, size), dtype=np.uint8)}
    return lambda: session.run(None, feed)


@dataclasses.dataclass(frozen=True)
class Ceiling:
    """One ceiling kernel (its :data:`CEILINGS` key names the run's fields, ``{key}_gops`` ...):
    ``kernel`` says what ran."""

    kernel: str
    build: Callable[[int, Any, int], Callable[[], Any]]  # (size, torch.Generator, threads) -> one GEMM call


def _engine() -> str:
    import torch

    return torch.backends.quantized.engine


CEILINGS: dict[str, Ceiling] = {
    "fp32": Ceiling("torch.mm float32 (sgemm)", lambda n, g, t: _sgemm(n, g)),
    "int8": Ceiling("torch quantized.linear_dynamic qint8 (engine {engine})",
                    lambda n, g, t: _linear_dynamic(n, g)),
    "int8_ort": Ceiling("onnxruntime MatMulInteger u8 x s8 -> s32 (MLAS)",
                        lambda n, g, t: _ort_matmul_integer(n, g, t)),
}
"""The ceiling kernels, by the name :func:`ceiling_of` gives a variant."""


def ceiling_of(precision: str, backend: str) -> str:
    """Which ceiling a variant of ``precision`` (:func:`precision`) on ``backend`` is divided by."""
    if precision != "int8":
        return "fp32"
    from harness import backends

    return backends.get(backend).int8_ceiling


def measure(size: int = DEFAULT_SIZE, threads: int | None = None, seconds: float = 2.0,
            min_rounds: int = 5, kernels: Sequence[str] = tuple(CEILINGS)) -> dict[str, GemmPeak]:
    """Throughput of each ceiling kernel in ``kernels`` (:data:`CEILINGS`) at ``size x size x size``.

    Args:
        size: matrix side (>= 64); 2048 keeps every kernel compute bound.
        threads: intra-op threads (default: torch's current setting, which the
            benchmark session has fixed); restored afterwards.
        seconds: timed seconds per kernel (at least ``min_rounds`` rounds).

    Returns:
        ``{name: GemmPeak}``; a kernel this build cannot run (no quantized engine, no
        onnxruntime) is missing, so its variants get no fraction ("–").

    Raises:
        HarnessError: size < 64, threads < 1, or an unknown kernel name.
    """
    import torch

    if size < 64:
        raise HarnessError(f"GEMM peak size must be >= 64 (got {size}); small GEMMs measure overhead, not the peak")
    unknown = [k for k in kernels if k not in CEILINGS]
    if unknown:
        raise HarnessError(f"unknown ceiling kernel(s) {unknown}; known: {', '.join(CEILINGS)}")
    before = torch.get_num_threads()
    threads = threads or before
    if threads < 1:
        raise HarnessError(f"threads must be >= 1 (got {threads})")
    torch.set_num_threads(threads)
    ops = 2.0 * size ** 3
    out: dict[str, GemmPeak] = {}
    try:
        g = torch.Generator().manual_seed(0)
        with torch.inference_mode():
            for name in kernels:
                ceiling = CEILINGS[name]
                try:
                    fn = ceiling.build(size, g, threads)
                    fn()
                except (RuntimeError, ImportError, AttributeError):
                    continue  # this build cannot run the kernel: its variants get no fraction
                best, med, n = _time_gemm(fn, ops, seconds, min_rounds)
                out[name] = GemmPeak(ceiling.kernel.format(engine=_engine()), size, threads, n, best, med)
    finally:
        torch.set_num_threads(before)
    return out


def precision(methods: Sequence[str], quant_engine: str | None = None) -> str:
    """``"int8"`` for a variant whose Linears run INT8 GEMMs (a stage whose
    compressor is ``int8*``, or a recorded quantization engine), else ``"fp32"``.

    ``methods`` are the variant's stage compressors in order
    (``harness.results.rows.VariantConfig.methods``, e.g. ``("heads-grad", "int8")``).
    """
    if quant_engine or any(m.startswith("int8") for m in methods):
        return "int8"
    return "fp32"


def efficiency(flops: float | None, p50_ms: float | None, peak_gops: float | None) -> tuple[float | None, float | None]:
    """(achieved GFLOP/s, fraction of ``peak_gops``); None where an input is missing, and a
    fraction of None when the achieved rate exceeds the ceiling (the ceiling is then not this
    variant's kernel, or its best round was slower than the model's: no percentage says that).

    ``flops`` are counted for the same batch and sequence length as ``p50_ms``
    (the suite: batch 1, seq 128).
    """
    if not flops or not p50_ms:
        return None, None
    achieved = flops / (p50_ms / 1e3) / 1e9
    fraction = achieved / peak_gops if peak_gops else None
    return achieved, (fraction if fraction is not None and fraction <= 1.0 else None)
