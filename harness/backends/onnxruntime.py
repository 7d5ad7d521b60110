"""ONNX Runtime backend: ``InferenceSession`` on the CPU execution provider.

The artifact is an exported (and possibly ORT-quantized) ``model.onnx``
(:mod:`harness.backends.onnx_export`).  Session options, recorded with every result:

* ``intra_op_num_threads`` = the thread count torch uses in the same run (one
  per physical core), ``inter_op_num_threads`` = 1 with sequential execution
  (a single-stream, batch-1 edge deployment, like torch eager); intra-op
  spinning left at ORT's default (on): each timed session has a worker process
  of its own (:mod:`harness.measure.interleave`), so its spinning threads no
  longer steal cores from another measurement in the same process;
* ``CPUExecutionProvider`` only;
* ``graph_optimization_level = ORT_ENABLE_ALL`` (ORT's default for
  inference: constant folding, node fusions such as attention/LayerNorm/GELU);
  the optimisation runs at session creation, so it is part of cold start.  A
  pre-optimised artifact (:func:`harness.backends.onnx_export.get_or_preoptimize`:
  the optimised graph saved to disk) loads with ``ORT_DISABLE_ALL``: the cold-start
  benchmark times both, as two labelled cases.

Inputs and outputs cross as zero-copy numpy views of the torch tensors.  The fresh-process
workers read their batch from a ``.npz`` file and call :meth:`OrtRunner.run_numpy`: an
onnxruntime cold-start or memory process never imports torch (its deployment does not).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from harness.backends import onnx_export
from harness.backends.base import NumpyBackend, NumpyRunner
from harness.core.errors import HarnessError, first_line

if TYPE_CHECKING:
    import numpy as np

GRAPH_OPT_LEVEL = "ORT_ENABLE_ALL"
PROVIDER = "CPUExecutionProvider"


def graph_level(meta: dict[str, Any]) -> str:
    """The session's graph optimisation level for an artifact: off for a pre-optimised one."""
    return "ORT_DISABLE_ALL" if meta.get("preoptimized") else GRAPH_OPT_LEVEL


