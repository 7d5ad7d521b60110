"""Structured attention-head pruning: ``heads-grad@R`` and ``heads-attn@R``.

Each head gets an importance score from a few training batches of the
:class:`~compressors.base.CompressionContext`; the ``R`` fraction of all heads
with the lowest scores (one ranking across layers, above a per-layer floor
``min_heads_per_layer``) is removed *physically*:
the pruned heads' rows of the query/key/value Linears and columns of the
output projection O are cut out, so the model is smaller and does less work,
not just zeros (transformers 5 no longer ships ``prune_heads``; this is its
replacement).  Works on every family :mod:`compressors.architecture` knows
(DistilBERT ``q_lin``/``k_lin``/``v_lin``/``out_lin``; BERT, MiniLM, RoBERTa
and XLM-R ``attention.self.{query,key,value}`` and ``attention.output.dense``);
their forwards infer the head count from the projection width
(``view(..., -1, head_size)``), under eager and sdpa attention alike.

* ``heads-grad`` -- Michel et al. (2019, "Are Sixteen Heads Really Better than
  One?"), study 000 (bottom 20%): a mask ``m`` (one scalar per head, all ones)
  multiplies each head's slice of the attention context before O;
  ``I_h = sum over batches of |dL/dm_h|`` (``criterion="mask-grad-abs"``;
  study 000's ``||grad_{a_h} L||^2`` is ``criterion="activation-grad-sq"``,
  which its EdgeMIN pipeline uses) with ``L`` the model's task loss
  on the batch (a classifier's cross-entropy; a masked LM's MLM loss, as the
  paper scores BERT on its task), then (as in the paper) normalised by its
  layer's l2 norm.  Needs a model that returns that loss
  (``...ForSequenceClassification`` or ``...ForMaskedLM``).
* ``heads-attn`` -- study 003 (bottom 60%) ranks heads by "mean absolute
  attention probability over 20 batches".  Taken literally that is the same
  for every head (each softmax row sums to 1, so its mean over the keys is
  ``1/n``), so it is made concrete as a head's *confidence* (Voita et al.,
  2019, "Analyzing Multi-Head Self-Attention"): the largest attention
  probability of each query, averaged over the non-padding queries of a
  batch, then over batches (``criterion="max"``), leaving out the [CLS] and
  [SEP] keys as Voita et al. leave out the end-of-sentence token
  (``exclude_special_keys``); each layer keeps at least one head
  (``min_heads_per_layer=1``; confidence is not comparable across layers).
  ``criterion="entropy"``
  instead scores a head by minus its mean attention entropy (nats), so
  diffuse heads go first.  Probabilities come from ``output_attentions=True``
  with the eager attention implementation (sdpa returns none), switched back
  afterwards.  A bare encoder model (no head) works too.

A layer that loses every head keeps only O's bias (:class:`HeadlessAttention`):
with an empty context O reduces to its bias, so the layer computes
``LayerNorm(x + O.bias)`` (DistilBERT: ``sa_layer_norm``; BERT/RoBERTa:
``attention.output.LayerNorm``, with O itself an identity), exactly the
unpruned layer with all its heads masked (a zero output instead would be a
different model).  Removing every head of the model is refused.

The kept heads are an outcome of ``compress``: :meth:`HeadPruner.resolved_config`
writes them (per layer, original head indices) into the config's
``kept_heads``, which is saved with the variant, and :meth:`HeadPruner.restore`
cuts an uninitialised full-size skeleton to the same shapes (the saved
``config.json`` keeps the unpruned head count).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, ClassVar, Iterator, Sequence

import torch
import torch.nn as nn

from . import _checks
from ._train import load_batches
from .architecture import Family, family_of, head_count
from .base import (
    Batch,
    CompressionContext,
    CompressionError,
    Compressor,
    CompressorConfig,
    register,
)

CRITERIA = ("max", "entropy")
# heads-grad: Michel et al.'s |dL/dxi_h| (the source of the method), or study 000's ||grad_{a_h} L||^2
# (the seed's formula, used by its EdgeMIN pipeline).
GRAD_CRITERIA = ("mask-grad-abs", "activation-grad-sq")


def _check_criterion(kind: str, criterion: str, choices: tuple[str, ...]) -> None:
    if criterion not in choices:
        raise CompressionError(f"unknown {kind} criterion '{criterion}'; choose one of {', '.join(choices)}")


@dataclasses.dataclass(frozen=True)
class HeadPruneConfig(CompressorConfig):
    """Args:
    ratio: fraction of all attention heads removed, in [0, 1) (global ranking).
    n_batches: training batches scored (the first ones of the context).
    kept_heads: per layer, the original indices of the heads kept.  Filled
        in by compress (see ``resolved_config``) and saved; when given up
        front, those heads are kept and no data is read.
    min_heads_per_layer: heads every layer keeps whatever the global ranking
        says (0: a layer may lose all of them, as in Michel et al.).

    Raises:
        CompressionError: a value out of range or a malformed ``kept_heads``.
    """

    ratio: float = 0.2
    n_batches: int = 20
    kept_heads: tuple[tuple[int, ...], ...] | None = None
    min_heads_per_layer: int = 0

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _checks.fraction(owner, "ratio", self.ratio, "share of attention heads to remove")
        _checks.integer(owner, "n_batches", self.n_batches, 1)
        _checks.integer(owner, "min_heads_per_layer", self.min_heads_per_layer, 0)
        if self.kept_heads is not None:
            try:
                kept = tuple(tuple(int(h) for h in layer) for layer in self.kept_heads)
                ok = all(list(layer) == sorted(set(layer)) and all(h >= 0 for h in layer) for layer in kept)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise CompressionError(
                    f"{owner}.kept_heads must list, per layer, sorted distinct head indices >= 0; "
                    f"got {self.kept_heads!r}")
            object.__setattr__(self, "kept_heads", kept)  # JSON lists -> hashable tuples

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        # Lists, as json.loads gives them back: a saved config compares equal to the reloaded one.
        out["kept_heads"] = None if self.kept_heads is None else [list(k) for k in self.kept_heads]
        return out


@dataclasses.dataclass(frozen=True)
class HeadsGradConfig(HeadPruneConfig):
    """:class:`HeadPruneConfig` plus ``normalize_by_layer``: divide each layer's
    scores by their l2 norm before the global ranking (Michel et al., 2019), and
    ``criterion`` (:func:`grad_importance`): ``"mask-grad-abs"`` (Michel et al.'s
    ``|dL/dxi_h|``) or ``"activation-grad-sq"`` (study 000's ``||grad_{a_h} L||^2``)."""

    normalize_by_layer: bool = True
    criterion: str = "mask-grad-abs"

    def __post_init__(self) -> None:
        super().__post_init__()
        _checks.boolean(type(self).__name__, "normalize_by_layer", self.normalize_by_layer)
        _check_criterion("heads-grad", self.criterion, GRAD_CRITERIA)


@dataclasses.dataclass(frozen=True)
class HeadsAttnConfig(HeadPruneConfig):
    """:class:`HeadPruneConfig` with study 003's 60% and ``criterion``: ``"max"``
    (mean max attention probability, Voita et al., 2019) or ``"entropy"``
    (minus the mean attention entropy).

    ``exclude_special_keys``: the ``"max"`` confidence ignores attention to [CLS] and [SEP]
    keys (Voita et al. leave out the end-of-sentence token): heads that park their probability
    on those tokens would otherwise rank as the most confident.  ``min_heads_per_layer``
    defaults to 1 here: confidence is not comparable across layers, and a one-global ranking
    at 60% emptied the last layer, the one that feeds the classifier."""

    ratio: float = 0.6
    criterion: str = "max"
    exclude_special_keys: bool = True
    min_heads_per_layer: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        _checks.boolean(type(self).__name__, "exclude_special_keys", self.exclude_special_keys)
        _check_criterion("head importance", self.criterion, CRITERIA)


# ---------------------------------------------------------------------------
# structure


class HeadlessAttention(nn.Module):
    """Attention module of a layer whose heads were all pruned.

    Returns ``(bias expanded to hidden_states' shape (B, L, hidden), None)``:
    what the output projection O gives for an empty context.  ``bias``
    (hidden,) is O's bias; where O lives outside the attention module (BERT's
    ``attention.output.dense``), O is replaced by an identity
    (:meth:`~compressors.architecture.Family.make_headless`), so the bias
    reaches the layer's residual LayerNorm unchanged.
    """

    n_heads = 0
    kept_heads: tuple[int, ...] = ()

    def __init__(self, bias: torch.Tensor) -> None:
        super().__init__()
        self.bias = nn.Parameter(bias)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                *args: Any, **kwargs: Any) -> tuple[torch.Tensor, None]:
        return self.bias.expand_as(hidden_states), None


