"""PyTorch eager backend: today's path, ``harness.backends.variants.load_variant``.

The artifact is the saved variant folder itself; running is
``model(**inputs).logits`` under ``torch.inference_mode()``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from harness.backends.base import Backend, Inputs


class TorchRunner:
    backend = "torch"

    def __init__(self, model: torch.nn.Module, info: Any) -> None:
        self.model = model
        self.info = info
        self.size_bytes = info.size_bytes
        self.weights_file = info.weights_file
        self.weights_sha256 = info.weights_sha256

    @property
    def threads(self) -> int:
        return torch.get_num_threads()

    def __call__(self, inputs: Inputs) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(**inputs).logits

    def artifact_facts(self) -> dict[str, Any]:
        """What the saved variant records about its build (``VariantInfo.facts``)."""
        return dict(self.info.facts)

    def session_info(self) -> dict[str, Any]:
        return {"runtime": f"torch {torch.__version__}", "mode": "eager, inference_mode",
                "intra_op_threads": torch.get_num_threads(), "inter_op_threads": torch.get_num_interop_threads(),
                "quantized_engine": torch.backends.quantized.engine}


class TorchEager(Backend):
    name = "torch"

    def unsupported(self, variant: str, task: str = "text", onnx_file: bool = False) -> str | None:
        import compressors
        from compressors.compose import stages

        try:
            found = stages(variant)
        except compressors.CompressionError:
            return super().unsupported(variant, task, onnx_file)  # an unknown name fails where it is built
        for name, _ in found:
            if compressors.get(name).runtime_stage:
                return (f"stage '{name}' of '{variant}' is carried out by a deployment runtime on its own graph: "
                        f"measure it with --backends onnxruntime or openvino")
        return super().unsupported(variant, task, onnx_file)

    def prepare(self, profile: str, variant: str, torch_dir: Callable[[str], Path],
                onnx_file: Path | None = None) -> Path:
        return torch_dir(variant)

    def import_runtime(self, artifact_dir: Path) -> None:
        # Lazy: the registry loads every backend module in the fresh cold-start/memory
        # workers, and an onnxruntime worker must not import variants (+ compressors).
        from harness.backends.variants import import_model_class

        import_model_class(artifact_dir)

    def load(self, artifact_dir: Path, threads: int, verify: bool = True, fingerprint: bool = False) -> TorchRunner:
        # fingerprint: nothing to do, integrity.state_sha256 hashes the loaded module itself
        from harness.backends.variants import load_variant  # lazy: see import_runtime

        torch.set_num_threads(threads)
        model, info = load_variant(artifact_dir, verify=verify)
        return TorchRunner(model, info)
