"""Compare a run with its machine's blessed runs: verdicts only (``harness.report.gate`` prints them).

Timings: the stored-baseline gate on run-level values (issue 16, item 7)
-----------------------------------------------------------------------
Per-round samples of one run share a run-level offset (thermal state, neighbours,
allocator state) and are autocorrelated, so a test on pooled per-round samples
(the Mann-Whitney U rule of :func:`timing_verdict`, which ``harness diff`` still
uses for two single runs) is "significant" for any 1% offset: it false-alarmed on
16% of unchanged benchmarks in the issue's simulation.  The gate therefore judges
**one number per benchmark and run**, and only numbers the interleaved timing
design makes drift-cancelling (:func:`run_level_values`):

* ``p50_ratio@L`` -- the in-run paired ratio of a cell's p50 at sequence length L
  to the reference fp32's of the same profile (torch; onnxruntime for an ONNX file; lower is better);
* ``throughput_ratio@B`` -- the cell's throughput at batch size B / torch fp32's
  (higher is better).

Each is compared with the same quantity of the k >= 3 blessed runs of this
machine, on the log scale (:func:`prediction`).  Like pyperf, which spreads its
values over many worker processes because the variance between processes
dominates, the unit of replication is the run, not the round.  With ``m`` and
``s`` the mean and standard deviation of the blessed log values (after a
one-outlier screen, ``s`` floored at 0.5%: see :func:`_screen`, :data:`S_FLOOR`),
a benchmark is a **regression** when all three hold (like asv's ``compare``, a
change must be both significant and larger than a factor):

1. the new value lies beyond the one-sided (1 - alpha) = 99% prediction bound
   ``m + t(1 - alpha, k - 1) * s * sqrt(1 + 1/k)`` -- the normal-theory interval
   for one future observation (Hahn & Meeker, *Statistical Intervals*, 1991,
   ch. 4), i.e. its one-sided p-value from the same t model is below alpha;
2. that p-value, Benjamini-Hochberg adjusted across every gated benchmark of the
   comparison, is below alpha (the expected share of false regressions among
   those flagged stays <= alpha however many benchmarks the selection has, and
   with nothing changed the chance of any false alarm at all stays <= alpha);
3. the effect exceeds ``threshold`` (5%): smaller changes are not material.

BH costs power as the selection grows (a lone regression's p must beat about
alpha / m), which is why ``baselines.KEEP`` is 10: with 20 gated benchmarks of
1.5% run-level sd a 20% slowdown is found ~5% of the time with k = 3 blessed
runs, ~80% with 5 and ~100% with 10 (``python tests/test_compare.py``).

"improvement" is the mirror image; anything else is "unchanged".  Minimum-p
guard (issue 16: never run a test whose minimum attainable p is above alpha):
the t model's p-value reaches any value above 0 for k >= 3, so the guard only
bites on the Mann-Whitney path (:func:`mwu_min_p`).

Shown, never judged ("information"): the absolute p50 / throughput / cold
start of the fp32 cells (they drift 17-27% between runs on this machine) and the
A/A control ratio.

A run saved before issue 16 (rows whose ``timing_design`` is "single-block" or
absent) has no paired ratios: its timings are reported "not comparable"
("single-block timing, no CI"), and blessed runs of that kind never count
towards k.  With fewer than 3 usable blessed runs timings are "not judged" and a
note says how many more to bless.  A run that failed its own A/A control has
its gated timings marked "machine too noisy", never a pass (issue 16, item 4).

Timings are compared only between runs with the same timing fingerprint
(``harness.results.fingerprint.TIMING_KEYS``); otherwise they are left out with a
note.  Deterministic metrics (size, params, FLOPs, accuracy, peak RSS) are
compared with the tolerances of ``baselines/budgets.toml``.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import statistics
from collections.abc import Iterator
from typing import Any

import numpy as np
from scipy import special, stats

from harness.core.errors import HarnessError
from harness.gate.budgets import METRICS
from harness.measure.stats import AA_BOUNDS
from harness.results import fingerprint, storage
from harness.results.rows import is_reference, rows_from_results

DETERMINISTIC = ("size_mb", "params", "nonzero_params", "flops", "accuracy", "accuracy_mr", "peak_rss_mb")

ALPHA = 0.01
EFFECT = 0.05
MIN_BLESSED = 3
INTERLEAVED = "interleaved"
SINGLE_BLOCK_NOTE = "single-block timing, no CI"
# Verdicts that fail the gate (``python -m harness compare`` exits 1 on them).
FAILING = ("regression", "machine too noisy")

# Floor of the blessed runs' log standard deviation (0.5%).  A run-level value is
# the median of >= 7 paired block ratios whose 95% CI half-width the timing design
# drives to about 1%, i.e. a sampling sd of about 0.5%: the between-run sd cannot
# be smaller than the value's own sampling error, so a smaller s is chance
# agreement of few runs (or values rounded alike), not a quieter machine.  Only
# makes the bound wider, so it never adds a false alarm.
S_FLOOR = 0.005
# The outlier screen (see _screen) runs from this many blessed runs on, so that
# at least 4 remain: with 3 (t on 2 degrees of freedom) the bound is too wide to
# be worth the trade.
SCREEN_MIN_K = 5
SCREEN_ALPHA = 0.01

# (row field, higher is better) of the gated in-run ratios, {index: {"ratio": x, "ci95": [lo, hi], "n": n}}.
GATED_RATIOS = (("p50_ratio", False), ("throughput_ratio", True))
# (row field, higher is better) of the absolute timings, {index: value}; information only.
ABSOLUTE = (("p50_ms", False), ("throughput_sps", True))


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One metric of one benchmark, blessed vs new.

    ``verdict`` is one of "regression", "improvement", "unchanged",
    "machine too noisy" (the new run failed its A/A control), "not judged"
    (fewer than 3 blessed runs), "information" (shown, not gated),
    "not comparable" (single-block timing) or "missing" (absent from one side).
    For timings ``old`` is the blessed runs' centre (geometric mean), ``ratio``
    new / centre, ``bound`` the one-sided prediction bound on the worse side (in
    the value's unit) and ``p_value`` the Benjamini-Hochberg adjusted one-sided
    p of "new is worse"; for deterministic metrics ``old`` is the newest blessed
    run's value.  ``gated``: False for information rows.
    """

    name: str
    metric: str
    old: float | None
    new: float | None
    ratio: float | None
    p_value: float | None
    verdict: str
    note: str = ""
    bound: float | None = None
    gated: bool = True


