"""Turn a saved run into ``report.md`` (tabulate tables), the same tables as
CSV and JSON, PNG plots embedded in the markdown, and ``summary.json``.

Every figure comes from the saved run; nothing is recomputed or typed in.
Missing measurements show as "–" (or "n/a (random weights)" for accuracy of a
profile without trained weights), never as a number.  Every table has its
units in the headers and a footer naming the machine fingerprint, thread
count, torch version and run, so a pasted table still says where it came from.

The run is read once (:func:`harness.report.summary.summary`); this module
holds the list of tables and writes the files; each study's section is its
own renderer module (backends, distill, vision, stages, integrity, failures).
"""
from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.core import atomic
from harness.core.errors import HarnessError
from harness.gate.steps import THRESHOLD
from harness.measure import peak
from harness.models.project import MASKED_TASKS
from harness.report import backends as report_backends
from harness.report import distill as report_distill
from harness.report import vision as report_vision
from harness.report.common import (
    NA,
    NA_RANDOM,
    Cell,
    Table,
    acc,
    fmt,
    footer,
    markdown_table,
    paired,
    pct,
    primary_label,
    ratio,
)
from harness.report.failures import render_failures
from harness.report.integrity import render_integrity
from harness.report.stages import stage_table, sweep_table
from harness.report.summary import as_json, budget_verdicts, summary
from harness.results import storage
from harness.results.rows import main_rows, references

# The kinds of file the writer owns besides report.md, tables.json and summary.json
# (always rewritten): a table's CSV and a plot's PNG.
OWN_SUFFIXES = (".csv", ".png")
EMBEDDED_PNG = re.compile(r"^!\[.*\]\(([^()/\\]+\.png)\)$", re.MULTILINE)  # how render() embeds a plot


def peak_cell(row: dict[str, Any]) -> Cell:
    """A row's fraction of its ceiling as a percentage; "above ceiling" rather than a figure over 100%."""
    return Cell("above ceiling", None) if row.get("above_ceiling") else pct(row.get("peak_fraction"))


def _share(rows: list[dict[str, Any]]) -> str:
    """The largest share of a variant's pages any cold-cache eviction left resident, as text ("" if none)."""
    shares = [r["cold_cache_resident_after"] for r in rows if r.get("cold_cache_resident_after") is not None]
    return f"{max(shares):.1%} of the pages" if shares else ""


