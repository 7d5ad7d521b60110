"""Model profiles: which FP32 baseline a run starts from.

Profiles come from the project file (:mod:`harness.models.project`): the built-in ones below
from ``builtin.toml``, a user's from their ``edgebench.toml``.

* ``minilm-l6`` -- real weights: all-MiniLM-L6-v2 converted into
  ``DistilBertForSequenceClassification`` (6 layers, H384, 12 heads, FFN 1536)
  and fine-tuned on IMDB (``harness.models.finetune``).  Accuracy is measured.
* ``distilbert-base`` -- the architecture of ``distilbert-base-uncased``
  (66.96M parameters with the 2-class head), random init with seed 42: size,
  parameters, FLOPs, latency and memory only; accuracy is "n/a (random weights)".
* ``minilm-l12-h384`` -- the architecture of MiniLM-L12-H384-uncased (study
  000's student: 12 layers, H384, 12 heads, FFN 1536), random init with seed
  42, beside ``distilbert-base`` (study 000's teacher) for the paper's size,
  parameter and FLOPs ratios; no weights of it ship in any registry package.
* ``minilm-l6-mlm`` -- real weights: the pretrained all-MiniLM-L6-v2 encoder
  (not fine-tuned) under DistilBERT's MLM head, the head fitted on IMDB text
  with the encoder frozen (:mod:`harness.models.mlm`); task ``mlm``: study 001's MLM,
  distillation and cosine eval losses.  Not in the default run.
* ``tiny-random`` -- a 2-layer, 32-wide DistilBERT for the harness's own tests.
* ``convnext-fmnist`` -- ConvNeXt (depths [1, 1, 3, 1], widths [32, 64, 128,
  256], patch 2, 1 channel) trained from scratch on Fashion-MNIST
  (``harness.models.vision_train``); accuracy is measured.  Image sizes 28/56/112.
* ``convnext-small`` -- the ConvNeXt-Small architecture (depths [3, 3, 27, 3],
  widths [96, 192, 384, 768], 10 classes), random init: size, parameters,
  MACs, latency and memory at 32×32 and 224×224 (study 004's model).
* ``tiny-convnext`` -- a 2-stage, 8/16-wide ConvNeXt for the harness's tests.

A user's ``hf_dir`` model (real weights) is measured in its own architecture, fine-tuned first
when its model table names ``fine_tune``; its task is :class:`harness.models.tasks.LabelledTextTask`
(``LabelledImageTask`` for an image folder, ``MaskedTextTask`` for a masked LM).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from harness.core.errors import HarnessError
from harness.data import images
from harness.models import finetune, mlm, project, tasks, vision_train

SEQ_LENGTHS, BATCH_SIZES = project.SEQ_LENGTHS, project.BATCH_SIZES


@dataclasses.dataclass(frozen=True)
class Profile:
    """A baseline model and the axes it is measured on.

    ``source_key()`` identifies the exact baseline weights (for the variant
    cache); ``load_fp32()`` returns it in eval mode.
    """

    name: str
    description: str
    real_weights: bool
    source_key: Callable[[], str]
    load_fp32: Callable[[], nn.Module]
    seq_lengths: tuple[int, ...] = SEQ_LENGTHS
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    # The modality (harness.models.tasks): inputs, eval sets, and what ``seq_lengths``
    # means -- tokens for "text", pixels per side for "image".  ``static_length``
    # is the length of the static (FLOPs) / cold-start / memory / throughput inputs.
    task: str = "text"
    static_length: int = 128
    # A user's labelled-text profile builds its own task (harness.models.tasks.LabelledTextTask);
    # None: the built-in task named by ``task``.
    task_factory: Callable[[], Any] | None = None
    # A user's exported text classifier: the baseline is this ``.onnx`` file, measured on the
    # onnxruntime backend only (``load_fp32`` raises); None: a PyTorch baseline.
    onnx_file: Path | None = None

    def make_task(self) -> Any:
        """The profile's :class:`harness.models.tasks.Task`."""
        return self.task_factory() if self.task_factory is not None else tasks.get_task(self.task)

    @property
    def reference_backend(self) -> str:
        """The backend of the fp32 baseline every in-run ratio and the A/A control are taken on."""
        return "torch" if self.onnx_file is None else "onnxruntime"

    def check(self) -> None:
        """Fail before anything runs when the profile's data (or its ONNX file) cannot be used.

        Raises:
            HarnessError: what :meth:`harness.models.tasks.Task.check_data` raises, and for an
                ``onnx_file`` what :func:`harness.models.onnx_file.check_user_model` raises.
        """
        task = self.make_task()
        task.check_data()
        if self.onnx_file is not None:
            from harness.models import onnx_file

            tokenizer = task.tokenizer()
            labels = len(task.splits(task.eval_sets[0])["test"].label_names)
            onnx_file.check_user_model(self.onnx_file, tuple(tokenizer.model_input_names), labels,
                                       (*self.seq_lengths, self.static_length), self.batch_sizes,
                                       task.model_spec.where)


