"""Where the prunable parts of a transformer encoder live: one adapter per
architecture family, the one module that knows module names (encoder layers,
attention projections, FFN, classification head).

A :class:`Family` is looked up from the model's ``config.model_type``
(:data:`FAMILIES`; a module without ``config.model_type`` is matched by its
modules), never from a variant name:

* DistilBERT (``distilbert``): layer ``i`` is ``distilbert.transformer.layer[i]``;
  Q, K, V, O are ``attention.{q_lin,k_lin,v_lin,out_lin}`` (heads: ``attention.n_heads``);
  FFN ``ffn.lin1``, ``ffn.lin2``.
* BERT, MiniLM (``bert``): ``bert.encoder.layer[i]``; Q, K, V are
  ``attention.self.{query,key,value}`` (heads: ``num_attention_heads``,
  ``all_head_size``), O is ``attention.output.dense``; FFN
  ``intermediate.dense``, ``output.dense``.
* RoBERTa, XLM-R (``roberta``, ``xlm-roberta``): as BERT under ``roberta.``.

The task models (``...ForSequenceClassification``, DistilBERT's ``...ForMaskedLM``)
hold the bare model under ``distilbert`` / ``bert`` / ``roberta``; a bare
``DistilBertModel``, ``BertModel`` (MiniLM), ``RobertaModel`` or
``XLMRobertaModel`` works too (its paths start at ``transformer`` / ``encoder``).

The *classification head* (:func:`is_head`, ``include_classifier``) is every
Linear between the encoder's last hidden state and the logits that is not an
encoder layer: DistilBERT ``pre_classifier`` + ``classifier``; BERT
``bert.pooler.dense`` + ``classifier``; RoBERTa ``classifier.dense`` +
``classifier.out_proj`` (a bare ``BertModel``/``RobertaModel``: its
``pooler.dense``; a bare ``DistilBertModel``: none).  BERT's pooler sits inside ``BertModel``, but it plays
the part of DistilBERT's ``pre_classifier`` and RoBERTa's ``classifier.dense``
(a dense + tanh on the first token), so it counts as head: every family then has
a two-Linear head, encoder sparsity means the same thing for all three, and
``int8-dynamic:include_classifier=false`` keeps all of it in FP32.  DistilBERT's
MLM projection (``vocab_transform``/``vocab_projector``) is not a classification
head, as before.

Every lookup raises a one-line :class:`CompressionError` on a model without
these modules (an ``nn.Sequential``, a ConvNeXt) instead of silently pruning nothing.
"""
from __future__ import annotations

import dataclasses

import torch.nn as nn

from .errors import CompressionError

ATTENTION, FFN = "attention", "ffn"
"""The ``parts`` of a layer :func:`linear_targets` takes Linears from."""

PROJECTIONS = ("q", "k", "v", "o")
"""Roles of an attention layer's Linears: query, key, value (rows = heads) and output (columns = heads)."""


def _get(module: nn.Module, path: str) -> nn.Module | None:
    """``module``'s submodule at the dotted ``path`` ("" = itself), or None."""
    try:
        return module.get_submodule(path) if path else module
    except AttributeError:
        return None


