"""Attention-head pruning (heads-grad, heads-attn): masks, importance,
physical removal, FLOPs and restore, on a 2-layer, 4-head DistilBERT."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

import compressors
from compressors import CompressionError
from compressors.heads import (
    HeadlessAttention,
    attention_importance,
    grad_importance,
    head_mask,
    kept_heads_of,
    prune_heads,
    select_heads,
    special_keys,
)
from harness.measure.flops import count_flops

LAYERS, HEADS, DIM = 2, 4, 32
HEAD_DIM = DIM // HEADS


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def tiny_model():
    """The shared tiny DistilBERT with 10x the default init spread, so that a
    head's removal moves the logits well above float32 noise, and non-zero
    Linear biases as a trained model has (init leaves them 0, which would hide
    what a head-less layer does with ``out_lin.bias``)."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    torch.manual_seed(0)
    cfg = DistilBertConfig(vocab_size=30522, dim=DIM, n_layers=LAYERS, n_heads=HEADS, hidden_dim=64,
                           num_labels=2, initializer_range=0.2)
    model = DistilBertForSequenceClassification(cfg).eval()
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.Linear):
                mod.bias.normal_(0, 0.2)
    return model


@pytest.fixture
def padded_inputs(tiny_inputs):
    mask = tiny_inputs["attention_mask"].clone()
    mask[1, 11:] = 0
    return {"input_ids": tiny_inputs["input_ids"], "attention_mask": mask}


def _masks(keep):
    return [torch.tensor([1.0 if h in k else 0.0 for h in range(HEADS)]) for k in keep]


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
@pytest.mark.parametrize("keep", [[[0, 2], []], [[1], [0, 1, 3]], [[0, 1, 2, 3], [2]]])
def test_pruned_model_equals_the_masked_model(tiny_model, padded_inputs, impl, keep):
    tiny_model.set_attn_implementation(impl)
    with torch.inference_mode(), head_mask(tiny_model, _masks(keep)):
        masked = tiny_model(**padded_inputs).logits
    with torch.inference_mode():
        full = tiny_model(**padded_inputs).logits
    pruned = prune_heads(copy.deepcopy(tiny_model), keep)
    with torch.inference_mode():
        out = pruned(**padded_inputs).logits
    assert (out - masked).abs().max() < 1e-5
    assert (out - full).abs().max() > 1e-2  # the heads really mattered
    layers = pruned.distilbert.transformer.layer
    for block, k in zip(layers, keep):
        assert kept_heads_of(block.attention) == tuple(k)
        if not k:
            assert isinstance(block.attention, HeadlessAttention)
        else:
            assert block.attention.q_lin.weight.shape == (len(k) * HEAD_DIM, DIM)
            assert block.attention.out_lin.weight.shape == (DIM, len(k) * HEAD_DIM)


def test_flops_drop_by_the_removed_projections_and_attention_matmuls(tiny_model, tiny_inputs):
    tiny_model.set_attn_implementation("eager")  # sdpa's CPU kernel is not counted by FlopCounterMode
    keep = [[0, 2], []]
    before = count_flops(tiny_model, tiny_inputs)
    after = count_flops(prune_heads(copy.deepcopy(tiny_model), keep), tiny_inputs)
    batch, seq = tiny_inputs["input_ids"].shape
    removed = LAYERS * HEADS - sum(len(k) for k in keep)
    per_head = (2 * batch * seq * DIM * HEAD_DIM * 4   # q, k, v rows and out_lin columns
                + 2 * batch * seq * seq * HEAD_DIM * 2)  # Q K^T and P V
    assert before - after == removed * per_head


def test_grad_importance_is_zero_for_a_head_that_outputs_nothing(tiny_model, tiny_context):
    with torch.no_grad():
        v = tiny_model.distilbert.transformer.layer[1].attention.v_lin
        v.weight[2 * HEAD_DIM:3 * HEAD_DIM] = 0
        v.bias[2 * HEAD_DIM:3 * HEAD_DIM] = 0
    batches = list(tiny_context.train_batches())
    scores = grad_importance(tiny_model, batches, normalize_by_layer=False)
    assert [s.shape for s in scores] == [(HEADS,)] * LAYERS
    assert scores[1][2] == 0
    assert all(float(s[h]) > 0 for i, s in enumerate(scores) for h in range(HEADS) if (i, h) != (1, 2))
    assert not any(p.grad is not None for p in tiny_model.parameters())
    pruned = compressors.build("heads-grad@0.125", tiny_model, context=tiny_context)  # 1 of 8 heads
    assert [kept_heads_of(b.attention) for b in pruned.distilbert.transformer.layer] == [(0, 1, 2, 3), (0, 1, 3)]


