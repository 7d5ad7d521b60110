"""Compressors across architecture families (issue 18): the adapters of
compressors.architecture and every compressor that uses them, on tiny random
DistilBERT, BERT (MiniLM's architecture), RoBERTa and XLM-R models: physical
head removal equals masking (eager and sdpa, a layer with no heads left),
parameter counts, save/restore, magnitude pruning, INT8, supports()."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

import compressors
from compressors import CompressionContext, CompressionError
from compressors.architecture import (
    BERT,
    DISTILBERT,
    ROBERTA,
    encoder_layers,
    family_of,
    is_head,
    linear_targets,
)
from compressors.distill import QKVCapture
from compressors.heads import (
    HeadlessAttention,
    attention_importance,
    grad_importance,
    head_mask,
    layer_kept_heads,
    prune_heads,
)
from compressors.quantize import linear_counts
from harness.backends import variants

LAYERS, HEADS, HIDDEN, FFN_DIM, LABELS, VOCAB = 2, 4, 32, 64, 3, 100
HEAD_DIM = HIDDEN // HEADS
PER_HEAD = 4 * HEAD_DIM * HIDDEN + 3 * HEAD_DIM  # Q, K, V rows (+ biases) and O columns of one head

pytestmark = pytest.mark.usefixtures("one_thread")

_BERT_LIKE = {"vocab_size": VOCAB, "hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
              "intermediate_size": FFN_DIM, "num_labels": LABELS, "initializer_range": 0.2}
# RoBERTa: pad_token_id 1 and positions from pad_token_id + 1, so max_position_embeddings >= seq + 2.
_ROBERTA_LIKE = {**_BERT_LIKE, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "max_position_embeddings": 40}


def _config(kind: str):
    import transformers as tf

    if kind == "distilbert":
        return tf.DistilBertConfig(vocab_size=VOCAB, dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS, hidden_dim=FFN_DIM,
                                   num_labels=LABELS, initializer_range=0.2)
    if kind == "bert":
        return tf.BertConfig(**_BERT_LIKE)
    return (tf.RobertaConfig if kind == "roberta" else tf.XLMRobertaConfig)(**_ROBERTA_LIKE)


MODEL_CLASSES = {
    "distilbert": "DistilBertForSequenceClassification", "bert": "BertForSequenceClassification",
    "roberta": "RobertaForSequenceClassification", "xlm-roberta": "XLMRobertaForSequenceClassification",
}
BARE_CLASSES = {"distilbert": "DistilBertModel", "bert": "BertModel", "roberta": "RobertaModel",
                "xlm-roberta": "XLMRobertaModel"}
FAMILY = {"distilbert": DISTILBERT, "bert": BERT, "roberta": ROBERTA, "xlm-roberta": ROBERTA}


def _build(kind: str, cls_name: str | None = None, seed: int = 0, default_init: bool = False) -> nn.Module:
    """A 2-layer, 4-head, 32-wide model of ``kind``, eval mode.  Unless ``default_init``: 10x the
    default init spread and non-zero Linear biases, so a head's removal moves the output well above
    float32 noise and a head-less layer's O bias matters (init leaves biases 0)."""
    import transformers as tf

    torch.manual_seed(seed)
    config = _config(kind)
    if default_init:
        config.initializer_range = 0.02
    model = getattr(tf, cls_name or MODEL_CLASSES[kind])(config).eval()
    if not default_init:
        with torch.no_grad():
            for mod in model.modules():
                if isinstance(mod, nn.Linear):
                    mod.bias.normal_(0, 0.2)
    return model


def _inputs(seq: int = 16) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, VOCAB, (2, seq), generator=g)  # above RoBERTa's special ids (pad = 1)
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _output(model: nn.Module, inputs) -> torch.Tensor:
    with torch.inference_mode():
        out = model(**inputs)
    return out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state


@pytest.fixture
def context():
    """4 batches of 4 x 12 tokens (the first row padded after 9), labels in 0..2."""
    def batches():
        g = torch.Generator().manual_seed(1)
        for _ in range(4):
            ids = torch.randint(3, VOCAB, (4, 12), generator=g)
            mask = torch.ones_like(ids)
            mask[0, 9:] = 0
            yield ids, mask, torch.tensor([0, 1, 2, 1])

    return CompressionContext(batches, seed=0)


