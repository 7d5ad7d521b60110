"""The timing loop's policy: how many warm-up and timed rounds.

Timing itself is pytest-benchmark's (``benchmark.pedantic`` with explicit
rounds, ``time.perf_counter``), so ``--benchmark-autosave`` keeps the raw
per-round samples.  We only choose the round counts: enough warm-up to reach
steady state (first calls pay for lazy kernel and allocator set-up) and enough
timed rounds to fill ``target_s`` seconds, never fewer than ``min_rounds``.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable


@dataclasses.dataclass(frozen=True)
class RoundPlan:
    warmup_rounds: int
    rounds: int
    probe_s: float  # one call's duration after the probe warm-up, seconds


def plan_rounds(fn: Callable[[], object], target_s: float, min_rounds: int, max_rounds: int = 2000,
                warmup_s: float = 0.5, min_warmup: int = 2) -> RoundPlan:
    """Time ``fn`` once after two probe calls and derive a :class:`RoundPlan`.

    Raises ValueError for non-positive targets or ``min_rounds < 2``.
    """
    if target_s <= 0 or min_rounds < 2 or max_rounds < min_rounds:
        raise ValueError(f"bad round plan: target_s={target_s}, min_rounds={min_rounds}, max_rounds={max_rounds}")
    fn()
    start = time.perf_counter()
    fn()
    probe = max(time.perf_counter() - start, 1e-6)
    rounds = min(max_rounds, max(min_rounds, math.ceil(target_s / probe)))
    warmup = max(min_warmup, min(50, math.ceil(warmup_s / probe)))
    return RoundPlan(warmup_rounds=warmup, rounds=rounds, probe_s=probe)
