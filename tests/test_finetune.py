"""Fine-tune loop and checkpoint cache on a tiny DistilBERT and synthetic data (fast)."""
from __future__ import annotations

import json
import random

import pytest
import torch
import transformers

from harness.core.errors import HarnessError
from harness.data.text import TextDataset
from harness.models import finetune

WORDS = ["good", "great", "fine", "bad", "awful", "poor", "the", "movie", "plot", "was"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
RECIPE = finetune.FinetuneRecipe(lr=3e-3, epochs=8, batch_size=8, max_length=16, warmup_ratio=0.1,
                                 n_train=64, n_val=32, n_test=32)


def _synthetic(name: str, n: int, seed: int) -> TextDataset:
    """Sentences whose label is whether a positive or a negative word occurs."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        sentiment = rng.choice(WORDS[:3] if label else WORDS[3:6])
        filler = [rng.choice(WORDS[6:]) for _ in range(rng.randint(1, 6))]
        filler.insert(rng.randint(0, len(filler)), sentiment)
        texts.append(" ".join(filler))
        labels.append(label)
    return TextDataset(name, tuple(texts), tuple(labels))


def _tokenizer():
    return transformers.BertTokenizer(vocab={w: i for i, w in enumerate(VOCAB)})


def _tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    config = transformers.DistilBertConfig(vocab_size=len(VOCAB), dim=32, n_layers=2, n_heads=4,
                                           hidden_dim=64, max_position_embeddings=32, num_labels=2)
    return transformers.DistilBertForSequenceClassification(config).eval()


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """Route baseline_checkpoint to tiny inputs in a tmp cache; count model builds."""
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path))
    builds = []
    splits = {"train": _synthetic("train", 64, 1), "validation": _synthetic("validation", 32, 2),
              "test": _synthetic("test", 32, 3)}
    monkeypatch.setattr(finetune, "_splits", lambda recipe: splits)
    monkeypatch.setattr(finetune, "_tokenizer", _tokenizer)
    monkeypatch.setattr(finetune, "_initial_model",
                        lambda recipe: builds.append(recipe) or _tiny_model(recipe.seed))
    monkeypatch.setattr(finetune, "pretrained_weights_sha256", lambda: "0" * 64)
    return builds


def test_training_reduces_loss():
    model = _tiny_model()
    losses = finetune.train(model, _synthetic("train", 64, 1), _tokenizer(), RECIPE, progress=False)
    steps = RECIPE.epochs * 64 // RECIPE.batch_size
    assert len(losses) == steps and not model.training
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < 0.7 * first, (first, last)
    assert finetune.accuracy(model, _synthetic("validation", 32, 2), _tokenizer()) >= 0.75


def test_training_is_deterministic():
    a = finetune.train(_tiny_model(), _synthetic("t", 32, 1), _tokenizer(), RECIPE, progress=False)
    b = finetune.train(_tiny_model(), _synthetic("t", 32, 1), _tokenizer(), RECIPE, progress=False)
    assert a == b


def test_checkpoint_cached_then_reused(tiny, tmp_path, capsys):
    folder = finetune.baseline_checkpoint(RECIPE, progress=False)
    assert folder.parent == tmp_path / "checkpoints"
    assert folder.name.startswith(finetune.CHECKPOINT_PREFIX)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "meta.json", "model.safetensors"]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["recipe"] == RECIPE.to_dict()
    assert meta["recipe_hash"] == folder.name.removeprefix(finetune.CHECKPOINT_PREFIX)
    assert 0 <= meta["val_accuracy"] <= 1 and meta["train_time_s"] >= 0
    assert meta["torch_version"] == torch.__version__
    assert len(tiny) == 1

    assert finetune.baseline_checkpoint(RECIPE, progress=False) == folder
    assert len(tiny) == 1  # reused, not retrained
    assert "using cached fine-tuned baseline" in capsys.readouterr().err

    model = finetune.load_checkpoint(folder)
    assert not model.training
    ref = _tiny_model(RECIPE.seed)
    finetune.train(ref, _synthetic("train", 64, 1), _tokenizer(), RECIPE, progress=False)
    for k, v in ref.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k

    other = finetune.baseline_checkpoint(finetune.FinetuneRecipe(**{**RECIPE.to_dict(), "seed": 1}),
                                         progress=False)
    assert other != folder and len(tiny) == 2  # a different recipe gets its own folder


def _flip_bytes(path, offset: int = -100, n: int = 8) -> None:
    data = bytearray(path.read_bytes())
    for i in range(n):
        data[offset + i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_checkpoint_is_rebuilt(tiny, capsys):
    folder = finetune.baseline_checkpoint(RECIPE, progress=False)
    _flip_bytes(folder / "model.safetensors")
    with pytest.raises(HarnessError, match=r"is corrupt: model.safetensors has sha256 .*setup --force"):
        finetune.load_checkpoint(folder)

    assert finetune.baseline_checkpoint(RECIPE, progress=False) == folder
    assert len(tiny) == 2
    assert "is corrupt" in capsys.readouterr().err
    finetune.load_checkpoint(folder)  # the rebuilt one loads

    (folder / "meta.json").write_text("{not json")
    assert finetune.baseline_checkpoint(RECIPE, progress=False) == folder
    assert len(tiny) == 3


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(HarnessError, match="no fine-tuned checkpoint"):
        finetune.load_checkpoint(tmp_path / "absent")
    folder = finetune.save_checkpoint(_tiny_model(), tmp_path / "ck", {"recipe_hash": "x"})
    finetune.load_checkpoint(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "dim": 16, "hidden_dim": 32}))
    with pytest.raises(HarnessError, match="does not fit config.json"):
        finetune.load_checkpoint(folder)


def test_tied_weights_round_trip(tmp_path):
    """A tied MLM projector is stored once and is the word embeddings again after loading."""
    from transformers import DistilBertConfig, DistilBertForMaskedLM

    torch.manual_seed(0)
    model = DistilBertForMaskedLM(DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2,
                                                   hidden_dim=32, max_position_embeddings=32)).eval()
    folder = finetune.save_checkpoint(model, tmp_path / "ck", {"recipe_hash": "x"})
    loaded = finetune.load_checkpoint(folder, "DistilBertForMaskedLM")
    assert loaded.vocab_projector.weight is loaded.distilbert.embeddings.word_embeddings.weight
    ids = torch.tensor([[1, 5, 7, 2]])
    torch.testing.assert_close(loaded(input_ids=ids).logits, model(input_ids=ids).logits)


@pytest.mark.parametrize("field, value", [
    ("lr", 0.0), ("lr", float("nan")), ("epochs", 0), ("epochs", 1.5), ("batch_size", 0),
    ("max_length", 4), ("max_length", 1024), ("warmup_ratio", 1.0), ("weight_decay", -0.1),
    ("seed", -1), ("n_train", 3), ("n_val", 0), ("version", 0), ("batch_size", True),
])
def test_bad_recipe_values(field, value):
    with pytest.raises(ValueError, match=f"FinetuneRecipe.{field}"):
        finetune.FinetuneRecipe(**{field: value})


def test_recipe_hash_changes_with_recipe(tiny):
    a = finetune.recipe_hash(RECIPE)
    assert a == finetune.recipe_hash(finetune.FinetuneRecipe(**RECIPE.to_dict()))
    assert a != finetune.recipe_hash(finetune.FinetuneRecipe(**{**RECIPE.to_dict(), "lr": 1e-3}))
    assert len(a) == 16 and int(a, 16) >= 0
