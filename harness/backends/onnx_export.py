"""ONNX artifacts of saved variants: export, validate, ORT-quantize, cache.

Study 001's deployment path: "quantized PyTorch models are not
straightforward to export", so the FP32 model (or the pruned FP32 model) is
exported first and ONNX Runtime quantizes the exported graph.  A variant name
maps to an ONNX recipe by :func:`plan`:

==========================  =====================================================
variant                     ONNX artifact
==========================  =====================================================
``fp32``                    export of the fp32 variant
``int8-dynamic``            export of ``fp32`` + ORT ``quantize_dynamic`` per tensor
``int8-dynamic-pc``         export of ``fp32`` + ORT ``quantize_dynamic`` per channel
``P`` (pruning, float)      export of the pruned fp32 variant ``P``
``P+int8``                  export of ``P`` + ORT ``quantize_dynamic`` per tensor
``int8-static``, ``P+...``  export of ``fp32`` / ``P`` + ORT ``quantize_static`` (QDQ),
                            calibrated on training sequences (:class:`OrtStaticQuantization`)
==========================  =====================================================

The ``onnxruntime-fused`` backend (:class:`OrtFusion`) takes the same variants through one
more step before quantization: the model is exported with eager attention (the
``sdpa`` export's graph matches none of ORT's attention patterns) and run through
``onnxruntime.transformers.optimizer.optimize_model`` (attention, EmbedLayerNormalization,
SkipLayerNormalization and bias-GELU fusions for the BERT family); its INT8 stages then
quantize the fused ``Attention`` / ``EmbedLayerNormalization`` nodes too (``QAttention``,
``QEmbedLayerNormalization``), so the same weights are INT8 as in the unfused graph.

Export choices (stated, and recorded in ``onnx.json``):

* **Exporter**: the TorchScript exporter (``torch.onnx.export(dynamo=False)``)
  at **opset 17**.  The default ``dynamo=True`` exporter also works here
  (needs onnxscript; same logits to 1e-8 on the tiny model) but takes ~4 s
  instead of ~0.2 s per export and emits opset 18 graphs; opset 17 TorchScript
  exports are what study 001 and ORT's quantization tooling have been
  exercised on (``/work/shared/SOURCES.md``: FP32 63 ms, QInt8 22 ms on
  distilbert-base).  Both ``input_ids`` and ``attention_mask`` have dynamic
  ``batch`` and ``sequence`` axes; the output ``logits`` a dynamic ``batch``.
* **Quantization**: ``onnxruntime.quantization.quantize_dynamic`` with
  ``weight_type=QInt8`` (weights signed INT8, activations dynamically
  quantized to UINT8 per batch -- ORT's U8S8 scheme), on ``MatMul`` and
  ``Gather`` nodes: ORT quantizes the embedding gathers too (which torch's
  Linear-only ``quantize_dynamic`` does not), so the file is smaller than
  torch's INT8 state dict.  ``per_channel`` follows the torch variant
  (``int8-dynamic`` per tensor, ``int8-dynamic-pc`` per output channel).
  ``reduce_range`` (7-bit weights) is chosen from this CPU's flags
  (:func:`harness.core.cpu.u8s8_saturates`): on an x86 CPU without VNNI the
  U8S8 kernels add pairs of u8 x s8 products into int16 with saturation, so
  8-bit weights give wrong sums (``tests/test_onnx.py`` feeds worst-case
  operands); with VNNI/AMX (or off x86) the full 8-bit range is exact and
  keeps more accuracy.  The setting is part of the artifact key, recorded in
  the artifact's ``onnx.json`` and in the fingerprint
  (``ort_int8_reduce_range``).

* **Static quantization** (``int8-static``): ``quantize_static`` in QDQ format, activation
  ranges from MinMax calibration on ``calibration_size`` sequences of the profile's training
  split (:mod:`harness.backends.calibration`; a sequence that is an evaluation example fails the
  build), weights signed INT8 per output channel and symmetric, activations asymmetric UINT8
  per tensor whatever the ``preset`` (which chooses NNCF's scheme): U8S8 is the operand order
  of the x86 INT8 kernels (VNNI's ``vpdpbusd`` multiplies u8 by s8) and of ORT's dynamic path,
  and signed symmetric activations would waste half their range on the non-negative ones
  (after GELU) to which NNCF gives an unsigned type.  ORT's session fuses each
  DequantizeLinear -> MatMul -> QuantizeLinear into an INT8 kernel (``QLinearMatMul``).  The
  QDQ format has no form of the fused ``Attention`` op, so ``onnxruntime-fused`` does not take it.

Every artifact is validated with ``onnx.checker`` after export and after
quantization and written atomically into a cache folder keyed by the source
variant's folder (its recipe hash) and weights sha256, the export and
quantization settings and the torch/onnx/onnxruntime versions.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from harness.core import atomic, cache, cpu
from harness.core.errors import HarnessError, first_line
from harness.core.paths import cache_dir
from harness.models.onnx_file import OUTPUT_NAME, graph_io, import_onnx

SCHEMA = 1
OPSET = 17
EXPORTER = "torch.onnx.export (TorchScript, dynamo=False)"
MODEL_FILE = "model.onnx"
META_FILE = "onnx.json"
INPUT_NAMES = ("input_ids", "attention_mask")
USER_FILE = "user's ONNX file (not exported here)"
QUANT_STAGES = ("int8-dynamic", "int8-dynamic-pc")
STATIC_STAGE = "int8-static"
STATIC_FUSED_REASON = ("variant '{variant}' is static QDQ INT8, which has no form of the fused Attention op: "
                       "measure it on backend onnxruntime (unfused) or openvino")


@dataclasses.dataclass(frozen=True)
class OrtQuantization:
    """Settings of ``onnxruntime.quantization.quantize_dynamic`` (see module docstring)."""

    weight_type: str = "QInt8"
    per_channel: bool = False
    reduce_range: bool = dataclasses.field(default_factory=cpu.u8s8_saturates)
    op_types: tuple[str, ...] = ("MatMul", "Gather")


@dataclasses.dataclass(frozen=True)
class OrtStaticQuantization:
    """Settings of ``onnxruntime.quantization.quantize_static`` for ``int8-static`` (see module
    docstring); :meth:`from_config` maps :class:`compressors.quantize.Int8StaticConfig` onto them."""

    calibration_size: int = 300
    activation_type: str = "QUInt8"
    activation_symmetric: bool = False
    weight_type: str = "QInt8"
    per_channel: bool = True
    reduce_range: bool = dataclasses.field(default_factory=cpu.u8s8_saturates)
    op_types: tuple[str, ...] = ("MatMul", "Gather")
    quant_format: str = "QDQ"
    calibrate_method: str = "MinMax"
    method: str = "quantize_static"

    @classmethod
    def from_config(cls, config: Any) -> "OrtStaticQuantization":
        # config.preset is NNCF's (see module docstring): ORT takes U8S8 for either
        return cls(calibration_size=config.calibration_size)


@dataclasses.dataclass(frozen=True)
class OrtFusion:
    """Settings of ``onnxruntime.transformers.optimizer.optimize_model`` for the
    ``onnxruntime-fused`` backend (ORT's transformer optimizer; see module docstring).

    ``model_type`` "bert" covers BERT, DistilBERT and RoBERTa graphs (ORT's own benchmark
    uses it for all three); ``opt_level`` 1 is ORT's default for it: the basic graph
    optimisations (constant folding, redundant nodes), which are the same on every CPU,
    before the fusions -- the machine-specific layout passes still run at session creation.
    The head count and hidden size are read off each model (:func:`attention_shape`); a fusion
    that moves the logits by more than :data:`TOLERANCE` fails the build.
    """

    model_type: str = "bert"
    opt_level: int = 1


#: largest logit gap (:func:`logit_gap`) a converted graph (fused, OpenVINO IR) may show on the
#: padded :func:`check_batch` against the model it was converted from: float reassociation
#: stays far below it, a wrong fusion or conversion far above
TOLERANCE = 1e-4


FUSED_QUANT_OPS = ("Attention", "EmbedLayerNormalization")


def import_onnxruntime():
    """``onnxruntime``, or a HarnessError naming the fix."""
    try:
        import onnxruntime
    except ImportError:
        raise HarnessError("onnxruntime is not installed: pip install the version pinned in pyproject.toml "
                           "(onnxruntime), or run the suite with --backends torch") from None
    return onnxruntime


def _unsupported(variant: str, why: str) -> HarnessError:
    return HarnessError(
        f"variant '{variant}' cannot run on onnxruntime: {why}; supported path: export the fp32 (or pruned fp32) "
        f"variant and quantize it with ONNX Runtime, i.e. variants fp32, int8-dynamic, int8-dynamic-pc, "
        f"int8-static, a pruning variant P, P+int8 or P+int8-static on backend onnxruntime")


def plan(variant: str) -> tuple[str, OrtQuantization | OrtStaticQuantization | None]:
    """``(source PyTorch variant to export, ORT quantization or None)`` for ``variant``.

    Raises:
        HarnessError: the variant holds a stage ONNX Runtime cannot reproduce
            (torch-quantized modules other than the INT8 dynamic stages with
            default options), naming the supported path.
    """
    # Lazy, like variants below: the backend registry imports this module in the
    # fresh onnxruntime cold-start/memory workers, whose import cost is measured.
    import compressors
    from compressors.compose import stages as stages_of

    try:
        stages = stages_of(variant)
        quant: OrtQuantization | OrtStaticQuantization | None = None
        if stages[-1][0] == STATIC_STAGE:
            quant = OrtStaticQuantization.from_config(compressors.make_config(stages[-1][1]))
            stages = stages[:-1]
        elif stages[-1][0] in QUANT_STAGES:
            cfg = compressors.make_config(stages[-1][1])
            if cfg.engine != "torch.ao" or not cfg.include_classifier:
                raise _unsupported(variant, f"INT8 options {cfg.to_dict()} have no ORT quantize_dynamic equivalent")
            quant = OrtQuantization(per_channel=cfg.per_channel)
            stages = stages[:-1]
        for name, _ in stages:
            if compressors.get(name).runtime_stage:
                raise _unsupported(variant, f"stage '{name}' (static INT8 with calibration) must be the last one")
            if name != "fp32" and not compressors.get(name).float_output:
                raise _unsupported(variant, f"stage '{name}' produces torch-quantized modules, which "
                                            "torch.onnx cannot export")
    except compressors.CompressionError as exc:
        raise HarnessError(str(exc)) from None
    return ("+".join(spec for _, spec in stages) or "fp32"), quant


def check_onnx(path: Path) -> None:
    """Validate an ONNX file with ``onnx.checker.check_model`` (full check).

    Raises:
        HarnessError: missing file or a model that fails the checker (one line,
            naming the file and how to rebuild it).
    """
    onnx = import_onnx()
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"{path} does not exist; delete {path.parent} to re-export it")
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # noqa: BLE001 -- onnx raises several types (ValidationError, DecodeError, ...)
        first = first_line(exc)
        raise HarnessError(f"{path} fails onnx.checker ({first}); delete {path.parent} to re-export it") from None


class _Logits:
    """Wraps a HF classifier so the graph's one output is the logits tensor."""

    @staticmethod
    def wrap(model):
        import torch

        class Wrapper(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask):
                return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

        # eval() on the wrapper too: the exporter restores the wrapper's training
        # flag recursively after export, which would switch dropout on in ``model``.
        return Wrapper(model).eval()


def torch_quantized(model) -> list[str]:
    """Names of modules holding torch-quantized weights (empty for a float model):
    ``torch.ao`` quantized modules and tensors that are quantized or tensor
    subclasses (torchao's quantized weights)."""
    import torch

    names = {name.rpartition(".")[0] for name, v in model.state_dict().items()
             if isinstance(v, torch.Tensor) and (v.is_quantized or type(v) not in (torch.Tensor, torch.nn.Parameter))}
    names |= {name for name, mod in model.named_modules()
              if type(mod).__module__.startswith("torch.ao.nn.quantized") and "_packed_params" not in name}
    return sorted(names)


def check_batch(vocab: int, padded: bool = False):
    """Token ids (2, 16) int64 below ``vocab`` (neither axis 1, so the tracer cannot specialise a
    broadcast on it) and their attention mask, as numpy arrays; ``padded`` masks the first row
    after 9 tokens (the batch a converted graph's logits are checked on)."""
    import numpy as np

    ids = (np.arange(32, dtype=np.int64).reshape(2, 16) * 7 + 1000) % vocab
    mask = np.ones_like(ids)
    if padded:
        mask[0, 9:] = 0
    return ids, mask


def logit_gap(got: "np.ndarray", ref: "np.ndarray") -> float:
    """max |got - ref| relative to max(1, max |ref|), for logits of the same shape."""
    import numpy as np

    return float(np.abs(got - ref).max()) / max(1.0, float(np.abs(ref).max()))


def ort_logits(path: Path, ids: "np.ndarray", mask: "np.ndarray") -> "np.ndarray":
    """Logits of the ONNX graph at ``path`` on ONNX Runtime's CPU provider for ``ids``/``mask``
    (B, L) int64; inputs the graph has but these do not name (``token_type_ids``) are zeros."""
    import numpy as np

    ort = import_onnxruntime()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    given = {"input_ids": ids, "attention_mask": mask}
    return session.run(None, {i.name: given.get(i.name, np.zeros_like(ids)) for i in session.get_inputs()})[0]


def _check_batch(vocab: int, padded: bool = False):
    """:func:`check_batch` as torch tensors."""
    import torch

    return tuple(torch.from_numpy(a) for a in check_batch(vocab, padded))


def export_model(model, out: Path, variant: str = "?", opset: int = OPSET) -> None:
    """Export a float ``DistilBertForSequenceClassification``-like model to ``out``.

    Inputs ``input_ids``/``attention_mask`` (int64, dynamic batch and sequence),
    output ``logits`` (float32, dynamic batch).  Validated with the checker.

    Raises:
        HarnessError: the model holds torch-quantized modules (names the
            supported path), the export fails, or the result fails the checker.
    """
    import torch

    quantized = torch_quantized(model)
    if quantized:
        raise HarnessError(
            f"variant '{variant}' holds torch-quantized modules ({', '.join(quantized[:3])}"
            f"{', …' if len(quantized) > 3 else ''}), which torch.onnx cannot export: export the fp32 (or pruned "
            f"fp32) variant and quantize it with ONNX Runtime (backend 'onnxruntime' does this for int8-dynamic, "
            f"int8-dynamic-pc and P+int8)")
    model = model.eval()
    ids, mask = _check_batch(int(getattr(model.config, "vocab_size", 1000)))
    dynamic = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
               OUTPUT_NAME: {0: "batch"}}
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter's deprecation and tracer warnings; the
            # logits are checked against PyTorch's in tests/test_onnx.py.
            warnings.simplefilter("ignore")
            torch.onnx.export(_Logits.wrap(model), (ids, mask), str(out), dynamo=False, opset_version=opset,
                              input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
                              dynamic_axes=dynamic, do_constant_folding=True)
    except Exception as exc:  # noqa: BLE001 -- one line instead of the exporter's traceback
        first = first_line(exc)
        raise HarnessError(f"torch.onnx.export of variant '{variant}' failed: {first}") from None
    check_onnx(out)


