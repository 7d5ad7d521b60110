"""Issue 18, an ``.onnx`` file as the baseline: the graph checks and their one-line errors, the
static counts read off a graph (against torch's on the same model), and the suite end to end on
onnxruntime with the ONNX fp32 as the reference and its A/A control."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from harness.models import onnx_file
from harness.core.errors import HarnessError
from harness.core.paths import ROOT
from harness.measure import flops, params

from tiny_suite import run_tiny_suite
from test_project import TOKENIZER_FILES, _csv, _minilm_dir, _rows


def _bert(num_labels: int = 3):
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, num_labels=num_labels)
    model = transformers.BertForSequenceClassification(config).eval()
    with torch.no_grad():  # trained-looking weights: no two LayerNorms equal (the exporter dedups equal tensors)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def _user_export(model, path: Path, names=("input_ids", "attention_mask", "token_type_ids")) -> Path:
    """What a user's export looks like (optimum-style names, token_type_ids included)."""

    class Classifier(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return self.inner(**dict(zip(names, args))).logits

    ids = torch.randint(1000, 2000, (2, 16))
    example = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    with warnings.catch_warnings():  # the tracer's warnings about transformers' Python branches
        warnings.simplefilter("ignore")
        torch.onnx.export(Classifier(model).eval(), tuple(example[n] for n in names), str(path), dynamo=False,
                          opset_version=17, input_names=list(names), output_names=["logits"],
                          dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, "logits": {0: "batch"}})
    return path


def _tokenizer_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for f in TOKENIZER_FILES:
        shutil.copy(_minilm_dir() / f, path / f)
    return path


def test_graph_macs_and_params_match_torchs_counts_of_the_same_model(tmp_path):
    model = _bert()
    onnx_file = _user_export(model, tmp_path / "m.onnx")
    for length in (16, 128):
        ids = torch.randint(1000, 2000, (1, length))
        torch_flops = flops.count_flops(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)})
        assert 2 * flops.count_macs_onnx(onnx_file, ["input_ids", "attention_mask", "token_type_ids"], 1, length) \
            == torch_flops
    # The pooler and classifier included; position_ids is an integer buffer, not a parameter.
    assert params.count_params_onnx(onnx_file) == params.count_params(model)


