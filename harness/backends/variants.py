"""Variants on disk: save, verify, load, and the build cache.

A variant folder holds ``config.json`` (the Hugging Face config of the FP32
architecture), the weights (``model.safetensors`` when every tensor is a plain
tensor, else ``model.pt``, a ``torch.save``'d state dict of packed INT8
weights that is only ever read with ``weights_only=True``) and
``variant.json`` (what built it and the weights' sha256).  Loading rebuilds the
FP32 skeleton without initialising it, lets the compressor restore its module
structure, then loads the state dict strictly -- the same path the fresh-process
cold-start worker takes, so what is timed is what was saved.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

import compressors
from harness.core import atomic, cache
from harness.core.errors import HarnessError
from harness.core.paths import cache_dir

SCHEMA = 1
SAFETENSORS = "model.safetensors"
PICKLE = "model.pt"


@dataclasses.dataclass(frozen=True)
class VariantInfo:
    """Contents of ``variant.json``."""

    profile: str
    variant: str
    compressor: str
    config: dict[str, Any]
    model_class: str
    weights_file: str
    weights_sha256: str
    size_bytes: int
    source_key: str
    facts: dict[str, Any]
    build_s: float
    schema: int = SCHEMA
    # compressors.base.code_version of the code that built it ("" in folders saved before it was recorded)
    code_version: str = ""

    @property
    def size_mb(self) -> float:
        """Serialized weights on disk in MB (10^6 bytes)."""
        return self.size_bytes / 1e6


def _plain(state: dict[str, Any]) -> bool:
    return all(type(v) is torch.Tensor and not v.is_quantized for v in state.values())


def save_variant(
    model: nn.Module, out_dir: Path, *, profile: str, variant: str, source_key: str, build_s: float = 0.0
) -> VariantInfo:
    """Write ``model`` (a transformers ``PreTrainedModel``, possibly compressed) to ``out_dir``."""
    comp = compressors.get(variant)
    # What compress decided from data (e.g. kept attention heads) is saved with
    # the config, so restore can rebuild the shapes without the data.
    config = comp.resolved_config(model, compressors.make_config(variant))
    code = comp.code_version()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(out_dir)
    state = model.state_dict()
    if _plain(state):
        from safetensors.torch import save_model

        weights = out_dir / SAFETENSORS
        save_model(model, str(weights))  # tied weights (an MLM projector) stored once
    else:
        weights = out_dir / PICKLE
        torch.save(state, weights)
    info = VariantInfo(
        profile=profile,
        variant=variant,
        compressor=comp.name,
        config=config.to_dict(),
        model_class=type(model).__name__,
        weights_file=weights.name,
        weights_sha256=atomic.sha256_file(weights),
        size_bytes=weights.stat().st_size,
        source_key=source_key,
        facts={**comp.describe(model, config), "compressor_code_version": code},
        build_s=build_s,
        code_version=code,
    )
    atomic.write_json(out_dir / "variant.json", dataclasses.asdict(info))
    return info


def read_info(variant_dir: Path, verify: bool = True) -> VariantInfo:
    """Read ``variant.json`` and (by default) check the weights' sha256.

    Raises:
        HarnessError: missing folder/file, unknown schema, or checksum mismatch.
    """
    meta = Path(variant_dir) / "variant.json"
    if not meta.is_file():
        raise HarnessError(f"{variant_dir} is not a saved variant (no variant.json); rebuild it with 'make bench'")
    try:
        raw = json.loads(meta.read_text(encoding="utf-8"))
        info = VariantInfo(**raw)
    except (ValueError, TypeError) as exc:
        raise HarnessError(f"{meta} is unreadable ({exc}); delete {variant_dir} to rebuild it") from None
    if info.schema != SCHEMA:
        raise HarnessError(f"{meta} has schema {info.schema}, this harness reads {SCHEMA}; delete {variant_dir} to rebuild it")
    weights = Path(variant_dir) / info.weights_file
    if verify:
        if not weights.is_file():
            raise HarnessError(f"{weights} is missing; delete {variant_dir} to rebuild it")
        sha = atomic.sha256_file(weights)
        if sha != info.weights_sha256:
            raise HarnessError(
                f"{weights} has sha256 {sha[:12]}… but variant.json records {info.weights_sha256[:12]}…: "
                f"the cached variant is corrupt; delete {variant_dir} to rebuild it"
            )
    return info


def _model_class(name: str) -> type[nn.Module]:
    import transformers

    cls = getattr(transformers, name, None)
    if not (isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)):
        raise HarnessError(f"variant.json names model class '{name}', which is not a transformers model")
    return cls


def import_model_class(variant_dir: Path) -> type[nn.Module]:
    """Import the variant's model class (transformers imports lazily, ~1.7 s):
    the cold-start worker does this in its import phase, not its load phase."""
    return _model_class(read_info(variant_dir, verify=False).model_class)


def load_variant(variant_dir: Path, verify: bool = True) -> tuple[nn.Module, VariantInfo]:
    """Load a saved variant in eval mode.

    Raises:
        HarnessError: corrupt or incompatible variant folder.
    """
    from transformers import AutoConfig
    from transformers.initialization import no_init_weights

    info = read_info(variant_dir, verify=verify)
    hf_config = AutoConfig.from_pretrained(variant_dir)
    with no_init_weights():
        skeleton = _model_class(info.model_class)(hf_config)
    # no_init_weights also skips tying: an MLM projector must be the word embeddings
    # again before loading, as the file stores that tensor once.
    skeleton.tie_weights()
    skeleton.eval()
    config = compressors.get(info.compressor).config_cls.from_dict(info.config)
    model = compressors.get(info.compressor).restore(skeleton, config)
    weights = Path(variant_dir) / info.weights_file
    try:
        if info.weights_file == SAFETENSORS:
            from safetensors.torch import load_model

            # Copies (not assign=True) out of safetensors' mmap: adopting the mapped
            # pages halves peak RSS but moves ~0.7 s of page faults into the
            # first forward of distilbert-base (measured), a slower cold start.
            load_model(model, weights, strict=True)
        else:
            # weights_only: a cached file must never be able to run code.
            state = torch.load(weights, weights_only=True, map_location="cpu")
            model.load_state_dict(state, strict=True)
    except Exception as exc:  # noqa: BLE001 -- turn torch's traceback into one line
        detail = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise HarnessError(f"cannot load {weights}: {detail[:300]}; delete {variant_dir} to rebuild it") from None
    return model.eval(), info


def variant_key(profile: str, source_key: str, variant: str) -> str:
    """Cache key of a variant: what it was built from and how."""
    config = compressors.make_config(variant)
    blob = json.dumps(
        {
            "profile": profile,
            "source": source_key,
            "variant": variant,
            "config": config.to_dict(),
            "config_version": type(config).version,
            "code": compressors.get(variant).code_version(),
            "torch": torch.__version__,
            "schema": SCHEMA,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def variant_dir(profile: str, source_key: str, variant: str, root: Path | None = None) -> Path:
    return cache.entry_path(root or area(), entry_name(profile, source_key, variant))


def area() -> Path:
    """The variants cache area: ``cache_dir()/variants``."""
    return cache_dir() / "variants"


def folder_name(variant: str) -> str:
    """A variant name as a folder name (``@`` and ``/`` are not kept in cache paths)."""
    return variant.replace("@", "_at_").replace("/", "_")


def entry_name(profile: str, source_key: str, variant: str) -> str:
    """``<profile>/<variant>-<key>``: the variant's folder inside the variants cache area."""
    return f"{profile}/{folder_name(variant)}-{variant_key(profile, source_key, variant)}"


