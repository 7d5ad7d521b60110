"""Run-wide state of one benchmark session: variants built once, loaded once.

The suite asks this object for a variant's folder (built and cached on disk on
first use), the loaded model (what is timed is what was saved), input batches
and the FP32 reference logits for quality metrics.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from . import variants
from .profiles import get_profile


def default_threads() -> int:
    """Physical cores: one intra-op thread per core, no SMT siblings."""
    import os

    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def training_context(batch_size: int = 16, max_length: int = 128):
    """Training batches for data-dependent compressors (head importance,
    recovery fine-tuning): the IMDB train split, tokenised lazily on each call."""
    from compressors import CompressionContext

    from . import data

    def train_batches():
        return data.batches(data.imdb_splits()["train"], data.load_tokenizer(), batch_size, max_length)

    return CompressionContext(train_batches, seed=42)


@dataclasses.dataclass
class Case:
    """One (profile, variant) pair of the suite."""

    profile: str
    variant: str

    @property
    def id(self) -> str:
        return f"{self.profile}-{self.variant}"


class BenchSession:
    def __init__(self, threads: int, log=print) -> None:
        self.threads = threads
        self.log = log
        self._dirs: dict[tuple[str, str], Path] = {}
        self._models: dict[tuple[str, str], tuple[nn.Module, variants.VariantInfo]] = {}
        self._logits: dict[tuple[str, str, str], torch.Tensor] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="edgebench-")
        # Every measurement's extra_info (+ raw samples in seconds), for the gate.
        self.results: list[dict[str, Any]] = []
        torch.set_num_threads(threads)

    def record(self, extra_info: dict[str, Any], samples_s: list[float] | None = None) -> None:
        self.results.append({**extra_info, "samples_s": list(samples_s or [])})

    def close(self) -> None:
        self._tmp.cleanup()

    def variant_dir(self, case: Case) -> Path:
        key = (case.profile, case.variant)
        if key not in self._dirs:
            prof = get_profile(case.profile)
            self._dirs[key] = variants.get_or_build(
                prof.name, case.variant, prof.source_key(), prof.load_fp32, log=self.log,
                context=self.context(case.profile))
        return self._dirs[key]

    def model(self, case: Case) -> tuple[nn.Module, variants.VariantInfo]:
        key = (case.profile, case.variant)
        if key not in self._models:
            self._models[key] = variants.load_variant(self.variant_dir(case))
        return self._models[key]

    def task(self, profile: str):
        """The profile's :class:`harness.tasks.Task` (text or image)."""
        from .tasks import get_task

        return get_task(get_profile(profile).task)

    def context(self, profile: str):
        """Training data for data-dependent compressors: the task's training set
        for a real-weights profile; None for random-init ones (recovering random
        weights measures nothing, so their variants are pruned one-shot)."""
        prof = get_profile(profile)
        if prof.task == "text":
            return training_context()
        return self.task(profile).training_context() if prof.real_weights else None

    def inputs(self, batch_size: int, seq_len: int, case: Case | None = None) -> dict[str, torch.Tensor]:
        """Timing inputs of ``case``'s task: ``seq_len`` is the task's length axis
        (tokens for text, pixels per side for images).  Without ``case``: text."""
        if case is None or get_profile(case.profile).task == "text":
            from .inputs import text_batch

            return text_batch(batch_size, seq_len)
        model, _ = self.model(Case(case.profile, "fp32"))  # the input shape is the baseline's
        return self.task(case.profile).inputs(model, batch_size, seq_len)

    def inputs_file(self, batch_size: int, seq_len: int, case: Case | None = None) -> Path:
        tag = "" if case is None else f"{case.profile}-"
        path = Path(self._tmp.name) / f"inputs-{tag}{batch_size}x{seq_len}.pt"
        if not path.exists():
            torch.save(self.inputs(batch_size, seq_len, case), path)
        return path

    def logits(self, case: Case, dataset: str) -> torch.Tensor:
        """(N, C) logits of ``case`` on the task's evaluation set ``dataset``."""
        key = (case.profile, case.variant, dataset)
        if key not in self._logits:
            model, _ = self.model(case)
            self._logits[key] = self.task(case.profile).logits(model, dataset)
        return self._logits[key]

    def labels(self, case: Case, dataset: str) -> torch.Tensor:
        """(N,) int64 labels of the task's evaluation set ``dataset``."""
        return self.task(case.profile).labels(dataset)

    def dataset(self, name: str) -> Any:
        from .tasks import TextTask

        return TextTask().dataset(name)
