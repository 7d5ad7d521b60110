"""Calibration of the timing gate on real re-runs (issue 16): ``python -m harness calibrate``.

Runs the gate's timing selection (minilm-l6 fp32, int8-dynamic, int8-dynamic-pc on torch,
seq 128 and batch 32) ``runs`` times on the unchanged tree, each run also timing
``slowdown@0.06`` (:mod:`compressors.slowdown`: fp32 with 6% more Linear work, same
outputs, about 10% slower) -- the injected regression -- and measures, from those runs:

* **false alarms per benchmark**: leave-one-out, each run judged against the other
  ``runs - 1`` as its blessed history with the stored-baseline rule
  (:func:`harness.gate.compare.prediction_verdict`), for every unchanged ratio
  (int8 and int8-pc vs fp32 at seq 128 and batch 32, and the A/A control);
* **detection**: the same rule with the A/A ratios of the other runs as history
  ("fp32 before the change") and the slowdown's ratio of the held-out run as the new
  value ("fp32 after a change costing ~10%"; its measured in-run ratio is reported);
* **in-run**: how often the slowdown's paired CI lies wholly above 1 (seen within one run)
  and how often the A/A CI lies inside ±2% and inside the gate's [0.97, 1.03].

Writes ``calibration.md`` and ``calibration.json`` (and every run's pytest-benchmark
JSON under ``runs/``) to the output folder.
"""
from __future__ import annotations

import dataclasses
import json
from collections import Counter
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.core import atomic
from harness.core.errors import HarnessError
from harness.core.paths import ROOT
from harness.gate.compare import InsufficientBaseline, prediction_verdict
from harness.measure.stats import AA_BOUNDS
from harness.results import storage
from harness.results.rows import rows_from_results

PROFILE = "minilm-l6"
UNCHANGED = ("int8-dynamic", "int8-dynamic-pc")
CONTROL = "slowdown@0.06"  # about 10% slower than fp32: its measured ratio is in the calibration report
SELECTION = ["--profiles", PROFILE, "--variants", ",".join(("fp32", *UNCHANGED, CONTROL)), "--backends", "torch",
             "--seq-lengths", "128", "--batch-sizes", "32", "-k", "latency or throughput"]
SHAPES = (("p50_ratio", "latency", "128", False), ("throughput_ratio", "throughput", "32", True))


