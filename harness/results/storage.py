"""Reading saved runs (pytest-benchmark JSON files written by ``--benchmark-autosave``).

A run is ours when it carries the ``edgebench`` stamp added by the suite's
``pytest_benchmark_update_json`` hook; its schema version must be one this
harness reads (pyperf's rule: an unknown version is a clear error, not a guess).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.paths import benchmarks_dir

SUPPORTED_SCHEMAS = (1,)


def newest_run(storage: Path | None = None) -> Path:
    """The most recently saved run under ``storage`` (default ``.benchmarks/``).

    Raises HarnessError when none exists.
    """
    root = storage or benchmarks_dir()
    runs = sorted(root.glob("*/*.json"), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    if not runs:
        raise HarnessError(f"no saved run under {root}: run 'pytest suites/ --benchmark-autosave' (or 'make bench') first")
    return runs[-1]


def load_run(path: Path) -> dict[str, Any]:
    """Load and validate a saved run.

    Raises:
        HarnessError: missing file, not JSON, not a pytest-benchmark run, not
            stamped by this suite, or an unsupported schema version.
    """
    path = Path(path)
    try:
        exists = "\x00" not in str(path) and path.is_file()
    except OSError:  # name too long, permission denied on a parent
        exists = False
    if not exists:
        raise HarnessError(f"saved run {path} does not exist; list runs with 'ls .benchmarks/*/'")
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise HarnessError(f"{path} is not JSON ({exc.__class__.__name__}); pass a file saved by --benchmark-autosave") from None
    except OSError as exc:
        raise HarnessError(f"cannot read {path} ({exc.strerror}); pass a readable saved run") from None
    if (not isinstance(run, dict) or not isinstance(run.get("benchmarks"), list)
            or not isinstance(run.get("machine_info"), dict)):
        raise HarnessError(f"{path} is not a pytest-benchmark run (no 'benchmarks'/'machine_info'); pass a file saved by --benchmark-autosave")
    if not isinstance(run["machine_info"].get("edgebench", {}), dict):
        raise HarnessError(f"{path}: machine_info.edgebench is not an object; the file is damaged -- re-run the suite")
    stamp = run.get("edgebench")
    if not isinstance(stamp, dict):
        raise HarnessError(f"{path} was not produced by this suite (no 'edgebench' stamp); run 'pytest suites/ --benchmark-autosave'")
    if stamp.get("schema") not in SUPPORTED_SCHEMAS:
        raise HarnessError(
            f"{path} has run schema {stamp.get('schema')}, this harness reads {SUPPORTED_SCHEMAS}; re-run the suite")
    if not run["benchmarks"]:
        raise HarnessError(f"{path} holds no benchmarks (was every test deselected or failed?)")
    for n, bench in enumerate(run["benchmarks"]):
        problem = _benchmark_problem(bench)
        if problem:
            raise HarnessError(f"{path}: benchmark #{n + 1} {problem}; the file is damaged -- re-run the suite")
    failures = stamp.get("failures", [])
    if not isinstance(failures, list) or not all(isinstance(f, dict) for f in failures):
        raise HarnessError(f"{path}: edgebench.failures is not a list of records; the file is damaged -- re-run the suite")
    return run


NUM = (int, float)
OPT_NUM = (int, float, type(None))
# Keys each metric's ``extra_info`` must hold for the report, the budgets and
# the comparison to read it (what ``suites/test_bench.py`` writes) ...
REQUIRED: dict[str, tuple[str, ...]] = {
    "static": ("size_mb",),
    "latency": ("seq_len", "p50_ms", "p90_ms", "p99_ms", "cv"),
    "throughput": ("batch_size", "throughput_sps"),
    "cold_start": ("cold_start_ms", "load_ms", "first_forward_ms"),
    "memory": ("peak_rss_mb", "peak_rss_delta_mb"),
    "quality": ("eval_set", "accuracy", "accuracy_ci95", "eval_loss", "agreement", "kl_fp32"),
    "int8_engine": ("engine", "p50_ms", "cv"),
}
# ... and the type of every key they read, checked wherever the key is present.
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "seq_len": (int,), "batch_size": (int,), "eval_set": (str,), "engine": (str,),
    "p50_ms": NUM, "p90_ms": NUM, "p99_ms": OPT_NUM, "cv": NUM, "throughput_sps": NUM,
    "cold_start_ms": NUM, "load_ms": NUM, "first_forward_ms": NUM, "peak_rss_mb": NUM,
    "peak_rss_delta_mb": NUM, "accuracy": NUM, "eval_loss": NUM,
    **{k: OPT_NUM for k in ("size_mb", "size_sparse_mb", "params", "nonzero_params", "sparsity", "linear_sparsity",
                            "flops", "macs_fvcore", "quantized_linear_fraction", "p50_block_cv", "agreement",
                            "kl_fp32", "load_avg_1m", "time_to_first_result_ms", "interpreter_ms", "import_ms",
                            "cold_cache_time_to_first_result_ms", "cold_cache_load_ms", "cold_cache_first_forward_ms",
                            "cold_cache_cold_start_ms", "cold_cache_resident_after", "preoptimized_load_ms",
                            "preoptimized_time_to_first_result_ms", "preoptimized_cold_start_ms",
                            "batch_peak_rss_mb", "batch_activation_mb", "sustained_sps")},
    "quant_engine": (str, type(None)), "accuracy_ci95": (list, type(None)),
}


MACHINE_METRICS = frozenset({"gemm_peak"})
"""Metrics that describe the machine, not a (profile, variant): no profile/variant keys."""


def _benchmark_problem(bench: Any) -> str | None:
    """Why one entry of ``benchmarks`` cannot be read, or None."""
    if not isinstance(bench, dict):
        return "is not an object"
    if not isinstance(bench.get("stats", {}), dict) or not isinstance(bench.get("extra_info", {}), dict):
        return "has a non-object 'stats' or 'extra_info'"
    data = bench.get("stats", {}).get("data", [])
    if not isinstance(data, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in data):
        return "has non-numeric raw samples (stats.data)"
    info = bench.get("extra_info") or {}
    if "metric" not in info:
        return None
    metric = info["metric"]
    if not isinstance(metric, str):
        return "has a non-string metric"
    for key in ("profile", "variant"):
        if metric in MACHINE_METRICS and key not in info:
            continue
        if not isinstance(info.get(key), str):
            return f"({metric}) has no string '{key}'"
    for key in REQUIRED.get(metric, ()):
        if key not in info:
            return f"({metric}) has no '{key}'"
    for key, types in FIELD_TYPES.items():
        value = info.get(key)
        if key in info and (not isinstance(value, types) or isinstance(value, bool)):
            return f"({metric}) has an invalid '{key}' (got {str(value)[:40]!r})"
    ci = info.get("accuracy_ci95")
    if isinstance(ci, list) and (len(ci) != 2 or not all(isinstance(x, NUM) and not isinstance(x, bool) for x in ci)):
        return f"({metric}) has an invalid 'accuracy_ci95' (want [low, high])"
    return None


def results(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Each benchmark's ``extra_info`` merged with its timing stats (seconds) under ``stats``."""
    out = []
    for bench in run["benchmarks"]:
        info = dict(bench.get("extra_info") or {})
        if "metric" not in info:
            continue
        info["stats"] = bench.get("stats", {})
        info["name"] = bench.get("name")
        out.append(info)
    return out
