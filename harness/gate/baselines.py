"""Blessed runs: the stored baseline of each machine, under ``baselines/<machine-id>/``.

``machine-id`` hashes the fingerprint keys that change timings
(``harness.results.fingerprint.TIMING_KEYS``), so a baseline is only ever found by a
run of the same machine, torch version and thread count.  Up to ``KEEP``
blessed runs are kept (``run-NNNN.json``): the stored-baseline gate
(``harness.gate.compare``) judges a run's in-run ratios against a prediction
bound from the same ratios of at least 3 of them (one run cannot show how far an
unchanged tree drifts between runs on a shared machine).  A run that failed its
own A/A control is refused; a run saved before issue 16 (single-block timing) may
be blessed for its sizes and accuracy but never counts towards judging timings.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.core import atomic
from harness.core.errors import HarnessError
from harness.core.paths import ROOT, safe_name, safe_output_path
from harness.gate import compare
from harness.measure.stats import AA_BOUNDS
from harness.results import storage

BASELINES = ROOT / "baselines"

# Blessed runs kept per machine.  Benjamini-Hochberg across m gated benchmarks
# asks a lone regression's p to beat about alpha / m, and the t model's tails
# shrink with k: among 20 benchmarks a 20% slowdown of a ratio with 1.5% run-level
# sd is found ~5% of the time with k = 3, ~80% with 5 and ~100% with 10
# (tests/test_compare.py prints the numbers).
KEEP = 10


def baseline_dir(machine_id: str, root: Path | None = None) -> Path:
    """``<root>/<machine_id>``; the id comes from a run file, so it must be one plain
    name that stays inside ``root`` (HarnessError otherwise)."""
    base = root or BASELINES
    return safe_output_path(base / safe_name(machine_id, "machine id"), "baseline folder", roots=[base])


def machine_id_of(run: dict[str, Any]) -> str:
    info = run["machine_info"].get("edgebench", {}) if isinstance(run.get("machine_info"), dict) else {}
    mid = info.get("machine_id") if isinstance(info, dict) else None
    if not mid:
        raise HarnessError("the run has no machine fingerprint (machine_info.edgebench.machine_id); re-run the suite")
    return mid


def bless(run_path: Path, root: Path | None = None) -> Path:
    """Store ``run_path`` as its machine's baseline (atomically), return where.

    Raises HarnessError (one line) for a foreign, partial or failed run, one whose
    torch fp32 A/A control failed (``aa_passed`` False: its ratios carry the noise
    of a busy machine and would widen every later bound), and a single-block run
    without raw samples (``harness diff`` tests those; run with
    ``--benchmark-save-data``).
    """
    run = storage.load_run(run_path)
    folder = baseline_dir(machine_id_of(run), root)  # first: a machine id must name a folder under baselines/
    check_blessable(run, run_path)
    existing = sorted(folder.glob("run-*.json"))
    number = int(existing[-1].stem.split("-")[1]) + 1 if existing else 1
    target = folder / f"run-{number:04d}.json"
    atomic.write_bytes(target, Path(run_path).read_bytes())
    for old in existing[: max(0, len(existing) + 1 - KEEP)]:
        old.unlink()
    return target


def check_blessable(run: dict[str, Any], run_path: Path) -> None:
    """Raise HarnessError (one line) unless ``run`` may be a baseline (see :func:`bless`)."""
    if run["edgebench"].get("interrupted"):
        raise HarnessError(f"{run_path} is a partial run (interrupted); bless a complete run")
    if run["edgebench"].get("failures"):
        raise HarnessError(f"{run_path} has {len(run['edgebench']['failures'])} failed measurement(s); "
                           "bless a run where every variant was measured")
    rows = compare.run_rows(run)
    noisy = compare.aa_failures(rows)
    if noisy:
        low, high = AA_BOUNDS
        raise HarnessError(f"{run_path} failed its own A/A control ({'; '.join(noisy)}; every A/A CI must lie inside "
                           f"[{low}, {high}]); re-run on a quieter machine and bless that run")
    timed = [b for b in run["benchmarks"] if (b.get("extra_info") or {}).get("metric") in ("latency", "throughput")]
    if (compare.timing_design(rows) != compare.INTERLEAVED and timed
            and not all(b.get("stats", {}).get("data") for b in timed)):
        raise HarnessError(f"{run_path} has no raw per-round samples; re-run with --benchmark-save-data "
                           "(on by default in pyproject.toml) before blessing it")


def load_baselines(machine_id: str, root: Path | None = None) -> list[dict[str, Any]]:
    """The blessed runs of a machine, oldest first.

    Raises HarnessError when there is none, naming how to bless one.
    """
    folder = baseline_dir(machine_id, root)
    paths = sorted(folder.glob("run-*.json"))
    if not paths:
        raise HarnessError(f"no baseline for machine {machine_id} in {folder}: bless one with "
                           "'python -m harness bless [RUN]' after a run on this machine (3 runs measure the noise)")
    return [storage.load_run(p) for p in paths]


def status(machine_id: str, root: Path | None = None) -> str:
    """One line on what the blessed runs of a machine can judge, e.g. "3 blessed run(s)
    with interleaved timing: timings are judged" or :func:`compare.bless_more`'s note."""
    runs = [compare.run_rows(run) for run in load_baselines(machine_id, root)]
    usable = sum(compare.timing_design(rows) == compare.INTERLEAVED for rows in runs)
    old = "" if usable == len(runs) else (f" ({len(runs) - usable} more with {compare.SINGLE_BLOCK_NOTE}, "
                                          "not used for timings)")
    if usable < compare.MIN_BLESSED:
        return compare.bless_more(usable) + old
    return f"{usable} blessed run(s) with interleaved timing: timings are judged" + old
