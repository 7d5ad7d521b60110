"""The openvino backend: IR converted from the ONNX export, checked against ORT, loaded from hashed
bytes with pinned compile properties; fresh workers without torch; clear errors."""
from __future__ import annotations

import sys

import pytest
import torch

from harness import backends
from harness.backends import onnx_export, openvino, variants
from harness.core.errors import HarnessError


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """torch_dir(variant) of a tiny DistilBERT and the cache root (onnx/ and openvino/ under it)."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    torch.manual_seed(0)
    model = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=4,
                                                                 hidden_dim=64)).eval()
    root = tmp_path_factory.mktemp("cache")

    def torch_dir(variant):
        return variants.get_or_build("tiny", variant, "k", lambda: model, root=root / "variants", log=lambda _: None)

    return torch_dir, root


@pytest.fixture
def ov_cache(store, monkeypatch):
    """The adapter's caches (ONNX export and IR) inside this module's temp root."""
    monkeypatch.setattr(onnx_export, "cache_dir", lambda: store[1])
    monkeypatch.setattr(openvino, "cache_dir", lambda: store[1])
    return store


@pytest.fixture
def padded():
    from harness.data.inputs import text_batch

    batch = text_batch(2, 48)
    batch["attention_mask"][0, 30:] = 0
    return batch


def test_the_ir_runs_what_pytorch_runs_with_pinned_properties(ov_cache, padded, one_thread):
    torch_dir, root = ov_cache
    adapter = backends.get("openvino")
    d = adapter.prepare("tiny", "fp32", torch_dir)
    assert d.parent.parent == root / "openvino" and (d / "model.bin").stat().st_size > 0
    meta = openvino.read_meta(d)
    source = onnx_export.read_meta(onnx_export.get_or_export("tiny", "fp32", torch_dir, log=lambda _: None))
    assert meta["source_sha256"] == source["weights_sha256"] and meta["compress_to_fp16"] is False
    assert meta["check_max_rel_diff"] <= onnx_export.TOLERANCE
    runner = adapter.load(d, threads=1)
    assert runner.backend == "openvino" and runner.loaded_sha256 == meta["weights_sha256"]
    model, _ = variants.load_variant(torch_dir("fp32"))
    with torch.inference_mode():
        expected = model(**padded).logits
    torch.testing.assert_close(runner(padded), expected, rtol=1e-4, atol=1e-5)
    info = runner.session_info()
    assert info["runtime"].startswith("openvino") and info["intra_op_threads"] == 1
    assert info["inference_num_threads"] == "1" and info["num_streams"] == "1"
    assert info["performance_hint"] == "LATENCY" and info["inference_precision_hint"] == "<Type: 'float32'>"
    # cached: a second prepare reuses the folder; a corrupted weights file is re-converted, not loaded
    assert adapter.prepare("tiny", "fp32", torch_dir) == d
    (d / "model.bin").write_bytes(b"garbage")
    with pytest.raises(HarnessError, match="does not match the sha256"):
        adapter.load(d, threads=1)
    assert openvino.read_meta(adapter.prepare("tiny", "fp32", torch_dir))["weights_sha256"] == meta["weights_sha256"]


def test_a_conversion_that_changes_the_logits_fails_the_build(ov_cache, monkeypatch):
    torch_dir, _ = ov_cache
    real = openvino.OvRunner._run
    monkeypatch.setattr(openvino.OvRunner, "_run", lambda self, feeds: real(self, feeds) + 0.01)
    with pytest.raises(HarnessError, match="OpenVINO IR of tiny/magnitude-global@0.5 gives logits .* away from"):
        backends.get("openvino").prepare("tiny", "magnitude-global@0.5", torch_dir)


def test_int8_and_image_profiles_are_skipped_with_the_reason():
    adapter = backends.get("openvino")
    assert adapter.unsupported("fp32") is None and adapter.unsupported("magnitude-global@0.5") is None
    assert "int8-static (NNCF, calibrated)" in adapter.unsupported("int8-dynamic")
    assert "int8-dynamic on onnxruntime" in adapter.unsupported("int8-dynamic")
    assert "--backends torch" in adapter.unsupported("fp32", task="image-classification")
    assert "cannot run on openvino" in adapter.unsupported("int8-dynamic@torchao")


def test_fresh_workers_load_the_ir_without_torch(ov_cache, tmp_path):
    import numpy as np

    from harness.data.inputs import text_batch
    from harness.measure.fresh import run_worker

    torch_dir, _ = ov_cache
    d = backends.get("openvino").prepare("tiny", "fp32", torch_dir)
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, **{k: v.numpy() for k, v in text_batch(1, 32).items()})
    result = run_worker("cold-start", d, inputs, threads=1, backend="openvino")
    assert result["torch_imported"] is False and result["load_ms"] > 0 and result["first_forward_ms"] > 0


def test_missing_openvino_is_one_line_naming_the_set_up(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.raises(HarnessError, match="openvino is not installed: run `make install`"):
        backends.get("openvino").check_install()


def test_int8_static_is_nncf_quantized_on_training_inputs_smaller_and_close(ov_cache, padded, one_thread):
    torch_dir, root = ov_cache
    adapter = backends.get("openvino")
    assert adapter.source_variant("int8-static") == "fp32"
    fp32_dir = adapter.prepare("tiny-random", "fp32", torch_dir)
    d = adapter.prepare("tiny-random", "int8-static:calibration_size=32", torch_dir)
    meta = openvino.read_meta(d)
    quant = meta["quantization"]
    assert quant["calibration_split"] == "train" and quant["calibration_size"] == 32
    assert quant["fake_quantize_ops"] > 0 and quant["method"].startswith("nncf.quantize")
    assert meta["source_sha256"] == openvino.read_meta(fp32_dir)["weights_sha256"]
    assert meta["size_bytes"] < 0.5 * openvino.read_meta(fp32_dir)["size_bytes"]  # INT8 weights on disk
    runner = adapter.load(d, threads=1)
    expected = adapter.load(fp32_dir, threads=1)(padded)
    assert 0 < (runner(padded) - expected).abs().max().item() < 0.05
    assert runner.session_info()["quantization"]["calibration_split"] == "train"


def test_calibration_refuses_evaluation_examples(monkeypatch):
    from harness.backends import calibration
    from harness.models.tasks import TextTask

    calib = calibration.calibration_feeds("tiny-random", 4)
    assert len(calib.feeds) == 4 and calib.facts()["calibration_split"] == "train"
    calibration.check_held_out(calib)  # the real evaluation sets share no sequence with it
    first = calib.feeds[0]["input_ids"][0].tobytes()
    monkeypatch.setattr(TextTask, "eval_token_rows", lambda self, eval_set: {first})
    with pytest.raises(HarnessError, match="1 of the 4 calibration sequences of profile tiny-random are examples of "
                                           "its evaluation set imdb-test"):
        calibration.check_held_out(calib)
    with pytest.raises(HarnessError, match="calibration_size must be at least 1"):
        openvino.plan("int8-static:calibration_size=0")


def test_int8_static_runs_on_the_runtimes_only_and_names_them(store):
    import compressors

    model, _ = variants.load_variant(store[0]("fp32"))
    with pytest.raises(compressors.CompressionError, match="quantized by the deployment runtime.*--backends openvino"):
        compressors.build("int8-static", model)
    assert "--backends onnxruntime or openvino" in backends.get("torch").unsupported("int8-static")
    assert "--backends onnxruntime or openvino" in backends.get("torch").unsupported("magnitude-global@0.5+int8-static")
    assert backends.get("torch").unsupported("magnitude-global@0.5+int8") is None
    assert backends.get("onnxruntime").unsupported("int8-static") is None
    assert "must be the last one" in backends.get("onnxruntime").unsupported("int8-static+magnitude-global@0.5")
    assert backends.get("openvino").unsupported("magnitude-global@0.5+int8-static") is None
    assert backends.get("openvino").source_variant("magnitude-global@0.5+int8-static") == "magnitude-global@0.5"


def test_the_suite_times_openvino_cells_beside_torch_and_skips_what_it_cannot_run(tmp_path, suite_log):
    import json
    import subprocess

    from harness.core.paths import ROOT

    out = tmp_path / "run.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider", "-rs",
                           "--profiles", "tiny-random", "--variants", "fp32,int8-dynamic,int8-static:calibration_size=16",
                           "--backends", "torch,openvino", "--threads", "1", "--seq-lengths", "32", "--batch-sizes", "1",
                           "--bench-seconds", "0.1", "--min-rounds", "3", "--blocks", "3", "--block-seconds", "0.05",
                           "--timing-cap-s", "1", "--processes", "1", "-k", "static or latency or quality",
                           f"--benchmark-json={out}"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, suite_log(proc)
    assert "'int8-dynamic' is dynamic INT8, which OpenVINO has no equivalent of here" in proc.stdout
    assert "stage 'int8-static' of 'int8-static:calibration_size=16' is carried out by a deployment runtime" in proc.stdout
    latency = {(b["extra_info"]["variant"], b["extra_info"]["backend"]): b["extra_info"]
               for b in json.loads(out.read_text())["benchmarks"] if b["extra_info"]["metric"] == "latency"}
    assert set(latency) == {("fp32", "torch"), ("int8-dynamic", "torch"), ("fp32", "openvino"),
                            ("int8-static:calibration_size=16", "openvino")}
    ov = latency[("int8-static:calibration_size=16", "openvino")]
    assert ov["backend_session"]["inference_precision_hint"] == "<Type: 'float32'>" and ov["p50_ms"] > 0
    assert ov["backend_session"]["quantization"]["calibration_split"] == "train"
    assert ov["campaign_id"] == latency[("fp32", "torch")]["campaign_id"]  # timed in the same campaign as fp32
