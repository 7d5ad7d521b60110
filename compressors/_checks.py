"""Validators shared by config ``__post_init__`` methods: one-line CompressionErrors."""
from __future__ import annotations

import math
from typing import Any

from .base import CompressionError


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fraction(owner: str, field: str, value: Any, meaning: str) -> None:
    """``value`` must be a number in [0, 1) (1 would remove everything)."""
    if not (_number(value) and 0 <= value < 1):
        raise CompressionError(
            f"{owner}.{field} = {value!r} is outside [0, 1): pass the {meaning} as a fraction, e.g. 0.5")


def integer(owner: str, field: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CompressionError(f"{owner}.{field} = {value!r}: must be an integer >= {minimum}")


def positive(owner: str, field: str, value: Any, below: float = math.inf) -> None:
    if not (_number(value) and 0 < value < below):
        raise CompressionError(f"{owner}.{field} = {value!r}: must be a number in (0, {below})")


def boolean(owner: str, field: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise CompressionError(f"{owner}.{field} = {value!r}: must be true or false")


def parse_fraction(variant: str, arg: str, field: str, meaning: str) -> dict[str, float]:
    """Config fields from the ``@`` argument of ``variant`` (e.g. ``"0.5"``)."""
    try:
        return {field: float(arg)}
    except ValueError:
        raise CompressionError(
            f"'{variant}@{arg}': the '@' argument is the {meaning}, a number in [0, 1) such as "
            f"'{variant}@0.5'") from None
