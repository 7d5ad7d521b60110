"""The backend axis in budgets, rows, comparisons and the report (synthetic runs, no model)."""
import json

import pytest

from harness.core.errors import HarnessError
from harness.gate import budgets
from harness.gate.compare import compare_rows
from harness.report import backends as report_backends
from harness.report import tables as report
from harness.results.rows import rows_from_results

PROFILE = "minilm-l6"


def _bench(metric, variant, backend, **extra):
    return {"name": f"test_{metric}[{PROFILE}-{variant}{'-ort' if backend == 'onnxruntime' else ''}]",
            "stats": {"median": 0.01, "rounds": 5},
            "extra_info": {"metric": metric, "profile": PROFILE, "variant": variant, "backend": backend,
                           "backend_session": {"runtime": backend, "intra_op_threads": 2}, **extra}}


def _run(tmp_path):
    benches = []
    # (variant, backend, size MB, p50 ms, accuracy); pre-backend runs have no backend key -> torch
    for variant, backend, size, p50, acc in (("fp32", "torch", 90.0, 10.0, 0.86), ("fp32", "onnxruntime", 91.0, 8.0, 0.86),
                                             ("int8-dynamic", "torch", 60.0, 6.0, 0.85),
                                             ("int8-dynamic", "onnxruntime", 23.0, 3.0, 0.84)):
        benches += [
            _bench("static", variant, backend, size_mb=size, params=100, flops=2000),
            _bench("latency", variant, backend, seq_len=128, p50_ms=p50, p90_ms=p50 * 1.1, p99_ms=p50 * 1.2,
                   mean_ms=p50 * 1.05, cv=0.02),
            _bench("throughput", variant, backend, batch_size=32, throughput_sps=320 / p50),
            _bench("quality", variant, backend, eval_set="imdb-test", accuracy=acc, accuracy_ci95=[acc - .02, acc + .02],
                   eval_loss=0.35, agreement=None if (variant, backend) == ("fp32", "torch") else 0.99,
                   kl_fp32=None),
        ]
    run = {"machine_info": {"edgebench": {"cpu_model": "Test CPU", "threads": 2, "machine_id": "abc"}},
           "benchmarks": benches, "datetime": "2026-01-01T00:00:00", "edgebench": {"schema": 1}}
    path = tmp_path / "0001_run.json"
    path.write_text(json.dumps(run))
    return path


def _budgets(tmp_path, body):
    path = tmp_path / "b.toml"
    path.write_text("schema = 1\n" + body)
    return budgets.load_budgets(path)


def test_rows_are_keyed_by_backend_and_the_report_compares_them(tmp_path):
    md, js = report.write_report(_run(tmp_path), tmp_path / "out")
    doc = json.loads(js.read_text())
    rows = {(r["variant"], r["backend"]): r for r in doc["rows"]}
    assert rows[("int8-dynamic", "onnxruntime")]["p50_ms"] == {"128": 3.0}
    assert rows[("int8-dynamic", "torch")]["p50_ms"] == {"128": 6.0}
    assert doc["backend_sessions"]["onnxruntime"]["intra_op_threads"] == 2
    text = md.read_text()
    # torch-only tables keep their torch rows: the ORT fp32 is not taken as the fp32 reference
    assert "| minilm-l6 | int8-dynamic | 0.67×" in text  # size 60/90 in "Versus FP32"
    # torch vs ORT: p50 ratio of the same variant, and against torch fp32
    vs = report_backends.torch_vs(doc["rows"])
    line = next(l for l in vs.splitlines() if "int8-dynamic" in l)
    assert "0.50×" in line and "0.30×" in line  # 3/6 same variant, 3/10 torch fp32
    onnx = report_backends.onnx_models(doc["rows"], doc["latency_mean_ms"])
    assert "minilm-l6/int8-dynamic.onnx | 23.00     | 3.15     | 3.00     | 3.30" in onnx
    assert "Backend" in text and "ONNX models (study 001 style)" in text


def test_a_torch_only_run_has_no_backend_sections():
    rows = [{"profile": PROFILE, "variant": "fp32", "p50_ms": {}, "throughput_sps": {}}]
    assert report_backends.sections({"rows": rows}) == []


