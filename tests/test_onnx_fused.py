"""The onnxruntime-fused backend: ORT's transformer optimizer on an eager-attention export, its INT8
stage on the fused graph, and the logit check that refuses a fusion which changes the maths."""
from __future__ import annotations

import pytest
import torch

from harness import backends
from harness.backends import onnx_export, variants
from harness.core.errors import HarnessError


def _tiny(kind: str):
    from transformers import (BertConfig, BertForSequenceClassification, DistilBertConfig,
                              DistilBertForSequenceClassification)

    torch.manual_seed(0)
    if kind == "bert":
        return BertForSequenceClassification(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                                                        num_attention_heads=4, intermediate_size=64)).eval()
    return DistilBertForSequenceClassification(DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=4,
                                                                hidden_dim=64)).eval()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """torch_dir(variant) for the tiny DistilBERT, and the ONNX root, under a temp cache."""
    root = tmp_path_factory.mktemp("cache")
    model = _tiny("distilbert")

    def torch_dir(variant):
        return variants.get_or_build("tiny", variant, "k", lambda: model, root=root / "variants", log=lambda _: None)

    return torch_dir, root / "onnx"


def _fused(store, variant):
    torch_dir, root = store
    return onnx_export.get_or_export("tiny", variant, torch_dir, root=root, log=lambda _: None,
                                     fusion=onnx_export.OrtFusion())


@pytest.fixture
def padded():
    """Real IMDB tokens, 2 rows of 48, the first padded after 30."""
    from harness.data.inputs import text_batch

    batch = text_batch(2, 48)
    batch["attention_mask"][0, 30:] = 0
    return batch


def _logits(model, batch):
    with torch.inference_mode():
        return model(**batch).logits


@pytest.mark.parametrize("kind", ["distilbert", "bert"])
def test_every_layer_is_fused_and_the_logits_match_pytorch(kind, tmp_path, padded, one_thread):
    model = _tiny(kind)
    facts = onnx_export.fuse_model(model, tmp_path / "model.onnx", onnx_export.OrtFusion(), variant="fp32")
    assert facts["attention_fused"] and (facts["num_heads"], facts["hidden_size"]) == (4, 32)
    # 2 layers: one Attention and one bias-GELU each, two residual LayerNorms each, one embedding LayerNorm
    assert facts["fused_ops"] == {"EmbedLayerNormalization": 1, "Attention": 2, "BiasGelu": 2,
                                  "SkipLayerNormalization": 4}
    ops = {n.op_type for n in onnx_export.import_onnx().load(str(tmp_path / "model.onnx")).graph.node}
    assert "Softmax" not in ops and "Attention" in ops  # the attention really is one node now
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {k: v.numpy() for k, v in padded.items()})[0]
    torch.testing.assert_close(torch.from_numpy(got), _logits(model, padded), rtol=1e-4, atol=1e-5)


def test_heads_pruned_unevenly_keep_attention_unfused_and_exact(tmp_path, padded, one_thread):
    from compressors.heads import prune_heads

    model = prune_heads(_tiny("distilbert"), [[2, 3], [0, 1, 2, 3]])  # 2 heads in layer 0, 4 in layer 1
    assert onnx_export.attention_shape(model) is None
    facts = onnx_export.fuse_model(model, tmp_path / "model.onnx", onnx_export.OrtFusion())
    assert not facts["attention_fused"] and "Attention" not in facts["fused_ops"]
    assert facts["fused_ops"]["SkipLayerNormalization"] == 4  # the other fusions still apply
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {k: v.numpy() for k, v in padded.items()})[0]
    torch.testing.assert_close(torch.from_numpy(got), _logits(model, padded), rtol=1e-4, atol=1e-5)
    even = prune_heads(_tiny("distilbert"), [[1, 2, 3], [0, 1, 3]])
    assert onnx_export.attention_shape(even) == (3, 24)
    facts = onnx_export.fuse_model(even, tmp_path / "even.onnx", onnx_export.OrtFusion())
    assert facts["attention_fused"] and facts["fused_ops"]["Attention"] == 2
    assert onnx_export.attention_shape(prune_heads(_tiny("distilbert"), [[], [0]])) is None  # a headless layer


