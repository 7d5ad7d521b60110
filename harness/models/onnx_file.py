"""A user's ``.onnx`` text classifier (issue 18): what edgebench can feed it and read back.

A profile whose model table says ``onnx = "…"`` is measured on ONNX Runtime as the file is.
:func:`check_user_model` checks the file against the profile before anything runs (one line per
problem, naming the model table); :func:`graph_io` is what the onnxruntime backend records of it
(input names, the logits output, the axes).  Only the ``onnx`` package is imported here: the ONNX
Runtime worker processes import this module and never torch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError

OUTPUT_NAME = "logits"
# What a user's text classifier may take: what tokenizers emit.  token_type_ids are fed as zeros
# (segment 0), as every backend gets the same two inputs (harness.data.text.encode).
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def import_onnx():
    """``onnx``, or a HarnessError naming the fix."""
    try:
        import onnx
    except ImportError:
        raise HarnessError("the onnx package is not installed: pip install the version pinned in pyproject.toml "
                           "(onnx), or run the suite with --backends torch") from None
    return onnx


def graph_io(path: Path, shown: str | None = None) -> dict[str, Any]:
    """Inputs and output of an ONNX text classifier as edgebench runs it: ``{"inputs": [names],
    "output": name, "dynamic_axes": {name: [axis names or sizes]}, "classes": int or None}``.

    Raises:
        HarnessError: not loadable, an input that is not one of :data:`TEXT_INPUTS` or not int64 of
            rank 2, or no single (B, C) float output (one named ``logits`` is taken among several).
    """
    onnx = import_onnx()
    shown = shown or str(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 -- DecodeError and friends
        raise HarnessError(f"{shown} is not a readable ONNX file ({type(exc).__name__}); give the .onnx file "
                           f"itself") from None
    weights = {t.name for t in model.graph.initializer}
    axes: dict[str, list[Any]] = {}

    def dims(value) -> list[Any]:
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in value.type.tensor_type.shape.dim]

    inputs = [i for i in model.graph.input if i.name not in weights]
    for value in inputs:
        if value.name not in TEXT_INPUTS:
            raise HarnessError(f"{shown}: input '{value.name}' is not a tokenizer output edgebench feeds "
                               f"({', '.join(TEXT_INPUTS)}); export the classifier with those input names")
        if value.type.tensor_type.elem_type != onnx.TensorProto.INT64 or len(dims(value)) != 2:
            kind = onnx.TensorProto.DataType.Name(value.type.tensor_type.elem_type).lower()
            raise HarnessError(f"{shown}: input '{value.name}' is {kind} of rank {len(dims(value))}; edgebench "
                               f"feeds int64 (batch, sequence) token ids -- export with int64 inputs")
        axes[value.name] = dims(value)
    if "input_ids" not in axes:
        raise HarnessError(f"{shown}: the graph takes no 'input_ids' input (it takes "
                           f"{', '.join(axes) or 'nothing'}); give a text classifier exported with input_ids")
    outputs = list(model.graph.output)
    named = [o for o in outputs if o.name == OUTPUT_NAME]
    if not named and len(outputs) != 1:
        raise HarnessError(f"{shown}: {len(outputs)} outputs ({', '.join(o.name for o in outputs)}) and none named "
                           f"'{OUTPUT_NAME}'; export the classifier's logits as its only or '{OUTPUT_NAME}' output")
    output = (named or outputs)[0]
    shape = dims(output)
    if len(shape) != 2 or output.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise HarnessError(f"{shown}: output '{output.name}' is not float32 logits of shape (batch, classes) "
                           f"(rank {len(shape)}); give a sequence classifier")
    axes[output.name] = shape
    return {"inputs": [i.name for i in inputs], "output": output.name, "dynamic_axes": axes,
            "classes": shape[1] if isinstance(shape[1], int) and shape[1] > 0 else None}


def check_user_model(path: Path, tokenizer_inputs: tuple[str, ...], labels: int, seq_lengths: tuple[int, ...],
                     batch_sizes: tuple[int, ...], where: str) -> dict[str, Any]:
    """Check a user's ``.onnx`` text classifier against what the profile will feed it: the graph takes
    ``attention_mask`` when its tokenizer emits one (``tokenizer_inputs``; evaluation batches are
    padded), the output has one logit per data label, and fixed axes match the profile's sequence
    lengths and batch sizes.  Returns :func:`graph_io`.

    Raises:
        HarnessError: one line naming ``where`` (the model table), the mismatch and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"{where}: onnx = {path} does not exist; give the path of the .onnx file")
    io = graph_io(path, f"{where}: {path.name}")
    if "attention_mask" in tokenizer_inputs and "attention_mask" not in io["inputs"]:
        raise HarnessError(f"{where}: {path.name} takes no attention_mask, so the padded evaluation batches its "
                           f"tokenizer makes would be scored wrong; export the classifier with an attention_mask "
                           f"input")
    classes = io["classes"]
    if classes is not None and classes != labels:
        raise HarnessError(f"{where}: {path.name} outputs {classes} logits but the data have {labels} labels; "
                           f"give the data's labels (labels = [...]) in the model's output order")
    for name in io["inputs"]:
        batch, sequence = io["dynamic_axes"][name]
        if isinstance(batch, int) and any(b != batch for b in batch_sizes):
            raise HarnessError(f"{where}: {path.name} has a fixed batch size {batch} ({name}); set the profile's "
                               f"batch_sizes = [{batch}] or export with a dynamic batch axis")
        if isinstance(sequence, int) and any(s != sequence for s in seq_lengths):
            raise HarnessError(f"{where}: {path.name} has a fixed sequence length {sequence} ({name}); set the "
                               f"profile's seq_lengths = [{sequence}] and static_length = {sequence}, or export "
                               f"with a dynamic sequence axis")
    return io
