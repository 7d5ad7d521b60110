"""Tasks: what a profile's model eats and how its quality is scored.

The suite, the session and the metrics never ask "is this text or vision?";
they ask the profile's task (``get_task(profile.task)``):

* ``inputs(model, batch, length)`` -- the timing inputs, a dict of keyword
  arguments for ``model(**inputs)``: ``input_ids``/``attention_mask`` (B, S)
  for text, ``pixel_values`` (B, C, H, W) for images;
* ``length_axis`` -- what the second timing axis means: ``"seq_len"`` (tokens)
  for text, ``"image_size"`` (pixels per side) for images; ``length_tag`` is
  its short form in test ids (``seq128``, ``img224``);
* ``eval_sets`` -- the quality sets, the first being the primary one
  (``accuracy``); ``labels``/``logits`` score a model on them;
* ``training_context()`` -- data for data-dependent compressors.

``TextTask`` is the original BERT-style path (real IMDB tokens, IMDB test + MR).
``MLMTask`` is masked-token prediction on the same reviews (:mod:`harness.models.mlm`);
``MaskedTextTask`` the same scoring of a user's masked LM on a user's texts.
``ImageTask`` is Fashion-MNIST (:mod:`harness.data.images`): timing inputs are
real test images resized bilinearly to ``length``×``length`` and repeated to
the model's channel count; quality on the 10,000 test images plus study 004's
"20 edge samples" smoke set (two per class).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

import torch
import torch.nn as nn

from compressors import CompressionContext
from harness.core.errors import HarnessError
from harness.data import assets, files, images, text
from harness.data.inputs import text_batch, text_batches
from harness.models import convert, mlm
from harness.models.inference import predict_logits, predict_logits_hidden

POOL = 256  # distinct batches per timing pool (fewer when the test set has fewer long reviews)


class Task:
    name: ClassVar[str]
    length_axis: ClassVar[str]
    length_tag: ClassVar[str]
    eval_sets: ClassVar[tuple[str, ...]]
    inputs_need_model: ClassVar[bool] = True
    """False when :meth:`inputs` ignores its model argument (text: real token ids)."""
    per_class: ClassVar[bool] = True
    """False when the logits' columns are not classes (a masked LM's vocabulary): no macro-F1."""
    triple_loss: ClassVar[bool] = False
    """True when :meth:`triple_loss_inputs` is defined (study 001's quality table)."""
    eval_limit: int | None = None
    """At most this many examples per evaluation set (the suite's ``--eval-limit``),
    evenly spaced so a label-sorted set stays balanced; None: all."""

    def inputs(self, model: nn.Module | None, batch_size: int, length: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def timing_pool(self, model: nn.Module | None, batch_size: int,
                    length: int) -> tuple[list[dict[str, torch.Tensor]], list[list[int]] | None]:
        """The inputs a timing loop cycles through and the test examples each holds
        (None when not tracked); default: the single batch of :meth:`inputs`."""
        return [self.inputs(model, batch_size, length)], None

    def _limit_indices(self, n: int) -> list[int] | None:
        """The example indices kept by ``eval_limit`` from a set of ``n`` (None: all kept)."""
        if self.eval_limit and self.eval_limit < n:
            step = n / self.eval_limit
            return [int(i * step) for i in range(self.eval_limit)]
        return None

    def _limited(self, ds: Any) -> Any:
        kept = self._limit_indices(len(ds))
        return ds if kept is None else ds.subset(kept)

    def eval_rows(self, eval_set: str) -> dict[int, int] | None:
        """Row of the (limited) set's logits for each original example index, or None when
        no example was dropped (row = index)."""
        return None

    def check_data(self) -> None:
        """Raise HarnessError (naming the set-up command) when the task's data are missing."""
        raise NotImplementedError

    def labels(self, eval_set: str) -> torch.Tensor:
        raise NotImplementedError

    def logits(self, model: nn.Module, eval_set: str) -> torch.Tensor:
        raise NotImplementedError

    def training_context(self):
        raise NotImplementedError

    def triple_loss_inputs(self, model: nn.Module, n: int):
        """``(logits, [(last hidden (B, L, H), mask (B, L))], labels or None)`` of ``model`` on the
        first ``n`` examples of the primary set, for study 001's triple-loss metrics
        (:func:`harness.measure.quality.triple_loss_metrics`); labels only where an MLM loss exists."""
        raise HarnessError(f"the {self.name} task has no triple-loss metrics (study 001 defines them for text)")

    def _unknown(self, eval_set: str) -> ValueError:
        return ValueError(f"unknown evaluation set '{eval_set}' for task {self.name}; "
                          f"known: {', '.join(self.eval_sets)}")


class TextTask(Task):
    """Binary sentiment on IMDB reviews (+ MR sentences out of domain)."""

    name = "text"
    length_axis = "seq_len"
    length_tag = "seq"
    eval_sets = ("imdb-test", "mr")
    inputs_need_model = False
    triple_loss = True

    def inputs(self, model, batch_size, length):
        return text_batch(batch_size, length)

    def timing_pool(self, model, batch_size, length):
        """Up to ``POOL`` distinct batches of IMDB test reviews, with their indices."""
        return text_batches(batch_size, length, POOL)

    def check_data(self):
        for name in assets.ASSETS:
            assets.asset_dir(name)

    def _full(self, eval_set: str):
        if eval_set == "imdb-test":
            return text.imdb_splits()["test"]
        if eval_set == "mr":
            return text.mr_sentences()
        raise self._unknown(eval_set)

    def dataset(self, eval_set: str):
        return self._limited(self._full(eval_set))

    def labels(self, eval_set):
        return torch.tensor(self.dataset(eval_set).labels, dtype=torch.int64)

    def eval_rows(self, eval_set):
        kept = self._limit_indices(len(self._full(eval_set)))
        return None if kept is None else {index: row for row, index in enumerate(kept)}

    max_length = 128
    """Tokens per example in the accuracy pass (the timed rows at this length are checked against it)."""

    def tokenizer(self) -> Any:
        """The tokenizer of the task's texts: all-MiniLM-L6-v2's (uncased WordPiece) for IMDB and MR."""
        return text.load_tokenizer()

    def logits(self, model, eval_set):
        return predict_logits(model, text.batches(self.dataset(eval_set), self.tokenizer(), batch_size=32,
                                                  max_length=self.max_length))

    def eval_token_rows(self, eval_set: str) -> set[bytes]:
        """Every example of ``eval_set`` (all of it, whatever ``eval_limit``) as the bytes of its int64
        token ids without padding, tokenised as the accuracy pass does: what a check that other data
        (an INT8 calibration set) holds no evaluation example compares against."""
        rows = set()
        for ids, mask, _ in text.batches(self._full(eval_set), self.tokenizer(), 64, self.max_length):
            rows |= {row[m.bool()].numpy().tobytes() for row, m in zip(ids, mask)}
        return rows

    def training_context(self, batch_size: int = 16, max_length: int = 128):
        """Training data for data-dependent compressors (head importance, recovery
        fine-tuning): the IMDB train split as ``(input_ids (B, L), attention_mask (B, L),
        labels (B,))`` batches, tokenised lazily on each call; EdgeMIN's student is
        paraphrase-MiniLM-L3 (:func:`harness.models.convert.load_minilm_l3_as_distilbert`)."""
        def train_batches():
            return text.batches(text.imdb_splits()["train"], text.load_tokenizer(), batch_size, max_length)

        def load_student(seed: int) -> nn.Module:
            return convert.load_minilm_l3_as_distilbert(num_labels=2, seed=seed)

        return CompressionContext(train_batches, seed=42, load_student=load_student)

    def triple_loss_inputs(self, model, n):
        ds = self.dataset(self.eval_sets[0])
        ds = ds.subset(range(min(n, len(ds))))
        logits, hidden = predict_logits_hidden(model, text.batches(ds, self.tokenizer(), batch_size=32,
                                                                   max_length=self.max_length))
        return logits, hidden, None


class _MaskedScoring:
    """Quality of a masked LM: scored on the masked positions of fixed, seeded masked batches
    (``_batches(eval_set)``: ``(masked input_ids (B, L), attention_mask (B, L), labels (B, L))``,
    -100 off the masked tokens), so ``accuracy`` is masked-token top-1, ``eval_loss`` the MLM
    eval loss (nats) and ``kl_fp32`` is over the vocabulary."""

    triple_loss = True
    per_class = False

    def _batches(self, eval_set: str) -> list[mlm.Batch]:
        raise NotImplementedError

    def timing_pool(self, model, batch_size, length):
        # Distinct inputs as for classification; examples are not tracked because the
        # accuracy pass scores masked positions, not whole texts.
        return super().timing_pool(model, batch_size, length)[0], None

    def labels(self, eval_set):
        return torch.cat([labels[labels != -100] for _, _, labels in self._batches(eval_set)])

    def eval_rows(self, eval_set):
        return None  # rows are masked positions, not examples

    def logits(self, model, eval_set):
        return mlm.masked_logits(model, self._batches(eval_set))[0]

    def triple_loss_inputs(self, model, n):
        logits, labels, hidden = mlm.masked_logits(model, self._batches(self.eval_sets[0]), hidden=True)
        return logits, hidden, labels


class MLMTask(_MaskedScoring, TextTask):
    """Masked-token prediction on IMDB reviews (:mod:`harness.models.mlm`): study 001's MLM eval loss.

    Timing inputs are the text task's (real IMDB tokens); quality is scored on the masked
    positions of ``imdb-mlm`` (256 reviews, never cut by ``eval_limit``).
    """

    name = "mlm"
    eval_sets = ("imdb-mlm",)

    def _batches(self, eval_set: str):
        if eval_set != "imdb-mlm":
            raise self._unknown(eval_set)
        return mlm.eval_batches()

    def training_context(self, batch_size: int = 16, max_length: int = 128):
        """Training data for data-dependent compressors on the MLM model (head importance, recovery
        fine-tuning): the MLM head's training reviews (:func:`harness.models.mlm.train_batches`) as
        ``(masked input_ids (B, L), attention_mask (B, L), labels (B, L))`` batches, -100 where
        nothing is masked, so the model's own loss for ``labels`` is the MLM loss.  No EdgeMIN
        student (its recipe distils a classifier)."""
        return CompressionContext(lambda: mlm.train_batches(batch_size, max_length), seed=42)


_SPLITS: dict[tuple, dict[str, text.TextDataset]] = {}
_TOKENIZERS: dict[str, Any] = {}
_DECODED: dict[tuple, tuple[Any, images.ImageDataset]] = {}


def user_splits(name: str, source: files.TextSource) -> dict[str, text.TextDataset]:
    """:func:`harness.data.files.load_splits` of ``source``, read once per version of its files."""
    paths = [source.path] if source.path is not None else list(source.files.values())
    stamp = tuple((str(p), p.stat().st_mtime_ns if p.exists() else None) for p in paths)
    key = (name, repr(source), stamp)
    if key not in _SPLITS:
        _SPLITS[key] = files.load_splits(name, source)
    return _SPLITS[key]


def user_tokenizer(model: Any) -> Any:
    """The tokenizer of a project-file model (``harness.models.project.ModelSpec``): its
    ``tokenizer`` folder, else its ``hf_dir``, else (a random-init architecture) all-MiniLM-L6-v2's."""
    from harness.models import hf

    folder = model.tokenizer or model.hf_dir
    if folder is None:
        return text.load_tokenizer()
    if str(folder) not in _TOKENIZERS:
        _TOKENIZERS[str(folder)] = hf.load_tokenizer(folder, model.where)
    return _TOKENIZERS[str(folder)]


class LabelledTextTask(TextTask):
    """A user's labelled text (issue 18): classification, or sentence-pair classification when the
    data name a ``text_pair`` column, on the test split of each evaluation set of the profile.

    Timing rows are the primary set's test texts with at least ``length - 2`` tokens, truncated to
    exactly ``length`` (as for IMDB, so the timed logits are checked against the accuracy pass);
    when fewer than a batch of texts are that long (short sentences), the test texts' tokens are
    concatenated and cut into full rows instead (mask all ones; such rows are not tracked).  Sentence
    pairs are timed as single rows of the same length (same shapes and compute).  Quality, fine-tuning
    and head importance use the model's own tokenizer.
    """

    name = "text-classification"

    def __init__(self, profile: str, model: Any, evals: tuple[tuple[str, files.TextSource], ...],
                 max_length: int = 128) -> None:
        self.profile = profile
        self.model_spec = model
        self.sources = dict(evals)
        self.eval_sets = tuple(self.sources)
        self.max_length = max_length

    def tokenizer(self) -> Any:
        return user_tokenizer(self.model_spec)

    def splits(self, eval_set: str) -> dict[str, text.TextDataset]:
        if eval_set not in self.sources:
            raise self._unknown(eval_set)
        found = user_splits(eval_set, self.sources[eval_set])
        if isinstance(found["test"], files.ImageFiles):
            raise HarnessError(f"{self.sources[eval_set].where}: a text profile needs labelled text (.csv/.tsv/"
                               f".jsonl or class folders of .txt files), not an image folder")
        return found

    def _full(self, eval_set: str):
        return self.splits(eval_set)["test"]

    def check_data(self):
        for name in self.eval_sets:
            self.splits(name)
        self.tokenizer()

    def _token_rows(self) -> tuple[tuple[tuple[int, ...], ...], int, int]:
        tok = self.tokenizer()
        ds = self._full(self.eval_sets[0])
        ids = tok(list(ds.texts), add_special_tokens=False, truncation=True, max_length=510)["input_ids"]
        cls_id = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        sep_id = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
        return tuple(tuple(row) for row in ids), cls_id, sep_id

    def inputs(self, model, batch_size, length):
        return self.timing_pool(model, batch_size, length)[0][0]

    def timing_pool(self, model, batch_size, length):
        rows, cls_id, sep_id = self._token_rows()
        if self._full(self.eval_sets[0]).text_pairs is None:
            try:
                return text_batches(batch_size, length, POOL, reviews=rows, cls_id=cls_id, sep_id=sep_id)
            except ValueError:
                pass  # too few long texts: packed rows below
        stream = tuple(t for row in rows for t in row)
        body = length - 2
        if not stream:
            raise HarnessError(f"profile {self.profile}: the test split of {self.eval_sets[0]} has no tokens")
        need = body * batch_size
        stream = stream * (need // len(stream) + 1) if len(stream) < need else stream  # tiny sets repeat
        count = max(1, min(POOL, len(stream) // need))
        return [text_batch(batch_size, length, stream[k * need:(k + 1) * need], cls_id, sep_id)
                for k in range(count)], None

    def training_context(self, batch_size: int = 16, max_length: int = 128):
        """The primary set's train split as ``(input_ids (B, L), attention_mask (B, L), labels (B,))``
        batches (head importance, recovery fine-tuning); no EdgeMIN student (DistilBERT only)."""
        train = self.splits(self.eval_sets[0])["train"]
        if len(train) == 0:
            return None

        def train_batches():
            return text.batches(train, self.tokenizer(), batch_size, max_length)

        return CompressionContext(train_batches, seed=42)


class MaskedTextTask(_MaskedScoring, LabelledTextTask):
    """A user's masked language model on a user's texts (issue 18, ``task = "masked-lm"``).

    The data are read without labels (a ``.txt`` file of one text per line, or the text column of
    a CSV/TSV/JSONL file).  Quality is scored on the test split of each evaluation set, masked as
    BERT does (15% of the real tokens, 80/10/10, the model's own tokenizer and mask token, seed
    :data:`harness.models.mlm.EVAL_SEED`, ``max_length`` tokens); ``eval_limit`` keeps evenly spaced
    texts.  Timing rows are the primary set's test texts as for :class:`LabelledTextTask`.
    Data-dependent compressors train on the primary set's train split masked the same way under
    seed 42 (never the evaluation masks).
    """

    name = "masked-lm"
    mask_prob = mlm.MLMRecipe().mask_prob

    def __init__(self, profile: str, model: Any, evals: tuple[tuple[str, files.TextSource], ...],
                 max_length: int = 128) -> None:
        super().__init__(profile, model, tuple((n, dataclasses.replace(s, label=None)) for n, s in evals), max_length)
        self._masked: dict[tuple, list[mlm.Batch]] = {}

    def check_data(self):
        super().check_data()
        if self.tokenizer().mask_token_id is None:
            raise HarnessError(f"{self.model_spec.where}: the tokenizer has no mask token, so no masked-LM "
                               f"inputs can be made; give the tokenizer the model was trained with")

    def _masked_texts(self, key: tuple, texts: Callable[[], tuple[str, ...]], batch_size: int, max_length: int,
                      seed: int) -> list[mlm.Batch]:
        """``texts()`` masked under ``seed``, once per ``key`` (a task's data do not change while it lives)."""
        if key not in self._masked:  # every variant is scored on the same masks (callers must not modify them)
            self._masked[key] = mlm.masked_batches(list(texts()), self.tokenizer(), batch_size, max_length,
                                                   self.mask_prob, seed)
        return self._masked[key]

    def _batches(self, eval_set: str):
        return self._masked_texts(("eval", eval_set), lambda: self.dataset(eval_set).texts, 16, self.max_length,
                                  mlm.EVAL_SEED)

    def training_context(self, batch_size: int = 16, max_length: int = 128):
        """The primary set's train split as masked ``(input_ids (B, L), attention_mask (B, L),
        labels (B, L))`` batches (the model's own loss for ``labels`` is the MLM loss); None when
        the split is empty.  No EdgeMIN student (its recipe distils a classifier)."""
        train = self.splits(self.eval_sets[0])["train"]
        if len(train) == 0:
            return None
        return CompressionContext(lambda: self._masked_texts(("train", batch_size, max_length), lambda: train.texts,
                                                             batch_size, max_length, 42), seed=42)


def min_image_size(config: Any) -> int:
    """Smallest square input a config can take: for ConvNeXt the stem's stride ``patch_size``
    then a stride-2 (kernel-2) downsampling before every stage after the first, so
    ``patch_size * 2**(stages - 1)`` pixels; for ViT its ``image_size`` (position embeddings are
    learnt for that grid)."""
    if not hasattr(config, "hidden_sizes"):
        return int(config.image_size)
    return int(config.patch_size) * 2 ** (len(config.hidden_sizes) - 1)


def check_image_input(config: Any, pixel_values: torch.Tensor, what: str = "input") -> None:
    """Raise HarnessError unless ``pixel_values`` (B, C, H, W) fits ``config``
    (ConvNeXt-style: ``num_channels``, ``patch_size``, ``hidden_sizes``)."""
    if pixel_values.ndim != 4:
        raise HarnessError(f"{what} has shape {tuple(pixel_values.shape)}; images must be (batch, channels, height, width)")
    channels = int(config.num_channels)
    if pixel_values.shape[1] != channels:
        raise HarnessError(f"{what} has {pixel_values.shape[1]} channel(s) but the model takes {channels}: "
                           f"give {channels}-channel images (num_channels in the profile's config)")
    low = min_image_size(config)
    if min(pixel_values.shape[2:]) < low:
        raise HarnessError(f"image size {tuple(pixel_values.shape[2:])} is too small: this model needs at least "
                           f"{low}×{low} pixels")
    if not hasattr(config, "hidden_sizes") and tuple(pixel_values.shape[2:]) != (low, low):
        raise HarnessError(f"image size {tuple(pixel_values.shape[2:])}: a ViT is measured at its image_size "
                           f"{low}×{low} only; set the profile's seq_lengths = [{low}]")


class ImageTask(Task):
    """10-class Fashion-MNIST classification (study 004's task, on FMNIST not CIFAR-10)."""

    name = "image"
    length_axis = "image_size"
    length_tag = "img"
    eval_sets = ("fmnist-test", "fmnist-edge20")

    def __init__(self, train_batch: int = 128, train_size: int | None = None) -> None:
        self.train_batch = train_batch
        self.train_size = train_size

    @staticmethod
    def resize(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
        """(N, 1, 28, 28) -> (N, ``channels``, size, size): bilinear resize, the gray
        channel repeated (a 3-channel model sees a gray RGB image)."""
        if images.shape[-1] != size:
            images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear",
                                                     align_corners=False)
        return images.expand(-1, channels, -1, -1).contiguous() if channels != images.shape[1] else images

    def _config(self, model: nn.Module | None) -> Any:
        config = getattr(model, "config", None)
        if config is None or not hasattr(config, "num_channels"):
            raise HarnessError("the image task needs a model with a ConvNeXt- or ViT-style config (num_channels, "
                               "patch_size)")
        return config

    def inputs(self, model, batch_size, length):
        if batch_size < 1:
            raise HarnessError(f"batch size {batch_size} must be >= 1")
        config = self._config(model)
        low = min_image_size(config)
        if length < low:
            raise HarnessError(f"image size {length} is too small: this model needs at least {low}×{low} pixels")
        if int(config.num_channels) not in (1, 3):
            raise HarnessError(f"the model takes {config.num_channels} channels; Fashion-MNIST images can be "
                               f"given as 1 (gray) or 3 (gray repeated) channels only")
        return self._batch(model, batch_size, length, 0)

    def test_set(self, model: nn.Module | None = None) -> images.ImageDataset:
        """The images timing batches are cut from: the Fashion-MNIST test split."""
        return images.fashion_mnist("test")

    def _batch(self, model, batch_size: int, length: int, k: int) -> dict[str, torch.Tensor]:
        """Batch ``k``: test images ``[k * batch_size, (k + 1) * batch_size)``, resized."""
        config = self._config(model)
        test = self.test_set(model)
        if batch_size > len(test):
            raise HarnessError(f"batch size {batch_size} exceeds the {len(test)} test images")
        pixels = self.resize(test.images[k * batch_size:(k + 1) * batch_size], length, int(config.num_channels))
        check_image_input(config, pixels)
        return {"pixel_values": pixels}

    def timing_pool(self, model, batch_size, length):
        """Up to ``POOL`` distinct batches of consecutive test images (disjoint), like the
        text task's distinct reviews; examples are not tracked (the logit check is IMDB's)."""
        first = self.inputs(model, batch_size, length)  # validates sizes once
        count = max(1, min(POOL, len(self.test_set(model)) // batch_size))
        return [first] + [self._batch(model, batch_size, length, k) for k in range(1, count)], None

    def check_data(self):
        images.check_installed()

    def dataset(self, eval_set: str):
        if eval_set == "fmnist-test":
            return self._limited(images.fashion_mnist("test"))
        if eval_set == "fmnist-edge20":
            return images.edge_samples(20)  # already a fixed 20-image smoke set
        raise self._unknown(eval_set)

    def labels(self, eval_set):
        return self.dataset(eval_set).labels

    @torch.inference_mode()
    def logits(self, model, eval_set, batch_size: int = 256):
        config = self._config(model)
        size = int(getattr(config, "image_size", 28))
        out = []
        for x, _ in images.batches(self.dataset(eval_set), batch_size):
            x = self.resize(x, size, int(config.num_channels))
            check_image_input(config, x, what=eval_set)
            out.append(model(pixel_values=x).logits.float())
        return torch.cat(out)

    def training_context(self):
        """Fashion-MNIST train batches ``(pixel_values (B, 1, 28, 28), labels (B,))``
        in a fixed shuffled order (seed 42) for recovery fine-tuning."""
        def train_batches():
            ds = images.fashion_mnist("train")
            if self.train_size is not None:
                ds = ds.subset(range(min(self.train_size, len(ds))))
            order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(42))
            return images.batches(ds, self.train_batch, order)

        return CompressionContext(train_batches, seed=42)


class LabelledImageTask(ImageTask):
    """A user's image folder (issue 18): classification on the test split of each evaluation set,
    decoded by :func:`harness.data.files.decode_images` at the model's ``image_size`` with its image
    processor's rescale factor and mean/std (``preprocessor_config.json`` in the model folder; none:
    pixels / 255).  Timing batches are those test images resized to each measured size."""

    name = "image-classification"

    def __init__(self, profile: str, model: Any, evals: tuple[tuple[str, files.TextSource], ...],
                 train_batch: int = 32) -> None:
        super().__init__(train_batch=train_batch)
        self.profile = profile
        self.model_spec = model
        self.sources = dict(evals)
        self.eval_sets = tuple(self.sources)

    def _processor(self) -> dict[str, Any]:
        import json

        folder = self.model_spec.hf_dir
        path = folder / "preprocessor_config.json" if folder is not None else None
        if path is None or not path.is_file():
            return {}
        try:
            return json.loads(path.read_text())
        except ValueError as e:
            raise HarnessError(f"{path} is not JSON ({e}); save the image processor with save_pretrained") from None

    def _model_config(self) -> Any:
        import transformers

        if self.model_spec.hf_dir is None:
            raise HarnessError(f"profile {self.profile}: an image-classification profile needs an hf_dir model")
        return transformers.AutoConfig.from_pretrained(str(self.model_spec.hf_dir), local_files_only=True)

    def split(self, eval_set: str, split: str) -> images.ImageDataset:
        if eval_set not in self.sources:
            raise self._unknown(eval_set)
        found = user_splits(eval_set, self.sources[eval_set])[split]
        if not isinstance(found, files.ImageFiles):
            raise HarnessError(f"{self.sources[eval_set].where}: an image-classification profile needs a "
                               f"folder of class-named subfolders of images")
        config, proc = self._model_config(), self._processor()
        mean, std = (proc.get("image_mean"), proc.get("image_std")) if proc.get("do_normalize", True) else (None, None)
        # Decoded once per process, not per task object (the session makes a task per call); the
        # split object is the cached one of user_splits, so its id stands for its files' version.
        size, channels, rescale = int(config.image_size), int(config.num_channels), float(proc.get("rescale_factor", 1 / 255))
        key = (id(found), size, channels, str(mean), str(std), rescale)
        if key not in _DECODED:
            pixels, labels = files.decode_images(found, size, channels, mean, std, rescale)
            _DECODED[key] = (found, images.ImageDataset(found.name, pixels, labels))  # found kept: its id stays
        return _DECODED[key][1]

    def test_set(self, model=None):
        return self.split(self.eval_sets[0], "test")

    def check_data(self):
        for name in self.eval_sets:
            self.split(name, "test")

    def dataset(self, eval_set: str):
        return self._limited(self.split(eval_set, "test"))

    def training_context(self):
        """The primary set's train split as ``(pixel_values (B, C, H, W), labels (B,))`` batches in a
        fixed shuffled order (seed 42), for recovery fine-tuning; None when it is empty."""
        train = self.split(self.eval_sets[0], "train")
        if len(train) == 0:
            return None

        def train_batches():
            order = torch.randperm(len(train), generator=torch.Generator().manual_seed(42))
            return images.batches(train, self.train_batch, order)

        return CompressionContext(train_batches, seed=42)


def eval_suffix(eval_set: str) -> str:
    """Row-key suffix of a quality result: "" for a task's primary set
    (``accuracy``), ``"_mr"`` for MR, ``"_edge20"`` for the 20 edge samples."""
    if any(task().eval_sets[0] == eval_set for task in TASKS.values()):
        return ""
    return {"mr": "_mr", "fmnist-edge20": "_edge20"}.get(eval_set, "_" + eval_set.replace("-", "_"))


TASKS: dict[str, Callable[[], Task]] = {"text": TextTask, "mlm": MLMTask, "image": ImageTask}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]()
    except KeyError:
        raise HarnessError(f"unknown task '{name}'; known tasks: {', '.join(TASKS)}") from None
