"""Shared machinery of the multi-stage pipelines (``edgemin-s*``, ``pkd-s*``).

* A *stage cache*: the float model after a training stage is saved under
  ``cache_dir()/stages/<stage>-<hash>/`` (``config.json``, ``model.safetensors``,
  ``meta.json`` with the model class, the kept heads, the training log and its
  wall time; a stage reloads as the class it was saved as).  The
  hash covers everything the stage's result depends on: the teacher's weights,
  the student's weights, the training data, the stage's options and the hash
  of the stage it starts from, so ``-s2`` reuses ``-s1``'s result and a re-run
  of the suite never retrains.
* The config fields and the restore path every staged variant shares: the
  kept attention heads (so a saved variant is rebuilt from an FP32 skeleton)
  and the final INT8 stage.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import torch
import torch.nn as nn

from harness.core import cache
from harness.core.atomic import write_json
from harness.core.paths import cache_dir

from .base import Batch, CompressionError, Compressor, CompressorConfig, code_version
from .heads import layer_kept_heads, prune_heads
from .quantize import Int8Dynamic, Int8DynamicConfig

STAGES_DIR = "stages"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fingerprint_model(model: nn.Module) -> str:
    """sha256 (16 hex chars) of a float model's state dict (names, shapes, values)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def fingerprint_batches(batches: Sequence[Batch]) -> str:
    """sha256 (16 hex chars) of the training batches' tokens, masks and labels, in order."""
    h = hashlib.sha256()
    for batch in batches:
        for t in batch:
            h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def truncate(batches: Sequence[Batch], max_length: int) -> list[Batch]:
    """Batches cut to ``max_length`` tokens the way a tokenizer truncates: the first
    ``max_length - 1`` tokens, then each cut row's own closing token ([SEP]) in the last position,
    so every training row ends as every evaluation row does (the [CLS] the classifier reads is
    position 0 either way).  Rows already that short are unchanged; right padding assumed.

    Training cost grows with sequence length; the pipelines' CPU-budget
    default trains at 64 tokens (evaluation stays at the suite's 128).
    """
    out = []
    for ids, mask, labels in batches:
        if ids.shape[1] <= max_length:
            out.append((ids, mask, labels))
            continue
        length = mask.sum(dim=1)  # (B,) real tokens
        closing = ids.gather(1, (length.clamp(min=1) - 1)[:, None])  # (B, 1): each row's [SEP]
        cut_ids, cut_mask = ids[:, :max_length].clone(), mask[:, :max_length].clone()
        long = length > max_length
        cut_ids[long, -1] = closing[long, 0]
        out.append((cut_ids, cut_mask, labels))
    return out


def stage_key(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def kept_heads(model: nn.Module, variant: str) -> tuple[tuple[int, ...], ...]:
    """Per encoder layer, the original indices of the attention heads ``model`` still has."""
    return layer_kept_heads(model, variant)


def _write(model: nn.Module, folder: Path, meta: dict[str, Any], variant: str) -> None:
    """Write a stage's files into the (new, empty) ``folder``."""
    from safetensors.torch import save_file

    folder.chmod(0o755)
    model.config.save_pretrained(folder)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    write_json(folder / "meta.json", {**meta, "model_class": type(model).__name__,
                                      "kept_heads": [list(k) for k in kept_heads(model, variant)]})


# Stages cached before meta.json recorded the model class were all DistilBERT classifiers.
_DEFAULT_STAGE_CLASS = "DistilBertForSequenceClassification"


def _load(folder: Path, variant: str) -> tuple[nn.Module, dict[str, Any]]:
    import transformers
    from safetensors.torch import load_file
    from transformers.initialization import no_init_weights

    meta = json.loads((folder / "meta.json").read_text())
    name = meta.get("model_class", _DEFAULT_STAGE_CLASS)
    cls = getattr(transformers, name, None)
    if not (isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)):
        raise TypeError(f"meta.json names model class '{name}', which is not a transformers model")
    with no_init_weights():
        model = cls(cls.config_class.from_json_file(str(folder / "config.json")))
    prune_heads(model, meta["kept_heads"], variant, copy=False)
    model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    return model.eval(), meta


def stage_root() -> Path:
    """Where stage results are cached (module-level so tests can point it at a temporary folder)."""
    return cache_dir() / STAGES_DIR


