"""Blessed runs kept in the results store: the stored-baseline gate's history for teams.

``bless`` applies the file-based rules (:func:`harness.gate.baselines.check_blessable`: no
partial, failed or A/A-failed run), publishes the run if the store lacks it, and tags its
parent run ``edgebench.blessed``.  ``load_blessed`` returns the newest
:data:`harness.gate.baselines.KEEP` blessed runs of one testbed -- their saved JSON,
downloaded from the store's artifacts -- for :func:`harness.gate.compare.compare_runs`.
The file-based baselines under ``baselines/`` keep working beside it.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.gate.baselines import KEEP, check_blessable, machine_id_of
from harness.results import storage
from harness.store import publish
from harness.store import uri as store_uri
from harness.store.publish import KIND, SUITE_RUN, TESTBED

BLESSED = "edgebench.blessed"


def bless(run_path: Path, results_uri: str) -> str:
    """Tag the run at ``run_path`` blessed in the store (publishing it first); its MLflow run id.

    Raises:
        HarnessError: the run may not be a baseline, or the store failed.
    """
    run = storage.load_run(run_path)
    machine_id_of(run)
    check_blessable(run, run_path)
    done = publish.publish(run_path, results_uri)
    try:
        store_uri.client(results_uri).set_tag(done.mlflow_run_id, BLESSED, "true")
    except HarnessError:
        raise
    except Exception as exc:
        raise HarnessError(f"{store_uri.unreachable(exc, results_uri)}; bless again when the store is up") from None
    return done.mlflow_run_id


def load_blessed(results_uri: str, machine_id: str) -> list[dict[str, Any]]:
    """The newest ``KEEP`` runs blessed in the store for testbed ``machine_id``, oldest first.

    Raises:
        HarnessError: none is blessed (naming how to bless one), or the store failed.
    """
    try:
        mlflow_client = store_uri.client(results_uri)
        experiment = store_uri.experiment_id(mlflow_client, results_uri, create=False)
        parents = mlflow_client.search_runs(
            [experiment], max_results=KEEP, order_by=["attributes.start_time DESC"],
            filter_string=(f"tags.`{KIND}` = '{SUITE_RUN}' and tags.`{TESTBED}` = '{machine_id}' and "
                           f"tags.`{BLESSED}` = 'true' and attributes.status = 'FINISHED'")) if experiment else []
        runs = []
        with tempfile.TemporaryDirectory(prefix="edgebench-blessed-") as tmp:
            for n, parent in enumerate(reversed(parents)):
                folder = Path(tmp) / str(n)
                folder.mkdir()
                runs.append(storage.load_run(Path(mlflow_client.download_artifacts(parent.info.run_id, "run.json",
                                                                                    str(folder)))))
    except HarnessError:
        raise
    except Exception as exc:
        raise HarnessError(f"{store_uri.unreachable(exc, results_uri)}; check --results-uri / ${store_uri.ENV}") from None
    if not runs:
        raise HarnessError(f"no run blessed in the results store {store_uri.redact(results_uri)} for testbed "
                           f"{machine_id}: bless one with 'python -m harness bless RUN --results-uri URI' "
                           f"(3 runs measure the noise)")
    return runs
