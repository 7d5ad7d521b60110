"""Distillation losses: MiniLMv2 self-attention relations, softened logits, hidden-state cosine.

* :func:`relation_kd_loss` -- Wang et al. (2021, "MiniLMv2: Multi-Head
  Self-Attention Relation Distillation"), study 000 stage 1.  The queries
  (keys, values) ``X`` (B, L, H) of one layer are split into ``R`` *relation
  heads* of size ``H/R`` (independent of the model's attention heads, so
  teacher and student may differ in hidden size and head count); per relation
  head ``rel = softmax(X_r X_r^T / sqrt(H/R))`` (B, R, L, L) with padding keys
  masked out; the loss is ``sum over Q-Q, K-K, V-V of KL(rel_teacher ||
  rel_student)``, averaged over relation heads and non-padding queries (nats).
* :func:`logit_kd_loss` -- Hinton et al. (2015) as written in study 003:
  ``alpha * KL(softmax(t/T) || softmax(s/T)) * T^2 + (1 - alpha) * CE(s, y)``.
* :func:`cosine_hidden_loss` -- DistilBERT's cosine embedding loss (Sanh et
  al., 2019; study 001's "cosine eval loss"): ``1 - cos(h_s, h_t)`` averaged
  over non-padding tokens.

:class:`QKVCapture` records an encoder layer's query/key/value projections
(DistilBERT ``q_lin``/``k_lin``/``v_lin``, BERT/RoBERTa ``query``/``key``/``value``,
found by :mod:`compressors.architecture`) with forward hooks, so no model code
is copied.  Bad input raises a one-line :class:`~compressors.base.CompressionError`
naming the problem.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .architecture import encoder_layers, family_of
from .base import CompressionError

RELATIONS = ("q", "k", "v")


def check_temperature(temperature: Any, owner: str = "distillation") -> None:
    """Raises CompressionError unless ``temperature`` is a finite number > 0."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not math.isfinite(temperature) or temperature <= 0:
        raise CompressionError(f"{owner}: temperature = {temperature!r} must be a number > 0 (study 003 uses 4)")


