"""OpenVINO backend: the exported ONNX graph converted to OpenVINO IR, compiled for the CPU plugin.

The artifact (:func:`get_or_convert`) is ``model.xml`` + ``model.bin``: ``openvino.convert_model`` of
the variant's fp32 ONNX export (:func:`harness.backends.onnx_export.get_or_export`, the same graph the
``onnxruntime`` backend runs), saved with ``compress_to_fp16=False`` so the weights stay FP32 on disk.
The build runs the converted model on a padded check batch and refuses it when its logits are more
than :data:`onnx_export.TOLERANCE` (relative) from ONNX Runtime's on the source graph.

Compiled for ``"CPU"`` with these properties, pinned and read back into every result
(``backend_session``):

* ``PERFORMANCE_HINT = LATENCY`` and ``NUM_STREAMS = 1``: one request at a time, the single-stream
  edge deployment the other backends measure;
* ``INFERENCE_NUM_THREADS`` = the run's thread count (the threads torch and ORT get);
* ``INFERENCE_PRECISION_HINT = f32``: on a CPU with AMX or AVX-512 BF16 the plugin's default is to
  run FP32 models in bf16, a precision change the variant's name does not say; pinned, so a bf16 run
  would be a labelled variant of its own.

``int8-static`` (and ``P+int8-static``) is NNCF post-training quantization of that IR
(:func:`get_or_quantize`: ``nncf.quantize`` with ``model_type=TRANSFORMER``, weights and
activations INT8, the activation ranges calibrated on ``calibration_size`` sequences of the
profile's *training* split, each at its own length up to the evaluation length; a calibration
sequence that is also an evaluation example fails the build).  The dynamic INT8 variants have no
OpenVINO equivalent here and are skipped with the reason.  The fresh-process workers read
``.npz`` batches and never import torch.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from harness.backends import calibration, onnx_export
from harness.backends.base import NumpyBackend, NumpyRunner
from harness.core import atomic, cache
from harness.core.errors import HarnessError, first_line
from harness.core.paths import cache_dir

if TYPE_CHECKING:
    import numpy as np

SCHEMA = 1
MODEL_FILE = "model.xml"
WEIGHTS_FILE = "model.bin"
META_FILE = "openvino.json"
DEVICE = "CPU"
#: compile properties (see module docstring); INFERENCE_NUM_THREADS is added per load
COMPILE = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": "f32"}
#: properties read back from the compiled model into ``backend_session``
RECORDED = ("INFERENCE_NUM_THREADS", "NUM_STREAMS", "PERFORMANCE_HINT", "INFERENCE_PRECISION_HINT",
            "EXECUTION_MODE_HINT", "ENABLE_CPU_PINNING")


def plan(variant: str):
    """``(source float variant, Int8StaticConfig or None)``: what the IR of ``variant`` is made from.

    Raises:
        HarnessError: a stage neither the ONNX export nor NNCF reproduces (one line naming the
            supported path).
    """
    import compressors
    from compressors.compose import stages as stages_of

    try:
        stages = stages_of(variant)
        config = None
        if stages[-1][0] == "int8-static":
            config = compressors.make_config(stages[-1][1])
            stages = stages[:-1]
    except compressors.CompressionError as exc:
        raise HarnessError(str(exc)) from None
    source = "+".join(spec for _, spec in stages) or "fp32"
    try:
        _, quant = onnx_export.plan(source)
    except HarnessError as exc:
        raise HarnessError(str(exc).replace("on onnxruntime", "on openvino", 1)) from None
    if quant is not None:
        raise HarnessError(f"variant '{variant}' is dynamic INT8, which OpenVINO has no equivalent of here: measure "
                           f"int8-static (NNCF, calibrated) on openvino, or {variant} on onnxruntime")
    return source, config


def import_openvino():
    """``openvino``, or a HarnessError naming the fix."""
    try:
        import openvino
    except ImportError:
        raise HarnessError("openvino is not installed: run `make install` (pip install -e . installs the pinned "
                           "openvino), or measure without --backends openvino") from None
    return openvino


def read_meta(artifact_dir: Path, verify: bool = True) -> dict[str, Any]:
    """Contents of ``openvino.json``; with ``verify`` the sha256 of ``model.xml`` and ``model.bin``.

    Raises:
        HarnessError: missing or unreadable meta, wrong schema, a missing file or a checksum mismatch.
    """
    artifact_dir = Path(artifact_dir)
    path = artifact_dir / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{artifact_dir} is not a readable OpenVINO artifact ({exc}); delete it to "
                           "re-convert") from None
    if meta.get("schema") != SCHEMA:
        raise HarnessError(f"{path} has schema {meta.get('schema')}, this harness reads {SCHEMA}; delete "
                           f"{artifact_dir} to re-convert it")
    if verify:
        for name, key in ((MODEL_FILE, "xml_sha256"), (WEIGHTS_FILE, "weights_sha256")):
            file = artifact_dir / name
            if not file.is_file():
                raise HarnessError(f"{file} is missing; delete {artifact_dir} to re-convert it")
            if atomic.sha256_file(file) != meta[key]:
                raise HarnessError(f"{file} does not match the sha256 {META_FILE} records; delete {artifact_dir} "
                                   "to re-convert it")
    return meta


def _cached(profile: str, variant: str, key: str, build: Callable[[Path], None], redo: str,
            root: Path | None, log: Callable[[str], None]) -> Path:
    """Folder of ``variant``'s IR in the openvino cache, made by ``build`` if missing; a corrupt
    one is rebuilt with one line (``redo``: "re-converting", "re-quantizing")."""
    from harness.backends.variants import folder_name  # lazy: it imports torch, which the workers never do

    return cache.get_or_build(
        root or cache_dir() / "openvino", f"{profile}/{folder_name(variant)}-{key}", load=read_meta, build=build,
        corrupt=(HarnessError,), corrupt_note=lambda folder, reason: f"{redo} {profile}/{variant} for openvino: {reason}",
        log=log).folder


def get_or_quantize(profile: str, variant: str, torch_dir: Callable[[str], Path], root: Path | None = None,
                    log: Callable[[str], None] = print, onnx_file: Path | None = None) -> Path:
    """Folder of the NNCF-quantized IR of an ``int8-static`` variant, built from the FP32 IR of its
    source variant (:func:`get_or_convert`) if not cached; keyed by that IR, the config, the
    calibration inputs and the nncf/openvino versions.

    Raises:
        HarnessError: not an int8-static variant, no calibration data (:mod:`harness.backends.calibration`),
            nncf missing or failing, a calibration sequence that is an evaluation example.
    """
    source, config = plan(variant)
    if config is None:
        raise HarnessError(f"variant '{variant}' is not an int8-static variant")
    source_dir = get_or_convert(profile, source, torch_dir, root, log, onnx_file)
    source_meta = read_meta(source_dir, verify=False)
    calib = calibration.calibration_feeds(profile, config.calibration_size)
    nncf = import_nncf()
    ov = import_openvino()
    recipe = {"source_sha256": source_meta["weights_sha256"], "config": config.to_dict(),
              "calibration_sha256": calib.sha256, "nncf": nncf.__version__, "openvino": ov.__version__,
              "schema": SCHEMA}
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]

    def build(tmp: Path) -> None:
        import logging

        start = time.perf_counter()
        calibration.check_held_out(calib)
        nncf.set_log_level(logging.ERROR)  # its per-step progress lines would flood the suite's output
        model = ov.Core().read_model(str(source_dir / MODEL_FILE))
        try:
            quantized = nncf.quantize(model, nncf.Dataset(list(calib.feeds)), subset_size=len(calib.feeds),
                                      preset=getattr(nncf.QuantizationPreset, config.preset.upper()),
                                      model_type=nncf.ModelType.TRANSFORMER)
            ov.save_model(quantized, str(tmp / MODEL_FILE), compress_to_fp16=False)
        except Exception as exc:  # noqa: BLE001 -- one line instead of NNCF's traceback
            raise HarnessError(f"nncf.quantize of {profile}/{source} failed: {first_line(exc)}") from None
        ops: dict[str, int] = {}
        for op in quantized.get_ops():
            ops[op.get_type_name()] = ops.get(op.get_type_name(), 0) + 1
        atomic.write_json(tmp / META_FILE, {
            **{k: v for k, v in source_meta.items() if k not in ("check_max_rel_diff", "build_s")},
            "variant": variant, "source_variant": source, "source_dir": str(source_dir),
            "source_sha256": source_meta["weights_sha256"],
            "xml_sha256": atomic.sha256_file(tmp / MODEL_FILE), "weights_sha256": atomic.sha256_file(tmp / WEIGHTS_FILE),
            "size_bytes": (tmp / WEIGHTS_FILE).stat().st_size + (tmp / MODEL_FILE).stat().st_size,
            "quantization": {"method": f"nncf.quantize {nncf.__version__}", "model_type": "TRANSFORMER",
                             **config.to_dict(), **calib.facts(), "fake_quantize_ops": ops.get("FakeQuantize", 0)},
            "build_s": time.perf_counter() - start})

    return _cached(profile, variant, key, build, "re-quantizing", root, log)


def import_nncf():
    """``nncf``, or a HarnessError naming the fix."""
    try:
        import nncf
    except ImportError:
        raise HarnessError("nncf is not installed: run `make install` (pip install -e . installs the pinned nncf), "
                           "or measure int8-static without --backends openvino") from None
    return nncf


def _vocab(onnx_path: Path) -> int:
    """Rows of the embedding table ``input_ids`` indexes (the first Gather on it), else 1000."""
    onnx = onnx_export.import_onnx()
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    tables = {t.name: t.dims for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Gather" and node.input[1] == "input_ids" and node.input[0] in tables:
            return int(tables[node.input[0]][0])
    return 1000


def _check(model_dir: Path, source_onnx: Path) -> float:
    """:func:`onnx_export.logit_gap` of the IR in ``model_dir`` against ORT on ``source_onnx``, on
    the padded :func:`onnx_export.check_batch`."""
    ids, mask = onnx_export.check_batch(_vocab(source_onnx), padded=True)
    ref = onnx_export.ort_logits(source_onnx, ids, mask)
    runner = OpenVino().load(model_dir, threads=1, verify=False)
    return onnx_export.logit_gap(runner.run_numpy({"input_ids": ids, "attention_mask": mask}), ref)


def get_or_convert(profile: str, variant: str, torch_dir: Callable[[str], Path], root: Path | None = None,
                   log: Callable[[str], None] = print, onnx_file: Path | None = None) -> Path:
    """Folder of the OpenVINO IR of ``variant`` (``model.xml``, ``model.bin``, ``openvino.json``),
    converted from its fp32 ONNX export if not cached; keyed by the source ONNX artifact and the
    openvino version.

    Raises:
        HarnessError: the variant has no fp32 ONNX export (:func:`onnx_export.plan`), conversion
            failed, or the converted model's logits differ from ORT's by more than :data:`onnx_export.TOLERANCE`.
    """
    source_dir = onnx_export.get_or_export(profile, variant, torch_dir, log=log, onnx_file=onnx_file)
    source = onnx_export.read_meta(source_dir, verify=False)
    ov = import_openvino()
    key = hashlib.sha256(json.dumps({"source_sha256": source["weights_sha256"], "openvino": ov.__version__,
                                     "compress_to_fp16": False, "schema": SCHEMA},
                                    sort_keys=True).encode()).hexdigest()[:12]

    def build(tmp: Path) -> None:
        start = time.perf_counter()
        try:
            model = ov.convert_model(str(source_dir / onnx_export.MODEL_FILE))
            ov.save_model(model, str(tmp / MODEL_FILE), compress_to_fp16=False)
        except Exception as exc:  # noqa: BLE001 -- one line instead of the converter's traceback
            first = first_line(exc)
            raise HarnessError(f"openvino.convert_model of {source_dir / onnx_export.MODEL_FILE} failed: {first}") from None
        meta = {"schema": SCHEMA, "profile": profile, "variant": variant, "source_variant": source.get("source_variant"),
                "source_dir": str(source_dir),
                "source_sha256": source["weights_sha256"], "converter": f"openvino.convert_model {ov.__version__}",
                "compress_to_fp16": False, "graph": source.get("graph"), "weights_file": WEIGHTS_FILE,
                "xml_sha256": atomic.sha256_file(tmp / MODEL_FILE),
                "weights_sha256": atomic.sha256_file(tmp / WEIGHTS_FILE),
                "size_bytes": (tmp / WEIGHTS_FILE).stat().st_size + (tmp / MODEL_FILE).stat().st_size,
                "quantization": None, "versions": {"openvino": ov.__version__}}
        atomic.write_json(tmp / META_FILE, meta)
        diff = _check(tmp, source_dir / onnx_export.MODEL_FILE)
        if not diff <= onnx_export.TOLERANCE:
            raise HarnessError(f"the OpenVINO IR of {profile}/{variant} gives logits {diff:.3g} (relative) away from "
                               "ONNX Runtime's on the same graph; measure it on backend onnxruntime")
        atomic.write_json(tmp / META_FILE, {**meta, "check_max_rel_diff": diff, "build_s": time.perf_counter() - start})

    return _cached(profile, variant, key, build, "re-converting", root, log)


class OvRunner(NumpyRunner):
    def __init__(self, compiled: Any, meta: dict[str, Any], threads: int, loaded_sha256: str | None) -> None:
        self.backend = "openvino"
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        #: sha256 of the weights bytes the model was read from (None: read from disk unhashed)
        self.loaded_sha256 = loaded_sha256
        self.meta, self.threads = meta, threads
        self.size_bytes = meta["size_bytes"]
        self.weights_file, self.weights_sha256 = meta["weights_file"], meta["weights_sha256"]
        self.input_names = [i.get_any_name() for i in compiled.inputs]

    def _run(self, feeds: "dict[str, np.ndarray]") -> "np.ndarray":
        self.request.infer(feeds)
        return self.request.get_output_tensor(0).data.copy()  # the request's buffer is reused by the next call

    def artifact_facts(self) -> dict[str, Any]:
        """What the IR records about itself, for the static row (see OrtRunner.artifact_facts)."""
        quant = self.meta.get("quantization")
        return {"onnx_build_s": self.meta.get("build_s"), "source_variant": self.meta.get("source_variant"),
                "quant_engine": None if quant is None else quant["method"],
                # NNCF's performance preset: symmetric per-channel weights, per-tensor activations
                "weight_granularity": None if quant is None else "per_channel",
                "activation_bits": None if quant is None else 8, "weight_bits": None if quant is None else 8,
                "fake_quantize_ops": None if quant is None else quant["fake_quantize_ops"]}

    def session_info(self) -> dict[str, Any]:
        import openvino as ov

        props = {k.lower(): str(self.compiled.get_property(k)) for k in RECORDED}
        return {"runtime": f"openvino {ov.__version__}", "device": DEVICE, "intra_op_threads": self.threads,
                **props, "converter": self.meta["converter"], "quantization": self.meta.get("quantization")}


class OpenVino(NumpyBackend):
    """OpenVINO Runtime on the CPU plugin (see module docstring)."""

    name = "openvino"
    runs_onnx_files = True
    #: no ceiling kernel of OpenVINO's INT8 (oneDNN) is measured: its rows say so instead of taking torch's
    int8_ceiling = "not measured (OpenVINO INT8)"

    def check_install(self) -> None:
        import_openvino()
        import_nncf()  # int8-static
        onnx_export.import_onnx()  # the IR is converted from the ONNX export
        onnx_export.import_onnxruntime()  # ... and checked against it

    def unsupported(self, variant: str, task: str = "text", onnx_file: bool = False) -> str | None:
        from harness.models.project import TEXT_TASKS  # here: the worker never imports torch (data.text does)

        if task not in TEXT_TASKS:
            return (f"the openvino backend converts the text encoders' ONNX export only; measure {task} profiles "
                    f"with --backends torch")
        try:
            plan(variant)
        except HarnessError as exc:
            return str(exc)
        return None

    def source_variant(self, variant: str) -> str:
        return plan(variant)[0]

    def prepare(self, profile: str, variant: str, torch_dir: Callable[[str], Path],
                onnx_file: Path | None = None) -> Path:
        if plan(variant)[1] is not None:
            return get_or_quantize(profile, variant, torch_dir, onnx_file=onnx_file)
        return get_or_convert(profile, variant, torch_dir, onnx_file=onnx_file)

    def import_runtime(self, artifact_dir: Path) -> None:
        import_openvino()

    def load(self, artifact_dir: Path, threads: int, verify: bool = True, fingerprint: bool = False) -> OvRunner:
        ov = import_openvino()
        artifact_dir = Path(artifact_dir)
        meta = read_meta(artifact_dir, verify=False)
        loaded_sha = None
        try:
            xml = (artifact_dir / MODEL_FILE).read_bytes()
            weights = (artifact_dir / WEIGHTS_FILE).read_bytes()
        except OSError as exc:
            raise HarnessError(f"cannot read {artifact_dir} ({exc.strerror}); delete it to re-convert") from None
        if verify or fingerprint:
            # The model is read from the very bytes that are hashed (as onnxruntime's session is).
            loaded_sha = hashlib.sha256(weights).hexdigest()
            if verify and (loaded_sha != meta["weights_sha256"] or hashlib.sha256(xml).hexdigest() != meta["xml_sha256"]):
                raise HarnessError(f"{artifact_dir} does not match the sha256 {META_FILE} records; delete it to "
                                   "re-convert it")
        import numpy as np

        try:
            core = ov.Core()
            model = core.read_model(model=xml.decode(), weights=ov.Tensor(np.frombuffer(weights, np.uint8)))
            compiled = core.compile_model(model, DEVICE, {**COMPILE, "INFERENCE_NUM_THREADS": threads})
        except Exception as exc:  # noqa: BLE001 -- OpenVINO raises its own exception types
            first = first_line(exc)
            raise HarnessError(f"openvino cannot load {artifact_dir}: {first}; delete it to re-convert") from None
        return OvRunner(compiled, meta, threads, loaded_sha)
