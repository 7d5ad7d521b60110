"""The backend protocol: how a saved variant is loaded and run, nothing else.

A backend (optimum-benchmark's design) is a small adapter between the suite's
metrics and one inference runtime.  The metrics code -- latency, throughput,
cold start, peak RSS, quality -- only ever calls :meth:`Backend.load` and the
returned :class:`Runner`, so every number is measured the same way on every
backend:

* :meth:`Backend.unsupported` -- why a variant cannot run on this backend
  (``None`` when it can), for a clear skip instead of a silent hole;
* :meth:`Backend.prepare` -- the artifact folder on disk (built and cached on
  first use: for PyTorch the saved variant, for ONNX Runtime the exported,
  possibly ORT-quantized ``model.onnx``);
* :meth:`Backend.import_runtime` -- the heavy imports, timed apart from the
  load by the cold-start worker;
* :meth:`Backend.load` -- a :class:`Runner` ready to run batches.
"""
from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

Inputs = dict[str, torch.Tensor]
"""``{"input_ids": (B, S) int64, "attention_mask": (B, S) int64}``."""


class Runner(Protocol):
    """A loaded model.  ``runner(inputs)`` returns float32 logits (B, C).

    Attributes:
        backend: the backend's name (``"torch"``, ``"onnxruntime"``).
        size_bytes: bytes of the weights file it was loaded from.
        weights_file: that file's name; ``weights_sha256`` its checksum.
        threads: intra-op threads the runtime uses.
    """

    backend: str
    size_bytes: int
    weights_file: str
    weights_sha256: str
    threads: int

    def __call__(self, inputs: Inputs) -> torch.Tensor: ...

    def session_info(self) -> dict[str, Any]:
        """Runtime settings to record with every result (threads, provider, ...)."""
        ...


class Backend(abc.ABC):
    """One inference runtime.  Subclasses set ``name`` and implement the methods."""

    name: str

    def unsupported(self, variant: str, task: str = "text") -> str | None:
        """Why ``variant`` of a ``task`` profile cannot run here (one line naming the supported path), or None."""
        return None

    @abc.abstractmethod
    def prepare(self, profile: str, variant: str, torch_dir: Callable[[str], Path]) -> Path:
        """The artifact folder of ``variant``, built and cached if needed.

        ``torch_dir(variant_name)`` returns the saved PyTorch variant folder
        (``harness.backends.variants.get_or_build``), which every backend starts from.

        Raises:
            HarnessError: the variant is not supported or cannot be built.
        """

    def import_runtime(self, artifact_dir: Path) -> None:
        """Import the runtime's modules (the cold-start worker's import phase)."""

    @abc.abstractmethod
    def load(self, artifact_dir: Path, threads: int, verify: bool = True) -> Runner:
        """Load the artifact, ready to run with ``threads`` intra-op threads.

        ``verify`` checks checksums (and the ONNX checker); the fresh-process
        workers pass False because the parent verified before timing.

        Raises:
            HarnessError: missing, corrupt or invalid artifact.
        """

    def source_variant(self, variant: str) -> str:
        """The PyTorch variant whose model this backend's artifact is made from
        (parameter counts and FLOPs are measured on it)."""
        return variant