def tables(doc: dict[str, Any]) -> list[Table]:
    """Every table of the report, in order; empty sections are left out."""
    rows = main_rows(doc["rows"])  # other backends' rows render in their own sections
    fp32 = references(rows)
    primary = primary_label(rows)
    out: list[Table] = []
    out.append(Table("key-comparison", "Key comparison", [
        "Model", "Variant", "Size MB", "Params", "Non-zero", "First result ms (from spawn)", "Load + first forward ms",
        "p50 ms @128", "Throughput sps @32",
        "Peak RSS MB", f"Accuracy {primary} [95% CI]", "Accuracy MR [95% CI]", f"Eval loss {primary} nats",
        "% of GEMM ceiling @128"],
        [[r["profile"], r["variant"], fmt(r["size_mb"], "{:.2f}"), fmt(r["params"], "{:,}"),
          fmt(r["nonzero_params"], "{:,}"), fmt(r.get("time_to_first_result_ms")), fmt(r["cold_start_ms"]),
          fmt(r["p50_ms"].get("128"), "{:.2f}"),
          fmt(r["throughput_sps"].get("32"), "{:.2f}"), fmt(r["peak_rss_mb"]),
          acc(r, "accuracy"), acc(r, "accuracy_mr"),
          Cell(NA_RANDOM) if r["real_weights"] is False else fmt(r["eval_loss"], "{:.4f}"),
          peak_cell(r)] for r in rows]))

    table = []
    for r in rows:
        base = fp32.get(r["profile"])
        if not base or r["variant"] == "fp32":
            continue
        acc_delta = (Cell(NA_RANDOM) if r["real_weights"] is False else
                     Cell(NA) if r["accuracy"] is None or base["accuracy"] is None else
                     Cell(f"{100 * (r['accuracy'] - base['accuracy']):+.2f} pt", 100 * (r['accuracy'] - base['accuracy'])))
        table.append([r["profile"], r["variant"], ratio(r["size_mb"], base["size_mb"]),
                      paired(r, "p50_ratio", "128", r["p50_ms"].get("128"), base["p50_ms"].get("128")),
                      paired(r, "throughput_ratio", "32", r["throughput_sps"].get("32"), base["throughput_sps"].get("32")),
                      ratio(r["peak_rss_delta_mb"], base["peak_rss_delta_mb"]), acc_delta,
                      fmt(r["agreement"], "{:.4f}"), fmt(r["kl_fp32"], "{:.5f}"), ", ".join(r.get("flags", [])) or ""])
    if table:
        aa = [f"{r['profile']} {shape} {v['ratio']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]"
              for r in fp32.values() for shape, v in r.get("aa_ratio", {}).items()]
        out.append(Table("vs-fp32", "Versus FP32 in the same run", [
            "Model", "Variant", "Size ×", "p50 @128 ×", "Throughput @32 ×", "Peak RSS Δ ×", f"Accuracy {primary} Δ",
            "Agreement", "KL(fp32‖variant) nats", "Flags"], table,
            ("Timing ratios are paired within repetitions of randomized blocks, median [95% bootstrap CI]; "
             "A/A control (fp32 timed twice by independent workers): " + "; ".join(aa)) if aa else ""))

    quality = [r for r in rows if r["real_weights"] is not False and r["accuracy"] is not None]
    if quality:
        # Macro-F1 only where a set has more than two classes (issue 18), so the built-in tables keep their shape.
        f1 = any(r.get("macro_f1") is not None for r in quality)
        sets = "; ".join(sorted({f"{r['profile']}: {r['primary_eval_set']}" for r in quality
                                 if r.get("primary_eval_set") not in (None, "imdb-test", "imdb-mlm")}))
        out.append(Table("quality", "Quality (IMDB test split and MR sentences)" if primary == "IMDB" else
                         f"Quality ({primary}: the test split)", [
            "Model", "Variant", f"Accuracy {primary} [95% CI]", f"Eval loss {primary} nats", "Accuracy MR [95% CI]",
            "Eval loss MR nats", "Agreement with fp32", "KL(fp32‖variant) nats"] + (["Macro-F1 [95% CI]"] if f1 else []),
            [[r["profile"], r["variant"], acc(r, "accuracy"), fmt(r["eval_loss"], "{:.4f}"), acc(r, "accuracy_mr"),
              fmt(r["eval_loss_mr"], "{:.4f}"), fmt(r["agreement"], "{:.4f}"), fmt(r["kl_fp32"], "{:.5f}")]
             + ([acc(r, "macro_f1")] if f1 else []) for r in quality],
            "Accuracy with its 95% bootstrap CI; agreement = share of predictions equal to fp32's; "
            "KL = mean KL divergence of the variant's class distribution from fp32's"
            + ("; macro-F1 = unweighted mean of the per-class F1 (sets of more than two classes), 95% bootstrap CI"
               if f1 else "") + (f". Primary sets: {sets}" if sets else "")
            + (f". Masked LMs ({', '.join(sorted({r['profile'] for r in quality if r.get('task') in MASKED_TASKS}))}): "
               "accuracy is masked-token top-1 and eval loss the MLM loss at the masked positions (BERT masking of "
               "15% of the tokens under a fixed seed), KL over the vocabulary"
               if any(r.get("task") in MASKED_TASKS for r in quality) else "") + "."))

    out += [t for t in (stage_table(rows, fp32), sweep_table(rows, fp32)) if t is not None]

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
                             Cell(f"{pct(r['cv'].get(str(s)))} · {pct(r['p50_block_cv'].get(str(s)))}",
                                  r["cv"].get(str(s))) for s in seqs] for r in timed],
                         "Coefficient of variation of the rounds (stddev / mean) · of the p50 over 5 consecutive "
                         "blocks of rounds (how reproducible the reported p50 is)."))

    batches = sorted({int(b) for r in rows for b in r["throughput_sps"]})
    if batches:
        out.append(Table("throughput-batch", "Throughput vs batch size (seq 128): samples/s",
                         ["Model", "Variant"] + [h for b in batches for h in (f"batch {b} samples/s",
                                                                              f"batch {b} sustained samples/s")],
                         [[r["profile"], r["variant"]] + [c for b in batches for c in (
                             fmt(r["throughput_sps"].get(str(b)), "{:.2f}"),
                             fmt(r.get("sustained_sps", {}).get(str(b)), "{:.2f}"))]
                          for r in rows if r["throughput_sps"]],
                         "samples/s: batch / the p50 of a round.  Sustained: every sample over the wall time of the "
                         "cell's timed blocks (batches back to back within a block, the gaps between rounds "
                         "included; the blocks are short and interleaved with the other cells')."))

    fresh = [r for r in doc["rows"] if r["cold_start_ms"] is not None]
    if fresh:
        out.append(Table("cold-start", "Cold start (fresh process per sample, medians)", [
            "Model", "Variant", "Backend", "First result ms (from spawn)", "First result ms, cold page cache",
            "Interpreter ms", "Imports ms", "Load ms", "First forward ms", "Load + first forward ms",
            "Load + first forward ms, cold page cache", "Load ms, graph pre-optimised on disk"],
            [[r["profile"], r["variant"], report_backends.backend_of(r), fmt(r.get("time_to_first_result_ms")),
              fmt(r.get("cold_cache_time_to_first_result_ms")), fmt(r.get("interpreter_ms")),
              fmt(r.get("import_ms")), fmt(r["load_ms"]), fmt(r["first_forward_ms"]), fmt(r["cold_start_ms"]),
              fmt(r.get("cold_cache_cold_start_ms")), fmt(r.get("preoptimized_load_ms"))] for r in fresh],
            "First result: from the parent's spawn of the process to the first logits = interpreter start-up + "
            "imports (the runtime and the input batch; an onnxruntime process never imports torch) + load + "
            "first forward: what a process started on a request pays.  Load + first forward: what a running "
            "process pays for one more model.  Cold page cache: the variant's files evicted before the spawn "
            "(posix_fadvise, checked with mincore"
            + (f"; the most any eviction left resident: {_share(fresh)}" if _share(fresh) else "")
            + "); runtime libraries stay cached.  Graph pre-optimised on disk (onnxruntime): the session loads "
            "the model ORT optimised and saved (optimized_model_filepath), with its optimisations off.  Runs saved "
            "before these columns show only load and first forward."))
    if any(r["peak_rss_mb"] is not None for r in doc["rows"]):
        out.append(Table("memory", "Memory (fresh process per sample, medians)", [
            "Model", "Variant", "Backend", "Peak RSS MB", "Peak RSS over post-import MB",
            "Resident after load: anon MB", "Resident after load: file MB", "Batch", "Peak RSS MB at batch",
            "Activations MB at batch"],
            [[r["profile"], r["variant"], report_backends.backend_of(r), fmt(r["peak_rss_mb"]),
              fmt(r["peak_rss_delta_mb"]), fmt(r.get("steady_anon_mb")), fmt(r.get("steady_file_mb")),
              fmt(r.get("memory_batch_size"), "{}"), fmt(r.get("batch_peak_rss_mb")),
              fmt(r.get("batch_activation_mb"))]
             for r in doc["rows"] if r["peak_rss_mb"] is not None],
            "Peak RSS over post-import is the load's whole cost, transient copies included; what stays resident "
            "after the load and one forward is split into anonymous memory (tensors, heaps) and file-backed pages "
            "(mmapped weights, libraries), each as the rise over the post-import reading.  Peak RSS includes the "
            "runtime: torch + transformers, or onnxruntime alone.  At batch: one forward of the run's largest "
            "batch (seq 128) after the load, in one of the processes; activations = its peak over the RSS "
            "right before it."))

    out.append(Table("compute", "Compute and quantization", [
        "Model", "Variant", "Matmul/conv GFLOPs (bs1, seq128)", "fvcore GMACs (no attention)", "Sparsity (pruned)",
        "Pruned zeros", "INT8 rounding zeros", "Encoder Linear zeros", "CSR size MB", "INT8 engine",
        "Linear layers quantized"],
        [[r["profile"], r["variant"], fmt(r["flops"] and r["flops"] / 1e9, "{:.3f}"),
          fmt(r["macs_fvcore"] and r["macs_fvcore"] / 1e9, "{:.3f}"), fmt(r["sparsity"], "{:.4f}"),
          fmt(r.get("pruned_zeros"), "{:,}"), fmt(r.get("quantization_zeros"), "{:,}"),
          fmt(r["linear_sparsity"], "{:.4f}"), fmt(r["size_sparse_mb"], "{:.2f}"),
          r["quant_engine"] or NA, fmt(r["quantized_linear_fraction"], "{:.2f}")] for r in rows],
        "FLOPs are what torch.utils.flop_counter counts: matrix products and convolutions (attention's "
        "included), not the elementwise ops (softmax, GELU, LayerNorm).  Sparsity (pruned): zeros a pruner set "
        "over all parameters; INT8 rounding zeros -- float weights under half a quantization step -- are counted "
        "apart (runs before the split counted them as sparsity).  Encoder Linear zeros: every zero of the encoder's "
        "Linear weights, either kind."))

    gp = doc.get("gemm_peak")
    if gp:
        measured = [f"{name} `{gp[f'{name}_kernel']}` {gp[f'{name}_gops']:.1f} (median {gp[f'{name}_gops_median']:.1f})"
                    for name in peak.CEILINGS if gp.get(f"{name}_gops")]
        missing = [name for name in peak.CEILINGS if not gp.get(f"{name}_gops")]
        intro = ("Achieved = counted FLOPs at batch 1, seq 128 / p50 at seq 128; the ceiling is this run's best "
                 f"{gp['size']}³ GEMM of the kernel the variant's Linears call, with {gp['threads']} threads "
                 "(GFLOP/s for fp32, GOPS for INT8): " + "; ".join(measured) + "."
                 + (f" Not measured here: {', '.join(missing)}." if missing else "")
                 + (f" This run's INT8 figure came from `{gp['legacy_int8_kernel']}`, which no INT8 variant calls: "
                    "not used." if gp.get("legacy_int8_kernel") else "")
                 + " The gap is what a better kernel, fusion or batching could still win. An INT8 variant's "
                   "\"INT8 share\" is the part of its FLOPs that runs in INT8 kernels: the attention matmuls and "
                   "softmax stay FP32, which bounds its fraction of the INT8 ceiling. A rate above the ceiling "
                   "is never shown as a percentage.")
    else:
        intro = "The GEMM ceilings were not measured in this run (suites/test_peak.py deselected): achieved GFLOP/s only."
    out.append(Table("efficiency", "Efficiency: achieved vs the ceiling of the variant's GEMM kernel", [
        "Model", "Variant", "Backend", "Precision", "INT8 share of FLOPs", "GFLOPs (bs1, seq128)", "p50 ms @128",
        "Achieved GFLOP/s", "Ceiling kernel", "Ceiling GFLOP/s or GOPS", "% of ceiling"],
        [[r["profile"], r["variant"], r.get("backend") or "torch", r["precision"], pct(r.get("int8_flops_fraction")),
          fmt(r["flops"] and r["flops"] / 1e9, "{:.3f}"),
          fmt(r["p50_ms"].get("128"), "{:.2f}"), fmt(r["achieved_gflops"], "{:.2f}"), r["ceiling"],
          fmt((gp or {}).get(f"{r['ceiling']}_gops"), "{:.1f}"), peak_cell(r)] for r in doc["rows"]], intro))

    if doc["int8_engines"]:
        out.append(Table("int8-engines", "INT8 engines (seq 128, batch 1, same run)",
                         ["Model", "Engine", "p50 ms", "CV %"],
                         [[e["profile"], e["engine"], fmt(e["p50_ms"], "{:.2f}"), pct(e["cv"])]
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
    out += report_backends.sections(doc) + report_vision.render_section(doc)
    rest = [(c, png) for slug, c, png in plots if slug not in slugs]
    if rest:
        out += ["## Plots", ""] + [line for c, png in rest for line in (f"![{c}]({png})", "")]

    out += render_integrity(doc) + render_failures(doc) + report_distill.render(doc.get("distill", {}))
    out += ["## Machine", ""]
    out += [markdown_table([[k, ", ".join(v) if isinstance(v, list) else str(v)] for k, v in sorted(m.items())],
                           ["Key", "Value"]), ""]
    out += [f"_Generated {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')} "
            f"from `{doc['run']}`; machine id `{m.get('machine_id', '?')}`._", ""]
    return "\n".join(out)


def history_section(cells: Sequence[Any], out_dir: Path, testbed: str) -> str:
    """Write the store's history of one testbed into ``out_dir/history`` (:func:`harness.report.history.write_history`)
    and return the report's section on it: the detected steps and a link to the trends."""
    from harness.report import history

    md, steps = history.write_history(cells, Path(out_dir) / "history")
    runs = len({c.run_key for c in cells})
    return "\n".join([
        f"## History on this testbed ({testbed})", "",
        f"{runs} published runs of {', '.join(sorted({c.profile for c in cells}))} in the results store, this one "
        f"included; level changes of at least {100 * THRESHOLD:.0f}% in the in-run ratios, accuracy and size (weighted-L1 step fit, "
        f"asv's model). Trend plots with 95% CIs: [{md.parent.name}/{md.name}]({md.parent.name}/{md.name}).", "",
        markdown_table(steps, history.STEP_HEADERS) if steps else "No step in any series.", ""])


def write_report(run_path: Path | None, out_dir: Path, with_plots: bool = True,
                 history: Sequence[Any] | None = None) -> tuple[Path, Path]:
    """Write ``report.md``, ``summary.json``, ``tables.json``, one CSV per table
    and the PNG plots into ``out_dir``; returns (report.md, summary.json).
    ``history``: the results store's cells (:class:`harness.store.read.Cell`) of this run's
    testbed and profiles, embedded as a section (:func:`history_section`); None or empty: none.

    Everything is rendered in memory first, then each file is written
    atomically, so a failure leaves no half-written file.  A CSV or PNG that
    the previous report in ``out_dir`` wrote and this one does not (a table
    the new run has no rows for) is removed (:func:`previous_files`); no
    other file is touched.  Raises HarnessError for a missing, foreign or empty run.
    """
    run_path = Path(run_path) if run_path else storage.newest_run()
    run = storage.load_run(run_path)
    doc = summary(run, run_path)
    if not doc["rows"]:
        raise HarnessError(f"{run_path} has no results of this suite's metrics; re-run 'pytest suites/ --benchmark-autosave'")
    doc["budgets"] = budget_verdicts(doc["rows"], doc["machine"])
    figures: list[tuple[str, str, str, bytes]] = []
    if with_plots:
        # Imports matplotlib: only when figures are drawn.
        from harness.report import plots

        figures = plots.render_all(doc)
    text = render(doc, [(slug, caption, name) for slug, caption, name, _ in figures])
    if history:
        text += "\n\n" + history_section(history, Path(out_dir), str(doc["machine"].get("machine_id", "unknown")))
    foot = footer(doc)
    all_tables = tables(doc)
    out_dir = Path(out_dir)
    md, js = out_dir / "report.md", out_dir / "summary.json"
    before = previous_files(out_dir)
    for _, _, name, png in figures:
        atomic.write_bytes(out_dir / name, png)
    for t in all_tables:
        atomic.write_text(out_dir / f"{t.slug}.csv", t.csv(foot))
    atomic.write_json(out_dir / "tables.json", {"run": doc["run"], "machine": doc["machine"], "footer": foot,
                                                "tables": [t.as_json(foot) for t in all_tables]})
    atomic.write_json(js, as_json(doc))
    atomic.write_text(md, text)
    written = {name for _, _, name, _ in figures} | {f"{t.slug}.csv" for t in all_tables}
    for name in sorted(before - written):
        (out_dir / name).unlink(missing_ok=True)
    return md, js


def previous_files(out_dir: Path) -> set[str]:
    """Names of the CSVs and PNGs the report now in ``out_dir`` wrote: its
    ``tables.json``'s tables (one CSV each) and the plots its ``report.md``
    embeds (every plot written is embedded).  Empty when there is none; an
    unreadable file counts as none (nothing of it is removed)."""
    names: set[str] = set()
    try:
        names |= {f"{t['slug']}.csv" for t in json.loads((out_dir / "tables.json").read_text())["tables"]}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        names |= set(EMBEDDED_PNG.findall((out_dir / "report.md").read_text()))
    except (OSError, UnicodeDecodeError):
        pass
    return {n for n in names if Path(n).name == n and Path(n).suffix in OWN_SUFFIXES}