def _graph(tmp_path: Path, inputs, outputs, name="g.onnx") -> Path:
    """A stand-in ONNX graph with the given (name, elem_type, dims) inputs and outputs."""
    import onnx
    from onnx import TensorProto, helper

    ins = [helper.make_tensor_value_info(n, t, d) for n, t, d in inputs]
    outs = [helper.make_tensor_value_info(n, t, d) for n, t, d in outputs]
    # Each output is a Cast of the first input: a valid graph whose only point is its signature.
    nodes = [helper.make_node("Cast", [inputs[0][0]], [o[0]], to=o[1]) for o in outputs]
    model = helper.make_model(helper.make_graph(nodes, "g", ins, outs), opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


I64, I32, F32 = 7, 6, 1
GOOD_IN = [("input_ids", I64, ["b", "s"]), ("attention_mask", I64, ["b", "s"])]
LOGITS = [("logits", F32, ["b", 3])]


@pytest.mark.parametrize("inputs, outputs, kw, match", [
    ([("pixel_values", F32, ["b", 3, 8, 8])], LOGITS, {}, "input 'pixel_values' is not a tokenizer output"),
    ([("input_ids", I32, ["b", "s"]), GOOD_IN[1]], LOGITS, {}, "input 'input_ids' is int32 of rank 2; .*int64"),
    ([GOOD_IN[1]], LOGITS, {}, "takes no 'input_ids' input"),
    ([GOOD_IN[0]], LOGITS, {}, "takes no attention_mask"),
    (GOOD_IN, [("a", F32, ["b", 3]), ("b", F32, ["b", 3])], {}, "2 outputs \\(a, b\\) and none named 'logits'"),
    (GOOD_IN, [("logits", F32, ["b", "s", 3])], {}, "output 'logits' is not float32 logits of shape"),
    (GOOD_IN, [("logits", F32, ["b", 2])], {}, "outputs 2 logits but the data have 3 labels"),
    ([("input_ids", I64, ["b", 128]), ("attention_mask", I64, ["b", 128])], LOGITS, {},
     "fixed sequence length 128 .*seq_lengths = \\[128\\]"),
    ([("input_ids", I64, [1, "s"]), ("attention_mask", I64, [1, "s"])], LOGITS, {}, "fixed batch size 1"),
    (GOOD_IN, LOGITS, {"missing": True}, "onnx = .* does not exist"),
])
def test_a_graph_edgebench_cannot_feed_is_refused_in_one_line(tmp_path, inputs, outputs, kw, match):
    path = _graph(tmp_path, inputs, outputs)
    if kw.get("missing"):
        path.unlink()
    with pytest.raises(HarnessError, match=match) as exc:
        onnx_file.check_user_model(path, ("input_ids", "attention_mask"), 3, (16, 64), (1, 4), "t [models.m]")
    assert "\n" not in str(exc.value) and str(exc.value).startswith("t [models.m]")


def test_a_matching_graph_passes_and_garbage_is_not_an_onnx_file(tmp_path):
    io = onnx_file.check_user_model(_graph(tmp_path, GOOD_IN, LOGITS), ("input_ids", "attention_mask"), 3,
                                      (16, 64), (1, 4), "t")
    assert io["inputs"] == ["input_ids", "attention_mask"] and io["output"] == "logits" and io["classes"] == 3
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all" * 10)
    with pytest.raises(HarnessError, match="is not a readable ONNX file"):
        onnx_file.check_user_model(tmp_path / "junk.onnx", ("input_ids",), 3, (16,), (1,), "t")


def _onnx_project(tmp_path: Path) -> Path:
    (tmp_path / "exported").mkdir()
    onnx_file = _user_export(_bert(), tmp_path / "exported" / "classifier.onnx")
    _tokenizer_dir(tmp_path / "tok")
    _csv(tmp_path / "d.csv", _rows(150, ("neg", "pos", "meh")))
    config = tmp_path / "edgebench.toml"
    config.write_text(
        f"[models.clf]\nonnx = '{onnx_file}'\ntokenizer = 'tok'\n"
        "[data.d]\npath = 'd.csv'\n"
        "[profiles.clf]\nmodel = 'clf'\ntask = 'text-classification'\neval = ['d']\nseq_lengths = [16]\n"
        "batch_sizes = [1]\nstatic_length = 16\n")
    return config


def test_project_file_onnx_models_need_a_tokenizer_and_no_fine_tune(tmp_path, monkeypatch):
    from harness.models import project

    for body, match in (("onnx = 'm.onnx'\n", "needs tokenizer"),
                        ("onnx = 'm.onnx'\ntokenizer = 't'\nfine_tune = { data = 'd' }\n", "drop fine_tune"),
                        ("onnx = 'm.onnx'\nhf_dir = 'x'\n", "exactly one of hf_dir")):
        (tmp_path / "edgebench.toml").write_text("[models.m]\n" + body)
        monkeypatch.setenv(project.CONFIG_ENV, str(tmp_path / "edgebench.toml"))
        with pytest.raises(HarnessError, match=match):
            project.active()
    (tmp_path / "edgebench.toml").write_text("[models.m]\nonnx = 'm.onnx'\ntokenizer = 't'\n"
                                              "[profiles.p]\nmodel = 'm'\ntask = 'image-classification'\neval = ['d']\n"
                                              "[data.d]\npath = 'd'\n")
    with pytest.raises(HarnessError, match="an onnx model is a text classifier here"):
        project.active()


def test_the_quick_path_writes_an_onnx_model_table(tmp_path):
    from harness.cli import quick_config
    from harness.models import project

    data = _csv(tmp_path / "d.csv", _rows(10, ("neg", "pos")))
    (tmp_path / "m.onnx").write_bytes(b"")
    name, text = quick_config(tmp_path / "m.onnx", data, tokenizer=tmp_path)
    model = project.parse(text, tmp_path / "x.toml").models[name]
    assert name == "m" and model.onnx == tmp_path / "m.onnx" and model.tokenizer == tmp_path and model.fine_tune is None
    with pytest.raises(HarnessError, match="--model .*missing.onnx does not exist"):
        quick_config(tmp_path / "missing.onnx", data)


def test_an_onnx_file_is_benchmarked_on_onnxruntime_against_its_own_fp32(tmp_path, suite_log):
    """fp32 (the user's graph) and ORT INT8 measured, torch-only variants and the torch backend skipped
    with the reason, ratios and the A/A control on ORT fp32, accuracy scored, report rendered."""
    config = _onnx_project(tmp_path)
    proc, out = run_tiny_suite(tmp_path, config, "clf", "fp32,int8-dynamic,magnitude-global@0.5")
    log = suite_log(proc)
    assert proc.returncode == 0, log
    assert "the profile's model is an ONNX file, which the torch backend cannot run" in proc.stdout, log
    assert "'magnitude-global@0.5' compresses a PyTorch model" in proc.stdout, log
    run = json.loads(out.read_text())
    from harness.results.rows import rows_from_results

    rows = {(r["variant"], r["backend"]): r for r in rows_from_results([b["extra_info"] for b in run["benchmarks"]])}
    assert set(rows) == {("fp32", "onnxruntime"), ("int8-dynamic", "onnxruntime")}
    fp32, int8 = rows["fp32", "onnxruntime"], rows["int8-dynamic", "onnxruntime"]
    assert fp32["reference_backend"] == "onnxruntime"
    assert fp32["params"] == int8["params"] == params.count_params(_bert())[0]  # read off the fp32 graph
    assert int8["size_mb"] < fp32["size_mb"] and fp32["flops"] > 0
    assert 0 <= fp32["accuracy"] <= 1 and fp32["agreement"] is None and 0 <= int8["agreement"] <= 1
    ratio = int8["p50_ratio"]["16"]
    assert ratio["ci95"][0] <= ratio["ratio"] <= ratio["ci95"][1] and ratio["n"] >= 3
    assert set(fp32["aa_ratio"]) == {"latency@16", "throughput@1"} and fp32["p50_ratio"] == {}
    assert fp32["time_to_first_result_ms"] > 0 and int8["peak_rss_mb"] > 0

    report = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "harness", "report", str(out), "--out", str(report)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "EDGEBENCH_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    tables = json.loads((report / "tables.json").read_text())["tables"]
    key = next(t for t in tables if t["slug"] == "key-comparison")  # the main table holds the ORT rows
    assert [r[1] for r in key["rows"]] == ["fp32", "int8-dynamic"]
