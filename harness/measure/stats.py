"""Statistics over raw samples: latency percentiles and bootstrap intervals.

Percentiles use numpy's default linear interpolation; bootstrap intervals use
``scipy.stats.bootstrap`` (percentile method, fixed seed) so a report is
reproducible from its saved samples.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

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
    p99_ms: float | None
    max_ms: float
    cv: float
    robust_cv: float
    p50_block_cv: float
    p50_ci95: tuple[float | None, float | None] = (None, None)
    p90_ci95: tuple[float | None, float | None] = (None, None)
    p99_ci95: tuple[float | None, float | None] = (None, None)

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
        cis = {q: quantile_ci(ms, q / 100)[1:] for q in (50, 90, 99)}
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
            p99_ms=float(p99) if ms.size >= P99_MIN_SAMPLES else None,
            max_ms=float(ms.max()),
            cv=std / mean if mean > 0 else math.nan,
            robust_cv=float((p75 - p25) / 1.349 / p50) if p50 > 0 else math.nan,
            p50_block_cv=block_cv,
            p50_ci95=cis[50], p90_ci95=cis[90], p99_ci95=cis[99] if ms.size >= P99_MIN_SAMPLES else (None, None),
        )

    def as_dict(self) -> dict[str, float | None]:
        """Fields as a JSON-safe dict (NaN becomes None)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else list(v) if isinstance(v, tuple) else v)
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


@dataclasses.dataclass(frozen=True)
class RatioCI:
    """A paired ratio: the median over repetitions of (cell block / reference block of the same
    repetition), with a ``confidence`` percentile-bootstrap interval of that median.

    ``ratio``, ``low``, ``high`` are unitless; ``n`` is the number of repetitions paired.
    """

    ratio: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        """Half the interval's width relative to the ratio (0.01: ±1%)."""
        return (self.high - self.low) / 2 / self.ratio if self.ratio > 0 else math.inf

    def as_dict(self) -> dict[str, Any]:
        return {"ratio": self.ratio, "ci95": [self.low, self.high], "n": self.n}


