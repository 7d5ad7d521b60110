"""This machine's attainable GEMM peak, measured in the same run as the variants.

A roofline needs a ceiling; a datasheet peak (cores x clock x FMA width) is
never reached by a framework's kernels, so -- like the "attainable" ceilings
of the Empirical Roofline Toolkit -- we time the GEMMs the variants' Linear
layers actually call, with the benchmark's thread count:

* FP32: ``torch.mm`` of two ``n x n`` float32 matrices (MKL / oneDNN sgemm);
* INT8: ``torch._int_mm`` of two ``n x n`` int8 matrices into int32 (the
  oneDNN s8s8s32 GEMM behind dynamic INT8 Linears on x86).

Both count ``2 n^3`` operations (1 MAC = 2 ops).  The peak is the best round
(the ceiling the kernel reached), the median is reported next to it so a
reader sees how much the machine's noise moved it.

``efficiency`` turns a variant's counted FLOPs and its p50 into achieved
GFLOP/s and the fraction of the peak of its precision: how much speed is left
on the table.
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


def measure(size: int = DEFAULT_SIZE, threads: int | None = None, seconds: float = 2.0,
            min_rounds: int = 5) -> dict[str, GemmPeak]:
    """FP32 and INT8 GEMM throughput at ``size x size x size``.

    Args:
        size: matrix side (>= 64); 2048 keeps both kernels compute bound.
        threads: intra-op threads (default: torch's current setting, which the
            benchmark session has fixed); restored afterwards.
        seconds: timed seconds per kernel (at least ``min_rounds`` rounds).

    Returns:
        ``{"fp32": GemmPeak, "int8": GemmPeak}``; ``"int8"`` is missing when
        this torch build has no CPU ``torch._int_mm``.

    Raises:
        HarnessError: size < 64 or threads < 1.
    """
    import torch

    if size < 64:
        raise HarnessError(f"GEMM peak size must be >= 64 (got {size}); small GEMMs measure overhead, not the peak")
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
            a, b = torch.randn(size, size, generator=g), torch.randn(size, size, generator=g)
            best, med, n = _time_gemm(lambda: torch.mm(a, b), ops, seconds, min_rounds)
            out["fp32"] = GemmPeak("torch.mm float32", size, threads, n, best, med)
            qa = torch.randint(-128, 128, (size, size), dtype=torch.int8, generator=g)
            qb = torch.randint(-128, 128, (size, size), dtype=torch.int8, generator=g)
            try:
                torch._int_mm(qa, qb)
            except (RuntimeError, AttributeError):
                pass  # no CPU int8 GEMM in this build: the INT8 peak stays unmeasured ("–")
            else:
                best, med, n = _time_gemm(lambda: torch._int_mm(qa, qb), ops, seconds, min_rounds)
                out["int8"] = GemmPeak("torch._int_mm int8->int32", size, threads, n, best, med)
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
    """(achieved GFLOP/s, fraction of ``peak_gops``); None where an input is missing.

    ``flops`` are counted for the same batch and sequence length as ``p50_ms``
    (the suite: batch 1, seq 128).
    """
    if not flops or not p50_ms:
        return None, None
    achieved = flops / (p50_ms / 1e3) / 1e9
    return achieved, (achieved / peak_gops if peak_gops else None)
