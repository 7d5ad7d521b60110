"""Budgets: the project's policy on how big, slow, hungry or inaccurate a variant may be.

``baselines/budgets.toml`` holds ``[[budget]]`` entries; each names a profile
and a variant (shell-style patterns, ``*`` for any), a metric, and exactly one
bound:

* ``max_ratio`` / ``min_ratio`` -- against the ``fp32`` variant of the same
  profile **measured in the same run**, so they hold on any machine;
* ``max`` / ``min`` -- absolute, in the metric's unit.

An optional ``backend`` (pattern, default ``"torch"``) selects the inference
backend (``harness.backends``); ratio budgets always compare with the
**torch** fp32 of the same profile and run, so an onnxruntime budget states
what ONNX Runtime buys over today's PyTorch eager baseline (and a ratio budget
may apply to ``fp32`` on a backend other than torch).

and a ``why`` saying where the number comes from: the policy, not measured figures (the
report prints each budget's measured value and CI for the run it renders, so a figure in
``why`` cannot go stale).  ``ratchet = true`` labels a bound derived from a measured value
plus a margin -- it guards against getting worse than a run once was, it is not an
independent target -- and the verdict says so.  Budgets are checked on every run; they are
not tuned until green.  INT8's gain is a property of the
instruction set (VNNI/AMX vs AVX2 only), so a budget may carry ``cpu_flags``:
ISA flags of the recorded fingerprint (``harness.core.cpu.ISA_FLAGS``)
that must all be present (``"!flag"``: absent); on another CPU it does not apply.

**Timing ratios are judged on their confidence interval.**  A ``p50_ms@N`` or
``throughput_sps@N`` ratio budget of an interleaved run (issue 16) reads the
paired in-run ratio and its 95% CI (``harness.results.rows``): **pass** when the
whole CI is inside the bound, **fail** when it is wholly outside,
**inconclusive** when it straddles the bound (the campaign has already bought
more repetitions up to its time cap: the machine is too noisy to decide), and
**too noisy** when the run's own A/A control (torch fp32 timed twice) lies
outside :data:`harness.measure.stats.AA_BOUNDS` -- never a pass: not judged
(``passed`` None, a skip in the suite), unless the CI widened by the A/A's drift
still lies wholly beyond the bound, which fails.  Only "pass" passes.  A run
saved before issue 16 (one block per variant, no CI) is judged on its point
ratio and labelled "single-block timing, no CI".
``evaluate`` returns verdicts; rendering them is the caller's business.
"""
from __future__ import annotations

import dataclasses
import math
import fnmatch
import re
from pathlib import Path
from typing import Any

import tomllib

import compressors
from harness.backends import BACKENDS
from harness.core.cpu import ISA_FLAGS, isa_flags as cpu_isa_flags
from harness.core.errors import HarnessError
from harness.core.paths import ROOT
from harness.measure.stats import AA_BOUNDS
from harness.results.rows import reference_backend
from harness.models.profiles import PROFILES

SCHEMA = 1
DEFAULT_PATH = ROOT / "baselines" / "budgets.toml"
BOUNDS = ("max_ratio", "min_ratio", "max", "min")

# metric -> (unit, higher_is_better). ``name@N`` picks a sequence length or batch size.
METRICS: dict[str, tuple[str, bool]] = {
    "p50_ms": ("ms", False), "p90_ms": ("ms", False), "p99_ms": ("ms", False),
    "throughput_sps": ("samples/s", True), "size_mb": ("MB", False), "params": ("", False),
    "nonzero_params": ("", False), "sparsity": ("", True), "flops": ("FLOPs", False),
    "cold_start_ms": ("ms", False), "time_to_first_result_ms": ("ms", False), "peak_rss_mb": ("MB", False), "peak_rss_delta_mb": ("MB", False),
    "accuracy": ("", True), "accuracy_mr": ("", True), "eval_loss": ("nats", False),
    "agreement": ("", True), "kl_fp32": ("nats", False),
}
INDEXED = {"p50_ms", "p90_ms", "p99_ms", "throughput_sps"}
ACCURACY_METRICS = {"accuracy", "accuracy_mr", "eval_loss", "agreement", "kl_fp32"}


