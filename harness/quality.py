"""Quality metrics of a classifier variant against labels and the FP32 reference.

Accuracy comes with a 95% percentile-bootstrap interval; ``eval_loss`` is the
mean cross-entropy (nats); ``agreement`` is the share of inputs where the
variant predicts the FP32 model's class; ``kl_fp32`` is the mean
KL(p_fp32 || p_variant) over inputs (nats), the distillation loss of DistilBERT's
triple loss applied to logits (study 001's quality table).
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from .stats import bootstrap_ci


@torch.inference_mode()
def predict_logits(model: torch.nn.Module | Callable[[dict[str, torch.Tensor]], torch.Tensor],
                   batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Logits (N, C) float32 for ``(input_ids, attention_mask, labels)`` batches.

    ``model`` is a transformers classifier or a backend runner
    (:class:`harness.backends.Runner`: inputs dict -> logits), so every
    backend's quality goes through this same code.
    """
    if isinstance(model, torch.nn.Module):
        out = [model(input_ids=ids, attention_mask=mask).logits.float() for ids, mask, _ in batches]
    else:
        out = [model({"input_ids": ids, "attention_mask": mask}).float() for ids, mask, _ in batches]
    if not out:
        raise ValueError("no batches to evaluate")
    return torch.cat(out)


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
