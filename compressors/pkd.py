"""Prune + KD recovery + INT8 (study 003): variants ``pkd-s1``, ``pkd-s2``, ``pkd-s3``.

1. ``pkd-s1``: ``heads-attn@0.6`` (the 60% least confident heads removed
   physically, :mod:`compressors.heads`) then ``ffn-l1@0.6`` (L1 unstructured,
   60% of each FFN and classifier Linear zeroed, :mod:`compressors.prune`),
   one-shot, no training.
2. ``pkd-s2``: recovery by distillation from the unpruned FP32 model passed
   to the compressor: ``alpha * KL(softmax(t/T) || softmax(s/T)) * T^2 +
   (1 - alpha) * CE`` (:func:`compressors.distill.logit_kd_loss`, T = 4,
   alpha = 0.7), ``epochs`` over the training batches at ``lr``; the zero
   masks of stage 1 are **re-applied after every optimizer step**, so no
   pruned weight comes back (recorded as ``pruned_nonzero_after`` and
   checked by a test).  Cached by recipe hash (:mod:`compressors._stages`).
3. ``pkd-s3``: + ``int8-dynamic``.

Every step goes through :mod:`compressors.architecture`, so the pipeline runs
on any sequence classifier of the families it knows (DistilBERT, BERT/MiniLM,
RoBERTa/XLM-R); a bare encoder or an MLM model has no logits to distil and is
refused (:meth:`~compressors.base.Compressor.supports`).
"""
from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any

import torch
import torch.nn as nn

from . import _checks
from ._stages import (
    StagedConfig,
    StagedPipeline,
    cached_stage,
    fingerprint_batches,
    fingerprint_model,
    loss_summary,
    truncate,
)
from ._train import load_batches, train
from .architecture import family_of, linear_targets
from .base import Batch, CompressionContext, CompressionError, register
from .distill import check_alpha, check_temperature, logit_kd_loss
from .heads import HeadsAttn, HeadsAttnConfig
from .prune import FFNL1, FFNL1Config


@dataclasses.dataclass(frozen=True)
class PKDConfig(StagedConfig):
    """Args (study 003's values):
    head_ratio / head_batches / criterion: ``heads-attn`` options (0.6, 20, "max").
    sparsity: L1 unstructured sparsity of the FFN and classifier Linears (0.6).
    temperature / alpha: distillation T and KL weight (4, 0.7).
    epochs / lr: KD recovery passes over the training batches and AdamW peak lr.
    max_length: tokens per training example in recovery (batches truncated;
        64 to fit a shared 2-core CPU; head scoring reads full batches).
    train_batches: recovery batches (the first ones; None = all): 125 x 16
        reviews by default, for the same CPU budget.

    Raises:
        CompressionError: a value out of range (T <= 0, alpha outside [0, 1], ...).
    """

    head_ratio: float = 0.6
    head_batches: int = 20
    criterion: str = "max"
    sparsity: float = 0.6
    temperature: float = 4.0
    alpha: float = 0.7
    epochs: int = 1
    lr: float = 5e-5
    max_length: int = 64
    train_batches: int | None = 125

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        _checks.fraction(owner, "head_ratio", self.head_ratio, "share of attention heads to remove")
        _checks.fraction(owner, "sparsity", self.sparsity, "share of FFN weights to zero")
        _checks.integer(owner, "head_batches", self.head_batches, 1)
        _checks.integer(owner, "epochs", self.epochs, 0)
        _checks.integer(owner, "max_length", self.max_length, 2)
        if self.train_batches is not None:
            _checks.integer(owner, "train_batches", self.train_batches, 1)
        _checks.positive(owner, "lr", self.lr, below=1.0)
        check_temperature(self.temperature, owner)
        check_alpha(self.alpha, owner)


def prune_one_shot(model: nn.Module, config: PKDConfig, context: CompressionContext) -> nn.Module:
    """Stage 1 in place: ``heads-attn`` then ``ffn-l1`` with the config's options (registry compressors)."""
    model = HeadsAttn().compress(model, HeadsAttnConfig(ratio=config.head_ratio, n_batches=config.head_batches,
                                                        criterion=config.criterion), context)
    return FFNL1().compress(model, FFNL1Config(sparsity=config.sparsity, include_classifier=True))


