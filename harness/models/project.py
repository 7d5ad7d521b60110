"""The project file (issue 18): models, data sets and profiles from TOML, one schema for all.

The built-in profiles live in ``builtin.toml`` beside this module, in the same schema; a
user's ``edgebench.toml`` (the working directory's, or the file named by ``--config`` /
``EDGEBENCH_CONFIG``) adds its own beside them (a name may not shadow a built-in one)::

    [models.my-minilm]
    hf_dir = "models/all-MiniLM-L6-v2"      # a Hugging Face folder: config.json + weights + tokenizer
    fine_tune = { data = "reviews", epochs = 1, lr = 1e-4, batch_size = 16, max_length = 128 }

    [data.reviews]
    path = "reviews.csv"                    # .csv/.tsv/.jsonl, a folder of class folders, or save_to_disk
    text = "text"                           # column names (defaults shown)
    label = "label"
    split = { test = 0.2, validation = 0.1, seed = 42 }   # or files = { train = "...", test = "..." }

    [profiles.mine]
    model = "my-minilm"
    task = "text-classification"            # or text-pair-classification (text_pair in [data]), image-classification,
                                            # masked-lm (a …ForMaskedLM folder; texts need no labels, .txt allowed)
    eval = ["reviews"]                      # the test split of each; the first is the primary set
    seq_lengths = [16, 128]                 # tokens; pixels per side for images
    batch_sizes = [1, 32]

A model comes from exactly one of ``hf_dir`` (real weights), ``onnx`` + ``tokenizer`` (an exported
text classifier, measured on ONNX Runtime only: fp32 and ORT's INT8), ``architecture`` + ``seed``
(random init: size, speed and memory only) or ``recipe`` (a baseline the package builds
itself, for the built-in profiles).  Relative paths are relative to the file.  This module
only reads and checks the file; :mod:`harness.models.profiles` turns it into profiles.
Every error is one line naming the file, the table and key, and the fix.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import tomllib
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.data.files import TextSource

CONFIG_ENV = "EDGEBENCH_CONFIG"
CONFIG_NAME = "edgebench.toml"
BUILTIN = Path(__file__).with_name("builtin.toml")

# The tasks a profile can name: the built-in data sets' own, and a user's labelled text.
BUILTIN_TASKS = ("text", "mlm", "image")
USER_TASKS = ("text-classification", "text-pair-classification", "image-classification", "masked-lm")
IMAGE_TASKS = ("image", "image-classification")
MASKED_TASKS = ("mlm", "masked-lm")  # scored on masked positions: accuracy is masked-token top-1
# Tasks whose model is a text classifier fed input_ids + attention_mask (what the ONNX exporter handles).
TEXT_TASKS = ("text", "text-classification", "text-pair-classification")
FAMILIES = ("distilbert", "bert", "roberta", "xlm-roberta", "convnext", "vit")

# Fewer shapes, each with repeated interleaved blocks (issue 16): the short, the budgeted and
# the longest length; batch 1 (the latency campaign at seq 128) and batch 32.  Every shape is
# one timing campaign of up to --timing-cap-s; --seq-lengths / --batch-sizes add more.
SEQ_LENGTHS = (16, 128, 512)
BATCH_SIZES = (1, 32)


@dataclasses.dataclass(frozen=True)
class FineTune:
    """``fine_tune = {…}`` of a model: the project's one training loop
    (:func:`harness.models.finetune.train`, AdamW, linear warm-up then decay) on ``data``'s train split."""

    data: str
    epochs: int = 1
    lr: float = 1e-4
    batch_size: int = 16
    max_length: int = 128
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 42


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """``[models.NAME]``: where the FP32 baseline comes from (one of ``hf_dir``, ``onnx``, ``architecture``,
    ``recipe``)."""

    name: str
    where: str
    hf_dir: Path | None = None
    architecture: dict[str, Any] | None = None
    seed: int = 42
    recipe: str | None = None
    tokenizer: Path | None = None
    fine_tune: FineTune | None = None
    onnx: Path | None = None


@dataclasses.dataclass(frozen=True)
class ProfileSpec:
    """``[profiles.NAME]``: a model, a task, its evaluation sets and the axes it is measured on."""

    name: str
    where: str
    model: str
    task: str
    description: str = ""
    eval: tuple[str, ...] = ()
    seq_lengths: tuple[int, ...] = SEQ_LENGTHS
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    static_length: int = 128


@dataclasses.dataclass(frozen=True)
class Project:
    """Every model, data set and profile of the built-in file plus the user's (``path``: the user's file)."""

    models: dict[str, ModelSpec]
    data: dict[str, TextSource]
    profiles: dict[str, ProfileSpec]
    path: Path | None = None


