"""Shared by the tests that run the whole suite on a tiny model in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.core.paths import ROOT

# The suite's timing and sampling options at their smallest, for end-to-end runs of tiny models
# (what they check is that every metric is measured and reported, not how precisely).
TINY_SUITE_FLAGS = ("--bench-seconds", "0.2", "--min-rounds", "3", "--blocks", "5", "--block-seconds", "0.02",
                    "--timing-cap-s", "5", "--timing-info-cap-s", "5", "--cold-start-samples", "1",
                    "--cold-cache-samples", "0", "--memory-samples", "1", "--threads", "1", "--processes", "1")


def run_tiny_suite(tmp_path: Path, config: Path, profile: str, variants: str,
                   backends: str = "torch,onnxruntime") -> tuple[subprocess.CompletedProcess, Path]:
    """The suite on ``profile`` of the project file ``config`` in a subprocess with its own cache under
    ``tmp_path``, every benchmark but the GEMM peaks, one budget every case is judged by; returns the
    finished process and the path of its pytest-benchmark JSON."""
    budgets = tmp_path / "budgets.toml"
    budgets.write_text('schema = 1\n[[budget]]\nvariant = "*"\nmetric = "params"\nmax = 1e12\n'
                       'why = "every case has a budget item that is judged"\n')
    out = tmp_path / "run.json"
    cmd = [sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider", "-rfEs", "--config", str(config),
           "--profiles", profile, "--variants", variants, "--backends", backends, *TINY_SUITE_FLAGS,
           "--budgets", str(budgets), "-k", "not gemm_peak", f"--benchmark-json={out}"]
    env = {**os.environ, "EDGEBENCH_CACHE": str(tmp_path / "cache")}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env), out
