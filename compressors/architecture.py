"""Where the prunable parts of a DistilBERT classifier live: the one module that
knows the architecture's module names (blocks, attention, FFN, classification head).

The models are ``transformers.DistilBertForSequenceClassification`` (a bare
``DistilBertModel`` works too): ``distilbert.transformer.layer[i]`` is a block
with ``attention.{q,k,v,out}_lin`` and ``ffn.{lin1,lin2}``; ``pre_classifier``
and ``classifier`` are the classification head.  Every lookup raises a
one-line :class:`CompressionError` on a model without these modules (e.g. an
``nn.Sequential``) instead of silently pruning nothing.
"""
from __future__ import annotations

import torch.nn as nn

from .base import CompressionError

# Top-level modules that form a classification head (DistilBERT: pre_classifier +
# classifier; "score" for classifier heads named that way); never encoder weights.
HEAD_MODULES = ("pre_classifier", "classifier", "score")


def is_head(name: str) -> bool:
    """True for a qualified module or parameter name inside the classification head."""
    return name.split(".")[0] in HEAD_MODULES


def _layer_list(model: nn.Module) -> tuple[str, nn.ModuleList | None]:
    if isinstance(getattr(model, "distilbert", None), nn.Module):
        return "distilbert.transformer.layer", getattr(getattr(model.distilbert, "transformer", None), "layer", None)
    return "transformer.layer", getattr(getattr(model, "transformer", None), "layer", None)


def encoder_layers(model: nn.Module, variant: str) -> list[nn.Module]:
    """The transformer blocks of ``model``, in order.

    Raises:
        CompressionError: ``model`` has no ``distilbert.transformer.layer`` blocks
            with ``attention`` and ``ffn`` children.
    """
    _, layers = _layer_list(model)
    if (not isinstance(layers, nn.ModuleList) or len(layers) == 0
            or not all(hasattr(b, "attention") and hasattr(b, "ffn") for b in layers)):
        raise CompressionError(
            f"variant '{variant}' needs a DistilBERT model (distilbert.transformer.layer[i] with "
            f"attention and ffn); {type(model).__name__} has no such modules")
    return list(layers)


def linear_targets(model: nn.Module, variant: str, parts: tuple[str, ...],
                   include_classifier: bool) -> list[tuple[str, nn.Linear]]:
    """``(qualified name, module)`` of the float ``nn.Linear`` layers to prune.

    Args:
        parts: children of each block to take Linears from (``"attention"``, ``"ffn"``).
        include_classifier: also take ``pre_classifier`` and ``classifier``.

    Raises:
        CompressionError: not a DistilBERT model, no float Linear left (already
            quantized), or ``include_classifier`` on a model without a head.
    """
    prefix, _ = _layer_list(model)
    targets: list[tuple[str, nn.Linear]] = []
    for i, block in enumerate(encoder_layers(model, variant)):
        for name, mod in block.named_modules():
            if type(mod) is nn.Linear and name.split(".")[0] in parts:
                targets.append((f"{prefix}.{i}.{name}", mod))
    if include_classifier:
        head = [(n, getattr(model, n)) for n in HEAD_MODULES if type(getattr(model, n, None)) is nn.Linear]
        if not head:
            raise CompressionError(
                f"variant '{variant}' has include_classifier=True but {type(model).__name__} has no "
                f"float pre_classifier/classifier Linear; pass include_classifier=False")
        targets.extend(head)
    if not targets:
        raise CompressionError(
            f"variant '{variant}' found no float nn.Linear in {'/'.join(parts)} to prune; "
            f"prune before quantizing ('{variant}+int8', not 'int8+{variant}')")
    return targets
