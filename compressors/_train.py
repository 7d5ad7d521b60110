"""Training data from a :class:`CompressionContext` and recovery fine-tuning.

Recovery runs the project's one loop (:func:`harness.core.train.train`) with
the baseline fine-tune's recipe (AdamW, weight decay on matrices only,
gradient clipping at 1.0) on pre-tokenised batches, decaying linearly to 0
without warm-up, because recovery starts from an already fine-tuned model.
Hooks before and after every optimizer step let pruning keep its masks.
"""
from __future__ import annotations

import itertools
from typing import Callable, Sequence

import torch
import torch.nn as nn

from harness.core import train as training

from .base import Batch, CompressionContext, CompressionError


def load_batches(context: CompressionContext, variant: str, limit: int | None = None) -> list[Batch]:
    """The first ``limit`` (default: all) batches of ``context.train_batches()``, as a list.

    Kept in memory because recovery revisits them every epoch (the IMDB train
    split, 4,000 x 128 int64 tokens plus mask, is ~8 MB).

    Raises:
        CompressionError: no batches, or a batch that is not three tensors
            ``(input_ids (B, L), attention_mask (B, L), labels)`` -- labels (B,) for a sequence
            classifier, (B, L) for a masked LM (-100 off the masked tokens).
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


def train(model: nn.Module, batches: Sequence[Batch], *, epochs: int, lr: float, seed: int,
          weight_decay: float = 0.01, max_grad_norm: float = 1.0,
          before_step: Callable[[int], None] | None = None,
          after_step: Callable[[int], None] | None = None,
          loss_fn: Callable[[nn.Module, Batch], torch.Tensor] | None = None) -> list[float]:
    """Fine-tune ``model`` in place; return the training loss (nats) of every step.

    ``before_step(step)`` runs before each forward, ``after_step(step)`` right
    after each optimizer step (steps count from 0 over all epochs).
    ``loss_fn(model, batch)`` replaces the default loss (the model's
    loss for the batch's labels: classification or MLM cross-entropy), e.g. a distillation loss.  Batch
    order is reshuffled each epoch from ``seed``; dropout is seeded too, inside
    ``torch.random.fork_rng`` so the caller's global RNG is left as it was.
    Leaves the model in eval mode.
    """
    config = training.TrainConfig(lr=lr, steps=epochs * len(batches), schedule="linear",
                                  weight_decay=weight_decay, max_grad_norm=max_grad_norm, seed=seed,
                                  desc="recovery fine-tuning")
    epoch_batches = (batches[i] for order in training.shuffled(len(batches), epochs, seed) for i in order)
    return training.train(model, epoch_batches, config, loss_fn or training.text_task_loss,
                          before_step=before_step, after_step=after_step)