class InsufficientBaseline(ValueError):
    """Fewer than :data:`MIN_BLESSED` blessed values: the message says how many more to bless."""


def bless_more(k: int) -> str:
    """The note for ``k`` < 3 usable blessed runs: how many more to bless."""
    return f"{k} blessed run(s): {_bless_hint(k)}"


def _bless_hint(k: int) -> str:
    return f"bless {MIN_BLESSED - k} more of an unchanged tree before timings are judged"


# -- the old per-round rule, for ``harness diff`` ------------------------------------------------------------


def mwu_min_p(n: int, m: int) -> float:
    """The smallest one-sided p-value an exact Mann-Whitney U test of ``n`` vs ``m``
    samples can reach: ``1 / C(n + m, n)`` (every sample of one side above every
    sample of the other, no ties).  3 vs 3 gives 0.05 and 4 vs 4 0.014, so
    p < 0.01 is unattainable there."""
    return 1 / math.comb(n + m, n)


def timing_verdict(old: list[float] | list[list[float]], new: list[float], noise: float = 0.0,
                   alpha: float = ALPHA, threshold: float = EFFECT) -> tuple[str, float, float]:
    """(verdict, median ratio new/old, one-sided p-value of "new is slower").

    The pre-issue-16 rule, kept for ``harness diff`` of two single runs: one-sided
    Mann-Whitney U on the raw per-round samples (seconds), and material when the
    median ratio exceeds ``max(threshold, 2 * noise) + spread`` (``noise``: the
    within-run drift ``p50_block_cv``; ``spread``: max / min - 1 of the blessed
    runs' medians).  It treats autocorrelated rounds sharing a run-level offset as
    independent, which is why the stored-baseline gate no longer uses it.

    ``old`` is one run's samples or a list of several runs' samples.
    Raises ValueError when a side is empty or when the smallest attainable
    one-sided p (:func:`mwu_min_p`) exceeds ``alpha``: such a test could never
    call a change, so running it would only pretend to judge.
    """
    runs = old if old and isinstance(old[0], list) else [old]
    pooled = [x for run in runs for x in run]
    if not new or not all(runs):
        raise ValueError(f"need raw samples on both sides, got {[len(r) for r in runs]} and {len(new)}")
    floor_p = mwu_min_p(len(pooled), len(new))
    if floor_p > alpha:
        raise ValueError(f"{len(pooled)} baseline vs {len(new)} new samples: the smallest one-sided Mann-Whitney p "
                         f"attainable is {floor_p:.3g} > alpha = {alpha}, so no change could ever be called; "
                         "time more rounds (5 vs 5 reaches 0.004)")
    medians = [statistics.median(r) for r in runs]
    ratio = statistics.median(new) / statistics.median(medians)
    spread = max(medians) / min(medians) - 1
    floor = max(threshold, 2 * noise) + spread
    p_slower = float(stats.mannwhitneyu(new, pooled, alternative="greater").pvalue)
    if p_slower < alpha and ratio - 1 > floor:
        return "regression", ratio, p_slower
    p_faster = float(stats.mannwhitneyu(new, pooled, alternative="less").pvalue)
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


