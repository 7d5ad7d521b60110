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

# ISA features that decide which GEMM kernels torch / onnxruntime can use.
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
             "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")

TIMING_KEYS = ("cpu_model", "physical_cores", "logical_cpus", "isa_flags", "torch", "threads",
               "quant_engine")


def collect_cpu() -> dict[str, Any]:
    import psutil

    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("unknown", "", platform.machine()):
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {
        "cpu_model": model,
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cpus": psutil.cpu_count(logical=True),
        "isa_flags": [f for f in ISA_FLAGS if f in flags],
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
