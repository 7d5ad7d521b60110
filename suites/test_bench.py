"""The benchmark suite: every metric of every (profile, variant), saved by pytest-benchmark.

Run ``pytest suites/ --benchmark-autosave``; select with ``--profiles``,
``--variants`` or ``-k``.  Each test stores its non-timing metrics in
``benchmark.extra_info`` (with ``metric``, ``profile`` and ``variant`` keys) so
one saved JSON holds the whole run; ``python -m harness report`` renders it.
"""
from __future__ import annotations

import warnings

import torch

import compressors
from harness import cold_start, flops, memory
from harness.params import count_params, layer_sparsity, linear_sparsity, sparse_size_bytes
from harness.fresh import run_worker
from harness.profiles import get_profile
from harness.quality import quality_metrics
from harness.stats import LatencyStats
from harness.timers import plan_rounds


def _tag(benchmark, bench, case, metric: str, **extra) -> None:
    """Attach the metrics to the saved benchmark and record them for the gate."""
    import psutil

    _, info = bench.model(case)
    # The 1-minute load average tells a noisy neighbour from a real slowdown:
    # above the core count, other processes competed for the cores while timing.
    benchmark.extra_info.update(
        metric=metric, profile=case.profile, variant=case.variant, threads=bench.threads,
        weights_sha256=info.weights_sha256, load_avg_1m=round(psutil.getloadavg()[0], 2), **extra)
    bench.record(dict(benchmark.extra_info, name=benchmark.name), benchmark.stats.stats.data)


def _forward(model, inputs):
    def run():
        with torch.inference_mode():
            model(**inputs)

    return run


NOISY_CV = 0.10


def _timed(benchmark, fn, opts, min_rounds: int | None = None) -> LatencyStats:
    plan = plan_rounds(fn, opts["seconds"], min_rounds or opts["min_rounds"])
    benchmark.pedantic(fn, rounds=plan.rounds, warmup_rounds=plan.warmup_rounds, iterations=1)
    stats = LatencyStats.from_seconds(benchmark.stats.stats.data)
    if stats.cv > NOISY_CV:
        # pyperf's rule: say so when the spread makes the numbers hard to trust.
        warnings.warn(f"{benchmark.name}: CV {stats.cv:.0%} over {stats.rounds} rounds exceeds {NOISY_CV:.0%}; "
                      "the machine is noisy -- re-run with more rounds (--bench-seconds, --min-rounds) "
                      "on a quieter machine", stacklevel=1)
    return stats


def _static_length(case) -> int:
    """The profile's length for single-shape metrics (seq 128 for text, e.g. 28 px for Fashion-MNIST)."""
    return get_profile(case.profile).static_length


def test_static(benchmark, bench, case):
    """Size on disk, parameters, non-zeros, sparsity, FLOPs and MACs (batch 1, the profile's static length)."""
    model, info = bench.model(case)
    length = _static_length(case)
    inputs = bench.inputs(1, length, case)
    params, nonzero = count_params(model)
    n_flops = benchmark.pedantic(flops.count_flops, args=(model, inputs), rounds=1, iterations=1)
    _tag(benchmark, bench, case, "static",
         size_mb=info.size_mb, size_bytes=info.size_bytes, weights_file=info.weights_file,
         size_sparse_mb=sparse_size_bytes(model) / 1e6, layer_sparsity=layer_sparsity(model),
         linear_sparsity=linear_sparsity(model),
         params=params, nonzero_params=nonzero, sparsity=1 - nonzero / params if params else 0.0,
         flops=n_flops, macs_fvcore=flops.count_macs_fvcore(model, inputs),
         flops_batch=1, flops_seq_len=length, length_axis=bench.task(case.profile).length_axis,
         flops_by_length={str(n): flops.count_flops(model, bench.inputs(1, n, case))
                          for n in get_profile(case.profile).seq_lengths},
         int8_flops_fraction=flops.int8_flops_fraction(model, inputs), build_s=info.build_s, **info.facts)