def kept_heads_of(attention: nn.Module) -> tuple[int, ...]:
    """Original indices of the heads an attention module still has (all of them if never pruned).

    ``attention`` is the module holding the head count (DistilBERT
    ``layer.attention``, BERT/RoBERTa ``layer.attention.self``;
    :meth:`~compressors.architecture.Family.attention_module`).
    """
    kept = getattr(attention, "kept_heads", None)
    return tuple(kept) if kept is not None else tuple(range(head_count(attention)))


def layer_kept_heads(model: nn.Module, variant: str = "heads") -> tuple[tuple[int, ...], ...]:
    """Per encoder layer of ``model``, the original indices of the heads it still has.

    Raises:
        CompressionError: not a supported model (:func:`~compressors.architecture.family_of`).
    """
    family = family_of(model, variant)
    return tuple(kept_heads_of(family.attention_module(b)) for b in family.layer_list(model) or ())


def _select(linear: nn.Linear, index: torch.Tensor, dim: int, copy: bool) -> nn.Linear:
    """A new Linear with only the output rows (dim 0) or input columns (dim 1) in ``index``.

    ``copy=False`` leaves the weights uninitialised (restoring a skeleton that
    ``load_state_dict`` fills next).
    """
    out_f, in_f = (len(index), linear.in_features) if dim == 0 else (linear.out_features, len(index))
    new = torch.nn.utils.skip_init(nn.Linear, in_f, out_f, bias=linear.bias is not None,
                                   dtype=linear.weight.dtype)
    if copy:
        with torch.no_grad():
            new.weight.copy_(linear.weight.index_select(dim, index))
            if linear.bias is not None:
                new.bias.copy_(linear.bias.index_select(0, index) if dim == 0 else linear.bias)
    return new


