"""What every renderer shares: the table footer and the study-002 row grouping."""
from __future__ import annotations

from collections import defaultdict
from typing import Any


def footer(doc: dict[str, Any]) -> str:
    """Where a table's numbers come from: machine fingerprint, threads, torch, run id."""
    m = doc["machine"]
    return (f"Machine {m.get('machine_id', '?')} ({m.get('cpu_model', '?')}, {m.get('physical_cores', '?')} cores), "
            f"{m.get('threads', '?')} threads, torch {m.get('torch', '?')}; run {doc['run']}"
            + (f" ({doc['datetime']})" if doc.get("datetime") else ""))


def sweep_points(rows: list[dict[str, Any]]) -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    """Study-002 rows: ``{(profile, "global"|"layerwise", recovery_epochs): [row, ...]}``
    for the ``magnitude-{global,layerwise}@S[:recovery_epochs=N]`` variants (no
    ``+`` chain), sorted by S; each row gets ``target_sparsity`` = S."""
    import compressors

    out: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if "+" in r["variant"]:
            continue
        try:
            method, arg, options = compressors.split_spec(r["variant"])
            target = float(arg) if arg is not None else None
        except (compressors.CompressionError, ValueError):
            continue
        if method in ("magnitude-global", "magnitude-layerwise") and target is not None:
            epochs = int(r.get("pruning_recovery_epochs") or options.get("recovery_epochs", 0))
            out[(r["profile"], method.split("-")[1], epochs)].append(dict(r, target_sparsity=target))
    return {k: sorted(v, key=lambda r: r["target_sparsity"]) for k, v in out.items()}