def attention_shape(model) -> tuple[int, int] | None:
    """``(heads, Q/K/V width)`` every encoder layer's attention has now, or None when head pruning
    left layers with different head counts or one with none (ORT's fused ``Attention`` node takes
    one head count, and the optimizer one for the whole graph), or the family is not one the
    compressors know (:mod:`compressors.architecture`)."""
    from compressors.architecture import family_of
    from compressors.errors import CompressionError

    try:
        family = family_of(model, "onnxruntime-fused")
    except CompressionError:
        return None
    layers = family.layer_list(model) or []
    counts = {family.num_heads(layer) for layer in layers}
    if len(counts) != 1 or 0 in counts:
        return None
    (heads,) = counts
    return heads, heads * family.head_size(layers[0])


def fuse_model(model, out: Path, fusion: OrtFusion, variant: str = "?") -> dict[str, Any]:
    """Export ``model`` with eager attention and write ORT's transformer-optimised graph to ``out``;
    returns what was fused (op counts, the heads and hidden size used, the logit check).

    The fused graph runs on ORT on the padded :func:`check_batch` and its logits are compared
    with ``model``'s own.

    Raises:
        HarnessError: export or optimisation failed, or the fused logits differ from the
            model's by more than :data:`TOLERANCE` (the fusion changed the maths).
    """
    import tempfile

    import torch

    try:
        model.set_attn_implementation("eager")
    except (ValueError, AttributeError) as exc:
        raise HarnessError(f"variant '{variant}' cannot switch to eager attention for the fused export: {exc}") from None
    shape = attention_shape(model)
    import_onnxruntime()
    import logging

    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions(fusion.model_type)
    options.enable_attention = shape is not None  # see attention_shape
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        export_model(model, Path(tmp) / MODEL_FILE, variant=variant)
        logging.disable(logging.WARNING)  # the optimizer logs each pattern it did not find
        try:
            optimized = optimize_model(str(Path(tmp) / MODEL_FILE), model_type=fusion.model_type,
                                       num_heads=shape[0] if shape else 0, hidden_size=shape[1] if shape else 0,
                                       optimization_options=options, opt_level=fusion.opt_level)
            optimized.save_model_to_file(str(out))
        except Exception as exc:  # noqa: BLE001 -- one line instead of the optimizer's traceback
            first = first_line(exc)
            raise HarnessError(f"onnxruntime transformer optimizer failed on variant '{variant}': {first}") from None
        finally:
            logging.disable(logging.NOTSET)
    fused = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
    check_onnx(out)
    ids, mask = _check_batch(int(getattr(model.config, "vocab_size", 1000)), padded=True)
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask).logits.float().numpy()
    diff = logit_gap(ort_logits(out, ids.numpy(), mask.numpy()), ref)
    if not diff <= TOLERANCE:
        raise HarnessError(f"the fused ONNX graph of variant '{variant}' gives logits {diff:.3g} (relative) away from "
                           f"PyTorch's (fusions {fused}); measure it on backend onnxruntime (unfused)")
    return {"fused_ops": fused, "attention_fused": shape is not None,
            "num_heads": shape[0] if shape else None, "hidden_size": shape[1] if shape else None,
            "check_max_rel_diff": diff}


