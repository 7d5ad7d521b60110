"""The ``summary.json`` document: a run's :class:`harness.results.rows.RunRows`
with the report's judgments added (flags, efficiency against the GEMM peak,
the study-004 reductions, the budget verdicts).  Every table, plot and the
diff read this document; nothing in it is recomputed elsewhere."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.gate import budgets
from harness.measure import peak
from harness.report import vision as report_vision
from harness.results import rows as run_rows
from harness.results import storage

PRUNED_SPARSITY = 0.5
FASTER_BY = 0.05


def flags(row: dict[str, Any], fp32: dict[str, Any] | None) -> list[str]:
    """Warnings a reader must see next to a variant's numbers.

    ``pruned-not-faster``: sparsity of the encoder's Linear weights (overall
    sparsity for runs that predate that field) >= 0.5 but p50 at seq 128 not at
    least 5% below fp32's in the same run -- what dense kernels do with
    unstructured sparsity (study 001: "pruning alone did not reduce latency").
    """
    out = []
    p50, base = row["p50_ms"].get("128"), (fp32 or {}).get("p50_ms", {}).get("128")
    sparsity = row.get("linear_sparsity") if row.get("linear_sparsity") is not None else row.get("sparsity")
    if (sparsity or 0) >= PRUNED_SPARSITY and p50 and base and p50 > (1 - FASTER_BY) * base:
        out.append("pruned-not-faster")
    return out


def add_efficiency(row: dict[str, Any], gemm_peak: dict[str, Any] | None) -> None:
    """Set ``precision`` (the row's :class:`~harness.results.rows.VariantConfig`), ``ceiling``
    (the kernel it is divided by: :func:`harness.measure.peak.ceiling_of`), ``achieved_gflops``
    (counted FLOPs / p50 at seq 128, 10^9 FLOP/s), ``peak_fraction`` (of the same run's
    ceiling; None above it) and ``above_ceiling`` (the achieved rate exceeds the ceiling)."""
    row["precision"] = run_rows.config_of(row).precision
    row["ceiling"] = peak.ceiling_of(row["precision"], row.get("backend") or "torch")
    ceiling = (gemm_peak or {}).get(f"{row['ceiling']}_gops")
    row["achieved_gflops"], row["peak_fraction"] = peak.efficiency(row.get("flops"), row["p50_ms"].get("128"), ceiling)
    row["above_ceiling"] = bool(ceiling and row["achieved_gflops"] and row["achieved_gflops"] > ceiling)


def document(run: dict[str, Any], run_path: Path, collected: run_rows.RunRows) -> dict[str, Any]:
    """The summary document of ``run`` (saved at ``run_path``) from its collected rows."""
    rows = collected.rows
    fp32 = run_rows.references(rows)
    for r in rows:
        r["flags"] = flags(r, fp32.get(r["profile"]))
        add_efficiency(r, collected.gemm_peak)
    return {
        "backend_sessions": collected.backend_sessions,
        "latency_mean_ms": collected.latency_mean_ms,
        "distill": collected.distill,  # issue 5 sections (harness/report/distill.py)
        "run": run_path.name,
        "datetime": run.get("datetime"),
        "machine": run["machine_info"].get("edgebench", {}),
        "commit": commit.get("id") if isinstance(commit := run.get("commit_info"), dict) else None,
        "gemm_peak": collected.gemm_peak,
        "rows": rows,
        "failures": run["edgebench"].get("failures", []),  # harness.results.faults
        "interrupted": run["edgebench"].get("interrupted"),
        "integrity": collected.integrity,
        "vision": report_vision.with_reductions(collected.vision),
        "int8_engines": collected.int8_engines,
    }


def summary(run: dict[str, Any], run_path: Path) -> dict[str, Any]:
    """The ``summary.json`` document: machine fingerprint, GEMM peak and one row per (variant, backend)."""
    return document(run, run_path, run_rows.collect(storage.results(run)))


def budget_verdicts(rows: list[dict[str, Any]], machine: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every applicable budget of ``baselines/budgets.toml`` on ``rows`` measured on ``machine``
    (the run's fingerprint; budgets conditioned on ``cpu_flags`` follow its ISA), failures first."""
    flags = (machine or {}).get("isa_flags")
    out = [{"verdict": v.label, "message": v.message, "why": v.budget.why}
           for v in budgets.evaluate_all(budgets.load_budgets(), rows, flags)]
    return sorted(out, key=lambda v: v["verdict"] == "pass" or v["verdict"] == "not measured")


def as_json(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as ``summary.json`` holds it: the rows without their :class:`VariantConfig`."""
    return {**doc, "rows": [run_rows.public(r) for r in doc["rows"]],
            "vision": [run_rows.public(r) for r in doc.get("vision") or []]}
