"""A run survives its variants: failures recorded, interrupts harmless, saved runs atomic.

* A variant whose build raises, or whose fresh-process measurement crashes
  (exception, ``os.abort()``, segfault, the OOM killer's SIGKILL), fails only
  its own test items; :func:`note_failure` records each failed benchmark item
  (variant, test, reason) and the suite's ``pytest_benchmark_update_json`` hook
  saves them as ``edgebench.failures``.  The failed item's partial timing is
  dropped from the saved run (``has_error``), so no number of a failed
  measurement is ever reported.  A build failure is remembered per session
  (:class:`VariantBuildError`), so the variant's other items fail at once
  instead of rebuilding.
* SIGTERM is turned into the same clean unwinding as Ctrl-C
  (``KeyboardInterrupt``): temp files are removed by :mod:`harness.core.atomic`,
  and a run saved after an interrupt is stamped ``interrupted: true`` (bless
  refuses it).
* pytest-benchmark writes its saved run and ``--benchmark-json`` with a plain
  ``open(..., "wb")``; :func:`make_saving_atomic` routes both through
  :func:`harness.core.atomic.write_bytes`, so an interrupted save leaves no
  half-written JSON for ``report``/``check`` to trip over.

MLPerf treats a run with a failed or missing result as invalid for submission;
we keep the run (every other variant's numbers are valid) but say which
measurement is missing and why.
"""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from harness.core import atomic
from harness.core.errors import HarnessError, one_line
from harness.core.paths import safe_output_path

FAILURES = pytest.StashKey[list]()
INTERRUPTED = pytest.StashKey[str]()
_PREVIOUS = pytest.StashKey[dict]()
SAVED = pytest.StashKey[Path]()  # the run file --benchmark-autosave wrote


class VariantBuildError(HarnessError):
    """Building or loading a variant failed; every test of that variant fails with this reason."""


class VariantUnsupported(Exception):
    """The variant's compressor does not apply to the profile's model (e.g. EdgeMIN on a BERT
    folder): every test of that variant is *skipped* with this one-line reason, not failed."""


def skip_unsupported(item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport) -> None:
    """Turn a :class:`VariantUnsupported` raised by a test into a skip with its reason."""
    if call.excinfo is not None and call.excinfo.errisinstance(VariantUnsupported):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), (item.location[1] or 0) + 1, f"Skipped: {call.excinfo.value}")


# --- failures -----------------------------------------------------------------------

def note_failure(item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport) -> None:
    """Record a failed benchmark item and drop its (partial) timing from the saved run."""
    if not report.failed or "benchmark" not in getattr(item, "fixturenames", ()):
        return
    fixture = getattr(item, "funcargs", {}).get("benchmark")
    if fixture is not None:
        fixture.has_error = True  # pytest-benchmark then leaves it out of the saved JSON
    params = getattr(getattr(item, "callspec", None), "params", {})
    case = params.get("case")
    reason = one_line(call.excinfo.value) if call.excinfo is not None else str(report.longrepr)[:300]
    item.config.stash.setdefault(FAILURES, []).append({
        "name": item.name,
        "test": getattr(item, "originalname", item.name),
        "profile": getattr(case, "profile", params.get("profile")),
        "variant": getattr(case, "variant", params.get("engine")),
        "phase": report.when,
        "reason": reason,
    })


def stamp(config: pytest.Config) -> dict[str, Any]:
    """Fields added to the run's ``edgebench`` stamp: ``failures`` and ``interrupted``."""
    out: dict[str, Any] = {"failures": list(config.stash.get(FAILURES, []))}
    if config.stash.get(INTERRUPTED, None):
        out["interrupted"] = config.stash[INTERRUPTED]
    return out


# --- interrupts ---------------------------------------------------------------------

def install_signal_handlers(config: pytest.Config) -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt (pytest's clean interrupt) and mark the run."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        config.stash[INTERRUPTED] = signal.Signals(signum).name
        raise KeyboardInterrupt(f"{signal.Signals(signum).name} received")

    config.stash[_PREVIOUS] = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}


def restore_signal_handlers(config: pytest.Config) -> None:
    for sig, previous in config.stash.get(_PREVIOUS, {}).items():
        signal.signal(sig, previous)


# --- pytest-benchmark's output files -------------------------------------------------

def make_saving_atomic(config: pytest.Config) -> None:
    """Route pytest-benchmark's autosave and ``--benchmark-json`` writes through temp + fsync + rename."""
    bs = getattr(config, "_benchmarksession", None)
    if bs is None:
        return
    from pytest_benchmark.storage.file import FileStorage
    from pytest_benchmark.utils import safe_dumps

    def dumps(output_json: dict) -> bytes:
        return safe_dumps(output_json, ensure_ascii=True, indent=4).encode()

    storage = bs.storage
    if isinstance(storage, FileStorage):
        def save(output_json: dict, save: str) -> None:
            target = storage.get(f"{storage._next_num}_{save}.json")
            atomic.write_bytes(target, dumps(output_json))
            config.stash[SAVED] = Path(target)  # what the results store publishes afterwards
            storage.logger.info(f"Saved benchmark data in: {target}")

        storage.save = save
    if bs.json:
        def save_json(output_json: dict) -> None:
            atomic.write_bytes(Path(bs.json), dumps(output_json))
            bs.logger.info(f"Wrote benchmark data in: {bs.json}", purple=True)

        bs.save_json = save_json


def drop_incomplete(config: pytest.Config) -> None:
    """Leave benchmarks an interrupt cut off before their first round out of the saved run.

    pytest-benchmark registers a benchmark when its timing starts; a
    KeyboardInterrupt (not an Exception) inside the timing loop leaves it with
    no samples and no error flag, and saving it then crashes (``min()`` of an
    empty list) -- losing the whole run.
    """
    bs = getattr(config, "_benchmarksession", None)
    if bs is not None:
        bs.benchmarks[:] = [b for b in bs.benchmarks if b.stats.data]


def check_output_options(config: pytest.Config) -> None:
    """``--benchmark-storage`` (file://) and ``--benchmark-json`` must lie in an output folder.

    Raises pytest.UsageError (exit 4) naming the option otherwise.
    """
    try:
        storage = config.getoption("benchmark_storage", None)
        if isinstance(storage, str) and ("://" not in storage or storage.startswith("file://")):
            safe_output_path(storage.removeprefix("file://"), "--benchmark-storage", base=Path(config.invocation_params.dir))
        out = config.getoption("benchmark_json", None)
        if out:
            safe_output_path(out, "--benchmark-json", base=Path(config.invocation_params.dir))
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None
