"""``python -m harness diff RUN_A RUN_B``: every metric of every variant, old vs new.

Significance comes from the regression gate (:mod:`harness.gate.compare`), so a
``diff`` marker and a gate verdict never disagree:

* timings (p50/p90 per sequence length, throughput per batch size, cold
  start): one-sided Mann-Whitney U on the raw per-round samples plus the
  materiality floor (``compare.timing_verdict``); marked ``*`` with
  "slower"/"faster" only when both hold;
* deterministic metrics (size, parameters, FLOPs, accuracy, peak RSS): the
  tolerances of ``baselines/budgets.toml`` (``compare.compare_rows``);
* the other quality metrics (eval loss, agreement, KL) are shown without a
  marker -- the gate has no rule for them.

Runs from machines whose timing fingerprint differs may be diffed: sizes and
accuracy still compare, the timings are shown but marked "not comparable"
and the output says why.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.gate import budgets, compare
from harness.gate.budgets import METRICS
from harness.measure import peak
from harness.report.common import NA, markdown_table
from harness.report.summary import document
from harness.results import fingerprint, storage
from harness.results.rows import collect

# metric -> (unit, higher is better); p90 is a timing like p50.
UNITS = {**METRICS, "achieved_gflops": ("GFLOP/s", True), "params": ("count", False),
         "nonzero_params": ("count", False), "accuracy": ("%", True), "accuracy_mr": ("%", True),
         "agreement": ("%", True)}
SCALARS = ("size_mb", "params", "nonzero_params", "flops", "time_to_first_result_ms", "cold_start_ms", "peak_rss_mb",
           "accuracy",
           "accuracy_mr", "eval_loss", "agreement", "kl_fp32", "achieved_gflops")
INDEXED = ("p50_ms", "p90_ms", "throughput_sps")
TIMED_METRICS = {"p50_ms", "p90_ms", "throughput_sps", "time_to_first_result_ms", "cold_start_ms", "achieved_gflops"}


@dataclasses.dataclass(frozen=True)
class Change:
    """One metric of one (profile, variant) in both runs.

    ``verdict``: "slower"/"faster" (significant timing change), "worse"/"better"
    (beyond the gate's tolerance), "unchanged", "not comparable" (timings of
    different machines), "" (no rule: shown, not judged) or "only in A"/"only in B"
    (a metric one run lacks; variants only one run has are listed in the notes).
    """

    profile: str
    variant: str
    metric: str
    unit: str
    old: float | None
    new: float | None
    ratio: float | None
    p_value: float | None
    verdict: str

    @property
    def significant(self) -> bool:
        return self.verdict in ("slower", "faster", "worse", "better")

    @property
    def regression(self) -> bool:
        return self.verdict in ("slower", "worse")


def _values(row: dict[str, Any]) -> dict[str, float]:
    out = {m: row.get(m) for m in SCALARS}
    for m in INDEXED:
        for k, v in sorted(row.get(m, {}).items(), key=lambda kv: int(kv[0])):
            out[f"{m}@{k}"] = v
    return {k: v for k, v in out.items() if v is not None}


def _timing_key(result: dict[str, Any]) -> tuple | None:
    m = result["metric"]
    if m == "latency":
        return result["profile"], result["variant"], f"@{result['seq_len']}"
    if m == "throughput":
        return result["profile"], result["variant"], f"throughput_sps@{result['batch_size']}"
    if m == "cold_start":
        return result["profile"], result["variant"], "cold_start_ms"
    return None


def _timing_samples(results: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    return {k: r for r in results if "profile" in r and (k := _timing_key(r))}


def _summary(run: dict[str, Any], path: Path, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's summary document (the rows every report reads), from its results read once."""
    doc = document(run, Path(path), collect(results))
    if not doc["rows"]:
        raise HarnessError(f"{path} has no variants (only machine-level results); "
                           "diff runs saved by 'pytest suites/ --benchmark-autosave'")
    return doc


def diff_runs(path_a: Path, path_b: Path, alpha: float = 0.01, threshold: float = 0.05,
              tolerances: dict[str, float] | None = None) -> tuple[list[Change], list[str]]:
    """All changes from run A (old) to run B (new), and notes for the reader.

    Raises HarnessError: a run missing, not ours, or without variants.
    """
    run_a, run_b = storage.load_run(Path(path_a)), storage.load_run(Path(path_b))
    results_a, results_b = storage.results(run_a), storage.results(run_b)
    doc_a, doc_b = _summary(run_a, path_a, results_a), _summary(run_b, path_b, results_b)
    rows_a, rows_b = doc_a["rows"], doc_b["rows"]
    tolerances = budgets.load_tolerances() if tolerances is None else tolerances
    notes: list[str] = []
    fp_a, fp_b = (r["machine_info"].get("edgebench", {}) for r in (run_a, run_b))
    differ = fingerprint.timing_mismatch(fp_a, fp_b)
    if differ:
        notes.append(f"timings not comparable: the runs come from different machines (fingerprint differs in "
                     f"{', '.join(differ)}); sizes, FLOPs and accuracy still compare")
    gate = {(c.name, c.metric): c for c in compare.compare_rows(rows_a, rows_b, tolerances)}
    samples_a, samples_b = _timing_samples(results_a), _timing_samples(results_b)
    by_a = {(r["profile"], r["variant"]): r for r in rows_a}
    by_b = {(r["profile"], r["variant"]): r for r in rows_b}
    for side, only in (("A", [k for k in by_a if k not in by_b]), ("B", [k for k in by_b if k not in by_a])):
        if only:
            notes.append(f"only in {side} (not diffed): " + ", ".join(f"{v}/{p}" for p, v in only))
    out: list[Change] = []
    for key in (k for k in by_a if k in by_b):
        va, vb = _values(by_a[key]), _values(by_b[key])
        for metric in list(va) + [m for m in vb if m not in va]:
            old, new = va.get(metric), vb.get(metric)
            base = metric.partition("@")[0]
            unit = UNITS.get(base, ("", False))[0]
            ratio = new / old if old not in (None, 0) and new is not None else None
            p = None
            if old is None or new is None:
                verdict = "only in A" if new is None else "only in B"
            elif base in TIMED_METRICS:
                verdict, p = _timing(key, metric, samples_a, samples_b, bool(differ), alpha, threshold)
            elif (f"{key[1]}/{key[0]}", metric) in gate:
                g = gate[(f"{key[1]}/{key[0]}", metric)]
                verdict = {"regression": "worse", "improvement": "better"}.get(g.verdict, g.verdict)
            else:
                verdict = ""
            out.append(Change(key[0], key[1], metric, unit, old, new, ratio, p, verdict))
    out += _peak_changes(doc_a["gemm_peak"], doc_b["gemm_peak"], bool(differ))
    return out, notes


