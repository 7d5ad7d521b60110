"""Quality metrics of a classifier variant against labels and the FP32 reference.

Accuracy comes with a 95% percentile-bootstrap interval; ``eval_loss`` is the
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
    logits: torch.Tensor, labels: torch.Tensor, reference_logits: torch.Tensor | None = None
) -> dict[str, float | list[float] | None]:
    """Accuracy (with ``accuracy_ci95`` [low, high]), eval_loss, agreement, kl_fp32.

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
    if reference_logits is not None:
        if reference_logits.shape != logits.shape:
            raise ValueError("reference logits must have the variant's shape")
        ref_logp = F.log_softmax(reference_logits, dim=1)
        var_logp = F.log_softmax(logits, dim=1)
        result["agreement"] = float((reference_logits.argmax(dim=1) == pred).double().mean())
        kl = F.kl_div(var_logp, ref_logp, log_target=True, reduction="batchmean")
        result["kl_fp32"] = float(np.maximum(float(kl), 0.0))
    return result


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
