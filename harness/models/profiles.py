"""Model profiles: which FP32 baseline a run starts from.

* ``minilm-l6`` -- real weights: all-MiniLM-L6-v2 converted into
  ``DistilBertForSequenceClassification`` (6 layers, H384, 12 heads, FFN 1536)
  and fine-tuned on IMDB (``harness.models.finetune``).  Accuracy is measured.
* ``distilbert-base`` -- the architecture of ``distilbert-base-uncased``
  (66.96M parameters with the 2-class head), random init with seed 42: size,
  parameters, FLOPs, latency and memory only; accuracy is "n/a (random weights)".
* ``minilm-l12-h384`` -- the architecture of MiniLM-L12-H384-uncased (study
  000's student: 12 layers, H384, 12 heads, FFN 1536), random init with seed
  42, beside ``distilbert-base`` (study 000's teacher) for the paper's size,
  parameter and FLOPs ratios; no weights of it ship in any registry package.
* ``minilm-l6-mlm`` -- real weights: the pretrained all-MiniLM-L6-v2 encoder
  (not fine-tuned) under DistilBERT's MLM head, the head fitted on IMDB text
  with the encoder frozen (:mod:`harness.models.mlm`); task ``mlm``: study 001's MLM,
  distillation and cosine eval losses.  Not in the default run.
* ``tiny-random`` -- a 2-layer, 32-wide DistilBERT for the harness's own tests.
* ``convnext-fmnist`` -- ConvNeXt (depths [1, 1, 3, 1], widths [32, 64, 128,
  256], patch 2, 1 channel) trained from scratch on Fashion-MNIST
  (``harness.models.vision_train``); accuracy is measured.  Image sizes 28/56/112.
* ``convnext-small`` -- the ConvNeXt-Small architecture (depths [3, 3, 27, 3],
  widths [96, 192, 384, 768], 10 classes), random init: size, parameters,
  MACs, latency and memory at 32×32 and 224×224 (study 004's model).
* ``tiny-convnext`` -- a 2-stage, 8/16-wide ConvNeXt for the harness's tests.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Callable

import torch
import torch.nn as nn

from harness.core.errors import HarnessError
from harness.models import finetune, mlm, vision_train

# Fewer shapes, each with repeated interleaved blocks (issue 16): the short, the budgeted and
# the longest length; batch 1 (the latency campaign at seq 128) and batch 32.  Every shape is
# one timing campaign of up to --timing-cap-s; --seq-lengths / --batch-sizes add more.
SEQ_LENGTHS = (16, 128, 512)
BATCH_SIZES = (1, 32)


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
    # The modality (harness.models.tasks): inputs, eval sets, and what ``seq_lengths``
    # means -- tokens for "text", pixels per side for "image".  ``static_length``
    # is the length of the static (FLOPs) / cold-start / memory / throughput inputs.
    task: str = "text"
    static_length: int = 128


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
    return "finetuned-" + finetune.recipe_hash(finetune.FinetuneRecipe())


def _minilm_load() -> nn.Module:
    return finetune.load_checkpoint(finetune.baseline_checkpoint(finetune.FinetuneRecipe()))


def _mlm_key() -> str:
    return "mlm-" + mlm.recipe_hash(mlm.MLMRecipe())


def _mlm_load() -> nn.Module:
    return mlm.load_baseline()


# ---------------------------------------------------------------- vision (issue 9, study 004)
CONVNEXT_SMALL = dict(num_channels=3, patch_size=4, hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 27, 3],
                      image_size=224, num_labels=10)
TINY_CONVNEXT = dict(num_channels=1, patch_size=2, hidden_sizes=[8, 16], depths=[1, 1], num_stages=2,
                     image_size=28, num_labels=10)


def _convnext_random(config_kwargs: dict, seed: int = 42) -> Callable[[], nn.Module]:
    def load() -> nn.Module:
        from transformers import ConvNextConfig, ConvNextForImageClassification

        torch.manual_seed(seed)
        return ConvNextForImageClassification(ConvNextConfig(**config_kwargs)).eval()

    return load


def _fmnist_key() -> str:
    return "trained-" + vision_train.recipe_hash(vision_train.VisionRecipe())


def _fmnist_load() -> nn.Module:
    return vision_train.load_checkpoint(vision_train.baseline_checkpoint(vision_train.VisionRecipe()))


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("minilm-l6", "all-MiniLM-L6-v2 as DistilBERT, fine-tuned on IMDB (real weights)",
                True, _minilm_key, _minilm_load),
        Profile("minilm-l6-mlm", "all-MiniLM-L6-v2 encoder + DistilBERT MLM head fitted on IMDB (encoder frozen)",
                True, _mlm_key, _mlm_load, task="mlm"),
        Profile("distilbert-base", "distilbert-base-uncased architecture, random init seed 42",
                False, _random_key(DISTILBERT_BASE), _random_init(DISTILBERT_BASE)),
        Profile("minilm-l12-h384", "MiniLM-L12-H384 architecture (study 000's student), random init seed 42",
                False, _random_key(MINILM_L12_H384), _random_init(MINILM_L12_H384)),
        # A seconds-fast model for smoke tests of the harness itself; never in the default run.
        Profile("tiny-random", "2-layer DistilBERT (dim 32), random init seed 42, for harness tests",
                False, _random_key(TINY), _random_init(TINY), seq_lengths=(16, 128), batch_sizes=(1, 4)),
        Profile("convnext-fmnist", "ConvNeXt [1,1,3,1]x[32..256], patch 2, trained from scratch on Fashion-MNIST",
                True, _fmnist_key, _fmnist_load, seq_lengths=(28, 56, 112), batch_sizes=(1, 8, 32),
                task="image", static_length=28),
        Profile("convnext-small", "ConvNeXt-Small architecture (50M params, 10 classes), random init seed 42",
                False, _random_key(CONVNEXT_SMALL), _convnext_random(CONVNEXT_SMALL), seq_lengths=(32, 224),
                batch_sizes=(1, 8), task="image", static_length=224),
        Profile("tiny-convnext", "2-stage ConvNeXt (widths 8, 16), random init seed 42, for harness tests",
                False, _random_key(TINY_CONVNEXT), _convnext_random(TINY_CONVNEXT), seq_lengths=(28,),
                batch_sizes=(1, 2), task="image", static_length=28),
    )
}


def get_profile(name: str) -> Profile:
    """Raises HarnessError for an unknown name, listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise HarnessError(f"unknown profile '{name}'; known profiles: {', '.join(PROFILES)}") from None
