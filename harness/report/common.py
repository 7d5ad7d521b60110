"""What every renderer shares: the Cell/Table model, the one "missing" mark,
the cell formatters and the table footer.

A :class:`Cell` is the text shown in markdown with the raw value kept for the
CSV and JSON copies of a table; every formatter returns one, so a renderer
never formats a number twice.
"""
from __future__ import annotations

import csv
import dataclasses
import io
from typing import Any

from tabulate import tabulate

NA = "–"  # a measurement the run does not have
NA_RANDOM = "n/a (random weights)"  # accuracy of a profile without trained weights


class Cell(str):
    """A table cell: the text shown in markdown, with the raw value kept for CSV/JSON."""

    raw: Any

    def __new__(cls, text: str, raw: Any = None) -> "Cell":
        cell = super().__new__(cls, text)
        cell.raw = raw
        return cell


def raw(cell: Any) -> Any:
    """The value behind a cell (the cell itself for a plain string)."""
    return cell.raw if isinstance(cell, Cell) else cell


def fmt(value: Any, spec: str = "{:.1f}", na: str = NA) -> Cell:
    """``spec.format(value)``, or ``na`` for a missing value."""
    return Cell(na if value is None else spec.format(value), value)


def pct(value: Any, digits: int = 1, na: str = NA) -> Cell:
    """A fraction as a percentage with ``digits`` decimals (0.123 -> "12.3%")."""
    return Cell(na if value is None else f"{100 * value:.{digits}f}%", value)


def ratio(a: Any, b: Any) -> Cell:
    """``a / b`` as "1.23×"; NA when either is missing or ``b`` is 0."""
    return Cell(NA, None) if a is None or b in (None, 0) else Cell(f"{a / b:.2f}×", a / b)


def paired(row: dict[str, Any], field: str, index: str, a: Any, b: Any, ci: bool = True) -> Cell:
    """The in-run paired ratio ``row[field][index]`` as "0.65× [0.64, 0.66]" (its 95% CI; "0.65×"
    with ``ci=False``, for a wide table), or the point ratio ``a / b`` of a run saved before
    interleaved timing (no CI)."""
    value = (row.get(field) or {}).get(index)
    if value is None:
        return ratio(a, b)
    low, high = value["ci95"]
    return Cell(f"{value['ratio']:.2f}×" + (f" [{low:.2f}, {high:.2f}]" if ci else ""), value["ratio"])


def acc_text(value: float, ci: list[float] | None) -> str:
    """An accuracy fraction as "85.12% [84.1, 86.0]" (the 95% CI in points, when known)."""
    return f"{100 * value:.2f}% [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else f"{100 * value:.2f}%"


def acc(row: dict[str, Any], key: str) -> Cell:
    """Accuracy ``row[key]`` with its CI ``row[key + "_ci95"]``; NA_RANDOM for random weights."""
    if row.get("real_weights") is False:
        return Cell(NA_RANDOM, None)
    value = row.get(key)
    return Cell(NA, None) if value is None else Cell(acc_text(value, row.get(f"{key}_ci95")), value)


def markdown_table(rows: list[list[Any]], headers: list[str]) -> str:
    """A GitHub markdown table; cells are shown as given (no number parsing)."""
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


@dataclasses.dataclass
class Table:
    """One report table: ``slug`` names its CSV file; cells are :class:`Cell` or str."""

    slug: str
    title: str
    headers: list[str]
    rows: list[list[Any]]
    intro: str = ""

    def markdown(self) -> str:
        return markdown_table(self.rows, self.headers)

    def csv(self, footer: str) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.headers)
        for row in self.rows:
            w.writerow(["" if raw(c) is None else raw(c) for c in row])
        return buf.getvalue() + f"# {footer}\n"  # a comment line (pandas: comment="#")

    def as_json(self, footer: str) -> dict[str, Any]:
        return {"slug": self.slug, "title": self.title, "headers": self.headers, "footer": footer,
                "rows": [[raw(c) for c in row] for row in self.rows],
                "text": [[str(c) for c in row] for row in self.rows]}


def footer(doc: dict[str, Any]) -> str:
    """Where a table's numbers come from: machine fingerprint, threads, torch, run id."""
    m = doc["machine"]
    return (f"Machine {m.get('machine_id', '?')} ({m.get('cpu_model', '?')}, {m.get('physical_cores', '?')} cores), "
            f"{m.get('threads', '?')} threads, torch {m.get('torch', '?')}; run {doc['run']}"
            + (f" ({doc['datetime']})" if doc.get("datetime") else ""))


def primary_label(rows: list[dict[str, Any]]) -> str:
    """What the primary accuracy columns are scored on: "IMDB" for the built-in text profiles (and
    runs saved before the set was recorded), the set's name for a user's, "primary set" for a mix."""
    imdb = {None, "imdb-test", "imdb-mlm"}
    sets = {r.get("primary_eval_set") for r in rows}
    if sets <= imdb:
        return "IMDB"
    return (sets - imdb).pop() if len(sets - imdb) == 1 and not sets & imdb else "primary set"