# -- the run-level rule --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Prediction:
    """A new run-level value against the blessed ones (:func:`prediction`).

    ``centre`` (value units) is exp(mean of the kept blessed log values), ``scale``
    their standard deviation ``s`` (log units, >= :data:`S_FLOOR`), ``k`` how many
    were kept (``dropped``: index of the one the outlier screen left out, or
    None), ``ratio`` new / centre.  ``bound`` / ``better_bound`` are the one-sided
    (1 - alpha) prediction bounds on the worse / better side (value units);
    ``p_worse`` / ``p_better`` the one-sided p-values of "new is worse / better"
    from the same t model (``p_worse < alpha`` exactly when ``new`` is beyond
    ``bound``).
    """

    k: int
    dropped: int | None
    centre: float
    scale: float
    ratio: float
    bound: float
    better_bound: float
    p_worse: float
    p_better: float
    higher_is_better: bool

    @property
    def worse_factor(self) -> float:
        """How many times worse the new value is than the centre (< 1: better)."""
        return 1 / self.ratio if self.higher_is_better else self.ratio

    def verdict(self, alpha: float = ALPHA, effect: float = EFFECT, p_worse: float | None = None,
                p_better: float | None = None) -> str:
        """"regression" / "improvement" / "unchanged"; ``p_worse`` / ``p_better``
        replace the raw p-values (e.g. by Benjamini-Hochberg adjusted ones, which are
        never smaller, so "beyond the bound" still holds)."""
        p_worse = self.p_worse if p_worse is None else p_worse
        p_better = self.p_better if p_better is None else p_better
        if p_worse < alpha and self.worse_factor > 1 + effect:
            return "regression"
        if p_better < alpha and 1 / self.worse_factor > 1 + effect:
            return "improvement"
        return "unchanged"


@functools.lru_cache(maxsize=256)
def _t_quantile(q: float, df: int) -> float:
    """``scipy.stats.t.ppf`` (cached: a comparison asks for the same few hundred times)."""
    return float(stats.t.ppf(q, df))


def _t_sf(x: float, df: int) -> float:
    """``scipy.stats.t.sf(x, df)`` via the ufunc ``special.stdtr`` (30 times faster; the simulations call it often)."""
    return float(special.stdtr(df, -x))


def _sd(logs: np.ndarray) -> float:
    return max(float(np.std(logs, ddof=1)), S_FLOOR)


def _screen(logs: np.ndarray) -> int | None:
    """Index of one blessed run to leave out as an outlier, or None.

    Why not a robust scale such as 1.4826 * MAD: the t quantile is exact only for
    the sample sd.  Measured with normal run-level noise, MAD with t false-alarms
    (before the effect floor) 6.1% / 4.4% / 2.6% at k = 3 / 5 / 10 instead of 1%,
    and MAD's own calibrated 99% quantile (46 / 8.9 / 3.8) would leave k = 3..5 almost
    blind.  So ``s`` is the sample sd, and robustness comes from this screen
    instead (Grubbs-type, ASTM E178): each run's deletion residual
    ``(x_j - mean_others) / (sd_others * sqrt(1 + 1/(k-1)))`` is exactly t on k-2
    degrees of freedom under no outlier; the most extreme one is dropped when it
    exceeds the two-sided Bonferroni quantile at :data:`SCREEN_ALPHA`, so an
    unchanged, well-behaved baseline loses a run at most 1% of the time, while one
    bad blessed run (a noisy neighbour during that run) no longer inflates ``s``
    and blinds the gate.  At most one run is dropped.  The price, measured with
    normal noise: the bound alone false-alarms 1.3% instead of 1.0% at k = 5 (the
    runs left after dropping an honest extreme one are too tight); with the 5%
    effect floor on ratios of 1.5% run-level sd it stays below 0.1%.
    """
    k = len(logs)
    if k < SCREEN_MIN_K:
        return None
    x = logs - logs.mean()  # centred, so the leave-one-out sums below lose no precision
    mean_others = (x.sum() - x) / (k - 1)
    sd_others = np.sqrt(np.maximum((x @ x - x * x - (k - 1) * mean_others ** 2) / (k - 2), 0.0))
    residuals = np.abs(x - mean_others) / (np.maximum(sd_others, S_FLOOR) * math.sqrt(1 + 1 / (k - 1)))
    j = int(np.argmax(residuals))
    return j if residuals[j] > _t_quantile(1 - SCREEN_ALPHA / (2 * k), k - 2) else None