def test_latency(benchmark, bench, opts, case, seq_len):
    """Batch-1 latency at one sequence length, torch.inference_mode, fixed threads."""
    model, _ = bench.model(case)
    inputs = bench.inputs(1, seq_len, case)
    benchmark.group = f"latency {bench.task(case.profile).length_tag}={seq_len}"
    stats = _timed(benchmark, _forward(model, inputs), opts)
    _tag(benchmark, bench, case, "latency", seq_len=seq_len, length_axis=bench.task(case.profile).length_axis,
         batch_size=1, **stats.as_dict())


def test_throughput(benchmark, bench, opts, case, batch_size):
    """Samples per second at seq 128 for one batch size."""
    model, _ = bench.model(case)
    inputs = bench.inputs(batch_size, _static_length(case), case)
    benchmark.group = f"throughput bs={batch_size}"
    stats = _timed(benchmark, _forward(model, inputs), opts, min_rounds=5)
    _tag(benchmark, bench, case, "throughput", seq_len=_static_length(case), batch_size=batch_size,
         throughput_sps=batch_size / (stats.p50_ms / 1e3), **stats.as_dict())


def _fresh_samples(benchmark, bench, case, mode: str, rounds: int) -> list[dict]:
    """Run ``rounds`` fresh-process workers; pytest-benchmark times each whole process."""
    directory = bench.variant_dir(case)
    inputs_file = bench.inputs_file(1, _static_length(case), case)
    samples: list[dict] = []
    benchmark.pedantic(lambda: samples.append(run_worker(mode, directory, inputs_file, bench.threads)),
                       rounds=rounds, iterations=1)
    return samples


def test_cold_start(benchmark, bench, opts, case):
    """Fresh interpreter per round: import, load from disk, first forward (seq 128).

    The benchmark's own timing is the whole process's wall time; the worker's
    breakdown goes to extra_info.
    """
    benchmark.group = "cold start"
    samples = _fresh_samples(benchmark, bench, case, "cold-start", opts["cold_start_samples"])
    _tag(benchmark, bench, case, "cold_start", **cold_start.summarize(samples))


def test_memory(benchmark, bench, opts, case):
    """Peak RSS of loading the variant and one forward (seq 128) in a fresh process."""
    benchmark.group = "memory"
    samples = _fresh_samples(benchmark, bench, case, "memory", opts["memory_samples"])
    _tag(benchmark, bench, case, "memory", **memory.summarize(samples))


def test_quality(benchmark, bench, case, eval_set):
    """Accuracy (95% bootstrap CI), eval loss, agreement and KL against FP32."""
    benchmark.group = f"quality {eval_set}"
    logits = benchmark.pedantic(bench.logits, args=(case, eval_set), rounds=1, iterations=1)
    reference = None if case.variant == "fp32" else bench.logits(type(case)(case.profile, "fp32"), eval_set)
    labels = bench.labels(case, eval_set)
    _tag(benchmark, bench, case, "quality", eval_set=eval_set,
         **quality_metrics(logits, labels, reference))


def test_int8_engine(benchmark, bench, opts, profile, engine):
    """Both maintained INT8 paths at seq 128, batch 1: evidence for the default engine."""
    from harness.session import Case

    fp32, _ = bench.model(Case(profile, "fp32"))
    model = compressors.build("int8-dynamic", fp32, engine=engine)
    inputs = bench.inputs(1, get_profile(profile).static_length, Case(profile, "fp32"))
    benchmark.group = "int8 engine seq=128"
    stats = _timed(benchmark, _forward(model, inputs), opts)
    benchmark.extra_info.update(metric="int8_engine", profile=profile, variant=f"int8-dynamic@{engine}",
                                engine=engine, threads=bench.threads, seq_len=get_profile(profile).static_length,
                                **stats.as_dict())
