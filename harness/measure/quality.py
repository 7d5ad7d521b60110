"""Quality metrics of a classifier variant against labels and the FP32 reference.

Accuracy comes with a 95% percentile-bootstrap interval; with more than two classes,
``macro_f1`` (the unweighted mean of the per-class F1, Sokolova & Lapalme 2009) comes with a
paired percentile-bootstrap interval too, and ``per_class_accuracy`` (each class's recall)
beside it; ``eval_loss`` is the
mean cross-entropy (nats); ``agreement`` is the share of inputs where the
variant predicts the FP32 model's class; ``kl_fp32`` is the mean
KL(p_fp32 || p_variant) over inputs (nats), the distillation loss of DistilBERT's
triple loss applied to logits (study 001's quality table).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from harness.measure.stats import bootstrap_ci


def quality_metrics(
    logits: torch.Tensor, labels: torch.Tensor, reference_logits: torch.Tensor | None = None,
    per_class: bool = True,
) -> dict[str, float | list[float] | None]:
    """Accuracy (with ``accuracy_ci95`` [low, high]), eval_loss, agreement, kl_fp32; for C > 2
    classes also ``macro_f1`` (with ``macro_f1_ci95``) and ``per_class_accuracy`` (C values),
    unless ``per_class`` is False (a masked LM's C is its vocabulary: tokens are not classes a
    user balances, and a bootstrap of a 30,522-class F1 would take hours).

    Args:
        logits: (N, C) variant logits.
        labels: (N,) int64 class ids.
        reference_logits: (N, C) FP32 logits on the same inputs, or None
            (then ``agreement`` and ``kl_fp32`` are None).

    Raises:
        ValueError: mismatched shapes.
    """
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} do not match")
    pred = logits.argmax(dim=1)
    correct = (pred == labels).double().numpy()
    low, high = bootstrap_ci(correct)
    result: dict[str, float | list[float] | None] = {
        "n": int(labels.numel()),
        "accuracy": float(correct.mean()),
        "accuracy_ci95": [low, high],
        "eval_loss": float(F.cross_entropy(logits, labels)),
        "agreement": None,
        "kl_fp32": None,
    }
    if per_class and logits.shape[1] > 2:
        result.update(macro_f1_metrics(pred.numpy(), labels.numpy(), logits.shape[1]))
    if reference_logits is not None:
        if reference_logits.shape != logits.shape:
            raise ValueError("reference logits must have the variant's shape")
        ref_logp = F.log_softmax(reference_logits, dim=1)
        var_logp = F.log_softmax(logits, dim=1)
        result["agreement"] = float((reference_logits.argmax(dim=1) == pred).double().mean())
        kl = F.kl_div(var_logp, ref_logp, log_target=True, reduction="batchmean")
        result["kl_fp32"] = float(np.maximum(float(kl), 0.0))
    return result


def macro_f1(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """Unweighted mean over the ``num_classes`` classes of F1 = 2 TP / (2 TP + FP + FN); a class
    absent from both predictions and labels counts as F1 = 0 (so it cannot inflate the mean)."""
    f1 = []
    for c in range(num_classes):
        tp = int(np.sum((pred == c) & (labels == c)))
        fp_fn = int(np.sum((pred == c) != (labels == c)))
        f1.append(2 * tp / (2 * tp + fp_fn) if tp + fp_fn else 0.0)
    return float(np.mean(f1))


def macro_f1_metrics(pred: np.ndarray, labels: np.ndarray, num_classes: int, n_resamples: int = 1000,
                     seed: int = 42) -> dict[str, float | list[float]]:
    """``macro_f1`` with its 95% percentile-bootstrap CI over examples (prediction and label
    resampled together), and ``per_class_accuracy`` (recall of each class; None for a class with
    no example).  Shapes: ``pred`` and ``labels`` (N,) class ids."""
    from scipy import stats

    value = macro_f1(pred, labels, num_classes)
    res = stats.bootstrap((pred, labels), lambda p, y: macro_f1(p, y, num_classes), paired=True,
                          vectorized=False, n_resamples=n_resamples, method="percentile",
                          rng=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    per_class = [float(np.mean(pred[labels == c] == c)) if np.any(labels == c) else None for c in range(num_classes)]
    return {"macro_f1": value, "macro_f1_ci95": [low, high], "per_class_accuracy": per_class}


# ---------------------------------------------------------------------------
# study 001's triple-loss quality metrics (DistilBERT's training losses as eval losses)

DISTILL_TEMPERATURE = 2.0
"""T of the distillation eval loss: DistilBERT's training default (Sanh et al., 2019,
``--temperature 2.0`` in its distillation script)."""


def distill_eval_loss(logits: torch.Tensor, reference_logits: torch.Tensor,
                      temperature: float = DISTILL_TEMPERATURE) -> float:
    """``KL(softmax(ref/T) || softmax(logits/T)) * T^2``, mean over inputs (nats).

    DistilBERT's distillation loss (Sanh et al., 2019) with the FP32 reference
    as the teacher; shapes (N, C).  Raises ValueError on a shape mismatch or T <= 0.
    """
    if logits.shape != reference_logits.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and reference {tuple(reference_logits.shape)} differ")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    t = temperature
    kl = F.kl_div(F.log_softmax(logits / t, dim=1), F.log_softmax(reference_logits / t, dim=1),
                  log_target=True, reduction="batchmean")
    return max(float(kl), 0.0) * t * t


def cosine_eval_loss(hidden: list[tuple[torch.Tensor, torch.Tensor]],
                     reference_hidden: list[tuple[torch.Tensor, torch.Tensor]]) -> float | None:
    """``1 - cos(h, h_ref)`` of the last hidden states, mean over non-padding tokens.

    ``None`` ("n/a") when the hidden sizes differ: a cosine between different
    spaces means nothing (DistilBERT's cosine loss needs the teacher's width).
    """
    if not hidden or len(hidden) != len(reference_hidden):
        raise ValueError("hidden states and reference cover different batches")
    if hidden[0][0].shape[-1] != reference_hidden[0][0].shape[-1]:
        return None
    total, count = 0.0, 0
    for (h, mask), (r, _) in zip(hidden, reference_hidden):
        keep = mask.bool()
        cos = F.cosine_similarity(h, r, dim=-1)[keep]
        total += float((1 - cos).sum())
        count += int(keep.sum())
    return max(total / count, 0.0)  # identical states: rounding may give -1e-8


def triple_loss_metrics(logits: torch.Tensor, hidden: list[tuple[torch.Tensor, torch.Tensor]],
                        reference_logits: torch.Tensor, reference_hidden: list[tuple[torch.Tensor, torch.Tensor]],
                        temperature: float = DISTILL_TEMPERATURE,
                        mlm_labels: torch.Tensor | None = None) -> dict[str, float | None]:
    """Study 001's quality table for a variant vs its FP32 reference: ``distill_eval_loss``
    (at ``temperature``), ``cosine_eval_loss`` (None when the hidden sizes differ) and
    ``mlm_eval_loss``: cross-entropy of ``logits`` (N_masked, V) against ``mlm_labels``
    (N_masked,) for a masked-LM profile (:mod:`harness.models.mlm`), None for a classifier."""
    return {"distill_eval_loss": distill_eval_loss(logits, reference_logits, temperature),
            "distill_temperature": temperature,
            "cosine_eval_loss": cosine_eval_loss(hidden, reference_hidden),
            "mlm_eval_loss": None if mlm_labels is None else float(F.cross_entropy(logits, mlm_labels))}