def _masks(keep):
    return [torch.tensor([1.0 if h in k else 0.0 for h in range(HEADS)]) for k in keep]


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------
# the adapters


@pytest.mark.parametrize("kind, cls_name, prefix, head", [
    ("distilbert", None, "distilbert.transformer.layer", ["pre_classifier", "classifier"]),
    ("distilbert", "DistilBertModel", "transformer.layer", []),
    ("distilbert", "DistilBertForMaskedLM", "distilbert.transformer.layer", []),
    ("bert", None, "bert.encoder.layer", ["bert.pooler.dense", "classifier"]),
    ("bert", "BertModel", "encoder.layer", ["pooler.dense"]),
    ("roberta", None, "roberta.encoder.layer", ["classifier.dense", "classifier.out_proj"]),
    ("roberta", "RobertaModel", "encoder.layer", ["pooler.dense"]),
    ("xlm-roberta", None, "roberta.encoder.layer", ["classifier.dense", "classifier.out_proj"]),
    ("xlm-roberta", "XLMRobertaModel", "encoder.layer", ["pooler.dense"]),
])
def test_each_family_finds_its_layers_projections_and_head(kind, cls_name, prefix, head):
    model = _build(kind, cls_name)
    family = family_of(model, "t")
    assert family is FAMILY[kind]
    assert family.layers_prefix(model) == prefix
    layers = encoder_layers(model, "t")
    assert len(layers) == LAYERS and all(isinstance(b, nn.Module) for b in layers)
    assert family.head_names(model) == head
    assert family.is_classifier(model) == (cls_name is None)
    for layer in layers:
        proj = family.projections(layer)
        assert [tuple(m.weight.shape) for m in proj.values()] == [(HIDDEN, HIDDEN)] * 4
        assert family.num_heads(layer) == HEADS and family.head_size(layer) == HEAD_DIM
        assert [tuple(m.weight.shape) for _, m in family.ffn_linears(layer)] == [(FFN_DIM, HIDDEN), (HIDDEN, FFN_DIM)]
    names = [n for n, _ in linear_targets(model, "t", ("attention", "ffn"), include_classifier=False)]
    assert len(names) == 6 * LAYERS and all(n.startswith(prefix + ".") for n in names)
    assert not any(is_head(n) for n in names)
    every_linear = {n for n, m in model.named_modules() if type(m) is nn.Linear}
    assert {n for n in every_linear if is_head(n)} == set(head)
    if head:
        with_head = [n for n, _ in linear_targets(model, "t", ("ffn",), include_classifier=True)]
        assert with_head[-len(head):] == head
    else:
        with pytest.raises(CompressionError, match="include_classifier=True but .* has no float"):
            linear_targets(model, "t", ("ffn",), include_classifier=True)


def _convnext() -> nn.Module:
    from transformers import ConvNextConfig, ConvNextForImageClassification

    return ConvNextForImageClassification(ConvNextConfig(num_channels=1, num_stages=2, hidden_sizes=[8, 16], depths=[1, 1],
                                                         patch_size=2, num_labels=2))


@pytest.mark.parametrize("make, detail", [
    (lambda: nn.Sequential(nn.Linear(4, 4)), "Sequential has no such encoder layers"),
    (_convnext, "ConvNextForImageClassification is model_type 'convnext'"),
])
def test_an_unsupported_model_is_a_one_line_error_naming_what_is_supported(make, detail):
    with pytest.raises(CompressionError) as err:
        encoder_layers(make(), "magnitude-global")
    message = str(err.value)
    assert "\n" not in message and detail in message
    assert message.startswith("variant 'magnitude-global' needs a DistilBERT model or a BERT/RoBERTa/XLM-R one "
                              "(config.model_type distilbert, bert, roberta, xlm-roberta)")


def test_the_model_type_decides_not_the_class_name():
    model = _build("bert")
    model.config.model_type = "electra"  # same modules, another family: refused, not guessed
    with pytest.raises(CompressionError, match="is model_type 'electra'"):
        family_of(model, "t")


# ---------------------------------------------------------------------------
# head pruning


