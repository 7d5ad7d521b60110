"""Compare a run with a stored baseline: verdicts only (asv's rule, not its printer).

Timings (latency, throughput, cold start) count as a regression only when the
slowdown is both

* **significant** -- one-sided Mann-Whitney U on the raw per-round samples,
  p < ``alpha`` (0.01), and
* **material** -- the median ratio (new / median of the blessed runs' medians)
  exceeds 1 + the noise floor: ``max(threshold, 2 × p50_block_cv) + spread``,
  where ``threshold`` is 5%, ``p50_block_cv`` the within-run drift and
  ``spread`` the between-run spread of the blessed runs' medians
  (max / min - 1; 0 with a single blessed run).

Timings are compared only between runs with the same timing fingerprint
(``harness.results.fingerprint.TIMING_KEYS``); otherwise they are reported as not
comparable, never as passed or failed.  Deterministic metrics (size, params,
FLOPs, accuracy, peak RSS) are compared with the tolerances of
``baselines/budgets.toml``.
"""
from __future__ import annotations

import dataclasses
import statistics
from typing import Any

from harness.core.errors import HarnessError
from harness.gate.budgets import METRICS
from harness.results import fingerprint, storage
from harness.results.rows import rows_from_results

TIMED = ("latency", "throughput", "cold_start")
DETERMINISTIC = ("size_mb", "params", "nonzero_params", "flops", "accuracy", "accuracy_mr", "peak_rss_mb")


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One metric of one benchmark, old vs new.

    ``verdict`` is one of "regression", "improvement", "unchanged",
    "not comparable" (other machine) or "missing" (absent from one run).
    """

    name: str
    metric: str
    old: float | None
    new: float | None
    ratio: float | None
    p_value: float | None
    verdict: str
    note: str = ""


def timing_verdict(old: list[float] | list[list[float]], new: list[float], noise: float = 0.0,
                   alpha: float = 0.01, threshold: float = 0.05) -> tuple[str, float, float]:
    """(verdict, median ratio new/old, one-sided p-value of "new is slower").

    ``old`` is one blessed run's samples or a list of several runs' samples.
    Raises ValueError with fewer than 3 samples on either side (a test cannot
    reach p < 0.01 with less).
    """
    from scipy.stats import mannwhitneyu

    runs = old if old and isinstance(old[0], list) else [old]
    pooled = [x for run in runs for x in run]
    if min(len(r) for r in runs) < 3 or len(new) < 3:
        raise ValueError(f"need at least 3 raw samples per run, got {[len(r) for r in runs]} and {len(new)}")
    medians = [statistics.median(r) for r in runs]
    ratio = statistics.median(new) / statistics.median(medians)
    spread = max(medians) / min(medians) - 1
    floor = max(threshold, 2 * noise) + spread
    old = pooled
    p_slower = float(mannwhitneyu(new, old, alternative="greater").pvalue)
    if p_slower < alpha and ratio - 1 > floor:
        return "regression", ratio, p_slower
    p_faster = float(mannwhitneyu(new, old, alternative="less").pvalue)
    if p_faster < alpha and 1 - ratio > floor:
        return "improvement", ratio, p_faster
    return "unchanged", ratio, p_slower


def samples(result: dict[str, Any]) -> list[float]:
    """A timed result's raw per-round samples in seconds (cold start: its per-process samples)."""
    if result["metric"] == "cold_start":
        return [v / 1e3 for v in result.get("cold_start_raw_ms", [])]
    return list(result.get("samples_s") or result.get("stats", {}).get("data") or [])


def noise(result: dict[str, Any]) -> float:
    """The result's within-run drift ``p50_block_cv`` (0 when not recorded)."""
    value = result.get("p50_block_cv")
    return float(value) if isinstance(value, (int, float)) else 0.0


