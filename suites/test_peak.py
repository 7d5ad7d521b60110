"""This machine's attainable FP32 / INT8 GEMM peak, measured in the same run.

The report divides each variant's achieved GFLOP/s (counted FLOPs / p50 at
seq 128) by the peak of its precision (``harness.measure.peak``).  Measured once per
run with the benchmark's thread count; saved in ``extra_info`` with
``metric="gemm_peak"`` (no profile or variant: it describes the machine).
"""
from __future__ import annotations

from harness.measure import peak


def test_gemm_peak(benchmark, bench, opts):
    """FP32 ``torch.mm`` GFLOP/s and INT8 ``torch._int_mm`` GOPS at 2048^3."""
    import psutil

    benchmark.group = "gemm peak"
    seconds = max(1.0, opts["seconds"] / 2)
    peaks = benchmark.pedantic(peak.measure, kwargs=dict(size=peak.DEFAULT_SIZE, threads=bench.threads,
                                                         seconds=seconds), rounds=1, iterations=1)
    fp32, int8 = peaks["fp32"], peaks.get("int8")
    benchmark.extra_info.update(
        metric="gemm_peak", threads=bench.threads, size=fp32.size,
        fp32_gflops=fp32.best, fp32_gflops_median=fp32.median, fp32_kernel=fp32.kernel, fp32_rounds=fp32.rounds,
        int8_gops=int8 and int8.best, int8_gops_median=int8 and int8.median,
        int8_kernel=int8 and int8.kernel, int8_rounds=int8 and int8.rounds,
        load_avg_1m=round(psutil.getloadavg()[0], 2))
