"""The one cache-or-build (harness.core.cache): hit, miss, corruption, failures, concurrency, no litter."""
from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from harness.core import cache
from harness.core.errors import HarnessError


def _load(folder: Path) -> dict:
    try:
        return json.loads((folder / "value.json").read_text())
    except (OSError, ValueError) as exc:
        raise cache.Corrupt(f"value.json unreadable ({type(exc).__name__})") from None


def _builder(calls: list, value: dict | None = None):
    def build(tmp: Path) -> dict:
        calls.append(tmp)
        v = value if value is not None else {"n": len(calls)}
        (tmp / "value.json").write_text(json.dumps(v))
        return v
    return build


def _get(area: Path, calls: list, logs: list, name: str = "thing-0123abcd", **kw) -> cache.Entry:
    return cache.get_or_build(area, name, load=_load, build=_builder(calls), log=logs.append,
                              corrupt_note=lambda folder, reason: f"rebuilding {folder.name}: {reason}", **kw)


def _all(area: Path) -> list[str]:
    """Every path under ``area`` (relative), files and folders, hidden ones included."""
    return sorted(str(p.relative_to(area)) for p in area.rglob("*"))


def test_miss_builds_then_hit_loads(tmp_path):
    calls, logs = [], []
    first = _get(tmp_path, calls, logs)
    assert first.folder == tmp_path / "thing-0123abcd" and not first.cached and first.value == {"n": 1}
    again = _get(tmp_path, calls, logs)
    assert again.folder == first.folder and again.cached and again.value == {"n": 1}
    assert len(calls) == 1 and logs == []
    # the build wrote into a temporary folder beside the entry, not into the entry
    assert calls[0].parent == tmp_path and calls[0].name.startswith(".thing-0123abcd.")
    assert _all(tmp_path) == ["thing-0123abcd", "thing-0123abcd/value.json"]  # no lock file, no lock folder


def test_nested_names_and_their_lock_path(tmp_path):
    calls, logs = [], []
    entry = _get(tmp_path, calls, logs, name="profile/v-1")
    assert entry.folder == tmp_path / "profile" / "v-1"
    assert cache.lock_path(tmp_path, "profile/v-1") == tmp_path / ".locks" / "profile" / "v-1.lock"
    assert _all(tmp_path) == ["profile", "profile/v-1", "profile/v-1/value.json"]
    for bad in ("", "/abs", "../up", "a/../b", ".locks/x"):
        with pytest.raises(ValueError, match="relative path inside its area"):
            cache.entry_path(tmp_path, bad)


def test_a_corrupt_entry_is_rebuilt_with_one_line(tmp_path):
    calls, logs = [], []
    folder = _get(tmp_path, calls, logs).folder
    (folder / "value.json").write_text("{not json")
    entry = _get(tmp_path, calls, logs)
    assert not entry.cached and entry.value == {"n": 2} and len(calls) == 2
    assert logs == ["rebuilding thing-0123abcd: value.json unreadable (JSONDecodeError)"]
    assert _get(tmp_path, calls, logs).cached


def test_rebuild_false_refuses_a_corrupt_entry_and_leaves_it(tmp_path):
    calls, logs = [], []
    folder = _get(tmp_path, calls, logs).folder
    (folder / "value.json").write_text("{not json")
    with pytest.raises(HarnessError, match=r"^value.json unreadable \(JSONDecodeError\) \(not rebuilt: --no-rebuild\)$"):
        _get(tmp_path, calls, logs, rebuild=False)
    assert len(calls) == 1 and logs == [] and (folder / "value.json").read_text() == "{not json"


def test_other_exceptions_of_load_propagate(tmp_path):
    calls, logs = [], []
    _get(tmp_path, calls, logs)

    def broken(folder):
        raise KeyError("a bug, not a corrupt entry")

    with pytest.raises(KeyError):
        cache.get_or_build(tmp_path, "thing-0123abcd", load=broken, build=_builder(calls), log=logs.append,
                           corrupt_note=lambda f, r: r)
    assert len(calls) == 1 and (tmp_path / "thing-0123abcd" / "value.json").is_file()


