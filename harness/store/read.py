"""What the store holds, as plain records for the history and fleet views.

Only parents marked FINISHED count (a publish in flight or one that died is invisible), and
every record carries its testbed, so the views never mix devices unless asked to.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from harness.core.errors import HarnessError
from harness.store import uri as store_uri
from harness.store.publish import CELL, KIND, PARENT, SUITE_RUN, TESTBED

PAGE = 1000


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (profile, variant, backend) of one published suite run.

    ``datetime``: the run's ISO time; ``metrics``: the row's numbers (ms, samples/s, MB,
    ratios; see :func:`harness.store.publish.flatten`); ``fingerprint``: the testbed's
    recorded machine facts (strings).
    """

    testbed: str
    run_key: str
    datetime: str
    commit: str
    profile: str
    variant: str
    backend: str
    metrics: dict[str, float]
    params: dict[str, str]
    fingerprint: dict[str, str]


def _all(mlflow_client: Any, experiment: str, filter_string: str) -> list[Any]:
    out, token = [], None
    while True:
        page = mlflow_client.search_runs([experiment], filter_string=filter_string, max_results=PAGE, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def cells(results_uri: str, machine: str | None = None) -> list[Cell]:
    """Every published cell (of one testbed when ``machine`` is given), oldest run first.

    Raises:
        HarnessError: the store cannot be read, or holds no published run (naming how to publish one).
    """
    try:
        mlflow_client = store_uri.client(results_uri)
        experiment = store_uri.experiment_id(mlflow_client, results_uri, create=False)
        where = f" and tags.`{TESTBED}` = '{machine}'" if machine else ""
        parents = ({r.info.run_id: r for r in _all(mlflow_client, experiment,
                                                   f"tags.`{KIND}` = '{SUITE_RUN}' and attributes.status = 'FINISHED'" + where)}
                   if experiment else {})
        children = _all(mlflow_client, experiment, f"tags.`{KIND}` = '{CELL}'" + where) if parents else []
    except HarnessError:
        raise
    except Exception as exc:
        raise HarnessError(f"{store_uri.unreachable(exc, results_uri)}; check --results-uri / ${store_uri.ENV}") from None
    if not parents:
        scope = f" for testbed {machine}" if machine else ""
        raise HarnessError(f"the results store {store_uri.redact(results_uri)} holds no published run{scope}: run "
                           f"'make bench' or 'python -m harness publish RUN.json' first")
    out = []
    for child in children:
        parent = parents.get(child.data.tags.get(PARENT))
        if parent is None:
            continue
        tags = parent.data.tags
        out.append(Cell(
            testbed=tags.get(TESTBED, "unknown"), run_key=tags.get("edgebench.run_key", ""),
            datetime=tags.get("edgebench.datetime", ""), commit=tags.get("edgebench.commit", ""),
            profile=child.data.tags.get("profile", ""), variant=child.data.tags.get("variant", ""),
            backend=child.data.tags.get("backend", ""), metrics=dict(child.data.metrics),
            params=dict(child.data.params),
            fingerprint={k[len("fingerprint."):]: v for k, v in tags.items() if k.startswith("fingerprint.")}))
    return sorted(out, key=lambda c: (c.datetime, c.run_key, c.profile, c.variant, c.backend))
