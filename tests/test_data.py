"""Data sets on the real assets (fetched by `make setup`; missing -> HarnessError, not a skip)."""
from __future__ import annotations

import pytest
import torch

from harness.core.errors import HarnessError
from harness.data import text


@pytest.fixture(scope="module")
def splits():
    return text.imdb_splits()


def test_imdb_split_sizes_and_stratification(splits):
    assert list(splits) == ["train", "validation", "test"]
    for split, n in {"train": 4000, "validation": 1000, "test": 2000}.items():
        ds = splits[split]
        assert len(ds) == n and ds.name == f"imdb-{split}"
        assert sum(ds.labels) == n // 2
        assert ds.labels[: n // 2] != tuple([ds.labels[0]] * (n // 2))  # shuffled, not sorted


def test_imdb_splits_disjoint_and_clean(splits):
    sets = {k: set(v.texts) for k, v in splits.items()}
    assert all(len(s) == len(splits[k]) for k, s in sets.items())  # no duplicate within
    assert not sets["train"] & sets["validation"]
    assert not sets["train"] & sets["test"]
    assert not sets["validation"] & sets["test"]
    for ds in splits.values():
        assert not any("<br" in t or "  " in t or t != t.strip() for t in ds.texts)


def test_imdb_splits_deterministic(splits):
    again = text.imdb_splits()
    assert again == splits
    assert {k: v.sha256() for k, v in again.items()} == {k: v.sha256() for k, v in splits.items()}
    other = text.imdb_splits(seed=7)
    assert other["train"].sha256() != splits["train"].sha256()


@pytest.mark.parametrize("kwargs", [{"n_train": 50_000}, {"n_val": 3}, {"n_test": 0}])
def test_imdb_bad_sizes(kwargs):
    with pytest.raises(HarnessError):
        text.imdb_splits(**kwargs)


def test_sha256_depends_on_content():
    a = text.TextDataset("a", ("x", "y"), (0, 1))
    assert a.sha256() == text.TextDataset("b", ("x", "y"), (0, 1)).sha256()
    assert a.sha256() != text.TextDataset("a", ("x", "y"), (1, 0)).sha256()
    assert a.sha256() != text.TextDataset("a", ("xy", ""), (0, 1)).sha256()
    with pytest.raises(ValueError):
        text.TextDataset("bad", ("x",), (2,))


def test_mr_sentences():
    mr = text.mr_sentences()
    assert mr.name == "mr" and len(mr) == 4000
    assert mr.labels.count(0) == 2000 and mr.labels.count(1) == 2000
    assert all(t and t == t.strip() for t in mr.texts)


def test_malformed_mr_csv(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text('"label","sentence"\n"1","nice ."\n"-1","bad ."\n', encoding="utf-8")
    ds = text.read_mr_csv(good, expected_per_label=1)
    assert ds.texts == ("nice .", "bad .") and ds.labels == (1, 0)

    bad_label = tmp_path / "bad_label.csv"
    bad_label.write_text('"1","nice ."\n"0","bad ."\n', encoding="utf-8")
    with pytest.raises(HarnessError, match=r"row 2 is malformed.*setup --force"):
        text.read_mr_csv(bad_label, expected_per_label=1)

    wrong_count = tmp_path / "short.csv"
    wrong_count.write_text('"1","nice ."\n"1","fine ."\n', encoding="utf-8")
    with pytest.raises(HarnessError, match=r"0 negative and 2 positive sentences, expected 1 each"):
        text.read_mr_csv(wrong_count, expected_per_label=1)


def test_encode_and_batches_pad_to_longest():
    tok = text.load_tokenizer()
    enc = text.encode(tok, ["a good film", "bad"], max_length=16)
    assert enc["input_ids"].dtype == torch.int64 and enc["attention_mask"].dtype == torch.int64
    assert enc["input_ids"].shape == enc["attention_mask"].shape == (2, 5)  # [CLS] a good film [SEP]
    assert enc["attention_mask"].tolist() == [[1] * 5, [1, 1, 1, 0, 0]]
    long = text.encode(tok, ["word " * 300], max_length=128)
    assert long["input_ids"].shape == (1, 128)

    mr = text.mr_sentences()
    shapes = []
    for ids, mask, labels in text.batches(mr, tok, batch_size=64):
        assert ids.shape == mask.shape and labels.shape == (ids.shape[0],)
        shapes.append(ids.shape)
    assert sum(s[0] for s in shapes) == 4000 and shapes[-1][0] == 4000 % 64
    assert max(s[1] for s in shapes) < 128  # short sentences are not padded to max_length
