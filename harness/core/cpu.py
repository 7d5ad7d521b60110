"""What this CPU is: its model name and the ISA features that decide which GEMM kernels torch and
onnxruntime use (read from ``/proc/cpuinfo``; empty off Linux).

The results layer records them in every fingerprint; the backends choose kernels-dependent
settings from them (:func:`u8s8_saturates`).
"""
from __future__ import annotations

import functools
import platform

ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
             "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@functools.lru_cache(maxsize=1)
def read_cpuinfo() -> tuple[str, frozenset[str]]:
    """``(model name, every flag)`` of the first processor in ``/proc/cpuinfo``; ``platform.processor()``
    (or "unknown") and no flags where the file cannot be read."""
    model, flags = platform.processor() or "unknown", frozenset()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("unknown", "", platform.machine()):
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = frozenset(value.split())
    except OSError:
        pass
    return model, flags


def isa_flags() -> list[str]:
    """The :data:`ISA_FLAGS` this CPU has, in that order."""
    flags = read_cpuinfo()[1]
    return [f for f in ISA_FLAGS if f in flags]


def u8s8_saturates(flags: list[str] | None = None, arch: str | None = None) -> bool:
    """True on an x86 CPU without a VNNI instruction (``avx512_vnni``, ``avx_vnni``, ``amx_int8``).

    There, u8 x s8 dot products go through ``vpmaddubsw``, which adds pairs of products into
    int16 with saturation: two full-range products (255 x 127 x 2 = 64,770 > 32,767) clip, so an
    INT8 GEMM with 8-bit weights returns wrong sums.  ONNX Runtime's quantizer avoids it with
    7-bit weights (``reduce_range=True``, "7-bit quantization for better accuracy on non-VNNI
    CPUs" in ``onnxruntime.quantization.quantize_dynamic``'s documentation).
    ``flags`` default to this CPU's :func:`isa_flags`, ``arch`` to ``platform.machine()``; off x86
    (e.g. ARM's ``sdot``/``smmla`` kernels) it is False.
    """
    arch = (arch or platform.machine()).lower()
    if arch not in ("x86_64", "amd64", "i386", "i686"):
        return False
    flags = isa_flags() if flags is None else flags
    return not any(f in flags for f in VNNI_FLAGS)
