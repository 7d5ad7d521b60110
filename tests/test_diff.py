"""``python -m harness diff``: synthetic saved runs with raw samples (no model needed)."""
import json
import random

import pytest

from harness.cli import main
from harness.report import diff

FP = {"cpu_model": "Test CPU", "physical_cores": 2, "logical_cpus": 2, "isa_flags": ["avx2"], "torch": "2.x",
      "threads": 2, "quant_engine": "x86", "machine_id": "abc"}


def _samples(median_ms, n=40, seed=0):
    rng = random.Random(seed)
    return [median_ms / 1e3 * (1 + rng.uniform(-0.02, 0.02)) for _ in range(n)]


def _run(path, p50_ms=10.0, size=90.0, accuracy=0.85, fingerprint=FP, seed=0, variants=("fp32", "int8-dynamic")):
    benches = []
    for i, v in enumerate(variants):
        scale = 1.0 if v == "fp32" else 0.5
        data = _samples(p50_ms * scale, seed=seed + i)
        benches += [
            {"name": f"test_static[{v}]", "stats": {"median": 1.0},
             "extra_info": {"metric": "static", "profile": "minilm-l6", "variant": v, "size_mb": size * scale,
                            "params": 100, "nonzero_params": 100, "flops": 2e9}},
            {"name": f"test_latency[{v}-seq128]", "stats": {"median": sorted(data)[20], "data": data},
             "extra_info": {"metric": "latency", "profile": "minilm-l6", "variant": v, "seq_len": 128,
                            "p50_ms": sorted(data)[20] * 1e3, "p90_ms": max(data) * 1e3, "p99_ms": max(data) * 1e3,
                            "cv": 0.01, "p50_block_cv": 0.005}},
            {"name": f"test_quality[{v}]", "stats": {"median": 1.0},
             "extra_info": {"metric": "quality", "profile": "minilm-l6", "variant": v, "eval_set": "imdb-test",
                            "accuracy": accuracy, "accuracy_ci95": [accuracy - .02, accuracy + .02],
                            "eval_loss": 0.3, "agreement": None, "kl_fp32": None}},
        ]
    path.write_text(json.dumps({"machine_info": {"edgebench": fingerprint}, "benchmarks": benches,
                                "datetime": "2026-01-01T00:00:00", "edgebench": {"schema": 1}}))
    return path


def _by(changes):
    return {(c.variant, c.metric): c for c in changes}


def test_same_numbers_no_significant_change(tmp_path):
    changes, notes = diff.diff_runs(_run(tmp_path / "a.json"), _run(tmp_path / "b.json", seed=7))
    assert not notes and not any(c.significant for c in changes)
    c = _by(changes)[("fp32", "p50_ms@128")]
    assert c.unit == "ms" and c.ratio == pytest.approx(1.0, abs=0.03) and c.p_value is not None


def test_slowdown_and_size_change_are_marked(tmp_path, capsys):
    a, b = _run(tmp_path / "a.json"), _run(tmp_path / "b.json", p50_ms=13.0, size=99.0, seed=3)
    by = _by(diff.diff_runs(a, b)[0])
    assert by[("fp32", "p50_ms@128")].verdict == "slower" and by[("fp32", "p50_ms@128")].p_value < 0.01
    assert by[("fp32", "size_mb")].verdict == "worse" and by[("fp32", "size_mb")].ratio == pytest.approx(1.1)
    assert by[("fp32", "accuracy")].verdict == "unchanged"
    assert main(["diff", str(a), str(b)]) == 1  # a significant regression
    out = capsys.readouterr().out
    assert "▲ slower *" in out and "| Model" in out and "B/A" in out
    assert main(["diff", str(b), str(a)]) == 0  # the other way round it is an improvement
    assert "▼ faster *" in capsys.readouterr().out


def test_small_slowdown_within_the_noise_floor_is_not_marked(tmp_path):
    a, b = _run(tmp_path / "a.json"), _run(tmp_path / "b.json", p50_ms=10.3, seed=3)  # 3% < 5% floor
    assert _by(diff.diff_runs(a, b)[0])[("fp32", "p50_ms@128")].verdict == "unchanged"


def test_other_machine_timings_not_comparable(tmp_path, capsys):
    other = dict(FP, cpu_model="Other CPU", machine_id="xyz")
    a, b = _run(tmp_path / "a.json"), _run(tmp_path / "b.json", p50_ms=20.0, fingerprint=other)
    changes, notes = diff.diff_runs(a, b)
    assert len(notes) == 1 and "timings not comparable" in notes[0] and "cpu_model" in notes[0]
    assert _by(changes)[("fp32", "p50_ms@128")].verdict == "not comparable"
    assert _by(changes)[("fp32", "size_mb")].verdict == "unchanged"  # sizes still compare
    assert main(["diff", str(a), str(b)]) == 0
    assert "- **Note:** timings not comparable" in capsys.readouterr().out


def test_gemm_peaks_are_shown_for_context(tmp_path):
    a, b = _run(tmp_path / "a.json"), _run(tmp_path / "b.json")
    for path, gflops in ((a, 100.0), (b, 80.0)):
        run = json.loads(path.read_text())
        run["benchmarks"].append({"name": "test_gemm_peak", "stats": {"median": 1.0}, "extra_info": {
            "metric": "gemm_peak", "fp32_gops": gflops, "int8_gops": 4 * gflops}})
        path.write_text(json.dumps(run))
    peak = _by(diff.diff_runs(a, b)[0])[("gemm peak", "fp32_gops")]
    assert (peak.old, peak.new, peak.ratio, peak.verdict) == (100.0, 80.0, 0.8, "")


def test_added_and_removed_variants_are_notes_not_rows(tmp_path):
    a = _run(tmp_path / "a.json", variants=("fp32",))
    b = _run(tmp_path / "b.json", variants=("fp32", "int8-dynamic"))
    changes, notes = diff.diff_runs(a, b)
    assert notes == ["only in B (not diffed): int8-dynamic/minilm-l6"]
    assert {c.variant for c in changes} == {"fp32"}


def test_csv_and_json_output(tmp_path, capsys):
    a, b = _run(tmp_path / "a.json"), _run(tmp_path / "b.json", seed=1)
    assert main(["diff", str(a), str(b), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["notes"] == [] and {c["metric"] for c in doc["changes"]} >= {"p50_ms@128", "size_mb", "accuracy"}
    out = tmp_path / "d.csv"
    assert main(["diff", str(a), str(b), "--format", "csv", "--out", str(out)]) == 0
    assert out.read_text().splitlines()[0] == "Model,Variant,Metric,Unit,A (old),B (new),B/A,p (one-sided),Verdict"


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_text(json.dumps({"benchmarks": [{}], "machine_info": {}})), "not produced by this suite"),
    (lambda p: p.write_text(json.dumps({"benchmarks": [{"name": "x", "extra_info": {"metric": "gemm_peak"}}],
                                        "machine_info": {}, "edgebench": {"schema": 1}})), "has no variants"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, make, message):
    bad = tmp_path / "bad.json"
    make(bad)
    assert main(["diff", str(_run(tmp_path / "a.json")), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