def test_a_fusion_that_changes_the_logits_fails_the_build(tmp_path, monkeypatch):
    from onnx import numpy_helper
    from onnxruntime.transformers import optimizer

    real = optimizer.optimize_model

    def wrong_fusion(*args, **kwargs):  # a fused graph whose attention weights came out scaled
        model = real(*args, **kwargs)
        attention = next(n for n in model.model.graph.node if n.op_type == "Attention")
        weight = next(t for t in model.model.graph.initializer if t.name == attention.input[1])
        weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 3, weight.name))
        return model

    monkeypatch.setattr(optimizer, "optimize_model", wrong_fusion)
    with pytest.raises(HarnessError, match="fused ONNX graph of variant 'fp32' gives logits .* away from PyTorch's"):
        onnx_export.fuse_model(_tiny("distilbert"), tmp_path / "model.onnx", onnx_export.OrtFusion(), variant="fp32")


def test_the_fused_backend_runs_fused_int8_smaller_close_and_apart_from_the_unfused(store, padded, one_thread,
                                                                                   monkeypatch):
    torch_dir, root = store
    monkeypatch.setattr(onnx_export, "cache_dir", lambda: root.parent)  # the adapter's cache: this test's
    adapter = backends.get("onnxruntime-fused")
    fp32_dir, int8_dir = adapter.prepare("tiny", "fp32", torch_dir), adapter.prepare("tiny", "int8-dynamic", torch_dir)
    assert fp32_dir == _fused(store, "fp32")  # the adapter's artifact is the fused export
    plain = onnx_export.get_or_export("tiny", "fp32", torch_dir, root=root, log=lambda _: None)
    assert plain.parent == fp32_dir.parent and plain != fp32_dir  # its own cache entry beside the unfused one
    assert fp32_dir.name.startswith("fp32-fused-")
    meta = onnx_export.read_meta(int8_dir)
    assert meta["fusion"]["attention_fused"] and meta["source_sha256"] == onnx_export.read_meta(fp32_dir)["weights_sha256"]
    int8_ops = meta["facts"]["onnx_int8_ops"]
    assert int8_ops["QAttention"] == 2 and int8_ops["QEmbedLayerNormalization"] == 1  # embeddings INT8 too
    assert meta["size_bytes"] < 0.5 * onnx_export.read_meta(fp32_dir)["size_bytes"]
    model, _ = variants.load_variant(torch_dir("fp32"))
    expected = _logits(model, padded)
    runner = adapter.load(fp32_dir, threads=1)
    assert runner.backend == "onnxruntime-fused"
    torch.testing.assert_close(runner(padded), expected, rtol=1e-4, atol=1e-5)
    assert 0 < (adapter.load(int8_dir, threads=1)(padded) - expected).abs().max().item() < 0.05
    info = runner.session_info()
    assert info["fusion"].startswith("optimize_model(bert, opt_level 1; 4 heads): Attention 2")
    assert backends.get("onnxruntime").load(plain, threads=1).session_info()["fusion"] is None
    # the pre-optimised cold-start form applies to the fused graph too
    pre = adapter.cold_start_cases(fp32_dir)["preoptimized"]
    torch.testing.assert_close(adapter.load(pre, threads=1)(padded), expected, rtol=1e-4, atol=1e-5)


def test_an_onnx_file_profile_is_refused_with_the_backend_to_use():
    why = backends.get("onnxruntime-fused").unsupported("fp32", onnx_file=True)
    assert "measured on backend onnxruntime" in why
    assert backends.get("onnxruntime-fused").unsupported("int8-dynamic") is None
    assert "supported path" in backends.get("onnxruntime-fused").unsupported("int8-dynamic@torchao")
