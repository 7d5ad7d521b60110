import pytest
import torch

from harness.quality import quality_metrics


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