def prediction(history: list[float], new: float, higher_is_better: bool, alpha: float = ALPHA) -> Prediction:
    """The new run-level value against the blessed runs' values of the same benchmark.

    ``history``: one positive value per blessed run (a ratio, or any positive
    timing); ``new``: the run under test's value.  On the log scale (ratios are
    multiplicative): after the outlier screen (:func:`_screen`), centre = mean,
    ``s`` = sample sd floored at :data:`S_FLOOR`, bound = centre +/- t(1 - alpha,
    k - 1) * s * sqrt(1 + 1/k); p-values are the t(k - 1) tail probabilities of the
    standardised prediction error ``(log new - centre) / (s * sqrt(1 + 1/k))``.
    For k >= 3 any p in (0, 1] is attainable, so the minimum-p guard always passes.

    Raises InsufficientBaseline (a ValueError) with fewer than 3 values, naming
    how many more runs to bless; ValueError for a value <= 0.
    """
    if len(history) < MIN_BLESSED:
        raise InsufficientBaseline(bless_more(len(history)))
    if new <= 0 or min(history) <= 0:
        raise ValueError(f"run-level values must be positive (log scale), got {history} and {new}")
    logs = np.log(np.asarray(history, dtype=float))
    dropped = _screen(logs)
    if dropped is not None:
        logs = np.delete(logs, dropped)
    k = len(logs)
    mean, s = float(logs.mean()), _sd(logs)
    spread = s * math.sqrt(1 + 1 / k)
    z = (math.log(new) - mean) / spread
    worse = -1.0 if higher_is_better else 1.0  # the direction of "worse" on the log scale
    q = _t_quantile(1 - alpha, k - 1)
    return Prediction(k=k, dropped=dropped, centre=math.exp(mean), scale=s, ratio=new / math.exp(mean),
                      bound=math.exp(mean + worse * q * spread), better_bound=math.exp(mean - worse * q * spread),
                      p_worse=_t_sf(worse * z, k - 1), p_better=_t_sf(-worse * z, k - 1),
                      higher_is_better=higher_is_better)


def prediction_verdict(history: list[float], new: float, higher_is_better: bool, alpha: float = ALPHA,
                       effect: float = EFFECT) -> tuple[str, float, float]:
    """(verdict, ratio new / centre, worse-side bound) of one benchmark judged alone
    (no Benjamini-Hochberg: that needs every benchmark of the comparison, see
    :func:`compare_timings`).  Raises as :func:`prediction`."""
    pred = prediction(history, new, higher_is_better, alpha)
    return pred.verdict(alpha, effect), pred.ratio, pred.bound


# -- run-level values of a run's rows ------------------------------------------------------------------------


def cell_name(row: dict[str, Any]) -> str:
    """``variant/profile`` (torch) or ``variant/profile/backend``: a row's benchmark name."""
    backend = row.get("backend", "torch")
    return f"{row['variant']}/{row['profile']}{'' if backend == 'torch' else '/' + backend}"


def _indexed(values: dict[str, Any] | None) -> Iterator[tuple[str, Any]]:
    """``{"128": v, "16": w}`` in numeric order of the index (``"latency@128"``: by axis, then number)."""
    def order(kv: tuple[str, Any]) -> tuple[str, int]:
        axis, _, number = kv[0].rpartition("@")
        return axis, int(number)

    yield from sorted((values or {}).items(), key=order)