def paired_ratio(cell_blocks: Sequence[float], reference_blocks: Sequence[float], confidence: float = 0.95,
                 n_resamples: int = 2000, seed: int = 42, groups: Sequence[int] | None = None) -> RatioCI:
    """Median of the per-repetition ratios ``cell[i] / reference[i]`` with a bootstrap CI.

    Pairing blocks of the same repetition cancels whatever drifts slower than a
    repetition (thermal state, neighbours, allocator state): Kalibera & Jones,
    "Rigorous benchmarking in reasonable time" (ISMM 2013).  The bootstrap runs on
    log ratios (a ratio's noise is multiplicative).

    ``groups`` (one label per repetition: the worker processes that timed it) makes the
    bootstrap two-stage -- resample the groups, then the repetitions within each drawn
    group -- because a process carries a memory-layout offset of its own that all its
    repetitions share (Kalibera & Jones: with random effects at several levels -- process
    executions and iterations within them -- resample at every level).  Resampling repetitions alone would call a process's constant offset
    precision.  With few groups the interval still under-covers when the process offsets
    dominate the block noise (a percentile bootstrap over 3 groups; more processes narrow the
    gap), which the A/A control -- timed by processes of its own -- then shows.

    Raises:
        ValueError: the sequences differ in length, hold fewer than 3 pairs, or a block
            is not a positive finite number.
    """
    from scipy import stats

    a, b = np.asarray(cell_blocks, dtype=np.float64), np.asarray(reference_blocks, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired blocks must be two equal-length sequences, got {a.shape} and {b.shape}")
    if a.size < 3:
        raise ValueError(f"a paired ratio needs at least 3 repetitions, got {a.size}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(a > 0) and np.all(b > 0)):
        raise ValueError("paired blocks must be positive finite times")
    if groups is not None and len(groups) != a.size:
        raise ValueError(f"groups must label every repetition: {len(groups)} labels for {a.size} repetitions")
    logs = np.log(a / b)
    centre = float(np.exp(np.median(logs)))
    if np.all(logs == logs[0]):
        return RatioCI(centre, centre, centre, int(a.size))
    rng = np.random.default_rng(seed)
    alpha = (1 - confidence) / 2
    if groups is not None and len(set(groups)) > 1:
        medians = _two_stage_medians(logs, np.asarray(groups), n_resamples, rng)
        low, high = np.quantile(medians, [alpha, 1 - alpha])
        return RatioCI(centre, float(np.exp(low)), float(np.exp(high)), int(a.size))
    res = stats.bootstrap((logs,), np.median, confidence_level=confidence, n_resamples=n_resamples,
                          method="percentile", rng=rng, vectorized=True)
    return RatioCI(centre, float(np.exp(res.confidence_interval.low)), float(np.exp(res.confidence_interval.high)),
                   int(a.size))


def process_groups(repetitions: int, processes: int, reference_processes: int | None = None) -> list[int] | None:
    """Which process pair timed each repetition of a paired ratio (repetition ``r`` is timed by
    process ``r mod processes`` of each cell), for the two-stage bootstrap of
    :func:`paired_ratio`; None when one process per cell, or when the two
    cells ran different numbers of processes (their processes are then crossed, not nested in
    pairs, and the one-stage bootstrap is used)."""
    if processes <= 1 or (reference_processes is not None and reference_processes != processes):
        return None
    return [r % processes for r in range(repetitions)]


def _two_stage_medians(values: np.ndarray, groups: np.ndarray, n_resamples: int,
                       rng: np.random.Generator) -> np.ndarray:
    """``n_resamples`` medians of a two-stage bootstrap: draw as many groups as there are, with
    replacement, then each drawn group's members with replacement (vectorised: members are
    drawn into a padded array of the largest group's size, the padding masked as NaN)."""
    labels = np.unique(groups)
    members = [values[groups == g] for g in labels]
    size = np.array([m.size for m in members])
    width = int(size.max())
    table = np.full((labels.size, width), np.nan)
    for i, m in enumerate(members):
        table[i, :m.size] = m
    chosen = rng.integers(labels.size, size=(n_resamples, labels.size))           # (B, G) group draws
    picks = np.floor(rng.random((n_resamples, labels.size, width)) * size[chosen][..., None]).astype(int)
    drawn = table[chosen[..., None], picks]                                       # (B, G, width)
    drawn[np.arange(width)[None, None, :] >= size[chosen][..., None]] = np.nan    # beyond the group's size
    return np.nanmedian(drawn.reshape(n_resamples, -1), axis=1)


def quantile_ci(samples: Sequence[float], q: float, confidence: float = 0.95) -> tuple[float, float | None, float | None]:
    """The ``q`` quantile of ``samples`` with a distribution-free CI from binomial order statistics.

    The interval is ``[x_(l), x_(u)]`` with ``l, u`` the ``(1 ∓ confidence)/2``
    quantiles of Binomial(n, q) (as MLPerf LoadGen's early-stopping floors
    reason about tail percentiles).  ``low``/``high`` are None when ``n`` is too
    small for the order statistic to exist (e.g. a p99 CI from 100 samples).
    Same unit as ``samples``.  Raises ValueError on an empty input or ``q`` outside (0, 1).
    """
    from scipy.stats import binom

    x = np.sort(np.asarray(samples, dtype=np.float64))
    if x.size == 0 or not 0 < q < 1:
        raise ValueError(f"quantile_ci needs samples and 0 < q < 1, got n={x.size}, q={q}")
    alpha = 1 - confidence
    lo = int(binom.ppf(alpha / 2, x.size, q))       # 1-based rank x_(lo) ...
    hi = int(binom.ppf(1 - alpha / 2, x.size, q)) + 1
    value = float(np.percentile(x, q * 100))
    return (value, float(x[lo - 1]) if lo >= 1 else None, float(x[hi - 1]) if hi <= x.size else None)


AA_BOUNDS = (0.97, 1.03)
"""A run whose A/A ratio CI (fp32 timed twice, by independent workers) is not
inside these bounds cannot judge a timing (issue 16): "machine too noisy"."""

P99_MIN_SAMPLES = 1000
"""Fewer samples than this give no p99 (reported as "max of n" instead): the
99th percentile of 100 rounds is one of its two slowest rounds."""
