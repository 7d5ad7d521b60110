"""EdgeMIN (edgemin-s1..s3) and prune+KD+INT8 (pkd-s1..s3) on tiny random models."""
from __future__ import annotations

import pytest
import torch
import torch.ao.nn.quantized.dynamic as nnqd

import compressors
from compressors import CompressionError, edgemin, pkd
from harness.backends import variants

EDGEMIN_TINY = {"kd_steps": 6, "relation_heads": 4, "prune_ratio": 0.25}


def _tiny(seed: int, layers: int = 2):
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    torch.manual_seed(seed)
    cfg = DistilBertConfig(vocab_size=30522, dim=32, n_layers=layers, n_heads=4, hidden_dim=64, num_labels=2)
    return DistilBertForSequenceClassification(cfg).eval()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path))
    return tmp_path


@pytest.fixture
def tiny_student(monkeypatch):
    """A 1-layer dim-32 student instead of the real MiniLM-L3 (same code path otherwise)."""
    monkeypatch.setattr(edgemin, "_load_student", lambda context: _tiny(context.seed + 100, layers=1))


def test_edgemin_without_a_student_names_the_context_field(cache, tiny_model, tiny_context):
    with pytest.raises(CompressionError, match="load_student"):
        compressors.build("edgemin-s1", tiny_model, tiny_context, **EDGEMIN_TINY)


def test_edgemin_stages(cache, tiny_student, tiny_model, tiny_context, one_thread):
    s1 = compressors.build("edgemin-s1", tiny_model, tiny_context, **EDGEMIN_TINY)
    assert s1.config.n_layers == 1 and s1.edgebench_stages["s1"]["kd_loss_first"] > 0
    s2 = compressors.build("edgemin-s2", tiny_model, tiny_context, **EDGEMIN_TINY)
    attn = s2.distilbert.transformer.layer[0].attention
    assert attn.n_heads == 3 and attn.q_lin.weight.shape == (24, 32)  # 1 of 4 heads removed physically
    s3 = compressors.build("edgemin-s3", tiny_model, tiny_context, **EDGEMIN_TINY)
    assert isinstance(s3.distilbert.transformer.layer[0].ffn.lin1, nnqd.Linear)
    assert s3.distilbert.transformer.layer[0].attention.n_heads == 3
    # the teacher is untouched: build works on a copy
    assert tiny_model.distilbert.transformer.layer[0].attention.q_lin.weight.shape == (32, 32)
    facts = compressors.get("edgemin-s3").describe(s3, compressors.make_config("edgemin-s3", **EDGEMIN_TINY))
    assert facts["heads_kept"] == 3 and facts["s1.kd_train_s"] >= 0 and facts["s2.train_s"] >= 0


def test_edgemin_stages_are_cached_by_recipe(cache, tiny_student, tiny_model, tiny_context, one_thread, monkeypatch):
    s1 = compressors.build("edgemin-s1", tiny_model, tiny_context, **EDGEMIN_TINY)

    def no_training(*args, **kwargs):
        raise AssertionError("stage 1 retrained although it is cached")

    monkeypatch.setattr(edgemin, "relation_distill", no_training)
    s2 = compressors.build("edgemin-s2", tiny_model, tiny_context, **EDGEMIN_TINY)  # reuses stage 1
    again = compressors.build("edgemin-s1", tiny_model, tiny_context, **EDGEMIN_TINY)
    ids = torch.randint(1000, 5000, (2, 10))
    with torch.no_grad():
        assert torch.equal(s1(input_ids=ids).logits, again(input_ids=ids).logits)
    assert s2.distilbert.transformer.layer[0].attention.n_heads == 3
    with pytest.raises(AssertionError, match="retrained"):  # a different recipe is a different stage
        compressors.build("edgemin-s1", tiny_model, tiny_context, **{**EDGEMIN_TINY, "kd_lr": 1e-4})


def test_edgemin_saved_variant_round_trip(cache, tiny_student, tiny_model, tiny_context, one_thread):
    model = compressors.build("edgemin-s3", tiny_model, tiny_context, **EDGEMIN_TINY)
    from harness.backends.variants import load_variant, save_variant

    save_variant(model, cache / "v", profile="tiny", variant="edgemin-s3", source_key="k")
    loaded, info = load_variant(cache / "v")
    assert info.config["kept_heads"] == [list(model.distilbert.transformer.layer[0].attention.kept_heads)]
    assert loaded.distilbert.transformer.layer[0].attention.n_heads == 3
    ids = torch.randint(1000, 5000, (2, 10))
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, loaded(input_ids=ids).logits, atol=1e-6)


def test_edgemin_bad_input(cache, tiny_student, tiny_model, tiny_context, one_thread):
    with pytest.raises(CompressionError, match=r"unknown teacher layer 5; the teacher has 2 layers"):
        compressors.build("edgemin-s1", tiny_model, tiny_context, **{**EDGEMIN_TINY, "teacher_layer": 5})
    with pytest.raises(CompressionError, match=r"does not divide the teacher hidden size 32 \(teacher 32, student 32\)"):
        compressors.build("edgemin-s1", tiny_model, tiny_context, **{**EDGEMIN_TINY, "relation_heads": 12})
    with pytest.raises(CompressionError, match="needs training data"):
        compressors.build("edgemin-s1", tiny_model)
    with pytest.raises(CompressionError, match="the '@' arguments are 'full' .* and 'quick'"):
        compressors.make_config("edgemin-s2@fast")
    # study 000's recipe is the default; @quick is the CPU-budget one
    assert compressors.make_config("edgemin-s2@full") == compressors.make_config("edgemin-s2")
    quick = compressors.make_config("edgemin-s2@quick")
    assert (quick.prune_epochs, quick.max_length, quick.train_batches, quick.kd_steps) == (1, 64, 125, 250)


