"""The one training loop: AdamW over weight-decay groups, a named learning-rate
schedule, optional gradient clipping, hooks around every step, a progress bar.

Every trainer of the project is a :class:`TrainConfig` plus a batch iterable and
a loss: the baseline fine-tune (``harness.models.finetune``), recovery
fine-tuning and distillation (``compressors._train``), the ConvNeXt baseline
(``harness.models.vision_train``), structured-pruning recovery
(``compressors.structured``) and the MLM head (``harness.models.mlm``).  Their
outputs are cache keys and reference results, so the order of operations here
is fixed: forward, backward, clip, ``optimizer.step``, ``scheduler.step``,
``zero_grad(set_to_none=True)``; the seed is set before the optimizer is built.
"""
from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.nn as nn

from harness.core.progress import bar as progress_bar

B = TypeVar("B")
SCHEDULES = ("constant", "cosine", "linear", "warmup-linear")


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups over the trainable parameters: ``weight_decay`` on matrices and
    kernels (ndim >= 2), none on 1-D parameters (biases, LayerNorm, ConvNeXt layer
    scale).  Parameters keep ``model.parameters()`` order within each group."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    ``lr`` peak AdamW learning rate; ``steps`` optimizer steps (the loop stops
    there or when the batches run out; the schedule spans ``steps``);
    ``schedule`` one of :data:`SCHEDULES` (see :func:`lr_factor`);
    ``warmup_steps`` for ``"warmup-linear"``; ``weight_decay`` on matrices only
    (:func:`param_groups`); ``max_grad_norm`` clips the total gradient norm
    (None: no clipping); ``seed`` for ``torch.manual_seed`` before the optimizer
    is built (None: the global RNG as the caller left it); ``fork_rng`` runs the
    loop inside ``torch.random.fork_rng`` so the caller's global RNG is left as
    it was; ``desc``/``progress`` label and enable the progress bar.

    Raises ValueError naming the known schedules for an unknown ``schedule``,
    and for negative ``steps``/``warmup_steps``.
    """

    lr: float
    steps: int
    schedule: str = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float | None = None
    seed: int | None = None
    fork_rng: bool = True
    desc: str = "training"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {self.schedule!r}; known: {', '.join(SCHEDULES)}")
        if self.steps < 0 or self.warmup_steps < 0:
            raise ValueError(f"TrainConfig.steps ({self.steps}) and warmup_steps ({self.warmup_steps}) "
                             f"must be >= 0")


def lr_factor(config: TrainConfig) -> Callable[[int], float]:
    """The multiplier of ``config.lr`` at step ``s`` (``LambdaLR``'s lambda), for ``steps = T``:

    * ``"constant"``: 1;
    * ``"linear"``: ``max(0, 1 - s / T)`` (no warm-up);
    * ``"warmup-linear"``: transformers' ``get_linear_schedule_with_warmup``:
      ``s / W`` for ``s < W`` warm-up steps, then ``(T - s) / (T - W)`` down to 0;
    * ``"cosine"``: ``0.5 * (1 + cos(pi * min(s, T) / T))``, from 1 to 0.

    The expressions are exactly the ones the trainers used before this module
    (float rounding included: their weights are cached by recipe hash).
    """
    total, warmup = config.steps, config.warmup_steps
    if config.schedule == "linear":
        return lambda s: max(0.0, 1 - s / total)
    if config.schedule == "warmup-linear":
        def warmup_linear(s: int) -> float:
            if s < warmup:
                return float(s) / float(max(1, warmup))
            return max(0.0, float(total - s) / float(max(1, total - warmup)))
        return warmup_linear
    if config.schedule == "cosine":
        return lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    return lambda s: 1.0


def shuffled(n: int, epochs: int, seed: int) -> Iterator[list[int]]:
    """A fresh permutation of ``range(n)`` per epoch, from a generator seeded with
    ``seed`` (not the global RNG, so dropout does not shift the order)."""
    order_rng = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        yield torch.randperm(n, generator=order_rng).tolist()


def text_task_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
                             ) -> torch.Tensor:
    """A transformers text model's own loss for ``(input_ids (B, L), attention_mask (B, L), labels)``:
    a sequence classifier's cross-entropy for labels (B,), a masked LM's for labels (B, L) (-100 where
    no token is masked)."""
    input_ids, attention_mask, labels = batch
    return model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss


def image_classification_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """A transformers image classifier's cross-entropy on ``(pixel_values (B, C, H, W), labels (B,))``."""
    pixel_values, labels = batch
    return model(pixel_values=pixel_values, labels=labels).loss


def train(model: nn.Module, batches: Iterable[B], config: TrainConfig,
          loss_fn: Callable[[nn.Module, B], torch.Tensor], *,
          before_step: Callable[[int], None] | None = None,
          after_step: Callable[[int], None] | None = None) -> list[float]:
    """Train ``model`` in place for ``config.steps`` batches; return each step's loss (float).

    ``batches`` is read lazily, one item per step (an endless iterator is fine:
    no item past the last step is taken).  Per step ``s`` (from 0):
    ``before_step(s)``, ``loss = loss_fn(model, batch)`` (a scalar tensor),
    backward, clipping, optimizer and scheduler step, ``zero_grad``, then
    ``after_step(s)`` (e.g. re-applying pruning masks to weights the optimizer
    moved).  The model is in train mode throughout and in eval mode afterwards,
    also when a hook or ``loss_fn`` raises.
    """
    rng = torch.random.fork_rng(devices=[]) if config.fork_rng else contextlib.nullcontext()
    losses: list[float] = []
    with rng:
        if config.seed is not None:
            torch.manual_seed(config.seed)
        optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config))
        model.train()
        bar = progress_bar(total=config.steps, desc=config.desc, unit="step", disable=not config.progress)
        try:
            for step, batch in enumerate(itertools.islice(batches, config.steps)):
                if before_step is not None:
                    before_step(step)
                loss = loss_fn(model, batch)
                loss.backward()
                if config.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                if after_step is not None:
                    after_step(step)
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
        finally:
            bar.close()
            model.eval()
    return losses
