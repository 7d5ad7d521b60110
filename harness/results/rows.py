"""One pass from a saved run's results to summary rows, one per (profile, variant, backend)."""
from __future__ import annotations

from typing import Any

from harness.models.profiles import PROFILES

# Results describing the run or machine rather than one (profile, variant).
MACHINE_METRICS = ("int8_engine", "gemm_peak")


def rows_from_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary row per (profile, variant, backend), in order of first appearance.

    ``results`` are benchmarks' ``extra_info`` dicts (``storage.results``, or the
    suite's in-session records); runs saved before the backend axis are torch.
    """
    by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in results:
        if r["metric"] in MACHINE_METRICS or "profile" not in r:
            continue
        key = (r["profile"], r["variant"], r.get("backend", "torch"))
        row = by_key.setdefault(key, {
            "profile": key[0], "variant": key[1], "backend": key[2], "size_mb": None, "params": None,
            "nonzero_params": None, "sparsity": None, "linear_sparsity": None, "flops": None, "macs_fvcore": None, "size_sparse_mb": None,
            "cold_start_ms": None, "load_ms": None, "first_forward_ms": None,
            "p50_ms": {}, "p90_ms": {}, "p99_ms": {}, "cv": {}, "p50_block_cv": {}, "throughput_sps": {},
            "peak_rss_mb": None, "peak_rss_delta_mb": None, "accuracy": None,
            "accuracy_ci95": None, "accuracy_mr": None, "accuracy_mr_ci95": None,
            "eval_loss": None, "eval_loss_mr": None, "agreement": None, "kl_fp32": None,
            "quant_engine": None, "quantized_linear_fraction": None, "pruning_recovery_epochs": None,
            "real_weights": PROFILES[key[0]].real_weights if key[0] in PROFILES else None,
        })
        m = r["metric"]
        if m == "static":
            for k in ("size_mb", "size_sparse_mb", "params", "nonzero_params", "sparsity", "linear_sparsity",
                      "flops", "macs_fvcore",
                      "quant_engine", "quantized_linear_fraction", "pruning_recovery_epochs"):
                row[k] = r.get(k)
        elif m == "latency":
            s = str(r["seq_len"])
            row["p50_ms"][s], row["p90_ms"][s], row["p99_ms"][s] = r["p50_ms"], r["p90_ms"], r["p99_ms"]
            row["cv"][s] = r["cv"]
            row["p50_block_cv"][s] = r.get("p50_block_cv")
        elif m == "throughput":
            row["throughput_sps"][str(r["batch_size"])] = r["throughput_sps"]
        elif m == "cold_start":
            for k in ("cold_start_ms", "load_ms", "first_forward_ms"):
                row[k] = r[k]
        elif m == "memory":
            row["peak_rss_mb"], row["peak_rss_delta_mb"] = r["peak_rss_mb"], r["peak_rss_delta_mb"]
        elif m == "quality":
            from harness.models.tasks import eval_suffix

            suffix = eval_suffix(r["eval_set"])
            row["accuracy" + suffix] = r["accuracy"]
            row[f"accuracy{suffix}_ci95"] = r["accuracy_ci95"]
            row["eval_loss" + suffix] = r["eval_loss"]
            if not suffix:
                row["agreement"], row["kl_fp32"] = r["agreement"], r["kl_fp32"]
    return list(by_key.values())