def run_values(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One calibration run's paired ratios: benchmark name -> ``{"ratio", "ci95", "n"}``.

    Names: ``"<variant> p50_ratio@128"``, ``"<variant> throughput_ratio@32"`` for the
    unchanged variants and the control, ``"A/A p50_ratio@128"`` / ``"A/A throughput_ratio@32"``
    (the A/A throughput ratio is the inverse of its time ratio, like every throughput ratio).
    Raises HarnessError when the run has no paired ratios (a run made before issue 16).
    """
    by = {r["variant"]: r for r in rows if r["profile"] == PROFILE and r.get("backend", "torch") == "torch"}
    fp32 = by.get("fp32")
    if not fp32 or not fp32.get("aa_ratio"):
        raise HarnessError("the calibration run has no A/A control (torch fp32 timed twice); "
                           "re-run with the interleaved timing of this version")
    out: dict[str, dict[str, Any]] = {}
    for field, axis, index, higher in SHAPES:
        aa = fp32["aa_ratio"].get(f"{axis}@{index}")
        if aa is not None:
            out[f"A/A {field}@{index}"] = aa if not higher else {
                "ratio": 1 / aa["ratio"], "ci95": [1 / aa["ci95"][1], 1 / aa["ci95"][0]], "n": aa["n"]}
        for variant in (*UNCHANGED, CONTROL):
            value = (by.get(variant) or {}).get(field, {}).get(index)
            if value is not None:
                out[f"{variant} {field}@{index}"] = value
    return out


@dataclasses.dataclass
class Calibration:
    runs: int
    false_alarms: dict[str, tuple[int, int]]  # benchmark -> (alarms, judged)
    detected: dict[str, tuple[int, int]]  # shape -> (caught, judged)
    in_run_detected: dict[str, tuple[int, int]]
    aa_within_2pct: dict[str, tuple[int, int]]
    aa_within_gate: dict[str, tuple[int, int]]
    values: list[dict[str, dict[str, Any]]]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _leave_one_out(values: list[dict[str, dict[str, Any]]], history_name: str, new_name: str,
                   higher_is_better: bool) -> tuple[int, int]:
    """(regressions, judged): each run's ``new_name`` judged by the stored-baseline rule against the
    other runs' ``history_name`` (runs where fewer than 3 others hold it are not judged)."""
    hits = judged = 0
    for i, run in enumerate(values):
        if new_name not in run:
            continue
        history = [v[history_name]["ratio"] for j, v in enumerate(values) if j != i and history_name in v]
        try:
            verdict, _, _ = prediction_verdict(history, run[new_name]["ratio"], higher_is_better)
        except InsufficientBaseline:
            continue
        judged += 1
        hits += verdict == "regression"
    return hits, judged


def analyse(values: list[dict[str, dict[str, Any]]]) -> Calibration:
    """The calibration rates from the runs' :func:`run_values` (see the module docstring).

    Raises HarnessError with fewer than 4 runs (leave-one-out needs 3 blessed runs)."""
    if len(values) < 4:
        raise HarnessError(f"calibration needs at least 4 runs (each judged against 3 or more others), got "
                           f"{len(values)}; pass --runs 4 or more")
    higher = {name: name.split(" ")[-1].startswith("throughput") for v in values for name in v}
    unchanged = sorted({n for v in values for n in v if not n.startswith(CONTROL)})
    alarms = {name: _leave_one_out(values, name, name, higher[name]) for name in unchanged}
    detected, in_run, aa2, aagate = {}, {}, {}, {}
    for field, _, index, is_higher in SHAPES:
        control, aa = f"{CONTROL} {field}@{index}", f"A/A {field}@{index}"
        detected[f"{field}@{index}"] = _leave_one_out(values, aa, control, is_higher)
        seen = [v[control]["ci95"][0] > 1 if not is_higher else v[control]["ci95"][1] < 1 for v in values if control in v]
        in_run[f"{field}@{index}"] = (sum(seen), len(seen))
        cis = [v[aa]["ci95"] for v in values if aa in v]
        aa2[f"{field}@{index}"] = (sum(0.98 <= lo and hi <= 1.02 for lo, hi in cis), len(cis))
        aagate[f"{field}@{index}"] = (sum(AA_BOUNDS[0] <= lo and hi <= AA_BOUNDS[1] for lo, hi in cis), len(cis))
    return Calibration(len(values), alarms, detected, in_run, aa2, aagate, values)


def _rate(pair: tuple[int, int], bound: str) -> str:
    """``hits/n (rate; one-sided 95% Clopper-Pearson bound)``: with few runs a 0/6 says little, and
    the bound says how little (``bound``: ``"upper"`` for false alarms, ``"lower"`` for detection)."""
    from scipy.stats import beta

    hits, n = pair
    if not n:
        return f"{hits}/{n}"
    if bound == "upper":
        limit = f"≤ {100 * (beta.ppf(0.95, hits + 1, n - hits) if hits < n else 1.0):.0f}%"
    else:
        limit = f"≥ {100 * (beta.ppf(0.05, hits, n - hits + 1) if hits else 0.0):.0f}%"
    return f"{hits}/{n} ({100 * hits / n:.0f}%; {limit} at 95%)"


def render(cal: Calibration, machine: dict[str, Any], command: str) -> str:
    """Markdown of a :class:`Calibration`; ``command`` says which pytest command made the runs."""
    lines = ["# Timing-gate calibration", "",
             f"Machine `{machine.get('machine_id')}` ({machine.get('cpu_model')}, "
             f"{', '.join(machine.get('isa_flags') or [])}), {machine.get('threads')} threads, torch "
             f"{machine.get('torch')}; {cal.runs} runs: {command}.", "",
             "## False alarms per benchmark (unchanged tree, leave-one-out against the other runs)", "",
             "Rates carry a one-sided 95% Clopper-Pearson bound: 0 alarms in n runs bounds the rate at "
             "1 - 0.05^(1/n) (39% at n = 6); showing a 1% target takes about 300 alarm-free runs.", "",
             "| Benchmark | Alarms / judged |", "|---|---|"]
    lines += [f"| {name} | {_rate(pair, 'upper')} |" for name, pair in cal.false_alarms.items()]
    lines += ["", f"## Detection of `{CONTROL}` (fp32 with 6% more Linear work; its measured ratio is in the last table)", "",
              "| Shape | Stored-baseline rule (history: other runs' A/A) | Seen within the run (paired CI beyond 1) "
              "| A/A CI inside ±2% | A/A CI inside the gate's [0.97, 1.03] |", "|---|---|---|---|---|"]
    lines += [f"| {shape} | {_rate(cal.detected[shape], 'lower')} | {_rate(cal.in_run_detected[shape], 'lower')} | "
              f"{_rate(cal.aa_within_2pct[shape], 'lower')} | {_rate(cal.aa_within_gate[shape], 'lower')} |"
              for shape in cal.detected]
    lines += ["", "## Every run's paired ratios [95% CI]", "",
              "| Run | " + " | ".join(sorted(cal.values[0])) + " |", "|---|" + "---|" * len(cal.values[0])]
    for i, run in enumerate(cal.values, 1):
        lines.append(f"| {i} | " + " | ".join(
            f"{run[n]['ratio']:.3f} [{run[n]['ci95'][0]:.3f}, {run[n]['ci95'][1]:.3f}]" if n in run else "n/a"
            for n in sorted(cal.values[0])) + " |")
    return "\n".join(lines) + "\n"


INDEX = "commands.json"  # in runs/: each run file's pytest command (runs may be added later with other options)


def calibrate(runs: int, out: Path, extra: list[str] | None = None, add: bool = False) -> Path:
    """Run the selection ``runs`` times (one pytest process each), analyse, write ``out``.

    With ``add`` the runs already in ``out/runs/`` are kept and analysed with the new ones
    (``runs`` may then be 0: re-analyse only); without it they are replaced.  Every run's
    command is kept in ``runs/commands.json``.  Returns the markdown file.

    Raises HarnessError when fewer than 4 runs would be analysed, a run fails to produce its
    JSON, or the runs come from different machines (their ratios are not one population).
    """
    folder = out / "runs"
    earlier = _run_files(folder)
    kept = earlier if add else []
    if runs < 0 or len(kept) + runs < 4:
        raise HarnessError(f"calibration needs at least 4 runs (leave-one-out needs 3 blessed runs): {len(kept)} kept "
                           f"in {folder} + --runs {runs}; pass --runs {max(4 - len(kept), 1)} or more")
    folder.mkdir(parents=True, exist_ok=True)
    commands = _read_index(folder) if add else {}
    cmd_shown = "pytest suites/ " + " ".join(SELECTION + list(extra or []))
    # New runs are numbered after every earlier one, so a failed run never overwrites them; without
    # --add the earlier runs are deleted only once every new run has succeeded.
    start = max((int(p.stem.split("-")[1]) for p in earlier), default=0)
    for n in range(start + 1, start + runs + 1):
        path = folder / f"run-{n:02d}.json"
        cmd = [sys.executable, "-m", "pytest", "suites/", *SELECTION, *(extra or []), "-q", "-p", "no:cacheprovider",
               f"--benchmark-json={path}"]
        print(f"calibration run {n - start}/{runs}: {' '.join(cmd[2:])}", flush=True)
        proc = subprocess.run(cmd, cwd=ROOT)
        if proc.returncode not in (0, 1) or not path.exists():
            raise HarnessError(f"calibration run {n} failed (pytest exit {proc.returncode}); see its output above")
        commands[path.name] = cmd_shown
        atomic.write_text(folder / INDEX, json.dumps(commands, indent=1))
    for stale in set(earlier) - set(kept):
        stale.unlink()
    values, machines = [], {}
    for path in _run_files(folder):
        run = storage.load_run(path)
        machine = run["machine_info"].get("edgebench", {})
        machines.setdefault(machine.get("machine_id"), path.name)
        values.append(run_values(rows_from_results(storage.results(run))))
    if len(machines) > 1:
        raise HarnessError(f"calibration runs in {folder} come from {len(machines)} machines "
                           f"({', '.join(f'{m} ({f})' for m, f in machines.items())}); keep one machine per --out folder")
    cal = analyse(values)
    counts = Counter(commands.get(p.name, "not recorded") for p in _run_files(folder))
    shown = "; ".join(f"{n} of `{cmd}`" for cmd, n in counts.items())
    md = out / "calibration.md"
    atomic.write_text(out / "calibration.json", json.dumps({"machine": machine, "commands": commands,
                                                           **cal.as_dict()}, indent=1))
    atomic.write_text(md, render(cal, machine, shown))
    return md


def _run_files(folder: Path) -> list[Path]:
    """The calibration runs in ``folder`` (``run-NN.json``, numbered), in order; other files are ignored."""
    found = [p for p in folder.glob("run-*.json") if p.stem[4:].isdigit()] if folder.is_dir() else []
    return sorted(found, key=lambda p: int(p.stem[4:]))


def _read_index(folder: Path) -> dict[str, str]:
    path = folder / INDEX
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path} is not valid JSON ({exc}); delete it (the runs' commands are then shown as "
                           "'not recorded')") from exc