def _keys(table: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = [k for k in table if k not in allowed]
    if unknown:
        raise HarnessError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(allowed)}")


def _typed(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise HarnessError(f"{where}: '{key}' = {value!r} must be {what}")
    return value


def _ints(table: dict[str, Any], key: str, default: tuple[int, ...], where: str) -> tuple[int, ...]:
    if key not in table:
        return default
    value = table[key]
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                                           for v in value):
        raise HarnessError(f"{where}: '{key}' = {value!r} must be a non-empty list of positive integers")
    return tuple(value)


def _path(base: Path, value: Any, where: str, key: str) -> Path:
    if not isinstance(value, str) or not value:
        raise HarnessError(f"{where}: '{key}' must be a path (a string), got {value!r}")
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else (base / path).resolve()


def _model(name: str, table: dict[str, Any], base: Path, where: str) -> ModelSpec:
    _keys(table, ("hf_dir", "onnx", "architecture", "seed", "recipe", "tokenizer", "fine_tune"), where)
    sources = [k for k in ("hf_dir", "onnx", "architecture", "recipe") if k in table]
    if len(sources) != 1:
        raise HarnessError(f"{where}: give exactly one of hf_dir (a Hugging Face folder), onnx (an .onnx text "
                           f"classifier + tokenizer), architecture (+ seed: random init) or recipe; got "
                           f"{', '.join(sources) or 'none'}")
    spec: dict[str, Any] = {"name": name, "where": where}
    if "hf_dir" in table:
        spec["hf_dir"] = _path(base, table["hf_dir"], where, "hf_dir")
    if "onnx" in table:
        spec["onnx"] = _path(base, table["onnx"], where, "onnx")
        if "fine_tune" in table:
            raise HarnessError(f"{where}: an onnx model is measured as it is (no PyTorch weights to train); drop "
                               f"fine_tune, or give the Hugging Face folder as hf_dir")
        if "tokenizer" not in table:
            raise HarnessError(f"{where}: an onnx model needs tokenizer = \"<folder with the tokenizer files it was "
                               f"exported with>\"")
    if "architecture" in table:
        arch = _typed(table, "architecture", dict, where, "a table, e.g. { family = \"bert\", hidden_size = 384 }")
        if arch.get("family") not in FAMILIES:
            raise HarnessError(f"{where}: architecture.family = {arch.get('family')!r}; known: {', '.join(FAMILIES)}")
        spec["architecture"] = dict(arch)
    if "seed" in table:
        spec["seed"] = _typed(table, "seed", int, where, "an integer")
    if "recipe" in table:
        spec["recipe"] = _typed(table, "recipe", str, where, "the name of a built-in recipe")
    if "tokenizer" in table:
        spec["tokenizer"] = _path(base, table["tokenizer"], where, "tokenizer")
    if "fine_tune" in table:
        ft = _typed(table, "fine_tune", dict, where, "a table, e.g. { data = \"reviews\", epochs = 1 }")
        fields = {f.name: f for f in dataclasses.fields(FineTune)}
        _keys(ft, tuple(fields), f"{where} fine_tune")
        if "data" not in ft:
            raise HarnessError(f"{where}: fine_tune needs data = \"<a [data] name>\" (its train split is used)")
        for key, value in ft.items():
            want = {"data": str, "lr": (int, float), "warmup_ratio": (int, float), "weight_decay": (int, float)}.get(key, int)
            _typed(ft, key, want, f"{where} fine_tune", "a string" if want is str else "a number")
        if not 0 < ft.get("lr", 1e-4) < 1 or ft.get("epochs", 1) < 1 or ft.get("batch_size", 16) < 1 or not (
                8 <= ft.get("max_length", 128) <= 512):
            raise HarnessError(f"{where} fine_tune: need 0 < lr < 1, epochs >= 1, batch_size >= 1 and "
                               f"8 <= max_length <= 512")
        spec["fine_tune"] = FineTune(**ft)
    return ModelSpec(**spec)


def _data(name: str, table: dict[str, Any], base: Path, where: str) -> TextSource:
    _keys(table, ("path", "files", "text", "label", "text_pair", "labels", "split"), where)
    spec: dict[str, Any] = {"where": where}
    if "path" in table:
        spec["path"] = _path(base, table["path"], where, "path")
    if "files" in table:
        files = _typed(table, "files", dict, where, "a table { train = \"…\", test = \"…\" }")
        spec["files"] = {split: _path(base, p, where, f"files.{split}") for split, p in files.items()}
    for key in ("text", "label", "text_pair"):
        if key in table:
            spec[key] = _typed(table, key, str, where, "a column name")
    if "labels" in table:
        labels = table["labels"]
        if not isinstance(labels, list) or not all(isinstance(v, str) for v in labels):
            raise HarnessError(f"{where}: 'labels' must be a list of class names in id order")
        spec["labels"] = tuple(labels)
    if "split" in table:
        split = _typed(table, "split", dict, where, "a table { test = 0.2, validation = 0.1, seed = 42 }")
        _keys(split, ("test", "validation", "seed"), f"{where} split")
        spec.update(split)
    return TextSource(**spec)


