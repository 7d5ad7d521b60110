"""Report sections of the backend axis (issue 8): PyTorch eager vs ONNX Runtime.

``harness.report.tables`` keeps its tables on each profile's reference-backend rows (torch; onnxruntime
for a profile that is an ONNX file: ``harness.results.rows.main_rows``) and
appends :func:`sections`, which read the summary rows and ``backend_sessions`` /
``latency_mean_ms`` (``harness.results.rows.backend_extras``).  Every figure comes from the saved
run; ratios are within the run (the meaningful numbers on a shared machine).

Sections (only when a backend other than torch was measured):

* **Backends side by side** -- the key metrics with a Backend column (when a row is not on its
  profile's reference backend);
* **torch vs <backend>** -- for each other runtime (``onnxruntime``, ``onnxruntime-fused``, ``openvino``),
  per variant, that backend / torch of the same variant (p50 at seq 128, throughput at batch 32,
  cold start, size, peak RSS rise);
* **Best deployable** -- per profile, every (variant, backend) whose accuracy on each eval set is
  at least :data:`ACCURACY_SHARE` of the fp32 baseline's (MLPerf's 99% quality target), fastest
  first by the in-run p50 ratio to torch fp32 at seq 128 (with its 95% CI), with size and peak RSS;
* **ONNX models (study 001)** -- Model | Size MB | Avg ms | p50 ms | p90 ms at
  batch 1, seq 128, the table study 001 reports for its ``.onnx`` files;
* the session options each backend ran with.
"""
from __future__ import annotations

from typing import Any

from harness.report.common import NA, NA_RANDOM, fmt, markdown_table, paired, pct, primary_label, ratio
from harness.results.rows import main_rows, references

SEQ = "128"
BATCH = "32"
ACCURACY_SHARE = 0.99  # of fp32's accuracy, on every eval set (MLPerf's "99% of FP32" quality target)
ACCURACY_KEYS = ("accuracy", "accuracy_mr")
ONNX_BACKENDS = {"onnxruntime": "ONNX Runtime", "onnxruntime-fused": "ONNX Runtime, transformer-fused graph"}
"""Backends that run ``.onnx`` files (study 001's ONNX table), by their section titles."""
RUNTIMES = {**ONNX_BACKENDS, "openvino": "OpenVINO", "torch-compile": "torch.compile (Inductor)"}
"""Every non-torch backend a "torch vs" section is written for."""
SHORT = {"onnxruntime": "ORT", "onnxruntime-fused": "ORT fused", "openvino": "OpenVINO", "torch-compile": "compiled"}


def backend_of(row: dict[str, Any]) -> str:
    """A row's backend (runs saved before the backend axis are all torch)."""
    return row.get("backend") or "torch"


def _acc(row: dict[str, Any], key: str) -> str:
    return NA_RANDOM if row.get("real_weights") is False else pct(row.get(key), 2)


def side_by_side(rows: list[dict[str, Any]]) -> str:
    """Key metrics of every (profile, variant, backend), with a Backend column."""
    order = sorted(rows, key=lambda r: (r["profile"], r["variant"] != "fp32", r["variant"], backend_of(r) != "torch"))
    table = [[r["profile"], r["variant"], backend_of(r), fmt(r.get("size_mb"), "{:.2f}"),
              fmt(r.get("time_to_first_result_ms")),
              fmt(r["p50_ms"].get(SEQ), "{:.2f}"), fmt(r["throughput_sps"].get(BATCH), "{:.2f}"),
              fmt(r.get("peak_rss_mb")), fmt(r.get("peak_rss_delta_mb")), _acc(r, "accuracy"), _acc(r, "accuracy_mr"),
              NA_RANDOM if r.get("real_weights") is False else fmt(r.get("agreement"), "{:.4f}")] for r in order]
    return markdown_table(table, ["Model", "Variant", "Backend", "Size MB", "First result ms (from spawn)",
                          f"p50 ms @{SEQ}",
                          f"Throughput sps @{BATCH}", "Peak RSS MB", "Peak RSS over post-import MB",
                          f"Accuracy {primary_label(rows)}", "Accuracy MR", "Agreement with torch fp32"])


def torch_vs(rows: list[dict[str, Any]], backend: str = "onnxruntime") -> str:
    """Per (profile, variant) measured on both: ``backend`` / torch of the same variant."""
    by = {(r["profile"], r["variant"], backend_of(r)): r for r in rows}
    table = []
    for (profile, variant, b), other in by.items():
        base = by.get((profile, variant, "torch"))
        if b != backend or base is None:
            continue
        fp32 = by.get((profile, "fp32", "torch"), {})
        table.append([profile, variant, fmt(base["p50_ms"].get(SEQ), "{:.2f}"), fmt(other["p50_ms"].get(SEQ), "{:.2f}"),
                      ratio(other["p50_ms"].get(SEQ), base["p50_ms"].get(SEQ)),
                      ratio(other["p50_ms"].get(SEQ), fp32.get("p50_ms", {}).get(SEQ)),
                      ratio(other["throughput_sps"].get(BATCH), base["throughput_sps"].get(BATCH)),
                      ratio(other.get("time_to_first_result_ms"), base.get("time_to_first_result_ms")),
                      ratio(other.get("cold_start_ms"), base.get("cold_start_ms")),
                      ratio(other.get("size_mb"), base.get("size_mb")),
                      ratio(other.get("peak_rss_delta_mb"), base.get("peak_rss_delta_mb"))])
    if not table:
        return ""
    b = SHORT.get(backend, backend)
    return markdown_table(table, ["Model", "Variant", f"torch p50 ms @{SEQ}", f"{b} p50 ms @{SEQ}", f"p50 {b} / torch",
                          f"p50 {b} / torch fp32", f"Throughput @{BATCH} {b} / torch", f"First result {b} / torch",
                          f"Load + first forward {b} / torch",
                          f"Size {b} / torch", f"Peak RSS rise {b} / torch"])