def _prune_layer(family: Family, layer: nn.Module, wanted: Sequence[int], copy: bool) -> None:
    """Keep only the heads ``wanted`` (original indices, a subset of the current ones) of one layer."""
    attn = family.attention_module(layer)
    current = kept_heads_of(attn)
    proj = family.projections(layer)
    if not wanted:
        o = proj["o"]
        bias = o.bias if o.bias is not None else o.weight.new_zeros(o.out_features)
        family.make_headless(layer, HeadlessAttention(bias.detach().clone() if copy else torch.empty_like(bias)))
        return
    d = family.head_size(layer)
    kept = set(wanted)
    index = torch.cat([torch.arange(p * d, (p + 1) * d) for p, h in enumerate(current) if h in kept])
    for role in ("q", "k", "v"):
        family.set_projection(layer, role, _select(proj[role], index, 0, copy))
    family.set_projection(layer, "o", _select(proj["o"], index, 1, copy))
    attn.kept_heads = tuple(h for h in current if h in kept)  # the order of the rows kept
    family.set_num_heads(layer, len(attn.kept_heads))


def prune_heads(model: nn.Module, keep: Sequence[Sequence[int]], variant: str = "heads",
                copy: bool = True) -> nn.Module:
    """Physically remove attention heads of ``model`` in place.

    Args:
        keep: per layer, the *original* indices of the heads to keep (a subset
            of the heads the layer still has); ``[]`` leaves a :class:`HeadlessAttention`.
        copy: copy the kept weights (False: uninitialised, for restoring a skeleton).

    Per kept head ``h`` of size ``d = hidden / n_heads``, rows ``h*d:(h+1)*d``
    of Q, K and V (weight (n*d, hidden)) and the same columns of O (weight
    (hidden, n*d)) remain; the attention module's head count (and BERT's
    ``all_head_size``) and ``kept_heads`` are updated.  The model's config
    keeps the unpruned head count: it describes the skeleton :meth:`HeadPruner.restore` cuts.

    Raises:
        CompressionError: not a supported model, wrong number of layers, or a
            head the layer no longer has.
    """
    family = family_of(model, variant)
    layers = family.layer_list(model) or []
    if len(keep) != len(layers):
        raise CompressionError(
            f"'{variant}' kept_heads lists {len(keep)} layers but the model has {len(layers)}; rebuild the variant")
    for i, (layer, wanted) in enumerate(zip(layers, keep)):
        current = kept_heads_of(family.attention_module(layer))
        if list(wanted) == list(current):
            continue
        if not set(wanted) <= set(current):
            raise CompressionError(
                f"'{variant}' keeps heads {sorted(set(wanted) - set(current))} of layer {i}, which has only "
                f"heads {list(current)}; rebuild the variant")
        _prune_layer(family, layer, wanted, copy)
    return model


