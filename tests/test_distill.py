"""Distillation losses (MiniLMv2 relations, logit KD, cosine) and their bad input."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from compressors import CompressionError
from compressors.distill import (
    QKVCapture,
    cosine_hidden_loss,
    logit_kd_loss,
    relation_kd_loss,
    relation_logprobs,
    resolve_layer,
)


def _qkv(seed: int, b: int = 2, n: int = 6, h: int = 8) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {r: torch.randn(b, n, h, generator=g) for r in "qkv"}


def _mask(b: int = 2, n: int = 6) -> torch.Tensor:
    mask = torch.ones(b, n, dtype=torch.int64)
    mask[1, 4:] = 0
    return mask


def test_relation_loss_is_zero_for_identical_relations_and_positive_otherwise():
    t, mask = _qkv(0), _mask()
    assert relation_kd_loss(t, {k: v.clone() for k, v in t.items()}, mask, relation_heads=2).item() == pytest.approx(0, abs=1e-6)
    s = {k: v.requires_grad_() for k, v in _qkv(1).items()}
    loss = relation_kd_loss(t, s, mask, relation_heads=2)
    assert loss.item() > 0.01
    loss.backward()
    assert all(v.grad is not None and v.grad.abs().sum() > 0 for v in s.values())


def test_relation_loss_ignores_padding_and_allows_different_widths():
    t, s, mask = _qkv(0, h=8), _qkv(1, h=4), _mask()
    base = relation_kd_loss(t, s, mask, relation_heads=2).item()
    for d in (t, s):  # garbage at padded positions must not change the loss
        for v in d.values():
            v[1, 4:] = 100.0
    assert relation_kd_loss(t, s, mask, relation_heads=2).item() == pytest.approx(base, rel=1e-5)


def test_relation_logprobs_are_row_normalised_over_real_keys():
    logp = relation_logprobs(torch.randn(2, 6, 8), _mask(), 4)
    assert logp.shape == (2, 4, 6, 6)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(2, 4, 6), atol=1e-5)
    assert logp.exp()[1, :, :, 4:].max() < 1e-12


def test_relation_heads_must_divide_both_hidden_sizes():
    with pytest.raises(CompressionError, match=r"student hidden size 6 \(teacher 8, student 6\)"):
        relation_kd_loss(_qkv(0, h=8), _qkv(1, h=6), _mask(), relation_heads=4)
    with pytest.raises(CompressionError, match="relation_heads = 0"):
        relation_kd_loss(_qkv(0), _qkv(1), _mask(), relation_heads=0)


def test_logit_kd_matches_study_003_formula():
    g = torch.Generator().manual_seed(0)
    s, t, y = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g), torch.tensor([0, 1, 2, 1, 0])
    want = 0.7 * F.kl_div(F.log_softmax(s / 4, 1), F.softmax(t / 4, 1), reduction="batchmean") * 16 \
        + 0.3 * F.cross_entropy(s, y)
    assert logit_kd_loss(s, t, y, temperature=4.0, alpha=0.7).item() == pytest.approx(want.item(), rel=1e-5)
    assert logit_kd_loss(t, t, None, temperature=2.0, alpha=1.0).item() == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"temperature": 0.0}, r"temperature = 0.0 must be a number > 0"),
    ({"temperature": -1}, r"temperature = -1"),
    ({"alpha": 1.5}, r"alpha = 1.5 must be in \[0, 1\]"),
    ({"alpha": -0.1}, r"alpha = -0.1"),
])
def test_logit_kd_bad_input(kwargs, match):
    with pytest.raises(CompressionError, match=match):
        logit_kd_loss(torch.zeros(2, 2), torch.zeros(2, 2), torch.tensor([0, 1]), **kwargs)


def test_logit_kd_needs_same_classes_and_labels():
    with pytest.raises(CompressionError, match=r"\(2, 3\) and teacher logits \(2, 2\)"):
        logit_kd_loss(torch.zeros(2, 3), torch.zeros(2, 2), torch.tensor([0, 1]))
    with pytest.raises(CompressionError, match="needs labels"):
        logit_kd_loss(torch.zeros(2, 2), torch.zeros(2, 2), None, alpha=0.5)


def test_cosine_loss_and_hidden_size_mismatch():
    h, mask = torch.randn(2, 6, 8), _mask()
    assert cosine_hidden_loss(h, h.clone(), mask).item() == pytest.approx(0, abs=1e-6)
    assert cosine_hidden_loss(h, -h, mask).item() == pytest.approx(2, abs=1e-5)
    with pytest.raises(CompressionError, match="student 8, teacher 16"):
        cosine_hidden_loss(h, torch.randn(2, 6, 16), mask)


def test_unknown_teacher_layer(tiny_model):
    assert resolve_layer(tiny_model, -1, "teacher") == 1
    with pytest.raises(CompressionError, match=r"unknown teacher layer 2; the teacher has 2 layers \(use 0..1"):
        resolve_layer(tiny_model, 2, "teacher")
    with pytest.raises(CompressionError, match="unknown teacher layer -3"):
        QKVCapture(tiny_model, -3, "teacher")


def test_qkv_capture_records_the_projections(tiny_model, tiny_inputs, one_thread):
    attn = tiny_model.distilbert.transformer.layer[0].attention
    with QKVCapture(tiny_model, 0) as cap, torch.no_grad():
        tiny_model(**tiny_inputs)
    emb = tiny_model.distilbert.embeddings(tiny_inputs["input_ids"])
    assert torch.allclose(cap.out["q"], attn.q_lin(emb), atol=1e-5)
    assert set(cap.out) == {"q", "k", "v"} and cap.out["v"].shape == (2, 16, 32)
    assert not attn.q_lin._forward_hooks  # hooks removed on exit
