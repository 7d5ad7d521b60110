"""The shared config validators (:mod:`harness.core.checks`) raising CompressionError,
plus the ``@`` argument parser of a variant name."""
from __future__ import annotations

import functools

from harness.core import checks
from harness.core.checks import is_number

from .base import CompressionError

fraction = functools.partial(checks.fraction, error=CompressionError)
integer = functools.partial(checks.integer, error=CompressionError)
positive = functools.partial(checks.positive, error=CompressionError)
boolean = functools.partial(checks.boolean, error=CompressionError)

__all__ = ["boolean", "fraction", "integer", "is_number", "parse_fraction", "positive"]


def parse_fraction(variant: str, arg: str, field: str, meaning: str) -> dict[str, float]:
    """Config fields from the ``@`` argument of ``variant`` (e.g. ``"0.5"``)."""
    try:
        return {field: float(arg)}
    except ValueError:
        raise CompressionError(
            f"'{variant}@{arg}': the '@' argument is the {meaning}, a number in [0, 1) such as "
            f"'{variant}@0.5'") from None
