"""The regression gate: statistics on synthetic samples, budgets, baselines, CLI, and a real suite run."""
import dataclasses
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import compressors
from harness.cli import main
from harness.core.errors import HarnessError
from harness.core.paths import ROOT
from harness.gate import baselines, budgets
from harness.gate.compare import compare_rows, timing_verdict
from harness.measure.quality import quality_metrics


def _samples(rng, median_s, n=100, cv=0.03):
    # Right-skewed like real latencies: lognormal body plus a few slow outliers.
    body = median_s * rng.lognormal(0.0, cv, n)
    body[rng.random(n) < 0.03] *= 1.3
    return body.tolist()


def test_a_ten_percent_slowdown_is_caught():
    rng = np.random.default_rng(1)
    caught = sum(timing_verdict(_samples(rng, 0.010), _samples(rng, 0.011))[0] == "regression" for _ in range(100))
    assert caught >= 99


def test_same_distribution_passes_at_least_99_of_100_trials():
    rng = np.random.default_rng(2)
    alarms = sum(timing_verdict(_samples(rng, 0.010), _samples(rng, 0.010))[0] == "regression" for _ in range(100))
    assert alarms <= 1


def test_a_two_percent_slowdown_inside_the_threshold_passes():
    rng = np.random.default_rng(3)
    verdicts = [timing_verdict(_samples(rng, 0.010, n=300, cv=0.01), _samples(rng, 0.0102, n=300, cv=0.01))
                for _ in range(20)]
    assert all(v == "unchanged" for v, _, _ in verdicts)
    assert sum(p < 0.01 for _, _, p in verdicts) > 10  # significant, yet not material


def test_between_run_spread_of_blessed_runs_raises_the_floor():
    rng = np.random.default_rng(4)
    new = _samples(rng, 0.0108)
    assert timing_verdict(_samples(rng, 0.010), new)[0] == "regression"
    blessed = [_samples(rng, 0.010), _samples(rng, 0.0105)]  # an unchanged tree drifted 5% between runs
    assert timing_verdict(blessed, new)[0] == "unchanged"


def test_too_few_samples_is_an_error():
    with pytest.raises(ValueError):
        timing_verdict([1.0, 1.0], [1.0, 1.0, 1.0])


def test_every_registered_variant_has_a_budget():
    all_budgets = budgets.load_budgets()
    for name in compressors.known_variants():
        if name == "fp32":
            continue
        # a registered name may be used with an @argument (e.g. magnitude-global@0.5)
        assert any((b.matches(p, name, b.backend) or b.matches(p, f"{name}@0.5", b.backend)) and b.variant != "*"
                   for b in all_budgets for p in ("minilm-l6", "distilbert-base", "convnext-fmnist", "convnext-small")
                   ), f"no budget for {name}"


@pytest.mark.parametrize("text, message", [
    ("schema = 1\n[[budget]\n", "line 2"),
    ("schema = 2\n", "schema is 2"),
    ('schema = 1\n[[budget]]\nvariant = "int8-dynamic"\nmetric = "latency"\nmax = 1\nwhy = "x"\n', "line 2 .*unknown metric 'latency'"),
    ('schema = 1\n[[budget]]\nvariant = "int9"\nmetric = "size_mb"\nmax = 1\nwhy = "x"\n', "unknown variant 'int9'"),
    ('schema = 1\n[[budget]]\nvariant = "int8-dynamic"\nmetric = "size_mb"\nmax = 1\nmin = 0\nwhy = "x"\n', "exactly one"),
    ('schema = 1\n[[budget]]\nvariant = "int8-dynamic"\nmetric = "size_mb"\nmax = 1\n', "'why' is required"),
    ('schema = 1\n[[budget]]\nvariant = "int8-dynamic"\nmetric = "p50_ms"\nmax = 1\nwhy = "x"\n', "p50_ms@N"),
    ('schema = 1\n[[budget]]\nprofile = "bert-xl"\nvariant = "fp32"\nmetric = "size_mb"\nmax = 1\nwhy = "x"\n', "matches no profile"),
    ('schema = 1\n[[budget]]\nvariant = "int8-dynamic"\nmetric = "size_mb"\nmax = 1\nratchet = "yes"\nwhy = "x"\n', "ratchet must be true or false"),
])
def test_malformed_budgets_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "budgets.toml"
    path.write_text(text)
    with pytest.raises(HarnessError, match=message):
        budgets.load_budgets(path)


