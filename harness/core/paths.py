"""Where the project keeps its caches and outputs.

Everything large (downloaded packages, extracted weights and data, fine-tuned
checkpoints, built variants) lives under one cache folder, by default
``<project>/.cache`` and overridable with ``EDGEBENCH_CACHE``.
"""
from __future__ import annotations

import os
from pathlib import Path

from harness.core.errors import HarnessError

ROOT = Path(__file__).resolve().parents[2]


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


# Folders a command may write into besides the project tree and the cache: the
# system temp dir (tests, scratch runs) and any listed in EDGEBENCH_OUTPUT_DIRS
# (os.pathsep-separated) for users who keep results elsewhere on purpose.
OUTPUT_DIRS_ENV = "EDGEBENCH_OUTPUT_DIRS"


def output_roots() -> list[Path]:
    """Folders under which commands may write: the project, the cache, the temp dir, EDGEBENCH_OUTPUT_DIRS."""
    import tempfile

    roots = [ROOT, Path(os.environ.get("EDGEBENCH_CACHE", ROOT / ".cache")), Path(tempfile.gettempdir())]
    roots += [Path(p) for p in os.environ.get(OUTPUT_DIRS_ENV, "").split(os.pathsep) if p.strip()]
    return [r.resolve() for r in roots]


def safe_output_path(path: str | os.PathLike, what: str, base: Path | None = None,
                     roots: list[Path] | None = None) -> Path:
    """``path`` resolved (symlinks and ``..`` followed), checked to lie inside an output root.

    A relative path is taken relative to ``base`` (default: the current
    directory).  ``roots`` defaults to :func:`output_roots`.

    Raises:
        HarnessError: the path holds a NUL byte, or resolves outside every
            root (e.g. ``../../etc``), naming the roots and the way to allow
            another folder.
    """
    text = os.fspath(path)
    if not text or "\x00" in text:
        raise HarnessError(f"{what} {text!r} is not a usable path; pass a folder under the project")
    candidate = Path(text)
    if not candidate.is_absolute():
        candidate = (base or Path.cwd()) / candidate
    resolved = candidate.resolve()
    allowed = roots if roots is not None else output_roots()
    if not any(resolved == r or resolved.is_relative_to(r) for r in (r.resolve() for r in allowed)):
        raise HarnessError(
            f"{what} {text} resolves to {resolved}, outside the output folders "
            f"({', '.join(str(r) for r in allowed)}); write under the project or add the folder to {OUTPUT_DIRS_ENV}")
    return resolved


def safe_name(name: str, what: str) -> str:
    """``name`` if it is one plain path component (letters, digits, ``._-``), for names read from files.

    Raises HarnessError otherwise (e.g. a machine id ``../../x`` in a crafted run file).
    """
    import re

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", name):
        raise HarnessError(f"{what} {name!r} is not a plain file name; the file it came from is corrupt or crafted")
    return name
