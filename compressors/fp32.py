"""``fp32``: the uncompressed baseline, every other variant's reference."""
from __future__ import annotations

import dataclasses

import torch.nn as nn

from .base import Compressor, CompressorConfig, register


@dataclasses.dataclass(frozen=True)
class FP32Config(CompressorConfig):
    pass


@register
class FP32(Compressor):
    name = "fp32"
    config_cls = FP32Config
    description = "FP32 baseline (no compression)"

    def compress(self, model: nn.Module, config: FP32Config) -> nn.Module:
        return model
