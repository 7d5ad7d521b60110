"""Compressor registry: one config dataclass and one transform per variant.

In the spirit of torchao's ``quantize_(model, config)``: a variant is named by a
string (``"int8-dynamic"``), the name maps to a :class:`Compressor` whose
``config_cls`` is a frozen dataclass validated in ``__post_init__``.  A variant
name may carry one positional argument after ``@`` (``"magnitude-global@0.5"``),
which the compressor's :meth:`Compressor.parse_arg` turns into config fields,
and any config field as ``:field=value`` (``"magnitude-global@0.5:recovery_epochs=1"``),
so that everything a variant is built with can be written on a command line
(``pytest suites/ --variants ...``) and is part of its name in every result.
Stages joined by ``+`` (``"heads-grad@0.2+int8"``) run in order
(:mod:`compressors.compose`).

:meth:`Compressor.supports` tells a caller before building whether a
compressor handles a model's architecture (None, or the one-line reason).

Every compressor also knows how to :meth:`Compressor.restore` the module
structure of a saved variant from an FP32 skeleton, so a variant saved to disk
can be reloaded in a fresh process without re-running the compression.  What a
data-dependent compressor decided (e.g. which attention heads it kept) is part
of the config it saves: :meth:`Compressor.resolved_config`.
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable

import torch
import torch.nn as nn

from .errors import CompressionError  # noqa: F401  (re-exported: compressors.base.CompressionError)


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""``(input_ids, attention_mask, labels)``: int64, shapes (B, L), (B, L), (B,)."""


@dataclasses.dataclass(frozen=True)
class CompressionContext:
    """Data a compressor may need beyond the model, passed explicitly to :func:`build`.

    Args:
        train_batches: returns a fresh iterable of training :data:`Batch` es
            each time it is called (the harness: the IMDB train split,
            tokenised); compressors take the first ``n_batches`` for scoring
            or every batch per epoch for recovery fine-tuning.
        seed: seeds batch order and dropout of any training a compressor does.
        load_student: ``seed -> nn.Module``, the student a distillation pipeline
            starts from (EdgeMIN stage 1); None when the caller offers none.

    Raises:
        CompressionError: ``train_batches`` not callable or ``seed`` not an int >= 0.
    """

    train_batches: Callable[[], Iterable[Batch]]
    seed: int = 42
    load_student: Callable[[int], nn.Module] | None = None

    def __post_init__(self) -> None:
        if not callable(self.train_batches):
            raise CompressionError(
                "CompressionContext.train_batches must be a function returning an iterable of "
                "(input_ids, attention_mask, labels) batches")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise CompressionError(f"CompressionContext.seed must be an integer >= 0, got {self.seed!r}")
        if self.load_student is not None and not callable(self.load_student):
            raise CompressionError("CompressionContext.load_student must be a function seed -> student model")


@dataclasses.dataclass(frozen=True)
class CompressorConfig:
    """Base of every compressor config: plain, hashable, JSON-serialisable."""

    version: ClassVar[int] = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CompressorConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise CompressionError(
                f"{cls.__name__} has no option(s) {', '.join(unknown)}; "
                f"valid options: {', '.join(sorted(fields)) or '(none)'}"
            )
        return cls(**data)


CODE_PACKAGES = ("compressors", "harness.core")  # what a compressor may import (tests/test_layers.py)


def _spec(name: str):
    """``importlib.util.find_spec(name)``, or None for a name that is no module (``pkg.mod.attr``)."""
    import importlib.util

    try:
        return importlib.util.find_spec(name)
    except (ImportError, AttributeError, ValueError):
        return None


@functools.lru_cache(maxsize=None)
def code_sources(module: str) -> tuple[tuple[str, str], ...]:
    """``(module name, source)`` of ``module`` and of every ``compressors`` / ``harness.core``
    module it imports, transitively (the training loop included), sorted by name."""
    import ast
    import importlib.util

    sources: dict[str, str] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in sources:
            continue
        spec = _spec(name)
        if spec is None or not (spec.origin or "").endswith(".py"):
            continue
        source = Path(spec.origin).read_text(encoding="utf-8")
        sources[name] = source
        package = name if spec.submodule_search_locations else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                where = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                    if node.level else (node.module or "")
                # ``from . import _checks`` is the submodule, not the package's __init__ (which
                # imports every compressor); ``from .base import X`` is the module ``where``.
                subs = [f"{where}.{a.name}" for a in node.names if _spec(f"{where}.{a.name}") is not None]
                found = subs + ([where] if len(subs) < len(node.names) else [])
            else:
                continue
            todo += [f for f in found if f not in sources and any(f == p or f.startswith(p + ".") for p in CODE_PACKAGES)
                     and _spec(f) is not None]
    return tuple(sorted(sources.items()))


