"""One-line validators for config dataclasses' ``__post_init__``: each raises
``error`` (ValueError, or the caller's subclass of it) naming ``owner.field``,
the value given and what it must be."""
from __future__ import annotations

import math
from typing import Any


def is_number(v: Any) -> bool:
    """A finite int or float (bool is not a number here)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fraction(owner: str, field: str, value: Any, meaning: str, error: type[ValueError] = ValueError) -> None:
    """``value`` must be a number in [0, 1) (1 would remove everything)."""
    if not (is_number(value) and 0 <= value < 1):
        raise error(f"{owner}.{field} = {value!r} is outside [0, 1): pass the {meaning} as a fraction, e.g. 0.5")


def integer(owner: str, field: str, value: Any, minimum: int, error: type[ValueError] = ValueError) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise error(f"{owner}.{field} = {value!r}: must be an integer >= {minimum}")


def positive(owner: str, field: str, value: Any, below: float = math.inf,
             error: type[ValueError] = ValueError) -> None:
    if not (is_number(value) and 0 < value < below):
        raise error(f"{owner}.{field} = {value!r}: must be a number in (0, {below})")


def boolean(owner: str, field: str, value: Any, error: type[ValueError] = ValueError) -> None:
    if not isinstance(value, bool):
        raise error(f"{owner}.{field} = {value!r}: must be true or false")