def _row(variant, **kw):
    row = {"profile": "minilm-l6", "variant": variant, "p50_ms": {}, "throughput_sps": {}}
    row.update(kw)
    return row


def test_budget_failure_message_is_readable():
    b = budgets.Budget("minilm-l6", "int8-dynamic", "p50_ms@128", "max_ratio", 0.5, "target", 1)
    rows = [_row("fp32", p50_ms={"128": 14.7}), _row("int8-dynamic", p50_ms={"128": 9.1})]
    v = budgets.evaluate(b, "minilm-l6", "int8-dynamic", rows)
    assert v.passed is False
    # Rows without interleaved blocks: a run saved before paired ratios, judged on its point ratio.
    assert v.message == ("int8-dynamic/minilm-l6 p50_ms@128 = 9.1 ms = 0.619× fp32 (single-block timing, no CI) "
                         "(budget ≤ 0.50× fp32)")
    assert budgets.evaluate(b, "minilm-l6", "int8-dynamic", rows[1:]).passed is None  # no fp32: not checkable
    ratchet = dataclasses.replace(b, ratchet=True)
    assert budgets.evaluate(ratchet, "minilm-l6", "int8-dynamic", rows).message.endswith("(budget ≤ 0.50× fp32, a ratchet)")


def test_a_ratio_budget_names_the_fp32_it_divides_by():
    """An ONNX-file profile's ratios are to its onnxruntime fp32; a built-in profile's ORT rows to torch fp32."""
    b = budgets.Budget("*", "int8-dynamic", "size_mb", "max_ratio", 0.3, "target", 1, backend="*")
    onnx_rows = [_row(v, backend="onnxruntime", reference_backend="onnxruntime", size_mb=mb)
                 for v, mb in (("fp32", 91.0), ("int8-dynamic", 23.1))]
    v = budgets.evaluate(b, "minilm-l6", "int8-dynamic", onnx_rows, "onnxruntime")
    assert v.passed and v.message.endswith("= 0.254× fp32 (budget ≤ 0.30× fp32)"), v.message
    builtin = [_row("fp32", size_mb=91.0), _row("int8-dynamic", backend="onnxruntime", size_mb=23.1)]
    v = budgets.evaluate(b, "minilm-l6", "int8-dynamic", builtin, "onnxruntime")
    assert v.message.endswith("= 0.254× torch fp32 (budget ≤ 0.30× torch fp32)"), v.message


def test_budget_reasons_state_policy_not_stale_figures():
    """Issue 16: a measured figure in a `why` goes stale; the report generates measured values."""
    stale = re.compile(r"\b(measured|probe)\b[^a-z]*[0-9]")
    quoted = [f"line {b.line}: {b.why}" for b in budgets.load_budgets() if stale.search(b.why)]
    assert not quoted, quoted


def test_an_accuracy_breaking_variant_fails_the_accuracy_budget(tiny_model, tiny_inputs):
    """Perturbed weights on a real forward pass: labels are the clean model's predictions."""
    ids = torch.randint(1000, 5000, (64, 16), generator=torch.Generator().manual_seed(1))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.inference_mode():
        clean = tiny_model(**inputs).logits
        labels = clean.argmax(1)
        broken = compressors.build("fp32", tiny_model)
        for p in broken.parameters():
            p.add_(torch.randn_like(p) * 0.5)
        noisy = broken(**inputs).logits
    rows = [_row("fp32", accuracy=quality_metrics(clean, labels)["accuracy"]),
            _row("int8-dynamic", accuracy=quality_metrics(noisy, labels)["accuracy"])]
    b = budgets.Budget("minilm-l6", "int8-dynamic", "accuracy", "min_ratio", 0.99, "MLPerf", 1)
    assert budgets.evaluate(b, "minilm-l6", "int8-dynamic", rows).passed is False


def test_deterministic_metrics_use_tolerances():
    old = [_row("fp32", accuracy=0.845, size_mb=90.0)]
    comps = {c.metric: c.verdict for c in compare_rows(old, [_row("fp32", accuracy=0.8445, size_mb=90.0)],
                                                       {"accuracy_abs": 0.001, "size_mb": 0.0})}
    assert comps == {"accuracy": "unchanged", "size_mb": "unchanged"}
    comps = {c.metric: c.verdict for c in compare_rows(old, [_row("fp32", accuracy=0.84, size_mb=91.0)],
                                                       {"accuracy_abs": 0.001, "size_mb": 0.0})}
    assert comps == {"accuracy": "regression", "size_mb": "regression"}


