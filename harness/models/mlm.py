"""The ``minilm-l6-mlm`` profile: study 001's MLM eval loss on our data.

Study 001 judges its compressed DistilBERT by the three losses it was trained
with (Sanh et al., 2019): masked-language-model cross-entropy, distillation KL
and hidden-state cosine.  Our classifier profiles have no MLM head, so this
profile is the pretrained all-MiniLM-L6-v2 encoder (converted, not fine-tuned)
under DistilBERT's MLM head (``DistilBertForMaskedLM``: ``vocab_transform``
H->H, GELU, ``vocab_layer_norm``, ``vocab_projector`` tied to the word
embeddings).  The sentence-transformers package ships no MLM head, so the head
is fitted once with the encoder **frozen** (only ``vocab_transform``,
``vocab_layer_norm`` and the projector's bias train) on IMDB training reviews,
and cached by recipe hash like the fine-tuned baseline.  Every variant of the
profile then differs from the baseline only where a compressor touched it.

Masking is BERT's (Devlin et al., 2019): 15% of the real tokens (never [CLS],
[SEP] or padding); of those 80% become [MASK], 10% a random token, 10% stay.
The evaluation set (``imdb-mlm``) is the first :data:`EVAL_REVIEWS` IMDB test
reviews at 128 tokens, masked once with a fixed seed, so every variant is scored
on the same positions: logits (N_masked, vocab) and labels (N_masked,).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from harness.core import checks
from harness.core import train as training
from harness.data import text
from harness.models import convert, finetune

CHECKPOINT_PREFIX = "minilm-l6-mlm-"
MODEL_CLASS = "DistilBertForMaskedLM"
EVAL_REVIEWS = 256
EVAL_SEED = 1234  # not the training seed: the evaluation masks are not the fitted ones
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclasses.dataclass(frozen=True)
class MLMRecipe:
    """How the MLM head is fitted (encoder frozen).

    n_train: IMDB training reviews; max_length: tokens per review; mask_prob:
    share of real tokens masked; epochs / batch_size / lr: AdamW over the head's
    parameters (fresh masks every epoch); seed: masks, batch order and head init.
    """

    n_train: int = 2000
    max_length: int = 128
    mask_prob: float = 0.15
    epochs: int = 2
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 42
    version: int = 1

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name in ("n_train", "max_length", "epochs", "batch_size", "version"):
            checks.integer(owner, name, getattr(self, name), 1)
        checks.integer(owner, "seed", self.seed, 0)
        checks.positive(owner, "mask_prob", self.mask_prob, below=1.0)
        checks.positive(owner, "lr", self.lr, below=1.0)


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: list[int], mask_id: int,
                vocab_size: int, prob: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking of a (B, L) batch: ``(masked input_ids (B, L), labels (B, L))``.

    Labels are the original ids at the chosen positions and -100 elsewhere
    (cross-entropy's ignore index).  Padding (``attention_mask`` 0) and
    ``special_ids`` are never chosen.  Deterministic for a given ``generator`` state.
    """
    eligible = attention_mask.bool() & ~torch.isin(input_ids, torch.tensor(special_ids))
    chosen = eligible & (torch.rand(input_ids.shape, generator=generator) < prob)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    roll = torch.rand(input_ids.shape, generator=generator)
    masked = input_ids.clone()
    masked[chosen & (roll < 0.8)] = mask_id
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    masked[swap] = torch.randint(vocab_size, input_ids.shape, generator=generator)[swap]
    return masked, labels


def _masker(tokenizer: Any, prob: float):
    special = sorted(set(tokenizer.all_special_ids))
    return lambda ids, mask, gen: mask_tokens(ids, mask, special, tokenizer.mask_token_id, len(tokenizer), prob, gen)


