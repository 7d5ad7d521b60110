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
  the optimisation runs at session creation, so it is part of cold start.

Inputs and outputs cross as zero-copy numpy views of the torch tensors.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from harness.backends import onnx_export
from harness.backends.base import Backend, Inputs
from harness.core.errors import HarnessError

GRAPH_OPT_LEVEL = "ORT_ENABLE_ALL"
PROVIDER = "CPUExecutionProvider"


class OrtRunner:
    backend = "onnxruntime"

    def __init__(self, session: Any, meta: dict[str, Any], threads: int) -> None:
        self.session = session
        self.meta = meta
        self.threads = threads
        self.size_bytes = meta["size_bytes"]
        self.weights_file = meta["weights_file"]
        self.weights_sha256 = meta["weights_sha256"]
        self._inputs = [i.name for i in session.get_inputs()]

    def __call__(self, inputs: Inputs) -> torch.Tensor:
        feeds = {name: inputs[name].numpy() for name in self._inputs}
        return torch.from_numpy(self.session.run([onnx_export.OUTPUT_NAME], feeds)[0])

    def session_info(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {"runtime": f"onnxruntime {ort.__version__}", "providers": self.session.get_providers(),
                "graph_optimization_level": GRAPH_OPT_LEVEL, "intra_op_threads": self.threads,
                "inter_op_threads": 1, "execution_mode": "ORT_SEQUENTIAL", "allow_spinning": "ORT default (on)", "opset": self.meta["opset"],
                "exporter": self.meta["exporter"], "quantization": self.meta["quantization"]}


class OnnxRuntime(Backend):
    name = "onnxruntime"

    def unsupported(self, variant: str, task: str = "text") -> str | None:
        if task != "text":  # the exporter's inputs and dynamic axes are a text encoder's
            return (f"the onnxruntime backend exports text encoders only (input_ids, attention_mask); "
                    f"measure {task} profiles with --backends torch")
        try:
            onnx_export.plan(variant)
        except HarnessError as exc:
            return str(exc)
        return None

    def source_variant(self, variant: str) -> str:
        return onnx_export.plan(variant)[0]

    def prepare(self, profile: str, variant: str, torch_dir: Callable[[str], Path]) -> Path:
        return onnx_export.get_or_export(profile, variant, torch_dir)

    def import_runtime(self, artifact_dir: Path) -> None:
        onnx_export.import_onnxruntime()

    def load(self, artifact_dir: Path, threads: int, verify: bool = True) -> OrtRunner:
        ort = onnx_export.import_onnxruntime()
        meta = onnx_export.read_meta(artifact_dir, verify=verify)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPT_LEVEL)
        opts.log_severity_level = 3  # errors only: ORT's warnings would flood the suite's output
        path = Path(artifact_dir) / onnx_export.MODEL_FILE
        try:
            session = ort.InferenceSession(str(path), opts, providers=[PROVIDER])
        except Exception as exc:  # noqa: BLE001 -- ORT raises its own exception types
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise HarnessError(f"onnxruntime cannot load {path}: {first}; delete {artifact_dir} "
                               "to re-export it") from None
        return OrtRunner(session, meta, threads)