def _run(tmp_path, name, median_s, machine="m1", seed=0):
    rng = np.random.default_rng(seed)
    data = _samples(rng, median_s)
    run = {"machine_info": {"edgebench": {"machine_id": machine, "threads": 2, "cpu_model": machine}},
           "edgebench": {"schema": 1},
           "benchmarks": [{"name": "test_latency[x]", "stats": {"data": data},
                           "extra_info": {"metric": "latency", "profile": "minilm-l6", "variant": "fp32",
                                          "seq_len": 128, "p50_ms": float(np.median(data)) * 1e3,
                                          "p90_ms": 1.0, "p99_ms": 1.0, "cv": 0.03}}]}
    path = tmp_path / name
    path.write_text(json.dumps(run))
    return path


def test_bless_keeps_the_last_runs_and_loads_them(tmp_path):
    blessed = baselines.KEEP + 2
    for i in range(blessed):
        baselines.bless(_run(tmp_path, f"r{i}.json", 0.01, seed=i), root=tmp_path / "b")
    kept = sorted((tmp_path / "b" / "m1").glob("run-*.json"))
    assert [p.name for p in kept] == [f"run-{i:04d}.json" for i in range(3, blessed + 1)]
    assert len(baselines.load_baselines("m1", root=tmp_path / "b")) == baselines.KEEP
    with pytest.raises(HarnessError, match="bless one with"):
        baselines.load_baselines("other", root=tmp_path / "b")


def test_cli_compare_exit_codes(tmp_path, capsys):
    """Runs saved before issue 16 (single-block timing): sizes still compare, timings
    are shown but never judged, so a slower one is no regression (tests/test_compare.py
    covers the interleaved runs the gate judges)."""
    base = _run(tmp_path, "base.json", 0.010, seed=1)
    assert main(["compare", str(_run(tmp_path, "same.json", 0.010, seed=2)), "--against", str(base)]) == 0
    assert main(["compare", str(_run(tmp_path, "slow.json", 0.012, seed=3)), "--against", str(base)]) == 0
    out = capsys.readouterr().out
    assert "not comparable (single-block timing, no CI)" in out and "regression" not in out
    other = _run(tmp_path, "other.json", 0.020, machine="m2", seed=4)
    assert main(["compare", str(other), "--against", str(base)]) == 0
    assert "timings not compared" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "nope.json"), "--against", str(base)]) == 2
    raw = json.loads(base.read_text())
    raw["benchmarks"][0]["stats"]["data"] = []
    (tmp_path / "noraw.json").write_text(json.dumps(raw))
    assert main(["bless", str(tmp_path / "noraw.json")]) == 2
    assert "no raw per-round samples" in capsys.readouterr().err


def test_suite_fails_a_deliberately_slower_variant(tmp_path):
    budget_file = tmp_path / "budgets.toml"
    budget_file.write_text('schema = 1\n[[budget]]\nvariant = "slow-fp32"\nmetric = "p50_ms@64"\n'
                           'max_ratio = 1.3\nwhy = "no variant may be much slower than fp32"\n')
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT / "tests")}
    cmd = [sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider", "-p", "gate_plugin",
           "--profiles", "tiny-random", "--variants", "fp32,slow-fp32", "--seq-lengths", "64",
           "--blocks", "9", "--block-seconds", "0.1", "--timing-cap-s", "15", "--processes", "1", "--threads", "1", "--budgets", str(budget_file),
           "-k", "latency or budget"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "slow-fp32/tiny-random p50_ms@64 =" in out and "(budget ≤ 1.30× fp32)" in out


def test_a_negated_profile_pattern_excludes_those_profiles():
    b = budgets.Budget(profile="!*-mlm", variant="*+int8*", metric="size_mb", bound="max_ratio", limit=0.7,
                       why="x", line=1)
    assert b.matches("minilm-l6", "magnitude-global@0.5+int8")
    assert not b.matches("minilm-l6-mlm", "magnitude-global@0.5+int8")
    mlm = [x for x in budgets.applicable(budgets.load_budgets(), "minilm-l6-mlm", "magnitude-global@0.5+int8", True)
           if x.metric == "size_mb"]
    assert [x.limit for x in mlm] == [0.80]  # only the MLM profile's own size budget
