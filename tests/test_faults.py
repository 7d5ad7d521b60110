"""Fault injection on the real suite (tiny-random profile, in a subprocess): crashes and interrupts."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.backends import variants
from harness.core import atomic
from harness.core.paths import ROOT, cache_dir
from harness.results import storage

SUITE = [sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider", "-p", "fault_plugin",
         "--profiles", "tiny-random", "--threads", "1", "--cold-start-samples", "1", "--memory-samples", "1",
         "--bench-seconds", "0.1", "--min-rounds", "3", "--blocks", "3", "--block-seconds", "0.05",
         "--timing-cap-s", "1", "--processes", "1", "--backends", "torch"]  # faults are backend-agnostic


def _env(**extra):
    # Without CI/BUILD_NUMBER: under CI pytest prints untruncated summary lines, which
    # would repeat the failure text that test_crashing_... counts.
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "BUILD_NUMBER")}
    return {**env, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)]), **extra}


def _tree(*folders):
    """sha256 of every file under ``folders`` (names starting with '.' included)."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for f in folders if f.exists() for p in sorted(f.rglob("*")) if p.is_file()}


def test_crashing_variants_are_recorded_and_every_other_variant_is_measured(tmp_path):
    store = tmp_path / "storage"
    cmd = SUITE + ["--variants", "fp32,crash-worker,oom-worker,fail-build", "-k", "static or cold_start",
                   "--benchmark-autosave", f"--benchmark-storage=file://{store}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=_env(), timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]  # failures make the run fail ...
    run_path = storage.newest_run(store)
    run = storage.load_run(run_path)  # ... but its saved JSON is valid and loads
    measured = {(r["variant"], r["metric"]) for r in storage.results(run)}
    assert measured == {("fp32", "static"), ("fp32", "cold_start"), ("crash-worker", "static"),
                        ("oom-worker", "static")}
    failures = {(f["variant"], f["test"]): f["reason"] for f in run["edgebench"]["failures"]}
    assert set(failures) == {("crash-worker", "test_cold_start"), ("oom-worker", "test_cold_start"),
                             ("fail-build", "test_static"), ("fail-build", "test_cold_start")}
    assert "signal 6 SIGABRT" in failures[("crash-worker", "test_cold_start")]
    assert "signal 9 SIGKILL, e.g. the kernel's out-of-memory killer" in failures[("oom-worker", "test_cold_start")]
    for test in ("test_static", "test_cold_start"):
        assert "deliberate build failure" in failures[("fail-build", test)]
    assert out.count("RuntimeError: deliberate build failure") <= 2  # built once, the memo fails the rest
    assert not list(store.rglob(".*.tmp"))

    proc = subprocess.run([sys.executable, "-m", "harness", "report", str(run_path), "--out", str(tmp_path / "r")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "r" / "report.md").read_text()
    section = md[md.index("## Failures"):]
    assert "4 measurement(s) failed" in section and "SIGABRT" in section and "deliberate build failure" in section
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert len(summary["failures"]) == 4


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A private cache (assets linked read-only from the real one), storage holding an earlier run.

    Shared by the two interrupt tests in order: the second starts from the cache the first left.
    """
    tmp_path = tmp_path_factory.mktemp("sandbox")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "assets").symlink_to(cache_dir() / "assets")
    store = tmp_path / "storage"
    earlier = store / "machine" / "0001_earlier.json"
    atomic.write_bytes(earlier, (ROOT / "reports" / "reference" / "run.json").read_bytes())
    return cache, store


def _invariants(before, cache, store, proc_out):
    after = _tree(cache / "variants", store, ROOT / "baselines")
    changed = {p for p in before if after.get(p) != before[p]}
    assert not changed, f"{changed} changed or vanished\n{proc_out[-2000:]}"
    strays = [p for p in (cache / "variants").rglob(".*")] + list(store.rglob(".*"))
    assert not strays, strays
    for folder in (p for p in (cache / "variants").glob("*/*") if p.is_dir()):
        variants.read_info(folder)  # every published cache entry verifies
    for path in store.rglob("*.json"):  # every saved run is complete, valid JSON
        json.loads(path.read_text())
    return after


def test_sigterm_while_a_variant_is_being_saved_leaves_cache_runs_and_baselines_intact(sandbox):
    cache, store = sandbox
    before = _tree(cache / "variants", store, ROOT / "baselines")
    cmd = SUITE + ["--variants", "fp32,int8-dynamic", "-k", "static", "--benchmark-autosave",
                   f"--benchmark-storage=file://{store}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=_env(EDGEBENCH_CACHE=str(cache), EDGEBENCH_TEST_SIGTERM_DURING_SAVE="int8-dynamic"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "KeyboardInterrupt" in out, out[-3000:]
    _invariants(before, cache, store, out)
    built = [p.name for p in (cache / "variants" / "tiny-random").iterdir() if p.is_dir()]
    assert len(built) == 1 and built[0].startswith("fp32-")  # int8 was never published half-written
    partial = [p for p in store.rglob("*.json") if p.name != "0001_earlier.json"]
    for p in partial:  # pytest-benchmark saves what was measured; we mark it partial
        assert json.loads(p.read_text())["edgebench"]["interrupted"] == "SIGTERM"


def test_sigint_inside_a_timing_loop_keeps_earlier_state_and_saves_a_valid_partial_run(sandbox):
    cache, store = sandbox
    env = _env(EDGEBENCH_CACHE=str(cache))
    assert list((cache / "variants").rglob("variant.json"))  # the SIGTERM test left a cached fp32
    before = _tree(cache / "variants", store, ROOT / "baselines")
    cmd = SUITE + ["--variants", "fp32,interrupt-timing", "--seq-lengths", "16", "-k", "static or latency",
                   "--benchmark-autosave", f"--benchmark-storage=file://{store}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "KeyboardInterrupt" in out, out[-3000:]
    assert "INTERNALERROR" not in out and "Traceback" not in out, out[-3000:]
    _invariants(before, cache, store, out)
    new = [p for p in store.rglob("*.json") if p not in map(Path, before)]
    assert len(new) == 1  # the partial run: what finished before the campaign, stamped, loadable
    run = storage.load_run(new[0])
    assert run["edgebench"]["interrupted"] == "SIGINT"
    # The campaign in flight times both variants' latency together: neither is half-recorded.
    assert [(r["variant"], r["metric"]) for r in storage.results(run)] == [("fp32", "static"),
                                                                           ("interrupt-timing", "static")]