def _absolute(row: dict[str, Any]) -> Iterator[tuple[str, float, bool]]:
    """(metric, value, higher is better) of the row's absolute timings."""
    for field, higher in ABSOLUTE:
        for index, value in _indexed(row.get(field)):
            if value is not None:
                yield f"{field}@{index}", float(value), higher
    if row.get("cold_start_ms") is not None:
        yield "cold_start_ms", float(row["cold_start_ms"]), False


def run_level_values(rows: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[float, bool, bool]]:
    """``{(benchmark name, metric): (value, higher_is_better, gated)}`` of one run.

    ``rows`` as from :func:`run_rows`.  Gated: ``p50_ratio@L`` (lower is better) and
    ``throughput_ratio@B`` (higher is better) of every cell that has them (all but
    torch fp32).  Information (``gated`` False): ``p50_ms@L`` (ms),
    ``throughput_sps@B`` (samples/s) and ``cold_start_ms`` of the fp32 cells, and
    torch fp32's A/A control ``aa_ratio@L``.  Raises HarnessError for a value that
    is not a positive number.
    """
    out: dict[tuple[str, str], tuple[float, bool, bool]] = {}

    def add(name: str, metric: str, value: Any, higher: bool, gated: bool) -> None:
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise HarnessError(f"{name} {metric} = {value!r}: a run-level timing must be a positive number (it is "
                               "judged on the log scale); the run file is damaged -- re-run the suite")
        out[(name, metric)] = (float(value), higher, gated)

    for row in rows:
        name = cell_name(row)
        for field, higher in GATED_RATIOS:
            for index, cell in _indexed(row.get(field)):
                if cell and cell.get("ratio") is not None:
                    add(name, f"{field}@{index}", cell["ratio"], higher, True)
        if row["variant"] != "fp32":
            continue
        for metric, value, higher in _absolute(row):
            add(name, metric, value, higher, False)
        if is_reference(row):
            for index, cell in _indexed(row.get("aa_ratio")):
                if cell and cell.get("ratio") is not None:
                    add(name, f"aa_ratio@{index}", cell["ratio"], False, False)
    return out


def timing_design(rows: list[dict[str, Any]]) -> str:
    """"interleaved" when the run's rows say so, else "single-block" (runs saved
    before issue 16 carry no ``timing_design``)."""
    return INTERLEAVED if any(r.get("timing_design") == INTERLEAVED for r in rows) else "single-block"


def aa_failures(rows: list[dict[str, Any]]) -> list[str]:
    """One description per reference fp32 row whose A/A control failed (``aa_passed`` False),
    e.g. ``"minilm-l6 (A/A 1.041 [1.012, 1.070] at 128)"``; [] when none failed or
    none was measured."""
    out = []
    for row in rows:
        if is_reference(row) and row.get("aa_passed") is False:
            cells = [f"{c['ratio']:.3f} [{c['ci95'][0]:.3f}, {c['ci95'][1]:.3f}] at {index}"
                     for index, c in _indexed(row.get("aa_ratio")) if c and c.get("ci95")]
            out.append(f"{row['profile']}" + (f" (A/A {'; '.join(cells)})" if cells else ""))
    return out


def run_rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    """A saved run's summary rows (``harness.results.rows.rows_from_results``)."""
    return rows_from_results(storage.results(run))


# -- comparisons ---------------------------------------------------------------------------------------------


def compare_rows(old_rows: list[dict[str, Any]], new_rows: list[dict[str, Any]],
                 tolerances: dict[str, float]) -> list[Comparison]:
    """Deterministic metrics of summary rows, with relative (or ``*_abs``) tolerances."""
    old_by = {(r["profile"], r["variant"], r.get("backend", "torch")): r for r in old_rows}
    out = []
    for row in new_rows:
        base = old_by.get((row["profile"], row["variant"], row.get("backend", "torch")))
        name = cell_name(row)
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


def _centre(values: list[float]) -> float | None:
    """Geometric mean (the log-scale centre), None for no values."""
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else None


