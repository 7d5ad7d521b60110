"""The report's integrity section (MLPerf TEST01 / TEST04 analogues), from
``doc["integrity"]`` (:func:`harness.results.rows.integrity_rows`)."""
from __future__ import annotations

from typing import Any

from harness.report.common import NA, fmt, markdown_table


def render_integrity(doc: dict[str, Any]) -> list[str]:
    """Markdown lines of the report's integrity section (none for runs predating it)."""
    rows = doc.get("integrity") or []
    if not rows:
        return []
    from harness.measure.integrity import (  # imports torch: only when the section is rendered
        CACHE_ALPHA,
        CACHE_RATIO,
        RECOMPUTE_ATOL,
        RECOMPUTE_RTOL,
    )

    table = [[r["profile"], r["variant"], r.get("backend", "torch"),
              NA if r["weights_match"] is None else "yes" if r["weights_match"] else "**NO**",
              (r["timed_sha256"] or r["evaluated_sha256"] or [NA])[0][:12],
              fmt(r["min_distinct_inputs"], "{}"), fmt(r["logits_checked"], "{}"),
              NA if not r["timed_vs_accuracy"] else f"{r['timed_vs_accuracy'][0]:.2g} (≤ {r['timed_vs_accuracy'][1]:g})",
              NA if not r["caching"] else (f"{r['caching'][0]:.2f}× p={r['caching'][1]:.2g}"
                                           + (" **FLAGGED**" if r["caching"][2] else ""))]
             for r in rows]
    return ["## Integrity (MLPerf TEST01 / TEST04 analogues)", "",
            "Timing inputs: every round feeds a different batch of real test examples -- IMDB reviews for text, "
            "Fashion-MNIST images for vision, the test split of a profile's own data set (its texts packed "
            "into full rows when too few are that long; those rows are not rechecked against the accuracy "
            "pass) -- a pool of distinct batches cycled (minimum pool size per variant shown), never one "
            "tensor repeated. Sampled timed logits "
            "-- one timed round from the blocks of repetitions 0, 1, 3, 7, ... of every campaign -- are "
            f"recomputed through the accuracy path (tolerance {RECOMPUTE_ATOL:g} + {RECOMPUTE_RTOL:g}×|x|), and the "
            "scored model reruns the timed test texts at the timed batch size to the same tolerance (text; runs "
            "before it compared with the batched accuracy pass, at a looser tolerance); the weights' sha256 -- "
            "in memory for torch, of the bytes the session was created from for onnxruntime -- is taken after "
            "every timing and after the accuracy pass. Caching probe: repeated / distinct input p50 (flagged when "
            f"p < {CACHE_ALPHA} and < {CACHE_RATIO}×).", "",
            markdown_table(table, ["Model", "Variant", "Backend", "Timed = evaluated weights", "Weights sha256",
                                   "Distinct inputs", "Timed logits rechecked", "Timed vs scored max abs Δlogit",
                                   "Repeated / distinct input"]), ""]
