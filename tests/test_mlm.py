"""The MLM profile's pieces (harness.models.mlm) on a tiny random DistilBertForMaskedLM."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from transformers import DistilBertConfig, DistilBertForMaskedLM

from harness.core.paths import ROOT
from harness.data import text
from harness.measure.quality import triple_loss_metrics
from harness.models import mlm
from harness.models.tasks import get_task

TEXTS = ["a truly wonderful film with a great cast", "the plot was dull and the acting worse",
         "i would watch it again", "not worth the ticket"] * 4


def _tiny() -> DistilBertForMaskedLM:
    torch.manual_seed(0)
    return DistilBertForMaskedLM(DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                                                  max_position_embeddings=512)).eval()


def test_masking_skips_special_and_padding_and_is_deterministic():
    tok = text.load_tokenizer()
    enc = text.encode(tok, TEXTS, max_length=16)
    ids, am = enc["input_ids"], enc["attention_mask"]
    special = sorted(set(tok.all_special_ids))
    masked, labels = mlm.mask_tokens(ids, am, special, tok.mask_token_id, len(tok), 0.5, torch.Generator().manual_seed(1))
    chosen = labels != -100
    assert chosen.any()
    assert not chosen[~am.bool()].any() and not torch.isin(ids[chosen], torch.tensor(special)).any()
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(masked[~chosen], ids[~chosen])  # only chosen positions change
    assert (masked[chosen] == tok.mask_token_id).float().mean() > 0.5  # 80% [MASK]
    again, labels2 = mlm.mask_tokens(ids, am, special, tok.mask_token_id, len(tok), 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(again, masked) and torch.equal(labels2, labels)


def test_head_logits_match_the_model_forward():
    model = _tiny()
    ids = torch.tensor([[101, 2023, 103, 2307, 102]])
    hidden = model.distilbert(input_ids=ids).last_hidden_state
    torch.testing.assert_close(mlm.head_logits(model, hidden), model(input_ids=ids).logits)


def test_fit_head_trains_only_the_head_and_lowers_the_loss():
    model = _tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = mlm.MLMRecipe(n_train=len(TEXTS), max_length=16, epochs=8, batch_size=8, lr=1e-2, mask_prob=0.3)
    losses = mlm.fit_head(model, TEXTS, text.load_tokenizer(), recipe)
    after = model.state_dict()
    head = ("vocab_transform.", "vocab_layer_norm.", "vocab_projector.bias")
    for k in before:
        changed = not torch.equal(before[k], after[k])
        assert changed == k.startswith(head), k  # encoder, embeddings and the tied projector stay frozen
    assert model.vocab_projector.weight is model.distilbert.embeddings.word_embeddings.weight
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4


def test_masked_logits_and_the_mlm_eval_loss():
    model = _tiny()
    batches = mlm.masked_batches(TEXTS, text.load_tokenizer(), 8, 16, 0.3, seed=3)
    logits, labels, hidden = mlm.masked_logits(model, batches, hidden=True)
    n = sum(int((b[2] != -100).sum()) for b in batches)
    assert logits.shape == (n, 30522) and labels.shape == (n,) and len(hidden) == len(batches)
    plain, labels2 = mlm.masked_logits(model, batches)
    torch.testing.assert_close(plain, logits)
    metrics = triple_loss_metrics(logits, hidden, logits, hidden, mlm_labels=labels)
    assert metrics["mlm_eval_loss"] == pytest.approx(mlm.mlm_loss(logits, labels))
    assert metrics["mlm_eval_loss"] > 5  # random weights over a 30,522-token vocabulary: about ln(30522) = 10.3
    assert metrics["distill_eval_loss"] == pytest.approx(0.0, abs=1e-6) and metrics["cosine_eval_loss"] < 1e-6
    assert triple_loss_metrics(logits, hidden, logits, hidden)["mlm_eval_loss"] is None  # a classifier has none


def test_mlm_task_scores_masked_positions():
    task = get_task("mlm")
    assert task.eval_sets == ("imdb-mlm",) and task.triple_loss
    with pytest.raises(ValueError, match="unknown evaluation set 'mr' for task mlm"):
        task.labels("mr")


@pytest.mark.parametrize("field, value", [("n_train", 0), ("mask_prob", 1.0), ("lr", 0.0), ("epochs", True)])
def test_bad_recipe(field, value):
    with pytest.raises(ValueError, match=f"MLMRecipe.{field}"):
        mlm.MLMRecipe(**{field: value})


def _collect(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "suites/", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "--backends", "torch", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_profile_qualified_variants_select_one_profile(suite_log):
    proc = _collect("--profiles", "tiny-random,tiny-convnext", "--variants", "fp32,tiny-random/int8-dynamic",
                    "-k", "test_static")
    assert proc.returncode == 0, suite_log(proc)
    ids = [line for line in proc.stdout.splitlines() if "test_static" in line]
    assert any("tiny-random" in i and "int8-dynamic" in i for i in ids)
    assert not any("tiny-convnext" in i and "int8-dynamic" in i for i in ids)
    assert sum("fp32" in i for i in ids) == 2
    bad = _collect("--profiles", "tiny-random", "--variants", "fp32,tiny-convnext/int8-dynamic")
    assert bad.returncode == 4
    assert "names profile 'tiny-convnext', which is not in --profiles" in bad.stdout + bad.stderr


def test_a_saved_mlm_variant_reloads_with_its_projector_tied(tmp_path):
    """no_init_weights skips tying; load_variant must re-tie before loading the once-stored tensor."""
    from harness.backends.variants import load_variant, save_variant

    model = _tiny()
    save_variant(model, tmp_path / "v", profile="tiny", variant="fp32", source_key="x")
    loaded, _ = load_variant(tmp_path / "v")
    assert loaded.vocab_projector.weight is loaded.distilbert.embeddings.word_embeddings.weight
    ids = torch.tensor([[101, 2023, 103, 2307, 102]])
    torch.testing.assert_close(loaded(input_ids=ids).logits, model(input_ids=ids).logits)


def test_the_mlm_task_trains_compressors_on_masked_training_reviews():
    """Issue 21: data-dependent compressors on the MLM profile get MLM batches (labels (B, L), -100 off
    the masked tokens, from the IMDB *train* reviews), so heads-grad scores and recovery fine-tunes on the
    MLM loss instead of failing on classification labels."""
    import compressors
    from compressors import CompressionContext

    context = get_task("mlm").training_context()
    batches = context.train_batches()
    ids, mask, labels = batches[0]
    assert labels.shape == ids.shape == mask.shape and ((labels == -100) | (mask == 1)).all()
    assert 0.05 < (labels != -100).float().mean().item() < 0.25  # ~15% of the real tokens
    train = text.imdb_splits()["train"].texts[:len(batches) * 16]
    tok = text.load_tokenizer()
    assert (labels[0][labels[0] != -100] == tok(train[0], truncation=True, max_length=128,
                                                return_tensors="pt")["input_ids"][0][labels[0] != -100]).all()

    few = CompressionContext(lambda: batches[:4], seed=0)
    model = _tiny()
    pruned = compressors.build("heads-grad@0.25", model, context=few)
    assert sum(len(k) for k in compressors.get("heads-grad").resolved_config(
        pruned, compressors.make_config("heads-grad@0.25")).kept_heads) == 6  # 8 heads, 2 removed
    before = [p.detach().clone() for p in model.parameters()]
    recovered = compressors.build("magnitude-global@0.5:recovery_epochs=1", model, context=few)
    assert any(not torch.equal(a, b) for a, b in zip(before, recovered.parameters()))  # it trained
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # on a copy