@dataclasses.dataclass(frozen=True)
class Family:
    """Module names of one architecture family (paths are dotted, as in ``named_modules``).

    Attributes:
        name: for messages ("BERT").
        model_types: ``config.model_type`` values of the family.
        base: attribute of a task model holding the bare model ("bert"); a bare
            model is recognised by not having it.
        layers: path from the bare model to the ``nn.ModuleList`` of encoder layers.
        attention: path in a layer to the module that turns Q, K, V into the
            per-head context (its forward returns ``(output, attention weights)``);
            replaced by a head-less module when a layer loses every head.
        query / key / value / output: paths in a layer to the Q, K, V Linears
            (weight (heads * head_size, hidden), head-major rows) and to the
            output projection O (weight (hidden, heads * head_size)).
        ffn: paths in a layer to the feed-forward Linears, in order.
        heads_attr / head_size_attr: attributes of the attention module holding
            the number of heads and the head size; ``width_attr`` (if any) holds
            ``heads * head_size`` and is kept in step after pruning.
        config_heads / config_hidden: config fields with the unpruned number of
            heads per layer and the hidden size.
        head: paths from a task model to its classification-head Linears (the
            task head proper: present only on a classifier).
        pooler: paths from the bare model to Linears counted as head too (BERT's pooler).
    """

    name: str
    model_types: tuple[str, ...]
    base: str
    layers: str
    attention: str
    query: str
    key: str
    value: str
    output: str
    ffn: tuple[str, ...]
    heads_attr: str
    head_size_attr: str
    width_attr: str | None
    config_heads: str
    config_hidden: str
    head: tuple[str, ...]
    pooler: tuple[str, ...] = ()

    # -- the model ---------------------------------------------------------

    def base_model(self, model: nn.Module) -> nn.Module:
        """The bare encoder model (``model`` itself when it is one)."""
        inner = getattr(model, self.base, None)
        return inner if isinstance(inner, nn.Module) else model

    def _base_prefix(self, model: nn.Module) -> str:
        return self.base + "." if self.base_model(model) is not model else ""

    def layers_prefix(self, model: nn.Module) -> str:
        """Qualified name of the layer list, e.g. ``"bert.encoder.layer"``."""
        return self._base_prefix(model) + self.layers

    def layer_list(self, model: nn.Module) -> list[nn.Module] | None:
        """The encoder layers, or None when ``model`` lacks this family's modules."""
        layers = _get(self.base_model(model), self.layers)
        if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
            return None
        if not all(_get(b, self.attention) is not None and all(_get(b, p) is not None for p in self.ffn)
                   for b in layers):
            return None
        return list(layers)

    def head_names(self, model: nn.Module) -> list[str]:
        """Qualified names of the classification-head modules ``model`` has (pooler first)."""
        names = [self._base_prefix(model) + p for p in self.pooler] + list(self.head)
        return [n for n in names if _get(model, n) is not None]

    def is_classifier(self, model: nn.Module) -> bool:
        """True when ``model`` has this family's task head (returns logits and a loss for labels)."""
        return bool(self.head) and all(_get(model, p) is not None for p in self.head)

    def has_task_loss(self, model: nn.Module) -> bool:
        """True when ``model`` returns a loss for its task's labels: this family's sequence
        classifier (labels (B,)) or a transformers masked LM (``...ForMaskedLM``, labels (B, L))."""
        return self.is_classifier(model) or type(model).__name__.endswith("ForMaskedLM")

    def total_heads(self, model: nn.Module) -> int:
        """Attention heads per layer before any pruning (from the config) x layers; 0 if unknown."""
        per_layer = getattr(getattr(model, "config", None), self.config_heads, 0) or 0
        return int(per_layer) * len(self.layer_list(model) or ())

    def hidden_size(self, model: nn.Module) -> int:
        return int(getattr(model.config, self.config_hidden))

    # -- one layer ---------------------------------------------------------

    def attention_module(self, layer: nn.Module) -> nn.Module:
        """The module holding Q, K, V and the head counts (a head-less stand-in once emptied)."""
        return layer.get_submodule(self.attention)

    def projections(self, layer: nn.Module) -> dict[str, nn.Module | None]:
        """``{"q", "k", "v", "o"}`` -> the layer's module at that path (float or
        quantized Linear), None once every head was removed (see :meth:`make_headless`)."""
        paths = (self.query, self.key, self.value, self.output)
        found = {role: _get(layer, path) for role, path in zip(PROJECTIONS, paths)}
        return {role: None if isinstance(m, nn.Identity) else m for role, m in found.items()}

    def set_projection(self, layer: nn.Module, role: str, module: nn.Module) -> None:
        path = dict(zip(PROJECTIONS, (self.query, self.key, self.value, self.output)))[role]
        layer.set_submodule(path, module)

    def ffn_linears(self, layer: nn.Module) -> list[tuple[str, nn.Module]]:
        """``(path in the layer, module)`` of the FFN Linears, in order."""
        return [(p, layer.get_submodule(p)) for p in self.ffn]

    def attention_linears(self, layer: nn.Module) -> list[tuple[str, nn.Module]]:
        """``(path in the layer, module)`` of Q, K, V, O still present, in that order."""
        paths = (self.query, self.key, self.value, self.output)
        return [(p, m) for p, m in zip(paths, self.projections(layer).values()) if m is not None]

    def num_heads(self, layer: nn.Module) -> int:
        """Heads the layer has now (0 once every head was removed)."""
        return head_count(self.attention_module(layer))

    def head_size(self, layer: nn.Module) -> int:
        """Width of one head (features of Q/K/V per head)."""
        return int(getattr(self.attention_module(layer), self.head_size_attr))

    def set_num_heads(self, layer: nn.Module, n_heads: int) -> None:
        """Record ``n_heads`` on the attention module after its projections were cut.

        The forwards of all three families infer the head count from the
        projection width (``view(..., -1, head_size)``); the attributes are
        kept right for any code that reads them.
        """
        attn = self.attention_module(layer)
        setattr(attn, self.heads_attr, n_heads)
        if self.width_attr is not None:
            setattr(attn, self.width_attr, n_heads * self.head_size(layer))

    def make_headless(self, layer: nn.Module, headless: nn.Module) -> None:
        """Put ``headless`` (whose forward returns O's bias as the attention output)
        in place of the attention module; when O lives outside it (BERT's
        ``attention.output.dense``, followed by that module's dropout and LayerNorm),
        O becomes an identity so the bias passes through unchanged."""
        layer.set_submodule(self.attention, headless)
        if not self.output.startswith(self.attention + "."):
            layer.set_submodule(self.output, nn.Identity())


