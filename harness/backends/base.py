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
* :meth:`Backend.load` -- a :class:`Runner` ready to run batches;
* :attr:`Backend.worker_inputs`, :meth:`Backend.load_worker_inputs`, :meth:`Backend.first_result`
  -- the input file and first batch of the fresh-process workers, so a runtime that does not
  need torch (onnxruntime) is measured in a process that never imports it.

torch is imported lazily here: this module is imported by every fresh worker.
"""
from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    import torch

Inputs = dict[str, "torch.Tensor"]
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

    def __call__(self, inputs: Inputs) -> "torch.Tensor": ...

    def session_info(self) -> dict[str, Any]:
        """Runtime settings to record with every result (threads, provider, ...)."""
        ...

    # Runners of artifacts other than a saved torch variant also have
    # ``artifact_facts() -> dict``: what the artifact records about itself for the static row
    # (build time, source variant, quantization engine and bits, graph node counts).


class Backend(abc.ABC):
    """One inference runtime.  Subclasses set ``name`` and implement the methods."""

    name: str
    #: suffix of the input batch file the fresh-process workers read: ``.pt`` (``torch.save``) or
    #: ``.npz`` (numpy arrays, for a runtime whose worker must not import torch)
    worker_inputs = ".pt"

    #: runs a profile whose baseline is a user's ``.onnx`` file (``Profile.onnx_file``), not a torch module
    runs_onnx_files = False

    #: the INT8 kernel an INT8 variant on this backend calls: its ceiling (harness.measure.peak.CEILINGS;
    #: a name that is not one of them is shown as given, with no fraction)
    int8_ceiling = "int8"

    def check_install(self) -> None:
        """Raise HarnessError naming the set-up step when the runtime is not installed (called before
        a suite measures anything)."""

    def unsupported(self, variant: str, task: str = "text", onnx_file: bool = False) -> str | None:
        """Why ``variant`` of a ``task`` profile (``onnx_file``: whose baseline is an ``.onnx`` file)
        cannot run here (one line naming the supported path), or None."""
        if onnx_file and not self.runs_onnx_files:
            return (f"the profile's model is an ONNX file, which the {self.name} backend cannot run: measure it "
                    f"with --backends onnxruntime")
        return None

    @abc.abstractmethod
    def prepare(self, profile: str, variant: str, torch_dir: Callable[[str], Path],
                onnx_file: Path | None = None) -> Path:
        """The artifact folder of ``variant``, built and cached if needed.

        ``torch_dir(variant_name)`` returns the saved PyTorch variant folder
        (``harness.backends.variants.get_or_build``), which every backend starts from --
        or, for a backend that :attr:`runs_onnx_files`, ``onnx_file`` is the baseline.

        Raises:
            HarnessError: the variant is not supported or cannot be built.
        """

    def import_runtime(self, artifact_dir: Path) -> None:
        """Import the runtime's modules (the cold-start worker's import phase)."""

    @abc.abstractmethod
    def load(self, artifact_dir: Path, threads: int, verify: bool = True, fingerprint: bool = False) -> Runner:
        """Load the artifact, ready to run with ``threads`` intra-op threads.

        ``verify`` checks checksums (and the ONNX checker); the fresh-process
        workers pass False because the parent verified before timing.  ``fingerprint``
        (implied by ``verify``) makes a runtime that holds its weights outside Python
        hash what it was given (``runner.loaded_sha256``), for the integrity checks of a
        timing worker whose load is not timed.

        Raises:
            HarnessError: missing, corrupt or invalid artifact.
        """

    def cold_start_cases(self, artifact_dir: Path) -> dict[str, Path]:
        """Other deployable forms of the artifact whose cold start is measured too, by label
        (onnxruntime: ``"preoptimized"``, the graph already optimised on disk); built and cached.

        Raises:
            HarnessError: a form cannot be built.
        """
        return {}

    def load_worker_inputs(self, path: Path) -> Any:
        """The batch a fresh worker runs, read from ``path`` (a :attr:`worker_inputs` file)."""
        import torch

        return torch.load(path, weights_only=True)

    def first_result(self, runner: Runner, inputs: Any) -> Any:
        """Run ``inputs`` (from :meth:`load_worker_inputs`) once on ``runner``: the logits (B, C)."""
        return runner(inputs)

    def source_variant(self, variant: str) -> str:
        """The PyTorch variant whose model this backend's artifact is made from
        (parameter counts and FLOPs are measured on it)."""
        return variant


class NumpyRunner:
    """Shared by the runners of runtimes that take numpy arrays (onnxruntime, openvino): ``runner(inputs)``
    on torch tensors, as the quality and timing code calls it, over :meth:`run_numpy`.  Subclasses set
    ``input_names`` (the graph's inputs) and implement :meth:`_run` on the complete feeds."""

    input_names: list[str]

    def __call__(self, inputs: Inputs) -> "torch.Tensor":
        import torch

        return torch.from_numpy(self.run_numpy({name: v.numpy() for name, v in inputs.items()}))

    def run_numpy(self, feeds: dict[str, Any]) -> Any:
        """Float32 logits (B, C) of ``feeds`` (``{"input_ids": (B, S) int64, "attention_mask": ...}``).
        A graph that takes ``token_type_ids`` gets zeros (segment 0) when ``feeds`` has none, as a
        BERT-family torch model defaults them (harness.data.text.encode)."""
        if "token_type_ids" in self.input_names and "token_type_ids" not in feeds:
            import numpy as np

            feeds = {**feeds, "token_type_ids": np.zeros_like(feeds["input_ids"])}
        return self._run({name: feeds[name] for name in self.input_names})

    def _run(self, feeds: dict[str, Any]) -> Any:
        raise NotImplementedError


class NumpyBackend(Backend):
    """A backend whose fresh-process workers read their batch from ``.npz`` and never import torch
    (its deployment does not)."""

    worker_inputs = ".npz"

    def load_worker_inputs(self, path: Path) -> Any:
        import numpy as np

        with np.load(path) as arrays:
            return {k: arrays[k] for k in arrays.files}

    def first_result(self, runner: Any, inputs: Any) -> Any:
        return runner.run_numpy(inputs)