def code_version(module: str) -> str:
    """sha256 (12 hex digits) of :func:`code_sources` of ``module``.

    A cache key holding it changes whenever the code that builds a variant does, so a fix
    can never silently reuse artifacts of the code before it (no version number to bump).
    Whitespace and comments count too: a rebuild too many, never one too few.
    """
    import hashlib

    digest = hashlib.sha256()
    for name, source in code_sources(module):
        digest.update(f"{name}\0{source}\0".encode())
    return digest.hexdigest()[:12]


class Compressor:
    """A registered variant producer.

    Subclasses set ``name`` and ``config_cls`` and implement :meth:`compress`.
    ``float_output`` says the result still has float ``nn.Linear`` weights, so
    another stage (pruning, quantization) may follow it in a ``+`` chain.
    """

    name: ClassVar[str]
    config_cls: ClassVar[type[CompressorConfig]]
    description: ClassVar[str] = ""
    float_output: ClassVar[bool] = False
    #: the stage is carried out by a deployment runtime on its own graph (post-training static
    #: quantization with calibration: harness.backends.openvino), never by :meth:`compress` on a
    #: torch module; the torch backend skips it with the reason
    runtime_stage: ClassVar[bool] = False

    def parse_arg(self, arg: str) -> dict[str, Any]:
        """Config fields from the text after ``@`` in a variant name."""
        raise CompressionError(f"variant '{self.name}' takes no '@' argument (got '@{arg}')")

    def needs_context(self, config: CompressorConfig) -> bool:
        """True when :meth:`compress` with ``config`` reads a :class:`CompressionContext`."""
        return False

    def code_version(self) -> str:
        """:func:`code_version` of the module that defines this compressor."""
        return code_version(type(self).__module__)

    def check_model(self, model: nn.Module, config: CompressorConfig | None = None) -> None:
        """Raise the one-line :class:`CompressionError` :meth:`compress` would raise
        for ``model``'s architecture, without modifying or running it.

        Default: any model (a compressor that needs no module names, e.g. a plugin's).
        Those that find their targets through :mod:`compressors.architecture`
        (DistilBERT, BERT, RoBERTa/XLM-R) or are tied to one family override it.
        ``config`` (None: the defaults) matters where the requirement depends on
        options (e.g. data-driven scoring).
        """

    def supports(self, model: nn.Module, config: CompressorConfig | None = None) -> str | None:
        """None if this compressor can compress ``model``, else the one-line reason
        (the message :meth:`compress` would raise; see :meth:`check_model`)."""
        try:
            self.check_model(model, config)
        except CompressionError as exc:
            return str(exc)
        return None

    def compress(self, model: nn.Module, config: CompressorConfig,
                 context: CompressionContext | None = None) -> nn.Module:
        """Return the compressed variant of ``model`` (which it may modify).

        ``context`` is passed only when :meth:`needs_context` is true, so a
        compressor that never reads data may define ``compress(model, config)``.
        """
        raise NotImplementedError

    def resolved_config(self, model: nn.Module, config: CompressorConfig) -> CompressorConfig:
        """The config to save with the compressed ``model``: ``config`` plus
        whatever :meth:`compress` decided from data, so that :meth:`restore`
        can rebuild the structure without data (default: ``config``)."""
        return config

    def restore(self, skeleton: nn.Module, config: CompressorConfig) -> nn.Module:
        """Turn an FP32 skeleton of the saved architecture into the module
        structure whose ``state_dict`` was saved (identity for float variants).
        ``config`` is the :meth:`resolved_config` saved with the variant."""
        return skeleton

    def describe(self, model: nn.Module, config: CompressorConfig) -> dict[str, Any]:
        """Facts about a compressed model worth recording with its results."""
        return {}


_REGISTRY: dict[str, Compressor] = {}


