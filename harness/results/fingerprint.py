"""Machine fingerprint recorded with every result (pyperf's collect_* style).

``TIMING_KEYS`` are the facts that change a timing: two runs may have their
timings compared only when these match (``machine_id`` hashes them).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
from typing import Any

from harness.core import cpu

TIMING_KEYS = ("cpu_model", "physical_cores", "logical_cpus", "isa_flags", "torch", "threads",
               "quant_engine")


def collect_cpu() -> dict[str, Any]:
    import psutil

    return {
        "cpu_model": cpu.read_cpuinfo()[0],
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cpus": psutil.cpu_count(logical=True),
        "isa_flags": cpu.isa_flags(),
        # ORT INT8 artifacts are built with 7-bit weights here (harness.backends.onnx_export);
        # derived from isa_flags, so not a timing key of its own.
        "ort_int8_reduce_range": cpu.u8s8_saturates(),
        "memory_total_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "arch": platform.machine(),
    }


def collect_software() -> dict[str, Any]:
    import torch
    import transformers

    info = {
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "quant_engine": torch.backends.quantized.engine,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
    }
    for env in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE"):
        if env in os.environ:
            info[f"env_{env}"] = os.environ[env]
    return info


def machine_id(info: dict[str, Any]) -> str:
    """Short hash of ``TIMING_KEYS`` in ``info`` (missing keys hash as null)."""
    blob = json.dumps({k: info.get(k) for k in TIMING_KEYS}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def collect(threads: int) -> dict[str, Any]:
    """The full fingerprint for a run measured with ``threads`` intra-op threads."""
    info = {**collect_cpu(), **collect_software(), "threads": int(threads)}
    info["machine_id"] = machine_id(info)
    return info


def timing_mismatch(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Names of the timing keys on which two fingerprints differ."""
    return [k for k in TIMING_KEYS if a.get(k) != b.get(k)]
