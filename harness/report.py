"""Turn a saved run into ``report.md`` (tabulate tables) and ``summary.json``.

Every figure comes from the saved run; nothing is recomputed or typed in.
Missing measurements show as "–" (or "n/a (random weights)" for accuracy of a
profile without trained weights), never as a number.
"""
from __future__ import annotations

import datetime as _dt
from collections import defaultdict
from pathlib import Path
from typing import Any

from tabulate import tabulate

from . import atomic, storage
from .profiles import PROFILES

NA = "–"
NA_RANDOM = "n/a (random weights)"


def rows_from_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary row per (profile, variant), in order of first appearance.

    ``results`` are benchmarks' ``extra_info`` dicts (``storage.results``, or the
    suite's in-session records).
    """
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        if r["metric"] == "int8_engine":
            continue
        key = (r["profile"], r["variant"])
        row = by_key.setdefault(key, {
            "profile": key[0], "variant": key[1], "size_mb": None, "params": None,
            "nonzero_params": None, "sparsity": None, "linear_sparsity": None, "flops": None, "macs_fvcore": None, "size_sparse_mb": None,
            "cold_start_ms": None, "load_ms": None, "first_forward_ms": None,
            "p50_ms": {}, "p90_ms": {}, "p99_ms": {}, "cv": {}, "p50_block_cv": {}, "throughput_sps": {},
            "peak_rss_mb": None, "peak_rss_delta_mb": None, "accuracy": None,
            "accuracy_ci95": None, "accuracy_mr": None, "accuracy_mr_ci95": None,
            "eval_loss": None, "eval_loss_mr": None, "agreement": None, "kl_fp32": None,
            "quant_engine": None, "quantized_linear_fraction": None,
            "real_weights": PROFILES[key[0]].real_weights if key[0] in PROFILES else None,
        })
        m = r["metric"]
        if m == "static":
            for k in ("size_mb", "size_sparse_mb", "params", "nonzero_params", "sparsity", "linear_sparsity",
                      "flops", "macs_fvcore",
                      "quant_engine", "quantized_linear_fraction"):
                row[k] = r.get(k)
        elif m == "latency":
            s = str(r["seq_len"])
            row["p50_ms"][s], row["p90_ms"][s], row["p99_ms"][s] = r["p50_ms"], r["p90_ms"], r["p99_ms"]
            row["cv"][s] = r["cv"]
            row["p50_block_cv"][s] = r.get("p50_block_cv")
        elif m == "throughput":
            row["throughput_sps"][str(r["batch_size"])] = r["throughput_sps"]
        elif m == "cold_start":
            for k in ("cold_start_ms", "load_ms", "first_forward_ms"):
                row[k] = r[k]
        elif m == "memory":
            row["peak_rss_mb"], row["peak_rss_delta_mb"] = r["peak_rss_mb"], r["peak_rss_delta_mb"]
        elif m == "quality":
            from .tasks import eval_suffix

            suffix = eval_suffix(r["eval_set"])
            row["accuracy" + suffix] = r["accuracy"]
            row[f"accuracy{suffix}_ci95"] = r["accuracy_ci95"]
            row["eval_loss" + suffix] = r["eval_loss"]
            if not suffix:
                row["agreement"], row["kl_fp32"] = r["agreement"], r["kl_fp32"]
    return list(by_key.values())


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


def summary(run: dict[str, Any], run_path: Path) -> dict[str, Any]:
    """The ``summary.json`` document: machine fingerprint and one row per variant."""
    rows = rows_from_results(storage.results(run))
    fp32 = {r["profile"]: r for r in rows if r["variant"] == "fp32"}
    for r in rows:
        r["flags"] = flags(r, fp32.get(r["profile"]))
    return {
        "run": run_path.name,
        "datetime": run.get("datetime"),
        "machine": run["machine_info"].get("edgebench", {}),
        "rows": rows,
        "vision": _vision_rows(storage.results(run)),
        "int8_engines": [
            {"profile": r["profile"], "engine": r["engine"], "p50_ms": r["p50_ms"], "cv": r["cv"]}
            for r in storage.results(run) if r["metric"] == "int8_engine"
        ],
    }


def _f(value: Any, fmt: str = "{:.1f}") -> str:
    return NA if value is None else fmt.format(value)


def _pct(value: Any) -> str:
    return _f(None if value is None else 100 * value, "{:.1f}%")


def _acc(row: dict[str, Any], key: str) -> str:
    if row.get("real_weights") is False:
        return NA_RANDOM
    value, ci = row.get(key), row.get(f"{key}_ci95")
    if value is None:
        return NA
    return f"{100 * value:.2f}% [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else f"{100 * value:.2f}%"


def _ratio(a: Any, b: Any) -> str:
    return NA if a is None or b in (None, 0) else f"{a / b:.2f}×"


def render(doc: dict[str, Any]) -> str:
    rows = doc["rows"]
    fp32 = {r["profile"]: r for r in rows if r["variant"] == "fp32"}
    out: list[str] = ["# Benchmark report", ""]
    m = doc["machine"]
    out += [f"Run `{doc['run']}` ({doc.get('datetime') or 'unknown time'}) on {m.get('cpu_model', '?')}, "
            f"{m.get('threads', '?')} threads. MB = 10^6 bytes; latencies are batch 1; all variants "
            "measured in the same run.", ""]

    out += ["## Key comparison", ""]
    table = [[r["profile"], r["variant"], _f(r["size_mb"], "{:.2f}"), _f(r["params"], "{:,}"),
              _f(r["nonzero_params"], "{:,}"), _f(r["cold_start_ms"]), _f(r["p50_ms"].get("128"), "{:.2f}"),
              _f(r["throughput_sps"].get("32"), "{:.2f}"), _f(r["peak_rss_mb"]),
              _acc(r, "accuracy"), _acc(r, "accuracy_mr"),
              NA_RANDOM if r["real_weights"] is False else _f(r["eval_loss"], "{:.4f}")] for r in rows]
    out += [tabulate(table, headers=["Model", "Variant", "Size MB", "Params", "Non-zero", "Cold start ms",
                                     "p50 ms @128", "Throughput sps @32", "Peak RSS MB",
                                     "Accuracy IMDB [95% CI]", "Accuracy MR [95% CI]", "Eval loss IMDB"],
                     tablefmt="github", disable_numparse=True), ""]

    out += ["## Versus FP32 in the same run", ""]
    table = []
    for r in rows:
        base = fp32.get(r["profile"])
        if not base or r["variant"] == "fp32":
            continue
        acc_delta = (NA_RANDOM if r["real_weights"] is False else
                     NA if r["accuracy"] is None or base["accuracy"] is None else
                     f"{100 * (r['accuracy'] - base['accuracy']):+.2f} pt")
        table.append([r["profile"], r["variant"], _ratio(r["size_mb"], base["size_mb"]),
                      _ratio(r["p50_ms"].get("128"), base["p50_ms"].get("128")),
                      _ratio(r["throughput_sps"].get("32"), base["throughput_sps"].get("32")),
                      _ratio(r["peak_rss_delta_mb"], base["peak_rss_delta_mb"]), acc_delta,
                      _f(r["agreement"], "{:.4f}"), _f(r["kl_fp32"], "{:.5f}"), ", ".join(r.get("flags", [])) or ""])
    out += [tabulate(table, headers=["Model", "Variant", "Size ×", "p50 @128 ×", "Throughput @32 ×",
                                     "Peak RSS Δ ×", "Accuracy IMDB Δ", "Agreement", "KL(fp32‖variant) nats",
                                     "Flags"],
                     tablefmt="github", disable_numparse=True) if table else "(no variant besides fp32)", ""]

    seqs = sorted({int(s) for r in rows for s in r["p50_ms"]})
    out += ["## Latency vs sequence length (batch 1): p50 / p90 ms", ""]
    table = [[r["profile"], r["variant"]] + [
        f"{r['p50_ms'][str(s)]:.2f} / {r['p90_ms'][str(s)]:.2f}" if str(s) in r["p50_ms"] else NA for s in seqs]
        for r in rows]
    out += [tabulate(table, headers=["Model", "Variant"] + [f"seq {s}" for s in seqs],
                     tablefmt="github", disable_numparse=True), ""]
    out += ["Noise: coefficient of variation of the rounds (stddev / mean) · of the p50 over 5 consecutive "
            "blocks of rounds (how reproducible the reported p50 is):", ""]

    table = [[r["profile"], r["variant"]] + [f"{_pct(r['cv'].get(str(s)))} · {_pct(r['p50_block_cv'].get(str(s)))}"
                                             for s in seqs] for r in rows]
    out += [tabulate(table, headers=["Model", "Variant"] + [f"seq {s}" for s in seqs],
                     tablefmt="github", disable_numparse=True), ""]

    batches = sorted({int(b) for r in rows for b in r["throughput_sps"]})
    out += ["## Throughput vs batch size (seq 128): samples/s", ""]
    table = [[r["profile"], r["variant"]] + [_f(r["throughput_sps"].get(str(b)), "{:.2f}") for b in batches]
             for r in rows]
    out += [tabulate(table, headers=["Model", "Variant"] + [f"batch {b}" for b in batches],
                     tablefmt="github", disable_numparse=True), ""]

    out += ["## Cold start (fresh process, median) and memory", ""]
    table = [[r["profile"], r["variant"], _f(r["load_ms"]), _f(r["first_forward_ms"]), _f(r["cold_start_ms"]),
              _f(r["peak_rss_mb"]), _f(r["peak_rss_delta_mb"])] for r in rows]
    out += [tabulate(table, headers=["Model", "Variant", "Load ms", "First forward ms", "Cold start ms",
                                     "Peak RSS MB", "Peak RSS over post-import MB"],
                     tablefmt="github", disable_numparse=True), ""]

    out += ["## Compute and quantization", ""]
    table = [[r["profile"], r["variant"], _f(r["flops"] and r["flops"] / 1e9, "{:.3f}"),
              _f(r["macs_fvcore"] and r["macs_fvcore"] / 1e9, "{:.3f}"), _f(r["sparsity"], "{:.4f}"),
              _f(r["linear_sparsity"], "{:.4f}"),
              _f(r["size_sparse_mb"], "{:.2f}"),
              r["quant_engine"] or NA, _f(r["quantized_linear_fraction"], "{:.2f}")] for r in rows]
    out += [tabulate(table, headers=["Model", "Variant", "GFLOPs (bs1, seq128)", "fvcore GMACs (no attention)",
                                     "Sparsity", "Encoder Linear sparsity", "CSR size MB", "INT8 engine",
                                     "Linear layers quantized"],
                     tablefmt="github", disable_numparse=True), ""]

    sweep = _sweep_table(rows, fp32)
    if sweep:
        out += ["## Magnitude-pruning sweep (study 002): global vs layer-wise", "",
                "Target sparsity of the encoder's Linear weights; accuracy on the IMDB test split and MR; "
                "p50 @128 relative to fp32 in the same run.", "", sweep, ""]

    if doc["int8_engines"]:
        out += ["## INT8 engines (seq 128, batch 1, same run)", ""]
        table = [[e["profile"], e["engine"], f"{e['p50_ms']:.2f}", _pct(e["cv"])]
                 for e in doc["int8_engines"]]
        out += [tabulate(table, headers=["Model", "Engine", "p50 ms", "CV"], tablefmt="github",
                         disable_numparse=True), ""]

    from .report_vision import render_section

    out += render_section(doc)

    if doc.get("budgets"):
        out += ["## Budgets (baselines/budgets.toml)", ""]
        table = [[v["verdict"], v["message"]] for v in doc["budgets"]]
        out += [tabulate(table, headers=["Verdict", "Measured"], tablefmt="github", disable_numparse=True), ""]

    out += ["## Machine", ""]
    out += [tabulate([[k, ", ".join(v) if isinstance(v, list) else str(v)] for k, v in sorted(m.items())],
                     headers=["Key", "Value"], tablefmt="github", disable_numparse=True), ""]
    out += [f"_Generated {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')} "
            f"from `{doc['run']}`; machine id `{m.get('machine_id', '?')}`._", ""]
    return "\n".join(out)


def _budget_verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from . import budgets

    out = [{"verdict": v.label, "message": v.message, "why": v.budget.why}
           for v in budgets.evaluate_all(budgets.load_budgets(), rows)]
    return sorted(out, key=lambda v: v["verdict"] != "FAIL")


def write_report(run_path: Path | None, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``summary.json`` into ``out_dir`` (atomically).

    Raises HarnessError for a missing, foreign or empty run.
    """
    run_path = Path(run_path) if run_path else storage.newest_run()
    run = storage.load_run(run_path)
    doc = summary(run, run_path)
    doc["budgets"] = _budget_verdicts(doc["rows"])
    if not doc["rows"]:
        from .errors import HarnessError

        raise HarnessError(f"{run_path} has no results of this suite's metrics; re-run 'pytest suites/ --benchmark-autosave'")
    md, js = out_dir / "report.md", out_dir / "summary.json"
    text = render(doc)
    atomic.write_json(js, doc)
    atomic.write_text(md, text)
    return md, js