def _peak_changes(pa: dict[str, Any] | None, pb: dict[str, Any] | None, other_machine: bool) -> list[Change]:
    """The machine's GEMM peaks (``suites/test_peak.py``) when both runs measured them:
    shown for context (a lower peak says the machine, not the model, got slower)."""
    if not pa or not pb:
        return []
    out = []
    for metric, unit in ((f"{name}_gops", "GFLOP/s" if name == "fp32" else "GOPS") for name in peak.CEILINGS):
        old, new = pa.get(metric), pb.get(metric)
        if old is not None and new is not None:
            out.append(Change("(machine)", "gemm peak", metric, unit, old, new, new / old if old else None, None,
                              "not comparable" if other_machine else ""))
    return out


def _timing(key: tuple, metric: str, samples_a: dict, samples_b: dict, other_machine: bool,
            alpha: float, threshold: float) -> tuple[str, float | None]:
    if other_machine:
        return "not comparable", None
    base, _, index = metric.partition("@")
    if base == "achieved_gflops":
        return "", None  # derived from p50@128, judged there
    skey = (*key, f"@{index}" if base in ("p50_ms", "p90_ms") else metric)
    ra, rb = samples_a.get(skey), samples_b.get(skey)
    if ra is None or rb is None:
        return "", None
    sa, sb = compare.samples(ra), compare.samples(rb)
    noise = max(compare.noise(ra), compare.noise(rb))
    try:
        verdict, _, p = compare.timing_verdict(sa, sb, noise=noise, alpha=alpha, threshold=threshold)
    except ValueError:  # too few raw samples to ever reach alpha (the minimum-p guard): shown, not judged
        return "", None
    # A throughput sample is a batch's time: slower samples mean lower samples/s.
    return {"regression": "slower", "improvement": "faster"}.get(verdict, verdict), p


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return NA
    base = metric.partition("@")[0]
    if base in ("params", "nonzero_params", "flops"):
        return f"{value:,.0f}"
    if base in ("accuracy", "accuracy_mr", "agreement"):
        return f"{100 * value:.2f}%"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.1f}"


MARK = {"slower": "▲ slower *", "worse": "▲ worse *", "faster": "▼ faster *", "better": "▼ better *"}


def table_rows(changes: list[Change]) -> tuple[list[str], list[list[str]]]:
    headers = ["Model", "Variant", "Metric", "Unit", "A (old)", "B (new)", "B/A", "p (one-sided)", "Change"]
    rows = [[c.profile, c.variant, c.metric, c.unit, _fmt(c.old, c.metric), _fmt(c.new, c.metric),
             NA if c.ratio is None else f"{c.ratio:.3f}×", NA if c.p_value is None else f"{c.p_value:.2g}",
             MARK.get(c.verdict, c.verdict)] for c in changes]
    return headers, rows


def render(changes: list[Change], notes: list[str], name_a: str, name_b: str, fmt: str = "md") -> str:
    """The diff as a markdown table (with a header and notes), CSV or JSON."""
    import csv
    import io
    import json

    headers, rows = table_rows(changes)
    if fmt == "json":
        return json.dumps({"a": name_a, "b": name_b, "notes": notes,
                           "changes": [dataclasses.asdict(c) for c in changes]}, indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([h for h in headers if h != "Change"] + ["Verdict"])
        for c in changes:
            w.writerow([c.profile, c.variant, c.metric, c.unit, c.old, c.new, c.ratio, c.p_value, c.verdict])
        return buf.getvalue()
    n_sig = sum(c.significant for c in changes)
    lines = [f"# diff: A = `{name_a}` → B = `{name_b}`", "",
             *[f"- **Note:** {n}" for n in notes], *([""] if notes else []),
             f"{len(changes)} metrics, {n_sig} significant change(s) (`*`: Mann-Whitney U p < alpha and beyond the "
             "noise floor for timings; beyond the budgets.toml tolerance otherwise).", "",
             markdown_table(rows, headers)]
    return "\n".join(lines) + "\n"
