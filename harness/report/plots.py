"""The report's figures (matplotlib, Agg backend), rendered from ``summary.json`` rows.

Each function returns PNG bytes (or None when the run lacks the data, e.g. a
single sequence length), so :func:`harness.report.tables.write_report` can write
every file atomically after everything rendered.  Figures:

* study 002: accuracy vs sparsity, global vs layer-wise magnitude pruning,
  compression ratio on a secondary axis -- the study's nominal one (params /
  non-zero params) and what a CSR file would really save (fp32 MB / CSR MB);
* latency p50 with a p50..p90 band vs sequence length, one line per variant,
  one panel per profile;
* throughput vs batch size, one panel per profile;
* Pareto fronts: accuracy vs p50 @128 and accuracy vs size, the
  Pareto-optimal variants highlighted and named.
"""
from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

from harness.report import common
from harness.results.rows import references, sweep_points

DPI = 110



def _name(row: dict[str, Any]) -> str:
    """A variant's label, with its backend when it is not torch eager (rows of both backends share a plot)."""
    backend = row.get("backend", "torch")
    return row["variant"] if backend == "torch" else f"{row['variant']} [{'ORT' if backend == 'onnxruntime' else backend}]"

def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _footer(fig: Any, footer: str) -> None:
    fig.text(0.01, -0.02, footer, fontsize=7, color="0.35", ha="left", va="top", wrap=True)