KINDS = ["distilbert", "bert", "roberta", "xlm-roberta"]


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
@pytest.mark.parametrize("keep", [[[0, 2], []], [[1], [0, 1, 3]], [[], [2]]])
@pytest.mark.parametrize("kind", KINDS)
def test_physically_pruned_model_equals_the_masked_model(kind, impl, keep):
    model = _build(kind)
    model.set_attn_implementation(impl)
    inputs = _inputs()
    with head_mask(model, _masks(keep)):
        masked = _output(model, inputs)
    full = _output(model, inputs)
    pruned = prune_heads(copy.deepcopy(model), keep)
    out = _output(pruned, inputs)
    assert (out - masked).abs().max() < 1e-5
    assert (out - full).abs().max() > 1e-2  # the heads really mattered
    family = family_of(pruned, "t")
    assert layer_kept_heads(pruned) == tuple(tuple(k) for k in keep)
    for layer, k in zip(encoder_layers(pruned, "t"), keep):
        assert family.num_heads(layer) == len(k)
        attn = family.attention_module(layer)
        if not k:
            assert isinstance(attn, HeadlessAttention)
            assert family.attention_linears(layer) == []  # no Q, K, V, O left to prune or quantize
        else:
            q, _, _, o = family.projections(layer).values()
            assert q.weight.shape == (len(k) * HEAD_DIM, HIDDEN) and o.weight.shape == (HIDDEN, len(k) * HEAD_DIM)
            if family is not DISTILBERT:
                assert attn.num_attention_heads == len(k) and attn.all_head_size == len(k) * HEAD_DIM
    removed = LAYERS * HEADS - sum(map(len, keep))
    assert _params(model) - _params(pruned) == removed * PER_HEAD


@pytest.mark.parametrize("cls_name", ["BertModel", "RobertaModel", "DistilBertModel"])
def test_a_bare_encoder_prunes_like_a_classifier(cls_name):
    kind = {"BertModel": "bert", "RobertaModel": "roberta", "DistilBertModel": "distilbert"}[cls_name]
    model, inputs, keep = _build(kind, cls_name), _inputs(), [[3], []]
    with head_mask(model, _masks(keep)):
        masked = _output(model, inputs)
    assert (_output(prune_heads(copy.deepcopy(model), keep), inputs) - masked).abs().max() < 1e-5


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_grad_importance_is_zero_for_a_head_that_outputs_nothing(kind, context):
    model = _build(kind)
    value = family_of(model, "t").projections(encoder_layers(model, "t")[1])["v"]
    with torch.no_grad():
        value.weight[2 * HEAD_DIM:3 * HEAD_DIM] = 0
        value.bias[2 * HEAD_DIM:3 * HEAD_DIM] = 0
    scores = grad_importance(model, list(context.train_batches()), normalize_by_layer=False)
    assert scores[1][2] == 0
    assert all(float(s[h]) > 0 for i, s in enumerate(scores) for h in range(HEADS) if (i, h) != (1, 2))
    assert not any(p.grad is not None for p in model.parameters())
    pruned = compressors.build("heads-grad@0.125", model, context=context)  # 1 of 8 heads
    assert layer_kept_heads(pruned) == ((0, 1, 2, 3), (0, 1, 3))


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_attention_importance_reads_the_eager_probabilities_and_switches_back(kind):
    model = _build(kind)
    inputs = _inputs()
    model.set_attn_implementation("eager")
    with torch.inference_mode():
        probs = model(**inputs, output_attentions=True).attentions
    model.set_attn_implementation("sdpa")
    batch = (inputs["input_ids"], inputs["attention_mask"], torch.tensor([0, 1]))
    scores = attention_importance(model, [batch], "max")
    assert model.config._attn_implementation == "sdpa"
    queries = inputs["attention_mask"].float()[:, None, :]
    for s, p in zip(scores, probs):
        assert torch.allclose(s, (p.amax(-1) * queries).sum(dim=(0, 2)) / queries.sum())


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_attention_importance_skips_a_layer_without_heads(kind, context):
    model = prune_heads(_build(kind), [[], [0, 1, 2, 3]])
    scores = attention_importance(model, list(context.train_batches()), "entropy")
    assert [s.shape for s in scores] == [(0,), (HEADS,)] and bool((scores[1] < 0).all())


