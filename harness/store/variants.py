"""Built variants in the results store: build once, measure anywhere.

A device that built a variant (a cache entry ``<profile>/<variant>-<key>`` of
:mod:`harness.backends.variants`, FP32 baselines included) pushes it as one MLflow run
tagged with the entry name and the weights' sha256, its files as the run's artifacts.  A
device with neither the time to fine-tune nor to compress pulls it (the suite's
``--variants-from URI``): the entry name is computed from *this* device's code and data,
so only a variant built from the same baseline recipe, compressor code and torch can
match; the download is checked against the weights' sha256 recorded at push time and its
``variant.json`` against the recipe before it enters the cache, through the one
cache-or-build (:func:`harness.core.cache.get_or_build`), so a bad download leaves nothing.

Pulled entries hold ``pulled.json`` (store, MLflow run, the testbed that built it): the
suite's rows record where each measured variant came from.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import compressors
from harness.backends import variants
from harness.core import atomic, cache
from harness.core.errors import HarnessError
from harness.store import uri as store_uri
from harness.store.publish import KIND, RUN_NAME, TESTBED, finished_or_cleared, mark_failed

VARIANT = "variant"  # the KIND of a pushed variant's run (suite runs are "suite-run")
ENTRY, WEIGHTS_SHA256 = "edgebench.entry", "edgebench.weights_sha256"
ARTIFACTS = "variant"  # artifact folder of the run
PULLED = "pulled.json"


@dataclasses.dataclass(frozen=True)
class Pushed:
    """One variant in the store: its cache entry name, MLflow run id, whether this call wrote it."""

    entry: str
    mlflow_run_id: str
    created: bool
    size_mb: float
    seconds: float


def entry_of(folder: Path, verify: bool = True) -> str:
    """``<profile>/<folder name>``: the cache entry name of a variant folder, checked against this code.

    Raises:
        HarnessError: the folder is not a readable variant (whose weights match their sha256, when
            ``verify``), or its key is not the one this code computes (built by other code or from
            another baseline).
    """
    info = variants.read_info(folder, verify=verify)
    try:
        name = variants.entry_name(info.profile, info.source_key, info.variant)
    except compressors.CompressionError as exc:
        raise HarnessError(f"{folder} holds variant {info.variant!r}, which this code cannot build ({exc})") from None
    if Path(name).name != Path(folder).name:
        raise HarnessError(f"{folder} was built by other code (this code keys {info.profile}/{info.variant} "
                           f"as {Path(name).name}): rebuild it with this code before pushing it")
    return name


def _find(mlflow_client: Any, experiment: str, entry: str) -> list[Any]:
    return mlflow_client.search_runs([experiment], filter_string=f"tags.`{KIND}` = '{VARIANT}' and "
                                                                 f"tags.`{ENTRY}` = '{entry}'")


def _store_error(exc: BaseException, results_uri: str, then: str) -> HarnessError:
    if isinstance(exc, HarnessError):
        return exc
    return HarnessError(f"{store_uri.unreachable(exc, results_uri)}; {then}")


def push(folder: Path, results_uri: str, testbed: str) -> Pushed:
    """Push the variant folder ``folder`` (a variants cache entry) to the store; idempotent.

    ``testbed`` is the machine id recorded as its builder.  The run is FINISHED only once
    every file is stored, so a pull never sees half a variant; a push that died is redone.

    Raises:
        HarnessError: the folder is not a current, intact variant (:func:`entry_of`), or the
            store failed (one line, credentials redacted).
    """
    started = time.perf_counter()
    folder = Path(folder)
    entry = entry_of(folder)
    info = variants.read_info(folder, verify=False)  # verified by entry_of
    mlflow_client, run_id = None, None  # both stay None when the store cannot be reached at all
    try:
        mlflow_client = store_uri.client(results_uri)
        experiment = store_uri.experiment_id(mlflow_client, results_uri, create=True)
        done = finished_or_cleared(_find(mlflow_client, experiment, entry), mlflow_client.delete_run)
        if done:
            return Pushed(entry, done.info.run_id, False, info.size_mb, time.perf_counter() - started)
        tags = {KIND: VARIANT, ENTRY: entry, WEIGHTS_SHA256: info.weights_sha256, TESTBED: testbed,
                RUN_NAME: f"variant {entry}", "profile": info.profile, "variant": info.variant,
                "edgebench.source_key": info.source_key, "edgebench.code_version": info.code_version}
        run_id = mlflow_client.create_run(experiment, tags=tags).info.run_id
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.name != PULLED:  # provenance is the pulling device's, not the variant's
                mlflow_client.log_artifact(run_id, str(path), ARTIFACTS)
        mlflow_client.set_terminated(run_id, "FINISHED")
    except Exception as exc:  # noqa: BLE001 -- the store's own errors, as one line
        mark_failed(mlflow_client, run_id)
        raise _store_error(exc, results_uri, "push again when the store is up") from None
    return Pushed(entry, run_id, True, info.size_mb, time.perf_counter() - started)


def verify(folder: Path, profile: str, variant: str, source_key: str, weights_sha256: str) -> variants.VariantInfo:
    """Check a downloaded variant before it is used: weights vs ``variant.json`` and vs the sha256
    recorded at push time, and the recipe (profile, variant, baseline source key, compressor code).

    Raises:
        HarnessError: one line naming the mismatch and the fix.
    """
    info = variants.read_info(folder)  # the weights' sha256 against variant.json
    if info.weights_sha256 != weights_sha256:
        raise HarnessError(f"the pulled {profile}/{variant} has weights sha256 {info.weights_sha256[:12]}… but "
                           f"{weights_sha256[:12]}… was pushed: the store's copy is corrupt; push it again")
    expected = {"profile": profile, "variant": variant, "source_key": source_key,
                "code_version": compressors.get(variant).code_version()}
    got = {k: getattr(info, k) for k in expected}
    wrong = [f"{k} {got[k]!r} (here: {expected[k]!r})" for k in expected if got[k] != expected[k]]
    if wrong:
        raise HarnessError(f"the pulled {profile}/{variant} does not match this device's recipe: "
                           f"{'; '.join(wrong)}; push one built by this code from the same baseline")
    return info


def provenance(folder: Path) -> dict[str, Any] | None:
    """Where a cached variant came from: ``pulled.json``'s contents, or None (built on this device)."""
    path = Path(folder) / PULLED
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def pull(results_uri: str, profile: str, variant: str, source_key: str, root: Path | None = None,
         log: Callable[[str], None] = print, rebuild: bool = True) -> Path:
    """The folder of variant ``variant`` of ``profile``: the local cache entry, else pulled from the store.

    Nothing is built here: a variant the store lacks is an error naming how to push it.

    Raises:
        HarnessError: not in the store, a download that fails :func:`verify`, or the store failed;
            in every case no cache entry is left.
    """
    name = variants.entry_name(profile, source_key, variant)

    def build(tmp: Path) -> variants.VariantInfo:
        try:
            mlflow_client = store_uri.client(results_uri)
            experiment = store_uri.experiment_id(mlflow_client, results_uri, create=False)
            found = [r for r in (_find(mlflow_client, experiment, name) if experiment else [])
                     if r.info.status == "FINISHED"]
            if not found:
                raise HarnessError(
                    f"{profile}/{variant} ({Path(name).name}) is not in the results store "
                    f"{store_uri.redact(results_uri)}: push it from a device that built it with "
                    f"'python -m harness push --profiles {profile} --variants {variant} --results-uri URI'")
            run = found[0]
            with tempfile.TemporaryDirectory(prefix="edgebench-pull-") as download:
                got = Path(mlflow_client.download_artifacts(run.info.run_id, ARTIFACTS, download))
                for path in got.iterdir():
                    shutil.copy2(path, tmp / path.name)
        except Exception as exc:  # noqa: BLE001 -- the store's own errors, as one line
            raise _store_error(exc, results_uri, "check --variants-from") from None
        info = verify(tmp, profile, variant, source_key, run.data.tags.get(WEIGHTS_SHA256, ""))
        atomic.write_json(tmp / PULLED, {"results_uri": store_uri.redact(results_uri),
                                         "mlflow_run_id": run.info.run_id,
                                         "built_on": run.data.tags.get(TESTBED, "unknown")})
        log(f"pulled {profile}/{variant} ({info.size_mb:.1f} MB, built on {run.data.tags.get(TESTBED)}) "
            f"from {store_uri.redact(results_uri)}")
        return info

    return cache.get_or_build(
        root or variants.area(), name, load=variants.read_info, build=build, corrupt=(HarnessError,),
        corrupt_note=lambda folder, reason: f"pulling {profile}/{variant} again: {reason}",
        log=log, rebuild=rebuild).folder
