"""User-facing errors.

A :class:`HarnessError` is a problem the user can fix (a missing package, a bad
checksum, an unknown variant).  Its message is one line naming the problem and
the fix; the command line prints it without a traceback and exits with
status 2.
"""


class HarnessError(Exception):
    """A problem with the user's input or environment, with a one-line fix."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of ``exc``'s message (its type name when the message is empty), at most
    ``limit`` characters: what a one-line error quotes from a library's multi-line exception."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:limit]


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message`` (at most ``limit`` characters)."""
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}"[:limit]