class OrtRunner(NumpyRunner):
    def __init__(self, session: Any, meta: dict[str, Any], threads: int, loaded_sha256: str | None = None,
                 backend: str = "onnxruntime") -> None:
        self.backend = backend
        self.session = session
        #: sha256 of the bytes the session was created from (None: loaded unhashed, as a deployment would)
        self.loaded_sha256 = loaded_sha256
        self.meta = meta
        self.threads = threads
        self.size_bytes = meta["size_bytes"]
        self.weights_file = meta["weights_file"]
        self.weights_sha256 = meta["weights_sha256"]
        self.input_names = [i.name for i in session.get_inputs()]
        self._output = (meta.get("graph") or {}).get("output", onnx_export.OUTPUT_NAME)

    def _run(self, feeds: "dict[str, np.ndarray]") -> "np.ndarray":
        return self.session.run([self._output], feeds)[0]

    def artifact_facts(self) -> dict[str, Any]:
        """What the artifact records about itself, for the static row: build time, source variant,
        quantization (engine, granularity, bits) and the graph's node counts."""
        meta, quant = self.meta, self.meta.get("quantization")
        return {"onnx_build_s": meta.get("build_s"), "source_variant": meta.get("source_variant"),
                "quant_engine": None if quant is None else "onnxruntime/quantize_dynamic",
                "weight_granularity": None if quant is None else ("per_channel" if quant["per_channel"] else "per_tensor"),
                # U8S8: activations 8-bit per batch; weights 7-bit where the CPU has no VNNI (reduce_range)
                "activation_bits": None if quant is None else 8,
                "weight_bits": None if quant is None else (7 if quant.get("reduce_range") else 8),
                **meta.get("facts", {})}

    def session_info(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {"runtime": f"onnxruntime {ort.__version__}", "providers": self.session.get_providers(),
                "graph_optimization_level": graph_level(self.meta), "intra_op_threads": self.threads,
                "inter_op_threads": 1, "execution_mode": "ORT_SEQUENTIAL", "allow_spinning": "ORT default (on)", "opset": self.meta["opset"],
                "exporter": self.meta["exporter"], "quantization": self.meta["quantization"],
                "fusion": _fusion_line(self.meta.get("fusion"))}


def _fusion_line(fusion: dict[str, Any] | None) -> str | None:
    """What the transformer optimizer fused, in one line (None for an unfused graph)."""
    if not fusion:
        return None
    ops = ", ".join(f"{op} {n}" for op, n in sorted(fusion["fused_ops"].items()))
    heads = f"{fusion['num_heads']} heads" if fusion["attention_fused"] else "attention unfused (heads differ per layer)"
    return f"optimize_model({fusion['model_type']}, opt_level {fusion['opt_level']}; {heads}): {ops}"


class OnnxRuntime(NumpyBackend):
    name = "onnxruntime"

    runs_onnx_files = True
    int8_ceiling = "int8_ort"

    def check_install(self) -> None:
        onnx_export.import_onnx()
        onnx_export.import_onnxruntime()

    def unsupported(self, variant: str, task: str = "text", onnx_file: bool = False) -> str | None:
        from harness.models.project import TEXT_TASKS  # here: the ORT worker never imports torch (data.text does)

        if task not in TEXT_TASKS:  # the exporter's inputs and dynamic axes are a text encoder's
            return (f"the onnxruntime backend exports text classifiers only (input_ids, attention_mask -> "
                    f"logits (B, classes)); "
                    f"measure {task} profiles with --backends torch")
        try:
            source, _ = onnx_export.plan(variant)
        except HarnessError as exc:
            return str(exc)
        if onnx_file and source != "fp32":
            return (f"'{variant}' compresses a PyTorch model; an ONNX-file profile takes fp32, int8-dynamic, "
                    f"int8-dynamic-pc and int8-static (ORT quantization of the file) only")
        return None

    def source_variant(self, variant: str) -> str:
        return onnx_export.plan(variant)[0]

    def prepare(self, profile: str, variant: str, torch_dir: Callable[[str], Path],
                onnx_file: Path | None = None) -> Path:
        return onnx_export.get_or_export(profile, variant, torch_dir, onnx_file=onnx_file)

    def import_runtime(self, artifact_dir: Path) -> None:
        onnx_export.import_onnxruntime()

    def cold_start_cases(self, artifact_dir: Path) -> dict[str, Path]:
        return {"preoptimized": onnx_export.get_or_preoptimize(artifact_dir)}

    def load(self, artifact_dir: Path, threads: int, verify: bool = True, fingerprint: bool = False) -> OrtRunner:
        ort = onnx_export.import_onnxruntime()
        meta = onnx_export.read_meta(artifact_dir, verify=False)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, graph_level(meta))
        opts.log_severity_level = 3  # errors only: ORT's warnings would flood the suite's output
        path = Path(artifact_dir) / onnx_export.MODEL_FILE
        source: str | bytes = str(path)
        loaded_sha = None
        if verify or fingerprint:
            # The session is created from the very bytes that are hashed: ORT keeps the weights
            # out of Python's reach, so this is the only fingerprint of what it runs.
            try:
                source = path.read_bytes()
            except OSError as exc:
                raise HarnessError(f"cannot read {path} ({exc.strerror}); delete {artifact_dir} to re-export it") from None
            loaded_sha = hashlib.sha256(source).hexdigest()
            if verify:
                if loaded_sha != meta["weights_sha256"]:
                    raise HarnessError(f"{path} has sha256 {loaded_sha[:12]}… but {onnx_export.META_FILE} records "
                                       f"{meta['weights_sha256'][:12]}…: delete {artifact_dir} to re-export it")
                if not meta.get("preoptimized"):  # see onnx_export.read_meta
                    onnx_export.check_onnx(path)
        try:
            session = ort.InferenceSession(source, opts, providers=[PROVIDER])
        except Exception as exc:  # noqa: BLE001 -- ORT raises its own exception types
            first = first_line(exc)
            raise HarnessError(f"onnxruntime cannot load {path}: {first}; delete {artifact_dir} "
                               "to re-export it") from None
        return OrtRunner(session, meta, threads, loaded_sha, backend=self.name)


class OnnxRuntimeFused(OnnxRuntime):
    """The same runtime on ORT's transformer-optimised graph (:class:`onnx_export.OrtFusion`):
    eager-attention export, attention / LayerNorm / GELU fusions, then the variant's INT8
    stage on the fused graph.  Text encoders exported from PyTorch only."""

    name = "onnxruntime-fused"
    fusion = onnx_export.OrtFusion()

    def unsupported(self, variant: str, task: str = "text", onnx_file: bool = False) -> str | None:
        if onnx_file:
            return ("the fused graph is exported from PyTorch with eager attention; an ONNX-file profile is "
                    "measured on backend onnxruntime")
        reason = super().unsupported(variant, task)
        if reason is None and isinstance(onnx_export.plan(variant)[1], onnx_export.OrtStaticQuantization):
            return onnx_export.STATIC_FUSED_REASON.format(variant=variant)
        return reason

    def prepare(self, profile: str, variant: str, torch_dir: Callable[[str], Path],
                onnx_file: Path | None = None) -> Path:
        return onnx_export.get_or_export(profile, variant, torch_dir, onnx_file=onnx_file, fusion=self.fusion)
