"""Progress bars (tqdm) for the long steps: asset fetch, fine-tuning, recovery
fine-tuning, fresh-process cold-start / memory rounds.

Quiet -- no bar at all -- when ``CI`` is true (log files need no carriage
returns), when ``--quiet`` was given (:func:`set_quiet`, inherited by child
processes through the environment) or when ``TQDM_DISABLE`` is set (tqdm's own
switch, which :func:`set_quiet` also sets so that a third-party tqdm follows).  Bars go to stderr with an ETA.

On a terminal a bar redraws in place (at most every 0.5 s).  When stderr is
not a terminal (a CI log, ``2> file``) carriage returns do not redraw: every
refresh would pile into one ever-longer log line.  There a bar writes one
plain line every :data:`LOG_INTERVAL_S` seconds instead (plus its first and
last, if the bar is left).
"""
from __future__ import annotations

import os
import sys
from typing import Any, Iterable

_TRUE = ("1", "true", "yes", "on")

LOG_INTERVAL_S = 30.0
"""Seconds between a bar's lines when stderr is not a terminal."""


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
    """A tqdm bar on stderr (rate and ETA shown), disabled when :func:`quiet`.

    Redrawn in place on a terminal; one line per :data:`LOG_INTERVAL_S` otherwise.
    """
    from tqdm.auto import tqdm

    if _is_terminal(sys.stderr):
        stream, timing = sys.stderr, {"mininterval": 0.5}
    else:
        # maxinterval too: tqdm's monitor thread would otherwise force a refresh every 10 s.
        stream, timing = _LineStream(sys.stderr), {"mininterval": LOG_INTERVAL_S, "maxinterval": LOG_INTERVAL_S}
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable or quiet(), file=stream,
                dynamic_ncols=True, **timing, **kwargs)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class _LineStream:
    """A file for tqdm that writes each refresh as its own line.

    tqdm redraws with ``"\r" + status`` (and cursor-up codes for nested bars);
    here the control characters are dropped and the status ends with a newline,
    so a log shows one readable line per refresh.  Bare newlines and blank
    redraws (a ``leave=False`` bar's erase) are dropped.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").replace("\x1b[A", "").strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()
