"""``structured@S``: channel pruning that physically removes ConvNeXt channels.

Torch-Pruning's dependency graph (Fang et al., CVPR 2023, "DepGraph: Towards
Any Structural Pruning"; PyPI ``torch-pruning==1.6.1``) groups every
parameter coupled to a channel -- the stem or downsampling convolution, the
stage's LayerNorms, depthwise kernels, pointwise Linears, layer-scale vectors
and the residual stream -- and its ``MagnitudePruner`` (L1 importance, the
same ratio ``S`` in every group, the classifier's outputs never pruned)
removes the ``S`` fraction of each group's channels.  The result is a smaller
dense model: fewer parameters, MACs and bytes, not zeros.  An optional short
recovery fine-tune follows (AdamW, cosine decay, ``recovery_steps`` batches
of the context's training data); a random-init profile has no data and is
pruned one-shot.

Study 004 used OTOv3 (``only-train-once``) instead; as shipped it fails to
import on torch 2.13 and needs CUDA in its optimizer (issue 9), so the
registered ``structured`` variant is Torch-Pruning, which runs as is on the
transformers ConvNeXt.  Torch-Pruning does not update ``config.hidden_sizes``
or ConvNeXt's implicit 4× MLP width, so :meth:`Structured.resolved_config`
saves every parameter's real shape and :meth:`Structured.restore` reshapes an
FP32 skeleton to them (as ``heads`` saves its kept heads).
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import torch
import torch.nn as nn

from harness.core import train as training

from . import _checks
from .base import (
    CompressionContext,
    CompressionError,
    Compressor,
    CompressorConfig,
    register,
)

PRUNER = "torch-pruning MagnitudePruner (L1, DepGraph)"


@dataclasses.dataclass(frozen=True)
class StructuredConfig(CompressorConfig):
    """Args:
    channel_ratio: Torch-Pruning's ``pruning_ratio``, the fraction of channels
        removed from every coupled group, in [0, 1).  Not a parameter sparsity: a
        Linear or conv between two pruned groups loses about ``1 - (1 - r)^2`` of its
        weights (0.5 removes ~74% of ConvNeXt's parameters); the variant records
        the parameter fraction it removed (``params_removed_fraction``).
    recovery_steps: optimizer steps of recovery fine-tuning when training data
        are given (0 = one-shot).
    recovery_lr: AdamW peak learning rate, cosine-decayed to 0.
    shapes: filled by :meth:`Structured.resolved_config`: ``(parameter name,
        shape)`` of every parameter of the pruned model, so a skeleton can be
        rebuilt without data.

    Raises:
        CompressionError: a value out of range.
    """

    channel_ratio: float = 0.5
    recovery_steps: int = 300
    recovery_lr: float = 1e-3
    shapes: tuple[tuple[str, tuple[int, ...]], ...] | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if not (_checks.is_number(self.channel_ratio) and 0 <= self.channel_ratio < 1):
            raise CompressionError(f"{owner}.channel_ratio = {self.channel_ratio!r} is outside [0, 1): 1 would empty every "
                                   f"stage; pass the fraction of channels to remove, e.g. 0.5")
        _checks.integer(owner, "recovery_steps", self.recovery_steps, 0)
        _checks.positive(owner, "recovery_lr", self.recovery_lr, below=1.0)
        if self.shapes is not None:
            try:
                shapes = tuple((str(n), tuple(int(d) for d in s)) for n, s in self.shapes)
            except (TypeError, ValueError):
                raise CompressionError(f"{owner}.shapes must be [name, [dims...]] pairs") from None
            object.__setattr__(self, "shapes", shapes)  # JSON lists -> hashable tuples

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["shapes"] = None if self.shapes is None else [[n, list(s)] for n, s in self.shapes]
        return out


def _convnext(model: nn.Module, variant: str) -> Any:
    config = getattr(model, "config", None)
    if not (hasattr(config, "hidden_sizes") and hasattr(model, "classifier")):
        raise CompressionError(f"variant '{variant}' prunes ConvNeXt channels; got {type(model).__name__} "
                               f"(use l1-unstructured or heads-* for other models)")
    return config


def kept_channels(width: int, ratio: float) -> int:
    """Channels Torch-Pruning keeps of ``width`` at ``ratio``: ``int(width * (1 - ratio))``."""
    return int(width * (1 - ratio))


def check_stages(hidden_sizes, ratio: float, variant: str) -> None:
    """Raise CompressionError when ``ratio`` would remove every channel of a stage."""
    for i, width in enumerate(hidden_sizes):
        if kept_channels(int(width), ratio) < 1:
            raise CompressionError(
                f"'{variant}@{ratio:g}' would empty stage {i} ({width} channels keep "
                f"int({width} × {1 - ratio:g}) = 0); use a ratio of at most {1 - 1 / int(width):.4g}")


def _example_input(config: Any) -> torch.Tensor:
    size = int(config.patch_size) * 2 ** (len(config.hidden_sizes) - 1)
    return torch.randn(1, int(config.num_channels), size, size)


class _Logits(nn.Module):
    """Torch-Pruning traces a module returning a tensor; HF returns an output object."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


def prune_channels(model: nn.Module, ratio: float) -> nn.Module:
    """Remove ``ratio`` of the channels of every coupled group in place; update
    ``config.hidden_sizes`` to the stage widths left.  Returns ``model``."""
    import warnings

    import torch_pruning as tp

    unwrapped = [(p, 0) for n, p in model.named_parameters() if n.endswith("layer_scale_parameter")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = tp.pruner.MagnitudePruner(
            _Logits(model), _example_input(model.config), importance=tp.importance.MagnitudeImportance(p=1),
            pruning_ratio=ratio, ignored_layers=[model.classifier], unwrapped_parameters=unwrapped)
        pruner.step()
    stages = model.convnext.encoder.stages
    model.config.hidden_sizes = [int(stage.layers[0].dwconv.out_channels) for stage in stages]
    return model


def _recover(model: nn.Module, context: CompressionContext, config: StructuredConfig) -> int:
    """Fine-tune for ``config.recovery_steps`` batches (cycling the data); returns steps run."""
    def loss_fn(net: nn.Module, batch) -> torch.Tensor:
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise CompressionError("structured recovery needs (pixel_values, labels) training batches")
        if batch[0].shape[1] != net.config.num_channels:
            raise CompressionError(f"training images have {batch[0].shape[1]} channel(s), the model takes "
                                   f"{net.config.num_channels}")
        return training.image_classification_loss(net, batch)

    train_config = training.TrainConfig(lr=config.recovery_lr, steps=config.recovery_steps, schedule="cosine",
                                        weight_decay=0.05, seed=context.seed, desc="structured recovery")
    steps = len(training.train(model, itertools.cycle(context.train_batches()), train_config, loss_fn))
    if steps < config.recovery_steps:  # cycle() of an empty iterable ends at once
        raise CompressionError("structured recovery got no training batches from the context; "
                               "pass a CompressionContext whose train_batches() yields (pixel_values, labels)")
    return steps


def _fit(module: nn.Module, old_shape: tuple[int, ...], new: torch.Tensor) -> None:
    """Update a module's size attributes after its weight became ``new``."""
    if isinstance(module, nn.Linear):
        module.out_features, module.in_features = new.shape
    elif isinstance(module, nn.Conv2d):
        depthwise = module.groups > 1 and module.groups == module.in_channels
        module.out_channels = new.shape[0]
        module.groups = new.shape[0] if depthwise else module.groups
        module.in_channels = new.shape[1] * module.groups
    elif isinstance(module, nn.LayerNorm):
        module.normalized_shape = (new.shape[0],)


def reshape_to(skeleton: nn.Module, shapes) -> nn.Module:
    """Give every parameter of ``skeleton`` the saved shape (uninitialised), so
    a pruned state dict loads strictly.  Raises CompressionError for a name the
    skeleton lacks."""
    for name, shape in shapes:
        owner, _, leaf = name.rpartition(".")
        try:
            module = skeleton.get_submodule(owner) if owner else skeleton
            old = getattr(module, leaf)
        except AttributeError:
            raise CompressionError(f"saved structured variant names parameter '{name}', which the model "
                                   f"lacks; rebuild the variant") from None
        if tuple(old.shape) != tuple(shape):
            new = nn.Parameter(torch.empty(shape, dtype=old.dtype), requires_grad=old.requires_grad)
            setattr(module, leaf, new)
            if leaf == "weight":
                _fit(module, tuple(old.shape), new)
    return skeleton


@register
class Structured(Compressor):
    name = "structured"
    config_cls = StructuredConfig
    float_output = True
    optional_context = True  # recovery when data are given; one-shot otherwise
    description = "structured channel pruning of ConvNeXt (Torch-Pruning DepGraph, L1), short recovery"

    def parse_arg(self, arg: str) -> dict[str, Any]:
        return _checks.parse_fraction(self.name, arg, "channel_ratio", "fraction of channels to remove")

    def check_model(self, model: nn.Module, config: StructuredConfig | None = None) -> None:
        """ConvNeXt only (channel groups are traced on an image input)."""
        _convnext(model, self.name)

    def compress(self, model: nn.Module, config: StructuredConfig,
                 context: CompressionContext | None = None) -> nn.Module:
        hf = _convnext(model, self.name)
        check_stages(hf.hidden_sizes, config.channel_ratio, self.name)
        before = sum(p.numel() for p in model.parameters())
        prune_channels(model, config.channel_ratio)
        model._structured_params_removed = 1 - sum(p.numel() for p in model.parameters()) / before
        run = _recover(model, context, config) if context is not None and config.recovery_steps else 0
        model._structured_recovery_steps = run  # what actually ran, for describe()
        # Recorded now: a later +int8 stage hides Linear weights from named_parameters().
        model._structured_shapes = tuple((n, tuple(p.shape)) for n, p in model.named_parameters())
        return model.eval()

    def resolved_config(self, model: nn.Module, config: StructuredConfig) -> StructuredConfig:
        shapes = getattr(model, "_structured_shapes", None)
        if shapes is None:
            shapes = tuple((n, tuple(p.shape)) for n, p in model.named_parameters())
        return dataclasses.replace(config, shapes=shapes)

    def restore(self, skeleton: nn.Module, config: StructuredConfig) -> nn.Module:
        if config.shapes is None:
            raise CompressionError("a saved structured variant must record its shapes; rebuild the variant")
        return reshape_to(skeleton, config.shapes)

    def describe(self, model: nn.Module, config: StructuredConfig) -> dict[str, Any]:
        return {"pruning": self.name, "structured_pruner": PRUNER, "channel_ratio": config.channel_ratio,
                "params_removed_fraction": getattr(model, "_structured_params_removed", None),
                "hidden_sizes": list(model.config.hidden_sizes),
                "pruning_recovery_steps": getattr(model, "_structured_recovery_steps", None)}