def compare_timings(old_runs: list[list[dict[str, Any]]], new: list[dict[str, Any]],
                    **kwargs: Any) -> list[Comparison]:
    """Timed benchmarks matched by name.

    ``old_runs`` holds the results (as from ``storage.results``) of one or more
    blessed runs; ``new`` those of the run under test.
    """
    out = []
    for r in (r for r in new if r["metric"] in TIMED):
        bases = [b for run in old_runs for b in run if b["name"] == r["name"]]
        if not bases:
            out.append(Comparison(r["name"], "time", None, None, None, None, "missing", "not in the baseline"))
            continue
        a, b = [samples(x) for x in bases], samples(r)
        if min(len(x) for x in a) < 3 or len(b) < 3:
            side = "the baseline" if min(len(x) for x in a) < 3 else "the new run"
            raise HarnessError(f"{r['name']}: {side} has fewer than 3 raw samples, so no significance test is "
                               "possible; re-run with --benchmark-save-data (on by default) and enough rounds")
        drift = max([noise(x) for x in bases] + [noise(r)])
        verdict, ratio, p = timing_verdict(a, b, noise=drift, **kwargs)
        old_median = statistics.median(statistics.median(x) for x in a)
        out.append(Comparison(r["name"], "median s", old_median, statistics.median(b), ratio, p, verdict,
                              f"{len(a)} blessed runs" if len(a) > 1 else ""))
    return out


def compare_rows(old_rows: list[dict[str, Any]], new_rows: list[dict[str, Any]],
                 tolerances: dict[str, float]) -> list[Comparison]:
    """Deterministic metrics of summary rows, with relative (or ``*_abs``) tolerances."""
    old_by = {(r["profile"], r["variant"], r.get("backend", "torch")): r for r in old_rows}
    out = []
    for row in new_rows:
        backend = row.get("backend", "torch")
        base = old_by.get((row["profile"], row["variant"], backend))
        name = f"{row['variant']}/{row['profile']}{'' if backend == 'torch' else '/' + backend}"
        for metric in DETERMINISTIC:
            new, old = row.get(metric), None if base is None else base.get(metric)
            if new is None or old is None:
                if new is not None:
                    out.append(Comparison(name, metric, None, new, None, None, "missing", "not in the baseline"))
                continue
            higher_better = METRICS[metric][1]
            if f"{metric}_abs" in tolerances:
                worse = (old - new) if higher_better else (new - old)
                allowed = tolerances[f"{metric}_abs"]
            else:
                worse = ((old - new) if higher_better else (new - old)) / old if old else 0.0
                allowed = tolerances.get(metric, 0.0)
            verdict = "regression" if worse > allowed + 1e-12 else "improvement" if worse < -allowed - 1e-12 else "unchanged"
            out.append(Comparison(name, metric, old, new, new / old if old else None, None, verdict))
    return out


def compare_runs(old_runs: list[dict[str, Any]], new_run: dict[str, Any], tolerances: dict[str, float],
                 **kwargs: Any) -> tuple[list[Comparison], list[str]]:
    """All comparisons of a run with one or more blessed runs, plus notes
    (another machine, a single blessed run)."""
    notes: list[str] = []
    new_res = storage.results(new_run)
    old_res = [storage.results(run) for run in old_runs]
    comps = compare_rows(rows_from_results(old_res[-1]), rows_from_results(new_res), tolerances)
    fp_new = new_run["machine_info"].get("edgebench", {})
    differ = sorted({k for run in old_runs
                     for k in fingerprint.timing_mismatch(run["machine_info"].get("edgebench", {}), fp_new)})
    if differ:
        notes.append(f"timings not compared: the baseline was measured on another machine "
                     f"(fingerprint differs in {', '.join(differ)}); bless a baseline on this machine")
    else:
        if len(old_runs) == 1:
            notes.append("one blessed run: the between-run noise floor is unknown; bless 3 runs of an unchanged "
                         "tree to measure it")
        comps += compare_timings(old_res, new_res, **kwargs)
    return comps, notes
