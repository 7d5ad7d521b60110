"""A run's results, read once, as the rows every report section, plot, the
diff, the gate and ``summary.json`` read.

:func:`collect` takes a run's results (``storage.results(run)``, or the suite's
in-session records) and returns a :class:`RunRows`: one summary row per
(profile, variant, backend) (:func:`rows_from_results`), each with its
:class:`VariantConfig`; the run's GEMM peak; the INT8 engine probe; the
integrity rows; the study-004 vision rows; the distillation rows; the backend
session options and mean latencies.  Renderers read these fields and never
re-walk the results or re-parse a variant's name: the one name parser
(:func:`variant_config`, for runs saved before a fact was recorded) is here.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

import compressors
from harness.measure import cold_start, peak
from harness.measure.stats import AA_BOUNDS, paired_ratio, process_groups
from harness.models.profiles import PROFILES
from harness.models.project import IMAGE_TASKS
from harness.models.tasks import eval_suffix

# Results describing the run or machine rather than one (profile, variant).
MACHINE_METRICS = ("int8_engine", "gemm_peak")
GEMM_PEAK_KEYS = ("threads", "size", "load_avg_1m",
                  *(f"{name}_{field}" for name in peak.CEILINGS for field in ("gops", "gops_median", "kernel")))
# The cold-start fields of a row; runs saved before time-to-first-result and the cold page
# cache have only load_ms, first_forward_ms and cold_start_ms (the rest stay None).
COLD_START_FIELDS = (*cold_start.FIELDS, *(f"cold_cache_{k}" for k in cold_start.COLD_FIELDS),
                     "cold_cache_label", "cold_cache_resident_after",
                     *(f"{form}_{k}" for form in cold_start.FORMS for k in cold_start.FORM_FIELDS))
MEMORY_FIELDS = ("peak_rss_mb", "peak_rss_delta_mb", "steady_anon_mb", "steady_file_mb", "kernel_peak_source",
                 "batch_peak_rss_mb", "batch_activation_mb")
SWEEP_METHODS = ("magnitude-global", "magnitude-layerwise")


@dataclasses.dataclass(frozen=True)
class VariantConfig:
    """What a variant is made of.

    ``stages``: the stage specs in order (``"magnitude-global@0.5:recovery_epochs=1"``,
    ``"int8"``); ``methods``: each stage's compressor; ``target_sparsity``: the
    first stage's target (its ``@`` argument as a fraction, None without one);
    ``recovery_epochs``: fine-tuning epochs after pruning (0: one-shot);
    ``quant_engine``: the recorded INT8 engine (None: not quantized or not
    recorded); ``precision``: ``"int8"`` when the Linears run INT8 GEMMs, else ``"fp32"``.
    """

    stages: tuple[str, ...]
    methods: tuple[str, ...]
    target_sparsity: float | None
    recovery_epochs: int
    quant_engine: str | None
    precision: str

    @property
    def chained(self) -> bool:
        """An ``A+B`` pipeline of several stages."""
        return len(self.stages) > 1

    def prefixes(self) -> list[str]:
        """The variant names of the pipeline's stages so far: ``["a", "a+b", ...]``."""
        return ["+".join(self.stages[:i + 1]) for i in range(len(self.stages))]


def _split(stage: str) -> tuple[str, str | None, dict[str, Any]]:
    try:
        return compressors.split_spec(stage)
    except compressors.CompressionError:  # options that are not field=value: the method, no arguments
        return stage.split(":")[0].partition("@")[0], None, {}


def variant_config(variant: str, facts: dict[str, Any] | None = None) -> VariantConfig:
    """A variant's config from its recorded static ``facts`` (the ``static``
    result: ``stages``, ``pruning_target_sparsity``, ``pruning_recovery_epochs``,
    ``quant_engine``), each missing fact read from the variant's name instead
    (runs saved before it was recorded).  A variant name is its spec: stages
    joined by ``+``, each ``method@arg:option=value``."""
    facts = facts or {}
    stages = tuple(variant.split("+"))
    specs = [_split(s) for s in stages]
    recorded = facts.get("stages")
    methods = tuple(recorded.split("+")) if recorded else tuple(method for method, _, _ in specs)
    target = facts.get("pruning_target_sparsity")
    if target is None and specs[0][1] is not None:
        try:
            target = float(specs[0][1])
        except ValueError:
            target = None
    epochs = facts.get("pruning_recovery_epochs")
    if not epochs:
        epochs = specs[0][2].get("recovery_epochs", 0)
    engine = facts.get("quant_engine")
    return VariantConfig(stages, methods, target, int(epochs), engine, peak.precision(methods, engine))


