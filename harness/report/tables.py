"""Turn a saved run into ``report.md`` (tabulate tables), the same tables as
CSV and JSON, PNG plots embedded in the markdown, and ``summary.json``.

Every figure comes from the saved run; nothing is recomputed or typed in.
Missing measurements show as "–" (or "n/a (random weights)" for accuracy of a
profile without trained weights), never as a number.  Every table has its
units in the headers and a footer naming the machine fingerprint, thread
count, torch version and run, so a pasted table still says where it came from.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import io
from collections import defaultdict
from pathlib import Path
from typing import Any

from tabulate import tabulate

from harness.core import atomic
from harness.measure import peak
from harness.report.common import footer, sweep_points
from harness.results import storage
from harness.results.rows import rows_from_results

NA = "–"
NA_RANDOM = "n/a (random weights)"


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


def _gemm_peak(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run's measured GEMM peak (``suites/test_peak.py``), or None when not measured."""
    found = [r for r in results if r["metric"] == "gemm_peak"]
    if not found:
        return None
    r = found[-1]
    return {k: r.get(k) for k in ("threads", "size", "fp32_gflops", "fp32_gflops_median", "fp32_kernel",
                                  "int8_gops", "int8_gops_median", "int8_kernel", "load_avg_1m")}


def add_efficiency(row: dict[str, Any], gemm_peak: dict[str, Any] | None) -> None:
    """Set ``precision``, ``achieved_gflops`` (counted FLOPs / p50 at seq 128,
    10^9 FLOP/s) and ``peak_fraction`` (of the same run's GEMM peak of that precision)."""
    row["precision"] = peak.precision(row["variant"], row.get("quant_engine"))
    key = "fp32_gflops" if row["precision"] == "fp32" else "int8_gops"
    row["achieved_gflops"], row["peak_fraction"] = peak.efficiency(
        row.get("flops"), row["p50_ms"].get("128"), (gemm_peak or {}).get(key))


def summary(run: dict[str, Any], run_path: Path) -> dict[str, Any]:
    """The ``summary.json`` document: machine fingerprint, GEMM peak and one row per (variant, backend)."""
    results = storage.results(run)
    rows = rows_from_results(results)
    gemm_peak = _gemm_peak(results)
    fp32 = {r["profile"]: r for r in rows if r["variant"] == "fp32" and r["backend"] == "torch"}
    for r in rows:
        r["flags"] = flags(r, fp32.get(r["profile"]))
        add_efficiency(r, gemm_peak)
    from harness.report import backends as report_backends
    from harness.report import distill as report_distill

    return {
        **report_backends.summary_extras(results),
        "distill": report_distill.collect(results),  # issue 5 sections (harness/report/distill.py)
        "run": run_path.name,
        "datetime": run.get("datetime"),
        "machine": run["machine_info"].get("edgebench", {}),
        "commit": commit.get("id") if isinstance(commit := run.get("commit_info"), dict) else None,
        "gemm_peak": gemm_peak,
        "rows": rows,
        "failures": run["edgebench"].get("failures", []),  # harness.results.faults
        "interrupted": run["edgebench"].get("interrupted"),
        "integrity": _integrity().summarize(storage.results(run)),  # harness.measure.integrity
        "vision": _vision_rows(storage.results(run)),
        "int8_engines": [
            {"profile": r["profile"], "engine": r["engine"], "p50_ms": r["p50_ms"], "cv": r["cv"]}
            for r in results if r["metric"] == "int8_engine"
        ],
    }


class Cell(str):
    """A table cell: the text shown in markdown, with the raw value kept for CSV/JSON."""

    raw: Any

    def __new__(cls, text: str, raw: Any = None) -> "Cell":
        cell = super().__new__(cls, text)
        cell.raw = raw
        return cell


def _raw(cell: Any) -> Any:
    return cell.raw if isinstance(cell, Cell) else cell


def _integrity():
    from harness.measure import (
        integrity,  # imports torch: only when a report is rendered
    )

    return integrity


def _f(value: Any, fmt: str = "{:.1f}") -> str:
    return Cell(NA if value is None else fmt.format(value), value)


def _pct(value: Any) -> str:
    return Cell(NA if value is None else f"{100 * value:.1f}%", value)