def masked_batches(texts: list[str], tokenizer: Any, batch_size: int, max_length: int, prob: float,
                   seed: int) -> list[Batch]:
    """``(masked input_ids, attention_mask, labels)`` batches of ``texts`` in order, masked under ``seed``."""
    ds = text.TextDataset(name="mlm", texts=tuple(texts), labels=(0,) * len(texts))
    gen = torch.Generator().manual_seed(seed)
    mask = _masker(tokenizer, prob)
    out = []
    for ids, am, _ in text.batches(ds, tokenizer, batch_size, max_length):
        masked, labels = mask(ids, am, gen)
        out.append((masked, am, labels))
    return out


def head_logits(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """DistilBERT's MLM head on hidden states (..., H) -> vocab logits (..., V)
    (the same modules and order as ``DistilBertForMaskedLM.forward``)."""
    x = model.vocab_layer_norm(model.activation(model.vocab_transform(hidden)))
    return model.vocab_projector(x)


@functools.lru_cache(maxsize=2)
def eval_batches(batch_size: int = 16) -> list[Batch]:
    """The ``imdb-mlm`` evaluation batches (first :data:`EVAL_REVIEWS` IMDB test reviews, 128 tokens).

    Cached: every variant's labels, logits and triple losses read the same masked batches
    (callers must not modify them)."""
    test = text.imdb_splits()["test"]
    return masked_batches(list(test.texts[:EVAL_REVIEWS]), text.load_tokenizer(), batch_size, 128,
                          MLMRecipe().mask_prob, EVAL_SEED)


def _train_texts(recipe: MLMRecipe) -> list[str]:
    return list(text.imdb_splits()["train"].texts[:recipe.n_train])


@functools.lru_cache(maxsize=2)
def train_batches(batch_size: int = 16, max_length: int = 128) -> list[Batch]:
    """The head's :data:`MLMRecipe` training reviews masked once (BERT's 80/10/10, seed
    ``MLMRecipe().seed``): ``(masked input_ids (B, L), attention_mask (B, L), labels (B, L))``,
    labels -100 off the masked positions.  Training data of compressors on the MLM profile
    (:meth:`harness.models.tasks.MLMTask.training_context`); never the evaluation reviews
    (:func:`eval_batches`: IMDB test).  Cached (callers must not modify them)."""
    recipe = MLMRecipe()
    return masked_batches(_train_texts(recipe), text.load_tokenizer(), batch_size, max_length, recipe.mask_prob,
                          recipe.seed)


def recipe_hash(recipe: MLMRecipe, texts: list[str] | None = None) -> str:
    """16 hex digits over the recipe, the encoder weights' sha256 and the training texts."""
    texts = _train_texts(recipe) if texts is None else texts
    blob = json.dumps({"recipe": dataclasses.asdict(recipe),
                       "weights": finetune.pretrained_weights_sha256(),
                       "texts": hashlib.sha256("\n".join(texts).encode()).hexdigest()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def fit_head(model: nn.Module, texts: list[str], tokenizer: Any, recipe: MLMRecipe) -> list[float]:
    """Fit the MLM head of ``model`` in place with the encoder frozen; returns per-step losses.

    The frozen encoder runs under ``no_grad`` and the head sees only the masked
    positions, so a step costs one encoder forward.  AdamW at a constant
    ``recipe.lr`` without weight decay; dropout draws from the global RNG as the
    caller left it (not reseeded).  Leaves the model in eval mode.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    head = [model.vocab_transform.weight, model.vocab_transform.bias, model.vocab_layer_norm.weight,
            model.vocab_layer_norm.bias, model.vocab_projector.bias]
    for p in head:
        p.requires_grad_(True)

    def loss_fn(net: nn.Module, batch: Batch) -> torch.Tensor:
        ids, am, labels = batch
        with torch.no_grad():
            hidden = net.distilbert(input_ids=ids, attention_mask=am).last_hidden_state
        keep = labels != -100
        return F.cross_entropy(head_logits(net, hidden[keep]), labels[keep])

    steps = recipe.epochs * math.ceil(len(texts) / recipe.batch_size)
    config = training.TrainConfig(lr=recipe.lr, steps=steps, fork_rng=False, desc="fitting the MLM head")
    # Fresh masks every epoch: the epoch's batches are masked under seed + epoch.
    batches = (batch for epoch in range(recipe.epochs)
               for batch in masked_batches(texts, tokenizer, recipe.batch_size, recipe.max_length,
                                           recipe.mask_prob, recipe.seed + epoch))
    try:
        return training.train(model, batches, config, loss_fn)
    finally:
        for p in model.parameters():
            p.requires_grad_(True)


def baseline_checkpoint(recipe: MLMRecipe = MLMRecipe()) -> Path:
    """The folder of the fitted MLM baseline, fitting it if needed (a few minutes on
    2 cores; 356 s measured with a test run beside it).

    ``cache_dir()/checkpoints/minilm-l6-mlm-<recipe_hash>/``, checked against its
    sha256 like the fine-tuned baseline and rebuilt if corrupt.  Raises
    HarnessError (naming ``python -m harness setup``) if the assets are missing.
    """
    texts = _train_texts(recipe)
    digest = recipe_hash(recipe, texts)
    folder = finetune.checkpoint_folder(CHECKPOINT_PREFIX, digest)

    def fitted():
        print(f"[mlm] fitting the MLM head on {len(texts)} IMDB reviews (encoder frozen)", file=sys.stderr)
        model = convert.load_minilm_as_distilbert(seed=recipe.seed, model_class=MODEL_CLASS)
        tokenizer = text.load_tokenizer()
        t0 = time.perf_counter()
        losses = fit_head(model, texts, tokenizer, recipe)
        train_s = time.perf_counter() - t0
        model.eval()
        eval_loss = mlm_loss(*masked_logits(model, eval_batches()))
        meta = {"recipe": dataclasses.asdict(recipe), "recipe_hash": digest, "train_time_s": round(train_s, 2),
                "steps": len(losses), "train_loss_first": losses[0], "train_loss_last": losses[-1],
                "eval_mlm_loss": eval_loss, "torch_version": torch.__version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        return model, meta, f"[mlm] MLM baseline saved to {folder}: eval MLM loss {eval_loss:.4f}, {train_s:.0f} s"

    return finetune.cached_checkpoint(
        CHECKPOINT_PREFIX, digest, fitted, log=lambda line: print(line, file=sys.stderr),
        corrupt_note=lambda folder, problem: f"[mlm] cached MLM baseline {folder} is corrupt ({problem}); rebuilding",
    ).folder


def load_baseline() -> nn.Module:
    return finetune.load_checkpoint(baseline_checkpoint(), MODEL_CLASS)


@torch.inference_mode()
def masked_logits(model: Any, batches: list[Batch], hidden: bool = False):
    """Vocab logits at the masked positions ``(N_masked, V)`` float32 and their labels ``(N_masked,)``;
    with ``hidden=True`` also ``[(last hidden (B, L, H), attention_mask (B, L))]`` per batch.

    ``model`` is a transformers MLM model or a backend runner (inputs dict -> logits (B, L, V)).
    """
    out, gold, states = [], [], []
    for ids, am, labels in batches:
        keep = labels != -100
        if hidden:
            res = model(input_ids=ids, attention_mask=am, output_hidden_states=True)
            states.append((res.hidden_states[-1].float(), am))
            logits = res.logits
        elif isinstance(model, nn.Module):
            logits = model(input_ids=ids, attention_mask=am).logits
        else:
            logits = model({"input_ids": ids, "attention_mask": am})
        out.append(logits[keep].float())
        gold.append(labels[keep])
    if not out:
        raise ValueError("no batches to evaluate")
    result = (torch.cat(out), torch.cat(gold))
    return (*result, states) if hidden else result


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean cross-entropy (nats) of (N, V) logits against (N,) token ids: the MLM eval loss."""
    return float(F.cross_entropy(logits, labels))