def get_or_build(
    profile: str,
    variant: str,
    source_key: str,
    load_baseline: Callable[[], nn.Module],
    root: Path | None = None,
    log: Callable[[str], None] = print,
    context: compressors.CompressionContext | None = None,
    rebuild: bool = True,
) -> Path:
    """Folder of the saved variant, building and saving it if not cached.

    A cached folder whose weights do not match the sha256 in its
    ``variant.json`` (or whose metadata is unreadable) is never used: it is
    rebuilt with one line saying so, or with ``rebuild=False`` (the suite's
    ``--no-rebuild``) a HarnessError names it.  Built through
    :func:`harness.core.cache.get_or_build`, so concurrent runs sharing one
    cache build each entry once and a failed build leaves nothing behind.
    ``context`` carries training data for data-dependent variants; the cache
    key does not include it because ``source_key`` already covers the data.
    """
    compressors.base.validate(variant, context)  # a bad name or missing data writes nothing, not even a lock

    def build(tmp: Path) -> None:
        start = time.perf_counter()
        model = compressors.build(variant, load_baseline(), context=context)
        save_variant(model, tmp, profile=profile, variant=variant, source_key=source_key,
                     build_s=time.perf_counter() - start)

    return cache.get_or_build(
        root or area(), entry_name(profile, source_key, variant), load=read_info, build=build,
        corrupt=(HarnessError,), corrupt_note=lambda folder, reason: f"rebuilding {profile}/{variant}: {reason}",
        log=log, rebuild=rebuild).folder