def _match(name: str, pattern: str) -> bool:
    """fnmatch, with a leading ``!`` negating the pattern (``"!*-mlm"``: every profile but the MLM ones)."""
    if pattern.startswith("!"):
        return not fnmatch.fnmatchcase(name, pattern[1:])
    return fnmatch.fnmatchcase(name, pattern)


@dataclasses.dataclass(frozen=True)
class Budget:
    profile: str
    variant: str
    metric: str
    bound: str
    limit: float
    why: str
    line: int
    backend: str = "torch"
    cpu_flags: tuple[str, ...] = ()
    ratchet: bool = False

    @property
    def base_metric(self) -> str:
        return self.metric.partition("@")[0]

    def matches(self, profile: str, variant: str, backend: str = "torch") -> bool:
        return _match(profile, self.profile) and _match(variant, self.variant) and _match(backend, self.backend)

    def holds_on(self, isa_flags: Any) -> bool:
        """Whether the budget applies to a CPU with these ISA flags."""
        have = set(isa_flags)
        return all((f[1:] not in have) if f.startswith("!") else (f in have) for f in self.cpu_flags)

    @property
    def paired(self) -> bool:
        """A timing ratio judged on its paired in-run CI (p50 per length, throughput per batch)."""
        return self.bound.endswith("ratio") and self.base_metric in ("p50_ms", "throughput_sps")

    def describe(self, reference: str | None = None) -> str:
        """The bound as a verdict prints it; ``reference`` names the fp32 a ratio divides by
        (:func:`_reference_label` of the judged row; None: as the budget's backend implies)."""
        op = "≤" if self.bound.startswith("max") else "≥"
        kind = ", a ratchet" if self.ratchet else ""
        if self.bound.endswith("ratio"):
            reference = reference or ("fp32" if self.backend == "torch" else "torch fp32")
            return f"{op} {self.limit:.2f}× {reference}{kind}"
        return f"{op} {_fmt(self.limit, self.metric)}{kind}"


@dataclasses.dataclass(frozen=True)
class BudgetVerdict:
    """Outcome of one budget on one (profile, variant).

    ``passed`` is None when the metric was not measured in the run or the run was too noisy to
    judge it; ``state`` is one of "pass", "fail", "inconclusive" (a failure), "too noisy" (not
    judged, never a pass) or "not measured".
    ``ci95`` is the paired ratio's interval for a timing ratio of an interleaved run.
    """

    budget: Budget
    profile: str
    variant: str
    value: float | None
    reference: float | None
    passed: bool | None
    message: str
    state: str = "not measured"
    ci95: tuple[float, float] | None = None

    @property
    def label(self) -> str:
        if self.state in ("inconclusive", "too noisy"):
            return self.state.upper()
        return "FAIL" if self.passed is False else "pass" if self.passed else "not measured"


def metric_value(row: dict[str, Any], metric: str) -> float | None:
    """A metric of a summary row (``harness.results.rows.rows_from_results``), or None."""
    base, _, index = metric.partition("@")
    value = row.get(base)
    if base in INDEXED:
        return None if not isinstance(value, dict) else value.get(index)
    return value


def _check_metric(metric: str, where: str) -> None:
    base, at, index = metric.partition("@")
    if base not in METRICS:
        raise HarnessError(f"{where}: unknown metric '{metric}'; known: {', '.join(sorted(METRICS))} "
                           f"(p50_ms/p90_ms/p99_ms/throughput_sps take @N)")
    if (base in INDEXED) != bool(at) or (at and not index.isdigit()):
        raise HarnessError(f"{where}: metric '{metric}' must be written "
                           f"{base + '@N (N = sequence length or batch size)' if base in INDEXED else base}")


