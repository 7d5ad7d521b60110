"""Benchmark inputs: real tokenized text of an exact shape.

Latency is measured on real IMDB test reviews, not random ids: the IMDB test
split's WordPiece ids are concatenated into one stream and cut into rows of
exactly ``seq_len`` tokens ([CLS] ... [SEP]), so every row is full length and
the attention mask is all ones.  Deterministic for a given data set.
"""
from __future__ import annotations

import functools

import torch

from harness.data import text


@functools.lru_cache(maxsize=1)
def _token_stream() -> tuple[tuple[int, ...], int, int]:
    """(WordPiece ids of the first 400 IMDB test reviews, [CLS] id, [SEP] id)."""
    tok = text.load_tokenizer()
    texts = text.imdb_splits()["test"].texts[:400]
    ids: list[int] = []
    for row in tok(list(texts), add_special_tokens=False)["input_ids"]:
        ids.extend(row)
    return tuple(ids), tok.cls_token_id, tok.sep_token_id


def text_batch(batch_size: int, seq_len: int, stream: tuple[int, ...] | None = None,
               cls_id: int | None = None, sep_id: int | None = None) -> dict[str, torch.Tensor]:
    """``{"input_ids": (B, S) int64, "attention_mask": (B, S) int64}``.

    ``stream``/``cls_id``/``sep_id`` default to the IMDB test stream and the
    MiniLM tokenizer's ids.  Raises ValueError for ``seq_len < 3``,
    ``batch_size < 1`` or a stream too short for the batch.
    """
    if seq_len < 3 or batch_size < 1:
        raise ValueError(f"need seq_len >= 3 and batch_size >= 1, got {seq_len}, {batch_size}")
    if stream is None:
        stream, default_cls, default_sep = _token_stream()
        cls_id = default_cls if cls_id is None else cls_id
        sep_id = default_sep if sep_id is None else sep_id
    cls_id = 101 if cls_id is None else cls_id
    sep_id = 102 if sep_id is None else sep_id
    body = seq_len - 2
    if len(stream) < body * batch_size:
        raise ValueError(f"token stream of {len(stream)} ids is too short for {batch_size}x{seq_len}")
    rows = [[cls_id, *stream[i * body:(i + 1) * body], sep_id] for i in range(batch_size)]
    ids = torch.tensor(rows, dtype=torch.int64)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


@functools.lru_cache(maxsize=1)
def _test_reviews() -> tuple[tuple[tuple[int, ...], ...], int, int]:
    """(WordPiece ids of every IMDB test review, no special tokens; [CLS] id; [SEP] id)."""
    tok = text.load_tokenizer()
    texts = text.imdb_splits()["test"].texts
    # 510 = the longest body a 512-token row holds; truncating here keeps tokenization fast and quiet.
    ids = tok(list(texts), add_special_tokens=False, truncation=True, max_length=510)["input_ids"]
    return tuple(tuple(row) for row in ids), tok.cls_token_id, tok.sep_token_id


def text_batches(batch_size: int, seq_len: int, n: int,
                 reviews: tuple[tuple[int, ...], ...] | None = None, cls_id: int = 101, sep_id: int = 102,
                 ) -> tuple[list[dict[str, torch.Tensor]], list[list[int]]]:
    """Up to ``n`` distinct batches for timing, one IMDB test review per row.

    Each row is a test review with at least ``seq_len - 2`` tokens, truncated
    to exactly ``seq_len`` ([CLS] ... [SEP], mask all ones) -- token for token
    what the accuracy pass feeds the model for that review at ``max_length =
    seq_len``, so timed logits can be checked against it
    (:mod:`harness.measure.integrity`).  Batches use disjoint reviews; the timing loop
    cycles through them, so no two consecutive rounds see the same tensor.

    Returns ``(batches, indices)``: ``indices[k]`` are the test-set indices of
    batch ``k``'s rows.  ``reviews`` (token ids per review) defaults to the
    IMDB test split with the MiniLM tokenizer's [CLS]/[SEP].

    Raises:
        ValueError: bad sizes, or fewer than ``batch_size`` reviews long enough.
    """
    if seq_len < 3 or batch_size < 1 or n < 1:
        raise ValueError(f"need seq_len >= 3, batch_size >= 1, n >= 1, got {seq_len}, {batch_size}, {n}")
    if reviews is None:
        reviews, cls_id, sep_id = _test_reviews()
    body = seq_len - 2
    long_enough = [i for i, r in enumerate(reviews) if len(r) >= body]
    count = min(n, len(long_enough) // batch_size)
    if count < 1:
        raise ValueError(f"only {len(long_enough)} test reviews have {body}+ tokens; too few for batch {batch_size}")
    out, indices = [], []
    for k in range(count):
        ix = long_enough[k * batch_size:(k + 1) * batch_size]
        ids = torch.tensor([[cls_id, *reviews[i][:body], sep_id] for i in ix], dtype=torch.int64)
        out.append({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
        indices.append(ix)
    return out, indices
