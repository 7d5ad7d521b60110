"""Issue 18, ``task = "masked-lm"``: a user's masked language model (a folder saved from a
``…ForMaskedLM``) on a user's unlabelled texts -- the readers, the schema's refusals, the masks
the task scores on, the quick path, and the suite end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.core.errors import HarnessError
from harness.core.paths import ROOT
from harness.data import files
from harness.models import hf, project

from tiny_suite import run_tiny_suite
from test_project import WORDS, _csv, _rows, _tiny_folder, _write_project


def _mlm_folder(path: Path, family: str = "bert", head: bool = True) -> Path:
    """A tiny random masked LM (or, ``head=False``, the bare encoder) with the MiniLM tokenizer files."""
    return _tiny_folder(path, family, "mlm" if head else False)


def _corpus(path: Path, n: int = 90) -> Path:
    """One text per line (and blank lines, which are skipped)."""
    lines = [text for text, _ in _rows(n, tuple(WORDS))]
    path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    return path


def _mlm_project(tmp_path: Path, monkeypatch, folder: Path, data: str = "corpus.txt", extra: str = "") -> Path:
    config = _write_project(tmp_path, (
        f"[models.lm]\nhf_dir = '{folder}'\n{extra}"
        f"[data.corpus]\npath = '{data}'\n"
        "[profiles.lm]\nmodel = 'lm'\ntask = 'masked-lm'\neval = ['corpus']\nseq_lengths = [16]\n"
        "batch_sizes = [1, 2]\nstatic_length = 32\n"))
    monkeypatch.setenv(project.CONFIG_ENV, str(config))
    return config


def test_unlabelled_texts_read_from_a_txt_file_or_the_text_column_alone(tmp_path):
    corpus = _corpus(tmp_path / "c.txt")
    lines = [line for line in corpus.read_text().splitlines() if line]
    splits = files.load_splits("c", files.TextSource(path=corpus, label=None, where="t"))
    assert sorted(t for s in splits.values() for t in s.texts) == sorted(lines)  # every line once, blanks dropped
    assert splits["test"].label_names == (files.UNLABELLED,) and set(splits["test"].labels) == {0}
    # A CSV with no label column at all reads the same texts.
    _csv(tmp_path / "c.csv", [(t,) for t in lines], header=("text",))
    from_csv = files.load_splits("c", files.TextSource(path=tmp_path / "c.csv", label=None, where="t"))
    assert from_csv["test"].texts == splits["test"].texts
    with pytest.raises(HarnessError, match="a .txt file holds texts without labels"):
        files.load_splits("c", files.TextSource(path=corpus, where="t"))  # a classifier's source


@pytest.mark.parametrize("extra, profile, match", [
    ("fine_tune = { data = 'corpus' }\n", "", "a masked-lm profile \\(lm\\) measures the folder's own MLM head"),
    ("", "text_pair = 'b'\n", "a masked-lm profile reads single texts; drop text_pair"),
])
def test_masked_lm_profiles_refuse_what_does_not_apply(tmp_path, monkeypatch, extra, profile, match):
    config = _mlm_project(tmp_path, monkeypatch, tmp_path / "lm", extra=extra)
    config.write_text(config.read_text().replace("[data.corpus]\n", f"[data.corpus]\n{profile}"))
    with pytest.raises(HarnessError, match=match) as exc:
        project.active()
    assert "\n" not in str(exc.value)
    config.write_text("[models.c]\narchitecture = { family = 'convnext' }\n"
                      "[profiles.p]\nmodel = 'c'\ntask = 'masked-lm'\neval = ['d']\n[data.d]\npath = 'd.txt'\n")
    with pytest.raises(HarnessError, match="a masked-lm profile needs a text masked LM"):
        project.active()


def test_a_folder_that_is_not_a_whole_masked_lm_is_refused(tmp_path):
    with pytest.raises(HarnessError, match="holds BertModel, not a masked LM"):
        hf.load_masked_lm(_mlm_folder(tmp_path / "enc", head=False), "t")
    # The config says BertForMaskedLM but the weights are a bare encoder's: the head would be random.
    folder = _mlm_folder(tmp_path / "half", head=False)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "architectures": ["BertForMaskedLM"]}))
    with pytest.raises(HarnessError, match="lacks .* weight\\(s\\) of the model.*save the whole"):
        hf.load_masked_lm(folder, "t")


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_the_task_scores_fixed_masks_of_real_tokens_with_the_models_own_loss(tmp_path, monkeypatch, family):
    from harness.models import mlm
    from harness.models.profiles import get_profile

    folder = _mlm_folder(tmp_path / family, family)
    _mlm_project(tmp_path, monkeypatch, folder, _corpus(tmp_path / "corpus.txt").name)
    profile = get_profile("lm")
    model = profile.load_fp32()
    assert type(model).__name__ == f"{'Bert' if family == 'bert' else 'Roberta'}ForMaskedLM"
    task = profile.make_task()
    task.check_data()
    batches = task._batches("corpus")
    tok = task.tokenizer()
    labels = task.labels("corpus")
    real = sum(int(am.sum()) - 2 * am.shape[0] for _, am, _ in batches)  # tokens other than [CLS]/[SEP]
    assert 0.05 * real < len(labels) < 0.30 * real  # ~15% of the real tokens
    assert not set(labels.tolist()) & set(tok.all_special_ids)  # never a special token or padding
    logits = task.logits(model, "corpus")
    assert logits.shape == (len(labels), model.config.vocab_size)
    # The masked-position cross-entropy is the loss the model computes itself for these labels.
    ids, am, lab = batches[0]
    with torch.inference_mode():
        own = float(model(input_ids=ids, attention_mask=am, labels=lab).loss)
    first = int((lab != -100).sum())
    assert mlm.mlm_loss(logits[:first], labels[:first]) == pytest.approx(own, rel=1e-5)
    # The same masks for every variant and every new task; the training masks are other ones.
    assert torch.equal(profile.make_task().labels("corpus"), labels)
    train = next(iter(task.training_context().train_batches()))
    assert train[2].shape == train[0].shape and bool((train[2] != -100).any())
    pool, rows = task.timing_pool(None, 2, 16)
    assert pool[0]["input_ids"].shape == (2, 16) and rows is None


def test_the_quick_path_makes_a_masked_lm_profile_of_a_masked_lm_folder(tmp_path):
    from harness.cli import quick_config

    folder = _mlm_folder(tmp_path / "lm")
    name, text = quick_config(folder, _corpus(tmp_path / "corpus.txt"))
    parsed = project.parse(text, tmp_path / "x.toml")
    assert parsed.profiles[name].task == "masked-lm" and parsed.models[name].fine_tune is None
    assert "label =" not in text
    with pytest.raises(HarnessError, match="is a masked LM: it reads single texts"):
        quick_config(folder, tmp_path / "corpus.txt", labels="a,b")
    # A folder named like a built-in profile (a user's copy of it) gets a name of its own.
    name, text = quick_config(_mlm_folder(tmp_path / "minilm-l6-mlm"), tmp_path / "corpus.txt")
    builtin = project.parse(project.BUILTIN.read_text(), project.BUILTIN)
    assert name == "user-minilm-l6-mlm" and name in project.merge(builtin, project.parse(text, tmp_path / "x.toml")).profiles


def test_a_masked_lm_is_benchmarked_and_compressed_end_to_end(tmp_path, suite_log):
    """fp32, INT8 and gradient head pruning (trained on the masked train split) of a masked LM on a .txt
    corpus: masked-token accuracy and MLM loss scored, the ORT backend skipped with the reason, the
    report says what accuracy means for a masked LM."""
    folder = _mlm_folder(tmp_path / "lm")
    _corpus(tmp_path / "corpus.txt", 120)
    config = _write_project(tmp_path, (
        f"[models.lm]\nhf_dir = '{folder}'\n[data.corpus]\npath = 'corpus.txt'\n"
        "[profiles.lm]\nmodel = 'lm'\ntask = 'masked-lm'\neval = ['corpus']\nseq_lengths = [16]\n"
        "batch_sizes = [1]\nstatic_length = 32\n"))
    proc, out = run_tiny_suite(tmp_path, config, "lm", "fp32,int8-dynamic,heads-grad@0.25")
    log = suite_log(proc)
    assert proc.returncode == 0, log
    assert "exports text classifiers only" in proc.stdout and "measure masked-lm profiles with --backends torch" \
        in proc.stdout, log
    run = json.loads(out.read_text())
    from harness.results.rows import rows_from_results

    rows = {(r["variant"], r["backend"]): r for r in rows_from_results([b["extra_info"] for b in run["benchmarks"]])}
    assert set(rows) == {("fp32", "torch"), ("int8-dynamic", "torch"), ("heads-grad@0.25", "torch")}, log
    fp32, int8, heads = (rows[v, "torch"] for v in ("fp32", "int8-dynamic", "heads-grad@0.25"))
    assert fp32["task"] == "masked-lm" and fp32["primary_eval_set"] == "corpus"
    for r in (fp32, int8, heads):
        assert 0 <= r["accuracy"] <= 1 and r["eval_loss"] > 0 and r["p50_ms"]["16"] > 0
    assert fp32["eval_loss"] == pytest.approx(10.33, abs=0.5)  # a random head over 30,522 tokens: ~ln(30522)
    # INT8 converts every Linear, the vocabulary projection included (it unties it from the word
    # embeddings, which stay FP32: on this 32-wide model the file grows; see the closing note).
    assert int8["quantized_linear_fraction"] == 1.0 and heads["params"] < fp32["params"]
    assert 0 <= int8["agreement"] <= 1 and int8["kl_fp32"] >= 0
    triple = [b["extra_info"] for b in run["benchmarks"] if b["extra_info"].get("metric") == "triple_loss"]
    assert triple and all(t["mlm_eval_loss"] > 0 for t in triple)

    report = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "harness", "report", str(out), "--out", str(report)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "EDGEBENCH_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert "Masked LMs (lm): accuracy is masked-token top-1" in (report / "report.md").read_text()


def test_a_random_init_architecture_is_built_with_an_mlm_head_under_its_own_key(tmp_path, monkeypatch):
    from harness.models.profiles import get_profile

    _corpus(tmp_path / "corpus.txt")
    arch = "architecture = { family = 'bert', hidden_size = 32, num_hidden_layers = 1, num_attention_heads = 2, " \
           "intermediate_size = 64 }\n"
    monkeypatch.setenv(project.CONFIG_ENV, str(_write_project(tmp_path, (
        f"[models.lm]\n{arch}[models.clf]\n{arch}[data.corpus]\npath = 'corpus.txt'\n"
        "[profiles.lm]\nmodel = 'lm'\ntask = 'masked-lm'\neval = ['corpus']\n"
        "[profiles.clf]\nmodel = 'clf'\ntask = 'text'\n"))))
    lm, clf = get_profile("lm"), get_profile("clf")
    assert type(lm.load_fp32()).__name__ == "BertForMaskedLM" and not lm.real_weights
    assert type(clf.load_fp32()).__name__ == "BertForSequenceClassification"
    assert lm.source_key() != clf.source_key()  # other weights: never the classifier's cached variants
