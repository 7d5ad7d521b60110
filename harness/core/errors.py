"""User-facing errors.

A :class:`HarnessError` is a problem the user can fix (a missing package, a bad
checksum, an unknown variant).  Its message is one line naming the problem and
the fix; the command line prints it without a traceback and exits with
status 2.
"""


class HarnessError(Exception):
    """A problem with the user's input or environment, with a one-line fix."""