def quantize_model(src: Path, out: Path, quant: OrtQuantization, fused: bool = False) -> dict[str, Any]:
    """ORT dynamic quantization of ``src`` into ``out``; returns node counts.  ``fused``: ``src`` is
    a transformer-optimised graph (:func:`fuse_model`), whose fused nodes are quantized too.

    Raises:
        HarnessError: onnxruntime missing, quantization failed, or the result
            fails the checker.
    """
    import_onnxruntime()
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    # quantize_dynamic logs "consider pre-processing" on the root logger each call;
    # ORT's shape-inference pre-processing targets static quantization, not this.
    logging.disable(logging.WARNING)
    # ORT's contrib ops (Attention, SkipLayerNormalization ...) have no type inference in the
    # quantizer: their outputs are float32, which it must be told.
    extra = {"DefaultTensorType": import_onnx().TensorProto.FLOAT} if fused else {}
    try:
        quantize_dynamic(Path(src), Path(out), weight_type=getattr(QuantType, quant.weight_type),
                         per_channel=quant.per_channel, reduce_range=quant.reduce_range,
                         op_types_to_quantize=list(quant.op_types) + (list(FUSED_QUANT_OPS) if fused else []),
                         extra_options=extra)
    except Exception as exc:  # noqa: BLE001
        first = first_line(exc)
        raise HarnessError(f"onnxruntime quantize_dynamic of {src} failed: {first}") from None
    finally:
        logging.disable(logging.NOTSET)
    check_onnx(out)
    return graph_facts(out)