def _profiles(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["profile"] for r in rows))


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points not dominated when lower x (cost) and higher y
    (accuracy) are better; ties keep both.

    >>> pareto_front([(1, 0.8), (2, 0.9), (3, 0.85)])
    [0, 1]
    """
    out = []
    for i, (x, y) in enumerate(points):
        dominated = any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i)
        if not dominated:
            out.append(i)
    return out


def latency_vs_seq(rows: list[dict[str, Any]], footer: str) -> bytes | None:
    """p50 line with a p50..p90 band vs sequence length per variant; None with < 2 lengths."""
    profiles = [p for p in _profiles(rows) if any(len(r["p50_ms"]) >= 2 for r in rows if r["profile"] == p)]
    if not profiles:
        return None
    fig, axes = plt.subplots(1, len(profiles), figsize=(5.2 * len(profiles), 4.0), squeeze=False)
    for ax, profile in zip(axes[0], profiles):
        for r in (r for r in rows if r["profile"] == profile and len(r["p50_ms"]) >= 2):
            seqs = sorted(int(s) for s in r["p50_ms"])
            p50 = [r["p50_ms"][str(s)] for s in seqs]
            p90 = [r["p90_ms"][str(s)] for s in seqs]
            (line,) = ax.plot(seqs, p50, marker="o", ms=3.5, label=_name(r))
            ax.fill_between(seqs, p50, p90, color=line.get_color(), alpha=0.18, linewidth=0)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")  # 40, not 4×10^1
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_locator(matplotlib.ticker.LogLocator(base=10, subs=(2, 5)))
        ax.yaxis.set_minor_formatter(plain)
        ax.tick_params(axis="y", which="minor", labelsize=8)
        ticks = sorted({int(s) for r in rows if r["profile"] == profile for s in r["p50_ms"]})
        ax.set_xticks(ticks, [str(s) for s in ticks])
        ax.set_xlabel("sequence length (tokens, batch 1)")
        ax.set_ylabel("latency (ms): p50 line, p50–p90 band")
        ax.set_title(profile)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Latency vs sequence length")
    _footer(fig, footer)
    return _png(fig)


def throughput_vs_batch(rows: list[dict[str, Any]], footer: str) -> bytes | None:
    """Samples/s vs batch size at seq 128 per variant; None with < 2 batch sizes."""
    profiles = [p for p in _profiles(rows) if any(len(r["throughput_sps"]) >= 2 for r in rows if r["profile"] == p)]
    if not profiles:
        return None
    fig, axes = plt.subplots(1, len(profiles), figsize=(5.2 * len(profiles), 4.0), squeeze=False)
    for ax, profile in zip(axes[0], profiles):
        for r in (r for r in rows if r["profile"] == profile and len(r["throughput_sps"]) >= 2):
            batches = sorted(int(b) for b in r["throughput_sps"])
            ax.plot(batches, [r["throughput_sps"][str(b)] for b in batches], marker="o", ms=3.5, label=_name(r))
        ax.set_xscale("log", base=2)
        ticks = sorted({int(b) for r in rows if r["profile"] == profile for b in r["throughput_sps"]})
        ax.set_xticks(ticks, [str(b) for b in ticks])
        ax.set_xlabel("batch size (seq 128)")
        ax.set_ylabel("throughput (samples/s)")
        ax.set_ylim(bottom=0)
        ax.set_title(profile)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Throughput vs batch size")
    _footer(fig, footer)
    return _png(fig)


def sparsity_sweep(rows: list[dict[str, Any]], footer: str) -> bytes | None:
    """Study 002: accuracy vs target sparsity, global vs layer-wise (with/without
    recovery when both exist), compression ratio on the right axis; None
    without a measured sweep on a profile with real weights."""
    fp32 = references(rows)
    points = {k: v for k, v in sweep_points(rows).items() if any(r.get("accuracy") is not None for r in v)}
    profiles = list(dict.fromkeys(k[0] for k in points))
    if not profiles:
        return None
    fig, axes = plt.subplots(len(profiles), 1, figsize=(10.0, 4.6 * len(profiles)), squeeze=False)
    axes = axes.T
    colours = {"global": "tab:blue", "layerwise": "tab:orange"}
    for ax, profile in zip(axes[0], profiles):
        right = ax.twinx()
        base = fp32.get(profile)
        compressed: set[str] = set()
        for (p, method, epochs), pts in sorted(points.items()):
            if p != profile:
                continue
            xs = [r["target_sparsity"] for r in pts]
            recovered = epochs > 0
            name = "layer-wise" if method == "layerwise" else "global"
            label = name + (f" + {epochs} ep recovery" if recovered else "")
            style = "-" if recovered else "--" if any(k[2] for k in points if k[0] == p) else "-"
            ax.plot(xs, [100 * r["accuracy"] if r.get("accuracy") is not None else float("nan") for r in pts],
                    style, marker="o", color=colours[method], label=f"{label}: IMDB accuracy")
            if any(r.get("accuracy_mr") is not None for r in pts):
                ax.plot(xs, [100 * r["accuracy_mr"] if r.get("accuracy_mr") is not None else float("nan")
                             for r in pts], style, marker="^", ms=4, alpha=0.55, color=colours[method],
                        label=f"{label}: MR accuracy")
            if method in compressed:
                continue  # recovery does not change the sparsity: one compression line per method
            compressed.add(method)
            right.plot(xs, [r["params"] / r["nonzero_params"] if r.get("nonzero_params") else float("nan")
                            for r in pts], ":", marker="s", ms=3.5, color=colours[method], alpha=0.7,
                       label=f"{name}: params / non-zero ×")
            if base and base.get("size_mb"):
                right.plot(xs, [base["size_mb"] / r["size_sparse_mb"] if r.get("size_sparse_mb") else float("nan")
                                for r in pts], linestyle=(0, (3, 1, 1, 1)), marker="D", ms=3, color=colours[method],
                           alpha=0.45, label=f"{name}: fp32 MB / CSR MB ×")
        if base and base.get("accuracy") is not None:
            ax.axhline(100 * base["accuracy"], color="0.3", lw=1, ls="-.", label="fp32 IMDB accuracy")
        ax.set_xlabel("target sparsity of encoder Linear weights (fraction)")
        ax.set_ylabel("accuracy (%)")
        right.set_ylabel("compression ratio (×)")
        right.axhline(1.0, color="0.6", lw=0.8)
        ax.set_title(profile)
        ax.grid(True, alpha=0.3)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = right.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left", bbox_to_anchor=(1.14, 1.0))
    fig.suptitle("Magnitude pruning (study 002): accuracy and compression vs sparsity")
    _footer(fig, footer)
    return _png(fig)


def _latency_cost(rows: list[dict[str, Any]]) -> tuple[Any, Any, str]:
    """``(cost(row), cost CI(row), axis label)`` of the latency panel for one profile's rows: the
    in-run paired p50 ratio at seq 128 against the run's reference (torch fp32 = 1) when every
    row has one, else the p50 itself (ms), whose blocks were timed at different moments."""
    def reference(r: dict[str, Any]) -> bool:
        return r["variant"] == "fp32" and r.get("backend", "torch") == r.get("reference_backend", "torch")

    def ratio(r: dict[str, Any]) -> dict[str, Any] | None:
        return {"ratio": 1.0, "ci95": [1.0, 1.0]} if reference(r) else (r.get("p50_ratio") or {}).get("128")

    timed = {id(r) for r in rows if r.get("p50_ms", {}).get("128") is not None}
    if timed and all(ratio(r) for r in rows if id(r) in timed):
        return (lambda r: ratio(r)["ratio"] if id(r) in timed else None,
                lambda r: ratio(r)["ci95"], "p50 @ seq 128, batch 1, paired ratio to torch fp32 in the run")
    return (lambda r: r.get("p50_ms", {}).get("128"), lambda r: None, "p50 latency @ seq 128, batch 1 (ms)")


def pareto(rows: list[dict[str, Any]], footer: str) -> bytes | None:
    """Accuracy vs p50 @128 (the in-run paired ratio to torch fp32 when the run has one for every
    point, :func:`_latency_cost`) and accuracy vs size, one row of two panels per profile with
    measured accuracy, every backend's points together; Pareto-optimal points filled and named."""
    profiles = [p for p in _profiles(rows)
                if sum(1 for r in rows if r["profile"] == p and r.get("accuracy") is not None) >= 2]
    if not profiles:
        return None
    fig, axes = plt.subplots(len(profiles), 2, figsize=(12, 4.6 * len(profiles)), squeeze=False)
    to_label: list[tuple[Any, list, list]] = []
    for (ax_lat, ax_size), profile in zip(axes, profiles):
        latency, latency_ci, latency_label = _latency_cost([r for r in rows if r["profile"] == profile])
        for ax, cost, cost_ci, xlabel in ((ax_lat, latency, latency_ci, latency_label),
                                          (ax_size, lambda r: r.get("size_mb"), lambda r: None, "size on disk (MB)")):
            pts = [(cost(r), 100 * r["accuracy"], _name(r)) for r in rows
                   if r["profile"] == profile and r.get("accuracy") is not None and cost(r) is not None]
            if not pts:
                ax.set_visible(False)
                continue
            # The accuracy's 95% CI as error bars: a front step inside the CI is not a real difference.
            ci = [r for r in rows if r["profile"] == profile and r.get("accuracy") is not None
                  and cost(r) is not None]
            lo = [100 * (r["accuracy"] - r["accuracy_ci95"][0]) if r.get("accuracy_ci95") else 0 for r in ci]
            hi = [100 * (r["accuracy_ci95"][1] - r["accuracy"]) if r.get("accuracy_ci95") else 0 for r in ci]
            xci = [cost_ci(r) for r in ci]
            xerr = None if not any(xci) else [[p[0] - c[0] if c else 0 for p, c in zip(pts, xci)],
                                              [c[1] - p[0] if c else 0 for p, c in zip(pts, xci)]]
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[lo, hi], xerr=xerr, fmt="none", ecolor="0.7",
                        elinewidth=1, capsize=2, label="95% CI", zorder=1)
            front = set(pareto_front([(x, y) for x, y, _ in pts]))
            others = [p for i, p in enumerate(pts) if i not in front]
            best = sorted(p for i, p in enumerate(pts) if i in front)
            ax.scatter([p[0] for p in others], [p[1] for p in others], s=28, facecolors="none",
                       edgecolors="0.45", label="dominated")
            ax.scatter([p[0] for p in best], [p[1] for p in best], s=46, color="tab:red", zorder=3,
                       label="Pareto-optimal")
            ax.step([p[0] for p in best], [p[1] for p in best], where="post", color="tab:red", alpha=0.5)
            to_label.append((ax, pts, best))
            ax.margins(x=0.08)
            lo, hi = ax.get_xlim()
            ax.set_xlim(lo, hi + 0.3 * (hi - lo))  # room on the right for the names
            ax.set_xlabel(xlabel)
            ax.set_ylabel("accuracy on IMDB test (%)")
            ax.set_title(f"{profile}: accuracy vs {'latency' if ax is ax_lat else 'size'}")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8, loc="best")
    fig.suptitle("Pareto fronts (up and to the left is better)")
    fig.tight_layout()
    for ax, pts, best in to_label:  # after the layout: label positions are computed in display space
        _labels(ax, pts, best)
    _footer(fig, footer)
    return _png(fig)


