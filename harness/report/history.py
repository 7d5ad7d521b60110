"""History per testbed and tables across testbeds, rendered from published cells.

Input: records with the fields of :class:`harness.store.read.Cell` (``testbed``,
``datetime``, ``commit``, ``profile``, ``variant``, ``backend``, ``metrics``,
``fingerprint``), oldest first.  Renderers only: reading the store is ``harness.store``'s.

* :func:`write_history`: one trend plot per (metric, testbed, profile, backend), a line per
  variant with its 95% CI (a bar per run, a band along the series) where the metric has one, and the steps
  :func:`harness.gate.steps.detect_steps` finds in each series; ``history.md`` +
  ``steps.csv`` + PNGs.
* :func:`fleet_table`: the newest run of every testbed side by side -- in-run ratios to fp32
  and absolute numbers per device, with each device's fingerprint.  Devices differ in
  hardware, so a difference between two columns is never called a regression.
"""
from __future__ import annotations

import csv
import fnmatch
import io
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.core import atomic
from harness.gate.steps import THRESHOLD, detect_steps
from harness.report.common import NA, markdown_table

# What history and fleet show by default: the in-run ratios (comparable run to run on one
# device, whatever the machine's speed that day), accuracy and size.
DEFAULT_METRICS = ("p50_ratio.*", "throughput_ratio.*", "accuracy", "size_mb")
FLEET_METRICS = ("p50_ratio.*", "p50_ms.*", "throughput_ratio.*", "throughput_sps.*", "size_mb", "accuracy")
ISA_CLASSES = (("amx_int8", "AMX"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"),
               ("avx512f", "AVX-512"), ("avx2", "AVX2"))


def ci_keys(metric: str) -> tuple[str, str]:
    """The metric names of ``metric``'s 95% CI bounds (``p50_ratio_ci_low.seq128`` ...)."""
    base, dot, suffix = metric.partition(".")
    return f"{base}_ci_low{dot}{suffix}", f"{base}_ci_high{dot}{suffix}"


def _natural(text: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def select_metrics(cells: Sequence[Any], patterns: Sequence[str]) -> list[str]:
    """The metric names present in ``cells`` matching any glob in ``patterns`` (CI bounds excluded)."""
    names = {m for c in cells for m in c.metrics if "_ci_" not in m and "_n." not in m}
    return sorted((m for m in names if any(fnmatch.fnmatchcase(m, p) for p in patterns)), key=_natural)


def isa_class(fingerprint: dict[str, str]) -> str:
    """The widest INT8-relevant instruction-set class in a fingerprint's ``isa_flags``."""
    flags = set(str(fingerprint.get("isa_flags", "")).split(","))
    return next((label for flag, label in ISA_CLASSES if flag in flags), "other")


def _series(cells: Sequence[Any], metric: str) -> dict[tuple[str, str, str, str], list[Any]]:
    out: dict[tuple[str, str, str, str], list[Any]] = defaultdict(list)
    for c in cells:
        if metric in c.metrics:
            out[c.testbed, c.profile, c.backend, c.variant].append(c)
    return out


def _weights(points: list[Any], metric: str) -> list[float] | None:
    low_key, high_key = ci_keys(metric)
    widths = [(p.metrics.get(high_key, 0.0) - p.metrics.get(low_key, 0.0)) / 2 for p in points]
    return [1 / w for w in widths] if all(w > 0 for w in widths) else None


def steps_rows(cells: Sequence[Any], metrics: Sequence[str], threshold: float = THRESHOLD) -> list[list[Any]]:
    """One row per detected step: testbed, profile, backend, variant, metric, run (time, commit),
    level before, after, relative change.  Series never cross testbeds."""
    rows = []
    for metric in metrics:
        for (testbed, profile, backend, variant), points in sorted(_series(cells, metric).items()):
            values = [p.metrics[metric] for p in points]
            for step in detect_steps(values, _weights(points, metric), threshold):
                at = points[step.index]
                rows.append([testbed, profile, backend, variant, metric, at.datetime[:19], at.commit[:10],
                             f"{step.before:.4g}", f"{step.after:.4g}", f"{100 * step.change:+.1f}%"])
    return rows


STEP_HEADERS = ["testbed", "profile", "backend", "variant", "metric", "from run", "commit", "before", "after",
                "change"]


def _plot(points_by_variant: dict[str, list[Any]], metric: str, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.report.plots import _png

    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    low_key, high_key = ci_keys(metric)
    runs = sorted({p.datetime for pts in points_by_variant.values() for p in pts})
    position = {d: i for i, d in enumerate(runs)}
    for variant, points in sorted(points_by_variant.items()):
        x = [position[p.datetime] for p in points]
        y = [p.metrics[metric] for p in points]
        (line,) = ax.plot(x, y, marker="o", ms=3, label=variant)
        with_ci = [(xi, p) for xi, p in zip(x, points) if low_key in p.metrics and high_key in p.metrics]
        if with_ci:  # a bar at every run with a CI: a band alone shows nothing for a single run
            ax.errorbar([xi for xi, _ in with_ci], [p.metrics[metric] for _, p in with_ci],
                        yerr=[[p.metrics[metric] - p.metrics[low_key] for _, p in with_ci],
                              [p.metrics[high_key] - p.metrics[metric] for _, p in with_ci]],
                        fmt="none", ecolor=line.get_color(), capsize=3, lw=0.8)
        if len(with_ci) == len(points) > 1:
            ax.fill_between(x, [p.metrics[low_key] for p in points], [p.metrics[high_key] for p in points],
                            color=line.get_color(), alpha=0.18, lw=0)
    ax.set_xticks(range(len(runs)), [d[5:16].replace("T", " ") for d in runs], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _png(fig)


def _slug(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", "-".join(parts)).strip("-")


def write_history(cells: Sequence[Any], out: Path, patterns: Sequence[str] = DEFAULT_METRICS,
                  threshold: float = THRESHOLD) -> tuple[Path, list[list[Any]]]:
    """Write ``history.md``, ``steps.csv`` and one PNG per (metric, testbed, profile, backend) into ``out``.

    Returns (history.md path, the step rows).
    """
    metrics = select_metrics(cells, patterns)
    steps = steps_rows(cells, metrics, threshold)
    files: dict[str, bytes] = {}
    sections = []
    for metric in metrics:
        groups: dict[tuple[str, str, str], dict[str, list[Any]]] = defaultdict(dict)
        for (testbed, profile, backend, variant), points in _series(cells, metric).items():
            groups[testbed, profile, backend][variant] = points
        for (testbed, profile, backend), by_variant in sorted(groups.items()):
            name = f"history-{_slug(metric, testbed, profile, backend)}.png"
            title = f"{metric} -- {profile} on {backend}, testbed {testbed} (bars and bands: 95% CIs where measured)"
            files[name] = _plot(by_variant, metric, title)
            sections.append(f"### {metric}: {profile} / {backend} / testbed {testbed}\n\n![{metric}]({name})\n")
    testbeds = sorted({c.testbed for c in cells})
    runs = len({(c.testbed, c.run_key) for c in cells})
    md = [f"# History: {runs} published run(s) on {len(testbeds)} testbed(s)\n",
          f"Metrics: {', '.join(metrics) or NA}. Each series is one testbed's; steps are level changes of at least "
          f"{100 * threshold:.0f}% found by a weighted-L1 piecewise-constant fit (asv's model, harness.gate.steps).\n",
          "## Detected steps\n", markdown_table(steps, STEP_HEADERS) if steps else "No step in any series.", "",
          "## Trends\n", *sections]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([STEP_HEADERS, *steps])
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        atomic.write_bytes(out / name, data)
    atomic.write_text(out / "steps.csv", buf.getvalue())
    atomic.write_text(out / "history.md", "\n".join(md) + "\n")
    return out / "history.md", steps


def _value(cell: Any, metric: str) -> str:
    value = cell.metrics.get(metric)
    if value is None:
        return NA
    low, high = (cell.metrics.get(k) for k in ci_keys(metric))
    text = f"{value:.3g}"
    return text + (f" [{low:.3g}, {high:.3g}]" if low is not None and high is not None else "")


def newest_per_testbed(cells: Sequence[Any]) -> dict[str, list[Any]]:
    """The cells of each testbed's newest published run."""
    newest: dict[str, tuple[str, str]] = {}
    for c in cells:
        newest[c.testbed] = max(newest.get(c.testbed, ("", "")), (c.datetime, c.run_key))
    return {t: [c for c in cells if c.testbed == t and (c.datetime, c.run_key) == newest[t]] for t in sorted(newest)}


def fleet_table(cells: Sequence[Any], patterns: Sequence[str] = FLEET_METRICS) -> str:
    """Markdown: the testbeds' fingerprints, then (profile, variant, backend, metric) x testbed."""
    runs = newest_per_testbed(cells)
    testbeds = list(runs)
    machines = []
    for testbed, group in runs.items():
        fp = group[0].fingerprint
        machines.append([testbed, fp.get("cpu_model", NA), isa_class(fp), fp.get("physical_cores", NA),
                         fp.get("threads", NA), fp.get("torch", NA), group[0].datetime[:19], group[0].commit[:10]])
    latest = [c for group in runs.values() for c in group]
    metrics = select_metrics(latest, patterns)
    by_key = {(c.testbed, c.profile, c.variant, c.backend): c for c in latest}
    cells_keys = sorted({(c.profile, c.variant, c.backend) for c in latest})
    rows = []
    for profile, variant, backend in cells_keys:
        for metric in metrics:
            values = [by_key.get((t, profile, variant, backend)) for t in testbeds]
            if all(v is None or metric not in v.metrics for v in values):
                continue
            rows.append([profile, variant, backend, metric, *(NA if v is None else _value(v, metric) for v in values)])
    return "\n".join([
        f"# Fleet: the newest run of each of {len(testbeds)} testbed(s)\n",
        markdown_table(machines, ["testbed", "CPU", "INT8 ISA", "cores", "threads", "torch", "run", "commit"]), "",
        "Ratios (`*_ratio.*`) are in-run: each device's variant against that device's own fp32 in the same run, "
        "with 95% CIs. Absolute numbers (`p50_ms`, `throughput_sps`) differ with the hardware; a difference "
        "between two devices is what the devices are, never a regression.\n",
        markdown_table(rows, ["profile", "variant", "backend", "metric", *testbeds]), ""])