def quantize_static_model(src: Path, out: Path, quant: OrtStaticQuantization, calib: Any) -> dict[str, Any]:
    """ORT static QDQ quantization of ``src`` into ``out``, activation ranges calibrated on
    ``calib`` (:class:`harness.backends.calibration.Calibration`, checked to hold no evaluation
    example); returns node counts.

    Raises:
        HarnessError: a calibration sequence is an evaluation example, onnxruntime missing,
            quantization failed, or the result fails the checker.
    """
    import logging

    import numpy as np

    from harness.backends import calibration

    calibration.check_held_out(calib)
    import_onnxruntime()
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    names = graph_io(src, str(src))["inputs"]

    class Reader(CalibrationDataReader):
        """The calibration feeds, with zeros for a graph input they do not name (token_type_ids)."""

        def __init__(self) -> None:
            self._feeds = iter(calib.feeds)

        def get_next(self):
            feed = next(self._feeds, None)
            return None if feed is None else {n: feed.get(n, np.zeros_like(feed["input_ids"])) for n in names}

    logging.disable(logging.WARNING)  # "consider pre-processing" and per-node notes on the root logger
    try:
        quantize_static(Path(src), Path(out), Reader(), quant_format=getattr(QuantFormat, quant.quant_format),
                        op_types_to_quantize=list(quant.op_types), per_channel=quant.per_channel,
                        reduce_range=quant.reduce_range, activation_type=getattr(QuantType, quant.activation_type),
                        weight_type=getattr(QuantType, quant.weight_type),
                        calibrate_method=getattr(CalibrationMethod, quant.calibrate_method),
                        extra_options={"ActivationSymmetric": quant.activation_symmetric, "WeightSymmetric": True})
    except Exception as exc:  # noqa: BLE001 -- one line instead of the quantizer's traceback
        raise HarnessError(f"onnxruntime quantize_static of {src} failed: {first_line(exc)}") from None
    finally:
        logging.disable(logging.NOTSET)
    check_onnx(out)
    return graph_facts(out)


