"""A user's Hugging Face model folder as the FP32 baseline (issue 18), loaded offline.

:func:`load_classifier` reads ``config.json`` + ``model.safetensors`` (or ``pytorch_model.bin``,
which transformers reads with ``torch.load(weights_only=True)``) with
``AutoModelForSequenceClassification`` and ``local_files_only=True``: never a hub call.  A folder
holding an encoder without a classification head (a ``BertModel`` such as a sentence-transformers
folder) gets a freshly initialised head under ``torch.manual_seed(seed)``; its profile must then
name ``fine_tune`` (a random head measures nothing).  :func:`finetuned` fine-tunes it with the
project's one training loop (:mod:`harness.core.train`, as the built-in baseline) and caches the
checkpoint by a hash of the weights, the recipe and the training data.  Image models (ConvNeXt,
ViT) load with ``AutoModelForImageClassification`` the same way (``kind="image"``), and a masked
language model (a folder saved from a ``…ForMaskedLM``) with ``AutoModelForMaskedLM``
(:func:`load_masked_lm`).
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from harness.core.atomic import sha256_file
from harness.core.errors import HarnessError, first_line
from harness.data.text import TextDataset

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TEXT_FAMILIES = ("bert", "distilbert", "roberta", "xlm-roberta")
IMAGE_FAMILIES = ("convnext", "vit")
# kind -> (families, the head's architecture suffix, the transformers auto class)
KINDS = {"text": (TEXT_FAMILIES, "ForSequenceClassification", "AutoModelForSequenceClassification"),
         "image": (IMAGE_FAMILIES, "ForImageClassification", "AutoModelForImageClassification"),
         "masked-lm": (TEXT_FAMILIES, "ForMaskedLM", "AutoModelForMaskedLM")}
_GENERIC_LABEL = re.compile(r"^LABEL_\d+$")


def check_folder(folder: Path, where: str, kind: str = "text") -> dict[str, Any]:
    """``config.json`` of a model folder with weights, as a dict.

    Raises:
        HarnessError: no folder, no or unreadable config.json, no weights file, a family the
            text compressors do not know.
    """
    if not folder.is_dir():
        raise HarnessError(f"{where}: model folder {folder} does not exist; fix hf_dir")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise HarnessError(f"{where}: {folder}/config.json is missing or not JSON ({e}); save the model with "
                           f"save_pretrained") from None
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        raise HarnessError(f"{where}: {folder} has no weights ({' or '.join(WEIGHT_FILES)}); save the model with "
                           f"save_pretrained")
    families = KINDS[kind][0]
    if config.get("model_type") not in families:
        raise HarnessError(f"{where}: model_type {config.get('model_type')!r} in {folder}/config.json is not a "
                           f"supported {kind} family ({', '.join(families)})")
    return config


def weights_sha256(folder: Path) -> str:
    """sha256 over config.json and the weights file: what identifies the baseline."""
    h = hashlib.sha256()
    for name in ("config.json", *WEIGHT_FILES):
        if (folder / name).is_file():
            h.update(name.encode())
            h.update(sha256_file(folder / name).encode())
    return h.hexdigest()


def named_labels(config: dict[str, Any]) -> tuple[str, ...] | None:
    """The model's own label names (``id2label`` in id order), or None when it has none or only
    transformers' placeholders ``LABEL_0``, ``LABEL_1``, …"""
    id2label = config.get("id2label") or {}
    names = tuple(id2label[k] for k in sorted(id2label, key=int))
    return None if not names or all(_GENERIC_LABEL.match(n) for n in names) else names


def load_tokenizer(folder: Path, where: str) -> Any:
    """The tokenizer saved in ``folder`` (``tokenizer.json`` or vocab files), offline."""
    import transformers

    try:
        return transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HarnessError(f"{where}: no tokenizer in {folder} ({first}); add the tokenizer files or set "
                           f"tokenizer = \"<folder>\"") from None