def test_grad_importance_matches_a_finite_difference(tiny_model, tiny_context):
    ids, mask, labels = next(iter(tiny_context.train_batches()))
    score = grad_importance(tiny_model, [(ids, mask, labels)], normalize_by_layer=False)[0][1]

    def loss(m1):
        masks = [torch.tensor([1.0, m1, 1.0, 1.0]), torch.ones(HEADS)]
        with torch.no_grad(), head_mask(tiny_model, masks):
            return tiny_model(input_ids=ids, attention_mask=mask, labels=labels).loss.double()

    eps = 1e-2
    slope = (loss(1 + eps) - loss(1 - eps)) / (2 * eps)
    assert float(score) == pytest.approx(abs(float(slope)), rel=0.05)  # Michel et al.'s |dL/dxi_h|


def test_study_000_criterion_is_the_squared_gradient_of_the_head_activation(tiny_model, tiny_context):
    """||grad_{a_h} L||^2: scaling head h's context by (1 + eps) moves L by eps * <a_h, grad_{a_h} L>, so
    compare with the gradient taken directly on a captured context."""
    ids, mask, labels = next(iter(tiny_context.train_batches()))
    score = grad_importance(tiny_model, [(ids, mask, labels)], normalize_by_layer=False,
                            criterion="activation-grad-sq")
    contexts: dict[int, list[torch.Tensor]] = {}
    with head_mask(tiny_model, [torch.ones(HEADS), torch.ones(HEADS)], contexts=contexts):
        loss = tiny_model(input_ids=ids, attention_mask=mask, labels=labels).loss
    (g,) = torch.autograd.grad(loss, [contexts[1][0]])
    want = g.reshape(*g.shape[:-1], HEADS, HEAD_DIM).pow(2).sum(dim=(0, 1, 3))
    assert torch.allclose(score[1], want, rtol=1e-5) and (score[1] > 0).all()
    with pytest.raises(CompressionError, match="unknown heads-grad criterion 'l2'"):
        compressors.make_config("heads-grad@0.2", criterion="l2")


@pytest.mark.parametrize("criterion", ["max", "entropy"])
def test_a_head_with_uniform_attention_is_the_least_important(tiny_model, tiny_context, criterion):
    with torch.no_grad():
        attn = tiny_model.distilbert.transformer.layer[0].attention
        for lin in (attn.q_lin, attn.k_lin):  # scores 0 -> uniform attention over the valid keys
            lin.weight[HEAD_DIM:2 * HEAD_DIM] = 0
            lin.bias[HEAD_DIM:2 * HEAD_DIM] = 0
    batches = list(tiny_context.train_batches())
    scores = attention_importance(tiny_model, batches, criterion)
    assert tiny_model.config._attn_implementation == "sdpa"  # switched back after scoring
    flat = torch.cat(scores)
    assert int(flat.argmin()) == 1
    if criterion == "max":
        # Uniform over n valid keys: max probability 1/n (n = 12, or 9 for the padded row).
        # Per batch: 9 valid queries of the padded row at 1/9, 3 x 12 queries at 1/12.
        assert float(scores[0][1]) == pytest.approx((9 / 9 + 36 / 12) / 45)
        assert all(0 < float(v) <= 1 for v in flat)
    pruned = compressors.build("heads-attn@0.125", tiny_model, context=tiny_context, criterion=criterion)
    assert kept_heads_of(pruned.distilbert.transformer.layer[0].attention) == (0, 2, 3)


