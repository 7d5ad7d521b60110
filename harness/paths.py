"""Where the project keeps its caches and outputs.

Everything large (downloaded packages, extracted weights and data, fine-tuned
checkpoints, built variants) lives under one cache folder, by default
``<project>/.cache`` and overridable with ``EDGEBENCH_CACHE``.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """The cache root (created on demand)."""
    path = Path(os.environ.get("EDGEBENCH_CACHE", ROOT / ".cache")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def reports_dir() -> Path:
    return ROOT / "reports"


def benchmarks_dir() -> Path:
    """pytest-benchmark's storage (``--benchmark-storage`` default)."""
    return ROOT / ".benchmarks"
