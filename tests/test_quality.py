import pytest
import torch

from harness.measure.quality import quality_metrics


def test_identical_logits_agree_fully_with_zero_kl():
    logits = torch.tensor([[2.0, -1.0], [0.0, 1.0], [3.0, 0.5], [-1.0, -2.0]])
    labels = torch.tensor([0, 1, 1, 0])
    m = quality_metrics(logits, labels, logits.clone())
    assert m["accuracy"] == 0.75
    assert m["agreement"] == 1.0
    assert m["kl_fp32"] == pytest.approx(0.0, abs=1e-7)
    assert m["accuracy_ci95"][0] <= 0.75 <= m["accuracy_ci95"][1]
    expected = torch.nn.functional.cross_entropy(logits, labels).item()
    assert m["eval_loss"] == pytest.approx(expected)


def test_flipped_prediction_lowers_agreement_and_raises_kl():
    ref = torch.tensor([[2.0, -1.0], [0.0, 1.0]])
    var = torch.tensor([[-1.0, 2.0], [0.0, 1.0]])
    m = quality_metrics(var, torch.tensor([0, 1]), ref)
    assert m["agreement"] == 0.5
    assert m["kl_fp32"] > 0.5


def test_without_reference_agreement_is_none():
    m = quality_metrics(torch.zeros(3, 2), torch.tensor([0, 0, 1]))
    assert m["agreement"] is None and m["kl_fp32"] is None


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError):
        quality_metrics(torch.zeros(3, 2), torch.tensor([0, 1]))


def test_triple_loss_metrics():
    from harness.measure.quality import (
        cosine_eval_loss,
        distill_eval_loss,
        triple_loss_metrics,
    )

    ref = torch.tensor([[2.0, -1.0], [0.0, 1.0]])
    assert distill_eval_loss(ref, ref.clone()) == pytest.approx(0.0, abs=1e-7)
    var = torch.tensor([[-1.0, 2.0], [0.0, 1.0]])
    t = 2.0
    want = torch.nn.functional.kl_div(torch.log_softmax(var / t, 1), torch.softmax(ref / t, 1),
                                      reduction="batchmean").item() * t * t
    assert distill_eval_loss(var, ref, t) == pytest.approx(want, rel=1e-5) and want > 0
    mask = torch.tensor([[1, 1, 0]])
    h = torch.randn(1, 3, 4)
    other = h.clone()
    other[0, 2] = -h[0, 2]  # only a padded position differs: ignored
    assert cosine_eval_loss([(h, mask)], [(other, mask)]) == pytest.approx(0.0, abs=1e-6)
    assert cosine_eval_loss([(-h, mask)], [(h, mask)]) == pytest.approx(2.0, abs=1e-5)
    assert cosine_eval_loss([(torch.randn(1, 3, 8), mask)], [(h, mask)]) is None  # different widths: n/a
    m = triple_loss_metrics(var, [(h, mask)], ref, [(h, mask)])
    assert m["distill_temperature"] == 2.0 and m["mlm_eval_loss"] is None and m["cosine_eval_loss"] == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        distill_eval_loss(var, ref, 0.0)
