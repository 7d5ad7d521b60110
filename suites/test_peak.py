"""This machine's attainable GEMM ceilings, measured in the same run.

The report divides each variant's achieved GFLOP/s (counted FLOPs / p50 at
seq 128) by the ceiling of the kernel it calls (``harness.measure.peak``).  Measured once per
run with the benchmark's thread count; saved in ``extra_info`` with
``metric="gemm_peak"`` (no profile or variant: it describes the machine).
"""
from __future__ import annotations

from harness.measure import peak


def test_gemm_peak(benchmark, bench, opts):
    """Each ceiling kernel's best and median GOPS (10^9 ops/s, 1 MAC = 2) at 2048^3."""
    import psutil

    benchmark.group = "gemm peak"
    seconds = max(1.0, opts["seconds"] / 2)
    peaks = benchmark.pedantic(peak.measure, kwargs=dict(size=peak.DEFAULT_SIZE, threads=bench.threads,
                                                         seconds=seconds), rounds=1, iterations=1)
    fields = {}
    for name, p in peaks.items():
        fields.update({f"{name}_gops": p.best, f"{name}_gops_median": p.median, f"{name}_kernel": p.kernel,
                       f"{name}_rounds": p.rounds})
    benchmark.extra_info.update(metric="gemm_peak", threads=bench.threads, size=peaks["fp32"].size, **fields,
                                load_avg_1m=round(psutil.getloadavg()[0], 2))