@pytest.mark.parametrize("name", ["heads-grad@0.25", "heads-attn@0.5", "heads-grad@0.25+int8",
                                  "heads-attn@0.5+ffn-l1@0.5+int8"])
@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_head_pruned_variants_save_and_restore_from_a_skeleton(tmp_path, kind, name, context):
    model = _build(kind)
    built = compressors.build(name, model, context=context)
    kept = layer_kept_heads(built)
    assert sum(map(len, kept)) == LAYERS * HEADS - round(float(name.split("@")[1].split("+")[0]) * LAYERS * HEADS)
    info = variants.save_variant(built, tmp_path, profile="tiny", variant=name, source_key="k")
    loaded, info2 = variants.load_variant(tmp_path)
    assert info2 == info and type(loaded) is type(model)
    assert loaded.config.num_attention_heads == HEADS  # the skeleton's config is the unpruned one
    assert layer_kept_heads(loaded) == kept
    inputs = _inputs()
    assert torch.equal(_output(built, inputs), _output(loaded, inputs))
    assert info.facts["heads_kept"] == sum(map(len, kept)) and info.facts["heads_total"] == LAYERS * HEADS
    if "int8" in name:
        assert linear_counts(loaded)[0] == linear_counts(loaded)[1] > 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_layer_without_heads_round_trips_through_the_variant_config(tmp_path, kind):
    model = _build(kind)
    name = "heads-grad@0.5"
    built = compressors.build(name, model, kept_heads=[[], [0, 1, 2, 3]])  # no data: kept heads given
    config = compressors.get(name).resolved_config(built, compressors.make_config(name))
    assert config.kept_heads == ((), (0, 1, 2, 3))
    from transformers.initialization import no_init_weights

    with no_init_weights():
        skeleton = type(model)(model.config)
    restored = compressors.get(name).restore(skeleton, type(config).from_dict(config.to_dict()))
    restored.load_state_dict(built.state_dict(), strict=True)
    inputs = _inputs()
    assert torch.equal(_output(built, inputs), _output(restored.eval(), inputs))
    with head_mask(model, _masks([[], [0, 1, 2, 3]])):
        masked = _output(model, inputs)
    assert (_output(restored, inputs) - masked).abs().max() < 1e-5
    facts = compressors.get(name).describe(built, config)
    assert facts["layers_without_heads"] == 1 and facts["heads_per_layer"] == "0,4"
    variants.save_variant(built, tmp_path, profile="tiny", variant=name, source_key="k")
    assert torch.equal(_output(variants.load_variant(tmp_path)[0], inputs), _output(built, inputs))


def test_heads_attn_prunes_a_bare_encoder_from_data(context):
    pruned = compressors.build("heads-attn@0.25", _build("bert", "BertModel"), context=context)
    assert sum(map(len, layer_kept_heads(pruned))) == 6


def test_qkv_capture_reads_bert_projections():
    model, inputs = _build("bert"), _inputs()
    query = model.bert.encoder.layer[0].attention.self.query
    with QKVCapture(model, 0) as cap, torch.no_grad():
        model(**inputs)
    emb = model.bert.embeddings(input_ids=inputs["input_ids"])
    assert torch.allclose(cap.out["q"], query(emb), atol=1e-5) and not query._forward_hooks
    with pytest.raises(CompressionError, match="layer 0 has no attention heads left"):
        QKVCapture(prune_heads(model, [[], [0]]), 0)


# ---------------------------------------------------------------------------
# unstructured magnitude pruning and INT8


def _encoder_weights(model) -> dict[str, torch.Tensor]:
    family = family_of(model, "t")
    prefix = family.layers_prefix(model)
    return {f"{prefix}.{i}.{p}": m.weight for i, b in enumerate(encoder_layers(model, "t"))
            for p, m in family.attention_linears(b) + family.ffn_linears(b)}


