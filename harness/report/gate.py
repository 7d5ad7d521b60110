"""Markdown of the regression gate's verdicts (``python -m harness compare`` /
``budgets``, ``suites/test_gate.py``); the verdicts come from :mod:`harness.gate`."""
from __future__ import annotations

from typing import Any

from harness.report.common import NA, fmt, markdown_table

# What a reader must act on first: regressions, then what kept the gate from judging.
ORDER = {"regression": 0, "machine too noisy": 1, "missing": 2, "not comparable": 3, "not judged": 4,
         "improvement": 5, "unchanged": 6, "information": 7}
HEADERS = ["Benchmark", "Metric", "Blessed", "New", "New/blessed", "Bound", "p (worse, BH)", "Verdict"]


def _bound(c: Any) -> str:
    """The worse-side prediction bound with its direction: "≤ 0.746" when lower is
    better (the bound lies above the blessed centre), "≥ 1.31" otherwise."""
    if c.bound is None or c.old is None:
        return NA
    return f"{'≤' if c.bound >= c.old else '≥'} {c.bound:.4g}"


def _table(comparisons: list[Any]) -> str:
    rows = [[c.name, c.metric, fmt(c.old, "{:.6g}"), fmt(c.new, "{:.6g}"), fmt(c.ratio, "{:.3f}"), _bound(c),
             fmt(c.p_value, "{:.2g}"), c.verdict + (f" ({c.note})" if c.note else "")]
            for c in sorted(comparisons, key=lambda c: ORDER.get(c.verdict, 9))]
    return markdown_table(rows, HEADERS)


def render_comparisons(comparisons: list[Any], notes: list[str]) -> str:
    """Markdown of ``harness.gate.compare.Comparison`` verdicts: the notes, the gated
    table (regressions first), then the information rows (``gated`` False: absolute
    timings and the A/A control, shown, never judged) under their own heading.

    "Blessed" is the blessed runs' centre (geometric mean) for timings and the newest
    blessed run's value otherwise; "Bound" the one-sided (1 - alpha) prediction bound the
    new value must not cross; "p (worse, BH)" the Benjamini-Hochberg adjusted
    one-sided p of "new is worse".
    """
    gated = [c for c in comparisons if c.gated]
    shown = [c for c in comparisons if not c.gated]
    blocks = [_table(gated)] if gated else []
    if shown:
        blocks.append("Information (not gated: absolute timings drift between runs; the A/A control):\n\n"
                      + _table(shown))
    return "\n".join([*notes, "\n\n".join(blocks) or "(nothing to compare)"])


def render_budgets(verdicts: list[Any]) -> str:
    """Markdown table of ``harness.gate.budgets.BudgetVerdict`` results, failures first."""
    table = [[v.label, v.message, v.budget.why]
             for v in sorted(verdicts, key=lambda v: (v.passed is not False, v.passed is None))]
    return markdown_table(table, ["Verdict", "Measured", "Why this budget"]) if table else "(no budgets apply)"
