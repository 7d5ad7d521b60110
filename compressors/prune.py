"""Unstructured L1-magnitude pruning: ``magnitude-global``, ``magnitude-layerwise``, ``ffn-l1``.

The weights of smallest absolute value are set to zero with
``torch.nn.utils.prune`` (Han et al., 2015; study 002 "Magnitude pruning
sweeps of DistilBERT 50-80%"), and the masks are made permanent
(``prune.remove``) so the result is a plain model with zeros in its weights:

* ``magnitude-global@S`` -- one threshold over all encoder-layer Linear
  weights (attention Q, K, V, O and FFN; ``prune.global_unstructured`` with
  ``L1Unstructured``): layers whose weights are small lose more.
* ``magnitude-layerwise@S`` -- the same fraction ``S`` of every such Linear
  (``prune.l1_unstructured`` per module).
* ``ffn-l1@S`` -- per-module L1 pruning of the FFN Linears (DistilBERT
  ``ffn.lin1``/``ffn.lin2``, BERT/RoBERTa ``intermediate.dense``/``output.dense``)
  and the classification head only (study 003 uses 60%).

The Linears are found by :func:`compressors.architecture.linear_targets`
(DistilBERT, BERT/MiniLM, RoBERTa/XLM-R); ``include_classifier`` adds the
classification head as defined there (BERT: pooler + classifier).

``S`` is the fraction of the targeted weights that become zero, exactly
``round(S * n)`` of them (per module for the layerwise variants).  Biases,
LayerNorms and embeddings are never pruned.  Zeros do not shrink a dense
weight file or speed up dense kernels: ``harness.measure.params.sparse_size_bytes``
tells what a sparse format would store.

Optional recovery fine-tuning (``recovery_epochs > 0``) follows Zhu & Gupta
(2017, "To prune, or not to prune"): fine-tune on the context's training
batches while sparsity rises from 0 to ``S`` on the cubic schedule
``s_t = S * (1 - (1 - t/T)^3)`` over the ``T`` recovery steps, masks
recomputed every ``prune_interval`` steps and re-applied after every
optimizer step so pruned weights stay exactly zero.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Sequence

import torch
import torch.nn as nn
import torch.nn.utils.prune as tprune

from . import _checks
from ._train import load_batches, train
from .architecture import linear_targets
from .base import Batch, CompressionContext, Compressor, CompressorConfig, register

GLOBAL, LAYERWISE = "global", "layerwise"


@dataclasses.dataclass(frozen=True)
class MagnitudeConfig(CompressorConfig):
    """Args:
    sparsity: fraction of the targeted Linear weights set to zero, in [0, 1).
    include_classifier: also prune the classification head (DistilBERT
        ``pre_classifier`` + ``classifier``; see :mod:`compressors.architecture`).
    recovery_epochs: epochs of fine-tuning on the context's training batches
        while sparsity ramps up (0 = one-shot pruning, no data needed).
    recovery_lr: AdamW peak learning rate of recovery, decayed linearly to 0.
    prune_interval: optimizer steps between mask updates during recovery
        (Zhu & Gupta's Delta t; masks are re-applied after every step).

    Raises:
        CompressionError: a value out of range.
    """

    sparsity: float = 0.5
    include_classifier: bool = False
    recovery_epochs: int = 0
    recovery_lr: float = 5e-5
    prune_interval: int = 10

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _checks.fraction(owner, "sparsity", self.sparsity, "share of weights to zero")
        _checks.boolean(owner, "include_classifier", self.include_classifier)
        _checks.integer(owner, "recovery_epochs", self.recovery_epochs, 0)
        _checks.positive(owner, "recovery_lr", self.recovery_lr, below=1.0)
        _checks.integer(owner, "prune_interval", self.prune_interval, 1)


@dataclasses.dataclass(frozen=True)
class FFNL1Config(MagnitudeConfig):
    """:class:`MagnitudeConfig` with study 003's defaults: 60%, classifier included."""

    sparsity: float = 0.6
    include_classifier: bool = True


def cubic_sparsity(step: int, total_steps: int, final: float) -> float:
    """Zhu & Gupta (2017) eq. 1 with s_i = 0, t_0 = 0, n*Delta t = ``total_steps``:
    ``final * (1 - (1 - step/total_steps)^3)``; 0 at step 0, ``final`` from ``total_steps`` on."""
    progress = min(max(step / total_steps, 0.0), 1.0)
    return final * (1.0 - (1.0 - progress) ** 3)


def prune_to(modules: Sequence[nn.Linear], sparsity: float, scope: str) -> list[torch.Tensor]:
    """Zero the ``sparsity`` fraction of smallest-|w| weights of ``modules`` in place.

    ``scope`` ``"global"``: one ranking over all weights; ``"layerwise"``: per
    module.  Masks are made permanent with ``prune.remove`` (the Parameter
    objects survive, so an optimizer holding them stays valid).

    Returns:
        Per module, a bool tensor of the weight's shape, True where pruned.
    """
    params = [(m, "weight") for m in modules]
    if scope == GLOBAL:
        tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=sparsity)
    else:
        for m, name in params:
            tprune.l1_unstructured(m, name, amount=sparsity)
    pruned = [m.weight_mask == 0 for m in modules]
    for m, name in params:
        tprune.remove(m, name)
    return pruned


