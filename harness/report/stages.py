"""The compression-pipeline tables: study 002's magnitude-pruning sweep and
study 003 / EdgeMIN's stage table, from the summary rows and their
:class:`harness.results.rows.VariantConfig` (never the variant names)."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from harness.report.common import NA, Cell, Table, acc, fmt, paired, primary_label, ratio
from harness.results.rows import config_of, sweep_points


def _bare_acc(row: dict[str, Any], key: str) -> Cell:
    """The accuracy cell without its CI (the sweep table is wide)."""
    cell = acc(row, key)
    return Cell(cell.split(" [")[0], cell.raw)


def sweep_table(rows: list[dict[str, Any]], fp32: dict[str, dict[str, Any]]) -> Table | None:
    """Rows ``magnitude-{global,layerwise}@S`` (no chain) side by side per profile, S and recovery."""
    cells: dict[tuple[str, int, float], dict[str, dict[str, Any]]] = defaultdict(dict)
    for (profile, method, epochs), points in sweep_points(rows).items():
        for r in points:
            cells[(profile, epochs, r["target_sparsity"])][method] = r
    table = []
    for (profile, epochs, target), by in sorted(cells.items()):
        base = fp32.get(profile, {})
        line = [profile, fmt(epochs, "{}"), fmt(target, "{:.2f}")]
        for method in ("global", "layerwise"):
            r = by.get(method)
            line += [Cell(NA)] * 5 if r is None else [
                _bare_acc(r, "accuracy"), _bare_acc(r, "accuracy_mr"),
                ratio(r.get("params"), r.get("nonzero_params")),
                ratio(base.get("size_mb"), r.get("size_sparse_mb")),
                paired(r, "p50_ratio", "128", r["p50_ms"].get("128"), base.get("p50_ms", {}).get("128"), ci=False)]
        table.append(line)
    if not table:
        return None
    return Table("sweep", "Magnitude-pruning sweep (study 002): global vs layer-wise", [
        "Model", "Recovery epochs", "Target sparsity", "Global IMDB", "Global MR", "Global params/non-zero ×",
        "Global fp32/CSR MB ×", "Global p50 ×", "Layer-wise IMDB", "Layer-wise MR", "Layer-wise params/non-zero ×",
        "Layer-wise fp32/CSR MB ×", "Layer-wise p50 ×"], table,
        "Target sparsity of the encoder's Linear weights; accuracy on the IMDB test split and MR; compression "
        "two ways: study 002's nominal params / non-zero params (whole model, embeddings included), and fp32 "
        "file size / CSR size (what a sparse format would really store, indices included); p50 @128 relative "
        "to fp32 in the same run (the paired in-run ratio of the versus-FP32 table, which gives its CI; a run "
        "timed before interleaving: p50 / fp32 p50).")


def stage_table(rows: list[dict[str, Any]], fp32: dict[str, dict[str, Any]]) -> Table | None:
    """Study 003 / EdgeMIN style: each ``A+B`` chain with its stages, cumulative vs fp32."""
    by = {(r["profile"], r["variant"]): r for r in rows}
    table = []
    for r in rows:
        config = config_of(r)
        if not config.chained or r["profile"] not in fp32:
            continue
        base = fp32[r["profile"]]
        for i, name in enumerate(["fp32"] + config.prefixes()):
            s = by.get((r["profile"], name))
            if s is None:
                continue
            table.append([r["profile"], r["variant"], f"{i}. {name}", fmt(s["size_mb"], "{:.2f}"),
                          ratio(s["size_mb"], base["size_mb"]), fmt(s["nonzero_params"], "{:,}"),
                          fmt(s.get("linear_sparsity"), "{:.3f}"), fmt(s["p50_ms"].get("128"), "{:.2f}"),
                          paired(s, "p50_ratio", "128", s["p50_ms"].get("128"), base["p50_ms"].get("128"),
                                 ci=False),
                          acc(s, "accuracy"), acc(s, "accuracy_mr")])
    if not table:
        return None
    return Table("stages", "Compression stages (study 003, EdgeMIN)", [
        "Model", "Pipeline", "Stage", "Size MB", "Size × fp32", "Non-zero params", "Encoder Linear sparsity",
        "p50 ms @128", "p50 × fp32", f"Accuracy {primary_label(rows)} [95% CI]", "Accuracy MR [95% CI]"], table,
        "Each `A+B` variant next to its prefixes measured in the same run (a stage not selected in the run is "
        "left out); ratios are cumulative against fp32 (p50: the paired in-run ratio, as in the versus-FP32 "
        "table).")