def check_alpha(alpha: Any, owner: str = "distillation") -> None:
    """Raises CompressionError unless ``alpha`` is a number in [0, 1]."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (0 <= alpha <= 1):
        raise CompressionError(
            f"{owner}: alpha = {alpha!r} must be in [0, 1] (the weight of the KL term; study 003 uses 0.7)")


def resolve_layer(model: nn.Module, layer: int, role: str, variant: str = "distillation") -> int:
    """The non-negative index of encoder ``layer`` (negative counts from the end).

    Raises:
        CompressionError: the model has no such layer (the message gives the valid range).
    """
    n = len(encoder_layers(model, variant))
    if isinstance(layer, bool) or not isinstance(layer, int) or not -n <= layer < n:
        raise CompressionError(
            f"{variant}: unknown {role} layer {layer!r}; the {role} has {n} layers (use 0..{n - 1} or -1 for the last)")
    return layer % n


class QKVCapture:
    """Context manager recording the q/k/v projections (B, L, H) of one encoder layer.

    ``capture.out`` maps ``"q"``, ``"k"``, ``"v"`` to the tensors of the last
    forward (with autograd history if the forward had it).

    Raises:
        CompressionError: unknown layer, or a layer whose heads were all pruned.
    """

    def __init__(self, model: nn.Module, layer: int, role: str = "model", variant: str = "distillation") -> None:
        index = resolve_layer(model, layer, role, variant)
        projections = family_of(model, variant).projections(encoder_layers(model, variant)[index])
        self.projections = {r: projections[r] for r in RELATIONS}
        if any(m is None for m in self.projections.values()):
            raise CompressionError(f"{variant}: {role} layer {index} has no attention heads left to distil")
        self.out: dict[str, torch.Tensor] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> "QKVCapture":
        for r in RELATIONS:
            def hook(module: nn.Module, args: tuple, output: torch.Tensor, r: str = r) -> None:
                self.out[r] = output
            self._handles.append(self.projections[r].register_forward_hook(hook))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def relation_logprobs(x: torch.Tensor, attention_mask: torch.Tensor, relation_heads: int) -> torch.Tensor:
    """Log of the self-attention relation of ``x`` (B, L, H): (B, R, L, L), padding keys masked.

    Raises:
        CompressionError: ``H`` not divisible by ``relation_heads``.
    """
    b, n, h = x.shape
    if h % relation_heads:
        raise CompressionError(
            f"hidden size {h} is not divisible by {relation_heads} relation heads; choose relation_heads "
            f"dividing both the teacher's and the student's hidden size")
    d = h // relation_heads
    xr = x.view(b, n, relation_heads, d).transpose(1, 2)  # (B, R, L, d)
    scores = xr @ xr.transpose(-1, -2) / math.sqrt(d)
    keys = attention_mask[:, None, None, :].bool()
    scores = scores.masked_fill(~keys, torch.finfo(scores.dtype).min)
    return F.log_softmax(scores, dim=-1)


def relation_kd_loss(teacher_qkv: dict[str, torch.Tensor], student_qkv: dict[str, torch.Tensor],
                     attention_mask: torch.Tensor, relation_heads: int = 12) -> torch.Tensor:
    """MiniLMv2 loss (nats): ``sum_{Q-Q,K-K,V-V} KL(teacher relation || student relation)``.

    Args:
        teacher_qkv / student_qkv: ``{"q", "k", "v"}`` -> (B, L, H_t) / (B, L, H_s).
        attention_mask: (B, L), 1 for real tokens.
        relation_heads: ``R``; must divide ``H_t`` and ``H_s``.

    Raises:
        CompressionError: missing q/k/v, batch or length mismatch, ``R`` < 1 or not dividing a hidden size.
    """
    if isinstance(relation_heads, bool) or not isinstance(relation_heads, int) or relation_heads < 1:
        raise CompressionError(f"relation_heads = {relation_heads!r} must be an integer >= 1")
    for name, qkv in (("teacher", teacher_qkv), ("student", student_qkv)):
        if set(qkv) != set(RELATIONS):
            raise CompressionError(f"{name} relations need q, k and v; got {sorted(qkv)}")
    ht, hs = teacher_qkv["q"].shape[-1], student_qkv["q"].shape[-1]
    for size, who in ((ht, "teacher"), (hs, "student")):
        if size % relation_heads:
            raise CompressionError(
                f"relation_heads = {relation_heads} does not divide the {who} hidden size {size} "
                f"(teacher {ht}, student {hs}); choose a common divisor")
    if teacher_qkv["q"].shape[:2] != student_qkv["q"].shape[:2]:
        raise CompressionError(
            f"teacher and student saw different inputs: {tuple(teacher_qkv['q'].shape[:2])} vs "
            f"{tuple(student_qkv['q'].shape[:2])}")
    queries = attention_mask.to(torch.float32)  # (B, L)
    total = torch.zeros(())
    for r in RELATIONS:
        t = relation_logprobs(teacher_qkv[r].detach().float(), attention_mask, relation_heads)
        s = relation_logprobs(student_qkv[r].float(), attention_mask, relation_heads)
        # KL per query row, (B, R, L); padding keys have p_t = 0 (xlogy-safe via kl_div log_target).
        kl = F.kl_div(s, t, log_target=True, reduction="none").sum(-1)
        total = total + (kl * queries[:, None, :]).sum() / (queries.sum() * relation_heads)
    return total


def logit_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None,
                  temperature: float = 4.0, alpha: float = 0.7) -> torch.Tensor:
    """``alpha * KL(softmax(t/T) || softmax(s/T)) * T^2 + (1 - alpha) * CE(s, labels)`` (nats).

    Shapes: logits (B, C), labels (B,) int64 (may be None only when alpha == 1).
    Source: Hinton et al. (2015); study 003 (T = 4, alpha = 0.7).

    Raises:
        CompressionError: T <= 0, alpha outside [0, 1], logits of different shapes, missing labels.
    """
    check_temperature(temperature)
    check_alpha(alpha)
    if student_logits.shape != teacher_logits.shape:
        raise CompressionError(
            f"student logits {tuple(student_logits.shape)} and teacher logits {tuple(teacher_logits.shape)} "
            f"differ: teacher and student must have the same number of classes")
    t = temperature
    kl = F.kl_div(F.log_softmax(student_logits / t, dim=-1), F.log_softmax(teacher_logits.detach() / t, dim=-1),
                  log_target=True, reduction="batchmean") * t * t
    if alpha == 1:
        return kl
    if labels is None:
        raise CompressionError("logit_kd_loss with alpha < 1 needs labels for the cross-entropy term")
    return alpha * kl + (1 - alpha) * F.cross_entropy(student_logits, labels)


def cosine_hidden_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
                       attention_mask: torch.Tensor) -> torch.Tensor:
    """``1 - cos(h_s, h_t)`` averaged over non-padding tokens; hidden states (B, L, H).

    Raises:
        CompressionError: hidden sizes differ (naming both) or batch/length differ.
    """
    if student_hidden.shape[-1] != teacher_hidden.shape[-1]:
        raise CompressionError(
            f"cosine loss needs equal hidden sizes: student {student_hidden.shape[-1]}, teacher "
            f"{teacher_hidden.shape[-1]}; use a same-width teacher (or a projection)")
    if student_hidden.shape != teacher_hidden.shape:
        raise CompressionError(
            f"student hidden states {tuple(student_hidden.shape)} and teacher {tuple(teacher_hidden.shape)} differ")
    cos = F.cosine_similarity(student_hidden.float(), teacher_hidden.float(), dim=-1)  # (B, L)
    keep = attention_mask.bool()
    return (1 - cos)[keep].mean()
