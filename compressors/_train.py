"""Training data from a :class:`CompressionContext` and a small fine-tuning loop.

The loop is the baseline fine-tune's recipe (``harness.models.finetune.train``: AdamW,
weight decay on matrices only, linear decay to 0, gradient clipping at 1.0)
without its dataset/tokenizer plumbing -- batches arrive pre-tokenised -- and
without warm-up, because recovery starts from an already fine-tuned model.
Hooks before and after every optimizer step let pruning keep its masks.
"""
from __future__ import annotations

import itertools
from typing import Callable, Sequence

import torch
import torch.nn as nn
from tqdm import (
    tqdm,  # disable=None: no bar without a terminal (CI); TQDM_DISABLE=1 for --quiet
)

from .base import Batch, CompressionContext, CompressionError


def load_batches(context: CompressionContext, variant: str, limit: int | None = None) -> list[Batch]:
    """The first ``limit`` (default: all) batches of ``context.train_batches()``, as a list.

    Kept in memory because recovery revisits them every epoch (the IMDB train
    split, 4,000 x 128 int64 tokens plus mask, is ~8 MB).

    Raises:
        CompressionError: no batches, or a batch that is not three tensors
            ``(input_ids (B, L), attention_mask (B, L), labels (B,))``.
    """
    out: list[Batch] = []
    for batch in itertools.islice(context.train_batches(), limit):
        if (not isinstance(batch, (tuple, list)) or len(batch) != 3
                or not all(isinstance(t, torch.Tensor) for t in batch)):
            raise CompressionError(
                f"variant '{variant}': context.train_batches() must yield "
                f"(input_ids, attention_mask, labels) tensors, got {type(batch).__name__}")
        out.append((batch[0], batch[1], batch[2]))
    if not out:
        raise CompressionError(f"variant '{variant}' needs training data: context.train_batches() yielded no batches")
    return out


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay on matrices and kernels; 1-D parameters (biases, LayerNorm,
    ConvNeXt layer scale) exempt, as in the baseline fine-tune."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train(model: nn.Module, batches: Sequence[Batch], *, epochs: int, lr: float, seed: int,
          weight_decay: float = 0.01, max_grad_norm: float = 1.0,
          before_step: Callable[[int], None] | None = None,
          after_step: Callable[[int], None] | None = None,
          loss_fn: Callable[[nn.Module, Batch], torch.Tensor] | None = None) -> list[float]:
    """Fine-tune ``model`` in place; return the training loss (nats) of every step.

    ``before_step(step)`` runs before each forward, ``after_step(step)`` right
    after each optimizer step (steps count from 0 over all epochs).
    ``loss_fn(model, batch)`` replaces the default loss (the model's
    cross-entropy on the batch's labels), e.g. a distillation loss.  Batch
    order is reshuffled each epoch from ``seed``; dropout is seeded too, inside
    ``torch.random.fork_rng`` so the caller's global RNG is left as it was.
    Leaves the model in eval mode.
    """
    total = epochs * len(batches)
    losses: list[float] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        order_rng = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.AdamW(param_groups(model, weight_decay), lr=lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / total))
        model.train()
        try:
            for _ in range(epochs):
                for i in tqdm(torch.randperm(len(batches), generator=order_rng).tolist(), desc="recovery fine-tuning", unit="step", disable=None, leave=False):
                    if before_step is not None:
                        before_step(len(losses))
                    if loss_fn is not None:
                        loss = loss_fn(model, batches[i])
                    else:
                        input_ids, attention_mask, labels = batches[i]
                        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    if after_step is not None:
                        after_step(len(losses))
                    losses.append(loss.item())
        finally:
            model.eval()
    return losses
