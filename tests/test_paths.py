"""Output paths from the command line and from files cannot escape the project's output folders."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.errors import HarnessError
from harness.core.paths import ROOT, safe_name, safe_output_path
from harness.gate import baselines


@pytest.fixture(autouse=True)
def _narrow_temp_root(monkeypatch, tmp_path):
    """The temp dir is an allowed output root; pin it to this test's folder so that
    "outside" stays outside wherever the project is cloned (CI may clone under /tmp)."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def test_dotdot_and_symlink_escapes_are_refused(tmp_path):
    roots = [tmp_path / "out"]
    (tmp_path / "out").mkdir()
    assert safe_output_path("out/a/b", "--out", base=tmp_path, roots=roots) == tmp_path / "out" / "a" / "b"
    assert safe_output_path("out/x/../y", "--out", base=tmp_path, roots=roots) == tmp_path / "out" / "y"
    for bad in ("out/../../etc", "../out", "/etc/passwd", "out/a/../../..", "a\x00b", ""):
        with pytest.raises(HarnessError, match="outside the output folders|not a usable path"):
            safe_output_path(bad, "--out", base=tmp_path, roots=roots)
    (tmp_path / "out" / "link").symlink_to(tmp_path.parent)  # a symlink inside pointing outside
    with pytest.raises(HarnessError, match="outside the output folders"):
        safe_output_path("out/link/x", "--out", base=tmp_path, roots=roots)


def test_default_roots_are_the_project_the_cache_and_temp(monkeypatch, tmp_path):
    monkeypatch.delenv("EDGEBENCH_OUTPUT_DIRS", raising=False)
    assert safe_output_path(ROOT / "reports" / "x", "--out") == ROOT / "reports" / "x"
    assert safe_output_path(tmp_path / "r", "--out") == tmp_path / "r"
    with pytest.raises(HarnessError, match="EDGEBENCH_OUTPUT_DIRS"):
        safe_output_path(ROOT.parent / "elsewhere", "--out")
    monkeypatch.setenv("EDGEBENCH_OUTPUT_DIRS", str(ROOT.parent))
    assert safe_output_path(ROOT.parent / "elsewhere", "--out") == ROOT.parent / "elsewhere"


def test_report_out_escaping_the_project_is_a_usage_error_and_writes_nothing(capsys):
    target = ROOT.parent / "edgebench-escape-test"
    code = main(["report", str(ROOT / "reports" / "reference" / "run.json"), "--out", "../edgebench-escape-test"])
    assert code == 2 and not target.exists()
    assert "outside the output folders" in capsys.readouterr().err


def test_bless_refuses_a_machine_id_that_would_leave_baselines(tmp_path):
    run = json.loads((ROOT / "reports" / "reference" / "run.json").read_text())
    run["machine_info"]["edgebench"]["machine_id"] = "../../../pwned"
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run))
    with pytest.raises(HarnessError, match="not a plain file name"):
        baselines.bless(path, root=tmp_path / "baselines")
    assert not (tmp_path / "baselines").exists() and not (tmp_path.parent.parent / "pwned").exists()
    with pytest.raises(HarnessError):
        safe_name("a/b", "machine id")
    assert safe_name("0123abcd", "machine id") == "0123abcd"


class _Config:
    def __init__(self, **options):
        self.options = options
        self.invocation_params = type("P", (), {"dir": ROOT})

    def getoption(self, name, default=None):
        return self.options.get(name, default)


def test_benchmark_output_options_must_stay_in_the_output_folders(monkeypatch):
    from harness.results.faults import check_output_options

    monkeypatch.delenv("EDGEBENCH_OUTPUT_DIRS", raising=False)
    check_output_options(_Config(benchmark_storage="file://./.benchmarks", benchmark_json=ROOT / "run.json"))
    check_output_options(_Config(benchmark_storage="elasticsearch+https://host/index/doc"))  # not a path
    for bad in ({"benchmark_storage": "file://../../edgebench-escape"}, {"benchmark_storage": "../x"},
                {"benchmark_json": Path("/etc/edgebench.json")}):
        with pytest.raises(pytest.UsageError, match="outside the output folders"):
            check_output_options(_Config(**bad))


def test_suite_refuses_a_benchmark_json_outside_the_project(suite_log):
    proc = subprocess.run([sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider",
                           "--profiles", "tiny-random", "--collect-only", "--benchmark-json=/etc/edgebench.json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "EDGEBENCH_OUTPUT_DIRS": ""})
    assert proc.returncode == 4, suite_log(proc)
    assert "outside the output folders" in proc.stdout + proc.stderr