def _acc(row: dict[str, Any], key: str) -> str:
    if row.get("real_weights") is False:
        return Cell(NA_RANDOM, None)
    value, ci = row.get(key), row.get(f"{key}_ci95")
    if value is None:
        return Cell(NA, None)
    text = f"{100 * value:.2f}% [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else f"{100 * value:.2f}%"
    return Cell(text, value)


def _ratio(a: Any, b: Any) -> str:
    return Cell(NA, None) if a is None or b in (None, 0) else Cell(f"{a / b:.2f}×", a / b)


@dataclasses.dataclass
class Table:
    """One report table: ``slug`` names its CSV file; cells are :class:`Cell` or str."""

    slug: str
    title: str
    headers: list[str]
    rows: list[list[Any]]
    intro: str = ""

    def markdown(self) -> str:
        return tabulate(self.rows, headers=self.headers, tablefmt="github", disable_numparse=True)

    def csv(self, footer: str) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.headers)
        for row in self.rows:
            w.writerow(["" if _raw(c) is None else _raw(c) for c in row])
        return buf.getvalue() + f"# {footer}\n"  # a comment line (pandas: comment="#")

    def as_json(self, footer: str) -> dict[str, Any]:
        return {"slug": self.slug, "title": self.title, "headers": self.headers, "footer": footer,
                "rows": [[_raw(c) for c in row] for row in self.rows],
                "text": [[str(c) for c in row] for row in self.rows]}