def _meets_accuracy(row: dict[str, Any], base: dict[str, Any]) -> bool | None:
    """Accuracy of ``row`` >= ACCURACY_SHARE x ``base``'s on every eval set both have; None when
    there is nothing to judge (random weights, or no accuracy measured)."""
    pairs = [(row.get(k), base.get(k)) for k in ACCURACY_KEYS if base.get(k) is not None]
    if row.get("real_weights") is False or not pairs or any(mine is None for mine, _ in pairs):
        return None
    return all(mine >= ACCURACY_SHARE * ref for mine, ref in pairs)


def best_deployable(rows: list[dict[str, Any]]) -> str:
    """Per profile, every (variant, backend) within the accuracy target, fastest first (see module
    docstring); a profile with random weights lists every configuration, its accuracy "n/a"."""
    table = []
    for profile, base in sorted(references(rows).items()):
        mine = []
        for r in rows:
            if r["profile"] != profile:
                continue
            meets = _meets_accuracy(r, base)
            timed = (r.get("p50_ratio") or {}).get(SEQ)
            if meets is False or (timed is None and r is not base):
                continue
            mine.append((1.0 if r is base else timed["ratio"], r, meets))
        if len(mine) < 2:  # the reference alone: nothing was faster within the target, or nothing timed
            continue
        for _, r, meets in sorted(mine, key=lambda m: m[0]):
            accuracy = " / ".join(pct(r.get(k), 2) for k in ACCURACY_KEYS if base.get(k) is not None)
            table.append([profile, r["variant"], backend_of(r),
                          "1 (reference)" if r is base else paired(r, "p50_ratio", SEQ, None, None),
                          fmt(r["p50_ms"].get(SEQ), "{:.2f}"), fmt(r.get("size_mb"), "{:.2f}"),
                          fmt(r.get("peak_rss_mb")), NA_RANDOM if meets is None and r.get("real_weights") is False
                          else accuracy or NA])
    if not table:
        return ""
    return markdown_table(table, ["Model", "Variant", "Backend", f"p50 @{SEQ} / torch fp32 [95% CI]",
                                  f"p50 ms @{SEQ}", "Size MB", "Peak RSS MB", "Accuracy per eval set"])


def onnx_models(rows: list[dict[str, Any]], means: dict[str, dict[str, float]], backend: str = "onnxruntime") -> str:
    """Study 001's ONNX table: Model | Size MB | Avg ms | p50 ms | p90 ms (batch 1, seq 128)."""
    table = [[f"{r['profile']}/{r['variant']}.onnx", fmt(r.get("size_mb"), "{:.2f}"),
              fmt(means.get(f"{r['profile']}/{r['variant']}/{backend}", {}).get(SEQ), "{:.2f}"),
              fmt(r["p50_ms"].get(SEQ), "{:.2f}"), fmt(r["p90_ms"].get(SEQ), "{:.2f}")]
             for r in rows if backend_of(r) == backend]
    return markdown_table(table, ["Model", "Size MB", "Avg ms", "p50 ms", "p90 ms"]) if table else ""


def _session_line(backend: str, info: dict[str, Any]) -> str:
    parts = [f"{k}={', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in info.items()
             if k != "quantization" and v is not None]
    return f"* `{backend}`: " + "; ".join(parts)


def sections(doc: dict[str, Any]) -> list[str]:
    """Markdown lines of the backend sections (empty when only torch was measured)."""
    rows = doc["rows"]
    if len(main_rows(rows)) == len(rows):  # every row is on its profile's reference backend
        return []
    out = ["## Backends side by side", "",
           "The same metrics through the same harness code on each backend (`--backends`); onnxruntime runs "
           "the exported `.onnx` (INT8 variants: ORT `quantize_dynamic` of the exported fp32 or pruned fp32 "
           "graph; `int8-static`: its `quantize_static`, calibrated on training inputs). Agreement is with the torch fp32 predictions.", "", side_by_side(rows), ""]
    for backend, title in RUNTIMES.items():
        vs = torch_vs(rows, backend)
        if vs:
            out += [f"## torch vs {title} (same run)", "",
                    f"Ratios {backend} / torch eager of the same variant (p50 at seq {SEQ}, batch 1; below 1 = "
                    f"{backend} better); the `/ torch fp32` column is against the torch fp32 baseline.", "", vs, ""]
    best = best_deployable(rows)
    if best:
        out += ["## Best deployable", "",
                f"Per model, every (variant, backend) whose accuracy on each eval set is at least "
                f"{ACCURACY_SHARE:.0%} of fp32's (MLPerf's quality target), fastest first by the in-run paired "
                f"p50 ratio to torch fp32 at seq {SEQ}, batch 1 (median [95% CI]; a configuration timed in no "
                "campaign with fp32 is left out).", "", best, ""]
    for backend, title in ONNX_BACKENDS.items():
        table = onnx_models(rows, doc.get("latency_mean_ms", {}), backend)
        if table:
            where = "" if backend == "onnxruntime" else f", {title}"
            out += [f"## ONNX models (study 001 style{where}): batch 1, seq {SEQ}", "", table, ""]
    sessions = doc.get("backend_sessions") or {}
    if sessions:
        out += ["Session options per backend:", "", *[_session_line(b, i) for b, i in sessions.items()], ""]
    return out