@contextlib.contextmanager
def head_mask(model: nn.Module, masks: Sequence[torch.Tensor], variant: str = "heads",
              contexts: dict[int, list[torch.Tensor]] | None = None) -> Iterator[None]:
    """Multiply each head's slice of the attention context by ``masks[layer][head]``.

    ``masks[i]`` has shape (heads of layer i,); a forward pre-hook on each
    layer's output projection O scales its input (B, L, n_heads * d),
    head-major.  This is Michel et al.'s gate ``xi_h``; the models in
    transformers 5 take no ``head_mask`` argument.  With ``contexts``, each
    forward appends layer i's ungated context to ``contexts[i]`` (the head
    activations ``a_h`` of :func:`grad_importance`).  Hooks are removed on exit.

    Raises:
        CompressionError: not a supported model.
        ValueError: a mask count or shape that does not match the layers.
    """
    family = family_of(model, variant)
    layers = family.layer_list(model) or []
    if len(masks) != len(layers):
        raise ValueError(f"{len(masks)} head masks for {len(layers)} layers")
    handles = []
    try:
        for index, (layer, mask) in enumerate(zip(layers, masks)):
            n_heads = family.num_heads(layer)
            if mask.shape != (n_heads,):
                raise ValueError(f"head mask of shape {tuple(mask.shape)} for a layer with {n_heads} heads")
            if n_heads == 0:
                continue

            gate = mask.repeat_interleave(family.head_size(layer))  # (n_heads * d,), head-major

            def scale(module: nn.Module, args: tuple, gate=gate, i=index) -> tuple:
                if contexts is not None:
                    contexts.setdefault(i, []).append(args[0])
                return (args[0] * gate.to(args[0].dtype),) + args[1:]

            handles.append(family.projections(layer)["o"].register_forward_pre_hook(scale))
        yield
    finally:
        for h in handles:
            h.remove()


# ---------------------------------------------------------------------------
# importance


def _require_task_loss(model: nn.Module, family: Family, variant: str) -> None:
    if not family.has_task_loss(model):
        raise CompressionError(
            f"variant '{variant}' scores heads by the task loss, so it needs a sequence classifier "
            f"({family.name} with {'/'.join(family.head)}) or a masked LM; {type(model).__name__} has neither: "
            f"pass kept_heads, or use heads-attn")


