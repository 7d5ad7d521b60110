"""``python -m harness``: subcommands, help, exit codes, the ``run`` command line, progress quietness."""
import subprocess
import sys

import pytest

from harness.cli import build_parser, main, run_command
from harness.core import progress
from harness.core.paths import ROOT

SUBCOMMANDS = ("run", "report", "diff", "list", "setup", "check", "bless", "compare", "publish", "history", "fleet")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m harness {command}") and "--quiet" in out


def test_top_level_help_lists_subcommands_and_exit_codes(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(c in out for c in SUBCOMMANDS) and "2 a usage error" in out


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["diff", "only-one.json"], ["report", "--bogus"],
                                  ["list", "everything"], ["report", "--", "-x"]])
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err


def test_list_shows_registry_variants_profiles_and_metrics(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for text in ("| fp32 ", "magnitude-global@ARG", "int8-dynamic", "A+B[+C]", "| minilm-l6", "tiny-random",
                 "| p50_ms / p90_ms / p99_ms", "cold_start_ms", "achieved_gflops"):
        assert text in out
    assert main(["list", "profiles"]) == 0
    assert "magnitude-global" not in capsys.readouterr().out


def test_run_builds_the_pytest_command_line():
    args = build_parser().parse_args(["run", "--profiles", "minilm-l6", "--variants", "fp32,int8-dynamic",
                                      "--seq-lengths", "128", "--threads", "1", "--select", "latency", "--gate"])
    cmd = run_command(args)
    assert cmd[:5] == [sys.executable, "-m", "pytest", "suites/", "--benchmark-autosave"]
    joined = " ".join(cmd)
    for part in ("--profiles minilm-l6", "--variants fp32,int8-dynamic", "--seq-lengths 128", "--threads 1",
                 "-k (latency) or gemm_peak", "--gate", "--capture=tee-sys"):
        assert part in joined
    assert "--batch-sizes" not in joined  # unset options keep the suite's defaults
    quiet = run_command(build_parser().parse_args(["run", "--quiet"]))
    assert "-q" in quiet and "--capture=tee-sys" not in quiet


def test_run_passes_arguments_after_double_dash_and_maps_usage_errors(capsys):
    # An unknown profile is the suite's usage error (pytest exit 4): ours is 2, no report written.
    assert main(["run", "--quiet", "--no-report", "--profiles", "gpt-17", "--", "-p", "no:cacheprovider"]) == 2
    assert "-p no:cacheprovider" in capsys.readouterr().err  # the command echoed


def test_module_entry_point_exit_code():
    proc = subprocess.run([sys.executable, "-m", "harness", "report", "missing.json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: saved run missing.json does not exist")


def test_progress_is_quiet_under_ci_and_after_set_quiet(monkeypatch):
    for k in ("CI", "EDGEBENCH_QUIET", "TQDM_DISABLE"):
        monkeypatch.delenv(k, raising=False)
    assert not progress.quiet()
    monkeypatch.setenv("CI", "true")
    assert progress.quiet() and progress.bar(range(3), desc="x").disable
    monkeypatch.delenv("CI")
    progress.set_quiet(True)
    try:
        assert progress.quiet()
        import os

        assert os.environ["TQDM_DISABLE"] == "1"  # children using tqdm directly follow
    finally:
        progress.set_quiet(False)
    assert not progress.quiet()