def load_classifier(folder: Path, label_names: tuple[str, ...], where: str, seed: int = 42,
                    need_head: bool = True, kind: str = "text") -> tuple[nn.Module, bool]:
    """``(model in eval mode, head_is_new)``: the folder's sequence (``kind="text"``) or image
    (``"image"``) classifier for ``label_names``.

    ``head_is_new`` is True when the folder had no classification head (one was initialised
    under ``torch.manual_seed(seed)``).

    Raises:
        HarnessError: see :func:`check_folder`; the model's labels differ from the data's
            (count, or names when the model names them); ``need_head`` and no head in the folder.
    """
    import transformers

    config = check_folder(folder, where, kind)
    _, suffix, auto = KINDS[kind]
    own = named_labels(config)
    head_in_folder = any(a.endswith(suffix) for a in config.get("architectures") or [])
    if head_in_folder:
        n = len(config.get("id2label") or {}) or int(config.get("num_labels", 2))
        if n != len(label_names):
            raise HarnessError(f"{where}: the model in {folder} has {n} labels but the data have {len(label_names)} "
                               f"({', '.join(label_names)}); fix labels = [...] or fine-tune a new head")
        # Case alone is no mismatch ("POSITIVE" vs "positive"); order and names are.
        if own is not None and tuple(n.lower() for n in own) != tuple(n.lower() for n in label_names):
            raise HarnessError(f"{where}: the model's labels {list(own)} (config.json id2label) differ from the "
                               f"data's {list(label_names)}; set labels = {list(own)} in the [data] table")
    elif need_head:
        raise HarnessError(f"{where}: {folder} holds an encoder without a classification head "
                           f"({', '.join(config.get('architectures') or ['?'])}); add fine_tune = {{ data = \"…\" }}")
    torch.manual_seed(seed)
    id2label = dict(enumerate(label_names))
    try:
        model, info = getattr(transformers, auto).from_pretrained(
            str(folder), local_files_only=True, num_labels=len(label_names), id2label=id2label,
            label2id={v: k for k, v in id2label.items()}, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HarnessError(f"{where}: {folder} cannot be loaded as a {kind} classifier ({first})") from None
    return model.eval(), not head_in_folder or bool(info.get("missing_keys"))


def load_masked_lm(folder: Path, where: str) -> nn.Module:
    """The folder's masked language model (``BertForMaskedLM``, ``DistilBertForMaskedLM``,
    ``RobertaForMaskedLM``, …) in eval mode: logits (B, L, vocab) for ``input_ids`` /
    ``attention_mask`` (B, L).

    Raises:
        HarnessError: see :func:`check_folder`; the folder holds another head (an encoder or a
            classifier: no MLM head to score); the weights lack part of the MLM head.
    """
    import transformers

    config = check_folder(folder, where, "masked-lm")
    architectures = config.get("architectures") or []
    if not any(a.endswith("ForMaskedLM") for a in architectures):
        raise HarnessError(f"{where}: {folder} holds {', '.join(architectures) or 'a model without architectures'}, "
                           f"not a masked LM; save a …ForMaskedLM model there, or use task = \"text-classification\"")
    try:
        model, info = transformers.AutoModelForMaskedLM.from_pretrained(str(folder), local_files_only=True,
                                                                        output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as e:
        raise HarnessError(f"{where}: {folder} cannot be loaded as a masked LM ({first_line(e)})") from None
    # Tied output embeddings are not stored, so they are never "missing"; anything else missing
    # would be scored as a random head.
    if info.get("missing_keys"):
        raise HarnessError(f"{where}: {folder} lacks {len(info['missing_keys'])} weight(s) of the model "
                           f"(first: {sorted(info['missing_keys'])[0]}); save the whole …ForMaskedLM with save_pretrained")
    return model.eval()


def recipe_hash(folder: Path, recipe: dict[str, Any], train: TextDataset, validation: TextDataset) -> str:
    """16 hex chars over the weights, the recipe and the training/validation data (and label names)."""
    payload = {"weights": weights_sha256(folder), "recipe": recipe, "train": train.sha256(),
               "validation": validation.sha256(), "labels": list(train.label_names)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def finetuned(name: str, folder: Path, splits: dict[str, Any], recipe: Any, where: str,
              fit: Callable[[nn.Module], tuple[list[float], float | None]], kind: str = "text") -> Path:
    """The checkpoint folder of ``folder``'s model fine-tuned on ``splits["train"]`` with ``recipe``
    (a :class:`harness.models.finetune.FinetuneRecipe`), trained only if not cached.

    ``fit(model)`` trains the model in place and returns ``(loss of every step, validation accuracy
    or None)``; the checkpoint is keyed by the weights, the recipe and the train/validation data.

    Raises:
        HarnessError: an empty training split, or see :func:`load_classifier`.
    """
    from harness.models import finetune

    train_set, val_set = splits["train"], splits["validation"]
    if len(train_set) == 0:
        raise HarnessError(f"{where}: fine_tune needs training examples but the train split is empty; "
                           f"give files.train or a split with test + validation < 1")
    digest = recipe_hash(folder, recipe.to_dict(), train_set, val_set)
    prefix = f"user-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}-"

    def train() -> tuple[nn.Module, dict[str, Any], str]:
        model, _ = load_classifier(folder, train_set.label_names, where, seed=recipe.seed, need_head=False, kind=kind)
        finetune._log(f"fine-tuning {name} ({len(train_set)} examples of {train_set.name}, {recipe.epochs} "
                      f"epoch(s), batch {recipe.batch_size})")
        t0 = time.perf_counter()
        losses, val_acc = fit(model)
        train_s = time.perf_counter() - t0
        meta = {"recipe": recipe.to_dict(), "recipe_hash": digest, "source": str(folder),
                "model_class": type(model).__name__, "val_accuracy": val_acc, "n_validation": len(val_set),
                "train_time_s": round(train_s, 2), "steps": len(losses),
                "train_loss_first": losses[0] if losses else None, "torch_version": torch.__version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        shown = "n/a (no validation split)" if val_acc is None else f"{val_acc:.4f}"
        return model.eval(), meta, f"fine-tuned {name} saved: val acc {shown}, training {train_s:.0f} s"

    entry = finetune.cached_checkpoint(
        prefix, digest, train,
        corrupt_note=lambda f, problem: f"cached fine-tuned {name} {f} is corrupt ({problem}); rebuilding")
    if entry.cached:
        finetune._log(f"using cached fine-tuned {name} {entry.folder}")
    return entry.folder
