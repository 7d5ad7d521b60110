"""Magnitude pruning (magnitude-global, magnitude-layerwise, ffn-l1), recovery
fine-tuning, and the sparsity metrics of harness.measure.params, on tiny models."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import compressors
from compressors import CompressionContext, CompressionError
from compressors.prune import MagnitudeConfig, cubic_sparsity, recover
from harness.measure.params import layer_sparsity, sparse_size_bytes

ENCODER = "distilbert.transformer.layer."
HEAD = ("pre_classifier", "classifier")


pytestmark = pytest.mark.usefixtures("one_thread")


def _weights(model, prefix=ENCODER, parts=("attention", "ffn")):
    return {n: m.weight for n, m in model.named_modules()
            if type(m) is nn.Linear and n.startswith(prefix) and n[len(prefix):].split(".")[1] in parts}


def _zeros(tensors) -> int:
    return sum(int((t == 0).sum()) for t in tensors)


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.8])
def test_global_zeroes_exactly_round_s_n_of_the_encoder(tiny_model, sparsity):
    pruned = compressors.build(f"magnitude-global@{sparsity}", tiny_model)
    weights = _weights(pruned)
    n = sum(w.numel() for w in weights.values())
    assert _zeros(weights.values()) == round(sparsity * n)
    # One threshold: every surviving weight is at least as large as every pruned one.
    before = _weights(tiny_model)
    kept = torch.cat([before[k][w != 0].abs() for k, w in weights.items()])
    cut = torch.cat([before[k][w == 0].abs() for k, w in weights.items()])
    if cut.numel():
        assert kept.min() >= cut.max()
    # Survivors keep their values; the head, biases and embeddings are untouched.
    ref = tiny_model.state_dict()
    for key, value in pruned.state_dict().items():
        if key.removesuffix(".weight") in weights:
            nz = value != 0
            assert torch.equal(value[nz], ref[key][nz])
        else:
            assert torch.equal(value, ref[key]), key


def test_global_threshold_prunes_small_layers_more_and_layerwise_does_not(tiny_model):
    with torch.no_grad():
        tiny_model.distilbert.transformer.layer[0].ffn.lin1.weight.mul_(10)
    big = ENCODER + "0.ffn.lin1"
    glob = layer_sparsity(compressors.build("magnitude-global@0.5", tiny_model))
    assert glob[big] < 0.1 < 0.5 < min(v for k, v in glob.items() if k.startswith(ENCODER) and k != big)
    layer = layer_sparsity(compressors.build("magnitude-layerwise@0.5", tiny_model))
    for name, w in _weights(tiny_model).items():
        assert layer[name] == round(0.5 * w.numel()) / w.numel()
    assert glob["classifier"] == layer["classifier"] == 0.0


def test_include_classifier_prunes_the_head_too(tiny_model):
    s = layer_sparsity(compressors.build("magnitude-layerwise@0.5", tiny_model, include_classifier=True))
    assert s["pre_classifier"] == s["classifier"] == 0.5


def test_ffn_l1_prunes_only_ffn_and_classifier(tiny_model):
    s = layer_sparsity(compressors.build("ffn-l1", tiny_model))
    for name, value in s.items():
        if ".ffn." in name or name in HEAD:
            assert abs(value - 0.6) < 0.01, name
        else:
            assert value == 0.0, name
    assert compressors.make_config("ffn-l1@0.3").sparsity == 0.3


@pytest.mark.parametrize("name, options, match", [
    ("magnitude-global@1.0", {}, r"sparsity = 1.0 is outside \[0, 1\)"),
    ("magnitude-global@-0.1", {}, r"outside \[0, 1\)"),
    ("magnitude-layerwise@nan", {}, r"outside \[0, 1\)"),
    ("magnitude-global@half", {}, r"the '@' argument is the target sparsity"),
    ("ffn-l1", {"sparsity": True}, r"outside \[0, 1\)"),
    ("magnitude-global", {"recovery_epochs": -1}, r"recovery_epochs = -1"),
    ("magnitude-global", {"recovery_lr": 0}, r"recovery_lr = 0"),
    ("magnitude-global", {"include_classifier": "yes"}, r"include_classifier = 'yes'"),
    ("magnitude-global", {"recovery_epochs": 1}, r"needs training data"),
])
def test_bad_input_is_a_one_line_error(tiny_model, name, options, match):
    with pytest.raises(CompressionError, match=match) as err:
        compressors.build(name, tiny_model, **options)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["magnitude-global@0.5", "magnitude-layerwise@0.5", "ffn-l1"])
def test_a_model_without_distilbert_modules_is_refused(name):
    with pytest.raises(CompressionError, match="needs a DistilBERT model.*Sequential"):
        compressors.build(name, nn.Sequential(nn.Linear(4, 4)))


def test_cubic_schedule_starts_at_zero_ends_at_target_and_front_loads():
    s = [cubic_sparsity(t, 100, 0.8) for t in range(101)]
    assert s[0] == 0.0 and s[100] == pytest.approx(0.8)
    assert all(a <= b for a, b in zip(s, s[1:]))
    assert s[50] == pytest.approx(0.8 * 7 / 8)  # 1 - (1/2)^3
    assert cubic_sparsity(150, 100, 0.8) == pytest.approx(0.8)


# ---------------------------------------------------------------------------
# recovery fine-tuning on a learnable synthetic task


def _separable_batches(n_batches=6, batch=8, seq=10):
    """Label 0 reviews use tokens 1000-1019, label 1 reviews 2000-2019."""
    g = torch.Generator().manual_seed(3)
    out = []
    for _ in range(n_batches):
        labels = torch.randint(0, 2, (batch,), generator=g)
        ids = torch.randint(0, 20, (batch, seq), generator=g) + 1000 + 1000 * labels[:, None]
        out.append((ids, torch.ones_like(ids), labels))
    return out


@torch.no_grad()
def _loss(model, batches) -> float:
    return sum(model(input_ids=i, attention_mask=m, labels=y).loss.item() for i, m, y in batches) / len(batches)


def test_recovery_keeps_pruned_weights_zero_and_lowers_the_loss(tiny_model):
    data = _separable_batches()
    ctx = CompressionContext(lambda: iter(data), seed=0)
    options = dict(recovery_epochs=3, recovery_lr=1e-2, prune_interval=4)
    recovered = compressors.build("magnitude-global@0.7", tiny_model, context=ctx, **options)
    one_shot = compressors.build("magnitude-global@0.7", tiny_model)
    weights = _weights(recovered)
    n = sum(w.numel() for w in weights.values())
    assert _zeros(weights.values()) == round(0.7 * n)
    before, after = _loss(tiny_model, data), _loss(recovered, data)
    assert after < 0.5 * before
    assert after < _loss(one_shot, data)
    assert not recovered.training


def test_masks_are_reapplied_after_every_optimizer_step(tiny_model):
    data = _separable_batches()
    config = MagnitudeConfig(sparsity=0.6, recovery_epochs=2, recovery_lr=1e-3, prune_interval=3)
    names = _weights(tiny_model)
    modules = [m for n, m in tiny_model.named_modules() if n in names]
    n = sum(m.weight.numel() for m in modules)
    log = recover(modules, tiny_model, data, config, "layerwise", seed=0)
    steps = config.recovery_epochs * len(data)
    assert len(log.loss) == len(log.sparsity) == len(log.target) == steps
    # After each step exactly the scheduled share is zero (per module: round(s * n_i)),
    # so the optimizer's updates to pruned weights were undone every time.
    for measured, target in zip(log.sparsity, log.target):
        expected = sum(round(target * m.weight.numel()) for m in modules) / n
        assert measured == pytest.approx(expected, abs=1e-12)
    assert log.target[0] == 0.0 and log.target[-1] > 0.5
    assert log.loss[-1] < log.loss[0]


# ---------------------------------------------------------------------------
# harness.measure.params sparsity metrics on hand-made tensors


def _hand_made() -> nn.Sequential:
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 2.0],
                                            [0.0, 0.0, 3.0, 0.0],
                                            [4.0, 5.0, 6.0, 7.0]]))  # 5 zeros of 12
        model[1].weight.copy_(torch.arange(1.0, 7.0).reshape(2, 3))
        model[0].bias.copy_(torch.tensor([0.0, 1.0, 2.0]))
        model[1].bias.fill_(1.0)
    return model


def test_layer_sparsity_counts_zero_weights_per_linear():
    model = _hand_made()
    assert layer_sparsity(model) == {"0": 5 / 12, "1": 0.0}
    q = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    assert layer_sparsity(q) == {"0": 5 / 12, "1": 0.0}


def test_sparse_size_is_csr_for_2d_float_and_dense_otherwise():
    model = _hand_made()
    # layer 0: 7 non-zeros -> 7*4 values + 7*4 columns + (3+1)*4 row pointers; bias 3*4 dense.
    # layer 1: 6 non-zeros -> 6*8 + (2+1)*4; bias 2*4.
    assert sparse_size_bytes(model) == (7 * 8 + 4 * 4 + 3 * 4) + (6 * 8 + 3 * 4 + 2 * 4)
    q = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    # INT8 weights dense at 1 byte/element, float biases dense at 4.
    assert sparse_size_bytes(q) == (12 + 3 * 4) + (6 + 2 * 4)


def test_sparse_size_shrinks_with_pruning_but_the_dense_model_does_not(tiny_model):
    dense = sparse_size_bytes(tiny_model)
    pruned = compressors.build("magnitude-global@0.8", tiny_model)
    assert sparse_size_bytes(pruned) < dense
    assert sum(t.numel() for t in pruned.state_dict().values()) == sum(
        t.numel() for t in tiny_model.state_dict().values())