def test_backend_budgets_compare_with_torch_fp32(tmp_path):
    bs = _budgets(tmp_path, '''
[[budget]]
backend = "onnxruntime"
variant = "fp32"
metric = "p50_ms@128"
max_ratio = 0.9
why = "test"

[[budget]]
variant = "int8-dynamic"
metric = "p50_ms@128"
max_ratio = 0.5
why = "torch only by default"
''')
    rows = rows_from_results([b["extra_info"] for b in json.loads(_run(tmp_path).read_text())["benchmarks"]])
    ort_fp32 = budgets.applicable(bs, PROFILE, "fp32", True, backend="onnxruntime")
    assert [b.metric for b in ort_fp32] == ["p50_ms@128"]  # a ratio budget may apply to fp32 on ORT
    assert budgets.applicable(bs, PROFILE, "fp32", True) == []  # but never to torch fp32
    v = budgets.evaluate(ort_fp32[0], PROFILE, "fp32", rows, "onnxruntime")
    assert v.passed and v.reference == 10.0 and "0.800× torch fp32" in v.message  # 8 / torch's 10
    torch_int8 = budgets.applicable(bs, PROFILE, "int8-dynamic", True)
    assert len(torch_int8) == 1 and not budgets.applicable(bs, PROFILE, "int8-dynamic", True, backend="onnxruntime")
    assert budgets.evaluate(torch_int8[0], PROFILE, "int8-dynamic", rows).passed is False  # 6/10 > 0.5
    verdicts = budgets.evaluate_all(bs, rows)
    assert sorted(v.message.split(" =")[0] for v in verdicts) == [
        "fp32/minilm-l6/onnxruntime p50_ms@128", "int8-dynamic/minilm-l6 p50_ms@128"]


def test_an_unknown_backend_in_budgets_is_rejected(tmp_path):
    with pytest.raises(HarnessError, match="backend 'tvm' matches no backend"):
        _budgets(tmp_path, '[[budget]]\nbackend = "tvm"\nvariant = "fp32"\nmetric = "size_mb"\nmax = 1\nwhy = "x"\n')
    with pytest.raises(HarnessError, match="cannot apply to fp32 itself"):
        _budgets(tmp_path, '[[budget]]\nvariant = "fp32"\nmetric = "size_mb"\nmax_ratio = 1\nwhy = "x"\n')


def test_baseline_comparison_keeps_backends_apart():
    old = [{"profile": PROFILE, "variant": "fp32", "backend": "torch", "size_mb": 90.0},
           {"profile": PROFILE, "variant": "fp32", "backend": "onnxruntime", "size_mb": 91.0}]
    new = [{"profile": PROFILE, "variant": "fp32", "backend": "onnxruntime", "size_mb": 91.0}]
    comps = [c for c in compare_rows(old, new, {}) if c.metric == "size_mb"]
    assert [(c.name, c.verdict) for c in comps] == [("fp32/minilm-l6/onnxruntime", "unchanged")]


def test_best_deployable_keeps_what_holds_99_percent_of_fp32_accuracy_fastest_first():
    def row(variant, backend, acc, acc_mr, p50_ratio=None, ci=None):
        return {"profile": PROFILE, "variant": variant, "backend": backend, "real_weights": True, "accuracy": acc,
                "accuracy_mr": acc_mr, "p50_ms": {"128": 10.0 * (p50_ratio or 1)}, "size_mb": 10.0, "peak_rss_mb": 100,
                "throughput_sps": {}, "p90_ms": {},
                "p50_ratio": {} if p50_ratio is None else {"128": {"ratio": p50_ratio, "ci95": ci, "n": 9}}}

    rows = [row("fp32", "torch", 0.86, 0.80),
            row("int8-dynamic", "torch", 0.855, 0.795, 0.45, [0.44, 0.46]),
            row("fp32", "onnxruntime-fused", 0.86, 0.80, 0.80, [0.78, 0.82]),
            row("int8-dynamic", "onnxruntime-fused", 0.850, 0.80, 0.38, [0.37, 0.39]),  # IMDB 0.850 < 0.99 x 0.86
            row("int8-dynamic", "onnxruntime", 0.86, 0.79, 0.50, [0.49, 0.51]),  # MR 0.79 < 0.99 x 0.80
            row("fp32", "onnxruntime", 0.86, 0.80)]  # timed in no campaign with fp32: no ratio to rank it by
    lines = [l for l in report_backends.best_deployable(rows).splitlines() if l.startswith(f"| {PROFILE}")]
    assert [[c.strip() for c in l.split("|")[2:4]] for l in lines] == [
        ["int8-dynamic", "torch"], ["fp32", "onnxruntime-fused"], ["fp32", "torch"]]  # fastest first, reference too
    assert "0.45× [0.44, 0.46]" in lines[0] and "85.50% / 79.50%" in lines[0]
    # a profile with random weights: nothing to judge, every timed configuration listed, accuracy n/a
    random = [dict(r, real_weights=False, accuracy=None, accuracy_mr=None) for r in rows]
    assert sum(l.startswith(f"| {PROFILE}") for l in report_backends.best_deployable(random).splitlines()) == 5
    assert "## Best deployable" in "\n".join(report_backends.sections({"rows": rows}))