def test_missing_student_package_is_a_clear_error(cache, tiny_model, tiny_context):
    import dataclasses

    from harness.core.errors import HarnessError
    from harness.models.tasks import TextTask

    # the text task's student loader (the real one) on an empty cache
    context = dataclasses.replace(tiny_context, load_student=TextTask().training_context().load_student)
    with pytest.raises(HarnessError, match=r"model files for 'minilm-l3' are missing.*harness setup"):
        compressors.build("edgemin-s1", tiny_model, context, **EDGEMIN_TINY)


def _ffn_zeros(model) -> list[torch.Tensor]:
    return [m.weight.detach() == 0 for _, m in pkd.linear_targets(model, "test", ("ffn",), True)]


def test_pkd_stages_keep_pruned_weights_at_zero(cache, tiny_model, tiny_context, one_thread):
    opts = {"head_ratio": 0.5, "lr": 1e-2}  # a large lr: without the masks, pruned weights would regrow
    s1 = compressors.build("pkd-s1", tiny_model, tiny_context, **opts)
    before = _ffn_zeros(s1)
    assert all(abs(z.float().mean().item() - 0.6) < 0.01 for z in before)  # 60% per Linear
    assert sum(b.attention.n_heads for b in s1.distilbert.transformer.layer) == 4
    s2 = compressors.build("pkd-s2", tiny_model, tiny_context, **opts)
    for z, (_, m) in zip(before, pkd.linear_targets(s2, "test", ("ffn",), True)):
        assert m.weight.detach()[z].abs().max().item() == 0.0  # no pruned weight came back
    trained = [m.weight.detach() for _, m in pkd.linear_targets(s2, "test", ("ffn",), True)]
    kept = [m.weight.detach() for _, m in pkd.linear_targets(s1, "test", ("ffn",), True)]
    assert any(not torch.equal(a, b) for a, b in zip(trained, kept))  # recovery did train
    assert s2.edgebench_stages["s2"]["pruned_nonzero_after"] == 0
    s3 = compressors.build("pkd-s3", tiny_model, tiny_context, **opts)
    assert isinstance(s3.classifier, nnqd.Linear)


def test_pkd_without_masks_would_regrow(tiny_model, tiny_context, one_thread, monkeypatch):
    """The control for the test above: the same recovery with no masks re-applied moves pruned weights."""
    config = compressors.make_config("pkd-s2", head_ratio=0.5, lr=1e-2)
    student = pkd.prune_one_shot(_tiny(0), config, tiny_context)
    zeros = _ffn_zeros(student)
    monkeypatch.setattr(pkd, "pruned_masks", lambda model: [])
    from compressors._train import load_batches

    pkd.kd_recover(student, _tiny(0), load_batches(tiny_context, "pkd-s2"), config, seed=0)
    regrown = sum(int(m.weight.detach()[z].count_nonzero())
                  for z, (_, m) in zip(zeros, pkd.linear_targets(student, "t", ("ffn",), True)))
    assert regrown > 0


@pytest.mark.parametrize("opts, match", [
    ({"temperature": 0}, "temperature = 0 must be a number > 0"),
    ({"alpha": 1.2}, r"alpha = 1.2 must be in \[0, 1\]"),
    ({"sparsity": 1.0}, r"sparsity = 1.0 is outside \[0, 1\)"),
])
def test_pkd_bad_config(opts, match):
    with pytest.raises(CompressionError, match=match):
        compressors.make_config("pkd-s2", **opts)


def test_pkd_variant_cache_round_trip(cache, tiny_model, tiny_context, one_thread):
    out = variants.get_or_build("tiny", "pkd-s3", "key", lambda: _tiny(0), root=cache / "variants",
                                context=tiny_context)
    model, info = variants.load_variant(out)
    assert info.facts["pipeline"] == "pkd" and info.facts["s2.pruned_nonzero_after"] == 0
    assert isinstance(model.classifier, nnqd.Linear)
    assert [len(k) for k in info.config["kept_heads"]] == [b.attention.n_heads for b in model.distilbert.transformer.layer]


def test_truncated_training_rows_keep_their_closing_sep():
    """Issue 21: cutting at 64 tokens must not drop [SEP], which every evaluation row has."""
    from compressors._stages import truncate

    ids = torch.tensor([[101, 5, 6, 7, 8, 102, 0], [101, 9, 102, 0, 0, 0, 0], [101, 5, 6, 102, 0, 0, 0]])
    mask = (ids != 0).long()
    (cut, cut_mask, labels), = truncate([(ids, mask, torch.tensor([0, 1, 0]))], 4)
    assert cut.tolist() == [[101, 5, 6, 102], [101, 9, 102, 0], [101, 5, 6, 102]]
    assert cut_mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1]] and labels.tolist() == [0, 1, 0]
    assert ids[0, 3] == 7  # the input batch is not modified
