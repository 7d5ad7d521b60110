"""Where the results store is, and an MLflow client for it.

The store is MLflow tracking: ``sqlite:///PATH.db`` (the embedded default), a SQLAlchemy
database URI (``postgresql://`` ...) or ``http(s)://HOST:PORT`` of an ``mlflow server``.
Credentials come only from the environment (MLflow's ``MLFLOW_TRACKING_USERNAME`` /
``MLFLOW_TRACKING_PASSWORD``, or the database URI a team keeps in ``$EDGEBENCH_RESULTS_URI``);
:func:`redact` keeps any password out of what this package prints or records.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.paths import benchmarks_dir

ENV = "EDGEBENCH_RESULTS_URI"
OFF = "off"
EXPERIMENT = "edgebench"
DB_NAME = "results.db"
# URI schemes MLflow tracking serves; anything else is a typo, not a store.
SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg", "mysql", "mysql+pymysql", "mssql", "http", "https")
# A store that is down must not hold a suite run for MLflow's default ~2 min of retries.
# And a published run costs the user one line of ours, not MLflow's "View run ... at" per nested run.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
                 "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
                 # A download's own bar would break into the suite's progress; the harness logs the pull.
                 "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


SQLITE = "sqlite:///"


def default_uri(storage: Path | None = None) -> str:
    """The embedded store: ``sqlite:///<storage>/results.db`` (storage: ``.benchmarks/``)."""
    return f"{SQLITE}{(storage or benchmarks_dir()).resolve() / DB_NAME}"


def resolve(uri: str | None, storage: Path | None = None) -> str | None:
    """The store to use: ``uri``, else ``$EDGEBENCH_RESULTS_URI``, else :func:`default_uri`.

    Returns None when publishing is turned off (``off``).

    Raises:
        HarnessError: an unknown scheme (naming the ones the store takes).
    """
    chosen = (uri or os.environ.get(ENV) or "").strip() or default_uri(storage)
    if chosen.lower() == OFF:
        return None
    scheme = chosen.partition("://")[0].lower() if "://" in chosen else ""
    if scheme not in SCHEMES:
        raise HarnessError(
            f"results store {redact(chosen)!r} has an unknown scheme {scheme or '(none)'!r}: use sqlite:///PATH.db "
            f"(embedded), postgresql://HOST/DB, http(s)://HOST:PORT of an mlflow server, or '{OFF}'")
    return chosen


def redact(uri: str) -> str:
    """``uri`` with any ``user:password@`` reduced to ``user:***@``."""
    return re.sub(r"(://[^/:@]*):[^/@]*@", r"\1:***@", uri)


def sqlite_path(uri: str) -> Path | None:
    """The database file of an embedded store (``sqlite:///PATH``); None for any other store."""
    return Path(uri[len(SQLITE):]) if uri.startswith(SQLITE) else None


def artifact_root(uri: str) -> str | None:
    """Where an embedded store keeps artifacts (beside its database file); None: the server decides."""
    db = sqlite_path(uri)
    return None if db is None else (db.parent / "mlartifacts").resolve().as_uri()


def client(uri: str) -> Any:
    """An ``mlflow.tracking.MlflowClient`` for ``uri``, quiet, with short HTTP retries.

    Raises:
        HarnessError: mlflow is not installed, or an embedded store's folder cannot be made.
    """
    import logging
    import warnings

    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    # SQLAlchemy's deprecation of a loader MLflow's store uses: MLflow's to fix, not the user's to read.
    warnings.filterwarnings("ignore", message=".*noload.*loader strategy is deprecated")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise HarnessError("mlflow is not installed: run 'make install' (pip install -e .)") from None
    # After the import, which sets mlflow's own level: no "Creating tables..." and no per-retry warnings;
    # what fails reaches the user as one HarnessError line.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    db = sqlite_path(uri)
    if db is not None:
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HarnessError(f"cannot create the results store's folder for {uri} ({exc.strerror}); "
                               f"pass --results-uri with a writable path") from None
    elif not uri.startswith(("http://", "https://")):
        _probe_database(uri)
    return MlflowClient(tracking_uri=uri)


def _probe_database(uri: str) -> None:
    """Connect once: MLflow's own engine set-up retries a refused database for ~100 s, hard-coded."""
    import sqlalchemy

    connect_args = {"connect_timeout": 10} if uri.startswith("postgresql") else {}
    try:
        engine = sqlalchemy.create_engine(uri, connect_args=connect_args)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # refused, bad credentials, no such database, missing driver
        raise HarnessError(f"{unreachable(exc, uri)}; check the server, the database name and the credentials "
                           f"in ${ENV} / --results-uri") from None


def experiment_id(mlflow_client: Any, uri: str, create: bool) -> str | None:
    """The id of the ``edgebench`` experiment (created when ``create``; None if absent)."""
    found = mlflow_client.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return found.experiment_id
    if not create:
        return None
    return mlflow_client.create_experiment(EXPERIMENT, artifact_location=artifact_root(uri))


def unreachable(exc: BaseException, uri: str) -> str:
    """One line saying why the store at ``uri`` could not be used (no credentials, no traceback)."""
    text = " ".join(str(exc).split())
    text = redact(text)[:240]
    return f"results store {redact(uri)} failed ({exc.__class__.__name__}: {text})"