def _sweep_table(rows: list[dict[str, Any]], fp32: dict[str, dict[str, Any]]) -> str:
    """Rows ``magnitude-{global,layerwise}@S[:recovery_epochs=N]`` (no chain) side by
    side per profile, S and recovery epochs."""
    import compressors

    cells: dict[tuple[str, float, int], dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        if "+" in r["variant"]:
            continue
        method, arg, options = compressors.split_spec(r["variant"])
        if method in ("magnitude-global", "magnitude-layerwise") and arg is not None:
            key = (r["profile"], float(arg), int(options.get("recovery_epochs", 0)))
            cells[key][method.split("-")[1]] = r
    table = []
    for (profile, target, epochs), by in sorted(cells.items()):
        base = fp32.get(profile, {})
        line = [profile, f"{target:.2f}", str(epochs)]
        for method in ("global", "layerwise"):
            r = by.get(method)
            line += [NA, NA, NA] if r is None else [
                _acc(r, "accuracy").split(" [")[0], _acc(r, "accuracy_mr").split(" [")[0],
                _ratio(r["p50_ms"].get("128"), base.get("p50_ms", {}).get("128"))]
        table.append(line)
    if not table:
        return ""
    return tabulate(table, headers=["Model", "Sparsity", "Recovery epochs", "Global IMDB", "Global MR",
                                    "Global p50 ×", "Layer-wise IMDB", "Layer-wise MR", "Layer-wise p50 ×"],
                    tablefmt="github", disable_numparse=True)


def render_comparisons(comparisons: list[Any], notes: list[str]) -> str:
    """Markdown table of ``harness.compare.Comparison`` verdicts, regressions first."""
    order = {"regression": 0, "missing": 1, "not comparable": 2, "improvement": 3, "unchanged": 4}
    table = [[c.name, c.metric, _f(c.old, "{:.6g}"), _f(c.new, "{:.6g}"), _f(c.ratio, "{:.3f}"),
              _f(c.p_value, "{:.2g}"), c.verdict + (f" ({c.note})" if c.note else "")]
             for c in sorted(comparisons, key=lambda c: order.get(c.verdict, 9))]
    text = tabulate(table, headers=["Benchmark", "Metric", "Old", "New", "New/old", "p (slower)", "Verdict"],
                    tablefmt="github", disable_numparse=True) if table else "(nothing to compare)"
    return "\n".join([*notes, text] if notes else [text])


def render_budgets(verdicts: list[Any]) -> str:
    """Markdown table of ``harness.budgets.BudgetVerdict`` results."""
    table = [[v.label, v.message, v.budget.why]
             for v in sorted(verdicts, key=lambda v: (v.passed is not False, v.passed is None))]
    return tabulate(table, headers=["Verdict", "Measured", "Why this budget"], tablefmt="github",
                    disable_numparse=True) if table else "(no budgets apply)"


def _vision_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from .report_vision import vision_rows  # the study-004 table (issue 9)

    return vision_rows(results)
