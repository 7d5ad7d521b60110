"""``int8-dynamic``: post-training dynamic INT8 quantization of ``nn.Linear``.

Weights are quantized to INT8 ahead of time; activations are quantized per
batch at run time (Jacob et al., 2018; study 001 "Quantization (INT8)",
study 000 stage 3).  Two maintained implementations are selectable with
``engine``:

* ``"torch.ao"`` (default) -- ``torch.ao.quantization.quantize_dynamic`` with
  the backend in ``torch.backends.quantized.engine`` (``x86`` = fbgemm+onednn).
  Measured faster on this project's 2-core x86 machines (the suite's
  ``int8-engine`` group re-measures it every run).
* ``"torchao"`` -- torchao's ``Int8DynamicActivationInt8WeightConfig`` run
  eagerly (``torch._int_mm``); its weights are always per-channel.

``int8-dynamic-pc`` uses one weight scale per output channel instead of one per
tensor: finer scales, the same kernels.

``int8-static`` is post-training *static* INT8 (weights and activations, activation ranges
calibrated ahead of time on real training inputs; Jacob et al., 2018): a stage the deployment
runtime carries out on its own graph (:attr:`Compressor.runtime_stage`) -- NNCF's
``nncf.quantize`` for the ``openvino`` backend, ``onnxruntime.quantization.quantize_static``
(QDQ) for ``onnxruntime`` -- so :meth:`Int8Static.compress` refuses a torch
module with the backends that build it.  Whether that keeps more accuracy is a
per-model result of the quality tables, not a property of the variant (the
choice was once made from MR test accuracy; no split here selects a variant).
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import torch
import torch.ao.nn.quantized.dynamic as nnqd
import torch.nn as nn

from harness.core.quiet import drop_known_import_noise

from .architecture import is_head
from .base import CompressionError, Compressor, CompressorConfig, register

ENGINES = ("torch.ao", "torchao")


@dataclasses.dataclass(frozen=True)
class Int8DynamicConfig(CompressorConfig):
    """Args:
    engine: ``"torch.ao"`` or ``"torchao"``.
    include_classifier: also quantize the classification head's Linear layers.
    per_channel: one weight scale per output channel (torch.ao engine; torchao
        is per-channel regardless).
    """

    engine: str = "torch.ao"
    include_classifier: bool = True
    per_channel: bool = False

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise CompressionError(
                f"unknown int8 engine '{self.engine}'; choose one of {', '.join(ENGINES)}"
            )


def _targeted(name: str, mod: nn.Module, config: Int8DynamicConfig) -> bool:
    """Whether ``config`` quantizes the module ``name``: every float ``nn.Linear``, the
    classification head's only with ``include_classifier``."""
    return type(mod) is nn.Linear and (config.include_classifier or not is_head(name))


def _quantize_torch_ao(model: nn.Module, config: Int8DynamicConfig) -> nn.Module:
    targets = {name for name, mod in model.named_modules() if _targeted(name, mod, config)}
    qconfig = (torch.ao.quantization.per_channel_dynamic_qconfig if config.per_channel
               else torch.ao.quantization.default_dynamic_qconfig)
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao but still maintained in 2.13.
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(
            model, {name: qconfig for name in targets}, dtype=torch.qint8, inplace=True
        )


def _quantize_torchao(model: nn.Module, config: Int8DynamicConfig) -> nn.Module:
    # Imported here, not at module level: only the torchao engine needs it, and
    # importing it is slow and loads its kernel libraries into the process.
    drop_known_import_noise()  # its CPU-only kernel-load failures (harness.core.quiet)
    from torchao.quantization import (
        Int8DynamicActivationInt8WeightConfig,
        quantize_,
    )

    quantize_(model, Int8DynamicActivationInt8WeightConfig(), filter_fn=lambda mod, name: _targeted(name, mod, config))
    return model


def linear_counts(model: nn.Module) -> tuple[int, int]:
    """(quantized Linear layers, all Linear layers) in ``model``, for either engine."""
    quantized = total = 0
    for mod in model.modules():
        if isinstance(mod, nnqd.Linear):
            quantized += 1
            total += 1
        elif isinstance(mod, nn.Linear):
            total += 1
            # torchao keeps nn.Linear but swaps its weight for a quantized tensor subclass.
            if type(mod.weight.data) is not torch.Tensor:
                quantized += 1
    return quantized, total


