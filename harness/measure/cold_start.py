"""Cold start: spawn a fresh process, load a saved variant and run its first forward.

Per sample (one new interpreter each), all in ms:

* ``time_to_first_result_ms`` -- from the parent's spawn to the first logits: what a
  process started on a request pays before it can answer;
* its breakdown: ``interpreter_ms`` (spawn to the worker module's first line: exec,
  interpreter start-up, the ``harness`` package), ``import_ms`` (the backend runtime --
  torch + transformers, or onnxruntime alone: that worker never imports torch -- and the
  input batch), ``load_ms`` (config, skeleton, compressor restore, weights into the model;
  for onnxruntime session creation, graph optimisation included), ``first_forward_ms``
  (first batch, lazy kernel initialisation included);
* ``cold_start_ms`` = load + first forward (imports excluded): what a long-lived process
  pays to bring in one more model.

Each sample runs with the page cache ``warm`` (the parent has just read the files to
verify their checksums) or ``cold`` (the variant's files evicted before the spawn:
:mod:`harness.measure.page_cache`).  The same process reads the load's peak memory from
the kernel (:func:`harness.measure.memory.close_window`), which the suite's memory
benchmark reuses, so one set of fresh processes serves both.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

FIELDS = ("time_to_first_result_ms", "interpreter_ms", "import_ms", "load_ms", "first_forward_ms", "cold_start_ms")
# Reported for the cold-cache samples too (prefixed ``cold_cache_``): the imports read
# library files that the eviction leaves alone, so only these move with the variant's files.
COLD_FIELDS = ("time_to_first_result_ms", "load_ms", "first_forward_ms", "cold_start_ms")
# Reported for another deployable form of the artifact (prefixed with its label, e.g.
# ``preoptimized_load_ms``: :meth:`harness.backends.base.Backend.cold_start_cases`).
FORM_FIELDS = ("time_to_first_result_ms", "load_ms", "cold_start_ms")
FORMS = ("preoptimized",)


def worker_cold_start(variant_dir: Path, inputs_file: Path, threads: int, t_start_ns: int,
                      spawned_at_ns: int | None, backend: str = "torch",
                      batch_inputs_file: Path | None = None) -> dict[str, Any]:
    """One sample's fields (see the module doc), in the fresh worker; ``t_start_ns`` is the
    worker module's first ``time.perf_counter_ns()``, ``spawned_at_ns`` the parent's before the
    spawn (None: ``interpreter_ms`` and ``time_to_first_result_ms`` are None).  With
    ``batch_inputs_file``, after everything timed, one forward of that (larger) batch and its
    memory (:func:`harness.measure.memory.batch_peak`)."""
    # Imported here, in the fresh worker: their cost is part of the measured import_ms
    # (psutil too: the memory window below needs it, and its import must not land in the load).
    import psutil  # noqa: F401

    from harness import backends
    from harness.measure import memory

    adapter = backends.get(backend)
    adapter.import_runtime(variant_dir)
    inputs = adapter.load_worker_inputs(inputs_file)
    t_imported = time.perf_counter_ns()
    # The kernel's RSS high-water mark is reset here and read after the first forward (two
    # /proc accesses, well under a millisecond, outside the timed load): the same process gives
    # the peak memory of the load, with no sampler beside it to slow the timed load down.
    window = memory.open_window()
    t_load = time.perf_counter_ns()
    # Checksums are verified by the parent before timing; hashing here would
    # time sha256, not the model load a deployment performs.
    runner = adapter.load(variant_dir, threads, verify=False)
    t_loaded = time.perf_counter_ns()
    adapter.first_result(runner, inputs)
    t_first = time.perf_counter_ns()
    ms = 1e-6
    resident = memory.close_window(window)
    batch = {} if batch_inputs_file is None else memory.batch_peak(adapter, runner, batch_inputs_file)
    return {
        "time_to_first_result_ms": None if spawned_at_ns is None else (t_first - spawned_at_ns) * ms,
        "interpreter_ms": None if spawned_at_ns is None else (t_start_ns - spawned_at_ns) * ms,
        "import_ms": (t_imported - t_start_ns) * ms,
        "load_ms": (t_loaded - t_load) * ms,
        "first_forward_ms": (t_first - t_loaded) * ms,
        "cold_start_ms": (t_first - t_load) * ms,
        "torch_imported": "torch" in sys.modules,
        **resident,
        **batch,
    }


def plan(samples: list[dict[str, Any]], warm: int, cold: int, total: int = 0) -> list[str]:
    """The page-cache states (``"warm"``/``"cold"``) of the samples still to take so that, with
    ``samples`` (results of :func:`harness.measure.fresh.run_worker`), there are at least ``warm``
    warm-cache ones, ``cold`` cold-cache ones and ``total`` in all (topped up with warm ones);
    warm and cold alternate so that drift touches both alike."""
    have_cold = sum(s.get("page_cache", "warm") != "warm" for s in samples)
    new_cold = max(cold - have_cold, 0)
    new_warm = max(warm - (len(samples) - have_cold), total - len(samples) - new_cold, 0)
    pairs = [state for _ in range(min(new_warm, new_cold)) for state in ("warm", "cold")]
    return pairs + ["warm"] * (new_warm - len(pairs) // 2) + ["cold"] * (new_cold - len(pairs) // 2)


def _medians(samples: list[dict[str, Any]], fields: tuple[str, ...], prefix: str = "") -> dict[str, Any]:
    values = {f: [s.get(f) for s in samples] for f in fields}
    return {prefix + f: None if not v or None in v else statistics.median(v) for f, v in values.items()}


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of each field over the warm-cache samples (``FIELDS``), over the cold-cache ones
    (``cold_cache_*``; None without any), the raw samples and how cold the cold ones were
    (``cold_cache_resident_after``: the largest share of the files' pages any eviction left
    resident; ``cold_cache_label``: the weakest label, e.g. ``"cold (incomplete)"``).

    Raises:
        ValueError: no warm-cache sample.
    """
    warm = [s for s in samples if s.get("page_cache", "warm") == "warm"]
    cold = [s for s in samples if s.get("page_cache", "warm") != "warm"]
    if not warm:
        raise ValueError("no warm-cache cold-start samples")
    residents = [s.get("resident_after") for s in cold]
    labels = {s["page_cache"] for s in cold}
    label = None if not cold else min(labels - {"cold"}, default="cold")
    return {
        **_medians(warm, FIELDS),
        **_medians(cold, COLD_FIELDS, "cold_cache_"),
        "cold_start_samples": len(warm),
        "cold_cache_samples": len(cold),
        "cold_cache_label": label,
        "cold_cache_resident_after": None if not cold or None in residents else max(residents),
        "torch_imported": any(s.get("torch_imported") for s in samples),
        "cold_start_raw_ms": [round(s["cold_start_ms"], 3) for s in warm],
        "time_to_first_result_raw_ms": [None if s.get("time_to_first_result_ms") is None
                                        else round(s["time_to_first_result_ms"], 3) for s in warm],
        "cold_cache_raw_ms": [round(s["cold_start_ms"], 3) for s in cold],
    }
