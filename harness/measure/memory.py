"""Peak resident memory of loading a variant and running one forward, in a fresh process.

Two independent readings (MB = 10^6 bytes):

* the kernel's high-water mark of the process's RSS: ``VmHWM`` from
  ``/proc/self/status``, reset to the current RSS right after imports (by
  writing 5 to ``/proc/self/clear_refs``) so it covers exactly the load and
  the forward.  Where the reset is unavailable (no ``/proc``, a read-only
  ``clear_refs``) there is no kernel reading -- never ``ru_maxrss`` instead:
  Linux carries ``ru_maxrss`` over fork+exec, so a worker spawned by a large
  parent reports the parent's peak;
* a sampler process (memory-profiler's ``memory_usage(..., interval=0.01,
  max_usage=True, max_iterations=1)``: the function runs exactly once, never
  re-run for more samples) polling the RSS every 10 ms, which can miss short spikes.

``peak_rss_mb`` is the higher of the two (``peak_rss_source`` names them);
``peak_rss_delta_mb`` is that peak minus the RSS right after imports: the load's
whole cost, transient copies included (a safetensors load briefly holds the
file's pages and the tensors' copy).  What stays after the load and the forward
is given by kind from ``/proc/self/status``: ``steady_anon_mb`` (``RssAnon``:
tensors, runtime heaps), ``steady_file_mb`` (``RssFile``: mapped files -- weights
a runtime keeps mmapped, shared libraries) and ``steady_shmem_mb``, each as the
rise over the post-import reading.  A delta of 0 MB for a loaded model is a
measurement bug (seed 001 reports 0.00 MB) and raises instead of being reported.
"""
from __future__ import annotations

import dataclasses
import gc
import statistics
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


class ImplausibleMeasurement(RuntimeError):
    pass


def _vm_hwm() -> int | None:
    """Kernel RSS high-water mark of this process in bytes (Linux), else None."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_hwm() -> str | None:
    """Reset the VmHWM to the current RSS; the reason it could not be, or None."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return None
    except OSError as exc:
        return f"/proc/self/clear_refs not writable ({exc.strerror or exc})"


def kernel_peak_unavailable() -> str | None:
    """Why this machine gives no resettable VmHWM (checked on the calling process), or None."""
    return _reset_hwm() or (None if _vm_hwm() is not None else "no VmHWM in /proc/self/status")


RSS_KINDS = {"RssAnon": "anon", "RssFile": "file", "RssShmem": "shmem"}


def _rss_by_kind() -> dict[str, int] | None:
    """This process's resident bytes by kind (``/proc/self/status``), or None without it."""
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in RSS_KINDS:
                    out[RSS_KINDS[key]] = int(line.split()[1]) * 1024
    except OSError:
        return None
    return out if len(out) == len(RSS_KINDS) else None


@dataclasses.dataclass
class Window:
    """What :func:`open_window` read before a load: the VmHWM reset (or why it failed), the RSS
    in bytes and the RSS by kind."""

    no_hwm: str | None
    baseline_rss: int
    kinds: dict[str, int] | None


def open_window() -> Window:
    """Reset the kernel's high-water mark and read the RSS: call right before the load."""
    import psutil

    no_hwm = _reset_hwm()
    return Window(no_hwm, psutil.Process().memory_info().rss, _rss_by_kind())


def close_window(window: Window, sampled_bytes: float | None = None) -> dict[str, Any]:
    """The memory fields of the load since ``window`` (call with the model still loaded):
    the VmHWM peak, or -- without one -- the sampler's ``sampled_bytes`` (None: no peak at all,
    ``peak_rss_mb`` None), the rise over the window's RSS and what stayed resident by kind.

    Raises:
        ImplausibleMeasurement: a peak that is not above the window's RSS.
    """
    hwm = None if window.no_hwm else _vm_hwm()
    why = window.no_hwm or (None if hwm is not None else "no VmHWM in /proc/self/status")
    readings = [b for b in (hwm, sampled_bytes) if b is not None]
    peak = max(readings) if readings else None
    if peak is not None and peak <= window.baseline_rss:
        raise ImplausibleMeasurement(
            f"peak RSS {peak / 1e6:.1f} MB is not above the post-import baseline {window.baseline_rss / 1e6:.1f} MB")
    after = _rss_by_kind()
    steady = {f"steady_{k}_mb": (after[k] - window.kinds[k]) / 1e6 if after and window.kinds else None
              for k in RSS_KINDS.values()}
    return {
        "baseline_rss_mb": window.baseline_rss / 1e6,
        "kernel_peak_rss_mb": None if hwm is None else hwm / 1e6,
        "kernel_peak_source": "VmHWM" if hwm is not None else f"unavailable: {why}",
        "sampled_peak_rss_mb": None if sampled_bytes is None else sampled_bytes / 1e6,
        "peak_rss_mb": None if peak is None else peak / 1e6,
        "peak_rss_source": None if peak is None else ("VmHWM" if hwm is not None and hwm >= (sampled_bytes or 0)
                                                      else "sampler"),
        "peak_rss_delta_mb": None if peak is None else (peak - window.baseline_rss) / 1e6,
        **steady,
    }


