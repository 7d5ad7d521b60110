"""ONNX Runtime backend: export, ORT quantization, the adapter protocol, fresh-process workers."""
from __future__ import annotations

import sys

import pytest
import torch

from harness import backends
from harness.backends import onnx_export, variants
from harness.core import cpu
from harness.core.errors import HarnessError


@pytest.fixture(scope="module")
def tiny():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    torch.manual_seed(0)
    cfg = DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=4, hidden_dim=64, num_labels=2)
    return DistilBertForSequenceClassification(cfg).eval()


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny):
    """(torch_dir(variant), onnx root): variants of the tiny model saved under a temp cache."""
    root = tmp_path_factory.mktemp("cache")

    def torch_dir(variant):
        return variants.get_or_build("tiny", variant, "k", lambda: tiny, root=root / "variants", log=lambda _: None)

    return torch_dir, root / "onnx"


def _export(store, variant):
    torch_dir, root = store
    return onnx_export.get_or_export("tiny", variant, torch_dir, root=root)


@pytest.fixture
def real_inputs():
    """Real IMDB tokens: 2 full rows of 64, plus the same rows with the first padded after 40."""
    from harness.data.inputs import text_batch

    full = text_batch(2, 64)
    padded = {k: v.clone() for k, v in full.items()}
    padded["attention_mask"][0, 40:] = 0
    return full, padded


def test_u8s8_saturation_is_read_off_the_isa_flags():
    assert cpu.u8s8_saturates(["sse4_2", "avx", "avx2", "fma"], "x86_64")  # AVX2-only EPYC
    for vnni in ("avx512_vnni", "avx_vnni", "amx_int8"):
        assert not cpu.u8s8_saturates(["avx2", vnni], "x86_64")
    assert not cpu.u8s8_saturates([], "aarch64")  # ARM's int8 dot products do not go through vpmaddubsw


