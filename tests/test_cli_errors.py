"""Every CLI entry point answers bad input with exit 2 and one line ``error: …``
naming the problem and the fix -- no traceback -- through the real
``python -m harness`` entry point (so the layout's imports are exercised too)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MISSING = "error: saved run {path} does not exist; list runs with 'ls .benchmarks/*/'"
FOREIGN = ("error: {path} is not a pytest-benchmark run (no 'benchmarks'/'machine_info'); "
           "pass a file saved by --benchmark-autosave")


def _harness(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def files(tmp_path):
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"a": 1}))
    bad_budgets = tmp_path / "bad.toml"
    bad_budgets.write_text("schema = 1\n[[budget]]\nnope = 3\n")
    return {"missing": str(tmp_path / "missing.json"), "foreign": str(foreign), "budgets": str(bad_budgets)}


CASES = [
    (("report", "{missing}"), MISSING.format(path="{missing}")),
    (("report", "{foreign}"), FOREIGN.format(path="{foreign}")),
    (("check", "{foreign}"), FOREIGN.format(path="{foreign}")),
    (("bless", "{missing}"), MISSING.format(path="{missing}")),
    (("compare", "{missing}"), MISSING.format(path="{missing}")),
    (("diff", "{foreign}", "{missing}"), FOREIGN.format(path="{foreign}")),
    (("check", "reports/reference/run.json", "--budgets", "{budgets}"),
     "error: bad.toml line 2 (budget #1): unknown key(s) nope"),
    (("report", "reports/reference/run.json", "--out", "/etc/edgebench-out"),
     "error: --out /etc/edgebench-out resolves to /etc/edgebench-out, outside the output folders"),
]


IDS = ["report-missing", "report-foreign", "check-foreign", "bless-missing", "compare-missing", "diff-foreign",
       "check-bad-budgets", "report-out-outside"]


@pytest.mark.parametrize("argv,expected", CASES, ids=IDS)
def test_bad_input_is_one_error_line_and_exit_2(argv, expected, files):
    proc = _harness(*(a.format(**files) for a in argv))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(expected.format(**files)), lines[0]
    assert not (ROOT / "etc").exists()


def test_bad_option_is_argparse_usage_and_exit_2():
    proc = _harness("list", "everything")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "python -m harness list: error: argument what: invalid choice: 'everything'")


def test_unknown_profile_in_run_is_a_usage_error_before_anything_runs():
    proc = _harness("run", "--profiles", "no-such-profile")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout
    assert "unknown profile 'no-such-profile'; known profiles: minilm-l6" in proc.stderr + proc.stdout