def _random_init(family: str, config_kwargs: dict, seed: int = 42, masked_lm: bool = False) -> Callable[[], nn.Module]:
    def load() -> nn.Module:
        import transformers

        config_class, model_class = RANDOM_FAMILIES[family]
        if masked_lm:
            model_class = model_class.replace("ForSequenceClassification", "ForMaskedLM")
        torch.manual_seed(seed)
        return getattr(transformers, model_class)(getattr(transformers, config_class)(**config_kwargs)).eval()

    return load


def _random_key(family: str, config_kwargs: dict, seed: int = 42, masked_lm: bool = False) -> Callable[[], str]:
    # The first two families' keys predate the family field: leaving it out keeps their cached variants.
    payload = config_kwargs if family in ("distilbert", "convnext") else {**config_kwargs, "family": family}
    if masked_lm:  # another head, so other weights under the same seed
        payload = {**payload, "family": family, "head": "masked-lm"}

    def key() -> str:
        blob = json.dumps({"config": payload, "seed": seed, "torch": torch.__version__}, sort_keys=True)
        return "random-" + hashlib.sha256(blob.encode()).hexdigest()[:16]

    return key


# architecture.family -> (transformers config class, model class) of a random-init model.
RANDOM_FAMILIES = {
    "distilbert": ("DistilBertConfig", "DistilBertForSequenceClassification"),
    "bert": ("BertConfig", "BertForSequenceClassification"),
    "roberta": ("RobertaConfig", "RobertaForSequenceClassification"),
    "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaForSequenceClassification"),
    "convnext": ("ConvNextConfig", "ConvNextForImageClassification"),
    "vit": ("ViTConfig", "ViTForImageClassification"),
}


def _minilm_key() -> str:
    return "finetuned-" + finetune.recipe_hash(finetune.FinetuneRecipe())


def _minilm_load() -> nn.Module:
    return finetune.load_checkpoint(finetune.baseline_checkpoint(finetune.FinetuneRecipe()))


def _mlm_key() -> str:
    return "mlm-" + mlm.recipe_hash(mlm.MLMRecipe())


def _mlm_load() -> nn.Module:
    return mlm.load_baseline()


def _onnx_baseline(spec: project.ModelSpec) -> tuple[Callable[[], str], Callable[[], nn.Module]]:
    """(source key, loader) of an ``onnx`` model: keyed by the file's bytes; no PyTorch module."""
    from harness.core import atomic

    def key() -> str:
        return "onnx-" + atomic.sha256_file(spec.onnx)[:16]

    def load() -> nn.Module:
        raise HarnessError(f"{spec.where}: the model is an ONNX file ({spec.onnx.name}); it has no PyTorch "
                           f"module -- measure it with --backends onnxruntime")

    return key, load


def _fmnist_key() -> str:
    return "trained-" + vision_train.recipe_hash(vision_train.VisionRecipe())


def _fmnist_load() -> nn.Module:
    return vision_train.load_checkpoint(vision_train.baseline_checkpoint(vision_train.VisionRecipe()))


# ``recipe = "…"`` in a project file: baselines the package builds itself -> (source key, loader).
RECIPES: dict[str, tuple[Callable[[], str], Callable[[], nn.Module]]] = {
    "minilm-l6-imdb": (_minilm_key, _minilm_load),
    "minilm-l6-mlm": (_mlm_key, _mlm_load),
    "convnext-fmnist": (_fmnist_key, _fmnist_load),
}


