"""Reading saved runs (pytest-benchmark JSON files written by ``--benchmark-autosave``).

A run is ours when it carries the ``edgebench`` stamp added by the suite's
``pytest_benchmark_update_json`` hook; its schema version must be one this
harness reads (pyperf's rule: an unknown version is a clear error, not a guess).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import HarnessError
from .paths import benchmarks_dir

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
    if not path.is_file():
        raise HarnessError(f"saved run {path} does not exist; list runs with 'ls .benchmarks/*/'")
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HarnessError(f"{path} is not JSON ({exc.__class__.__name__}); pass a file saved by --benchmark-autosave") from None
    if not isinstance(run, dict) or not isinstance(run.get("benchmarks"), list) or "machine_info" not in run:
        raise HarnessError(f"{path} is not a pytest-benchmark run (no 'benchmarks'/'machine_info'); pass a file saved by --benchmark-autosave")
    stamp = run.get("edgebench")
    if not isinstance(stamp, dict):
        raise HarnessError(f"{path} was not produced by this suite (no 'edgebench' stamp); run 'pytest suites/ --benchmark-autosave'")
    if stamp.get("schema") not in SUPPORTED_SCHEMAS:
        raise HarnessError(
            f"{path} has run schema {stamp.get('schema')}, this harness reads {SUPPORTED_SCHEMAS}; re-run the suite")
    if not run["benchmarks"]:
        raise HarnessError(f"{path} holds no benchmarks (was every test deselected or failed?)")
    return run


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