def grad_importance(model: nn.Module, batches: Sequence[Batch], normalize_by_layer: bool = True,
                    variant: str = "heads-grad", criterion: str = "mask-grad-abs") -> list[torch.Tensor]:
    """Per layer, a float tensor (heads,) summed over batches:

    * ``"mask-grad-abs"``: ``|dL/dxi_h|``, the head gate's gradient (Michel et al., 2019,
      "Are Sixteen Heads Really Better than One?", eq. 2; per batch, not per example);
    * ``"activation-grad-sq"``: ``||grad_{a_h} L||^2``, the squared gradient of the head's
      context slice ``a_h`` (B, L, d) -- study 000's formula.

    ``L`` is the model's own loss for the batch's labels (classification: (B,);
    masked LM: (B, L), -100 off the masked tokens), in eval mode (no dropout);
    parameters get no gradients.

    Raises:
        CompressionError: neither a supported classifier nor a masked LM, the model returns
            no loss for ``labels``, or an unknown ``criterion``.
    """
    _check_criterion("heads-grad", criterion, GRAD_CRITERIA)
    family = family_of(model, variant)
    _require_task_loss(model, family, variant)
    layers = family.layer_list(model) or []
    masks = [torch.ones(family.num_heads(b), requires_grad=True) for b in layers]
    scores = [torch.zeros(family.num_heads(b)) for b in layers]
    live = [i for i, m in enumerate(masks) if m.numel()]
    was_training = model.training
    model.eval()
    try:
        for input_ids, attention_mask, labels in batches:
            contexts: dict[int, list[torch.Tensor]] = {}
            with head_mask(model, masks, variant, contexts if criterion == "activation-grad-sq" else None):
                loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
            if loss is None:
                raise CompressionError(
                    f"'{variant}' needs a model that returns a loss for labels "
                    f"(a ...ForSequenceClassification or ...ForMaskedLM); {type(model).__name__} does not")
            if criterion == "mask-grad-abs":
                for i, g in zip(live, torch.autograd.grad(loss, [masks[i] for i in live])):
                    scores[i] += g.detach().abs()
            else:
                grads = torch.autograd.grad(loss, [contexts[i][0] for i in live])
                for i, g in zip(live, grads):  # g (B, L, n_heads * d), head-major
                    scores[i] += g.detach().reshape(*g.shape[:-1], len(masks[i]), -1).pow(2).sum(dim=(0, 1, 3))
    finally:
        model.train(was_training)
    if normalize_by_layer:
        scores = [s / s.norm() if s.numel() and s.norm() > 0 else s for s in scores]
    return scores