DISTILBERT = Family(
    name="DistilBERT", model_types=("distilbert",), base="distilbert", layers="transformer.layer",
    attention="attention", query="attention.q_lin", key="attention.k_lin", value="attention.v_lin",
    output="attention.out_lin", ffn=("ffn.lin1", "ffn.lin2"),
    heads_attr="n_heads", head_size_attr="attention_head_size", width_attr=None,
    config_heads="n_heads", config_hidden="dim", head=("pre_classifier", "classifier"))

BERT = Family(
    name="BERT", model_types=("bert",), base="bert", layers="encoder.layer",
    attention="attention.self", query="attention.self.query", key="attention.self.key",
    value="attention.self.value", output="attention.output.dense", ffn=("intermediate.dense", "output.dense"),
    heads_attr="num_attention_heads", head_size_attr="attention_head_size", width_attr="all_head_size",
    config_heads="num_attention_heads", config_hidden="hidden_size", head=("classifier",),
    pooler=("pooler.dense",))

ROBERTA = dataclasses.replace(
    BERT, name="RoBERTa/XLM-R", model_types=("roberta", "xlm-roberta"), base="roberta",
    head=("classifier.dense", "classifier.out_proj"))

FAMILIES: dict[str, Family] = {t: f for f in (DISTILBERT, BERT, ROBERTA) for t in f.model_types}
"""``config.model_type`` -> its :class:`Family`."""

SUPPORTED = ", ".join(FAMILIES)

# First components of head module names in any family ("score": classifier heads named that way).
_HEAD_ROOTS = frozenset(p.split(".")[0] for f in FAMILIES.values() for p in f.head) | {"score"}
_BASES = frozenset(f.base for f in FAMILIES.values())
_POOLERS = frozenset(p for f in FAMILIES.values() for p in f.pooler)


def head_count(attention: nn.Module) -> int:
    """Heads an attention module has now: ``len(kept_heads)`` once pruned, else its
    family's head-count attribute (``n_heads`` / ``num_attention_heads``)."""
    kept = getattr(attention, "kept_heads", None)
    if kept is not None:
        return len(kept)
    for attr in dict.fromkeys(f.heads_attr for f in FAMILIES.values()):
        if isinstance(getattr(attention, attr, None), int):
            return getattr(attention, attr)
    raise CompressionError(f"{type(attention).__name__} is not an attention module of a {SUPPORTED} model")


def _unsupported(model: nn.Module, variant: str, detail: str) -> CompressionError:
    return CompressionError(
        f"variant '{variant}' needs a DistilBERT model or a BERT/RoBERTa/XLM-R one (config.model_type "
        f"{SUPPORTED}); {type(model).__name__} {detail}")