def batch_peak(adapter: Any, runner: Any, batch_file: Path) -> dict[str, Any]:
    """Memory of one forward of the batch in ``batch_file`` on an already loaded ``runner``:
    ``batch_peak_rss_mb`` (the process's VmHWM over that forward) and ``batch_activation_mb``
    (its rise over the RSS right before: activations and workspace at that batch size),
    ``batch_size``; None readings where the kernel gives no resettable VmHWM (with the reason in
    ``batch_peak_source``)."""
    inputs = adapter.load_worker_inputs(batch_file)
    gc.collect()
    window = open_window()
    adapter.first_result(runner, inputs)
    hwm = None if window.no_hwm else _vm_hwm()
    size = len(next(iter(inputs.values())))
    return {"batch_size": size, "batch_peak_rss_mb": None if hwm is None else hwm / 1e6,
            "batch_activation_mb": None if hwm is None else (hwm - window.baseline_rss) / 1e6,
            "batch_peak_source": "VmHWM" if hwm is not None else f"unavailable: {window.no_hwm or 'no VmHWM'}"}


def worker_peak_memory(variant_dir: Path, inputs_file: Path, threads: int, backend: str = "torch") -> dict[str, Any]:
    """Peak RSS of loading ``variant_dir`` through the ``backend`` adapter and one forward, with the
    sampler beside the kernel's reading (the suite's fallback where the cold-start worker's
    VmHWM reading is unavailable: :func:`harness.measure.cold_start.worker_cold_start`).

    ``peak_rss_delta_mb`` -- the rise over the post-import RSS -- is the figure that
    compares backends; ``peak_rss_mb`` includes the runtime (torch, or onnxruntime alone:
    that worker reads its batch from a ``.npz`` file and never imports torch).

    Raises:
        ImplausibleMeasurement: the peak is not above the post-import RSS.
    """
    # Imported here, in the fresh worker, before the post-import RSS the delta is measured from.
    from memory_profiler import memory_usage

    from harness import backends

    adapter = backends.get(backend)
    adapter.import_runtime(variant_dir)
    inputs = adapter.load_worker_inputs(inputs_file)
    gc.collect()
    window = open_window()
    held: list[Any] = []  # the loaded runner stays alive for the steady-state reading

    def load_and_run() -> None:
        runner = adapter.load(variant_dir, threads, verify=False)
        adapter.first_result(runner, inputs)
        held.append(runner)

    sampled = float(memory_usage((load_and_run, (), {}), interval=0.01, max_usage=True, include_children=False,
                                 max_iterations=1)) * MIB
    return close_window(window, sampled)


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over fresh processes (None where a sample lacks the reading), plus the spread of
    ``peak_rss_mb``; the larger batch's readings (:func:`batch_peak`) are medians over the samples
    that took one (``batch_memory_samples``; None without any)."""
    if not samples:
        raise ValueError("no memory samples")
    keys = ("baseline_rss_mb", "kernel_peak_rss_mb", "sampled_peak_rss_mb", "peak_rss_mb", "peak_rss_delta_mb",
            *(f"steady_{k}_mb" for k in RSS_KINDS.values()))
    batched = [s for s in samples if s.get("batch_size")]
    out: dict[str, Any] = {}
    for k in keys:
        values = [s.get(k) for s in samples]
        out[k] = None if any(v is None for v in values) else statistics.median(values)
    out["kernel_peak_source"] = samples[0]["kernel_peak_source"]
    out["memory_samples"] = len(samples)
    out["peak_rss_raw_mb"] = [round(s["peak_rss_mb"], 2) for s in samples]
    for k in ("batch_peak_rss_mb", "batch_activation_mb"):
        values = [s.get(k) for s in batched]
        out[k] = None if not values or None in values else statistics.median(values)
    out["batch_size"] = batched[0]["batch_size"] if batched else None
    out["batch_memory_samples"] = len(batched)
    return out