def _profile(name: str, table: dict[str, Any], where: str) -> ProfileSpec:
    fields = ("model", "task", "description", "eval", "seq_lengths", "batch_sizes", "static_length")
    _keys(table, fields, where)
    for key in ("model", "task"):
        if key not in table:
            raise HarnessError(f"{where}: '{key}' is required")
    task = _typed(table, "task", str, where, "a task name")
    if task not in BUILTIN_TASKS + USER_TASKS:
        raise HarnessError(f"{where}: unknown task '{task}'; known: {', '.join(USER_TASKS + BUILTIN_TASKS)}")
    spec: dict[str, Any] = {"name": name, "where": where, "model": _typed(table, "model", str, where, "a model name"),
                            "task": task}
    if "description" in table:
        spec["description"] = _typed(table, "description", str, where, "a string")
    if "eval" in table:
        evals = table["eval"]
        if not isinstance(evals, list) or not evals or not all(isinstance(v, str) for v in evals):
            raise HarnessError(f"{where}: 'eval' must be a non-empty list of [data] names")
        spec["eval"] = tuple(evals)
    elif task in USER_TASKS:
        raise HarnessError(f"{where}: a {task} profile needs eval = [\"<a [data] name>\", …]")
    spec["seq_lengths"] = _ints(table, "seq_lengths", ProfileSpec.seq_lengths, where)
    spec["batch_sizes"] = _ints(table, "batch_sizes", ProfileSpec.batch_sizes, where)
    if "static_length" in table:
        spec["static_length"] = _typed(table, "static_length", int, where, "a positive integer")
    elif task == "image-classification":  # pixels per side: the first measured size, not 128 tokens
        spec["static_length"] = spec["seq_lengths"][0]
    return ProfileSpec(**spec)


def parse(text: str, path: Path, base: Path | None = None) -> Project:
    """The project in TOML ``text`` (read from ``path``; relative paths against ``base``, default its folder).

    Raises:
        HarnessError: bad TOML, an unknown table or key, a wrong type, a reference to a model
            or data set that is not defined.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise HarnessError(f"{path} is not valid TOML ({e}); fix the file") from None
    _keys(doc, ("models", "data", "profiles"), str(path))
    base = path.parent if base is None else base
    tables: dict[str, dict[str, Any]] = {}
    for section in ("models", "data", "profiles"):
        tables[section] = doc.get(section, {})
        for name, table in tables[section].items():
            if not isinstance(table, dict):
                raise HarnessError(f"{path} [{section}.{name}] must be a table")
    models = {n: _model(n, t, base, f"{path} [models.{n}]") for n, t in tables["models"].items()}
    data = {n: _data(n, t, base, f"{path} [data.{n}]") for n, t in tables["data"].items()}
    profiles = {n: _profile(n, t, f"{path} [profiles.{n}]") for n, t in tables["profiles"].items()}
    return Project(models, data, profiles, path)


def _check_references(project: Project) -> None:
    for m in project.models.values():
        if m.fine_tune is not None and m.fine_tune.data not in project.data:
            raise HarnessError(f"{m.where}: fine_tune.data = '{m.fine_tune.data}' is not a [data] table "
                               f"(known: {', '.join(project.data) or 'none'})")
    for p in project.profiles.values():
        if p.model not in project.models:
            raise HarnessError(f"{p.where}: model '{p.model}' is not a [models] table "
                               f"(known: {', '.join(project.models)})")
        for e in p.eval:
            if p.task in USER_TASKS and e not in project.data:
                raise HarnessError(f"{p.where}: eval set '{e}' is not a [data] table "
                                   f"(known: {', '.join(project.data) or 'none'})")
        ft = project.models[p.model].fine_tune
        if p.task in USER_TASKS and ft is not None and p.eval and ft.data != p.eval[0]:
            raise HarnessError(f"{p.where}: its model fine-tunes on '{ft.data}' but the primary eval set is "
                               f"'{p.eval[0]}'; list '{ft.data}' first in eval (its train split trains, its test "
                               f"split scores)")
        if project.models[p.model].onnx is not None and p.task not in TEXT_TASKS[1:]:
            raise HarnessError(f"{p.where}: an onnx model is a text classifier here; give task = "
                               f"\"text-classification\" or \"text-pair-classification\"")
        if p.task == "masked-lm":
            _check_masked_lm(project, p)
        if p.task == "text-pair-classification" and any(project.data[e].text_pair is None for e in p.eval):
            raise HarnessError(f"{p.where}: a text-pair-classification profile needs text_pair = \"<column>\" "
                               f"in each of its [data] tables")


def _check_masked_lm(project: Project, p: ProfileSpec) -> None:
    model = project.models[p.model]
    family = (model.architecture or {}).get("family")
    if model.fine_tune is not None:
        raise HarnessError(f"{model.where}: fine_tune trains a classification head; a masked-lm profile ({p.name}) "
                           f"measures the folder's own MLM head: drop fine_tune")
    if model.recipe is not None or family in ("convnext", "vit"):
        raise HarnessError(f"{p.where}: a masked-lm profile needs a text masked LM: hf_dir = a folder saved from a "
                           f"…ForMaskedLM, or architecture = {{ family = \"bert\", … }}")
    for e in p.eval:
        if project.data[e].text_pair is not None:
            raise HarnessError(f"{project.data[e].where}: a masked-lm profile reads single texts; drop text_pair")


def merge(builtin: Project, user: Project) -> Project:
    """The built-in project with the user's added; a user name shadowing a built-in one is an error."""
    for section in ("models", "data", "profiles"):
        clash = set(getattr(builtin, section)) & set(getattr(user, section))
        if clash:
            raise HarnessError(f"{user.path} [{section}.{sorted(clash)[0]}]: the name is a built-in {section[:-1]}; "
                               f"choose another")
    merged = Project({**builtin.models, **user.models}, {**builtin.data, **user.data},
                     {**builtin.profiles, **user.profiles}, user.path)
    _check_references(merged)
    return merged


