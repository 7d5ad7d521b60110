"""``+`` chains of compressors: ``magnitude-global@0.5+int8``, ``heads-grad@0.2+int8``, ...

Stages run left to right on the same model, pruning first and quantization
last, as in study 001 (prune, then quantize the pruned weights).  Each stage
is written like a variant on its own, ``name[@arg][:field=value]``; ``int8`` is short for
``int8-dynamic`` with its default options.  Every stage but the last must keep
float ``nn.Linear`` weights (``Compressor.float_output``), so ``int8+...`` and
``fp32+...`` are refused, as is a stage that occurs twice.

The chain's config (:class:`ChainConfig`) is the list of stage configs; saved
with each stage's resolved config (e.g. the kept heads), it restores a skeleton
stage by stage in the same order.  Options of a chain are
``"<stage>.<field>"`` keys::

    compressors.build("magnitude-global@0.5+int8", model, context=ctx,
                      **{"magnitude-global.recovery_epochs": 1})
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch.nn as nn

from . import base
from .base import CompressionContext, CompressionError, Compressor, CompressorConfig

STAGE_ALIASES = {"int8": "int8-dynamic"}


def _canonical(stage: str) -> str:
    return STAGE_ALIASES.get(stage, stage)


def _known_stages() -> str:
    aliases = [f"{a} (= {t})" for a, t in STAGE_ALIASES.items()]
    return ", ".join(base.known_variants() + aliases)


def parse_spec(spec: str) -> list[tuple[str, str]]:
    """``[(registered stage name, stage spec with its @arg), ...]`` of a ``+`` chain.

    Raises:
        CompressionError: an empty or unknown stage (listing the known ones).
    """
    out = []
    for part in spec.split("+"):
        part = part.strip()
        stage = base.split_spec(part)[0]
        name = _canonical(stage)
        if name not in base.known_variants():
            raise CompressionError(
                f"unknown stage '{stage}' in variant '{spec}'; known stages: {_known_stages()}")
        out.append((name, name + part[len(stage):]))
    return out


def stages(variant: str) -> list[tuple[str, str]]:
    """``[(registered stage name, stage spec), ...]`` of any variant name: its ``+`` chain, or the
    one stage of a plain name.

    Raises:
        CompressionError: an unknown name or stage (listing the known ones).
    """
    return parse_spec(variant) if "+" in variant else [(base.get(variant).name, variant)]


def _check_order(names: list[str], spec: str) -> None:
    if len(names) < 2:
        raise CompressionError(f"chain '{spec}' needs at least two stages joined by '+'")
    if len(set(names)) != len(names):
        raise CompressionError(f"chain '{spec}' repeats a stage; use each stage at most once")
    for name in names[:-1]:
        if not base.get(name).float_output:
            chainable = [n for n in base.known_variants() if base.get(n).float_output]
            raise CompressionError(
                f"'{name}' must be the last stage of '{spec}': only stages that keep float nn.Linear "
                f"weights ({', '.join(chainable)}) can come before another")


@dataclasses.dataclass(frozen=True)
class ChainConfig(CompressorConfig):
    """Args:
    stages: ``(registered name, that compressor's config)`` per stage, in order.

    Raises:
        CompressionError: fewer than two stages, a repeated stage, a config of
            the wrong class, or a non-float stage before the last.
    """

    stages: tuple[tuple[str, CompressorConfig], ...] = ()

    def __post_init__(self) -> None:
        names = [n for n, _ in self.stages]
        spec = "+".join(names)
        _check_order(names, spec)
        for name, config in self.stages:
            want = base.get(name).config_cls
            if type(config) is not want:
                raise CompressionError(
                    f"stage '{name}' of '{spec}' needs a {want.__name__}, got {type(config).__name__}")

    def to_dict(self) -> dict[str, Any]:
        # Stage versions are part of the dict so a variant's cache key changes with any of them.
        return {"stages": [{"compressor": n, "version": type(c).version, "config": c.to_dict()}
                           for n, c in self.stages]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ChainConfig":
        try:
            items = [(s["compressor"], s["version"], s["config"]) for s in data["stages"]]
        except (KeyError, TypeError):
            raise CompressionError(
                "a chain config must be {'stages': [{'compressor', 'version', 'config'}, ...]}") from None
        stages = []
        for name, version, config in items:
            comp = base.get(name)
            if version != comp.config_cls.version:
                raise CompressionError(
                    f"stage '{name}' was saved with config version {version}, this code reads "
                    f"{comp.config_cls.version}; rebuild the variant")
            stages.append((name, comp.config_cls.from_dict(config)))
        return cls(tuple(stages))


def chain_config(spec: str, options: dict[str, Any]) -> ChainConfig:
    """The :class:`ChainConfig` of ``spec`` with ``"<stage>.<field>"`` options.

    Raises:
        CompressionError: unknown stage, bad order, or an option not addressed to a stage.
    """
    parts = parse_spec(spec)
    names = [n for n, _ in parts]
    _check_order(names, spec)
    per_stage: dict[str, dict[str, Any]] = {n: {} for n in names}
    for key, value in options.items():
        stage, dot, field = key.partition(".")
        if not dot or _canonical(stage) not in per_stage:
            raise CompressionError(
                f"option '{key}' of chain '{spec}' must be '<stage>.<field>' with a stage of the chain "
                f"({', '.join(names)}), e.g. '{names[0]}.{field or key}'")
        per_stage[_canonical(stage)][field] = value
    return ChainConfig(tuple((n, base.make_config(s, **per_stage[n])) for n, s in parts))


class Chain(Compressor):
    """The compressor of a ``+`` chain; its ``name`` joins the stage names
    (``"heads-grad+int8-dynamic"``), which is what a saved variant records."""

    config_cls = ChainConfig

    def __init__(self, names: list[str]) -> None:
        self.name = "+".join(names)  # type: ignore[misc]
        self.stage_names = tuple(names)
        self.description = " then ".join(base.get(n).description or n for n in names)  # type: ignore[misc]
        self.float_output = base.get(names[-1]).float_output  # type: ignore[misc]

    @classmethod
    def from_spec(cls, spec: str) -> "Chain":
        names = [n for n, _ in parse_spec(spec)]
        _check_order(names, spec)
        return cls(names)

    def _stages(self, config: ChainConfig) -> list[tuple[str, Compressor, CompressorConfig]]:
        names = tuple(n for n, _ in config.stages)
        if names != self.stage_names:
            raise CompressionError(f"chain '{self.name}' got the config of '{'+'.join(names)}'")
        return [(n, base.get(n), c) for n, c in config.stages]

    def needs_context(self, config: ChainConfig) -> bool:
        return any(comp.needs_context(c) for _, comp, c in self._stages(config))

    def code_version(self) -> str:
        """The chain's own module and every stage's :meth:`~compressors.base.Compressor.code_version`."""
        import hashlib

        parts = [base.code_version(type(self).__module__)] + [base.get(n).code_version() for n in self.stage_names]
        return hashlib.sha256("+".join(parts).encode()).hexdigest()[:12]

    def check_model(self, model: nn.Module, config: ChainConfig | None = None) -> None:
        """Every stage's :meth:`~compressors.base.Compressor.check_model` on ``model``,
        in order: the first failing stage's error is raised (so :meth:`supports`
        gives its reason).  Stages are checked on the unmodified model; the
        architecture family a stage needs survives the stages before it."""
        stages = (self._stages(config) if config is not None
                  else [(n, base.get(n), None) for n in self.stage_names])
        for _, comp, c in stages:
            comp.check_model(model, c)

    def compress(self, model: nn.Module, config: ChainConfig,
                 context: CompressionContext | None = None) -> nn.Module:
        for name, comp, c in self._stages(config):
            model = base.run(comp, model, c, context, name)
        return model

    def resolved_config(self, model: nn.Module, config: ChainConfig) -> ChainConfig:
        return ChainConfig(tuple((n, comp.resolved_config(model, c)) for n, comp, c in self._stages(config)))

    def restore(self, skeleton: nn.Module, config: ChainConfig) -> nn.Module:
        for _, comp, c in self._stages(config):
            skeleton = comp.restore(skeleton, c)
        return skeleton

    def describe(self, model: nn.Module, config: ChainConfig) -> dict[str, Any]:
        facts: dict[str, Any] = {"stages": self.name}
        for _, comp, c in self._stages(config):
            facts.update(comp.describe(model, c))
        return facts