def cached_stage(stage: str, payload: dict[str, Any],
                 build: Callable[[], tuple[nn.Module, dict[str, Any]]]) -> tuple[nn.Module, dict[str, Any], str]:
    """``(model, meta, key)`` of a training stage, built by ``build()`` only if not cached.

    ``build`` returns the model and a JSON-able log (it should include
    ``train_s``, the stage's training wall time).  A cached folder that fails
    to load is rebuilt with one line on stderr.  Cached through
    :func:`harness.core.cache.get_or_build`: concurrent runs train a stage once.
    The key holds the :func:`~compressors.base.code_version` of the module defining ``build``
    (the stage's recipe and training code), so changed code never reuses a stale stage.
    """
    payload = {**payload, "code": code_version(build.__module__)}
    key = stage_key(payload)

    def load(folder: Path) -> tuple[nn.Module, dict[str, Any]]:
        try:
            return _load(folder, stage)
        except Exception as exc:  # noqa: BLE001 -- any corruption means: rebuild
            raise cache.Corrupt(str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__) from None

    def build_into(tmp: Path) -> tuple[nn.Module, dict[str, Any]]:
        t0 = time.perf_counter()
        model, log = build()
        meta = {"stage": stage, "key": key, "payload": payload, "build_s": round(time.perf_counter() - t0, 2),
                "threads": torch.get_num_threads(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **log}
        _write(model, tmp, meta, stage)
        return model, meta

    entry = cache.get_or_build(
        stage_root(), f"{stage}-{key}", load=load, build=build_into, log=_log,
        corrupt_note=lambda folder, reason: f"{stage}: cached stage {folder} unusable ({reason}); rebuilding")
    model, meta = entry.value
    if entry.cached:
        _log(f"{stage}: using cached stage {entry.folder.name}")
    else:
        _log(f"{stage}: built in {meta['build_s']:.0f} s, cached as {entry.folder.name}")
    return model.eval(), meta, key


def loss_summary(losses: Sequence[float]) -> dict[str, Any]:
    """First loss and the mean of the last 10% of steps (nats)."""
    if not losses:
        return {"steps": 0}
    tail = losses[-max(1, len(losses) // 10):]
    return {"steps": len(losses), "loss_first": round(losses[0], 5), "loss_last_10pct": round(sum(tail) / len(tail), 5)}


# ---------------------------------------------------------------------------
# the compressor side shared by staged pipelines


@dataclasses.dataclass(frozen=True)
class StagedConfig(CompressorConfig):
    """Fields every staged pipeline config has.

    kept_heads: per layer, the original indices of the attention heads kept;
        filled in by ``resolved_config`` and saved, so ``restore`` rebuilds
        the shapes without data or training.
    """

    kept_heads: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self) -> None:
        if self.kept_heads is not None:
            object.__setattr__(self, "kept_heads", tuple(tuple(int(h) for h in k) for k in self.kept_heads))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["kept_heads"] = None if self.kept_heads is None else [list(k) for k in self.kept_heads]
        return out


class StagedPipeline(Compressor):
    """A pipeline variant ending at stage ``stage`` of ``n_stages``; the last stage is INT8."""

    stage: ClassVar[int]
    n_stages: ClassVar[int] = 3

    @property
    def quantized(self) -> bool:
        return self.stage == self.n_stages

    @property
    def float_output(self) -> bool:  # type: ignore[override]
        return not self.quantized

    def needs_context(self, config: StagedConfig) -> bool:
        return True

    def finish(self, model: nn.Module, stages: dict[str, Any]) -> nn.Module:
        """Quantize if this is the last stage; attach the stage log for :meth:`describe`."""
        if self.quantized:
            model = Int8Dynamic().compress(model, Int8DynamicConfig())
        model.edgebench_stages = stages  # read by describe(); not part of the state dict
        return model.eval()

    def resolved_config(self, model: nn.Module, config: StagedConfig) -> StagedConfig:
        return dataclasses.replace(config, kept_heads=kept_heads(model, self.name))

    def restore(self, skeleton: nn.Module, config: StagedConfig) -> nn.Module:
        if config.kept_heads is None:
            raise CompressionError(f"the saved '{self.name}' variant records no kept_heads; delete it to rebuild it")
        prune_heads(skeleton, config.kept_heads, self.name, copy=False)
        if self.quantized:
            skeleton = Int8Dynamic().restore(skeleton, Int8DynamicConfig())
        return skeleton

    def describe(self, model: nn.Module, config: StagedConfig) -> dict[str, Any]:
        kept = [len(k) for k in kept_heads(model, self.name)]
        facts: dict[str, Any] = {"pipeline": self.name.rsplit("-", 1)[0], "pipeline_stage": self.stage,
                                 "n_layers": len(kept), "heads_kept": sum(kept),
                                 "heads_per_layer": ",".join(map(str, kept))}
        for stage, info in getattr(model, "edgebench_stages", {}).items():
            for k, v in info.items():
                if isinstance(v, (int, float, str, bool)) or v is None:
                    facts[f"{stage}.{k}"] = v
        return facts
