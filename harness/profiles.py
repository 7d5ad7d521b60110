"""Model profiles: which FP32 baseline a run starts from.

* ``minilm-l6`` -- real weights: all-MiniLM-L6-v2 converted into
  ``DistilBertForSequenceClassification`` (6 layers, H384, 12 heads, FFN 1536)
  and fine-tuned on IMDB (``harness.finetune``).  Accuracy is measured.
* ``distilbert-base`` -- the architecture of ``distilbert-base-uncased``
  (66.96M parameters with the 2-class head), random init with seed 42: size,
  parameters, FLOPs, latency and memory only; accuracy is "n/a (random weights)".
* ``minilm-l12-h384`` -- the architecture of MiniLM-L12-H384-uncased (study
  000's student: 12 layers, H384, 12 heads, FFN 1536), random init with seed
  42, beside ``distilbert-base`` (study 000's teacher) for the paper's size,
  parameter and FLOPs ratios; no weights of it ship in any registry package.
* ``tiny-random`` -- a 2-layer, 32-wide DistilBERT for the harness's own tests.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Callable

import torch
import torch.nn as nn

from .errors import HarnessError

SEQ_LENGTHS = (16, 32, 64, 128, 256, 512)
BATCH_SIZES = (1, 8, 32)


@dataclasses.dataclass(frozen=True)
class Profile:
    """A baseline model and the axes it is measured on.

    ``source_key()`` identifies the exact baseline weights (for the variant
    cache); ``load_fp32()`` returns it in eval mode.
    """

    name: str
    description: str
    real_weights: bool
    source_key: Callable[[], str]
    load_fp32: Callable[[], nn.Module]
    seq_lengths: tuple[int, ...] = SEQ_LENGTHS
    batch_sizes: tuple[int, ...] = BATCH_SIZES


DISTILBERT_BASE = dict(vocab_size=30522, dim=768, n_layers=6, n_heads=12, hidden_dim=3072,
                       max_position_embeddings=512, num_labels=2)
MINILM_L12_H384 = dict(vocab_size=30522, dim=384, n_layers=12, n_heads=12, hidden_dim=1536,
                       max_position_embeddings=512, num_labels=2)
TINY = dict(vocab_size=30522, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
            max_position_embeddings=512, num_labels=2)


def _random_init(config_kwargs: dict, seed: int = 42) -> Callable[[], nn.Module]:
    def load() -> nn.Module:
        from transformers import DistilBertConfig, DistilBertForSequenceClassification

        torch.manual_seed(seed)
        return DistilBertForSequenceClassification(DistilBertConfig(**config_kwargs)).eval()

    return load


def _random_key(config_kwargs: dict, seed: int = 42) -> Callable[[], str]:
    def key() -> str:
        blob = json.dumps({"config": config_kwargs, "seed": seed, "torch": torch.__version__}, sort_keys=True)
        return "random-" + hashlib.sha256(blob.encode()).hexdigest()[:16]

    return key


def _minilm_key() -> str:
    from . import finetune

    return "finetuned-" + finetune.recipe_hash(finetune.FinetuneRecipe())


def _minilm_load() -> nn.Module:
    from . import finetune

    return finetune.load_checkpoint(finetune.baseline_checkpoint(finetune.FinetuneRecipe()))


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("minilm-l6", "all-MiniLM-L6-v2 as DistilBERT, fine-tuned on IMDB (real weights)",
                True, _minilm_key, _minilm_load),
        Profile("distilbert-base", "distilbert-base-uncased architecture, random init seed 42",
                False, _random_key(DISTILBERT_BASE), _random_init(DISTILBERT_BASE)),
        Profile("minilm-l12-h384", "MiniLM-L12-H384 architecture (study 000's student), random init seed 42",
                False, _random_key(MINILM_L12_H384), _random_init(MINILM_L12_H384)),
        # A seconds-fast model for smoke tests of the harness itself; never in the default run.
        Profile("tiny-random", "2-layer DistilBERT (dim 32), random init seed 42, for harness tests",
                False, _random_key(TINY), _random_init(TINY), seq_lengths=(16, 128), batch_sizes=(1, 4)),
    )
}


def get_profile(name: str) -> Profile:
    """Raises HarnessError for an unknown name, listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise HarnessError(f"unknown profile '{name}'; known profiles: {', '.join(PROFILES)}") from None
