"""The report's "Failures" section (and the partial-run notice), from ``doc["failures"]``
(recorded by :mod:`harness.results.faults`)."""
from __future__ import annotations

from typing import Any

from harness.report.common import NA, markdown_table


def render_failures(doc: dict[str, Any]) -> list[str]:
    """Markdown lines of the report's "Failures" section (none when nothing failed)."""
    failures = doc.get("failures") or []
    lines: list[str] = []
    if doc.get("interrupted"):
        lines += [f"**Partial run**: interrupted by {doc['interrupted']}; missing measurements were never taken.", ""]
    if not failures:
        return lines
    lines += ["## Failures", "",
              f"{len(failures)} measurement(s) failed; their variants' other numbers and every other variant "
              "were still measured. A failed measurement has no number anywhere in this report.", ""]
    table = [[str(f.get("profile") or NA), str(f.get("variant") or NA), str(f.get("name", "?")),
              str(f.get("reason", "?")).replace("|", "/")] for f in failures]
    lines += [markdown_table(table, ["Model", "Variant", "Test", "Reason"]), ""]
    return lines
