"""A model's outputs on evaluation batches: the one inference loop every quality
metric, task and integrity check scores through (torch models and backend runners alike)."""
from __future__ import annotations

from typing import Callable, Iterable

import torch


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


@torch.inference_mode()
def predict_logits_hidden(model: torch.nn.Module,
                          batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
                          ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Logits (N, C) and, per batch, ``(last hidden state (B, L, H), attention_mask (B, L))``."""
    logits, hidden = [], []
    for ids, mask, _ in batches:
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        logits.append(out.logits.float())
        hidden.append((out.hidden_states[-1].float(), mask))
    if not logits:
        raise ValueError("no batches to evaluate")
    return torch.cat(logits), hidden