def family_of(model: nn.Module, variant: str) -> Family:
    """The adapter of ``model``'s architecture family.

    Looked up by ``model.config.model_type``; a model without one is matched
    by its modules (the first family whose encoder layers it has).

    Raises:
        CompressionError: another ``model_type``, or a model without the family's
            encoder layers (one line naming the supported model types).
    """
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if isinstance(model_type, str) and model_type:
        family = FAMILIES.get(model_type)
        if family is None:
            raise _unsupported(model, variant, f"is model_type '{model_type}'")
        if family.layer_list(model) is None:
            paths = f"{family.base}.{family.layers}[i] with {family.attention} and {', '.join(family.ffn)}"
            raise _unsupported(model, variant, f"(model_type '{model_type}') has no {paths}")
        return family
    for family in dict.fromkeys(FAMILIES.values()):
        if family.layer_list(model) is not None:
            return family
    raise _unsupported(model, variant, "has no such encoder layers")


def require_family(model: nn.Module, variant: str, families: tuple[Family, ...], why: str,
                   instead: str) -> Family:
    """:func:`family_of`, restricted to ``families``.

    Args:
        why: what ties the variant to ``families`` (for the message).
        instead: the fix offered for a model of another family (for the message).

    Raises:
        CompressionError: ``model`` is of another family (one line: the families
            supported, ``why``, the model's family, ``instead``).
    """
    family = family_of(model, variant)
    if family not in families:
        names = " and ".join(f.name for f in families)
        raise CompressionError(f"variant '{variant}' supports {names} models only ({why}); "
                               f"{type(model).__name__} is a {family.name} model: {instead}")
    return family


def is_head(name: str) -> bool:
    """True for a qualified module or parameter name inside the classification head
    (of any family, see the module docstring; e.g. ``"classifier.out_proj.weight"``,
    ``"bert.pooler.dense"``)."""
    parts = name.split(".")
    if parts[0] in _HEAD_ROOTS:
        return True
    rest = ".".join(parts[1:] if parts[0] in _BASES else parts)
    return any(rest == p or rest.startswith(p + ".") for p in _POOLERS)


def encoder_layers(model: nn.Module, variant: str) -> list[nn.Module]:
    """The transformer encoder layers of ``model``, in order.

    Raises:
        CompressionError: not a DistilBERT, BERT or RoBERTa/XLM-R model (:func:`family_of`).
    """
    return family_of(model, variant).layer_list(model) or []


def linear_targets(model: nn.Module, variant: str, parts: tuple[str, ...],
                   include_classifier: bool) -> list[tuple[str, nn.Linear]]:
    """``(qualified name, module)`` of the float ``nn.Linear`` layers to prune.

    Args:
        parts: which Linears of each encoder layer: ``"attention"`` (Q, K, V, O)
            and/or ``"ffn"``.
        include_classifier: also take the classification head (see the module docstring).

    Raises:
        CompressionError: not a supported model, no float Linear left (already
            quantized), or ``include_classifier`` on a model without a head.
    """
    family = family_of(model, variant)
    unknown = sorted(set(parts) - {ATTENTION, FFN})
    if unknown:
        raise CompressionError(f"variant '{variant}' asks for layer parts {unknown}; choose from {ATTENTION}, {FFN}")
    prefix = family.layers_prefix(model)
    targets: list[tuple[str, nn.Linear]] = []
    for i, layer in enumerate(family.layer_list(model) or ()):
        found = (family.attention_linears(layer) if ATTENTION in parts else []) + \
                (family.ffn_linears(layer) if FFN in parts else [])
        targets.extend((f"{prefix}.{i}.{p}", m) for p, m in found if type(m) is nn.Linear)
    if include_classifier:
        head = [(n, model.get_submodule(n)) for n in family.head_names(model)]
        head = [(n, m) for n, m in head if type(m) is nn.Linear]
        if not head:
            names = "/".join(family.pooler + family.head)
            raise CompressionError(
                f"variant '{variant}' has include_classifier=True but {type(model).__name__} has no "
                f"float {names} Linear; pass include_classifier=False")
        targets.extend(head)
    if not targets:
        raise CompressionError(
            f"variant '{variant}' found no float nn.Linear in {'/'.join(parts)} to prune; "
            f"prune before quantizing ('{variant}+int8', not 'int8+{variant}')")
    return targets
