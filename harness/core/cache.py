"""The one cache-or-build: ``key -> folder``; reuse it if it checks out, else build it once.

Every expensive product the project keeps (fine-tuned checkpoints, pipeline
stages, built variants, ONNX artifacts) is a folder named by a hash of what it
depends on, inside a *cache area* (a folder such as ``cache_dir()/variants``).
:func:`get_or_build` is the only code path that fills one:

* **hit** -- the folder exists and the caller's ``load`` accepts it: its value
  is returned and nothing is written;
* **corrupt** -- ``load`` raises :class:`Corrupt` (or one of the caller's
  ``corrupt`` types): one line goes to ``log`` and the entry is rebuilt, or with
  ``rebuild=False`` (the suite's ``--no-rebuild``) a :class:`HarnessError` names
  it and the entry is left alone for inspection;
* **miss** -- the caller's ``build`` writes into a temporary folder beside the
  entry, which :func:`harness.core.atomic.atomic_dir` renames into place only
  when complete, so an interrupted build never leaves a half entry;
* **concurrent builders** of one key (two runs sharing a cache) are serialised
  by an ``flock`` (:func:`entry_lock`): the second waits, then finds a hit;
* **failed or interrupted build** -- the temporary folder is removed, and so
  are the (empty) folders this call created; a build killed outright (SIGKILL)
  leaves a temporary folder that the next builder of the key sweeps away.

Lock files live in one lock folder per area, ``<area>/.locks/<entry>.lock``,
never beside the entries, and are removed after use (see :func:`entry_lock`
for why that is safe), so an idle cache holds no lock files at all.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Generic, TypeVar

from harness.core.atomic import atomic_dir
from harness.core.errors import HarnessError

LOCKS_DIR = ".locks"
T = TypeVar("T")


class Corrupt(Exception):
    """A cache entry that exists but must not be used; ``str()`` is the one-line reason."""


@dataclasses.dataclass(frozen=True)
class Entry(Generic[T]):
    """What :func:`get_or_build` returns: the entry's folder, the value ``load``
    or ``build`` gave for it, and whether it came from the cache (``cached``)
    or was built by this call."""

    folder: Path
    value: T
    cached: bool


def _parts(name: str) -> tuple[str, ...]:
    """The path components of an entry name (``"x-<hash>"`` or ``"<profile>/x-<hash>"``).

    Raises ValueError for an absolute name, an empty one or one with ``.``/``..``
    components: an entry must stay inside its area.
    """
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or any(p in (".", "..") for p in parts) \
            or parts[0] == LOCKS_DIR:
        raise ValueError(f"cache entry name {name!r} must be a relative path inside its area")
    return parts


def entry_path(area: Path, name: str) -> Path:
    """The folder of entry ``name`` in ``area``: ``<area>/<name>``."""
    return Path(area).joinpath(*_parts(name))


def lock_path(area: Path, name: str) -> Path:
    """The lock file of entry ``name``: ``<area>/.locks/<name>.lock`` (not beside the entry)."""
    *dirs, last = _parts(name)
    return Path(area, LOCKS_DIR, *dirs, f"{last}.lock")


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _remove_empty(folders: list[Path]) -> None:
    """rmdir each folder that is empty, deepest first (others are left: someone uses them)."""
    for folder in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:
            pass


@contextlib.contextmanager
def entry_lock(area: Path, name: str) -> Iterator[None]:
    """Exclusive lock on entry ``name`` of ``area`` across processes (``flock`` on
    :func:`lock_path`); released on exit, and by the kernel if the process dies.

    The holder unlinks the lock file before releasing it, and removes the lock
    folders if they are then empty.  That is safe because a process that
    obtains the ``flock`` checks the path still names the file it locked: a
    waiter that was queued on a file since unlinked retries on the new one, so
    only the holder of the file currently at the path is ever inside.  (A plain
    unlink without that check would let a waiter and a newcomer in together.)
    Not re-entrant: taking the same entry's lock again in one process blocks.
    """
    import fcntl

    path = lock_path(area, name)
    locks_root = Path(area) / LOCKS_DIR
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except (FileNotFoundError, FileExistsError):
            # Another holder removed the empty lock folder meanwhile (pathlib's mkdir raises
            # FileExistsError when a folder it saw appear is gone again before its check).
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # locked a file the previous holder had unlinked: lock the current one
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # still holding the lock (see the docstring)
        os.close(fd)
        _remove_empty([p for p in (path.parent, *path.parent.parents) if p.is_relative_to(locks_root)])


def _sweep_leftovers(folder: Path) -> None:
    """Remove what a builder of ``folder`` killed outright left beside it: atomic_dir's
    ``.<name>.<random>.tmp`` and ``.<name>.old``.  Called under the entry's lock,
    so no live builder owns them."""
    if not folder.parent.is_dir():
        return
    pattern = re.compile(re.escape(f".{folder.name}.") + r"[A-Za-z0-9_]{8}\.tmp")
    for p in folder.parent.iterdir():
        if p.name == f".{folder.name}.old" or pattern.fullmatch(p.name):
            shutil.rmtree(p, ignore_errors=True)


def get_or_build(
    area: Path,
    name: str,
    *,
    load: Callable[[Path], T],
    build: Callable[[Path], T],
    corrupt_note: Callable[[Path, str], str],
    log: Callable[[str], None],
    rebuild: bool = True,
    corrupt: tuple[type[BaseException], ...] = (Corrupt,),
) -> Entry[T]:
    """The entry ``name`` of cache area ``area``, built by ``build`` only if it is
    missing or corrupt.  Holds :func:`entry_lock` throughout, so concurrent
    callers build each entry once.

    Args:
        area: the cache area's folder (e.g. ``cache_dir()/"variants"``).
        name: the entry's folder name inside ``area``, usually ``<prefix>-<hash>``;
            may hold ``/`` (``<profile>/<variant>-<hash>``).
        load: ``load(folder)`` checks an existing entry (checksums, loading) and
            returns its value; raises one of ``corrupt`` (default :class:`Corrupt`)
            with a one-line reason if the entry must not be used.  Other
            exceptions propagate.
        build: ``build(tmp)`` writes the entry's files into the empty temporary
            folder ``tmp`` and returns its value; renamed to the entry's folder
            when it returns.
        corrupt_note: ``corrupt_note(folder, reason)`` is the line logged before
            rebuilding a corrupt entry.
        log: where that line goes.
        rebuild: False refuses a corrupt entry instead of rebuilding it.

    Raises:
        HarnessError: a corrupt entry with ``rebuild=False``:
            ``"<reason> (not rebuilt: --no-rebuild)"``.
        Whatever ``build`` raises; then no entry, temporary folder, lock file or
        folder created by this call remains.
    """
    area = Path(area)
    folder = entry_path(area, name)
    created = [p for p in (folder.parent, *folder.parent.parents) if not p.exists()]
    inside = [p for p in created if p != area and p.is_relative_to(area)]
    try:
        with entry_lock(area, name):
            try:
                return _cached_or_built(folder, load, build, corrupt_note, log, rebuild, corrupt)
            except BaseException:
                # Still under the lock, so no builder of this key is between its mkdir and mkdtemp.
                if not folder.exists():
                    _remove_empty(inside)
                raise
    except BaseException:
        # The area (and above) can be empty now only if nobody holds a lock in it (lock files live in it).
        if not folder.exists():
            _remove_empty([p for p in created if p not in inside])
        raise


def _cached_or_built(folder: Path, load: Callable[[Path], T], build: Callable[[Path], T],
                     corrupt_note: Callable[[Path, str], str], log: Callable[[str], None], rebuild: bool,
                     corrupt: tuple[type[BaseException], ...]) -> Entry[T]:
    _sweep_leftovers(folder)
    if folder.exists():
        try:
            return Entry(folder, load(folder), cached=True)
        except corrupt as exc:
            reason = str(exc)
            if not rebuild:
                raise HarnessError(f"{reason} (not rebuilt: --no-rebuild)") from None
            log(corrupt_note(folder, reason))
    with atomic_dir(folder) as tmp:
        value = build(tmp)
    return Entry(folder, value, cached=False)