def graph_facts(path: Path) -> dict[str, Any]:
    """Node counts of an ONNX graph: all nodes, INT8 ones by op type."""
    onnx = import_onnx()
    model = onnx.load(str(path), load_external_data=False)
    ops: dict[str, int] = {}
    for node in model.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    int8_ops = ("MatMulInteger", "DynamicQuantizeMatMul", "DynamicQuantizeLinear", "QuantizeLinear",
                "DequantizeLinear", "QAttention", "QEmbedLayerNormalization")
    return {"onnx_nodes": len(model.graph.node), "onnx_opset": max((o.version for o in model.opset_import
                                                                      if o.domain in ("", "ai.onnx")), default=None),
            "onnx_int8_ops": {k: v for k, v in ops.items() if k in int8_ops},
            "onnx_fp_matmul": ops.get("MatMul", 0) + ops.get("Gemm", 0)}


def _versions() -> dict[str, str]:
    import torch

    onnx = import_onnx()
    ort = import_onnxruntime()
    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__}


def read_meta(artifact_dir: Path, verify: bool = True) -> dict[str, Any]:
    """Contents of ``onnx.json``; with ``verify`` the model's sha256 and the checker.

    Raises:
        HarnessError: missing/unreadable meta, wrong schema, checksum mismatch,
            or a model failing the checker.
    """
    artifact_dir = Path(artifact_dir)
    meta_path = artifact_dir / META_FILE
    if not meta_path.is_file():
        raise HarnessError(f"{artifact_dir} is not an ONNX artifact (no {META_FILE}); let the suite re-export it")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise HarnessError(f"{meta_path} is unreadable ({exc}); delete {artifact_dir} to re-export it") from None
    if meta.get("schema") != SCHEMA:
        raise HarnessError(f"{meta_path} has schema {meta.get('schema')}, this harness reads {SCHEMA}; "
                           f"delete {artifact_dir} to re-export it")
    if verify:
        model = artifact_dir / MODEL_FILE
        if not model.is_file():
            raise HarnessError(f"{model} is missing; delete {artifact_dir} to re-export it")
        sha = atomic.sha256_file(model)
        if sha != meta["weights_sha256"]:
            raise HarnessError(f"{model} has sha256 {sha[:12]}… but {META_FILE} records "
                               f"{meta['weights_sha256'][:12]}…: delete {artifact_dir} to re-export it")
        if not meta.get("preoptimized"):  # ORT's fused contrib ops (com.microsoft) have no onnx.checker schema
            check_onnx(model)
    return meta


