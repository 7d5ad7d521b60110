"""The run journal: durable per-benchmark records, a torn last line, and --resume replaying them."""
import json
import subprocess
import sys

import pytest

from harness.core.errors import HarnessError
from harness.core.paths import ROOT
from harness.results import journal


def test_a_torn_last_line_loses_only_that_record(tmp_path):
    path = tmp_path / "j.jsonl"
    journal.append(path, {"nodeid": "a", "samples_s": [0.1]})
    journal.append(path, {"nodeid": "b", "samples_s": [0.2]})
    journal.append(path, {"nodeid": "a", "samples_s": [0.3]})  # a re-measured node: the later record wins
    path.write_text(path.read_text() + '{"nodeid": "c", "samp')  # killed while writing
    records = journal.load(path)
    assert set(records) == {"a", "b"} and records["a"]["samples_s"] == [0.3]


def test_a_damaged_journal_or_a_missing_one_is_one_clear_error(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('not json\n{"nodeid": "b"}\n')
    with pytest.raises(HarnessError, match="line 1 is not JSON"):
        journal.load(path)
    with pytest.raises(HarnessError, match="does not exist"):
        journal.load(tmp_path / "nope.jsonl")


def _suite(tmp_path, out, *extra):
    cmd = [sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider", "--profiles", "tiny-random",
           "--variants", "fp32,int8-dynamic", "--backends", "torch", "--threads", "1", "--seq-lengths", "16",
           "--blocks", "3", "--block-seconds", "0.05", "--timing-cap-s", "1", "--processes", "1",
           f"--benchmark-json={out}", *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_resume_replays_what_the_journal_holds_and_measures_the_rest(tmp_path):
    path = tmp_path / "run.jsonl"
    first = _suite(tmp_path, tmp_path / "first.json", "-k", "static", "--journal", str(path))
    assert first.returncode == 0, first.stdout[-2000:]
    records = journal.load(path)
    assert len(records) == 2 and all(r["extra_info"]["metric"] == "static" for r in records.values())
    second = _suite(tmp_path, tmp_path / "second.json", "-k", "static or latency", "--resume", str(path))
    assert second.returncode == 0, second.stdout[-2000:]
    run = json.loads((tmp_path / "second.json").read_text())
    by_metric = {}
    for b in run["benchmarks"]:
        by_metric.setdefault(b["extra_info"]["metric"], []).append(b)
    assert all(b["extra_info"]["resumed_from"] == str(path) for b in by_metric["static"])
    assert [b["stats"]["data"] for b in by_metric["static"]] == [r["samples_s"] for r in records.values()]
    assert len(by_metric["latency"]) == 2 and not any("resumed_from" in b["extra_info"] for b in by_metric["latency"])
    assert len(journal.load(path)) == 4  # the new measurements were appended to the same journal
