"""Compressor registry: one config dataclass and one transform per variant.

In the spirit of torchao's ``quantize_(model, config)``: a variant is named by a
string (``"int8-dynamic"``), the name maps to a :class:`Compressor` whose
``config_cls`` is a frozen dataclass validated in ``__post_init__``.  A variant
name may carry one positional argument after ``@`` (``"magnitude-global@0.5"``),
which the compressor's :meth:`Compressor.parse_arg` turns into config fields.

Every compressor also knows how to :meth:`Compressor.restore` the module
structure of a saved variant from an FP32 skeleton, so a variant saved to disk
can be reloaded in a fresh process without re-running the compression.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

import torch.nn as nn


class CompressionError(ValueError):
    """Bad compressor input (unknown variant, invalid option); one-line message."""


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


class Compressor:
    """A registered variant producer.

    Subclasses set ``name`` and ``config_cls`` and implement :meth:`compress`.
    """

    name: ClassVar[str]
    config_cls: ClassVar[type[CompressorConfig]]
    description: ClassVar[str] = ""

    def parse_arg(self, arg: str) -> dict[str, Any]:
        """Config fields from the text after ``@`` in a variant name."""
        raise CompressionError(f"variant '{self.name}' takes no '@' argument (got '@{arg}')")

    def compress(self, model: nn.Module, config: CompressorConfig) -> nn.Module:
        """Return the compressed variant of ``model`` (which it may modify)."""
        raise NotImplementedError

    def restore(self, skeleton: nn.Module, config: CompressorConfig) -> nn.Module:
        """Turn an FP32 skeleton of the saved architecture into the module
        structure whose ``state_dict`` was saved (identity for float variants)."""
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


def get(name: str) -> Compressor:
    """The compressor registered under ``name`` (without any ``@`` argument).

    Raises:
        CompressionError: unknown name; the message lists the known ones.
    """
    base = name.split("@", 1)[0]
    try:
        return _REGISTRY[base]
    except KeyError:
        raise CompressionError(
            f"unknown variant '{name}'; known variants: {', '.join(known_variants())}"
        ) from None


def make_config(name: str, **options: Any) -> CompressorConfig:
    """Config for the variant ``name`` (``"base"`` or ``"base@arg"``) plus options."""
    comp = get(name)
    fields: dict[str, Any] = {}
    if "@" in name:
        fields.update(comp.parse_arg(name.split("@", 1)[1]))
    fields.update(options)
    try:
        return comp.config_cls.from_dict(fields)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, CompressionError):
            raise
        raise CompressionError(f"bad options for variant '{name}': {exc}") from None


def build(name: str, model: nn.Module, **options: Any) -> nn.Module:
    """Compress ``model`` into the variant ``name``.

    Args:
        name: a registered variant name, e.g. ``"fp32"`` or ``"int8-dynamic"``.
        model: the FP32 baseline; it is not modified (a copy is compressed).
        **options: fields of the compressor's config dataclass.

    Raises:
        CompressionError: unknown variant or invalid option.
    """
    import copy

    config = make_config(name, **options)
    return get(name).compress(copy.deepcopy(model), config).eval()


FilterFn = Callable[[nn.Module, str], bool]
