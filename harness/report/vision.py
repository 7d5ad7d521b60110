"""The study-004 table of the vision profiles: size, params, MACs, non-zeros,
accuracy and latency of every variant, with reductions against FP32.

Study 004 (arXiv 2409.02134) reports, for ConvNeXt-Small on CIFAR-10, OTOv3
pruning + dynamic quantization at "89.7% reduction in size, 95% reduction with
number of parameters and MACs"; the table puts each ``structured@S+int8``
variant's measured reductions next to those claims.  MACs are
``flops / 2`` (``torch.utils.flop_counter``; ConvNeXt's counted ops are
convolutions and matmuls only, one MAC = two FLOPs), at batch 1 and the
profile's static image size.  ``smaller-not-faster`` marks a variant at least
10% smaller on disk whose p50 is not at least 5% below FP32's (issue 9: INT8
on a 1.2M-parameter ConvNeXt shrank the file 2.5-3× with no speed-up).

The rows come from :func:`harness.results.rows.vision_rows`;
:mod:`harness.report.summary` adds :func:`with_reductions` as ``doc["vision"]``
and :mod:`harness.report.tables` appends :func:`render_section`.
"""
from __future__ import annotations

from typing import Any

from harness.report.common import NA_RANDOM, acc_text, fmt, markdown_table, pct
from harness.results.rows import config_of

STUDY_004 = {"size": 0.897, "params": 0.95, "macs": 0.95}
SMALLER_BY, FASTER_BY = 0.10, 0.05
MISSING = "n/a"  # this table's mark for a missing figure (the other tables use common.NA)


def with_reductions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (``harness.results.rows.vision_rows``) with :func:`reductions` against
    the FP32 row of the same profile added to each (in place; returned)."""
    by = {(r["profile"], r["variant"]): r for r in rows}
    for row in rows:
        row.update(reductions(row, by.get((row["profile"], "fp32"))))
    return rows


def _reduction(value: Any, base: Any) -> float | None:
    if value is None or not base:
        return None
    return 1 - value / base


def reductions(row: dict[str, Any], base: dict[str, Any] | None) -> dict[str, Any]:
    """Fractions removed vs FP32 (``size``, ``params``, ``nonzero``, ``macs``),
    the p50 ratio at the static size, and the ``smaller-not-faster`` flag."""
    if base is None:
        return {}
    s = str(row["static_size"])
    p50, p50_base = row["p50_ms"].get(s), base["p50_ms"].get(s)
    out = {"size_reduction": _reduction(row.get("size_mb"), base.get("size_mb")),
           "params_reduction": _reduction(row.get("params"), base.get("params")),
           "nonzero_reduction": _reduction(row.get("nonzero_params"), base.get("nonzero_params")),
           "macs_reduction": _reduction(row.get("macs"), base.get("macs")),
           "p50_ratio": p50 / p50_base if p50 is not None and p50_base else None}
    smaller = (out["size_reduction"] or 0) >= SMALLER_BY
    out["smaller_not_faster"] = bool(smaller and out["p50_ratio"] is not None and out["p50_ratio"] > 1 - FASTER_BY)
    return out


def _pct(v: Any) -> str:
    return pct(v, na=MISSING)


def _num(v: Any, spec: str) -> str:
    return fmt(v, spec, na=MISSING)


def _acc(row: dict[str, Any], which: str) -> str:
    if not row["real_weights"]:
        return NA_RANDOM
    acc = row.get(f"accuracy_{which}")
    return MISSING if acc is None else acc_text(acc, row.get(f"accuracy_{which}_ci95"))


def _study_004_variant(row: dict[str, Any]) -> bool:
    """Structured pruning then INT8: the pipeline study 004 reports."""
    config = config_of(row)
    return config.chained and config.methods[0] == "structured" and config.precision == "int8"


def render_section(doc: dict[str, Any]) -> list[str]:
    """Markdown lines of the vision section (empty when the run has no image profile)."""
    rows = doc.get("vision") or []
    if not rows:
        return []
    out = ["## Vision: study-004 table (ConvNeXt, Fashion-MNIST)", "",
           "Reductions are against FP32 of the same profile in the same run; MACs at batch 1 and the "
           "profile's static image size (28 px for convnext-fmnist, 224 px for convnext-small); "
           "p50 × is latency at that size relative to FP32. INT8 FLOPs = share of MACs that run in INT8 "
           "kernels (dynamic quantization converts only Linear layers; convolutions stay FP32).", ""]
    table = []
    for r in rows:
        other = sorted((k for k in r["p50_ms"] if k != str(r["static_size"])), key=int)
        table.append([
            r["profile"], r["variant"], _num(r.get("size_mb"), "{:.2f}"), _pct(r.get("size_reduction")),
            _num(r.get("params"), "{:,}"), _pct(r.get("params_reduction")),
            _num(r.get("macs"), "{:,}"), _pct(r.get("macs_reduction")),
            _num(r.get("nonzero_params"), "{:,}"), _pct(r.get("nonzero_reduction")),
            _pct(r.get("int8_flops_fraction")),
            _acc(r, "test"), _acc(r, "edge20"),
            _num(r["p50_ms"].get(str(r["static_size"])), "{:.2f}"), _num(r.get("p50_ratio"), "{:.2f}×"),
            ", ".join(f"{k}px {r['p50_ms'][k]:.2f}" for k in other) or MISSING,
            "smaller-not-faster" if r.get("smaller_not_faster") else ""])
    out += [markdown_table(table, ["Model", "Variant", "Size MB", "Size −", "Params", "Params −", "MACs",
                                   "MACs −", "Non-zero", "Non-zero −", "INT8 FLOPs", "Accuracy [95% CI]",
                                   "Edge-20", "p50 ms", "p50 ×", "p50 ms other sizes", "Flag"]), ""]
    combined = [r for r in rows if _study_004_variant(r)]
    if combined:
        out += ["Study 004 claims 89.7% size, 95% params and 95% MACs reduction for OTOv3 + dynamic "
                "quantization on ConvNeXt-Small/CIFAR-10. Measured here:", ""]
        out += [markdown_table([[r["profile"], r["variant"], r.get("structured_pruner") or MISSING,
                           f"{_pct(r.get('size_reduction'))} vs {_pct(STUDY_004['size'])}",
                           f"{_pct(r.get('params_reduction'))} vs {_pct(STUDY_004['params'])}",
                           f"{_pct(r.get('macs_reduction'))} vs {_pct(STUDY_004['macs'])}",
                           _num(r.get("p50_ratio"), "{:.2f}×")] for r in combined],
                               ["Model", "Variant", "Structured pruner", "Size − (study)", "Params − (study)",
                                "MACs − (study)", "p50 ×"]), ""]
    return out