def tables(doc: dict[str, Any]) -> list[Table]:
    """Every table of the report, in order; empty sections are left out."""
    from harness.report import (
        backends as report_backends,  # backend axis (issue 8): other backends' rows render in its sections
    )

    rows = report_backends.torch_rows(doc["rows"])
    fp32 = {r["profile"]: r for r in rows if r["variant"] == "fp32"}
    out: list[Table] = []
    out.append(Table("key-comparison", "Key comparison", [
        "Model", "Variant", "Size MB", "Params", "Non-zero", "Cold start ms", "p50 ms @128", "Throughput sps @32",
        "Peak RSS MB", "Accuracy IMDB [95% CI]", "Accuracy MR [95% CI]", "Eval loss IMDB nats", "% of GEMM peak @128"],
        [[r["profile"], r["variant"], _f(r["size_mb"], "{:.2f}"), _f(r["params"], "{:,}"),
          _f(r["nonzero_params"], "{:,}"), _f(r["cold_start_ms"]), _f(r["p50_ms"].get("128"), "{:.2f}"),
          _f(r["throughput_sps"].get("32"), "{:.2f}"), _f(r["peak_rss_mb"]),
          _acc(r, "accuracy"), _acc(r, "accuracy_mr"),
          Cell(NA_RANDOM) if r["real_weights"] is False else _f(r["eval_loss"], "{:.4f}"),
          _pct(r.get("peak_fraction"))] for r in rows]))

    table = []
    for r in rows:
        base = fp32.get(r["profile"])
        if not base or r["variant"] == "fp32":
            continue
        acc_delta = (Cell(NA_RANDOM) if r["real_weights"] is False else
                     Cell(NA) if r["accuracy"] is None or base["accuracy"] is None else
                     Cell(f"{100 * (r['accuracy'] - base['accuracy']):+.2f} pt", 100 * (r['accuracy'] - base['accuracy'])))
        table.append([r["profile"], r["variant"], _ratio(r["size_mb"], base["size_mb"]),
                      _ratio(r["p50_ms"].get("128"), base["p50_ms"].get("128")),
                      _ratio(r["throughput_sps"].get("32"), base["throughput_sps"].get("32")),
                      _ratio(r["peak_rss_delta_mb"], base["peak_rss_delta_mb"]), acc_delta,
                      _f(r["agreement"], "{:.4f}"), _f(r["kl_fp32"], "{:.5f}"), ", ".join(r.get("flags", [])) or ""])
    if table:
        out.append(Table("vs-fp32", "Versus FP32 in the same run", [
            "Model", "Variant", "Size ×", "p50 @128 ×", "Throughput @32 ×", "Peak RSS Δ ×", "Accuracy IMDB Δ",
            "Agreement", "KL(fp32‖variant) nats", "Flags"], table))

    quality = [r for r in rows if r["real_weights"] is not False and r["accuracy"] is not None]
    if quality:
        out.append(Table("quality", "Quality (IMDB test split and MR sentences)", [
            "Model", "Variant", "Accuracy IMDB [95% CI]", "Eval loss IMDB nats", "Accuracy MR [95% CI]",
            "Eval loss MR nats", "Agreement with fp32", "KL(fp32‖variant) nats"],
            [[r["profile"], r["variant"], _acc(r, "accuracy"), _f(r["eval_loss"], "{:.4f}"), _acc(r, "accuracy_mr"),
              _f(r["eval_loss_mr"], "{:.4f}"), _f(r["agreement"], "{:.4f}"), _f(r["kl_fp32"], "{:.5f}")]
             for r in quality],
            "Accuracy with its 95% bootstrap CI; agreement = share of predictions equal to fp32's; "
            "KL = mean KL divergence of the variant's class distribution from fp32's."))

    stages = _stage_table(rows, fp32)
    if stages:
        out.append(stages)
    sweep = _sweep_table(rows, fp32)
    if sweep:
        out.append(sweep)

    seqs = sorted({int(s) for r in rows for s in r["p50_ms"]})
    timed = [r for r in rows if r["p50_ms"]]
    if seqs:
        out.append(Table("latency-seq", "Latency vs sequence length (batch 1): p50 / p90 ms",
                         ["Model", "Variant"] + [f"seq {s} p50 / p90 ms" for s in seqs],
                         [[r["profile"], r["variant"]] + [
                             Cell(f"{r['p50_ms'][str(s)]:.2f} / {r['p90_ms'][str(s)]:.2f}", r["p50_ms"][str(s)])
                             if str(s) in r["p50_ms"] else Cell(NA) for s in seqs] for r in timed]))
        out.append(Table("noise", "Timing noise", ["Model", "Variant"] + [f"seq {s} CV · block CV %" for s in seqs],
                         [[r["profile"], r["variant"]] + [
                             Cell(f"{_pct(r['cv'].get(str(s)))} · {_pct(r['p50_block_cv'].get(str(s)))}",
                                  r["cv"].get(str(s))) for s in seqs] for r in timed],
                         "Coefficient of variation of the rounds (stddev / mean) · of the p50 over 5 consecutive "
                         "blocks of rounds (how reproducible the reported p50 is)."))

    batches = sorted({int(b) for r in rows for b in r["throughput_sps"]})
    if batches:
        out.append(Table("throughput-batch", "Throughput vs batch size (seq 128): samples/s",
                         ["Model", "Variant"] + [f"batch {b} samples/s" for b in batches],
                         [[r["profile"], r["variant"]] + [_f(r["throughput_sps"].get(str(b)), "{:.2f}")
                                                          for b in batches] for r in rows if r["throughput_sps"]]))

    if any(r["cold_start_ms"] is not None or r["peak_rss_mb"] is not None for r in rows):
        out.append(Table("cold-start-memory", "Cold start (fresh process, median) and memory", [
            "Model", "Variant", "Load ms", "First forward ms", "Cold start ms", "Peak RSS MB",
            "Peak RSS over post-import MB"],
            [[r["profile"], r["variant"], _f(r["load_ms"]), _f(r["first_forward_ms"]), _f(r["cold_start_ms"]),
              _f(r["peak_rss_mb"]), _f(r["peak_rss_delta_mb"])] for r in rows]))

    out.append(Table("compute", "Compute and quantization", [
        "Model", "Variant", "GFLOPs (bs1, seq128)", "fvcore GMACs (no attention)", "Sparsity",
        "Encoder Linear sparsity", "CSR size MB", "INT8 engine", "Linear layers quantized"],
        [[r["profile"], r["variant"], _f(r["flops"] and r["flops"] / 1e9, "{:.3f}"),
          _f(r["macs_fvcore"] and r["macs_fvcore"] / 1e9, "{:.3f}"), _f(r["sparsity"], "{:.4f}"),
          _f(r["linear_sparsity"], "{:.4f}"), _f(r["size_sparse_mb"], "{:.2f}"),
          r["quant_engine"] or NA, _f(r["quantized_linear_fraction"], "{:.2f}")] for r in rows]))

    gp = doc.get("gemm_peak")
    intro = ("Achieved = counted FLOPs at batch 1, seq 128 / p50 at seq 128; peak = this run's best "
             f"{gp['size']}³ GEMM with {gp['threads']} threads: FP32 `{gp['fp32_kernel']}` "
             f"{gp['fp32_gflops']:.1f} GFLOP/s (median {gp['fp32_gflops_median']:.1f}), INT8 "
             + (f"`{gp['int8_kernel']}` {gp['int8_gops']:.1f} GOPS (median {gp['int8_gops_median']:.1f})"
                if gp.get("int8_gops") else "not measured (no CPU torch._int_mm)")
             + ". The gap is what a better kernel, fusion or batching could still win. An INT8 variant is "
               "divided by the INT8 peak although its attention matmuls and softmax still run in FP32."
             if gp else "The GEMM peak was not measured in this run (suites/test_peak.py deselected): "
                        "achieved GFLOP/s only.")
    out.append(Table("efficiency", "Efficiency: achieved vs this machine's GEMM peak", [
        "Model", "Variant", "Precision", "GFLOPs (bs1, seq128)", "p50 ms @128", "Achieved GFLOP/s",
        "Peak GFLOP/s (fp32) or GOPS (int8)", "% of peak"],
        [[r["profile"], r["variant"], r["precision"], _f(r["flops"] and r["flops"] / 1e9, "{:.3f}"),
          _f(r["p50_ms"].get("128"), "{:.2f}"), _f(r["achieved_gflops"], "{:.2f}"),
          _f((gp or {}).get("fp32_gflops" if r["precision"] == "fp32" else "int8_gops"), "{:.1f}"),
          _pct(r["peak_fraction"])] for r in rows], intro))

    if doc["int8_engines"]:
        out.append(Table("int8-engines", "INT8 engines (seq 128, batch 1, same run)",
                         ["Model", "Engine", "p50 ms", "CV %"],
                         [[e["profile"], e["engine"], _f(e["p50_ms"], "{:.2f}"), _pct(e["cv"])]
                          for e in doc["int8_engines"]]))
    if doc.get("budgets"):
        out.append(Table("budgets", "Budgets (baselines/budgets.toml)", ["Verdict", "Measured"],
                         [[v["verdict"], v["message"]] for v in doc["budgets"]]))
    return out