@pytest.mark.parametrize("reduce_range", [None, True], ids=["this-cpu's-choice", "7-bit"])
def test_ort_int8_of_worst_case_operands_matches_float(tmp_path, reduce_range, one_thread):
    """Activations that quantize to u8 255 times weights at s8 +127: each pair of products is
    64,770, past int16 -- an x86 CPU without VNNI saturates there (1,048,544 for 2,072,640 was
    measured on an AVX2-only EPYC) unless the weights are 7-bit.  The artifact's setting must give
    the float result on this CPU."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k, n = 64, 8
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "worst-case",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
        [numpy_helper.from_array(np.ones((k, n), np.float32), "w")])
    src = tmp_path / "matmul.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(src))
    quant = onnx_export.OrtQuantization() if reduce_range is None else onnx_export.OrtQuantization(reduce_range=True)
    facts = onnx_export.quantize_model(src, tmp_path / "int8.onnx", quant)
    assert facts["onnx_int8_ops"].get("MatMulInteger", 0) == 1
    import onnxruntime

    y = onnxruntime.InferenceSession(str(tmp_path / "int8.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"x": np.ones((1, k), np.float32)})[0]
    np.testing.assert_allclose(y, np.full((1, n), float(k)), rtol=0.02)  # saturation gives ~0.51 x


def test_ort_fp32_logits_match_pytorch(store, tiny, real_inputs, one_thread):
    runner = backends.get("onnxruntime").load(_export(store, "fp32"), threads=1)
    for inputs in real_inputs:
        with torch.inference_mode():
            expected = tiny(**inputs).logits
        got = runner(inputs)
        assert got.shape == expected.shape == (2, 2) and got.dtype == torch.float32
        assert (got - expected).abs().max().item() < 1e-4
    # dynamic axes: another batch size and sequence length run on the same graph
    from harness.data.inputs import text_batch

    assert runner(text_batch(3, 17)).shape == (3, 2)


def test_ort_int8_is_quantized_smaller_and_close(store, tiny, real_inputs, one_thread):
    fp32_dir, int8_dir = _export(store, "fp32"), _export(store, "int8-dynamic")
    meta = onnx_export.read_meta(int8_dir)
    assert meta["quantization"]["weight_type"] == "QInt8" and meta["quantization"]["per_channel"] is False
    assert meta["quantization"]["reduce_range"] is cpu.u8s8_saturates()  # 7-bit weights only without VNNI
    assert meta["facts"]["onnx_int8_ops"].get("MatMulInteger", 0) >= 12  # 6 Linears x 2 layers at least
    assert meta["size_bytes"] < 0.5 * onnx_export.read_meta(fp32_dir)["size_bytes"]
    # made from the cached fp32 export, not a second export
    assert meta["source_sha256"] == onnx_export.read_meta(fp32_dir)["weights_sha256"]
    inputs = real_inputs[0]
    with torch.inference_mode():
        expected = tiny(**inputs).logits
    got = backends.get("onnxruntime").load(int8_dir, threads=1)(inputs)
    assert 0 < (got - expected).abs().max().item() < 0.05
    pc = onnx_export.read_meta(_export(store, "int8-dynamic-pc"))
    assert pc["quantization"]["per_channel"] is True and pc["weights_sha256"] != meta["weights_sha256"]


def test_ort_int8_static_is_qdq_calibrated_on_training_inputs_and_close(store, tiny, real_inputs, one_thread):
    torch_dir, root = store
    fp32_dir = onnx_export.get_or_export("tiny-random", "fp32", torch_dir, root=root)
    d = onnx_export.get_or_export("tiny-random", "int8-static:calibration_size=32", torch_dir, root=root)
    meta = onnx_export.read_meta(d)
    quant = meta["quantization"]
    assert quant["method"] == "quantize_static" and quant["quant_format"] == "QDQ"
    assert quant["calibration_split"] == "train" and quant["calibration_size"] == 32
    assert quant["activation_type"] == "QUInt8" and quant["activation_symmetric"] is False  # U8S8, see onnx_export
    assert quant["reduce_range"] is cpu.u8s8_saturates()
    assert meta["facts"]["onnx_int8_ops"]["QuantizeLinear"] >= 12  # an activation quantizer per MatMul at least
    assert meta["source_sha256"] == onnx_export.read_meta(fp32_dir)["weights_sha256"]
    assert meta["size_bytes"] < 0.5 * onnx_export.read_meta(fp32_dir)["size_bytes"]
    inputs = real_inputs[1]
    with torch.inference_mode():
        expected = tiny(**inputs).logits
    got = backends.get("onnxruntime").load(d, threads=1)(inputs)
    assert 0 < (got - expected).abs().max().item() < 0.05
    mixed = onnx_export.read_meta(onnx_export.get_or_export("tiny-random", "int8-static:calibration_size=32:preset=mixed",
                                                            torch_dir, root=root))
    assert mixed["quantization"] == quant  # the preset is NNCF's: ORT's U8S8 either way
    assert "no form of the fused Attention op" in backends.get("onnxruntime-fused").unsupported("int8-static")
    with pytest.raises(HarnessError, match="no form of the fused Attention op"):
        onnx_export.get_or_export("tiny-random", "int8-static", torch_dir, root=root, fusion=onnx_export.OrtFusion())


def test_ort_int8_static_refuses_a_calibration_set_holding_an_evaluation_example(store, monkeypatch):
    from harness.backends import calibration
    from harness.models.tasks import TextTask

    torch_dir, root = store
    first = calibration.calibration_feeds("tiny-random", 8).feeds[3]["input_ids"][0].tobytes()
    monkeypatch.setattr(TextTask, "eval_token_rows", lambda self, eval_set: {first})
    with pytest.raises(HarnessError, match="1 of the 8 calibration sequences of profile tiny-random are examples"):
        onnx_export.get_or_export("tiny-random", "int8-static:calibration_size=8", torch_dir, root=root)
    assert not list(root.glob("tiny-random/int8-static:calibration_size=8*"))  # nothing half-written left behind


def test_plan_maps_variants_to_export_then_ort_quantization():
    assert onnx_export.plan("fp32") == ("fp32", None)
    src, quant = onnx_export.plan("int8-dynamic-pc")
    assert src == "fp32" and quant.per_channel
    assert onnx_export.plan("magnitude-global@0.5") == ("magnitude-global@0.5", None)
    src, quant = onnx_export.plan("heads-grad@0.2+int8")
    assert src == "heads-grad@0.2" and not quant.per_channel
    with pytest.raises(HarnessError, match="cannot run on onnxruntime.*supported path: export the fp32"):
        onnx_export.plan("int8-dynamic@torchao")
    assert "supported path" in backends.get("onnxruntime").unsupported("int8-dynamic@torchao")
    assert backends.get("onnxruntime").unsupported("int8-dynamic") is None
    # ":field=value" options map too, or are refused when ORT has no equivalent
    assert onnx_export.plan("int8-dynamic:per_channel=true")[1].per_channel
    with pytest.raises(HarnessError, match="no ORT quantize_dynamic equivalent"):
        onnx_export.plan("int8-dynamic:include_classifier=false")


def test_exporting_a_torch_quantized_variant_names_the_supported_path(store, tmp_path):
    torch_dir, _ = store
    model, _ = variants.load_variant(torch_dir("int8-dynamic"))
    with pytest.raises(HarnessError, match=r"torch-quantized modules .*cannot export: export the fp32 "
                                           r"\(or pruned fp32\) variant and quantize it with ONNX Runtime"):
        onnx_export.export_model(model, tmp_path / "m.onnx", variant="int8-dynamic")
    assert not (tmp_path / "m.onnx").exists()


def test_an_onnx_file_failing_the_checker_is_a_clear_error(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    # A node reading an input nobody defines: well-formed protobuf, invalid graph.
    node = helper.make_node("Relu", ["undefined"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    bad = tmp_path / "bad" / "model.onnx"
    bad.parent.mkdir()
    onnx.save(helper.make_model(graph), str(bad))
    with pytest.raises(HarnessError, match=r"model.onnx fails onnx.checker .*delete .*bad to re-export it"):
        onnx_export.check_onnx(bad)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf at all")
    with pytest.raises(HarnessError, match="fails onnx.checker"):
        onnx_export.check_onnx(garbage)


def test_a_corrupt_cached_export_is_rebuilt(store):
    d = _export(store, "fp32")
    model = d / onnx_export.MODEL_FILE
    good = model.read_bytes()
    with pytest.raises(HarnessError, match="has sha256"):
        model.write_bytes(good[:-10])
        onnx_export.read_meta(d)
    assert _export(store, "fp32") == d
    assert model.read_bytes() == good


def test_missing_onnxruntime_is_a_clear_error(monkeypatch, store):
    d = _export(store, "fp32")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(HarnessError, match="onnxruntime is not installed: pip install .* or run the suite "
                                           "with --backends torch"):
        backends.get("onnxruntime").load(d, threads=1)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(HarnessError, match="the onnx package is not installed"):
        onnx_export.check_onnx(d / onnx_export.MODEL_FILE)


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(HarnessError, match="unknown backend 'tvm'; known backends: torch, onnxruntime"):
        backends.get("tvm")


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_adapter_protocol(store, backend, real_inputs, one_thread):
    """prepare -> load -> run a batch -> logits; size, threads and session info for the results."""
    from harness.models.inference import predict_logits

    torch_dir, root = store
    adapter = backends.get(backend)
    if backend == "torch":
        directory = adapter.prepare("tiny", "int8-dynamic", torch_dir)
    else:
        directory = onnx_export.get_or_export("tiny", "int8-dynamic", torch_dir, root=root)
    runner = adapter.load(directory, threads=1)
    assert runner.backend == backend and runner.threads == 1
    assert runner.size_bytes == (directory / runner.weights_file).stat().st_size > 0
    logits = runner(real_inputs[0])
    assert logits.shape == (2, 2) and logits.dtype == torch.float32
    info = runner.session_info()
    assert info["intra_op_threads"] == 1 and info["runtime"].startswith(backend)
    if backend == "onnxruntime":
        assert info["providers"] == ["CPUExecutionProvider"]
        assert info["graph_optimization_level"] == "ORT_ENABLE_ALL" and info["opset"] == onnx_export.OPSET
        assert adapter.source_variant("int8-dynamic") == "fp32"
    # quality code takes the runner: same logits as running it directly
    ids, mask = real_inputs[1]["input_ids"], real_inputs[1]["attention_mask"]
    batches = [(ids, mask, torch.zeros(2, dtype=torch.int64))]
    assert torch.equal(predict_logits(runner, batches), runner({"input_ids": ids, "attention_mask": mask}))


def test_fresh_process_workers_load_through_the_ort_adapter_without_torch(store, tmp_path):
    import numpy as np

    from harness.data.inputs import text_batch
    from harness.measure import cold_start
    from harness.measure.fresh import run_worker

    batch = text_batch(1, 32)
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, **{k: v.numpy() for k, v in batch.items()})
    d = _export(store, "int8-dynamic")
    result = run_worker("cold-start", d, inputs, threads=1, backend="onnxruntime")
    assert set(cold_start.FIELDS) <= set(result)
    assert result["load_ms"] > 0 and result["first_forward_ms"] > 0
    # an ORT deployment does not ship torch: neither does its measured process
    assert result["torch_imported"] is False
    mem = run_worker("memory", d, inputs, threads=1, backend="onnxruntime")
    assert mem["peak_rss_delta_mb"] > 0
    # the torch worker cannot read an ONNX folder: the backend really selects the loader
    from harness.measure.fresh import MeasurementError

    torch.save(batch, tmp_path / "inputs.pt")
    with pytest.raises(MeasurementError, match="not a saved variant"):
        run_worker("cold-start", d, tmp_path / "inputs.pt", threads=1, backend="torch")


def test_the_suite_skips_a_variant_ort_cannot_run_with_the_reason():
    import subprocess

    from harness.core.paths import ROOT

    proc = subprocess.run([sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider", "-rs",
                           "--profiles", "tiny-random", "--variants", "int8-dynamic@torchao",
                           "--backends", "onnxruntime", "-k", "static or latency"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-2000:]
    assert "3 skipped" in out  # static + latency at seq 16 and 128
    assert "variant 'int8-dynamic@torchao' cannot run on onnxruntime" in out and "supported path" in out


def test_a_preoptimized_artifact_loads_with_optimisations_off_and_same_logits(store, real_inputs, one_thread):
    d = _export(store, "fp32")
    adapter = backends.get("onnxruntime")
    pre = adapter.cold_start_cases(d)["preoptimized"]
    assert pre != d and pre.name.endswith(onnx_export.PREOPTIMIZED_SUFFIX)
    meta = onnx_export.read_meta(pre)
    assert meta["preoptimized"] is True and meta["weights_sha256"] != onnx_export.read_meta(d)["weights_sha256"]
    runner, base = adapter.load(pre, threads=1), adapter.load(d, threads=1)
    assert runner.session_info()["graph_optimization_level"] == "ORT_DISABLE_ALL"
    assert base.session_info()["graph_optimization_level"] == "ORT_ENABLE_ALL"
    torch.testing.assert_close(runner(real_inputs[0]), base(real_inputs[0]), rtol=1e-4, atol=1e-5)
    # cached: a second call reuses the folder; a corrupted file is rebuilt, not loaded
    stamp = (pre / onnx_export.MODEL_FILE).stat().st_mtime_ns
    assert adapter.cold_start_cases(d)["preoptimized"] == pre
    assert (pre / onnx_export.MODEL_FILE).stat().st_mtime_ns == stamp
    (pre / onnx_export.MODEL_FILE).write_bytes(b"garbage")
    rebuilt = adapter.cold_start_cases(d)["preoptimized"]
    assert (rebuilt / onnx_export.MODEL_FILE).read_bytes() != b"garbage"
    assert onnx_export.read_meta(rebuilt)["preoptimized"] is True  # checksum verified


def test_an_ort_artifact_swapped_after_scoring_fails_the_integrity_check(store, tmp_path):
    import shutil

    from harness.measure import integrity

    d, other = _export(store, "fp32"), _export(store, "int8-dynamic")
    copy = tmp_path / "artifact"
    shutil.copytree(d, copy)
    adapter = backends.get("onnxruntime")
    scored = adapter.load(copy, threads=1)  # verified: the bytes the session got are the hashed ones
    shutil.copy(other / onnx_export.MODEL_FILE, copy / onnx_export.MODEL_FILE)  # swapped after scoring
    timed = adapter.load(copy, threads=1, verify=False, fingerprint=True)  # a timing worker's load
    assert integrity.state_sha256(timed) != integrity.state_sha256(scored)
    with pytest.raises(integrity.IntegrityError, match="the timed weights .* are not the ones loaded for evaluation"):
        integrity.check_timed(integrity.IntegrityLedger(), ("tiny", "fp32"), scored, [], None, [],
                              [integrity.state_sha256(timed)], rounds=1, seq_len=128)
    # a runner loaded unhashed has nothing to be checked by: an error, never a pass
    with pytest.raises(integrity.IntegrityError, match="without fingerprinting"):
        integrity.state_sha256(adapter.load(copy, threads=1, verify=False))


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_a_head_pruned_bert_family_model_exports_and_runs_on_ort_as_in_torch(tmp_path, family, one_thread):
    """Issue 18: a user's BERT or RoBERTa with heads physically removed (a headless layer included)
    exports through the ORT path and gives PyTorch's logits on a padded batch."""
    import transformers

    from compressors.heads import prune_heads

    kw = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              num_labels=3)
    torch.manual_seed(0)
    model = (transformers.RobertaForSequenceClassification(transformers.RobertaConfig(
        **kw, pad_token_id=0, max_position_embeddings=514)) if family == "roberta" else
        transformers.BertForSequenceClassification(transformers.BertConfig(**kw))).eval()
    pruned = prune_heads(model, [[1, 3], []])  # 2 heads left in layer 0, none in layer 1
    onnx_export.export_model(pruned, tmp_path / "m.onnx", "heads-grad@0.5")
    ids, mask = onnx_export.check_batch(30522, padded=True)
    with torch.inference_mode():
        ref = pruned(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
    assert onnx_export.logit_gap(onnx_export.ort_logits(tmp_path / "m.onnx", ids, mask), ref) < onnx_export.TOLERANCE
