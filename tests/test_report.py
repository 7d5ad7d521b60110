"""Report and saved-run handling on synthetic runs (no model needed)."""
import json
import re

import pytest

from harness.cli import main
from harness.core.errors import HarnessError
from harness.report import stages
from harness.report import summary as report_summary
from harness.report import tables as report
from harness.results import storage


def _bench(metric, profile, variant, median_s=0.01, **extra):
    return {"name": f"test_{metric}[{profile}-{variant}]", "group": None,
            "stats": {"median": median_s, "mean": median_s, "rounds": 5},
            "extra_info": {"metric": metric, "profile": profile, "variant": variant, **extra}}


def _run(tmp_path, flops=2000, gemm_peak=None, extra=()):
    benches = [] if gemm_peak is None else [{"name": "test_gemm_peak", "group": None, "stats": {"median": 1.0},
                                               "extra_info": {"metric": "gemm_peak", **gemm_peak}}]
    benches += list(extra)
    for variant, size, p50, acc in (("fp32", 90.0, 10.0, 0.86), ("int8-dynamic", 30.0, 4.0, 0.85)):
        benches += [
            _bench("static", "minilm-l6", variant, size_mb=size, params=100, nonzero_params=99, sparsity=0.01,
                   flops=flops, macs_fvcore=1000, quant_engine=None, quantized_linear_fraction=None),
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


def test_cli_report_writes_markdown_csv_json_and_plots(tmp_path):
    out = tmp_path / "out"
    assert main(["report", str(_run(tmp_path)), "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "summary.json", "tables.json", "key-comparison.csv", "vs-fp32.csv", "quality.csv",
            "efficiency.csv", "pareto.png"} <= names
    assert not [n for n in names if n.startswith(".")]  # no temporary file left behind
    assert "![Pareto fronts" in (out / "report.md").read_text()


def test_every_table_has_units_and_a_footer_in_markdown_csv_and_json(tmp_path):
    md, _ = report.write_report(_run(tmp_path), tmp_path / "out", with_plots=False)
    text = md.read_text()
    doc = json.loads((tmp_path / "out" / "tables.json").read_text())
    sections = [t["slug"] for t in doc["tables"]]
    assert text.count("<sub>Machine abc (Test CPU") == len(sections) >= 8
    assert "2 threads, torch" in doc["footer"] and "0001_run.json" in doc["footer"]
    key = next(t for t in doc["tables"] if t["slug"] == "key-comparison")
    assert "Size MB" in key["headers"] and "p50 ms @128" in key["headers"]
    assert key["rows"][0][2] == 90.0 and key["text"][0][2] == "90.00"  # raw value for machines, text for people
    lines = (tmp_path / "out" / "key-comparison.csv").read_text().splitlines()
    assert lines[0].startswith("Model,Variant,Size MB") and lines[-1].startswith("# Machine abc")
    assert lines[1].split(",")[:3] == ["minilm-l6", "fp32", "90.0"]


def test_efficiency_divides_by_the_ceiling_of_the_variants_kernel(tmp_path):
    peak = {"threads": 2, "size": 2048, "fp32_gops": 400.0, "fp32_gops_median": 380.0, "fp32_kernel": "mm",
            "int8_gops": 1000.0, "int8_gops_median": 900.0, "int8_kernel": "linear_dynamic"}
    md, js = report.write_report(_run(tmp_path, flops=2e9, gemm_peak=peak), tmp_path / "out", with_plots=False)
    rows = {(r["profile"], r["variant"]): r for r in json.loads(js.read_text())["rows"]}
    fp32, int8 = rows[("minilm-l6", "fp32")], rows[("minilm-l6", "int8-dynamic")]
    assert (fp32["precision"], int8["precision"]) == ("fp32", "int8")
    assert (fp32["ceiling"], int8["ceiling"]) == ("fp32", "int8")
    assert fp32["achieved_gflops"] == pytest.approx(2e9 / 10e-3 / 1e9)  # 200 GFLOP/s of 400
    assert fp32["peak_fraction"] == pytest.approx(0.5)
    assert int8["achieved_gflops"] == pytest.approx(500.0) and int8["peak_fraction"] == pytest.approx(0.5)
    assert rows[("distilbert-base", "fp32")]["peak_fraction"] is None  # no latency measured: no efficiency
    assert "| minilm-l6       | int8-dynamic | torch     | int8" in md.read_text()


def test_a_rate_above_its_ceiling_is_never_printed_as_a_percentage(tmp_path):
    # A ceiling from a slow reference kernel (an AVX2 machine's torch._int_mm ran at 1.8 GOPS) once
    # printed "6337.5%"; a rate above the ceiling now reads "above ceiling".
    peak = {"threads": 2, "size": 2048, "fp32_gops": 400.0, "fp32_gops_median": 380.0, "fp32_kernel": "mm",
            "int8_gops": 1.8, "int8_gops_median": 1.7, "int8_kernel": "linear_dynamic"}
    md, js = report.write_report(_run(tmp_path, flops=2e9, gemm_peak=peak), tmp_path / "out", with_plots=False)
    int8 = {r["variant"]: r for r in json.loads(js.read_text())["rows"] if r["profile"] == "minilm-l6"}["int8-dynamic"]
    assert int8["above_ceiling"] and int8["peak_fraction"] is None
    text = md.read_text()
    assert "above ceiling" in text and not any(float(x) > 100 for x in re.findall(r"(\d+(?:\.\d+)?)%", text))


def test_a_legacy_int8_peak_from_int_mm_is_not_used(tmp_path):
    peak = {"threads": 2, "size": 2048, "fp32_gflops": 400.0, "fp32_gflops_median": 380.0, "fp32_kernel": "mm",
            "int8_gops": 1000.0, "int8_gops_median": 900.0, "int8_kernel": "torch._int_mm int8->int32"}
    md, js = report.write_report(_run(tmp_path, flops=2e9, gemm_peak=peak), tmp_path / "out", with_plots=False)
    rows = {(r["profile"], r["variant"]): r for r in json.loads(js.read_text())["rows"]}
    assert rows[("minilm-l6", "fp32")]["peak_fraction"] == pytest.approx(0.5)  # fp32_gflops read as fp32_gops
    assert rows[("minilm-l6", "int8-dynamic")]["peak_fraction"] is None
    assert "which no INT8 variant calls" in md.read_text()


def test_efficiency_without_a_measured_peak_says_so(tmp_path):
    md, js = report.write_report(_run(tmp_path, flops=2e9), tmp_path / "out", with_plots=False)
    row = json.loads(js.read_text())["rows"][0]
    assert row["achieved_gflops"] == pytest.approx(200.0) and row["peak_fraction"] is None
    assert "GEMM ceilings were not measured in this run" in md.read_text()


def test_sweep_and_stage_tables(tmp_path):
    extra = []
    for variant, acc, p50 in (("magnitude-global@0.5", 0.84, 9.5), ("magnitude-layerwise@0.5", 0.83, 9.9),
                              ("magnitude-global@0.5+int8", 0.82, 4.1)):
        extra += [_bench("static", "minilm-l6", variant, size_mb=90.0, size_sparse_mb=60.0, params=100,
                         nonzero_params=50, sparsity=0.5, linear_sparsity=0.5, flops=2000),
                  _bench("latency", "minilm-l6", variant, seq_len=128, p50_ms=p50, p90_ms=p50, p99_ms=p50, cv=0.01),
                  _bench("quality", "minilm-l6", variant, eval_set="imdb-test", accuracy=acc, accuracy_ci95=None,
                         eval_loss=0.4, agreement=0.9, kl_fp32=0.1)]
    md, _ = report.write_report(_run(tmp_path, extra=extra), tmp_path / "out", with_plots=False)
    text = md.read_text()
    sweep = (tmp_path / "out" / "sweep.csv").read_text().splitlines()
    assert sweep[1].split(",")[:7] == ["minilm-l6", "0", "0.5", "0.84", "", "2.0", "1.5"]
    stages = (tmp_path / "out" / "stages.csv").read_text().splitlines()
    assert [line.split(",")[2] for line in stages[1:4]] == ["0. fp32", "1. magnitude-global@0.5",
                                                            "2. magnitude-global@0.5+int8"]
    assert "## Compression stages (study 003, EdgeMIN)" in text


def test_pruned_but_not_faster_flag():
    fp32 = {"p50_ms": {"128": 10.0}}
    assert report_summary.flags({"sparsity": 0.5, "p50_ms": {"128": 9.8}}, fp32) == ["pruned-not-faster"]
    assert report_summary.flags({"sparsity": 0.5, "p50_ms": {"128": 9.4}}, fp32) == []
    assert report_summary.flags({"sparsity": 0.2, "p50_ms": {"128": 10.0}}, fp32) == []
    assert report_summary.flags({"sparsity": 0.9, "p50_ms": {}}, fp32) == []  # not measured: no verdict


def test_sweep_table_pairs_global_and_layerwise():
    rows = [{"profile": "minilm-l6", "variant": v, "p50_ms": {"128": p50}, "accuracy": acc,
             "accuracy_ci95": None, "accuracy_mr": acc, "accuracy_mr_ci95": None, "real_weights": True}
            for v, p50, acc in (("fp32", 10.0, 0.85), ("magnitude-global@0.5", 10.1, 0.84),
                                ("magnitude-layerwise@0.5", 10.2, 0.82), ("magnitude-global@0.5+int8", 6.0, 0.8),
                                ("magnitude-global@0.5:recovery_epochs=1", 10.0, 0.845))]
    text = stages.sweep_table(rows, {"minilm-l6": rows[0]}).markdown()
    lines = [line for line in text.splitlines() if line.startswith("| minilm-l6")]
    assert len(lines) == 2  # one-shot and recovered rows; the +int8 chain is not a sweep point
    one_shot, recovered = (" ".join(line.split()) for line in lines)
    assert one_shot.startswith("| minilm-l6 | 0 | 0.50 | 84.00%") and "82.00%" in one_shot
    assert recovered.startswith("| minilm-l6 | 1 | 0.50 | 84.50%")


def test_a_re_render_removes_only_its_own_files_it_no_longer_writes(tmp_path):
    """An orphan ``cold-start.csv`` / ``memory.csv`` (and the plots, when re-rendered without
    them) goes; a file the report never wrote stays, whatever its kind."""
    out = tmp_path / "out"
    report.write_report(_run(tmp_path), out)
    assert {"cold-start.csv", "memory.csv", "pareto.png"} <= {p.name for p in out.iterdir()}
    mine = {"notes.csv": "a,b\n", "photo.png": "x", "notes.txt": "keep"}
    for name, text in mine.items():
        (out / name).write_text(text)
    (out / "sub").mkdir()
    (out / "sub" / "cold-start.csv").write_text("nested")
    path = _run(tmp_path)
    run = json.loads(path.read_text())
    run["benchmarks"] = [b for b in run["benchmarks"] if b["extra_info"]["metric"] not in ("cold_start", "memory")]
    path.write_text(json.dumps(run))
    report.write_report(path, out, with_plots=False)
    names = {p.name for p in out.iterdir()}
    assert not {"cold-start.csv", "memory.csv"} & names and not [n for n in names if n.endswith(".png") and n != "photo.png"]
    assert {"report.md", "summary.json", "tables.json", "key-comparison.csv"} <= names
    assert all((out / name).read_text() == text for name, text in mine.items())
    assert (out / "sub" / "cold-start.csv").read_text() == "nested"
    assert report.previous_files(tmp_path / "empty") == set()
