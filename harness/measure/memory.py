"""Peak resident memory of loading a variant and running one forward, in a fresh process.

Two independent readings (MB = 10^6 bytes):

* the kernel's high-water mark of the process's RSS: ``VmHWM`` from
  ``/proc/self/status``, reset to the current RSS right after imports (by
  writing 5 to ``/proc/self/clear_refs``) so it covers exactly the load and
  the forward.  ``ru_maxrss`` is recorded too but is not used where VmHWM
  exists: Linux carries ``ru_maxrss`` over fork+exec, so a worker spawned by
  the 1.5 GB pytest process reported 1502 MB for every variant (measured);
* a sampler process (memory-profiler's ``memory_usage(..., interval=0.01,
  max_usage=True)``) polling the RSS every 10 ms, which can miss short spikes.

``peak_rss_mb`` is the higher of the two; ``peak_rss_delta_mb`` is that peak
minus the RSS right after imports, i.e. what the model itself costs.  A delta
of 0 MB for a loaded model is a measurement bug (seed 001 reports 0.00 MB)
and raises instead of being reported.
"""
from __future__ import annotations

import gc
import resource
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


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker_peak_memory(variant_dir: Path, inputs_file: Path, threads: int, backend: str = "torch") -> dict[str, Any]:
    """Peak RSS of loading ``variant_dir`` through the ``backend`` adapter and one forward.

    torch is imported on every backend (the inputs are a torch file), so
    ``peak_rss_delta_mb`` -- the rise over the post-import RSS -- is the
    figure that compares backends; ``peak_rss_mb`` includes torch's runtime.
    """
    # Imported here, in the fresh worker, before the post-import RSS the delta is measured from.
    import psutil
    import torch
    from memory_profiler import memory_usage

    from harness import backends

    adapter = backends.get(backend)
    adapter.import_runtime(variant_dir)
    torch.set_num_threads(threads)
    inputs = torch.load(inputs_file, weights_only=True)
    gc.collect()
    hwm_reset = _reset_hwm()
    baseline_rss = psutil.Process().memory_info().rss

    def load_and_run() -> None:
        adapter.load(variant_dir, threads, verify=False)(inputs)

    sampled_mib = memory_usage((load_and_run, (), {}), interval=0.01, max_usage=True, include_children=False)
    ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    hwm = _vm_hwm() if hwm_reset else None
    kernel_peak = hwm if hwm is not None else ru_maxrss
    sampled = float(sampled_mib) * MIB
    peak = max(kernel_peak, sampled)
    delta = peak - baseline_rss
    if delta <= 0:
        raise ImplausibleMeasurement(
            f"peak RSS {peak / 1e6:.1f} MB is not above the post-import baseline {baseline_rss / 1e6:.1f} MB"
        )
    return {
        "baseline_rss_mb": baseline_rss / 1e6,
        "kernel_peak_rss_mb": kernel_peak / 1e6,
        "kernel_peak_source": "VmHWM" if hwm is not None else "ru_maxrss",
        "ru_maxrss_mb": ru_maxrss / 1e6,
        "sampled_peak_rss_mb": sampled / 1e6,
        "peak_rss_mb": peak / 1e6,
        "peak_rss_delta_mb": delta / 1e6,
    }


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over fresh processes, plus the spread of ``peak_rss_mb``."""
    if not samples:
        raise ValueError("no memory samples")
    keys = ("baseline_rss_mb", "kernel_peak_rss_mb", "sampled_peak_rss_mb", "peak_rss_mb", "peak_rss_delta_mb")
    out: dict[str, Any] = {k: statistics.median(s[k] for s in samples) for k in keys}
    out["kernel_peak_source"] = samples[0]["kernel_peak_source"]
    out["memory_samples"] = len(samples)
    out["peak_rss_raw_mb"] = [round(s["peak_rss_mb"], 2) for s in samples]
    return out
