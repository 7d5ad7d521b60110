"""Issue 18: a user's own model folder and labelled data through a project file -- the schema,
the data readers and their errors, the Hugging Face loader, the user task and the quick path."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from harness.core.errors import HarnessError
from harness.data import files
from harness.models import hf, project

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
WORDS = {"pos": "good great fine lovely superb".split(), "neg": "bad awful poor dull terrible".split(),
         "meh": "okay average plain middling so".split(), "odd": "strange weird curious odd rare".split()}


def _minilm_dir() -> Path:
    from harness.data import assets

    return assets.asset_dir("minilm-l6")


def _tiny_folder(path: Path, family: str = "bert", head: bool | str = False, num_labels: int = 3) -> Path:
    """A tiny random BERT or RoBERTa saved with save_pretrained, with the MiniLM tokenizer files:
    the bare encoder (``head=False``), a sequence classifier (``True``) or a masked LM (``"mlm"``)."""
    import transformers

    kw = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    prefix = "Roberta" if family == "roberta" else "Bert"
    if family == "roberta":
        config = transformers.RobertaConfig(**kw, pad_token_id=0, max_position_embeddings=514)
    else:
        config = transformers.BertConfig(**kw)
    suffix = {False: "Model", True: "ForSequenceClassification", "mlm": "ForMaskedLM"}[head]
    if head is True:
        config.num_labels = num_labels
    torch.manual_seed(0)
    getattr(transformers, prefix + suffix)(config).save_pretrained(path)
    for f in TOKENIZER_FILES:
        shutil.copy(_minilm_dir() / f, path / f)
    return path


def _rows(n: int, classes: tuple[str, ...], seed: int = 0) -> list[tuple[str, str]]:
    import random

    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = classes[i % len(classes)]
        out.append((" ".join(rng.choice(WORDS[label]) for _ in range(rng.randint(4, 30))) + f" n{i}", label))
    return out


def _csv(path: Path, rows, header=("text", "label"), delimiter=",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


def _file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _source(path: Path, **kw) -> files.TextSource:
    return files.TextSource(path=path, where="test [data.d]", **kw)


# ---------------------------------------------------------------------------- data files


def test_csv_tsv_jsonl_and_class_folder_give_the_same_examples(tmp_path):
    rows = _rows(40, ("neg", "pos"))
    a = files.load_splits("d", _source(_csv(tmp_path / "d.csv", rows)))
    b = files.load_splits("d", _source(_csv(tmp_path / "d.tsv", rows, delimiter="\t")))
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
    c = files.load_splits("d", _source(tmp_path / "d.jsonl"))
    for i, (t, y) in enumerate(rows):
        (tmp_path / "folder" / y).mkdir(parents=True, exist_ok=True)
        (tmp_path / "folder" / y / f"{i:03d}.txt").write_text(t)
    d = files.load_splits("d", _source(tmp_path / "folder"))
    for split in files.SPLITS:
        assert a[split].sha256() == b[split].sha256() == c[split].sha256() == d[split].sha256()
    assert a["test"].label_names == ("neg", "pos")
    assert sum(len(a[s]) for s in files.SPLITS) == 40


def test_the_split_is_stratified_seeded_and_deduplicated(tmp_path):
    rows = _rows(100, ("neg", "pos", "meh", "odd"))
    rows += rows[:10]  # exact duplicates must not land in two splits
    splits = files.load_splits("d", _source(_csv(tmp_path / "d.csv", rows)))
    assert sum(len(splits[s]) for s in files.SPLITS) == 100
    test = splits["test"]
    assert [test.labels.count(c) for c in range(4)] == [5, 5, 5, 5]  # 20% of 25 per class
    assert not set(test.texts) & set(splits["train"].texts)
    again = files.load_splits("d", _source(tmp_path / "d.csv"))
    assert again["test"].texts == test.texts
    other = files.load_splits("d", _source(tmp_path / "d.csv", seed=7))
    assert other["test"].texts != test.texts


def test_declared_labels_fix_the_ids_and_integer_labels_work(tmp_path):
    rows = _rows(20, ("neg", "pos"))
    splits = files.load_splits("d", _source(_csv(tmp_path / "d.csv", rows), labels=("pos", "neg")))
    assert splits["test"].label_names == ("pos", "neg")
    first = splits["test"]
    assert all(first.labels[i] == (0 if t.split()[0] in WORDS["pos"] else 1) for i, t in enumerate(first.texts))
    ints = files.load_splits("d", _source(_csv(tmp_path / "i.csv", [(t, "1" if y == "pos" else "0") for t, y in rows])))
    assert ints["test"].label_names == ("0", "1")


def test_sentence_pairs_and_named_split_files(tmp_path):
    rows = [(t, t[::-1], y) for t, y in _rows(30, ("neg", "pos"))]
    train = _csv(tmp_path / "train.csv", rows[:20], header=("q1", "q2", "same"))
    test = _csv(tmp_path / "test.csv", rows[20:], header=("q1", "q2", "same"))
    source = files.TextSource(files={"train": train, "test": test}, text="q1", text_pair="q2", label="same", where="t")
    splits = files.load_splits("pairs", source)
    assert len(splits["train"]) == 20 and len(splits["test"]) == 10 and len(splits["validation"]) == 0
    assert splits["test"].text_pairs[0] == rows[20][1]
    leak = _csv(tmp_path / "leak.csv", rows[:12], header=("q1", "q2", "same"))
    with pytest.raises(HarnessError, match="also appear in the train file"):
        files.load_splits("p", files.TextSource(files={"train": train, "test": leak}, text="q1", text_pair="q2",
                                                label="same", where="t"))


@pytest.mark.parametrize("make, match", [
    (lambda d: _csv(d / "x.csv", _rows(10, ("neg", "pos")), header=("body", "label")), "has no column 'text'"),
    (lambda d: _csv(d / "x.csv", [("", "pos"), ("a b", "neg")]), "empty or missing 'text'"),
    (lambda d: _csv(d / "x.csv", [("a", "pos"), ("b", "")]), "label 'label' is ''"),
    (lambda d: d / "missing.csv", "does not exist"),
    (lambda d: _file(d / "x.parquet", ""), "unknown data format"),
    (lambda d: _file(d / "x.jsonl", '{"text": "a", "label": "x"}\nnot json\n'), "line 2 is not JSON"),
    (lambda d: _csv(d / "x.csv", [(f"t{i}", "pos") for i in range(9)]), "only one class"),
])
def test_bad_data_gets_one_line_naming_the_problem(tmp_path, make, match):
    with pytest.raises(HarnessError, match=match) as exc:
        files.load_splits("d", _source(make(tmp_path)))
    assert "\n" not in str(exc.value)


def test_a_label_outside_the_map_and_an_empty_class_are_refused(tmp_path):
    path = _csv(tmp_path / "d.csv", _rows(20, ("neg", "pos", "meh")))
    with pytest.raises(HarnessError, match="'meh' are not in labels"):
        files.load_splits("d", _source(path, labels=("neg", "pos")))
    with pytest.raises(HarnessError, match="'odd' have no test example"):
        files.load_splits("d", _source(path, labels=("neg", "pos", "meh", "odd")))
    (tmp_path / "f" / "a").mkdir(parents=True)
    (tmp_path / "f" / "b").mkdir()
    (tmp_path / "f" / "a" / "1.txt").write_text("x")
    with pytest.raises(HarnessError, match="class 'b' is empty"):
        files.load_splits("d", _source(tmp_path / "f"))


# ---------------------------------------------------------------------------- the project file


def _write_project(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "edgebench.toml"
    path.write_text(body)
    return path


def test_the_builtin_profiles_come_from_the_packaged_file():
    from harness.models.profiles import PROFILES, get_profile

    builtin = project.parse(project.BUILTIN.read_text(), project.BUILTIN)
    assert list(PROFILES) == list(builtin.profiles)
    assert get_profile("distilbert-base").source_key() == "random-fa54d1b49ade8c25"  # the variant cache's key
    assert get_profile("tiny-convnext").static_length == 28 and get_profile("tiny-convnext").task == "image"


@pytest.mark.parametrize("body, match", [
    ("[models.m]\nhf_dir = 'x'\nbogus = 1\n", "unknown key\\(s\\) bogus"),
    ("[models.m]\n", "exactly one of hf_dir"),
    ("[models.m]\narchitecture = { family = 'gpt2' }\n", "architecture.family = 'gpt2'"),
    ("[profiles.p]\nmodel = 'nope'\ntask = 'text-classification'\neval = ['d']\n", "model 'nope' is not a \\[models\\] table"),
    ("[models.m]\nhf_dir = 'x'\n[profiles.p]\nmodel = 'm'\ntask = 'text-classification'\neval = ['d']\n",
     "eval set 'd' is not a \\[data\\] table"),
    ("[models.m]\nhf_dir = 'x'\n[profiles.p]\nmodel = 'm'\ntask = 'text-classification'\n", "needs eval"),
    ("[models.m]\nhf_dir = 'x'\n[profiles.p]\nmodel = 'm'\ntask = 'summarize'\n", "unknown task 'summarize'"),
    ("[models.m]\nhf_dir = 'x'\nfine_tune = { data = 'd', lr = 5 }\n[data.d]\npath = 'd.csv'\n", "0 < lr < 1"),
    ("[models.distilbert-base]\nhf_dir = 'x'\n", "is a built-in model"),
    ("[models.m\n", "not valid TOML"),
    ("[data.d]\npath = 'a.csv'\nfiles = { test = 'b.csv' }\n", "exactly one of 'path'"),
    ("[profiles.p]\nmodel = 'tiny-random'\ntask = 'text'\nseq_lengths = [0]\n", "positive integers"),
])
def test_bad_project_files_get_one_line_naming_file_table_and_key(tmp_path, monkeypatch, body, match):
    monkeypatch.setenv(project.CONFIG_ENV, str(_write_project(tmp_path, body)))
    with pytest.raises(HarnessError, match=match) as exc:
        project.active()
    assert "\n" not in str(exc.value) and "edgebench.toml" in str(exc.value)


def test_a_named_config_that_does_not_exist_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(project.CONFIG_ENV, str(tmp_path / "absent.toml"))
    with pytest.raises(HarnessError, match="does not exist; write one with `python -m harness init`"):
        project.active()


def test_the_working_directorys_file_is_found_and_paths_are_relative_to_it(tmp_path, monkeypatch):
    monkeypatch.delenv(project.CONFIG_ENV, raising=False)
    _write_project(tmp_path, "[data.d]\npath = 'sub/d.csv'\n")
    monkeypatch.chdir(tmp_path)
    assert project.active().data["d"].path == (tmp_path / "sub" / "d.csv").resolve()


# ---------------------------------------------------------------------------- models and the user task


def _user_project(tmp_path, monkeypatch, folder: Path, classes=("neg", "pos", "meh"), fine_tune=True) -> None:
    _csv(tmp_path / "d.csv", _rows(120, classes))
    ft = "fine_tune = { data = 'd', epochs = 1, batch_size = 8, max_length = 32 }\n" if fine_tune else ""
    monkeypatch.setenv(project.CONFIG_ENV, str(_write_project(tmp_path, (
        f"[models.mine]\nhf_dir = '{folder}'\n{ft}"
        "[data.d]\npath = 'd.csv'\n"
        "[profiles.mine]\nmodel = 'mine'\ntask = 'text-classification'\neval = ['d']\nseq_lengths = [16]\n"
        "batch_sizes = [1, 2]\nstatic_length = 32\n"))))


def test_an_encoder_folder_is_fine_tuned_once_and_cached(tmp_path, monkeypatch):
    from harness.models.profiles import get_profile

    folder = _tiny_folder(tmp_path / "bert")  # reads the tokenizer files from the real cache first
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "cache"))
    _user_project(tmp_path, monkeypatch, folder)
    profile = get_profile("mine")
    assert profile.real_weights and profile.task == "text-classification"
    key = profile.source_key()
    model = profile.load_fp32()
    assert type(model).__name__ == "BertForSequenceClassification" and model.config.num_labels == 3
    assert model.config.id2label == {0: "meh", 1: "neg", 2: "pos"}
    checkpoints = list((tmp_path / "cache" / "checkpoints").iterdir())
    assert len(checkpoints) == 1 and checkpoints[0].name.startswith("user-mine-")
    again = profile.load_fp32()  # from the cache: the same weights
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert profile.source_key() == key
    _csv(tmp_path / "d.csv", _rows(120, ("neg", "pos", "meh")) + [("one more review", "pos")])
    assert get_profile("mine").source_key() != key  # new data: a new baseline


def test_an_encoder_without_fine_tune_is_refused(tmp_path, monkeypatch):
    from harness.models.profiles import get_profile

    _user_project(tmp_path, monkeypatch, _tiny_folder(tmp_path / "bert"), fine_tune=False)
    with pytest.raises(HarnessError, match="without a classification head.*add fine_tune"):
        get_profile("mine").load_fp32()


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_a_classifier_folder_is_measured_as_it_is(tmp_path, monkeypatch, family):
    from harness.models.profiles import get_profile

    _user_project(tmp_path, monkeypatch, _tiny_folder(tmp_path / family, family, head=True), fine_tune=False)
    profile = get_profile("mine")
    model = profile.load_fp32()
    assert type(model).__name__ == f"{'Bert' if family == 'bert' else 'Roberta'}ForSequenceClassification"
    task = profile.make_task()
    task.check_data()
    pool, indices = task.timing_pool(None, 2, 16)
    assert pool[0]["input_ids"].shape == (2, 16) and bool(pool[0]["attention_mask"].all())
    assert indices is not None  # rows are whole test texts: the integrity check can track them
    logits = task.logits(model, "d")
    assert logits.shape == (len(task.labels("d")), 3)
    batch = next(iter(task.training_context().train_batches()))
    assert batch[0].shape[0] == 16 and batch[2].max() < 3


def test_short_texts_are_packed_into_full_rows(tmp_path, monkeypatch):
    from harness.models.profiles import get_profile

    _user_project(tmp_path, monkeypatch, _tiny_folder(tmp_path / "bert", head=True), fine_tune=False)
    pool, indices = get_profile("mine").make_task().timing_pool(None, 4, 128)  # the texts are < 40 tokens
    assert indices is None and pool[0]["input_ids"].shape == (4, 128) and bool(pool[0]["attention_mask"].all())


def test_model_labels_must_match_the_data(tmp_path, monkeypatch):
    from harness.models.profiles import get_profile

    folder = _tiny_folder(tmp_path / "bert", head=True, num_labels=2)
    _user_project(tmp_path, monkeypatch, folder, fine_tune=False)
    with pytest.raises(HarnessError, match="has 2 labels but the data have 3"):
        get_profile("mine").load_fp32()
    config = json.loads((folder / "config.json").read_text())
    config.update(id2label={"0": "bad", "1": "good", "2": "so-so"}, label2id={"bad": 0, "good": 1, "so-so": 2})
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(HarnessError, match="differ from the data's"):
        hf.load_classifier(folder, ("meh", "neg", "pos"), "t")


def test_a_folder_without_weights_or_of_an_unknown_family_is_refused(tmp_path):
    folder = _tiny_folder(tmp_path / "bert")
    (folder / "model.safetensors").unlink()
    with pytest.raises(HarnessError, match="has no weights"):
        hf.check_folder(folder, "t")
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(HarnessError, match="'gpt2'.*not a supported text family"):
        hf.check_folder(folder, "t")
    with pytest.raises(HarnessError, match="does not exist"):
        hf.check_folder(tmp_path / "nowhere", "t")


# ---------------------------------------------------------------------------- quality with more classes


def test_macro_f1_matches_a_hand_count_and_comes_with_a_ci():
    from harness.measure.quality import macro_f1, quality_metrics

    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    pred = torch.tensor([0, 1, 1, 1, 2, 0, 3, 3])
    # F1: class 0 = 2*1/(2+1+1) = .5, class 1 = 2*2/(4+1) = .8, class 2 = 2/(2+1) = .667, class 3 = 1
    assert macro_f1(pred.numpy(), labels.numpy(), 4) == pytest.approx((0.5 + 0.8 + 2 / 3 + 1) / 4)
    logits = torch.nn.functional.one_hot(pred, 4).float()
    m = quality_metrics(logits, labels)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3 + 1) / 4)
    assert m["macro_f1_ci95"][0] <= m["macro_f1"] <= m["macro_f1_ci95"][1]
    assert m["per_class_accuracy"] == [0.5, 1.0, 0.5, 1.0]
    assert "macro_f1" not in quality_metrics(logits[:, :2], labels.clamp(max=1))  # two classes: accuracy only


# ---------------------------------------------------------------------------- the command line


def test_the_quick_path_config_parses_and_names_a_head_when_needed(tmp_path):
    from harness.cli import quick_config

    folder = _tiny_folder(tmp_path / "My Model")
    name, text = quick_config(folder, _csv(tmp_path / "reviews.csv", _rows(20, ("neg", "pos"))), labels="neg,pos")
    parsed = project.parse(text, tmp_path / "x.toml")
    assert name == "my-model" and parsed.models[name].fine_tune.data == "reviews"
    assert parsed.data["reviews"].labels == ("neg", "pos") and parsed.profiles[name].eval == ("reviews",)
    head = _tiny_folder(tmp_path / "clf", head=True)
    assert project.parse(quick_config(head, tmp_path / "reviews.csv")[1], tmp_path / "y.toml").models["clf"].fine_tune is None


def test_init_writes_a_starter_that_parses_and_never_overwrites(tmp_path, capsys):
    from harness.cli import main

    target = tmp_path / "edgebench.toml"
    assert main(["init", str(target)]) == 0
    parsed = project.parse(target.read_text(), target)
    assert set(parsed.profiles) == {"mine"} and parsed.models["my-model"].fine_tune.data == "my-data"
    assert main(["init", str(target)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_run_with_model_but_no_data_is_a_usage_error(tmp_path, capsys):
    from harness.cli import main

    assert main(["run", "--model", str(tmp_path)]) == 2
    assert "--model needs --data" in capsys.readouterr().err


# ---------------------------------------------------------------------------- images


def _image_folder(root: Path, classes=("a", "b", "c"), per_class: int = 12, size: int = 20) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = (rng.random((size, size)) * 60 + 60 * c).astype("uint8")  # class c is brighter
            Image.fromarray(arr, mode="L").save(root / name / f"{i:02d}.png")
    return root


def _tiny_convnext(path: Path, head: bool = True) -> Path:
    import transformers

    config = transformers.ConvNextConfig(num_channels=1, patch_size=2, hidden_sizes=[8, 16], depths=[1, 1],
                                         num_stages=2, image_size=16, num_labels=3)
    torch.manual_seed(0)
    (transformers.ConvNextForImageClassification if head else transformers.ConvNextModel)(config).save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5], "image_std": [0.25],
                                                               "rescale_factor": 1 / 255, "do_normalize": True}))
    return path


def _image_project(tmp_path, monkeypatch, folder: Path, fine_tune: bool) -> None:
    ft = "fine_tune = { data = 'imgs', epochs = 1, batch_size = 4 }\n" if fine_tune else ""
    monkeypatch.setenv(project.CONFIG_ENV, str(_write_project(tmp_path, (
        f"[models.cnx]\nhf_dir = '{folder}'\n{ft}"
        f"[data.imgs]\npath = '{_image_folder(tmp_path / 'imgs')}'\nsplit = {{ test = 0.25, validation = 0.0 }}\n"
        "[profiles.cnx]\nmodel = 'cnx'\ntask = 'image-classification'\neval = ['imgs']\nseq_lengths = [16, 32]\n"
        "batch_sizes = [1, 2]\n"))))


def test_an_image_folder_is_decoded_with_the_models_processor(tmp_path, monkeypatch):
    from harness.models.profiles import get_profile

    _image_project(tmp_path, monkeypatch, _tiny_convnext(tmp_path / "cnx"), fine_tune=False)
    profile = get_profile("cnx")
    assert profile.static_length == 16 and profile.task == "image-classification"
    model, task = profile.load_fp32(), profile.make_task()
    task.check_data()
    test = task.dataset("imgs")
    assert test.images.shape == (9, 1, 16, 16) and test.labels.tolist().count(0) == 3
    # class 0 pixels are ~[0, 60]/255: normalised with mean 0.5, std 0.25 they are all below -0.9
    assert float(test.images[test.labels == 0].max()) < (60 / 255 - 0.5) / 0.25 + 1e-6
    assert task.inputs(model, 2, 32)["pixel_values"].shape == (2, 1, 32, 32)
    assert task.logits(model, "imgs").shape == (9, 3)


def test_an_image_encoder_is_fine_tuned_and_a_vit_is_measured_at_its_size(tmp_path, monkeypatch):
    import transformers

    from harness.models.profiles import get_profile

    folder = _tiny_convnext(tmp_path / "enc", head=False)
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "cache"))
    _image_project(tmp_path, monkeypatch, folder, fine_tune=True)
    model = get_profile("cnx").load_fp32()
    assert type(model).__name__ == "ConvNextForImageClassification" and model.config.num_labels == 3
    vit = tmp_path / "vit"
    transformers.ViTForImageClassification(transformers.ViTConfig(
        image_size=16, patch_size=8, num_channels=1, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, num_labels=3)).save_pretrained(vit)
    task = tasks_for(tmp_path, monkeypatch, vit)
    assert task.inputs(get_profile("cnx").load_fp32(), 1, 16)["pixel_values"].shape == (1, 1, 16, 16)
    with pytest.raises(HarnessError, match="ViT is measured at its image_size"):
        task.inputs(get_profile("cnx").load_fp32(), 1, 32)


def tasks_for(tmp_path, monkeypatch, folder):
    from harness.models.profiles import get_profile

    _image_project(tmp_path, monkeypatch, folder, fine_tune=False)
    return get_profile("cnx").make_task()


def test_an_image_profile_refuses_a_text_data_set(tmp_path, monkeypatch):
    from harness.models.profiles import get_profile

    folder = _tiny_convnext(tmp_path / "cnx")
    _csv(tmp_path / "d.csv", _rows(30, ("neg", "pos", "meh")))
    monkeypatch.setenv(project.CONFIG_ENV, str(_write_project(tmp_path, (
        f"[models.cnx]\nhf_dir = '{folder}'\n[data.d]\npath = 'd.csv'\n"
        "[profiles.cnx]\nmodel = 'cnx'\ntask = 'image-classification'\neval = ['d']\nseq_lengths = [16]\n"))))
    with pytest.raises(HarnessError, match="needs a folder of class-named subfolders of images"):
        get_profile("cnx").make_task().check_data()


def test_a_compressor_that_does_not_apply_is_a_skip_with_its_reason(tmp_path, monkeypatch):
    from harness.results import faults
    from harness.session import BenchSession, Case

    folder = _tiny_folder(tmp_path / "bert", head=True)
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "cache"))
    _user_project(tmp_path, monkeypatch, folder, fine_tune=False)
    session = BenchSession(threads=1, log=lambda *_: None)
    try:
        with pytest.raises(faults.VariantUnsupported, match="edgemin-s1 does not apply to mine: .*DistilBERT"):
            session.variant_dir(Case("mine", "edgemin-s1"))
        assert session.variant_dir(Case("mine", "magnitude-global@0.5")).is_dir()  # the adapter knows BERT
    finally:
        session.close()


def test_every_architecture_family_of_the_schema_can_be_built():
    from harness.models.profiles import RANDOM_FAMILIES

    assert set(RANDOM_FAMILIES) == set(project.FAMILIES)


def test_list_shows_a_project_files_profiles_and_labels_match_regardless_of_case(tmp_path, monkeypatch, capsys):
    from harness.cli import main

    monkeypatch.setenv(project.CONFIG_ENV, "")  # recorded, so what `list --config` sets is undone after the test
    folder = _tiny_folder(tmp_path / "bert", head=True, num_labels=2)
    config = json.loads((folder / "config.json").read_text())
    config.update(id2label={"0": "NEG", "1": "POS"}, label2id={"NEG": 0, "POS": 1})
    (folder / "config.json").write_text(json.dumps(config))
    assert hf.load_classifier(folder, ("neg", "pos"), "t")[0].config.id2label == {0: "neg", 1: "pos"}
    path = _write_project(tmp_path, f"[models.m]\nhf_dir = '{folder}'\n[data.d]\npath = 'd.csv'\n"
                                    "[profiles.mine]\nmodel = 'm'\ntask = 'text-classification'\neval = ['d']\n")
    assert main(["list", "profiles", "--config", str(path)]) == 0
    assert "| mine " in capsys.readouterr().out
    assert main(["list", "profiles", "--config", str(tmp_path / "none.toml")]) == 2


def test_the_quick_path_refuses_a_wrong_model_or_data_path_in_one_line(tmp_path):
    from harness.cli import quick_config

    folder = _tiny_folder(tmp_path / "bert")
    data = _csv(tmp_path / "d.csv", _rows(10, ("neg", "pos")))
    with pytest.raises(HarnessError, match="--data .* does not exist"):
        quick_config(folder, tmp_path / "missing.csv")
    with pytest.raises(HarnessError, match="--model: model folder .* does not exist"):
        quick_config(tmp_path / "nowhere", data)
    (folder / "model.safetensors").unlink()
    with pytest.raises(HarnessError, match="has no weights"):
        quick_config(folder, data)


def test_a_text_profile_refuses_an_image_folder(tmp_path, monkeypatch):
    from harness.models.profiles import get_profile

    folder = _tiny_folder(tmp_path / "bert", head=True)
    monkeypatch.setenv(project.CONFIG_ENV, str(_write_project(tmp_path, (
        f"[models.m]\nhf_dir = '{folder}'\n[data.imgs]\npath = '{_image_folder(tmp_path / 'imgs')}'\n"
        "[profiles.mine]\nmodel = 'm'\ntask = 'text-classification'\neval = ['imgs']\n"))))
    with pytest.raises(HarnessError, match="a text profile needs labelled text"):
        get_profile("mine").make_task().check_data()
