"""The run journal: every finished benchmark appended as it finishes, so a dead suite loses one cell.

pytest-benchmark writes a run only when the session ends; a SIGKILL or the OOM
killer hitting the suite process itself would lose every measurement made so far.
The suite therefore appends each finished benchmark item to a journal, one JSON
object per line, flushed and ``fsync``'d before the next item starts:
``{"nodeid", "name", "group", "extra_info", "samples_s"}``.  ``pytest suites/
--resume JOURNAL`` replays what the journal holds (its numbers, not new ones)
and measures only the rest, appending to the same journal:

* a latency/throughput item is replayed only when every cell of its campaign
  (same profile and shape) is in the journal -- a paired ratio needs both sides
  from one campaign, so a half-journaled campaign is timed again whole;
* a truncated last line (the process died while writing it) is ignored.

Journals live in ``.benchmarks/journal/`` (``--journal PATH`` to choose).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.paths import ROOT

DEFAULT_DIR = ROOT / ".benchmarks" / "journal"


def default_path() -> Path:
    """A new journal's path: ``.benchmarks/journal/<UTC time>-<pid>.jsonl``."""
    return DEFAULT_DIR / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}.jsonl"


def append(path: Path, record: dict[str, Any]) -> None:
    """Append one record as a line, flushed and fsync'd (durable before the next item starts)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, default=str) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def load(path: Path) -> dict[str, dict[str, Any]]:
    """The journal's records by pytest node id (a later record of a node wins).

    Raises:
        HarnessError: the file is missing or a line other than the last is not JSON.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise HarnessError(f"journal {path} does not exist; pass the path the interrupted run printed "
                           f"(journals are in {DEFAULT_DIR})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"cannot read journal {path} ({exc})") from None
    records: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):
                break  # the process died while writing its last record: that cell is lost, nothing else
            raise HarnessError(f"journal {path} line {n} is not JSON; the file is damaged -- start a new run") from None
        if not isinstance(record, dict) or "nodeid" not in record:
            raise HarnessError(f"journal {path} line {n} is not a benchmark record")
        records[record["nodeid"]] = record
    return records


def record_of(nodeid: str, benchmark: Any) -> dict[str, Any] | None:
    """The journal record of a finished item's pytest-benchmark fixture (None if it timed nothing)."""
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is None:
        return None
    return {"nodeid": nodeid, "name": benchmark.name, "group": benchmark.group,
            "extra_info": dict(benchmark.extra_info), "samples_s": list(stats.data)}


def store_samples(benchmark: Any, samples_s: list[float]) -> None:
    """Hand samples measured elsewhere (a timing worker, a journal) to pytest-benchmark's statistics,
    so ``--benchmark-autosave`` keeps them as the item's raw data.  pytest-benchmark has no public
    call for that; ``_make_stats`` is what its own ``pedantic`` calls before timing."""
    stats = benchmark._make_stats(1)
    for s in samples_s:
        stats.update(s)
