"""Markdown of the regression gate's verdicts (``python -m harness compare`` /
``budgets``, ``suites/test_gate.py``); the verdicts come from :mod:`harness.gate`."""
from __future__ import annotations

from typing import Any

from harness.report.common import fmt, markdown_table

# Regressions first: what a reader must act on.
ORDER = {"regression": 0, "missing": 1, "not comparable": 2, "improvement": 3, "unchanged": 4}


def render_comparisons(comparisons: list[Any], notes: list[str]) -> str:
    """Markdown table of ``harness.gate.compare.Comparison`` verdicts, regressions first."""
    table = [[c.name, c.metric, fmt(c.old, "{:.6g}"), fmt(c.new, "{:.6g}"), fmt(c.ratio, "{:.3f}"),
              fmt(c.p_value, "{:.2g}"), c.verdict + (f" ({c.note})" if c.note else "")]
             for c in sorted(comparisons, key=lambda c: ORDER.get(c.verdict, 9))]
    text = markdown_table(table, ["Benchmark", "Metric", "Old", "New", "New/old", "p (slower)", "Verdict"]
                          ) if table else "(nothing to compare)"
    return "\n".join([*notes, text] if notes else [text])


def render_budgets(verdicts: list[Any]) -> str:
    """Markdown table of ``harness.gate.budgets.BudgetVerdict`` results, failures first."""
    table = [[v.label, v.message, v.budget.why]
             for v in sorted(verdicts, key=lambda v: (v.passed is not False, v.passed is None))]
    return markdown_table(table, ["Verdict", "Measured", "Why this budget"]) if table else "(no budgets apply)"