@register
class Int8Dynamic(Compressor):
    name = "int8-dynamic"
    config_cls = Int8DynamicConfig
    description = "INT8 dynamic quantization of every nn.Linear (weights INT8, activations per batch)"

    def parse_arg(self, arg: str) -> dict[str, Any]:
        return {"engine": arg}

    def compress(self, model: nn.Module, config: Int8DynamicConfig) -> nn.Module:
        model.eval()
        # Zeros already in the float weights (a pruner's): once quantized, a weight rounded to
        # zero looks the same, so they are counted now and reported by describe().
        pruned = sum(int((mod.weight == 0).sum()) for name, mod in model.named_modules()
                     if _targeted(name, mod, config))
        quantized = _quantize_torch_ao(model, config) if config.engine == "torch.ao" else _quantize_torchao(model, config)
        quantized.pruned_linear_zeros = pruned
        return quantized

    def restore(self, skeleton: nn.Module, config: Int8DynamicConfig) -> nn.Module:
        if config.engine != "torch.ao":
            return self.compress(skeleton, config)
        # Swap in empty quantized Linears instead of quantizing the skeleton:
        # observing and packing uninitialised FP32 weights would cost ~0.7 s
        # and touch every page of the FP32 skeleton, inflating cold start and RSS.
        for name, mod in list(skeleton.named_modules()):
            if _targeted(name, mod, config):
                parent_name, _, child = name.rpartition(".")
                parent = skeleton.get_submodule(parent_name) if parent_name else skeleton
                setattr(parent, child, nnqd.Linear(
                    mod.in_features, mod.out_features, bias_=mod.bias is not None, dtype=torch.qint8))
        return skeleton

    def describe(self, model: nn.Module, config: Int8DynamicConfig) -> dict[str, Any]:
        quantized, total = linear_counts(model)
        engine = config.engine
        if engine == "torch.ao":
            engine = f"torch.ao/{torch.backends.quantized.engine}"
        per_channel = config.per_channel or config.engine == "torchao"
        return {
            "quant_engine": engine,
            "weight_granularity": "per_channel" if per_channel else "per_tensor",
            # torch.ao's dynamic Linear always calls linear_dynamic(..., reduce_range=True): 7-bit
            # activations; torchao quantizes them per token to the full int8 range.  ORT's choice is
            # in the onnx artifact (reduce_range: 7-bit *weights* on CPUs without VNNI).
            "activation_bits": 7 if config.engine == "torch.ao" else 8,
            "weight_bits": 8,
            "quantized_linear": quantized,
            "total_linear": total,
            "quantized_linear_fraction": quantized / total if total else 0.0,
            # zero weights of the float Linears before quantization (None: a model not built here)
            "pruned_linear_zeros": getattr(model, "pruned_linear_zeros", None),
        }


@dataclasses.dataclass(frozen=True)
class Int8DynamicPerChannelConfig(Int8DynamicConfig):
    per_channel: bool = True


@register
class Int8DynamicPerChannel(Int8Dynamic):
    name = "int8-dynamic-pc"
    config_cls = Int8DynamicPerChannelConfig
    description = "INT8 dynamic quantization with per-channel weight scales"


PRESETS = ("performance", "mixed")


@dataclasses.dataclass(frozen=True)
class Int8StaticConfig(CompressorConfig):
    """Args:
    calibration_size: training-split inputs (one sequence each, at the task's evaluation length)
        whose activation ranges set the scales; never evaluation data.
    preset: NNCF's ``QuantizationPreset`` names: ``"performance"`` (symmetric weights and
        activations) or ``"mixed"`` (asymmetric activations); ONNX Runtime takes asymmetric UINT8
        activations for either (see :mod:`harness.backends.onnx_export`).
    """

    calibration_size: int = 300
    preset: str = "performance"

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise CompressionError(f"unknown int8-static preset '{self.preset}'; choose one of {', '.join(PRESETS)}")
        if self.calibration_size < 1:
            raise CompressionError(f"int8-static calibration_size must be at least 1, got {self.calibration_size}")


@register
class Int8Static(Compressor):
    name = "int8-static"
    config_cls = Int8StaticConfig
    description = "INT8 static post-training quantization calibrated on training inputs, by the deployment runtime"
    runtime_stage = True

    def compress(self, model: nn.Module, config: Int8StaticConfig) -> nn.Module:
        raise CompressionError("variant 'int8-static' is quantized by the deployment runtime on its own graph: "
                               "measure it with --backends openvino (NNCF) or onnxruntime (quantize_static); on torch use "
                               "int8-dynamic")