def test_a_failing_build_leaves_nothing(tmp_path):
    area = tmp_path / "area"

    def build(tmp: Path):
        (tmp / "half.bin").write_bytes(b"x" * 100)
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        cache.get_or_build(area, "profile/v-1", load=_load, build=build, log=print, corrupt_note=lambda f, r: r)
    assert not area.exists()  # no entry, no temporary folder, no lock, not even the folders it created
    area.mkdir()
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_build(area, "v-1", load=_load, build=lambda tmp: (_ for _ in ()).throw(KeyboardInterrupt()),
                           log=print, corrupt_note=lambda f, r: r)
    assert _all(area) == []


def test_a_failed_rebuild_keeps_the_old_entry(tmp_path):
    calls, logs = [], []
    folder = _get(tmp_path, calls, logs).folder
    (folder / "value.json").write_text("{not json")

    def build(tmp: Path):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        cache.get_or_build(tmp_path, folder.name, load=_load, build=build, log=logs.append, corrupt_note=lambda f, r: r)
    assert _all(tmp_path) == ["thing-0123abcd", "thing-0123abcd/value.json"]


def test_leftovers_of_a_killed_build_are_swept(tmp_path):
    # what atomic_dir leaves when its process is SIGKILLed mid-build or mid-replace
    (tmp_path / ".thing-0123abcd.k3j_x9a2.tmp").mkdir()
    (tmp_path / ".thing-0123abcd.k3j_x9a2.tmp" / "half.bin").write_bytes(b"x")
    (tmp_path / ".thing-0123abcd.old").mkdir()
    (tmp_path / ".thing-0123abcd-other.abcdefgh.tmp").mkdir()  # another entry's: not ours to remove
    calls, logs = [], []
    _get(tmp_path, calls, logs)
    assert _all(tmp_path) == [".thing-0123abcd-other.abcdefgh.tmp", "thing-0123abcd", "thing-0123abcd/value.json"]


def test_the_lock_is_exclusive_and_removed(tmp_path):
    with cache.entry_lock(tmp_path, "a-1"):
        assert cache.lock_path(tmp_path, "a-1").is_file()
        with cache.entry_lock(tmp_path, "b-2"):  # another key does not wait
            pass
    assert _all(tmp_path) == []


# ---------------------------------------------------------------------------
# two processes, one key


def _contender(area: str, name: str, log: str, barrier) -> None:
    def build(tmp: Path) -> dict:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.5)  # hold the build open so the other process arrives mid-build
        (tmp / "value.json").write_text(json.dumps({"pid": os.getpid()}))
        return {"pid": os.getpid()}

    barrier.wait()  # both enter get_or_build together: without the lock both would build
    entry = cache.get_or_build(Path(area), name, load=_load, build=build, log=lambda m: None,
                               corrupt_note=lambda f, r: r)
    assert entry.value["pid"] == int(Path(log).read_text().split()[0])


def _in_processes(n: int, area: Path, name: str, log: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(n)
    procs = [ctx.Process(target=_contender, args=(str(area), name, str(log), barrier)) for _ in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * n


def test_two_processes_build_one_key_once(tmp_path):
    log = tmp_path / "builds.log"
    _in_processes(2, tmp_path / "area", "profile/v-1", log)
    assert len(log.read_text().split()) == 1  # the second waited on the lock, then loaded the first's entry
    assert _all(tmp_path / "area") == ["profile", "profile/v-1", "profile/v-1/value.json"]  # no lock left


def _lock_loop(area: str, marker: str, barrier) -> None:
    barrier.wait()
    for _ in range(40):
        with cache.entry_lock(Path(area), "v-1"):
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # FileExistsError: two holders at once
            time.sleep(0.002)
            os.close(fd)
            os.unlink(marker)


def test_the_lock_excludes_although_each_holder_unlinks_its_file(tmp_path):
    # A waiter queued on a lock file its holder then unlinked must not get in beside a newcomer.
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_lock_loop, args=(str(tmp_path / "area"), str(tmp_path / "inside"), barrier))
             for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert not (tmp_path / "area").exists() or _all(tmp_path / "area") == []


def test_variants_and_their_onnx_exports_leave_no_lock_files(tmp_path, tiny_model):
    from harness.backends import onnx_export, variants

    def torch_dir(name):
        return variants.get_or_build("t", name, "src", lambda: tiny_model, root=tmp_path / "variants", log=print)

    onnx_export.get_or_export("t", "int8-dynamic", torch_dir, root=tmp_path / "onnx")
    assert [p.name for p in (tmp_path / "variants").iterdir()] == ["t"]
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == ["t"]
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith((".lock", ".tmp")) or p.name == ".locks"]
