"""Cold start: load a saved variant and run its first forward in a fresh process.

Per sample (one new interpreter each): ``import_ms`` (torch + transformers +
harness imports), ``load_ms`` (config, skeleton, compressor restore, weights
from disk into the model), ``first_forward_ms`` (first batch, includes lazy
kernel initialisation) and ``cold_start_ms`` = load + first forward.
The load goes through the backend adapter (``harness.backends``): for
onnxruntime it is session creation (graph optimisation included), its first
forward the first ``session.run``.  Inputs are a ``torch.save``'d batch, so
torch is imported on every backend (inside ``import_ms``).  The
parent reports medians over samples (``--cold-start-samples``, 3 by default).
The same process reads the load's peak memory from the kernel
(:func:`harness.measure.memory.close_window`), which the suite's memory
benchmark reuses, so one set of fresh processes serves both.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

FIELDS = ("import_ms", "load_ms", "first_forward_ms", "cold_start_ms")


def worker_cold_start(variant_dir: Path, inputs_file: Path, threads: int, t_start: float,
                      backend: str = "torch") -> dict[str, Any]:
    # Imported here, in the fresh worker: their cost is part of the measured import_ms.
    import torch

    from harness import backends

    from harness.measure import memory

    adapter = backends.get(backend)
    adapter.import_runtime(variant_dir)
    torch.set_num_threads(threads)
    inputs = torch.load(inputs_file, weights_only=True)
    t_imported = time.perf_counter()
    # The kernel's RSS high-water mark is reset here and read after the first forward (two
    # /proc accesses, well under a millisecond, outside the timed load): the same process gives
    # the peak memory of the load, with no sampler beside it to slow the timed load down.
    window = memory.open_window()
    t_load = time.perf_counter()
    # Checksums are verified by the parent before timing; hashing here would
    # time sha256, not the model load a deployment performs.
    runner = adapter.load(variant_dir, threads, verify=False)
    t_loaded = time.perf_counter()
    runner(inputs)
    t_first = time.perf_counter()
    load_ms = (t_loaded - t_load) * 1e3
    first_ms = (t_first - t_loaded) * 1e3
    return {
        "import_ms": (t_imported - t_start) * 1e3,
        "load_ms": load_ms,
        "first_forward_ms": first_ms,
        "cold_start_ms": load_ms + first_ms,
        **memory.close_window(window),
    }


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of each field plus the raw samples.  Raises ValueError if empty."""
    if not samples:
        raise ValueError("no cold-start samples")
    out: dict[str, Any] = {f: statistics.median(s[f] for s in samples) for f in FIELDS}
    out["cold_start_samples"] = len(samples)
    out["cold_start_raw_ms"] = [round(s["cold_start_ms"], 3) for s in samples]
    return out