def render(doc: dict[str, Any], plots: list[tuple[str, str, str]] | None = None) -> str:
    """The markdown report; ``plots`` are ``(section slug, caption, PNG file name)``
    embedded after the table of that slug (or at the end for an unknown slug)."""
    m = doc["machine"]
    foot = footer(doc)
    out: list[str] = ["# Benchmark report", ""]
    out += [f"Run `{doc['run']}` ({doc.get('datetime') or 'unknown time'}) on {m.get('cpu_model', '?')}, "
            f"{m.get('threads', '?')} threads, torch {m.get('torch', '?')}. MB = 10^6 bytes; latencies are batch 1; "
            "all variants measured in the same run. Every table is also in `<name>.csv` and `tables.json` "
            "beside this file.", ""]
    plots = list(plots or [])
    slugs = set()
    for t in tables(doc):
        slugs.add(t.slug)
        out += [f"## {t.title}", ""]
        if t.intro:
            out += [t.intro, ""]
        out += [t.markdown(), "", f"<sub>{foot} · `{t.slug}.csv`</sub>", ""]
        out += [line for slug, caption, png in plots if slug == t.slug for line in (f"![{caption}]({png})", "")]
    from harness.report import backends as report_backends
    from harness.report.vision import render_section

    out += report_backends.sections(doc) + render_section(doc)
    rest = [(c, png) for slug, c, png in plots if slug not in slugs]
    if rest:
        out += ["## Plots", ""] + [line for c, png in rest for line in (f"![{c}]({png})", "")]

    from harness.results.faults import render_failures

    out += _integrity().render_integrity(doc) + render_failures(doc)
    from harness.report import distill as report_distill

    out += report_distill.render(doc.get("distill", {}))
    out += ["## Machine", ""]
    out += [tabulate([[k, ", ".join(v) if isinstance(v, list) else str(v)] for k, v in sorted(m.items())],
                     headers=["Key", "Value"], tablefmt="github", disable_numparse=True), ""]
    out += [f"_Generated {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')} "
            f"from `{doc['run']}`; machine id `{m.get('machine_id', '?')}`._", ""]
    return "\n".join(out)