def pruned_masks(model: nn.Module) -> list[tuple[nn.Linear, torch.Tensor]]:
    """``(Linear, bool mask of its zero weights)`` for the FFN and classifier Linears ``ffn-l1`` prunes."""
    return [(m, m.weight.detach() == 0) for _, m in linear_targets(model, "pkd", ("ffn",), True)]


def kd_recover(student: nn.Module, teacher: nn.Module, batches: list[Batch], config: PKDConfig,
               seed: int) -> tuple[list[float], int]:
    """Distil ``teacher`` into ``student`` in place, keeping its zeros; returns (losses, pruned weights non-zero after).

    The masks are taken from ``student``'s zero weights before training and
    re-applied after every optimizer step (AdamW moves a zero weight: its
    gradient, momentum and weight decay are not zero).
    """
    teacher.eval()
    masks = pruned_masks(student)

    def loss_fn(model: nn.Module, batch: Batch) -> torch.Tensor:
        ids, mask, labels = batch
        with torch.no_grad():
            t_logits = teacher(input_ids=ids, attention_mask=mask).logits
        s_logits = model(input_ids=ids, attention_mask=mask).logits
        return logit_kd_loss(s_logits, t_logits, labels, config.temperature, config.alpha)

    @torch.no_grad()
    def after(step: int) -> None:
        for m, mask in masks:
            m.weight.masked_fill_(mask, 0.0)

    losses = train(student, batches, epochs=config.epochs, lr=config.lr, seed=seed, loss_fn=loss_fn, after_step=after)
    regrown = sum(int(m.weight.detach()[mask].count_nonzero()) for m, mask in masks)
    return losses, regrown


class _PKD(StagedPipeline):
    config_cls = PKDConfig

    def check_model(self, model: nn.Module, config: PKDConfig | None = None) -> None:
        """A sequence classifier of a known family: the head is pruned and its logits distilled."""
        family = family_of(model, self.name)
        if not family.is_classifier(model):
            raise CompressionError(
                f"variant '{self.name}' prunes the classification head and distils its logits, so it needs a "
                f"sequence classifier ({family.name} with {'/'.join(family.head)}); {type(model).__name__} has none")

    def compress(self, model: nn.Module, config: PKDConfig,
                 context: CompressionContext | None = None) -> nn.Module:
        assert context is not None  # base.run checked needs_context
        self.check_model(model, config)
        stages: dict[str, Any] = {}
        if self.stage == 1:
            t0 = time.perf_counter()
            pruned = prune_one_shot(model, config, context)
            stages["s1"] = {"prune_s": round(time.perf_counter() - t0, 1)}
            return self.finish(pruned, stages)
        batches = truncate(load_batches(context, self.name, config.train_batches), config.max_length)
        teacher = model.eval()
        payload = {"stage": 2, "version": 1, "teacher": fingerprint_model(teacher), "data": fingerprint_batches(batches),
                   "seed": context.seed, **{k: v for k, v in config.to_dict().items() if k != "kept_heads"}}

        def build() -> tuple[nn.Module, dict[str, Any]]:
            t0 = time.perf_counter()
            student = prune_one_shot(copy.deepcopy(teacher), config, context)
            prune_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            losses, regrown = kd_recover(student, teacher, batches, config, context.seed)
            return student, {"prune_s": round(prune_s, 1), "train_s": round(time.perf_counter() - t0, 1),
                             "pruned_nonzero_after": regrown, **{f"kd_{k}": v for k, v in loss_summary(losses).items()}}

        student, meta, _ = cached_stage("pkd-s2", payload, build)
        stages["s2"] = {k: meta.get(k) for k in ("prune_s", "train_s", "pruned_nonzero_after", "kd_loss_last_10pct")}
        return self.finish(student, stages)


@register
class PKDStage1(_PKD):
    name = "pkd-s1"
    stage = 1
    description = "study 003 stage 1: heads-attn@0.6 + L1 60% on FFN and classifier, one-shot"


@register
class PKDStage2(_PKD):
    name = "pkd-s2"
    stage = 2
    description = "study 003 stage 2: + KD recovery from fp32 (T=4, alpha=0.7), masks kept"


@register
class PKDStage3(_PKD):
    name = "pkd-s3"
    stage = 3
    description = "study 003 stage 3: + INT8 dynamic quantization"
