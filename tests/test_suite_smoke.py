"""End to end: the benchmark suite on the tiny profile, then the report on its JSON."""
import json
import subprocess
import sys

from harness.core.paths import ROOT
from harness.session import TimingOptions


def test_suite_runs_saves_every_metric_and_reports(tmp_path, suite_log):
    out = tmp_path / "run.json"
    # Structural budgets only: a tiny random model's timing ratios sit near their bounds, so on a noisy
    # machine they may be inconclusive; timing verdicts are tested in tests/test_gate.py / test_interleave.py.
    budgets = tmp_path / "budgets.toml"
    budgets.write_text('schema = 1\n[[budget]]\nvariant = "*"\nmetric = "params"\nmax = 1e12\n'
                       'why = "smoke: every case has a budget item that is judged"\n')
    cmd = [sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider",
           "--profiles", "tiny-random", "--bench-seconds", "0.2", "--min-rounds", "3", "--blocks", "9",
           "--block-seconds", "0.05", "--timing-cap-s", "30",
           "--cold-start-samples", "2", "--memory-samples", "1", "--threads", "1",
           "--variants", "fp32,int8-dynamic", "--budgets", str(budgets), f"--benchmark-json={out}"]
    # Both backends (the default --backends) double the work; on a shared 2-core
    # machine this took >10 min, so the timeout only guards against a hang.
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, suite_log(proc)
    run = json.loads(out.read_text())
    assert run["edgebench"]["schema"] == 1
    assert run["machine_info"]["edgebench"]["threads"] == 1
    metrics = {(b["extra_info"]["metric"], b["extra_info"].get("variant"), b["extra_info"].get("backend"))
               for b in run["benchmarks"]}
    for variant in ("fp32", "int8-dynamic"):
        for metric in ("static", "latency", "throughput", "cold_start", "memory"):
            for backend in ("torch", "onnxruntime"):  # the default --backends
                assert (metric, variant, backend) in metrics
    assert ("gemm_peak", None, None) in metrics  # the machine's GEMM peak, measured in the same run
    latency = [b for b in run["benchmarks"] if b["extra_info"]["metric"] == "latency"]
    assert {b["extra_info"]["seq_len"] for b in latency} == {16, 128}
    for b in latency:
        assert b["stats"]["rounds"] >= 3 and b["extra_info"]["p50_ms"] > 0
        assert len(b["stats"]["data"]) == b["stats"]["rounds"]  # raw samples saved
        info = b["extra_info"]
        # Interleaved timing: one block per repetition, every cell of the shape in each shuffled order.
        # No timing budget here, so every shape is an information campaign: its minimum is
        # info_min_repetitions (not --blocks), then it stops once stable or at its cap.
        assert info["timing_design"] == "interleaved" and info["repetitions"] >= TimingOptions.info_min_repetitions
        assert info["campaign_stable"] or info["campaign_elapsed_s"] >= info["campaign_cap_s"]
        assert len(info["block_p50_ms"]) == info["repetitions"] == len(info["campaign_order"])
        assert all(len(order) == 5 for order in info["campaign_order"])  # 2 variants x 2 backends + the A/A
        assert ("aa_block_p50_ms" in info) == (info["variant"] == "fp32" and info["backend"] == "torch")

    report_dir = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "harness", "report", str(out), "--out", str(report_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((report_dir / "summary.json").read_text())
    rows = {r["variant"]: r for r in summary["rows"] if r["backend"] == "torch"}
    assert rows["int8-dynamic"]["size_mb"] < rows["fp32"]["size_mb"]
    ort = {r["variant"]: r for r in summary["rows"] if r["backend"] == "onnxruntime"}
    assert ort["int8-dynamic"]["size_mb"] < ort["fp32"]["size_mb"] and ort["fp32"]["p50_ms"]["128"] > 0
    assert summary["backend_sessions"]["onnxruntime"]["providers"] == ["CPUExecutionProvider"]
    assert rows["fp32"]["accuracy"] is None  # random weights: never a number
    assert "n/a (random weights)" in (report_dir / "report.md").read_text()
    assert rows["fp32"]["peak_fraction"] > 0 and (report_dir / "latency-vs-seq.png").is_file()
    # Paired in-run ratios with CIs, for torch and onnxruntime cells alike, and the A/A control.
    for row in (rows["int8-dynamic"], ort["fp32"], ort["int8-dynamic"]):
        for shape in (row["p50_ratio"]["16"], row["p50_ratio"]["128"], row["throughput_ratio"]["4"]):
            assert shape["ci95"][0] <= shape["ratio"] <= shape["ci95"][1] and shape["n"] >= 3
    assert set(rows["fp32"]["aa_ratio"]) == {"latency@16", "latency@128", "throughput@1", "throughput@4"}
    assert rows["fp32"]["aa_passed"] in (True, False)


def test_unknown_profile_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider",
                           "--profiles", "gpt-17"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4
    assert "unknown profile 'gpt-17'; known profiles:" in proc.stdout + proc.stderr