def _budget_verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from harness.gate import budgets

    out = [{"verdict": v.label, "message": v.message, "why": v.budget.why}
           for v in budgets.evaluate_all(budgets.load_budgets(), rows)]
    return sorted(out, key=lambda v: v["verdict"] != "FAIL")


def write_report(run_path: Path | None, out_dir: Path, with_plots: bool = True) -> tuple[Path, Path]:
    """Write ``report.md``, ``summary.json``, ``tables.json``, one CSV per table
    and the PNG plots into ``out_dir``.

    Everything is rendered in memory first, then each file is written
    atomically, so a failure leaves no half-written file.  Raises HarnessError
    for a missing, foreign or empty run.
    """
    run_path = Path(run_path) if run_path else storage.newest_run()
    run = storage.load_run(run_path)
    doc = summary(run, run_path)
    if not doc["rows"]:
        from harness.core.errors import HarnessError

        raise HarnessError(f"{run_path} has no results of this suite's metrics; re-run 'pytest suites/ --benchmark-autosave'")
    doc["budgets"] = _budget_verdicts(doc["rows"])
    figures: list[tuple[str, str, str, bytes]] = []
    if with_plots:
        from harness.report import plots

        figures = plots.render_all(doc)
    text = render(doc, [(slug, caption, name) for slug, caption, name, _ in figures])
    foot = footer(doc)
    all_tables = tables(doc)
    out_dir = Path(out_dir)
    md, js = out_dir / "report.md", out_dir / "summary.json"
    for _, _, name, png in figures:
        atomic.write_bytes(out_dir / name, png)
    for t in all_tables:
        atomic.write_text(out_dir / f"{t.slug}.csv", t.csv(foot))
    atomic.write_json(out_dir / "tables.json", {"run": doc["run"], "machine": doc["machine"], "footer": foot,
                                                "tables": [t.as_json(foot) for t in all_tables]})
    atomic.write_json(js, doc)
    atomic.write_text(md, text)
    return md, js


def _sweep_table(rows: list[dict[str, Any]], fp32: dict[str, dict[str, Any]]) -> Table | None:
    """Rows ``magnitude-{global,layerwise}@S`` (no chain) side by side per profile, S and recovery."""
    cells: dict[tuple[str, int, float], dict[str, dict[str, Any]]] = defaultdict(dict)
    for (profile, method, epochs), points in sweep_points(rows).items():
        for r in points:
            cells[(profile, epochs, r["target_sparsity"])][method] = r
    table = []
    for (profile, epochs, target), by in sorted(cells.items()):
        base = fp32.get(profile, {})
        line = [profile, _f(epochs, "{}"), _f(target, "{:.2f}")]
        for method in ("global", "layerwise"):
            r = by.get(method)
            line += [Cell(NA)] * 5 if r is None else [
                Cell(_acc(r, "accuracy").split(" [")[0], _acc(r, "accuracy").raw),
                Cell(_acc(r, "accuracy_mr").split(" [")[0], _acc(r, "accuracy_mr").raw),
                _ratio(r.get("params"), r.get("nonzero_params")),
                _ratio(base.get("size_mb"), r.get("size_sparse_mb")),
                _ratio(r["p50_ms"].get("128"), base.get("p50_ms", {}).get("128"))]
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
        "to fp32 in the same run.")


def _stage_table(rows: list[dict[str, Any]], fp32: dict[str, dict[str, Any]]) -> Table | None:
    """Study 003 / EdgeMIN style: each ``A+B`` chain with its stages, cumulative vs fp32."""
    by = {(r["profile"], r["variant"]): r for r in rows}
    table = []
    for r in rows:
        if "+" not in r["variant"] or r["profile"] not in fp32:
            continue
        base = fp32[r["profile"]]
        parts = r["variant"].split("+")
        chain = ["fp32"] + ["+".join(parts[:i + 1]) for i in range(len(parts))]
        for i, name in enumerate(chain):
            s = by.get((r["profile"], name))
            if s is None:
                continue
            table.append([r["profile"], r["variant"], f"{i}. {name}", _f(s["size_mb"], "{:.2f}"),
                          _ratio(s["size_mb"], base["size_mb"]), _f(s["nonzero_params"], "{:,}"),
                          _f(s.get("linear_sparsity"), "{:.3f}"), _f(s["p50_ms"].get("128"), "{:.2f}"),
                          _ratio(s["p50_ms"].get("128"), base["p50_ms"].get("128")),
                          _acc(s, "accuracy"), _acc(s, "accuracy_mr")])
    if not table:
        return None
    return Table("stages", "Compression stages (study 003, EdgeMIN)", [
        "Model", "Pipeline", "Stage", "Size MB", "Size × fp32", "Non-zero params", "Encoder Linear sparsity",
        "p50 ms @128", "p50 × fp32", "Accuracy IMDB [95% CI]", "Accuracy MR [95% CI]"], table,
        "Each `A+B` variant next to its prefixes measured in the same run (a stage not selected in the run is "
        "left out); ratios are cumulative against fp32.")


