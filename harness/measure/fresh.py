"""Run one measurement in a fresh Python interpreter (pyperf's worker model).

The parent blocks in ``subprocess.run`` (no polling loop stealing a core on a
2-core machine) and reads one JSON line back.  The worker prints its result on
a line starting with ``RESULT_PREFIX`` so library noise on stdout cannot be
mistaken for it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.paths import ROOT

RESULT_PREFIX = "EDGEBENCH_RESULT "


class MeasurementError(HarnessError):
    """A fresh-process measurement crashed or returned nothing usable."""


def run_worker(mode: str, variant_dir: Path, inputs_file: Path, threads: int, timeout_s: float = 600,
               backend: str = "torch", page_cache: str = "warm",
               batch_inputs: Path | None = None) -> dict[str, Any]:
    """Run ``python -m harness.measure.worker MODE`` and return its JSON result.

    ``variant_dir`` is what ``backend`` loads (``harness.backends``): the saved
    variant for ``torch``, the ONNX artifact folder for ``onnxruntime``.  With
    ``page_cache="cold"`` its files are evicted from the page cache right before the
    spawn (:func:`harness.measure.page_cache.evict`; the result carries the eviction's
    record); ``"warm"`` leaves them where the parent's checksum pass put them.  The
    worker gets the spawn time (``time.perf_counter_ns``, system-wide on Linux), from
    which it reports ``interpreter_ms`` and ``time_to_first_result_ms``.  ``batch_inputs``
    (cold-start): a larger batch the worker runs once after the timed phases, for its memory.

    Raises:
        MeasurementError: non-zero exit, signal, timeout, or no result line.
        ValueError: ``page_cache`` is neither ``"warm"`` nor ``"cold"``.
    """
    if page_cache not in ("warm", "cold"):
        raise ValueError(f"page_cache must be 'warm' or 'cold', not {page_cache!r}")
    eviction = {"page_cache": "warm"}
    if page_cache == "cold":
        from harness.measure.page_cache import evict

        eviction = evict(variant_dir)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "EDGEBENCH_PLUGINS": ",".join(_plugin_modules())}
    cmd = [sys.executable, "-m", "harness.measure.worker", mode, "--variant", str(variant_dir),
           "--inputs", str(inputs_file), "--threads", str(threads), "--backend", backend,
           *(["--batch-inputs", str(batch_inputs)] if batch_inputs else []),
           "--spawned-at-ns", str(time.perf_counter_ns())]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        raise MeasurementError(f"{mode} worker for {variant_dir.name} timed out after {timeout_s:.0f} s") from None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX) and proc.returncode == 0:
            return {**json.loads(line[len(RESULT_PREFIX):]), **eviction}
    lines = proc.stderr.strip().splitlines()
    if "Traceback (most recent call last)" in proc.stderr:
        tail = lines[-1][:300]  # the exception line
    elif proc.returncode < 0:
        tail = "no Python traceback: the process died on the signal"  # stderr holds only library noise
    else:
        tail = (lines or ["(no output)"])[-1][:300]
    how = _how(proc.returncode)
    raise MeasurementError(f"{mode} worker for {variant_dir.name} failed ({how}): {tail}")


def _plugin_modules() -> list[str]:
    """Modules outside ``compressors`` that registered a compressor (the worker imports them)."""
    import compressors

    return [m for m in compressors.registering_modules() if not m.startswith("compressors")]


def _how(returncode: int) -> str:
    """``exit N``, or the signal that killed the worker by name (SIGKILL: likely the OOM killer)."""
    import signal

    if returncode >= 0:
        return f"exit {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "unknown signal"
    hint = ", e.g. the kernel's out-of-memory killer" if -returncode == signal.SIGKILL else ""
    return f"killed by signal {-returncode} {name}{hint}"


def emit(result: dict[str, Any]) -> None:
    """Worker side: print the result line."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()