def test_special_keys_are_cls_and_every_sep_of_a_row():
    ids = torch.tensor([[101, 7, 8, 102, 0, 0], [101, 7, 102, 9, 9, 102]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    assert special_keys(ids, mask).tolist() == [[True, False, False, True, False, False],
                                                [True, False, True, False, False, True]]


def test_confidence_leaves_out_cls_and_sep_keys(tiny_model):
    """Issue 21: a head that parks all its probability on [CLS] is the most "confident" when the
    special keys count (the defect), and the least once they are left out (Voita et al.)."""
    from types import SimpleNamespace

    ids = torch.tensor([[101, 2000, 2001, 2002, 2003, 102]])
    mask = torch.ones_like(ids)
    sink = torch.zeros(1, HEADS, 6, 6)
    sink[:, 0, :, 0] = 1.0  # head 0: every query on [CLS]
    sink[:, 1:] = torch.softmax(torch.randn(1, HEADS - 1, 6, 6, generator=torch.Generator().manual_seed(0)), -1)

    class Crafted(type(tiny_model)):
        def forward(self, **kwargs):
            return SimpleNamespace(attentions=(sink, sink))

    crafted = copy.deepcopy(tiny_model)
    crafted.__class__ = Crafted
    batch = [(ids, mask, torch.tensor([0]))]
    counted = attention_importance(crafted, batch, "max")
    left_out = attention_importance(crafted, batch, "max", exclude_special_keys=True)
    assert int(counted[0].argmax()) == 0 and float(counted[0][0]) == 1.0
    assert int(left_out[0].argmin()) == 0 and float(left_out[0][0]) == 0.0
    assert torch.all(left_out[0][1:] <= counted[0][1:])


def test_select_heads_keeps_the_per_layer_floor():
    scores = [torch.tensor([0.1, 0.2]), torch.tensor([0.9, 0.8])]
    assert select_heads(scores, 0.5, "v") == [[], [0, 1]]  # one global ranking empties layer 0
    assert select_heads(scores, 0.5, "v", min_per_layer=1) == [[1], [0]]  # the next-least head goes instead
    with pytest.raises(CompressionError, match="min_heads_per_layer=1 leaves only 2 removable"):
        select_heads(scores, 0.75, "v", min_per_layer=1)


def test_heads_attn_records_its_criterion_choices(tiny_model, tiny_context):
    pruned = compressors.build("heads-attn@0.5", tiny_model, context=tiny_context)
    cfg = compressors.get("heads-attn").resolved_config(pruned, compressors.make_config("heads-attn@0.5"))
    assert cfg.exclude_special_keys is True and cfg.min_heads_per_layer == 1
    assert all(len(k) >= 1 for k in cfg.kept_heads) and sum(map(len, cfg.kept_heads)) == 4


def test_attention_importance_reads_the_same_probabilities_as_output_attentions(tiny_model, tiny_inputs):
    tiny_model.set_attn_implementation("eager")
    with torch.inference_mode():
        probs = tiny_model(**tiny_inputs, output_attentions=True).attentions
    batch = (tiny_inputs["input_ids"], tiny_inputs["attention_mask"], torch.tensor([0, 1]))
    scores = attention_importance(tiny_model, [batch], "max")
    for s, p in zip(scores, probs):
        assert torch.allclose(s, p.amax(-1).mean(dim=(0, 2)))


def test_kept_heads_option_prunes_without_data_and_can_empty_a_layer(tiny_model, tiny_inputs):
    pruned = compressors.build("heads-grad@0.5", tiny_model, kept_heads=[[0, 1, 2, 3], []])
    with torch.inference_mode(), head_mask(tiny_model, _masks([[0, 1, 2, 3], []])):
        masked = tiny_model(**tiny_inputs).logits
    with torch.inference_mode():
        assert (pruned(**tiny_inputs).logits - masked).abs().max() < 1e-5
    facts = compressors.get("heads-grad").describe(pruned, compressors.make_config("heads-grad@0.5"))
    assert facts["heads_kept"] == 4 and facts["layers_without_heads"] == 1 and facts["heads_per_layer"] == "4,0"


def test_restore_cuts_a_skeleton_to_the_saved_shapes(tiny_model, tiny_context):
    comp = compressors.get("heads-attn")
    pruned = compressors.build("heads-attn@0.6", tiny_model, context=tiny_context)
    config = comp.resolved_config(pruned, compressors.make_config("heads-attn@0.6"))
    assert sum(len(k) for k in config.kept_heads) == LAYERS * HEADS - 5  # round(0.6 * 8)
    skeleton = comp.restore(type(tiny_model)(tiny_model.config), config)
    assert {k: v.shape for k, v in skeleton.state_dict().items()} == {
        k: v.shape for k, v in pruned.state_dict().items()}
    again = type(config).from_dict(config.to_dict())
    assert again == config


@pytest.mark.parametrize("name, options, match", [
    ("heads-grad@0.95", {}, r"would remove all 8 attention heads"),
    ("heads-attn@0.99", {}, r"would remove all 8 attention heads"),
    ("heads-grad@1.0", {}, r"ratio = 1.0 is outside \[0, 1\)"),
    ("heads-attn@0.5", {"criterion": "mean"}, r"unknown head importance criterion 'mean'; choose one of max, entropy"),
    ("heads-grad@0.2", {"n_batches": 0}, r"n_batches = 0"),
    ("heads-grad@0.5", {"kept_heads": [[2, 1], []]}, r"sorted distinct head indices"),
    ("heads-grad@0.5", {"kept_heads": [[0, 1, 2]]}, r"lists 1 layers but the model has 2"),
    ("heads-grad@0.25", {"kept_heads": [[0, 1, 2, 3], []]}, r"removes 4 of 8 heads, which does not match ratio 0.25"),
    ("heads-grad@0.5", {"kept_heads": [[0, 9], [0, 1]]}, r"keeps heads \[9\] of layer 0"),
])
def test_bad_input_is_a_one_line_error(tiny_model, tiny_context, name, options, match):
    with pytest.raises(CompressionError, match=match) as err:
        compressors.build(name, tiny_model, context=tiny_context, **options)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["heads-grad@0.2", "heads-attn@0.6"])
def test_missing_data_or_modules_are_refused(tiny_model, tiny_context, name):
    with pytest.raises(CompressionError, match=f"variant '{name}' needs training data"):
        compressors.build(name, tiny_model)
    with pytest.raises(CompressionError, match="needs a DistilBERT model.*Sequential"):
        compressors.build(name, nn.Sequential(nn.Linear(4, 4)), context=tiny_context)


def test_ratio_zero_keeps_every_head_and_needs_no_data(tiny_model, tiny_inputs):
    pruned = compressors.build("heads-grad@0", tiny_model)
    with torch.inference_mode():
        assert torch.equal(pruned(**tiny_inputs).logits, tiny_model(**tiny_inputs).logits)