def render_comparisons(comparisons: list[Any], notes: list[str]) -> str:
    """Markdown table of ``harness.gate.compare.Comparison`` verdicts, regressions first."""
    order = {"regression": 0, "missing": 1, "not comparable": 2, "improvement": 3, "unchanged": 4}
    table = [[c.name, c.metric, _f(c.old, "{:.6g}"), _f(c.new, "{:.6g}"), _f(c.ratio, "{:.3f}"),
              _f(c.p_value, "{:.2g}"), c.verdict + (f" ({c.note})" if c.note else "")]
             for c in sorted(comparisons, key=lambda c: order.get(c.verdict, 9))]
    text = tabulate(table, headers=["Benchmark", "Metric", "Old", "New", "New/old", "p (slower)", "Verdict"],
                    tablefmt="github", disable_numparse=True) if table else "(nothing to compare)"
    return "\n".join([*notes, text] if notes else [text])


def render_budgets(verdicts: list[Any]) -> str:
    """Markdown table of ``harness.gate.budgets.BudgetVerdict`` results."""
    table = [[v.label, v.message, v.budget.why]
             for v in sorted(verdicts, key=lambda v: (v.passed is not False, v.passed is None))]
    return tabulate(table, headers=["Verdict", "Measured", "Why this budget"], tablefmt="github",
                    disable_numparse=True) if table else "(no budgets apply)"


# name -> (unit, what and how it is measured); ``python -m harness list metrics`` and the README.
METRIC_DOCS: dict[str, tuple[str, str]] = {
    "size_mb": ("MB (10^6 bytes)", "serialized state dict on disk (safetensors, or weights-only model.pt for packed INT8)"),
    "size_sparse_mb": ("MB", "what the weights would take with every 2-D float tensor in CSR (int32 indices)"),
    "params / nonzero_params / sparsity": ("count, count, fraction", "over the state dict, quantized weights dequantized"),
    "flops": ("FLOPs (1 MAC = 2 FLOPs)", "torch.utils.flop_counter at batch 1, seq 128; macs_fvcore cross-checks"),
    "p50_ms / p90_ms / p99_ms": ("ms", "batch 1 per sequence length, inference_mode, fixed threads, warm-up, "
                                       ">= 20 rounds (~3 s), variants interleaved; raw samples saved"),
    "cv / p50_block_cv": ("fraction", "noise: stddev/mean of the rounds; spread of the p50 over 5 blocks of rounds"),
    "throughput_sps": ("samples/s", "batch / p50 at seq 128 for each batch size"),
    "cold_start_ms": ("ms", "fresh interpreter per sample: load (config, skeleton, weights) + first forward"),
    "peak_rss_mb": ("MB", "fresh process: kernel high-water RSS (VmHWM) after load + one forward"),
    "accuracy / accuracy_mr": ("fraction, 95% bootstrap CI", "IMDB test split / Rotten Tomatoes (MR) sentences"),
    "eval_loss / agreement / kl_fp32": ("nats, fraction, nats", "cross-entropy; share of predictions equal to "
                                                                "fp32's; mean KL(p_fp32 || p_variant)"),
    "achieved_gflops / peak_fraction": ("GFLOP/s, fraction", "counted FLOPs / p50 at seq 128; divided by this "
                                                             "run's FP32 or INT8 GEMM peak (suites/test_peak.py)"),
}


def _vision_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from harness.report.vision import vision_rows  # the study-004 table (issue 9)

    return vision_rows(results)
