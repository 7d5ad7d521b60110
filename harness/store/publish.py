"""Publish a saved run (pytest-benchmark JSON) to the results store as MLflow runs.

One parent run per suite run, tagged with its testbed (``machine_id``), the full machine
fingerprint, commit, command line and run key; one nested run per (profile, variant,
backend) holding every number of the report's summary row as a metric (timings in ms,
throughput in samples/s, sizes in MB, ratios to fp32 with their 95% CI bounds) and the
variant's recorded config as params; the saved JSON (raw samples) and the rendered report
(report.md, CSV/JSON tables, plots) as the parent's artifacts.

Idempotent: the run key (the suite's ``run_id`` stamp, else a hash of the file's content)
finds an earlier record, and publishing it again adds nothing.  Atomic for readers: every
run is created RUNNING and the parent is marked FINISHED last; readers (:mod:`harness.store.read`)
see only finished parents, and a publish that died half-way is deleted and redone next time.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from harness.core.errors import HarnessError
from harness.results import storage
from harness.results.rows import collect
from harness.store import uri as store_uri

# Tag names (MLflow's own ``mlflow.*`` tags give the UI its run names and nesting).
KIND, RUN_KEY, TESTBED = "edgebench.kind", "edgebench.run_key", "testbed"
PARENT, RUN_NAME = "mlflow.parentRunId", "mlflow.runName"
SUITE_RUN, CELL = "suite-run", "cell"
CELL_KEYS = ("profile", "variant", "backend")
# MLflow caps one log_batch at 1000 metrics, 100 params and 100 tags.
BATCH = 100


@dataclasses.dataclass(frozen=True)
class Published:
    """One saved run in the store: its key, the MLflow parent run id, whether this call wrote it."""

    path: Path
    run_key: str
    mlflow_run_id: str
    created: bool
    cells: int
    seconds: float


def run_key(run: dict[str, Any]) -> str:
    """The suite's ``run_id`` stamp, else the sha256 (16 hex) of the run's canonical JSON."""
    stamped = run.get("edgebench", {}).get("run_id")
    if isinstance(stamped, str) and stamped:
        return stamped
    return hashlib.sha256(json.dumps(run, sort_keys=True).encode()).hexdigest()[:16]


def _key(text: str) -> str:
    """A metric/param name MLflow accepts (letters, digits, ``_-./`` and spaces)."""
    return re.sub(r"[^\w\-./ ]", "_", text)


def _suffix(field: str, index: str) -> str:
    """``seq128`` / ``bs32`` for a per-length or per-batch entry (``latency@128`` as well)."""
    axis, at, n = index.partition("@")
    if at:
        return f"{'bs' if axis == 'throughput' else 'seq'}{n}"
    if index.isdigit():
        return f"{'bs' if field.startswith(('throughput', 'sustained')) else 'seq'}{index}"
    return _key(index)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def flatten(row: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """A summary row as (metrics, params).

    Numbers become metrics under their row names (``p50_ms.seq128``, ``throughput_sps.bs32``,
    ``p50_ratio.seq128`` with ``p50_ratio_ci_low/high.seq128`` and ``p50_ratio_n.seq128``,
    ``accuracy`` with ``accuracy_ci_low/high``); strings, flags and the variant config
    (``config.stages`` ...) become params.  None (not measured) is left out.
    """
    metrics: dict[str, float] = {}
    params: dict[str, str] = {}

    def put(name: str, value: Any) -> None:
        if _number(value):
            metrics[_key(name)] = float(value)
        elif isinstance(value, (str, bool)):
            params[_key(name)] = str(value)

    for field, value in row.items():
        if field in CELL_KEYS:
            continue
        if dataclasses.is_dataclass(value):
            for name, part in dataclasses.asdict(value).items():
                put(f"config.{name}", "+".join(part) if isinstance(part, (list, tuple)) else part)
        elif isinstance(value, list) and field.endswith("_ci95") and len(value) == 2:
            put(f"{field[:-5]}_ci_low", value[0])
            put(f"{field[:-5]}_ci_high", value[1])
        elif isinstance(value, dict):
            for index, entry in value.items():
                suffix = _suffix(field, str(index))
                if isinstance(entry, dict):  # a paired ratio: {"ratio", "ci95", "n"}
                    put(f"{field}.{suffix}", entry.get("ratio"))
                    ci = entry.get("ci95") or [None, None]
                    put(f"{field}_ci_low.{suffix}", ci[0])
                    put(f"{field}_ci_high.{suffix}", ci[1])
                    put(f"{field}_n.{suffix}", entry.get("n"))
                else:
                    put(f"{field}.{suffix}", entry)
        else:
            put(field, value)
    return metrics, params


def _fingerprint_tags(fingerprint: dict[str, Any]) -> dict[str, str]:
    return {f"fingerprint.{_key(k)}": (",".join(v) if isinstance(v, list) else str(v))[:5000]
            for k, v in fingerprint.items()}


def _run_tags(run: dict[str, Any], path: Path, key: str) -> dict[str, str]:
    fingerprint = run["machine_info"].get("edgebench", {})
    stamp = run.get("edgebench", {})
    commit = run.get("commit_info") or {}
    tags = {KIND: SUITE_RUN, RUN_KEY: key, TESTBED: str(fingerprint.get("machine_id", "unknown")),
            RUN_NAME: f"{fingerprint.get('machine_id', 'unknown')} {run.get('datetime', '')[:19]}",
            "edgebench.datetime": str(run.get("datetime", "")), "edgebench.source_file": path.name,
            "edgebench.schema": str(stamp.get("schema")),
            "edgebench.commit": str(commit.get("id", "")), "edgebench.commit_dirty": str(commit.get("dirty", "")),
            "edgebench.command": str(stamp.get("command", ""))[:5000],
            **{f"edgebench.options.{_key(k)}": str(v)[:5000] for k, v in stamp.items()
               if k not in ("schema", "command", "run_id", "failures")},
            "edgebench.failures": str(len(stamp.get("failures", []))),
            **_fingerprint_tags(fingerprint)}
    return tags


def _millis(run: dict[str, Any]) -> int:
    """The run's own time (pytest-benchmark's ``datetime``), so history orders by measurement."""
    try:
        return int(datetime.fromisoformat(str(run.get("datetime"))).timestamp() * 1000)
    except ValueError:
        return int(time.time() * 1000)


def _log(mlflow_client: Any, run_id: str, when: int, metrics: dict[str, float] | None = None,
         params: dict[str, str] | None = None, tags: dict[str, str] | None = None) -> None:
    from mlflow.entities import Metric, Param, RunTag

    items = ([Metric(k, v, when, 0) for k, v in (metrics or {}).items()],
             [Param(k, v[:6000]) for k, v in (params or {}).items()],
             [RunTag(k, v) for k, v in (tags or {}).items()])
    longest = max(len(x) for x in items)
    for start in range(0, longest, BATCH):
        mlflow_client.log_batch(run_id, metrics=items[0][start:start + BATCH], params=items[1][start:start + BATCH],
                                tags=items[2][start:start + BATCH])


def find(mlflow_client: Any, experiment: str, key: str) -> list[Any]:
    """Parent runs recorded under run key ``key`` (any status)."""
    return mlflow_client.search_runs([experiment], filter_string=f"tags.`{RUN_KEY}` = '{key}' and tags.`{KIND}` = '{SUITE_RUN}'")


def _delete(mlflow_client: Any, experiment: str, parent_id: str) -> None:
    for child in mlflow_client.search_runs([experiment], filter_string=f"tags.`{PARENT}` = '{parent_id}'"):
        mlflow_client.delete_run(child.info.run_id)
    mlflow_client.delete_run(parent_id)


def finished_or_cleared(earlier: list[Any], delete: Callable[[str], None]) -> Any | None:
    """The FINISHED run among ``earlier`` (the write is already done: writes are idempotent), else None
    once the unfinished ones are deleted (a write that died half-way: invisible to readers, redone)."""
    done = [r for r in earlier if r.info.status == "FINISHED"]
    if done:
        return done[0]
    for stale in earlier:
        delete(stale.info.run_id)
    return None


def mark_failed(mlflow_client: Any | None, run_id: str | None) -> None:
    """Best effort: a write that failed is marked FAILED; with the store down it stays RUNNING, which
    readers ignore as well, and is redone next time."""
    if mlflow_client is None or run_id is None:
        return
    try:
        mlflow_client.set_terminated(run_id, "FAILED")
    except Exception:  # noqa: BLE001 -- the store is down: nothing more to do
        pass


def publish(path: Path, results_uri: str, with_report: bool = True) -> Published:
    """Publish the saved run at ``path`` to the store at ``results_uri``.

    Raises:
        HarnessError: the file is not a readable run of a schema this harness reads, or
            the store failed (one line naming the store, credentials redacted); a failed
            publish leaves no finished record behind.
    """
    started = time.perf_counter()
    path = Path(path)
    run = storage.load_run(path)
    key = run_key(run)
    mlflow_client, parent_id = None, None  # both stay None when the store cannot be reached at all
    try:
        mlflow_client = store_uri.client(results_uri)
        experiment = store_uri.experiment_id(mlflow_client, results_uri, create=True)
        done = finished_or_cleared(find(mlflow_client, experiment, key),
                                   lambda run_id: _delete(mlflow_client, experiment, run_id))
        if done:
            return Published(path, key, done.info.run_id, False, 0, time.perf_counter() - started)
        rows = collect(storage.results(run)).rows
        when = _millis(run)
        parent_id = mlflow_client.create_run(experiment, start_time=when, tags=_run_tags(run, path, key)).info.run_id
        testbed = str(run["machine_info"].get("edgebench", {}).get("machine_id", "unknown"))
        for row in rows:
            metrics, params = flatten(row)
            tags = {KIND: CELL, RUN_KEY: key, TESTBED: testbed, PARENT: parent_id,
                    RUN_NAME: "/".join(str(row[k]) for k in CELL_KEYS), **{k: str(row[k]) for k in CELL_KEYS}}
            child = mlflow_client.create_run(experiment, start_time=when, tags=tags).info.run_id
            _log(mlflow_client, child, when, metrics, params)
            mlflow_client.set_terminated(child, "FINISHED", end_time=when)
        _log_artifacts(mlflow_client, parent_id, path, with_report)
        mlflow_client.set_terminated(parent_id, "FINISHED", end_time=when)
    except Exception as exc:  # the store's own errors (MlflowException, connection, database) as one line
        mark_failed(mlflow_client, parent_id)
        reason = str(exc) if isinstance(exc, HarnessError) else store_uri.unreachable(exc, results_uri)
        raise HarnessError(f"{reason}; the run is saved at {path}: publish it later with "
                           f"'python -m harness publish {path} --results-uri URI'") from None
    return Published(path, key, parent_id, True, len(rows), time.perf_counter() - started)


def _log_artifacts(mlflow_client: Any, run_id: str, path: Path, with_report: bool) -> None:
    """The saved JSON and, unless ``with_report`` is off, the rendered report folder."""
    with tempfile.TemporaryDirectory(prefix="edgebench-publish-") as tmp:
        folder = Path(tmp) / "report"
        folder.mkdir()
        shutil.copy2(path, folder / "run.json")
        if with_report:
            from harness.report.tables import write_report

            write_report(path, folder)
        mlflow_client.log_artifacts(run_id, str(folder))
