"""Progress bars (tqdm) for the long steps: asset fetch, fine-tuning, recovery
fine-tuning, fresh-process cold-start / memory rounds.

Quiet -- no bar at all -- when ``CI`` is true (log files need no carriage
returns), when ``--quiet`` was given (:func:`set_quiet`, inherited by child
processes through the environment) or when ``TQDM_DISABLE`` is set (tqdm's own
switch, which :func:`set_quiet` also sets so that code using tqdm directly,
e.g. ``compressors._train``, follows).  Bars go to stderr with an ETA.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Iterable

_TRUE = ("1", "true", "yes", "on")


def quiet() -> bool:
    """True under CI (``CI=true``), after ``set_quiet(True)``, or with ``TQDM_DISABLE`` set."""
    env = os.environ
    return any(env.get(k, "").strip().lower() in _TRUE for k in ("CI", "EDGEBENCH_QUIET", "TQDM_DISABLE"))


def set_quiet(flag: bool = True) -> None:
    """Silence (or re-enable) bars here and in every child process started afterwards."""
    if flag:
        os.environ["EDGEBENCH_QUIET"] = os.environ["TQDM_DISABLE"] = "1"
    else:
        os.environ.pop("EDGEBENCH_QUIET", None)
        os.environ.pop("TQDM_DISABLE", None)


def bar(iterable: Iterable[Any] | None = None, *, desc: str, total: int | None = None, unit: str = "it",
        disable: bool = False, **kwargs: Any):
    """A tqdm bar on stderr (rate and ETA shown), disabled when :func:`quiet`."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable or quiet(), file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5, **kwargs)