def compare_timings(old_rows: list[list[dict[str, Any]]], new_rows: list[dict[str, Any]],
                    alpha: float = ALPHA, threshold: float = EFFECT) -> tuple[list[Comparison], list[str]]:
    """The run-level timing comparisons of a run with the blessed runs of its machine, and notes.

    ``old_rows``: each blessed run's rows (oldest first); ``new_rows``: the run
    under test's.  Only blessed runs of the interleaved design count; each gated
    benchmark needs values in >= 3 of them.  See the module docstring for the rule.
    """
    notes: list[str] = []
    if timing_design(new_rows) != INTERLEAVED:
        notes.append(f"this run was timed before issue 16 ({SINGLE_BLOCK_NOTE}): its timings are shown, never judged")
        return [Comparison(cell_name(row), metric, None, value, None, None, "not comparable", SINGLE_BLOCK_NOTE,
                           gated=False)
                for row in new_rows for metric, value, _ in _absolute(row)], notes
    blessed = [rows for rows in old_rows if timing_design(rows) == INTERLEAVED]
    if len(blessed) < len(old_rows):
        notes.append(f"{len(old_rows) - len(blessed)} blessed run(s) use {SINGLE_BLOCK_NOTE} (saved before "
                     "issue 16) and are not used to judge timings")
    if len(blessed) < MIN_BLESSED:
        notes.append(bless_more(len(blessed)))
    noisy = aa_failures(new_rows)
    if noisy:
        notes.append(f"this run failed its own A/A control ({'; '.join(noisy)}; band {AA_BOUNDS[0]}-{AA_BOUNDS[1]}): "
                     "its gated timings are 'machine too noisy', never a pass; re-run on a quieter machine")
    history = [run_level_values(rows) for rows in blessed]
    out: list[Comparison] = []
    judged: list[tuple[int, Prediction]] = []  # (index in out, prediction) of the gated benchmarks to judge
    for (name, metric), (value, higher, gated) in run_level_values(new_rows).items():
        past = [values[(name, metric)][0] for values in history if (name, metric) in values]
        centre = _centre(past)
        base = Comparison(name, metric, centre, value, value / centre if centre else None, None, "not judged",
                          gated=gated)
        if len(blessed) < MIN_BLESSED:
            out.append(base)
        elif not past:
            out.append(dataclasses.replace(base, verdict="missing", note="not in the baseline"))
        elif len(past) < MIN_BLESSED:
            out.append(dataclasses.replace(base, note=f"in {len(past)} of {len(blessed)} blessed runs: "
                                                      f"{_bless_hint(len(past))}"))
        else:
            pred = prediction(past, value, higher, alpha)
            note = ("" if pred.dropped is None
                    else f"blessed run {pred.dropped + 1} of {len(past)} left out as an outlier")
            verdict = "information" if not gated else "machine too noisy" if noisy else "unchanged"
            out.append(dataclasses.replace(base, old=pred.centre, ratio=pred.ratio, bound=pred.bound,
                                           verdict=verdict, note=note))
            if gated and not noisy:
                judged.append((len(out) - 1, pred))
    if judged:
        worse = stats.false_discovery_control([p.p_worse for _, p in judged], method="bh")
        better = stats.false_discovery_control([p.p_better for _, p in judged], method="bh")
        for (i, pred), p_w, p_b in zip(judged, worse, better, strict=True):
            verdict = pred.verdict(alpha, threshold, float(p_w), float(p_b))
            note = out[i].note
            if verdict == "unchanged" and pred.verdict(alpha, threshold) != "unchanged":
                lost = f"beyond the bound, but not after Benjamini-Hochberg across {len(judged)} benchmarks"
                note = f"{note}; {lost}" if note else lost
            out[i] = dataclasses.replace(out[i], p_value=float(p_w), verdict=verdict, note=note)
    return out, notes


def compare_runs(old_runs: list[dict[str, Any]], new_run: dict[str, Any], tolerances: dict[str, float],
                 alpha: float = ALPHA, threshold: float = EFFECT) -> tuple[list[Comparison], list[str]]:
    """All comparisons of a run with one or more blessed runs (oldest first), plus
    notes (another machine, too few blessed runs, single-block timing, a failed A/A).

    Deterministic metrics against the newest blessed run; timings by
    :func:`compare_timings` when the timing fingerprints match.
    """
    notes: list[str] = []
    new_rows = run_rows(new_run)
    old_rows = [run_rows(run) for run in old_runs]
    comps = compare_rows(old_rows[-1], new_rows, tolerances)
    fp_new = new_run["machine_info"].get("edgebench", {})
    differ = sorted({k for run in old_runs
                     for k in fingerprint.timing_mismatch(run["machine_info"].get("edgebench", {}), fp_new)})
    if differ:
        notes.append(f"timings not compared: the baseline was measured on another machine "
                     f"(fingerprint differs in {', '.join(differ)}); bless a baseline on this machine")
        return comps, notes
    timings, timing_notes = compare_timings(old_rows, new_rows, alpha, threshold)
    return comps + timings, notes + timing_notes