@dataclasses.dataclass
class RecoveryLog:
    """Per optimizer step: training ``loss`` (nats), scheduled ``target``
    sparsity and the measured ``sparsity`` of the targeted weights after the
    step (fraction of exact zeros)."""

    loss: list[float] = dataclasses.field(default_factory=list)
    target: list[float] = dataclasses.field(default_factory=list)
    sparsity: list[float] = dataclasses.field(default_factory=list)


def recover(modules: Sequence[nn.Linear], model: nn.Module, batches: Sequence[Batch],
            config: MagnitudeConfig, scope: str, seed: int) -> RecoveryLog:
    """Fine-tune ``model`` while pruning ``modules`` gradually to ``config.sparsity``.

    Masks follow :func:`cubic_sparsity` (recomputed by magnitude every
    ``config.prune_interval`` steps) and are re-applied after every optimizer
    step.  The final step of the schedule is left to the caller's one-shot
    :func:`prune_to` at the full sparsity, which the cubic schedule makes a
    small last cut.
    """
    total = config.recovery_epochs * len(batches)
    log = RecoveryLog()
    pruned: list[torch.Tensor] = []
    n_weights = sum(m.weight.numel() for m in modules)

    def before(step: int) -> None:
        nonlocal pruned
        if step % config.prune_interval == 0:
            with torch.no_grad():
                pruned = prune_to(modules, cubic_sparsity(step, total, config.sparsity), scope)
        log.target.append(cubic_sparsity(step - step % config.prune_interval, total, config.sparsity))

    @torch.no_grad()
    def after(step: int) -> None:
        # The optimizer moved pruned weights (their gradient is not zero); put them back.
        for m, mask in zip(modules, pruned):
            m.weight.masked_fill_(mask, 0.0)
        log.sparsity.append(1 - sum(int(m.weight.count_nonzero()) for m in modules) / n_weights)

    log.loss = train(model, batches, epochs=config.recovery_epochs, lr=config.recovery_lr, seed=seed,
                     before_step=before, after_step=after)
    return log


class _MagnitudePruner(Compressor):
    config_cls: ClassVar[type[MagnitudeConfig]] = MagnitudeConfig
    float_output = True
    scope: ClassVar[str]
    parts: ClassVar[tuple[str, ...]] = ("attention", "ffn")

    def parse_arg(self, arg: str) -> dict[str, Any]:
        return _checks.parse_fraction(self.name, arg, "sparsity", "target sparsity")

    def needs_context(self, config: MagnitudeConfig) -> bool:
        return config.recovery_epochs > 0

    def targets(self, model: nn.Module, config: MagnitudeConfig) -> list[tuple[str, nn.Linear]]:
        """``(name, Linear)`` pruned by this variant.

        Raises:
            CompressionError: not a DistilBERT/BERT/RoBERTa model, no float Linear
                left, or ``include_classifier`` without a head (:func:`linear_targets`).
        """
        return linear_targets(model, self.name, self.parts, config.include_classifier)

    def check_model(self, model: nn.Module, config: MagnitudeConfig | None = None) -> None:
        self.targets(model, config or self.config_cls())

    def compress(self, model: nn.Module, config: MagnitudeConfig,
                 context: CompressionContext | None = None) -> nn.Module:
        modules = [m for _, m in self.targets(model, config)]
        if config.recovery_epochs > 0:
            assert context is not None  # base.run checked needs_context
            recover(modules, model, load_batches(context, self.name), config, self.scope, context.seed)
        with torch.no_grad():
            prune_to(modules, config.sparsity, self.scope)
        return model.eval()

    def describe(self, model: nn.Module, config: MagnitudeConfig) -> dict[str, Any]:
        return {"pruning": self.name, "pruning_target_sparsity": config.sparsity,
                "pruning_recovery_epochs": config.recovery_epochs}


@register
class MagnitudeGlobal(_MagnitudePruner):
    name = "magnitude-global"
    scope = GLOBAL
    description = "L1 unstructured pruning of the encoder Linears, one global threshold (study 002)"


@register
class MagnitudeLayerwise(_MagnitudePruner):
    name = "magnitude-layerwise"
    scope = LAYERWISE
    description = "L1 unstructured pruning of the encoder Linears, the same fraction per layer"


@register
class FFNL1(_MagnitudePruner):
    name = "ffn-l1"
    config_cls = FFNL1Config
    scope = LAYERWISE
    parts = ("ffn",)
    description = "L1 unstructured pruning of the FFN and classifier Linears, per layer (study 003)"
