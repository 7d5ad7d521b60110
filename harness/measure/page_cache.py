"""Evict a variant's files from the kernel's page cache before a cold-cache sample (issue 17).

A fresh process that loads weights the parent just hashed reads them from memory; a
deployment that starts after a reboot, or after other work pushed the files out, reads
them from the disk.  :func:`evict` asks the kernel to drop each file's cached pages
(``posix_fadvise(POSIX_FADV_DONTNEED)``, no root needed; clean pages only, so each file is
``fsync``'d first) and checks with ``mincore(2)`` on a mapping of the file which share of its
pages is still resident, so a sample is labelled cold only when the eviction took effect.

On a virtual machine the host may still hold the file in its own cache: a guest-cold read
then costs a trip through the hypervisor rather than the physical disk.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
from pathlib import Path
from typing import Any

# A cold sample whose files kept more of their pages than this is labelled "incomplete".
MAX_RESIDENT_AFTER = 0.05


def _libc() -> Any | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                              ctypes.c_long]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        return libc
    except (OSError, AttributeError):  # no libc with mincore (not Linux/BSD/macOS)
        return None


def resident_pages(path: Path) -> tuple[int, int] | None:
    """``(resident, total)`` pages of ``path`` in the page cache (``mincore``), or None where
    the platform cannot tell."""
    libc = _libc()
    size = path.stat().st_size
    if libc is None or size == 0:
        return None if libc is None else (0, 0)
    total = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            return None
        try:
            vec = (ctypes.c_ubyte * total)()
            if libc.mincore(addr, size, vec) != 0:
                return None
            return sum(b & 1 for b in vec), total
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)


def _fraction(paths: list[Path]) -> float | None:
    counts = [resident_pages(p) for p in paths]
    if any(c is None for c in counts):
        return None
    total = sum(c[1] for c in counts)
    return sum(c[0] for c in counts) / total if total else 0.0


def unavailable() -> str | None:
    """Why no cold-cache sample can be taken on this platform, or None."""
    if not hasattr(os, "posix_fadvise"):
        return "os.posix_fadvise is unavailable on this platform (not Linux): no cold page cache samples"
    return None


def evict(directory: Path) -> dict[str, Any]:
    """Drop every file under ``directory`` from the page cache.

    Returns ``page_cache`` (``"cold"``; ``"cold (incomplete)"`` when more than
    ``MAX_RESIDENT_AFTER`` of the pages stayed; ``"cold (unverified)"`` without ``mincore``),
    ``resident_before`` / ``resident_after`` (fractions of the files' pages, None when unknown)
    and ``evicted_mb`` (the files' size, MB).

    Raises:
        OSError: a file cannot be opened.
        NotImplementedError: :func:`unavailable` gives a reason (check it first).
    """
    if why := unavailable():
        raise NotImplementedError(why)
    paths = sorted(p for p in Path(directory).rglob("*") if p.is_file())
    before = _fraction(paths)
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)  # DONTNEED drops clean pages only
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    after = _fraction(paths)
    label = ("cold (unverified)" if after is None
             else "cold (incomplete)" if after > MAX_RESIDENT_AFTER else "cold")
    return {"page_cache": label, "resident_before": before, "resident_after": after,
            "evicted_mb": sum(p.stat().st_size for p in paths) / 1e6}