def _user_baseline(spec: project.ModelSpec, profile: project.ProfileSpec, make_task: Callable[[], Any]
                   ) -> tuple[Callable[[], str], Callable[[], nn.Module]]:
    """(source key, loader) of a Hugging Face folder, fine-tuned first when the model says so on the
    primary evaluation set's train split (whose label map the model gets); data are read on first
    use, not here."""
    from harness.core import train as training
    from harness.models import hf

    kind = "image" if profile.task == "image-classification" else "text"

    def splits():
        task = make_task()
        if kind == "image":
            return {s: user_splits_of(task, s) for s in ("train", "validation", "test")}
        return task.splits(task.eval_sets[0])

    def recipe():
        ft = spec.fine_tune
        return finetune.FinetuneRecipe(lr=float(ft.lr), epochs=ft.epochs, batch_size=ft.batch_size,
                                       max_length=ft.max_length, warmup_ratio=float(ft.warmup_ratio),
                                       weight_decay=float(ft.weight_decay), seed=ft.seed)

    def fit(model: nn.Module) -> tuple[list[float], float | None]:
        task, r = make_task(), recipe()
        if kind == "text":
            tok, s = task.tokenizer(), splits()
            losses = finetune.train(model, s["train"], tok, r)
            return losses, (finetune.accuracy(model, s["validation"], tok, r.max_length) if len(s["validation"])
                            else None)
        train, val = task.split(task.eval_sets[0], "train"), task.split(task.eval_sets[0], "validation")
        steps = -(-len(train) // r.batch_size) * r.epochs
        config = training.TrainConfig(lr=r.lr, steps=steps, schedule="warmup-linear",
                                      warmup_steps=round(r.warmup_ratio * steps), weight_decay=r.weight_decay,
                                      max_grad_norm=r.max_grad_norm, seed=r.seed, desc="fine-tuning")
        batches = (b for order in training.shuffled(len(train), r.epochs, r.seed)
                   for b in images.batches(train, r.batch_size, order))
        losses = training.train(model, batches, config, training.image_classification_loss)
        if not len(val):
            return losses, None
        model.eval()
        with torch.inference_mode():
            pred = torch.cat([model(pixel_values=x).logits.argmax(-1) for x, _ in images.batches(val, 64)])
        return losses, float((pred == val.labels).float().mean())

    def key() -> str:
        if spec.fine_tune is None:  # a masked LM is never fine-tuned here (project.py refuses it)
            return "hf-" + hf.weights_sha256(spec.hf_dir)[:16]
        s = splits()
        return "hf-ft-" + hf.recipe_hash(spec.hf_dir, recipe().to_dict(), s["train"], s["validation"])

    def load() -> nn.Module:
        if profile.task == "masked-lm":
            return hf.load_masked_lm(spec.hf_dir, spec.where)
        if spec.fine_tune is None:
            return hf.load_classifier(spec.hf_dir, splits()["test"].label_names, spec.where, seed=spec.seed,
                                      kind=kind)[0]
        folder = hf.finetuned(spec.name, spec.hf_dir, splits(), recipe(), spec.where, fit, kind)
        return finetune.load_checkpoint(folder, finetune.read_checkpoint_meta(folder)["model_class"])

    return key, load


def user_splits_of(task: Any, split: str) -> Any:
    """The primary set's ``split`` of an image task as the files (for hashing and label names)."""
    first = task.eval_sets[0]
    return tasks.user_splits(first, task.sources[first])[split]


def _profile(project_: project.Project, spec: project.ProfileSpec) -> Profile:
    model = project_.models[spec.model]
    if model.recipe is not None:
        if model.recipe not in RECIPES:
            raise HarnessError(f"{model.where}: unknown recipe '{model.recipe}'; known: {', '.join(RECIPES)}")
        (key, load), real = RECIPES[model.recipe], True
    elif model.architecture is not None:
        arch = {k: v for k, v in model.architecture.items() if k != "family"}
        family, masked = model.architecture["family"], spec.task == "masked-lm"
        key, load, real = (_random_key(family, arch, model.seed, masked), _random_init(family, arch, model.seed, masked),
                           False)
    task_factory = None
    if spec.task in project.USER_TASKS:
        evals = tuple((e, project_.data[e]) for e in spec.eval)
        task_class = {"image-classification": tasks.LabelledImageTask,
                      "masked-lm": tasks.MaskedTextTask}.get(spec.task, tasks.LabelledTextTask)
        task_factory = (functools.partial(task_class, spec.name, model, evals)
                        if task_class is tasks.LabelledImageTask else
                        functools.partial(task_class, spec.name, model, evals, spec.static_length))
    if model.recipe is None and model.architecture is None:
        if task_factory is None:
            raise HarnessError(f"{spec.where}: an {'onnx' if model.onnx else 'hf_dir'} model needs a user task "
                               f"({', '.join(project.USER_TASKS)})")
        (key, load), real = (_onnx_baseline(model) if model.onnx else _user_baseline(model, spec, task_factory)), True
    return Profile(spec.name, spec.description or f"{spec.model} ({spec.task})", real, key, load,
                   spec.seq_lengths, spec.batch_sizes, spec.task, spec.static_length, task_factory, model.onnx)


def all_profiles() -> dict[str, Profile]:
    """Every profile: the built-in ones (``builtin.toml``) and the active project file's
    (:func:`harness.models.project.active`), in file order."""
    active = project.active()
    if _BUILT.get("project") is not active:  # the parsed file is cached per version; so are its profiles
        _BUILT.update(project=active, profiles={name: _profile(active, spec) for name, spec in active.profiles.items()})
    return _BUILT["profiles"]


_BUILT: dict[str, Any] = {}


class _Profiles(Mapping):
    """``PROFILES``: a read-only view of :func:`all_profiles`, so a project file given after import
    (``--config``) is seen by every caller."""

    def __getitem__(self, name: str) -> Profile:
        return all_profiles()[name]

    def __iter__(self):
        return iter(all_profiles())

    def __len__(self) -> int:
        return len(all_profiles())


PROFILES: Mapping[str, Profile] = _Profiles()


def get_profile(name: str) -> Profile:
    """Raises HarnessError for an unknown name, listing the known ones."""
    profiles = all_profiles()
    try:
        return profiles[name]
    except KeyError:
        raise HarnessError(f"unknown profile '{name}'; known profiles: {', '.join(profiles)}") from None