def artifact_key(profile: str, variant: str, source_dir: Path, source_sha: str,
                 quant: OrtQuantization | OrtStaticQuantization | None, fusion: OrtFusion | None = None,
                 calibration_sha256: str | None = None) -> str:
    recipe = {"profile": profile, "variant": variant, "source": Path(source_dir).name,
              "source_sha256": source_sha, "exporter": EXPORTER, "opset": OPSET,
              "quantization": None if quant is None else dataclasses.asdict(quant),
              "versions": _versions(), "schema": SCHEMA}
    if fusion is not None:  # absent, not null: the unfused artifacts keep the keys they had
        recipe["fusion"] = dataclasses.asdict(fusion)
    if calibration_sha256 is not None:
        recipe["calibration_sha256"] = calibration_sha256
    blob = json.dumps(recipe, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def get_or_export(profile: str, variant: str, torch_dir: Callable[[str], Path], root: Path | None = None,
                  log: Callable[[str], None] = print, onnx_file: Path | None = None,
                  fusion: OrtFusion | None = None) -> Path:
    """Folder of the ONNX artifact of ``variant`` (``model.onnx`` + ``onnx.json``),
    exporting (and ORT-quantizing) it if not cached; with ``fusion``, the transformer-optimised
    graph (:func:`fuse_model`) and its quantization.

    ``torch_dir(name)`` returns the saved PyTorch variant folder of ``name``
    (``harness.backends.variants.get_or_build``).  A quantized artifact is made from
    the cached FP32 artifact of its source variant.  With ``onnx_file`` (a profile whose
    baseline is a user's ``.onnx`` file, :func:`harness.models.onnx_file.check_user_model`) the FP32 artifact is that
    file, copied into the cache (external data folded in), and only ``fp32`` and the ORT
    quantization stages apply: ``torch_dir`` is never called.

    Cached through :func:`harness.core.cache.get_or_build` (one exporter per
    artifact across processes; a corrupt artifact is re-exported with one line).

    Raises:
        HarnessError: unsupported variant (see :func:`plan`), export or
            quantization failure, missing onnx/onnxruntime.
    """
    from harness.backends import calibration, variants  # lazy: see plan

    source, quant = plan(variant)
    if onnx_file is not None and source != "fp32":
        raise HarnessError(f"variant '{variant}' needs a PyTorch model: profile {profile} is an ONNX file, which "
                           f"takes fp32, int8-dynamic, int8-dynamic-pc and int8-static (ORT quantization) only")
    if onnx_file is not None and fusion is not None:
        raise HarnessError(f"profile {profile} is an ONNX file: the fused graph is exported from PyTorch with eager "
                           f"attention; measure the file on backend onnxruntime")
    static = isinstance(quant, OrtStaticQuantization)
    if static and fusion is not None:
        raise HarnessError(STATIC_FUSED_REASON.format(variant=variant))
    calib = calibration.calibration_feeds(profile, quant.calibration_size) if static else None
    root = root or cache_dir() / "onnx"
    base_meta: dict[str, Any] = {}
    if quant is not None:
        base_dir = get_or_export(profile, source, torch_dir, root, log, onnx_file, fusion)
        base_meta = read_meta(base_dir, verify=False)
        src_dir, src_sha = base_dir, base_meta["weights_sha256"]
    elif onnx_file is not None:
        src_dir, src_sha = Path(onnx_file), atomic.sha256_file(onnx_file)
    else:
        src_dir = torch_dir(source)
        src_sha = variants.read_info(src_dir, verify=False).weights_sha256
    key = artifact_key(profile, variant, src_dir, src_sha, quant, fusion, calib.sha256 if calib else None)
    name = f"{profile}/{variants.folder_name(variant)}{'-fused' if fusion else ''}-{key}"

    def build(tmp: Path) -> None:
        start = time.perf_counter()
        graph = dict(base_meta.get("graph") or {})
        fused = base_meta.get("fusion")
        if static:
            facts = quantize_static_model(src_dir / MODEL_FILE, tmp / MODEL_FILE, quant, calib)
        elif quant is not None:
            facts = quantize_model(src_dir / MODEL_FILE, tmp / MODEL_FILE, quant, fused=fusion is not None)
        elif onnx_file is not None:
            onnx = import_onnx()
            # onnx.load reads external data beside the file; the copy holds it inline, so the
            # artifact is one file whose sha256 is everything the session runs.
            onnx.save(onnx.load(str(onnx_file)), str(tmp / MODEL_FILE))
            check_onnx(tmp / MODEL_FILE)
            graph = graph_io(tmp / MODEL_FILE, str(onnx_file))
            facts = graph_facts(tmp / MODEL_FILE)
        elif fusion is not None:
            model, _ = variants.load_variant(src_dir)
            fused = {**dataclasses.asdict(fusion), "method": "onnxruntime.transformers.optimizer.optimize_model",
                     **fuse_model(model, tmp / MODEL_FILE, fusion, variant=variant)}
            facts = graph_facts(tmp / MODEL_FILE)
        else:
            model, _ = variants.load_variant(src_dir)
            export_model(model, tmp / MODEL_FILE, variant=variant)
            facts = graph_facts(tmp / MODEL_FILE)
        model_file = tmp / MODEL_FILE
        meta = {
            "schema": SCHEMA, "profile": profile, "variant": variant, "source_variant": source,
            "source_dir": str(src_dir), "source_sha256": src_sha,
            "exporter": base_meta.get("exporter", USER_FILE if onnx_file is not None else EXPORTER),
            "opset": base_meta.get("opset", facts["onnx_opset"] if onnx_file is not None else OPSET),
            "dynamic_axes": graph.get("dynamic_axes") or {"input_ids": ["batch", "sequence"],
                                                          "attention_mask": ["batch", "sequence"],
                                                          OUTPUT_NAME: ["batch"]},
            "graph": graph or None,
            "quantization": None if quant is None else {"method": "quantize_dynamic", **dataclasses.asdict(quant),
                                                        **(calib.facts() if calib else {})},
            "fusion": fused,
            "weights_file": MODEL_FILE, "weights_sha256": atomic.sha256_file(model_file),
            "size_bytes": model_file.stat().st_size, "build_s": time.perf_counter() - start,
            "versions": _versions(), "facts": facts,
        }
        atomic.write_json(tmp / META_FILE, meta)

    return cache.get_or_build(
        root, name, load=read_meta, build=build, corrupt=(HarnessError,),
        corrupt_note=lambda folder, reason: f"re-exporting {profile}/{variant} for onnxruntime: {reason}",
        log=log).folder


PREOPTIMIZED_SUFFIX = "-preoptimized"


def get_or_preoptimize(artifact_dir: Path, log: Callable[[str], None] = print) -> Path:
    """Folder of ``artifact_dir``'s model with ONNX Runtime's graph optimisations already applied
    (``SessionOptions.optimized_model_filepath`` at ``ORT_ENABLE_ALL``), cached beside it: a
    deployment that ships the optimised graph skips the optimisation at session creation, and
    the backend loads it with optimisations off (``onnx.json`` ``"preoptimized": true``).

    ORT's documentation: a model saved at ``ORT_ENABLE_ALL`` may hold layout and fused ops
    specific to the machine and build that wrote it, so the folder is keyed by the source
    artifact, which is keyed by the onnxruntime version; it is built here, on this machine.

    Raises:
        HarnessError: the source artifact is not valid, or ORT cannot write the optimised model.
    """
    artifact_dir = Path(artifact_dir)
    src_meta = read_meta(artifact_dir, verify=False)

    def build(tmp: Path) -> None:
        ort = import_onnxruntime()
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.optimized_model_filepath = str(tmp / MODEL_FILE)
        opts.log_severity_level = 3
        start = time.perf_counter()
        try:
            ort.InferenceSession(str(artifact_dir / MODEL_FILE), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 -- ORT raises its own exception types
            first = first_line(exc)
            raise HarnessError(f"onnxruntime cannot pre-optimise {artifact_dir / MODEL_FILE}: {first}") from None
        model_file = tmp / MODEL_FILE
        atomic.write_json(tmp / META_FILE, {
            **src_meta, "preoptimized": True, "preoptimized_from": str(artifact_dir),
            "graph_optimization_level_saved": "ORT_ENABLE_ALL", "weights_sha256": atomic.sha256_file(model_file),
            "size_bytes": model_file.stat().st_size, "build_s": time.perf_counter() - start})

    return cache.get_or_build(
        artifact_dir.parent, artifact_dir.name + PREOPTIMIZED_SUFFIX, load=lambda d: read_meta(d, verify=True),
        build=build, corrupt=(HarnessError,),
        corrupt_note=lambda folder, reason: f"re-optimising {artifact_dir.name} for onnxruntime: {reason}",
        log=log).folder