@pytest.mark.parametrize("variant", ["magnitude-global", "magnitude-layerwise"])
@pytest.mark.parametrize("kind", ["bert", "roberta", "xlm-roberta"])
def test_magnitude_pruning_reaches_the_sparsity_on_encoder_linears_only(kind, variant):
    model = _build(kind)
    pruned = compressors.build(f"{variant}@0.6", model)
    weights = _encoder_weights(pruned)
    assert len(weights) == 6 * LAYERS
    if variant == "magnitude-global":
        n = sum(w.numel() for w in weights.values())
        assert sum(int((w == 0).sum()) for w in weights.values()) == round(0.6 * n)
    else:
        assert all(int((w == 0).sum()) == round(0.6 * w.numel()) for w in weights.values())
    ref = model.state_dict()
    for key, value in pruned.state_dict().items():
        if key.removesuffix(".weight") not in weights:  # embeddings, LayerNorms, biases, pooler, head
            assert torch.equal(value, ref[key]), key


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_ffn_l1_prunes_the_ffn_and_the_whole_head(kind):
    from harness.measure.params import layer_sparsity

    pruned = compressors.build("ffn-l1", _build(kind))
    family = family_of(pruned, "t")
    ffn = {f"{family.layers_prefix(pruned)}.{i}.{p}" for i in range(LAYERS) for p in family.ffn}
    for name, value in layer_sparsity(pruned).items():
        expected = 0.6 if name in ffn or is_head(name) else 0.0
        assert value == pytest.approx(expected, abs=0.01), name


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_int8_quantizes_every_linear_keeps_the_head_on_request_and_stays_close(kind):
    model, inputs = _build(kind, default_init=True), _inputs()
    q = compressors.build("int8-dynamic", model)
    assert linear_counts(q) == (14, 14)  # 6 per layer + a 2-Linear head (BERT: pooler + classifier)
    ref, out = _output(model, inputs), _output(q, inputs)
    assert not torch.equal(ref, out) and (ref - out).abs().max() < 0.05
    fp32_head = compressors.build("int8-dynamic", model, include_classifier=False)
    assert linear_counts(fp32_head) == (12, 14)
    heads = family_of(model, "t").head_names(fp32_head)
    assert len(heads) == 2 and all(type(fp32_head.get_submodule(n)) is nn.Linear for n in heads)


@pytest.mark.parametrize("name", ["magnitude-global@0.5+int8", "heads-grad@0.25+int8"])
def test_chains_round_trip_on_bert(tmp_path, name, context):
    model = _build("bert", default_init=True)
    built = compressors.build(name, model, context=context)
    assert linear_counts(built)[0] == linear_counts(built)[1] == 14
    variants.save_variant(built, tmp_path, profile="tiny", variant=name, source_key="k")
    loaded, _ = variants.load_variant(tmp_path)
    inputs = _inputs()
    assert torch.equal(_output(built, inputs), _output(loaded, inputs))


# ---------------------------------------------------------------------------
# what each compressor supports


OWN = [n for n in compressors.known_variants() if type(compressors.get(n)).__module__.startswith("compressors.")]
DISTILBERT_ONLY = {"edgemin-s1", "edgemin-s2", "edgemin-s3"}
CONVNEXT_ONLY = {"structured"}


@pytest.mark.parametrize("kind", ["bert", "roberta", "xlm-roberta", "distilbert"])
def test_supports_on_every_variant_of_a_classifier(kind):
    model = _build(kind)
    reasons = {n: compressors.get(n).supports(model) for n in OWN}
    unsupported = CONVNEXT_ONLY | (set() if kind == "distilbert" else DISTILBERT_ONLY)
    assert {n for n, r in reasons.items() if r is not None} == unsupported
    assert all("\n" not in r for r in reasons.values() if r)