def register(cls: type[Compressor]) -> type[Compressor]:
    """Class decorator adding a compressor to the registry under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise RuntimeError(f"compressor '{cls.name}' registered twice")
    _REGISTRY[cls.name] = cls()
    return cls


def known_variants() -> list[str]:
    return sorted(_REGISTRY)


def registering_modules() -> list[str]:
    """Names of the modules whose classes registered a compressor (plugins included), sorted."""
    return sorted({type(c).__module__ for c in _REGISTRY.values()})


def _option_value(text: str) -> Any:
    """``"1"`` -> 1, ``"5e-5"`` -> 5e-05, ``"true"`` -> True, anything else stays a string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def split_spec(name: str) -> tuple[str, str | None, dict[str, Any]]:
    """``"base@arg:field=value:..."`` -> ``(base, arg or None, {field: value})`` for one stage.

    Values are read as bool (``true``/``false``), int, float or else string.

    Raises:
        CompressionError: an option that is not ``field=value``.
    """
    head, *opts = name.split(":")
    base, at, arg = head.partition("@")
    options: dict[str, Any] = {}
    for opt in opts:
        field, eq, value = opt.partition("=")
        if not (eq and field.strip() and value.strip()):
            raise CompressionError(
                f"option '{opt}' of variant '{name}' must be field=value, "
                f"e.g. 'magnitude-global@0.5:recovery_epochs=1'")
        options[field.strip()] = _option_value(value.strip())
    return base.strip(), (arg if at else None), options


def get(name: str) -> Compressor:
    """The compressor for variant ``name`` (its ``@`` argument and ``:`` options
    are ignored); a ``+`` chain gets a :class:`compressors.compose.Chain`.

    Raises:
        CompressionError: unknown name; the message lists the known ones.
    """
    if "+" in name:
        from .compose import Chain

        return Chain.from_spec(name)
    base = split_spec(name)[0]
    try:
        return _REGISTRY[base]
    except KeyError:
        raise CompressionError(
            f"unknown variant '{name}'; known variants: {', '.join(known_variants())}"
        ) from None


def make_config(name: str, **options: Any) -> CompressorConfig:
    """Config for the variant ``name`` (``"base[@arg][:field=value...]"``) plus options.

    Keyword ``options`` override the name's ``:`` options.  For a ``+`` chain,
    options are ``"<stage>.<field>"`` keys (see :func:`compressors.compose.chain_config`).
    """
    if "+" in name:
        from .compose import chain_config

        return chain_config(name, options)
    comp = get(name)
    _, arg, named = split_spec(name)
    fields: dict[str, Any] = {}
    if arg is not None:
        fields.update(comp.parse_arg(arg))
    fields.update(named)
    fields.update(options)
    try:
        return comp.config_cls.from_dict(fields)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, CompressionError):
            raise
        raise CompressionError(f"bad options for variant '{name}': {exc}") from None


def run(comp: Compressor, model: nn.Module, config: CompressorConfig,
        context: CompressionContext | None, variant: str) -> nn.Module:
    """``comp.compress(model, config)``, handing over ``context`` only if it is needed.

    Raises:
        CompressionError: the compressor needs data and ``context`` is None.
    """
    if not comp.needs_context(config):
        if getattr(comp, "optional_context", False):
            # Uses data when given (e.g. structured pruning's recovery), runs without.
            return comp.compress(model, config, context)
        return comp.compress(model, config)
    if context is None:
        raise _missing_context(variant)
    return comp.compress(model, config, context)


def _missing_context(variant: str) -> CompressionError:
    return CompressionError(
        f"variant '{variant}' needs training data: pass "
        f"context=CompressionContext(train_batches=...) to compressors.build")


def build(name: str, model: nn.Module, context: CompressionContext | None = None,
          **options: Any) -> nn.Module:
    """Compress ``model`` into the variant ``name``.

    Args:
        name: a registered variant name, e.g. ``"fp32"``, ``"int8-dynamic"``,
            ``"magnitude-global@0.5"`` or a chain ``"heads-grad@0.2+int8"``.
        model: the FP32 baseline; it is not modified (a copy is compressed).
        context: training data for data-dependent variants (head importance,
            recovery fine-tuning); ignored by the others.
        **options: fields of the compressor's config dataclass.

    Raises:
        CompressionError: unknown variant, invalid option, missing context,
            or a model without the modules the variant prunes.
    """
    import copy

    comp, config = validate(name, context, **options)  # before the (large) copy
    return run(comp, copy.deepcopy(model), config, context, name).eval()


def validate(name: str, context: CompressionContext | None = None,
             **options: Any) -> tuple[Compressor, CompressorConfig]:
    """Everything :func:`build` checks before touching a model: the name, the
    options and, for data-dependent variants, that ``context`` is given.

    Raises:
        CompressionError: as :func:`build`.
    """
    comp = get(name)
    config = make_config(name, **options)
    if comp.needs_context(config) and context is None:
        raise _missing_context(name)
    return comp, config