def special_keys(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, L) bool: the [CLS] and [SEP] positions of BERT-style rows -- each row's first token, and
    every token equal to its last real token (the closing [SEP]; a sentence pair's middle one too).
    Read off the rows, so no tokenizer is needed (``<s>``/``</s>`` for RoBERTa alike)."""
    last = attention_mask.sum(dim=1).clamp(min=1) - 1  # (B,)
    sep = input_ids.gather(1, last[:, None])  # (B, 1)
    out = (input_ids == sep) & attention_mask.bool()
    out[:, 0] = True
    return out


def attention_importance(model: nn.Module, batches: Sequence[Batch], criterion: str = "max",
                         variant: str = "heads-attn", exclude_special_keys: bool = False) -> list[torch.Tensor]:
    """Per layer, a float tensor (heads,), the mean over batches of:

    * ``"max"``: each non-padding query's largest attention probability,
      averaged over the batch's non-padding queries (in (0, 1]); with
      ``exclude_special_keys`` the largest over keys other than [CLS] and [SEP]
      (:func:`special_keys`; Voita et al., 2019, leave out the end-of-sentence
      token), not renormalised;
    * ``"entropy"``: minus the attention entropy (nats) per query, same average.

    Runs with ``attn_implementation="eager"`` (sdpa returns no probabilities)
    and restores the model's implementation afterwards.
    """
    _check_criterion("head importance", criterion, CRITERIA)
    family = family_of(model, variant)
    layers = family.layer_list(model) or []
    # transformers records attentions only for its own attention modules, not HeadlessAttention.
    scored = [i for i, b in enumerate(layers) if family.num_heads(b) > 0]
    scores = [torch.zeros(family.num_heads(b)) for b in layers]
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.inference_mode():
            for input_ids, attention_mask, _ in batches:
                attentions = model(input_ids=input_ids, attention_mask=attention_mask,
                                   output_attentions=True).attentions
                if len(attentions) != len(scored):
                    raise RuntimeError(f"{len(attentions)} attention maps for {len(scored)} layers with heads")
                queries = attention_mask.bool()[:, None, :].to(torch.float32)  # (B, 1, L)
                special = special_keys(input_ids, attention_mask) if exclude_special_keys else None  # (B, L)
                for i, probs in zip(scored, attentions):  # probs (B, H, L, L)
                    if criterion == "max":
                        if special is not None:
                            probs = probs.masked_fill(special[:, None, None, :], 0.0)
                        per_query = probs.amax(dim=-1)
                    else:
                        per_query = torch.special.xlogy(probs, probs).sum(dim=-1)  # -entropy
                    scores[i] += (per_query * queries).sum(dim=(0, 2)) / queries.sum()
    finally:
        model.set_attn_implementation(previous)
    return [s / len(batches) for s in scores]


def select_heads(importance: Sequence[torch.Tensor], ratio: float, variant: str,
                 min_per_layer: int = 0) -> list[list[int]]:
    """Per layer, the positions of the heads kept after removing the ``round(ratio * total)``
    least important heads of the whole model (ties: earlier layer, then lower index, first),
    every layer keeping at least ``min_per_layer`` heads (or all it has, if fewer): a head whose
    removal would break the floor is passed over for the next one in the ranking.

    Raises:
        CompressionError: ``ratio`` would remove every head, or more heads than the floor leaves.
    """
    total = sum(len(s) for s in importance)
    n_prune = math.floor(ratio * total + 0.5)
    if n_prune >= total:
        raise CompressionError(
            f"'{variant}' with ratio {ratio} would remove all {total} attention heads; "
            f"use a ratio below {(total - 0.5) / total:.4f}")
    floor = [min(min_per_layer, len(s)) for s in importance]
    removable = total - sum(floor)
    if n_prune > removable:
        raise CompressionError(
            f"'{variant}' with ratio {ratio} removes {n_prune} of {total} heads, but keeping "
            f"min_heads_per_layer={min_per_layer} leaves only {removable} removable; lower one of them")
    left = [len(s) for s in importance]
    pruned: set[tuple[int, int]] = set()
    for _, layer, h in sorted((float(s[h]), layer, h) for layer, s in enumerate(importance) for h in range(len(s))):
        if len(pruned) == n_prune:
            break
        if left[layer] > floor[layer]:
            pruned.add((layer, h))
            left[layer] -= 1
    return [[h for h in range(len(s)) if (layer, h) not in pruned] for layer, s in enumerate(importance)]


# ---------------------------------------------------------------------------
# compressors


class HeadPruner(Compressor):
    config_cls: ClassVar[type[HeadPruneConfig]]
    float_output = True
    needs_task_loss: ClassVar[bool] = False  # the importance reads the model's task loss

    def parse_arg(self, arg: str) -> dict[str, Any]:
        return _checks.parse_fraction(self.name, arg, "ratio", "fraction of attention heads to remove")

    def needs_context(self, config: HeadPruneConfig) -> bool:
        return config.kept_heads is None and config.ratio > 0

    def check_model(self, model: nn.Module, config: HeadPruneConfig | None = None) -> None:
        """Any DistilBERT, BERT or RoBERTa/XLM-R model; ``heads-grad`` scoring from
        data also needs a task loss: a classifier or a masked LM (no data are read with
        ``kept_heads`` or ratio 0)."""
        family = family_of(model, self.name)
        if self.needs_task_loss and self.needs_context(config or self.config_cls()):
            _require_task_loss(model, family, self.name)

    def head_importance(self, model: nn.Module, batches: Sequence[Batch],
                        config: HeadPruneConfig) -> list[torch.Tensor]:
        raise NotImplementedError

    def _check_count(self, model: nn.Module, kept: Sequence[Sequence[int]], config: HeadPruneConfig) -> None:
        family = family_of(model, self.name)
        layers = family.layer_list(model) or []
        if len(kept) != len(layers):
            raise CompressionError(
                f"'{self.name}' kept_heads lists {len(kept)} layers but the model has {len(layers)}; "
                f"rebuild the variant")
        total = sum(family.num_heads(b) for b in layers)
        removed = total - sum(len(k) for k in kept)
        if removed != math.floor(config.ratio * total + 0.5) or removed >= total:
            raise CompressionError(
                f"'{self.name}' kept_heads removes {removed} of {total} heads, which does not match "
                f"ratio {config.ratio}; rebuild the variant")

    def compress(self, model: nn.Module, config: HeadPruneConfig,
                 context: CompressionContext | None = None) -> nn.Module:
        self.check_model(model, config)
        if config.kept_heads is not None:
            self._check_count(model, config.kept_heads, config)
            return prune_heads(model, config.kept_heads, self.name).eval()
        if config.ratio == 0:
            return model.eval()
        assert context is not None  # base.run checked needs_context
        scores = self.head_importance(model, load_batches(context, self.name, config.n_batches), config)
        positions = select_heads(scores, config.ratio, self.name, config.min_heads_per_layer)
        keep = [[current[p] for p in pos] for current, pos in zip(layer_kept_heads(model, self.name), positions)]
        return prune_heads(model, keep, self.name).eval()

    def resolved_config(self, model: nn.Module, config: HeadPruneConfig) -> HeadPruneConfig:
        return dataclasses.replace(config, kept_heads=layer_kept_heads(model, self.name))

    def restore(self, skeleton: nn.Module, config: HeadPruneConfig) -> nn.Module:
        if config.kept_heads is None:
            raise CompressionError(
                f"the saved '{self.name}' variant records no kept_heads, so its shapes are unknown; "
                f"delete it to rebuild it")
        self._check_count(skeleton, config.kept_heads, config)
        return prune_heads(skeleton, config.kept_heads, self.name, copy=False)

    def describe(self, model: nn.Module, config: HeadPruneConfig) -> dict[str, Any]:
        kept = [len(k) for k in layer_kept_heads(model, self.name)]
        total = family_of(model, self.name).total_heads(model)
        return {"pruning": self.name, "heads_total": total, "heads_kept": sum(kept),
                "heads_pruned_fraction": 1 - sum(kept) / total if total else 0.0,
                "heads_per_layer": ",".join(map(str, kept)),
                "layers_without_heads": sum(k == 0 for k in kept)}


@register
class HeadsGrad(HeadPruner):
    name = "heads-grad"
    config_cls = HeadsGradConfig
    needs_task_loss = True
    description = "remove the attention heads with the smallest |dL/dmask| (Michel et al. 2019; study 000's ||grad_a L||^2 as criterion=activation-grad-sq)"

    def head_importance(self, model: nn.Module, batches: Sequence[Batch],
                        config: HeadsGradConfig) -> list[torch.Tensor]:
        return grad_importance(model, batches, config.normalize_by_layer, self.name, config.criterion)


@register
class HeadsAttn(HeadPruner):
    name = "heads-attn"
    config_cls = HeadsAttnConfig
    description = "remove the least confident attention heads (mean max attention probability; study 003)"

    def head_importance(self, model: nn.Module, batches: Sequence[Batch],
                        config: HeadsAttnConfig) -> list[torch.Tensor]:
        return attention_importance(model, batches, config.criterion, self.name, config.exclude_special_keys)