def _labels(ax: Any, pts: list[tuple[float, float, str]], best: list[tuple[float, float, str]]) -> None:
    """Name every point; a label that would overlap an earlier one (in display
    space) moves down, with a thin leader line back to its point.  Call after
    the layout is final: positions come from the axes' current transform."""
    fig = ax.figure
    scale = fig.dpi / 72  # points -> display pixels
    height, char = 9 * scale, 3.9 * scale  # 7 pt text
    placed: list[tuple[float, float, float]] = []  # label left x, centre y, width (pixels)
    for x, y, name in sorted(pts, key=lambda p: (-p[1], p[0])):
        px, py = ax.transData.transform((x, y))
        width, dy = char * len(name), 4.0
        left = px + 6 * scale

        def clash(dy: float) -> bool:
            cy = py + dy * scale
            return any(left < qx + qw and qx < left + width and abs(cy - qy) < height for qx, qy, qw in placed)

        while clash(dy):
            dy -= 3.0
        placed.append((left, py + dy * scale, width))
        on_front = (x, y, name) in best
        moved = dy < 0
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, dy), fontsize=7, va="center",
                    color="tab:red" if on_front else "0.35", fontweight="bold" if on_front else "normal",
                    arrowprops=dict(arrowstyle="-", color="0.75", lw=0.6, shrinkA=0, shrinkB=3) if moved else None)


# (slug of the table the figure belongs to, caption, file name, function)
FIGURES = (
    ("sweep", "Accuracy and compression vs sparsity, global vs layer-wise (study 002)", "sparsity-sweep.png",
     sparsity_sweep),
    ("latency-seq", "Latency p50 (line) and p50–p90 band vs sequence length", "latency-vs-seq.png", latency_vs_seq),
    ("throughput-batch", "Throughput vs batch size", "throughput-vs-batch.png", throughput_vs_batch),
    ("quality", "Pareto fronts: accuracy vs p50 latency and vs size", "pareto.png", pareto),
)


def render_all(doc: dict[str, Any]) -> list[tuple[str, str, str, bytes]]:
    """``(table slug, caption, file name, PNG bytes)`` of every figure the run has data for."""
    foot = common.footer(doc)
    out = []
    for slug, caption, name, fn in FIGURES:
        png = fn(doc["rows"], foot)
        if png is not None:
            out.append((slug, caption, name, png))
    return out
