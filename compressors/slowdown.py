"""``slowdown@F``: the FP32 model doing a fraction ``F`` more Linear work -- the gate's positive control.

Not a compression method: the injected regression that ``python -m harness calibrate``
(issue 16) measures the gate's detection rate with, and that a run including it shows
as a control ("a ~10% slowdown must be seen").  Every ``nn.Linear`` gets a forward hook
that multiplies its input once more by the first ``round(F × out_features)`` rows of its
weight and discards the product, so the logits, the weights and their checksums are the
FP32 model's while the counted Linear FLOPs grow by ``F`` (Linears are ~90% of a BERT
forward at seq 128, so the whole forward by slightly less).  The hooks are not part of
the state dict: :meth:`Slowdown.restore` puts them back on load.
"""
from __future__ import annotations

import dataclasses

import torch.nn as nn
import torch.nn.functional as F

from .base import CompressionError, Compressor, CompressorConfig, register


@dataclasses.dataclass(frozen=True)
class SlowdownConfig(CompressorConfig):
    fraction: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise CompressionError(f"slowdown fraction must be in (0, 1], got {self.fraction}")


def _extra_work(rows: int):
    def hook(module: nn.Linear, inputs, output):
        F.linear(inputs[0], module.weight[:rows])  # discarded: only the time counts

    return hook


@register
class Slowdown(Compressor):
    name = "slowdown"
    config_cls = SlowdownConfig
    description = "calibration control: FP32 with F (default 0.1) more Linear work per forward, same outputs"

    def parse_arg(self, arg: str) -> dict:
        try:
            return {"fraction": float(arg)}
        except ValueError:
            raise CompressionError(f"slowdown@F takes a fraction, e.g. slowdown@0.1 (got '@{arg}')") from None

    def compress(self, model: nn.Module, config: SlowdownConfig) -> nn.Module:
        return self.restore(model, config)

    def restore(self, skeleton: nn.Module, config: SlowdownConfig) -> nn.Module:
        for module in skeleton.modules():
            if isinstance(module, nn.Linear):
                module.register_forward_hook(_extra_work(max(1, round(config.fraction * module.out_features))))
        return skeleton

    def describe(self, model: nn.Module, config: SlowdownConfig) -> dict:
        return {"injected_linear_work_fraction": config.fraction}