def config_of(row: dict[str, Any]) -> VariantConfig:
    """The row's :class:`VariantConfig` (built from the row's own fields for a row not made by :func:`collect`)."""
    config = row.get("config")
    return config if isinstance(config, VariantConfig) else variant_config(row["variant"], row)


def rows_from_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary row per (profile, variant, backend), in order of first appearance.

    ``results`` are benchmarks' ``extra_info`` dicts (``storage.results``, or the
    suite's in-session records); runs saved before the backend axis are torch.
    A row's fields (None / {} where the run did not measure them):

    * ``profile``, ``variant``, ``backend``; ``real_weights`` (the profile has trained weights);
      ``reference_backend``: the backend of the profile's fp32 baseline (:func:`is_reference`);
    * static: ``size_mb``, ``size_sparse_mb`` (MB, 10^6 bytes), ``params``, ``nonzero_params``,
      ``pruned_zeros``, ``quantization_zeros`` (counts: zeros a pruner set vs INT8 rounding
      made), ``sparsity`` (pruned_zeros / params; runs before the split: all zeros),
      ``linear_sparsity`` (fractions), ``flops``, ``macs_fvcore`` (fvcore's count), ``macs_onnx`` (an
      ONNX-file profile's, from its graph) (batch 1, the profile's static length), ``quant_engine``, ``quantized_linear_fraction``, ``int8_flops_fraction``
      (share of the FLOPs in INT8 kernels), ``pruning_recovery_epochs``;
    * timings per sequence length ``{"128": ms}``: ``p50_ms``, ``p90_ms``, ``p99_ms``, ``cv``,
      ``p50_block_cv`` (fractions); ``throughput_sps`` per batch size ``{"32": samples/s}`` (batch /
      p50) and ``sustained_sps`` (all samples / wall time of the cell's blocks);
    * interleaved timing (issue 16): ``timing_design`` (``"interleaved"``, or ``"single-block"`` for
      runs saved before it: shown, never judged by CI rules); paired ratios to the reference fp32 of
      the same run with 95% CIs, ``p50_ratio`` per length and ``throughput_ratio`` per batch size
      (``{"128": {"ratio", "ci95": [low, high], "n"}}``); on the reference the A/A control
      ``aa_ratio`` (``{"latency@128": ...}``) and ``aa_passed``; ``campaign_stable`` per shape;
    * fresh process (:mod:`harness.measure.cold_start`): ``time_to_first_result_ms`` (spawn to
      first logits) with ``interpreter_ms``, ``import_ms``, ``load_ms``, ``first_forward_ms`` and
      ``cold_start_ms`` (load + first forward), warm page cache; the ``cold_cache_*`` ones with the
      variant's files evicted first (None in runs before it), ``cold_cache_label``; ``peak_rss_mb``,
      ``peak_rss_delta_mb``, ``steady_anon_mb`` / ``steady_file_mb`` (what stays resident
      after the load, by kind: :mod:`harness.measure.memory`), ``kernel_peak_source``;
      ``batch_peak_rss_mb`` / ``batch_activation_mb`` at ``memory_batch_size`` (the run's largest);
    * quality: ``accuracy``, ``accuracy_mr`` (fractions) with ``*_ci95`` ``[low, high]``,
      ``eval_loss``, ``eval_loss_mr`` (nats), ``agreement`` (fraction), ``kl_fp32`` (nats);
    * ``config``: the :class:`VariantConfig` (not a number: :func:`public` leaves it out of
      ``summary.json``).
    """
    by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
    facts: dict[tuple[str, str, str], dict[str, Any]] = {}
    blocks: dict[tuple[str, str, str], dict] = {}
    for r in results:
        if r["metric"] in MACHINE_METRICS or "profile" not in r:
            continue
        key = (r["profile"], r["variant"], r.get("backend", "torch"))
        row = by_key.setdefault(key, {
            "profile": key[0], "variant": key[1], "backend": key[2], "size_mb": None, "params": None,
            "nonzero_params": None, "pruned_zeros": None, "quantization_zeros": None, "sparsity": None,
            "linear_sparsity": None, "flops": None, "macs_fvcore": None, "macs_onnx": None, "size_sparse_mb": None,
            **dict.fromkeys(COLD_START_FIELDS),
            "p50_ms": {}, "p90_ms": {}, "p99_ms": {}, "cv": {}, "p50_block_cv": {}, "throughput_sps": {},
            "sustained_sps": {},
            **dict.fromkeys(MEMORY_FIELDS), "memory_batch_size": None, "accuracy": None,
            "accuracy_ci95": None, "accuracy_mr": None, "accuracy_mr_ci95": None,
            "eval_loss": None, "eval_loss_mr": None, "agreement": None, "kl_fp32": None,
            "quant_engine": None, "quantized_linear_fraction": None, "int8_flops_fraction": None,
            "pruning_recovery_epochs": None,
            "timing_design": None, "p50_ratio": {}, "throughput_ratio": {}, "aa_ratio": {}, "aa_passed": None,
            "campaign_stable": {},
            "real_weights": _profile_field(r, "real_weights"), "task": _profile_field(r, "task"),
            "reference_backend": _profile_field(r, "reference_backend") or "torch",
        })
        m = r["metric"]
        if m == "static":
            facts[key] = r
            for k in ("size_mb", "size_sparse_mb", "params", "nonzero_params", "pruned_zeros", "quantization_zeros",
                      "sparsity", "linear_sparsity",
                      "flops", "macs_fvcore", "macs_onnx", "quant_engine", "quantized_linear_fraction",
                      "int8_flops_fraction", "pruning_recovery_epochs"):
                row[k] = r.get(k)
            if key[2] != "torch":  # counted on the torch source of the artifact (runs before the suite skipped it)
                row["int8_flops_fraction"] = None
        elif m == "latency":
            s = str(r["seq_len"])
            row["p50_ms"][s], row["p90_ms"][s], row["p99_ms"][s] = r["p50_ms"], r["p90_ms"], r["p99_ms"]
            row["cv"][s] = r["cv"]
            row["p50_block_cv"][s] = r.get("p50_block_cv")
            _blocks(row, r, blocks.setdefault(key, {}), "latency", s)
        elif m == "throughput":
            row["throughput_sps"][str(r["batch_size"])] = r["throughput_sps"]
            if r.get("sustained_sps") is not None:
                row["sustained_sps"][str(r["batch_size"])] = r["sustained_sps"]
            _blocks(row, r, blocks.setdefault(key, {}), "throughput", str(r["batch_size"]))
        elif m == "cold_start":
            for k in COLD_START_FIELDS:
                row[k] = r.get(k)
        elif m == "memory":
            for k in MEMORY_FIELDS:
                row[k] = r.get(k)
            row["memory_batch_size"] = r.get("batch_size")
        elif m == "quality":
            # "primary" is recorded since issue 18 (a user's sets have their own names); older runs: by name.
            suffix = "" if r.get("primary") else eval_suffix(r["eval_set"])
            row["accuracy" + suffix] = r["accuracy"]
            if not suffix:
                row["primary_eval_set"] = r["eval_set"]
            if r.get("macro_f1") is not None:
                row["macro_f1" + suffix], row[f"macro_f1{suffix}_ci95"] = r["macro_f1"], r["macro_f1_ci95"]
                row["per_class_accuracy" + suffix] = r.get("per_class_accuracy")
            row[f"accuracy{suffix}_ci95"] = r["accuracy_ci95"]
            row["eval_loss" + suffix] = r["eval_loss"]
            if not suffix:
                row["agreement"], row["kl_fp32"] = r["agreement"], r["kl_fp32"]
    for key, row in by_key.items():
        row["config"] = variant_config(key[1], facts.get(key, row))
    _paired(by_key, blocks)
    return list(by_key.values())


def _blocks(row: dict[str, Any], result: dict[str, Any], blocks: dict, axis: str, index: str) -> None:
    """Keep a timed result's per-repetition block medians (``blocks[axis][index]``) for the paired ratios."""
    if result.get("timing_design") == "interleaved":
        row["timing_design"] = "interleaved"
        blocks.setdefault(axis, {})[index] = (result["block_p50_ms"], result.get("aa_block_p50_ms"),
                                              result.get("campaign_id"), result.get("processes", 1))
        row["campaign_stable"][f"{axis}@{index}"] = result.get("campaign_stable")
    elif row["timing_design"] is None:
        row["timing_design"] = "single-block"  # saved before issue 16: no repetitions, no CI


def _paired(by_key: dict[tuple[str, str, str], dict[str, Any]], blocks: dict[tuple[str, str, str], dict]) -> None:
    """In-run paired ratios against the reference fp32 of the same profile (torch, or onnxruntime for
    an ONNX file; harness.measure.stats.paired_ratio): ``p50_ratio`` per length (time ratio),
    ``throughput_ratio`` per batch size (its inverse: above 1 is faster), and on the reference the A/A
    control ``aa_ratio`` (``"latency@128"``, ``"throughput@32"``) with ``aa_passed`` (every A/A CI
    inside :data:`harness.measure.stats.AA_BOUNDS`)."""
    for key, row in by_key.items():
        profile, variant, backend = key
        reference = blocks.get((profile, "fp32", row["reference_backend"]), {})
        for axis, cells in blocks.get(key, {}).items():
            for index, (mine, aa, campaign, processes) in cells.items():
                if is_reference(row):
                    if aa and len(aa) == len(mine) >= 3:  # fp32~aa runs as many processes as fp32
                        row["aa_ratio"][f"{axis}@{index}"] = paired_ratio(
                            aa, mine, groups=process_groups(len(mine), processes)).as_dict()
                    continue
                ref, _, ref_campaign, ref_processes = reference.get(axis, {}).get(index, (None, None, None, 1))
                if not ref or ref_campaign != campaign or len(ref) != len(mine) or len(mine) < 3:
                    continue  # fp32 not timed in the same campaign: no paired ratio
                ratio = paired_ratio(mine, ref, groups=process_groups(len(mine), processes, ref_processes))
                if axis == "latency":
                    row["p50_ratio"][index] = ratio.as_dict()
                else:
                    row["throughput_ratio"][index] = {"ratio": 1 / ratio.ratio, "ci95": [1 / ratio.high, 1 / ratio.low],
                                                      "n": ratio.n}
        if row["aa_ratio"]:
            row["aa_passed"] = all(AA_BOUNDS[0] <= r["ci95"][0] and r["ci95"][1] <= AA_BOUNDS[1]
                                   for r in row["aa_ratio"].values())


def reference_backend(row: dict[str, Any]) -> str:
    """The backend of the fp32 baseline ``row``'s ratios divide by (runs before issue 18: torch)."""
    return row.get("reference_backend") or "torch"


def is_reference(row: dict[str, Any]) -> bool:
    """``row`` is its profile's fp32 baseline: what every in-run ratio divides by."""
    return row["variant"] == "fp32" and (row.get("backend") or "torch") == reference_backend(row)


def references(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{profile: its reference row}`` of the measured profiles."""
    return {r["profile"]: r for r in rows if is_reference(r)}


def main_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows on their profile's reference backend: torch eager, or onnxruntime for a profile
    that is an ONNX file (the report's main tables; other backends get sections of their own)."""
    return [r for r in rows if (r.get("backend") or "torch") == reference_backend(r)]


def public(row: dict[str, Any]) -> dict[str, Any]:
    """The row as ``summary.json`` holds it (numbers and names; no :class:`VariantConfig`)."""
    return {k: v for k, v in row.items() if k != "config"}


def gemm_peak(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run's measured GEMM ceilings (``suites/test_peak.py``; the last one), or None when not
    measured.  A run saved before the per-kernel ceilings has ``fp32_gflops`` (read as
    ``fp32_gops``) and an INT8 ``torch._int_mm`` figure, which is not the kernel any INT8
    variant calls and is left out (``legacy_int8_kernel`` says so)."""
    found = [r for r in results if r["metric"] == "gemm_peak"]
    if not found:
        return None
    r = dict(found[-1])
    if "fp32_gflops" in r and "fp32_gops" not in r:
        r.update(fp32_gops=r["fp32_gflops"], fp32_gops_median=r.get("fp32_gflops_median"))
    legacy = r.get("int8_kernel") if str(r.get("int8_kernel") or "").startswith("torch._int_mm") else None
    if legacy:
        r.update(int8_gops=None, int8_gops_median=None, int8_kernel=None)
    return {**{k: r.get(k) for k in GEMM_PEAK_KEYS}, "legacy_int8_kernel": legacy}


def int8_engines(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The INT8 engine probe (seq 128, batch 1): profile, engine, p50_ms, cv per engine."""
    return [{"profile": r["profile"], "engine": r["engine"], "p50_ms": r["p50_ms"], "cv": r["cv"]}
            for r in results if r["metric"] == "int8_engine"]


def backend_extras(results: list[dict[str, Any]]) -> dict[str, Any]:
    """``backend_sessions`` (backend -> session options of its first result) and
    ``latency_mean_ms`` ("profile/variant/backend" -> {seq: mean ms})."""
    sessions: dict[str, Any] = {}
    means: dict[str, dict[str, float]] = {}
    for r in results:
        backend = r.get("backend") or "torch"
        if r.get("backend_session") and backend not in sessions:
            sessions[backend] = r["backend_session"]
        if r.get("metric") == "latency" and r.get("mean_ms") is not None:
            means.setdefault(f"{r['profile']}/{r['variant']}/{backend}", {})[str(r["seq_len"])] = r["mean_ms"]
    return {"backend_sessions": sessions, "latency_mean_ms": means}


def distill_rows(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per ``"profile/variant"``: the static facts, p50 per seq, accuracies and
    triple-loss metrics (``tl_*``) -- the distillation sections' input."""
    rows: dict[str, dict[str, Any]] = {}
    for r in results:
        if "profile" not in r or "variant" not in r:
            continue
        row = rows.setdefault(f"{r['profile']}/{r['variant']}", {"p50_ms": {}})
        m = r["metric"]
        if m == "static":
            row.update({k: v for k, v in r.items() if k not in ("stats", "name", "metric")})
        elif m == "latency":
            row["p50_ms"][str(r["seq_len"])] = r["p50_ms"]
        elif m == "quality":
            row["accuracy" if r["eval_set"] == "imdb-test" else "accuracy_mr"] = r["accuracy"]
        elif m == "triple_loss":
            for k in ("distill_eval_loss", "distill_temperature", "cosine_eval_loss", "mlm_eval_loss", "n"):
                row[f"tl_{k}"] = r.get(k)
    return rows


def _profile_field(result: dict[str, Any], field: str) -> Any:
    """A profile property a result records since issue 18 (``task``, ``static_length``,
    ``real_weights``); for an older run, the built-in profile's (None for an unknown profile)."""
    if field in result:
        return result[field]
    profile = PROFILES.get(result.get("profile"))
    return None if profile is None else getattr(profile, field)


def vision_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (image profile, variant): size, params, MACs (``flops // 2``),
    p50 per image size, throughput at batch 8, peak RSS, test / edge-20 accuracy;
    ``config`` as in :func:`rows_from_results`."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    facts: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        if _profile_field(r, "task") not in IMAGE_TASKS or r.get("metric") == "int8_engine":
            continue
        key = (r["profile"], r["variant"])
        row = rows.setdefault(key, {"profile": key[0], "variant": key[1], "p50_ms": {},
                                    "static_size": _profile_field(r, "static_length"),
                                    "real_weights": _profile_field(r, "real_weights")})
        m = r["metric"]
        if m == "static":
            for k in ("size_mb", "params", "nonzero_params", "flops", "flops_by_length", "int8_flops_fraction",
                      "structured_pruner", "hidden_sizes", "pruning_recovery_steps"):
                row[k] = r.get(k)
            row["macs"] = r["flops"] // 2 if r.get("flops") is not None else None
        elif m == "latency":
            row["p50_ms"][str(r["seq_len"])] = r["p50_ms"]
        elif m == "throughput" and r.get("batch_size") == 8:
            row["throughput_sps_8"] = r["throughput_sps"]
        elif m == "memory":
            row["peak_rss_mb"] = r["peak_rss_mb"]
        elif m == "quality":
            which = "edge20" if r["eval_set"].endswith("edge20") else "test"
            row[f"accuracy_{which}"] = r["accuracy"]
            row[f"accuracy_{which}_ci95"] = r.get("accuracy_ci95")
        if m == "static":
            facts[key] = r
    for key, row in rows.items():
        row["config"] = variant_config(key[1], facts.get(key))
    return list(rows.values())


def integrity_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One integrity row per (profile, variant, backend) that recorded a weights
    hash or a caching probe (``harness.measure.integrity``'s ledger fields)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        key = (r.get("profile"), r.get("variant"), r.get("backend") or "torch")
        row = rows.setdefault(key, {"profile": key[0], "variant": key[1], "backend": key[2],
                                    "timed_sha": set(), "evaluated_sha": set(),
                                    "distinct_inputs": [], "logits_checked": 0, "timed_vs_accuracy": None,
                                    "caching": None})
        if r.get("timed_state_sha256") and r.get("metric") in ("latency", "throughput"):
            row["timed_sha"].add(r["timed_state_sha256"])
            row["distinct_inputs"].append(r.get("distinct_inputs"))
            row["logits_checked"] += r.get("logits_checked") or 0
        if r.get("evaluated_state_sha256"):
            row["evaluated_sha"].add(r["evaluated_state_sha256"])
        # timed_vs_scored: like for like (runs before it compared with the batched accuracy pass)
        for name in ("timed_vs_scored", "timed_vs_accuracy"):
            if r.get(f"{name}_max_abs_diff") is not None:
                row["timed_vs_accuracy"] = (r[f"{name}_max_abs_diff"], r.get(f"{name}_tolerance"))
                break
        if r.get("metric") == "integrity_caching":
            row["caching"] = (r.get("ratio"), r.get("p_value"), r.get("flagged"))
    out = []
    for row in rows.values():
        if not row["timed_sha"] and not row["evaluated_sha"] and row["caching"] is None:
            continue
        same = (None if not row["timed_sha"] or not row["evaluated_sha"]
                else row["timed_sha"] == row["evaluated_sha"] and len(row["timed_sha"]) == 1)
        counts = [n for n in row["distinct_inputs"] if isinstance(n, int)]
        out.append({"profile": row["profile"], "variant": row["variant"], "backend": row["backend"],
                    "timed_sha256": sorted(row["timed_sha"]), "evaluated_sha256": sorted(row["evaluated_sha"]),
                    "weights_match": same, "min_distinct_inputs": min(counts) if counts else None,
                    "logits_checked": row["logits_checked"], "timed_vs_accuracy": row["timed_vs_accuracy"],
                    "caching": row["caching"]})
    return out


def sweep_points(rows: list[dict[str, Any]]) -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    """Study-002 rows: ``{(profile, "global"|"layerwise", recovery_epochs): [row, ...]}``
    for the single-stage ``magnitude-{global,layerwise}@S`` variants, sorted by
    S; each row gets ``target_sparsity`` = S."""
    out: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        config = config_of(r)
        if config.chained or config.methods[0] not in SWEEP_METHODS or config.target_sparsity is None:
            continue
        key = (r["profile"], config.methods[0].split("-")[1], config.recovery_epochs)
        out[key].append(dict(r, target_sparsity=config.target_sparsity))
    return {k: sorted(v, key=lambda r: r["target_sparsity"]) for k, v in out.items()}


@dataclasses.dataclass
class RunRows:
    """Everything the report reads from one run's results (see the module docstring)."""

    rows: list[dict[str, Any]]
    gemm_peak: dict[str, Any] | None
    int8_engines: list[dict[str, Any]]
    integrity: list[dict[str, Any]]
    vision: list[dict[str, Any]]
    distill: dict[str, dict[str, Any]]
    backend_sessions: dict[str, Any]
    latency_mean_ms: dict[str, dict[str, float]]


def collect(results: list[dict[str, Any]]) -> RunRows:
    """The run's :class:`RunRows` from its results (``storage.results(run)``, read once by the caller)."""
    extras = backend_extras(results)
    return RunRows(rows=rows_from_results(results), gemm_peak=gemm_peak(results),
                   int8_engines=int8_engines(results), integrity=integrity_rows(results),
                   vision=vision_rows(results), distill=distill_rows(results),
                   backend_sessions=extras["backend_sessions"], latency_mean_ms=extras["latency_mean_ms"])
