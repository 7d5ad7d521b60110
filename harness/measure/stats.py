"""Statistics over raw samples: latency percentiles and bootstrap intervals.

Percentiles use numpy's default linear interpolation; bootstrap intervals use
``scipy.stats.bootstrap`` (percentile method, fixed seed) so a report is
reproducible from its saved samples.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class LatencyStats:
    """Summary of per-round latencies, all in milliseconds.

    ``cv`` is stddev / mean of the rounds (unitless); ``robust_cv`` is the
    normalised IQR (IQR / 1.349 / median), which ignores a few outliers from a
    noisy neighbour; ``p50_block_cv`` is the CV of the p50 over ``BLOCKS``
    consecutive blocks of rounds -- how reproducible the reported p50 itself
    is within the run (NaN with fewer than 2 rounds per block).
    """

    rounds: int
    mean_ms: float
    stddev_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cv: float
    robust_cv: float
    p50_block_cv: float

    BLOCKS = 5

    @classmethod
    def from_seconds(cls, samples_s: Sequence[float]) -> "LatencyStats":
        """Build from per-round times in seconds (as pytest-benchmark stores them).

        Raises:
            ValueError: fewer than 2 samples, or a negative/non-finite sample.
        """
        ms = np.asarray(samples_s, dtype=np.float64) * 1e3
        if ms.size < 2:
            raise ValueError(f"need at least 2 latency samples, got {ms.size}")
        if not np.all(np.isfinite(ms)) or np.any(ms < 0):
            raise ValueError("latency samples must be finite and non-negative")
        p25, p50, p75, p90, p99 = np.percentile(ms, [25, 50, 75, 90, 99])
        mean = float(ms.mean())
        std = float(ms.std(ddof=1))
        if ms.size >= 2 * cls.BLOCKS:
            block_p50 = np.array([np.median(b) for b in np.array_split(ms, cls.BLOCKS)])
            block_cv = float(block_p50.std(ddof=1) / block_p50.mean())
        else:
            block_cv = math.nan
        return cls(
            rounds=int(ms.size),
            mean_ms=mean,
            stddev_ms=std,
            min_ms=float(ms.min()),
            p50_ms=float(p50),
            p90_ms=float(p90),
            p99_ms=float(p99),
            max_ms=float(ms.max()),
            cv=std / mean if mean > 0 else math.nan,
            robust_cv=float((p75 - p25) / 1.349 / p50) if p50 > 0 else math.nan,
            p50_block_cv=block_cv,
        )

    def as_dict(self) -> dict[str, float | None]:
        """Fields as a JSON-safe dict (NaN becomes None)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in dataclasses.asdict(self).items()}


def bootstrap_ci(
    values: Sequence[float], confidence: float = 0.95, n_resamples: int = 2000, seed: int = 42
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of ``values``.

    For accuracy pass the 0/1 correctness vector.  Raises ValueError on an
    empty input.
    """
    from scipy import stats

    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if np.all(arr == arr[0]):
        # scipy returns NaN for a degenerate sample; the interval is the point.
        return float(arr[0]), float(arr[0])
    res = stats.bootstrap(
        (arr,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
        method="percentile", rng=np.random.default_rng(seed), vectorized=True,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
