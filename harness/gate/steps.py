"""Steps in a run-by-run history: where a testbed's series changed level, and by how much.

The model is asv's (``asv/step_detect.py``, after Friedrich et al. 2008): a series is
piecewise constant plus noise of constant amplitude, and the levels are the fit that
minimises ``gamma * segments + sum_j w_j * |y_j - level_j|`` (weighted L1, so one outlying
run moves no level).  Here the fit is exact (dynamic programming over all segmentations,
O(n^2) segment costs), the weights are ``1 / CI half-width`` of each point when it has a
CI (a precise run counts more), normalised to mean 1, and the penalty is
``gamma = 3 * sigma * ln(n)`` with ``sigma`` the noise scale robustly estimated from
successive differences (a step moves one difference, noise moves them all; never below
0.1% of the series' median, the resolution of any timing here).  Every level holds at
least two runs (asv's ``min_size``): one outlying run is noise, and a step in the newest
run is reported once a second run confirms it.  A level change smaller than ``threshold``
(relative) is not reported: the same materiality floor idea as the stored-baseline gate.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

PENALTY = 3.0
THRESHOLD = 0.05
MIN_SIZE = 2
RESOLUTION = 1e-3


@dataclasses.dataclass(frozen=True)
class Step:
    """A level change: ``index`` is the first point of the new level; ``before``/``after`` are
    the fitted levels (weighted medians, in the series' unit)."""

    index: int
    before: float
    after: float

    @property
    def change(self) -> float:
        """Relative change of the level (0.2: +20%)."""
        return self.after / self.before - 1 if self.before else math.inf


def _segment_cost(y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """(weighted L1 cost around the weighted median, the weighted median)."""
    order = np.argsort(y, kind="stable")
    ys, ws = y[order], w[order]
    level = float(ys[np.searchsorted(np.cumsum(ws), ws.sum() / 2)])
    return float(np.sum(w * np.abs(y - level))), level


def noise_scale(y: Sequence[float]) -> float:
    """Robust standard deviation of the noise: MAD of successive differences / sqrt(2)."""
    d = np.diff(np.asarray(y, dtype=float))
    if d.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2))


def levels(y: Sequence[float], weights: Sequence[float] | None = None,
           penalty: float = PENALTY) -> list[tuple[int, int, float]]:
    """The optimal piecewise-constant fit as ``(start, stop, level)`` segments (stop exclusive).

    Raises:
        ValueError: ``weights`` has another length than ``y``, or is not positive.
    """
    values = np.asarray(y, dtype=float)
    n = values.size
    if n == 0:
        return []
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != values.shape or not np.all(w > 0):
        raise ValueError("weights must be positive, one per point")
    w = w / w.mean()
    sigma = max(noise_scale(values), RESOLUTION * float(np.median(np.abs(values))), 1e-12)
    gamma = penalty * sigma * math.log(max(n, 2))
    if n < 2 * MIN_SIZE:
        return [(0, n, _segment_cost(values, w)[1])]
    best = np.full(n + 1, np.inf)
    best[0] = -gamma
    cut = np.zeros(n + 1, dtype=int)
    level_of: dict[tuple[int, int], float] = {}
    for stop in range(MIN_SIZE, n + 1):
        for start in [0, *range(MIN_SIZE, stop - MIN_SIZE + 1)]:
            cost, level = _segment_cost(values[start:stop], w[start:stop])
            level_of[start, stop] = level
            total = best[start] + gamma + cost
            if total < best[stop]:
                best[stop], cut[stop] = total, start
    segments, stop = [], n
    while stop > 0:
        start = int(cut[stop])
        segments.append((start, stop, level_of[start, stop]))
        stop = start
    return segments[::-1]


def detect_steps(y: Sequence[float], weights: Sequence[float] | None = None,
                 threshold: float = THRESHOLD, penalty: float = PENALTY) -> list[Step]:
    """Level changes of at least ``threshold`` (relative) in ``y``, oldest first.

    Fewer than 3 points hold no step (a single run cannot be told from noise).
    """
    if len(y) < 3:
        return []
    segments = levels(y, weights, penalty)
    steps = []
    for (_, _, before), (start, _, after) in zip(segments, segments[1:]):
        step = Step(start, before, after)
        if abs(step.change) >= threshold:
            steps.append(step)
    return steps