@pytest.mark.parametrize("name, make, match", [
    ("edgemin-s1", lambda: _build("bert"),
     r"^variant 'edgemin-s1' supports DistilBERT models only \(.*\); BertForSequenceClassification is a BERT model: "
     r"use heads-grad, .* on it$"),
    ("edgemin-s3", lambda: _build("roberta"), r"RobertaForSequenceClassification is a RoBERTa/XLM-R model"),
    ("edgemin-s1", lambda: _build("distilbert", "DistilBertModel"), r"DistilBertModel has no classification head"),
    ("heads-grad@0.2", lambda: _build("bert", "BertModel"),
     r"'heads-grad' scores heads by the task loss.*BertModel has neither: pass kept_heads, or use heads-attn"),
    ("pkd-s2", lambda: _build("roberta", "RobertaModel"), r"'pkd-s2' .* needs a sequence classifier .*RobertaModel has none"),
    ("structured@0.5", lambda: _build("bert"), r"prunes ConvNeXt channels; got BertForSequenceClassification"),
    ("ffn-l1", lambda: _build("distilbert", "DistilBertForMaskedLM"),
     r"include_classifier=True but DistilBertForMaskedLM has no float pre_classifier/classifier Linear"),
    ("magnitude-global@0.5", lambda: nn.Sequential(nn.Linear(4, 4)), r"needs a DistilBERT model.*Sequential"),
    ("heads-grad@0.2+int8", lambda: _build("bert", "BertModel"), r"^variant 'heads-grad' scores heads"),
    ("magnitude-global@0.5+int8", _convnext, r"^variant 'magnitude-global' needs a DistilBERT model.*'convnext'"),
])
def test_unsupported_combinations_give_the_reason_and_compress_raises_it(name, make, match, context):
    model = make()
    comp, config = compressors.get(name), compressors.make_config(name)
    reason = comp.supports(model, config)
    assert reason is not None and "\n" not in reason
    assert __import__("re").search(match, reason), reason
    assert comp.supports(model) == reason  # without a config: the defaults
    with pytest.raises(CompressionError) as err:
        compressors.build(name, model, context=context)
    assert str(err.value) == reason


@pytest.mark.parametrize("name, make", [
    ("heads-attn@0.2", lambda: _build("bert", "BertModel")),
    ("int8-dynamic", lambda: nn.Sequential(nn.Linear(4, 4))),
    ("int8-dynamic", _convnext),
    ("l1-unstructured@0.5", _convnext),
    ("fp32", lambda: nn.Sequential(nn.Linear(4, 4))),
    ("magnitude-global@0.5+int8", lambda: _build("roberta", "RobertaModel")),
    ("pkd-s1", lambda: _build("xlm-roberta")),
])
def test_supported_combinations_say_none(name, make):
    assert compressors.get(name).supports(make(), compressors.make_config(name)) is None


def test_heads_grad_with_given_kept_heads_needs_no_classifier():
    model = _build("bert", "BertModel")
    config = compressors.make_config("heads-grad@0.25", kept_heads=[[0, 1, 2], [1, 2, 3]])
    assert compressors.get("heads-grad").supports(model, config) is None
    assert compressors.get("heads-grad").supports(model) is not None  # the default config scores from data
    pruned = compressors.build("heads-grad@0.25", model, kept_heads=[[0, 1, 2], [1, 2, 3]])
    assert layer_kept_heads(pruned) == ((0, 1, 2), (1, 2, 3))


# ---------------------------------------------------------------------------
# prune + KD + INT8 on BERT: its training stage is cached and reloaded as a BERT model


def test_pkd_runs_on_bert_and_its_cached_stage_reloads_as_bert(tmp_path, monkeypatch, context):
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path))
    model = _build("bert")
    opts = {"head_ratio": 0.5, "lr": 1e-2, "epochs": 1}
    s1 = compressors.build("pkd-s1", model, context, **opts)
    assert sum(map(len, layer_kept_heads(s1))) == 4
    zeros = [m.weight == 0 for _, m in linear_targets(s1, "t", ("ffn",), True)]
    s2 = compressors.build("pkd-s2", model, context, **opts)
    assert type(s2) is type(model) and s2.edgebench_stages["s2"]["pruned_nonzero_after"] == 0
    for z, (_, m) in zip(zeros, linear_targets(s2, "t", ("ffn",), True)):
        assert m.weight.detach()[z].abs().max() == 0
    s3 = compressors.build("pkd-s3", model, context, **opts)  # stage 2 from the cache, as a BERT model
    assert type(s3) is type(model) and layer_kept_heads(s3) == layer_kept_heads(s2)
    headless = sum(not k for k in layer_kept_heads(s3))  # a layer without heads has no Q, K, V, O
    assert linear_counts(s3) == (14 - 4 * headless,) * 2
