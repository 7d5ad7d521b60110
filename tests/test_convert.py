"""BERT -> DistilBERT conversion computes the same function."""
from __future__ import annotations

import pytest
import torch
import transformers

from harness.core.errors import HarnessError
from harness.data import assets, text
from harness.models import convert

TINY = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, max_position_embeddings=64, hidden_act="gelu")


def _tiny_bert(seed: int = 0) -> transformers.BertModel:
    torch.manual_seed(seed)
    model = transformers.BertModel(transformers.BertConfig(**TINY)).eval()
    with torch.no_grad():  # default init leaves LayerNorms at 1/0 and biases at 0: make them count
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _converted(bert: transformers.BertModel) -> transformers.DistilBertModel:
    config = convert.distilbert_config_from_bert(bert.config.to_dict())
    model = transformers.DistilBertModel(config).eval()
    state = convert.bert_to_distilbert_state_dict(bert.state_dict(), config.n_layers, prefix="")
    model.load_state_dict(state, strict=True)
    return model


def _max_diff_unmasked(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """Max |a - b| over real tokens only: padded positions are garbage in both models."""
    return (a - b)[mask.bool()].abs().max().item()


def test_tiny_random_bert_matches():
    bert = _tiny_bert()
    distil = _converted(bert)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, TINY["vocab_size"], (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0
    with torch.no_grad():
        want = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        got = distil(input_ids=ids, attention_mask=mask).last_hidden_state
    assert got.shape == want.shape == (3, 12, TINY["hidden_size"])
    assert _max_diff_unmasked(want, got, mask) < 1e-5


def test_state_dict_accepts_bert_prefix_and_reports_missing():
    sd = _tiny_bert().state_dict()
    plain = convert.bert_to_distilbert_state_dict(sd, 2)
    prefixed = convert.bert_to_distilbert_state_dict({f"bert.{k}": v for k, v in sd.items()}, 2)
    assert plain.keys() == prefixed.keys()
    assert all(k.startswith("distilbert.") for k in plain)
    assert all(torch.equal(plain[k], prefixed[k]) for k in plain)

    broken = {k: v for k, v in sd.items() if "layer.1.intermediate" not in k}
    with pytest.raises(HarnessError, match=r"missing 2 key\(s\).*encoder.layer.1.intermediate.dense"):
        convert.bert_to_distilbert_state_dict(broken, 2)
    with pytest.raises(HarnessError, match=r"unexpected key\(s\).*encoder.layer.1"):
        convert.bert_to_distilbert_state_dict(sd, 1)


def test_config_checks():
    config = convert.distilbert_config_from_bert(
        {**TINY, "model_type": "bert", "layer_norm_eps": 1e-6, "hidden_dropout_prob": 0.0})
    assert (config.dim, config.n_layers, config.n_heads, config.hidden_dim, config.vocab_size) == \
        (32, 2, 4, 64, 100)
    assert config.dropout == 0.0 and config.activation == "gelu" and config.num_labels == 2
    with pytest.raises(HarnessError, match="hidden_act 'relu' is not 'gelu'"):
        convert.distilbert_config_from_bert({**TINY, "hidden_act": "relu"})
    with pytest.raises(HarnessError, match="not divisible"):
        convert.distilbert_config_from_bert({**TINY, "num_attention_heads": 5})
    with pytest.raises(HarnessError, match="position_embedding_type"):
        convert.distilbert_config_from_bert({**TINY, "position_embedding_type": "relative_key"})


def test_real_minilm_matches_bert():
    """all-MiniLM-L6-v2 from the asset (missing -> HarnessError with the setup command)."""
    folder = assets.asset_dir("minilm-l6")
    bert = transformers.BertModel.from_pretrained(folder).eval()
    model = convert.load_minilm_as_distilbert(seed=0)
    assert isinstance(model, transformers.DistilBertForSequenceClassification) and not model.training
    c = model.config
    assert (c.n_layers, c.dim, c.n_heads, c.hidden_dim, c.vocab_size) == (6, 384, 12, 1536, 30522)

    tok = text.load_tokenizer()
    sentences = ["A gripping, beautifully shot film.",
                 "The plot made no sense and the acting was wooden; I left early.",
                 "meh"]
    enc = text.encode(tok, sentences)
    assert (enc["attention_mask"] == 0).any()  # padding is exercised
    with torch.no_grad():
        want = bert(**enc).last_hidden_state
        got = model.distilbert(**enc).last_hidden_state
    assert _max_diff_unmasked(want, got, enc["attention_mask"]) < 1e-4


def test_head_init_is_seeded():
    a = convert.load_minilm_as_distilbert(seed=3)
    b = convert.load_minilm_as_distilbert(seed=3)
    assert torch.equal(a.classifier.weight, b.classifier.weight)
    assert torch.equal(a.pre_classifier.weight, b.pre_classifier.weight)


def test_minilm_l3_onnx_conversion_matches_onnx_runtime():
    """paraphrase-MiniLM-L3-v2: the converted encoder vs ONNX Runtime on the original file (output 2,
    token embeddings).  Uses the fetched asset (``make test`` fetches it first; a missing one is
    our one-line HarnessError naming the set-up command, so this test fails rather than skips)."""
    import onnxruntime as ort

    model = convert.load_minilm_l3_as_distilbert(seed=0)
    c = model.config
    assert (c.n_layers, c.dim, c.n_heads, c.hidden_dim, c.vocab_size) == (3, 384, 12, 1536, 30522)
    enc = text.encode(text.load_tokenizer(), ["A gripping, beautifully shot film.",
                                              "The plot made no sense and the acting was wooden; I left early.",
                                              "meh"])
    assert (enc["attention_mask"] == 0).any()
    session = ort.InferenceSession(str(convert.minilm_l3_onnx_path()), providers=["CPUExecutionProvider"])
    want = session.run(None, {"input_ids": enc["input_ids"].numpy(), "attention_mask": enc["attention_mask"].numpy()})[2]
    with torch.no_grad():
        got = model.distilbert(**enc).last_hidden_state
    assert want.shape == tuple(got.shape)
    assert _max_diff_unmasked(torch.from_numpy(want), got, enc["attention_mask"]) < 1e-4


def test_onnx_without_named_bias_is_a_clear_error(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(torch.zeros(4, 4).numpy(), "onnx::MatMul_1")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "onnx::MatMul_1"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    onnx.save(helper.make_model(graph), tmp_path / "m.onnx")
    with pytest.raises(HarnessError, match="not followed by one named bias"):
        convert.onnx_bert_state_dict(tmp_path / "m.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(HarnessError, match="cannot read ONNX file"):
        convert.onnx_bert_state_dict(tmp_path / "bad.onnx")
