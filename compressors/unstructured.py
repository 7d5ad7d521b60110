"""``l1-unstructured@S`` and ``random-unstructured@S``: study 004's unstructured pruning.

The fraction ``S`` of every Conv2d and Linear weight outside the
classification head is set to zero, layer by layer, with
``torch.nn.utils.prune`` -- ``l1_unstructured`` (smallest |w| first) or
``random_unstructured`` (a seeded random choice, study 004's control) -- and
the masks are made permanent.  Model-agnostic (any model with Conv2d/Linear
layers: ConvNeXt's depthwise and pointwise layers, a transformer's Linears;
the head is :func:`compressors.architecture.is_head`).
Zeros neither shrink a dense file nor speed up dense kernels: the report shows
``nonzero_params`` and the CSR size next to the dense size, as for
:mod:`compressors.prune` (whose :func:`~compressors.prune.prune_to` runs the
L1 variant).
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.utils.prune as tprune

from . import _checks
from .architecture import is_head
from .base import CompressionError, Compressor, CompressorConfig, register
from .prune import LAYERWISE, prune_to


@dataclasses.dataclass(frozen=True)
class UnstructuredConfig(CompressorConfig):
    """Args:
    sparsity: fraction of each targeted weight set to zero, in [0, 1).
    include_classifier: also prune the classification head.
    seed: RNG seed of ``random-unstructured`` (ignored by ``l1-unstructured``).

    Raises:
        CompressionError: a value out of range.
    """

    sparsity: float = 0.5
    include_classifier: bool = False
    seed: int = 42

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _checks.fraction(owner, "sparsity", self.sparsity, "share of weights to zero")
        _checks.boolean(owner, "include_classifier", self.include_classifier)
        _checks.integer(owner, "seed", self.seed, 0)


def weight_targets(model: nn.Module, include_classifier: bool, variant: str) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every float Conv2d / Linear whose weights are pruned.

    Raises:
        CompressionError: the model has none (e.g. already quantized).
    """
    out = [(name, mod) for name, mod in model.named_modules()
           if type(mod) in (nn.Linear, nn.Conv2d)
           and (include_classifier or not is_head(name))]
    if not out:
        raise CompressionError(f"variant '{variant}' found no float Conv2d/Linear layers to prune; "
                               f"put quantization after pruning ('{variant}@0.5+int8')")
    return out


class _Unstructured(Compressor):
    config_cls = UnstructuredConfig
    float_output = True
    method: ClassVar[str]

    def parse_arg(self, arg: str) -> dict[str, Any]:
        return _checks.parse_fraction(self.name, arg, "sparsity", "fraction of weights to zero")

    def check_model(self, model: nn.Module, config: UnstructuredConfig | None = None) -> None:
        """Any model with a float Conv2d or Linear outside the head (:func:`weight_targets`)."""
        weight_targets(model, (config or UnstructuredConfig()).include_classifier, self.name)

    def describe(self, model: nn.Module, config: UnstructuredConfig) -> dict[str, Any]:
        return {"pruning": self.name, "pruning_target_sparsity": config.sparsity,
                "pruned_layers": len(weight_targets(model, config.include_classifier, self.name))}


@register
class L1Unstructured(_Unstructured):
    name = "l1-unstructured"
    description = "L1 unstructured pruning of every Conv2d/Linear, the same fraction per layer (study 004)"

    def compress(self, model: nn.Module, config: UnstructuredConfig) -> nn.Module:
        modules = [m for _, m in weight_targets(model, config.include_classifier, self.name)]
        with torch.no_grad():
            prune_to(modules, config.sparsity, LAYERWISE)
        return model.eval()


@register
class RandomUnstructured(_Unstructured):
    name = "random-unstructured"
    description = "random unstructured pruning of every Conv2d/Linear, per layer (study 004's control)"

    def compress(self, model: nn.Module, config: UnstructuredConfig) -> nn.Module:
        modules = [m for _, m in weight_targets(model, config.include_classifier, self.name)]
        # fork_rng: a seeded choice that leaves the caller's global RNG as it was.
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(config.seed)
            for m in modules:
                tprune.random_unstructured(m, "weight", amount=config.sparsity)
                tprune.remove(m, "weight")
        return model.eval()