def config_path(explicit: Path | None = None) -> Path | None:
    """The user's project file: ``explicit``, else ``$EDGEBENCH_CONFIG``, else ``./edgebench.toml`` if it
    exists, else None.  Raises HarnessError when a named file does not exist."""
    named = explicit or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if named is not None:
        if not named.is_file():
            raise HarnessError(f"config file {named} does not exist; write one with `python -m harness init`")
        return named.resolve()
    here = Path.cwd() / CONFIG_NAME
    return here.resolve() if here.is_file() else None


@functools.lru_cache(maxsize=8)
def _load(path: str | None, mtime_ns: int) -> Project:
    builtin = parse(BUILTIN.read_text(encoding="utf-8"), BUILTIN)
    _check_references(builtin)
    if path is None:
        return builtin
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise HarnessError(f"config file {path} cannot be read ({e})") from None
    return merge(builtin, parse(text, Path(path)))


def active(explicit: Path | None = None) -> Project:
    """The built-in project plus the user's file (see :func:`config_path`), parsed once per file version."""
    path = config_path(explicit)
    return _load(None if path is None else str(path), path.stat().st_mtime_ns if path else 0)


STARTER = '''\
# edgebench project file: your models, data and profiles beside the built-in ones.
# `python -m harness list profiles` shows them; `python -m harness run --profiles mine` measures one.
# Relative paths are relative to this file.

[models.my-model]
hf_dir = "path/to/hf-model-folder"      # config.json + model.safetensors (or pytorch_model.bin) + tokenizer files
# A folder without a classification head (e.g. a sentence-transformers encoder) gets one and
# needs fine_tune; drop fine_tune for a model already fine-tuned on your labels.
fine_tune = { data = "my-data", epochs = 1, lr = 1e-4, batch_size = 16, max_length = 128 }
# For a masked language model (task = "masked-lm" below), hf_dir is a folder saved from a
# …ForMaskedLM (BertForMaskedLM, DistilBertForMaskedLM, RobertaForMaskedLM), without fine_tune.
# Or, instead of hf_dir and fine_tune, an exported text classifier (measured on onnxruntime:
# fp32, int8-dynamic, int8-dynamic-pc):
# onnx = "model.onnx"
# tokenizer = "path/to/tokenizer-folder"

[data.my-data]
path = "data.csv"                       # .csv / .tsv / .jsonl, or a folder of class-named subfolders of .txt files
                                        # (masked-lm: also a .txt file, one text per line; labels unused)
text = "text"                           # column holding the text
label = "label"                         # column holding the class name or id
# text_pair = "text2"                   # for sentence-pair tasks (task = "text-pair-classification")
# labels = ["negative", "positive"]     # the label map, names in id order (default: sorted names found)
split = { test = 0.2, validation = 0.1, seed = 42 }   # or: files = { train = "train.csv", test = "test.csv" }

[profiles.mine]
model = "my-model"
task = "text-classification"            # or text-pair-classification, image-classification, masked-lm
eval = ["my-data"]                      # the test split of each; the first is the primary set
seq_lengths = [16, 128]                 # latency at these lengths (tokens)
batch_sizes = [1, 32]                   # throughput at these batch sizes
'''