def load_tolerances(path: Path = DEFAULT_PATH) -> dict[str, float]:
    """The ``[tolerances]`` table (metric -> relative tolerance, ``*_abs`` absolute)."""
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise HarnessError(f"cannot read tolerances from {path} ({exc}); pass a readable budgets TOML file") from None
    tol = doc.get("tolerances", {})
    if not isinstance(tol, dict):
        raise HarnessError(f"{Path(path).name}: 'tolerances' must be a table ([tolerances])")
    for key, value in tol.items():
        if key.removesuffix("_abs") not in METRICS or not isinstance(value, (int, float)) or value < 0:
            raise HarnessError(f"{Path(path).name} [tolerances]: '{key} = {value!r}' is not a known metric "
                               "with a non-negative number")
    return {k: float(v) for k, v in tol.items()}


def load_budgets(path: Path = DEFAULT_PATH) -> list[Budget]:
    """Parse and validate the budgets file.

    Raises:
        HarnessError: missing file, TOML syntax error (line and column named),
            wrong schema, or an entry with an unknown key, profile pattern,
            variant or metric, or not exactly one bound (entry's line named).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        doc = tomllib.loads(text)
    except FileNotFoundError:
        raise HarnessError(f"budgets file {path} does not exist; restore it from git") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{path}: {exc}; fix the TOML syntax there") from None
    except (OSError, ValueError) as exc:  # a folder, unreadable, NUL in the name
        raise HarnessError(f"cannot read budgets file {path} ({exc}); pass a readable TOML file") from None
    if doc.get("schema") != SCHEMA:
        raise HarnessError(f"{path}: schema is {doc.get('schema')!r}, this harness reads {SCHEMA}")
    entries = doc.get("budget", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise HarnessError(f"{path}: 'budget' must be an array of tables, each written [[budget]]")
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if re.match(r"\s*\[\[budget\]\]", line)]
    budgets = []
    for n, entry in enumerate(entries):
        line = lines[n] if n < len(lines) else 0
        where = f"{path.name} line {line} (budget #{n + 1})"
        unknown = set(entry) - {"profile", "variant", "metric", "why", "backend", "cpu_flags", "ratchet", *BOUNDS}
        if unknown:
            raise HarnessError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        for key in ("variant", "metric", "why"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise HarnessError(f"{where}: '{key}' is required (a non-empty string)")
        profile = entry.get("profile", "*")
        if not any(_match(p, profile) for p in PROFILES):
            raise HarnessError(f"{where}: profile '{profile}' matches no profile ({', '.join(PROFILES)})")
        if not any(ch in entry["variant"] for ch in "*?["):
            try:
                for stage in entry["variant"].split("+"):
                    compressors.get(stage if stage != "int8" else "int8-dynamic")
            except compressors.CompressionError as exc:
                raise HarnessError(f"{where}: {exc}") from None
        backend = entry.get("backend", "torch")

        if not isinstance(backend, str) or not any(_match(b, backend) for b in BACKENDS):
            raise HarnessError(f"{where}: backend {backend!r} matches no backend ({', '.join(BACKENDS)})")
        _check_metric(entry["metric"], where)
        flags = entry.get("cpu_flags", [])
        if not isinstance(flags, list) or not all(isinstance(f, str) and f.lstrip("!") in ISA_FLAGS for f in flags):
            raise HarnessError(f"{where}: cpu_flags must be a list of ISA flags ({', '.join(ISA_FLAGS)}), "
                               "each optionally prefixed with '!' (absent)")
        if not isinstance(entry.get("ratchet", False), bool):
            raise HarnessError(f"{where}: ratchet must be true or false")
        bounds = [b for b in BOUNDS if b in entry]
        if len(bounds) != 1 or not isinstance(entry[bounds[0]], (int, float)) or isinstance(entry[bounds[0]], bool):
            raise HarnessError(f"{where}: give exactly one numeric bound of {', '.join(BOUNDS)}")
        if bounds[0].endswith("ratio") and entry["variant"] == "fp32" and backend == "torch":
            raise HarnessError(f"{where}: a ratio budget compares with fp32, so it cannot apply to fp32 itself")
        budgets.append(Budget(profile, entry["variant"], entry["metric"], bounds[0], float(entry[bounds[0]]),
                              entry["why"], line, backend, tuple(flags), entry.get("ratchet", False)))
    return budgets


def applicable(budgets: list[Budget], profile: str, variant: str, real_weights: bool,
               backend: str = "torch", isa_flags: Any = None) -> list[Budget]:
    """Budgets that apply to one (profile, variant, backend) on a CPU with ``isa_flags``
    (None: this machine's); accuracy budgets need real weights, and ratio budgets skip the
    profile's reference fp32 (its ratio to itself is 1 by definition)."""
    if isa_flags is None:
        isa_flags = cpu_isa_flags()
    reference = PROFILES[profile].reference_backend if profile in PROFILES else "torch"
    return [b for b in budgets if b.matches(profile, variant, backend) and b.holds_on(isa_flags)
            and (real_weights or b.base_metric not in ACCURACY_METRICS)
            and not (variant == "fp32" and backend == reference and b.bound.endswith("ratio"))]


def _fmt(value: float, metric: str) -> str:
    unit = METRICS[metric.partition("@")[0]][0]
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return f"{text} {unit}".rstrip()


def evaluate(budget: Budget, profile: str, variant: str, rows: list[dict[str, Any]],
             backend: str = "torch") -> BudgetVerdict:
    """Check one budget against the summary rows of one run (ratios against the profile's reference
    fp32: torch, or onnxruntime for an ONNX file)."""
    by_key = {(r["profile"], r["variant"], r.get("backend", "torch")): r for r in rows}
    row = by_key.get((profile, variant, backend))
    ref_backend = "torch" if row is None else reference_backend(row)
    value = None if row is None else metric_value(row, budget.metric)
    label = f"{variant}/{profile}{'' if backend == 'torch' else '/' + backend} {budget.metric}"
    if value is None:
        return BudgetVerdict(budget, profile, variant, None, None, None, f"{label}: not measured in this run",
                             "not measured")
    reference = None
    if budget.paired and row.get("timing_design") == "interleaved":
        return _judge_paired(budget, profile, variant, value, row, by_key.get((profile, "fp32", ref_backend)), label)
    if budget.bound.endswith("ratio"):
        base = by_key.get((profile, "fp32", ref_backend))
        reference = None if base is None else metric_value(base, budget.metric)
        if not reference:
            return BudgetVerdict(budget, profile, variant, value, None, None,
                                 f"{label}: fp32 not measured in this run, ratio budget not checkable", "not measured")
        ratio = value / reference
        passed = ratio <= budget.limit if budget.bound == "max_ratio" else ratio >= budget.limit
        shown = f"{_fmt(value, budget.metric)} = {ratio:.3f}× {_reference_label(row)}"
        if budget.paired:
            shown += " (single-block timing, no CI)"
    else:
        passed = value <= budget.limit if budget.bound == "max" else value >= budget.limit
        shown = _fmt(value, budget.metric)
    return BudgetVerdict(budget, profile, variant, value, reference, passed,
                         f"{label} = {shown} (budget {budget.describe(_reference_label(row))})",
                         "pass" if passed else "fail")


def _reference_label(row: dict[str, Any]) -> str:
    """How a verdict names the fp32 a ratio divides by: "fp32" on its own backend, else with the backend."""
    ref = reference_backend(row)
    return "fp32" if row.get("backend", "torch") == ref else f"{ref} fp32"


def _judge_paired(budget: Budget, profile: str, variant: str, value: float, row: dict[str, Any],
                  base: dict[str, Any] | None, label: str) -> BudgetVerdict:
    """A timing ratio budget on the paired in-run ratio's CI (see the module docstring)."""
    field = "p50_ratio" if budget.base_metric == "p50_ms" else "throughput_ratio"
    index = budget.metric.partition("@")[2]
    paired = row.get(field, {}).get(index)
    if paired is None:
        return BudgetVerdict(budget, profile, variant, value, None, None,
                             f"{label}: {reference_backend(row)} fp32 not timed in the same campaign, ratio budget "
                             "not checkable",
                             "not measured")
    ratio, (low, high), n = paired["ratio"], paired["ci95"], paired["n"]
    ref = _reference_label(row)
    shown = f"{label} = {_fmt(value, budget.metric)} = {ratio:.3f}× {ref} [95% CI {low:.3f}, {high:.3f}; {n} paired repetitions]"
    inside = high <= budget.limit if budget.bound == "max_ratio" else low >= budget.limit
    outside = low > budget.limit if budget.bound == "max_ratio" else high < budget.limit
    aa = (base or {}).get("aa_ratio", {})
    shape = f"{'latency' if field == 'p50_ratio' else 'throughput'}@{index}"
    control = aa.get(shape)

    if control is not None:
        shown += f"; A/A {control['ratio']:.3f} [{control['ci95'][0]:.3f}, {control['ci95'][1]:.3f}]"
    if control is not None and not (AA_BOUNDS[0] <= control["ci95"][0] and control["ci95"][1] <= AA_BOUNDS[1]):
        # The A/A shows how far two identical cells drifted apart in this run: widened by that much,
        # a CI still wholly beyond the bound is a failure; anything else cannot be judged (never a pass).
        drift = max(abs(math.log(control["ci95"][0])), abs(math.log(control["ci95"][1])))
        wide_low, wide_high = low * math.exp(-drift), high * math.exp(drift)
        if (wide_low > budget.limit) if budget.bound == "max_ratio" else (wide_high < budget.limit):
            return BudgetVerdict(budget, profile, variant, value, ratio, False,
                                 f"{shown} (budget {budget.describe(ref)}): fails even with the CI widened by the "
                                 f"A/A control's drift to [{wide_low:.3f}, {wide_high:.3f}]", "fail", (low, high))
        return BudgetVerdict(budget, profile, variant, value, ratio, None,
                             f"{shown} (budget {budget.describe(ref)}): machine too noisy to judge -- the A/A "
                             f"control's CI is not inside [{AA_BOUNDS[0]}, {AA_BOUNDS[1]}]; re-run on a quieter "
                             "machine", "too noisy", (low, high))
    if inside:
        return BudgetVerdict(budget, profile, variant, value, ratio, True, f"{shown} (budget {budget.describe(ref)})",
                             "pass", (low, high))
    if outside:
        return BudgetVerdict(budget, profile, variant, value, ratio, False, f"{shown} (budget {budget.describe(ref)})",
                             "fail", (low, high))
    return BudgetVerdict(budget, profile, variant, value, ratio, False,
                         f"{shown} (budget {budget.describe(ref)}): inconclusive -- the CI straddles the bound after "
                         "the campaign's time cap; the machine is too noisy to decide (raise --timing-cap-s or "
                         "re-run on a quieter machine)", "inconclusive", (low, high))


def evaluate_all(budgets: list[Budget], rows: list[dict[str, Any]], isa_flags: Any = None) -> list[BudgetVerdict]:
    """Every applicable budget on every (profile, variant) row of a run measured on a CPU
    with ``isa_flags`` (the run's recorded fingerprint; None: this machine's)."""
    return [evaluate(b, r["profile"], r["variant"], rows, r.get("backend", "torch"))
            for r in rows if r["profile"] in PROFILES
            for b in applicable(budgets, r["profile"], r["variant"], PROFILES[r["profile"]].real_weights,
                                r.get("backend", "torch"), isa_flags)]
