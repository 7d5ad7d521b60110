"""Report and saved-run handling on synthetic runs (no model needed)."""
import json

import pytest

from harness import report, storage
from harness.__main__ import main
from harness.errors import HarnessError


def _bench(metric, profile, variant, median_s=0.01, **extra):
    return {"name": f"test_{metric}[{profile}-{variant}]", "group": None,
            "stats": {"median": median_s, "mean": median_s, "rounds": 5},
            "extra_info": {"metric": metric, "profile": profile, "variant": variant, **extra}}


def _run(tmp_path):
    benches = []
    for variant, size, p50, acc in (("fp32", 90.0, 10.0, 0.86), ("int8-dynamic", 30.0, 4.0, 0.85)):
        benches += [
            _bench("static", "minilm-l6", variant, size_mb=size, params=100, nonzero_params=99, sparsity=0.01,
                   flops=2000, macs_fvcore=1000, quant_engine=None, quantized_linear_fraction=None),
            _bench("latency", "minilm-l6", variant, seq_len=128, p50_ms=p50, p90_ms=p50 * 1.1, p99_ms=p50 * 1.2, cv=0.02),
            _bench("throughput", "minilm-l6", variant, batch_size=32, throughput_sps=320 / p50),
            _bench("cold_start", "minilm-l6", variant, cold_start_ms=50.0, load_ms=30.0, first_forward_ms=20.0),
            _bench("memory", "minilm-l6", variant, peak_rss_mb=500.0, peak_rss_delta_mb=size * 2),
            _bench("quality", "minilm-l6", variant, eval_set="imdb-test", accuracy=acc, accuracy_ci95=[acc - .02, acc + .02],
                   eval_loss=0.35, agreement=None if variant == "fp32" else 0.97, kl_fp32=None if variant == "fp32" else 0.01),
            _bench("static", "distilbert-base", variant, size_mb=size * 3, params=300, nonzero_params=300, sparsity=0.0,
                   flops=6000, macs_fvcore=None, quant_engine=None, quantized_linear_fraction=None),
        ]
    run = {"machine_info": {"edgebench": {"cpu_model": "Test CPU", "threads": 2, "machine_id": "abc"}},
           "benchmarks": benches, "datetime": "2026-01-01T00:00:00", "edgebench": {"schema": 1}}
    path = tmp_path / "0001_run.json"
    path.write_text(json.dumps(run))
    return path


def test_summary_rows_and_markdown(tmp_path):
    path = _run(tmp_path)
    md, js = report.write_report(path, tmp_path / "out")
    doc = json.loads(js.read_text())
    rows = {(r["profile"], r["variant"]): r for r in doc["rows"]}
    assert rows[("minilm-l6", "int8-dynamic")]["p50_ms"] == {"128": 4.0}
    assert rows[("minilm-l6", "int8-dynamic")]["accuracy"] == 0.85
    assert rows[("distilbert-base", "fp32")]["accuracy"] is None
    text = md.read_text()
    assert "n/a (random weights)" in text
    assert "| minilm-l6       | int8-dynamic | 0.33×" in text  # size ratio 30/90
    assert "-1.00 pt" in text
    assert "Test CPU" in text


@pytest.mark.parametrize("content, message", [
    ("not json", "is not JSON"),
    (json.dumps({"foo": 1}), "is not a pytest-benchmark run"),
    (json.dumps({"benchmarks": [], "machine_info": {}}), "not produced by this suite"),
    (json.dumps({"benchmarks": [{}], "machine_info": {}, "edgebench": {"schema": 99}}), "schema 99"),
])
def test_bad_runs_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "run.json"
    path.write_text(content)
    with pytest.raises(HarnessError, match=message):
        storage.load_run(path)


def test_cli_exits_2_and_writes_nothing_on_bad_input(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["report", str(tmp_path / "missing.json"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not out.exists()


def test_cli_report_writes_both_files(tmp_path):
    out = tmp_path / "out"
    assert main(["report", str(_run(tmp_path)), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.md", "summary.json"]


def test_pruned_but_not_faster_flag():
    fp32 = {"p50_ms": {"128": 10.0}}
    assert report.flags({"sparsity": 0.5, "p50_ms": {"128": 9.8}}, fp32) == ["pruned-not-faster"]
    assert report.flags({"sparsity": 0.5, "p50_ms": {"128": 9.4}}, fp32) == []
    assert report.flags({"sparsity": 0.2, "p50_ms": {"128": 10.0}}, fp32) == []
    assert report.flags({"sparsity": 0.9, "p50_ms": {}}, fp32) == []  # not measured: no verdict


def test_sweep_table_pairs_global_and_layerwise():
    rows = [{"profile": "minilm-l6", "variant": v, "p50_ms": {"128": p50}, "accuracy": acc,
             "accuracy_ci95": None, "accuracy_mr": acc, "accuracy_mr_ci95": None, "real_weights": True}
            for v, p50, acc in (("fp32", 10.0, 0.85), ("magnitude-global@0.5", 10.1, 0.84),
                                ("magnitude-layerwise@0.5", 10.2, 0.82), ("magnitude-global@0.5+int8", 6.0, 0.8),
                                ("magnitude-global@0.5:recovery_epochs=1", 10.0, 0.845))]
    text = report._sweep_table(rows, {"minilm-l6": rows[0]})
    lines = [line for line in text.splitlines() if line.startswith("| minilm-l6")]
    assert len(lines) == 2  # one-shot and recovered rows; the +int8 chain is not a sweep point
    one_shot, recovered = (" ".join(line.split()) for line in lines)
    assert one_shot.startswith("| minilm-l6 | 0.50 | 0 | 84.00%") and "82.00%" in one_shot
    assert recovered.startswith("| minilm-l6 | 0.50 | 1 | 84.50%")
