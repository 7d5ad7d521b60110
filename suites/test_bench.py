"""The benchmark suite: every metric of every (profile, variant), saved by pytest-benchmark.

Run ``pytest suites/ --benchmark-autosave``; select with ``--profiles``,
``--variants`` or ``-k``.  Each test stores its non-timing metrics in
``benchmark.extra_info`` (with ``metric``, ``profile`` and ``variant`` keys) so
one saved JSON holds the whole run; ``python -m harness report`` renders it.
"""
from __future__ import annotations

import warnings

import compressors
from harness import backends
from harness.backends import onnx_export
from harness.core import progress
from harness.measure import cold_start, flops, integrity, memory, page_cache
from harness.measure.fresh import run_worker
from harness.measure.params import (
    count_params,
    count_params_onnx,
    layer_sparsity,
    linear_sparsity,
    sparse_size_bytes,
    zero_split,
)
from harness.measure.quality import quality_metrics
from harness.measure.rounds import plan_rounds
from harness.measure.stats import LatencyStats
from harness.results import journal
from harness.models.profiles import get_profile


def _tag(benchmark, bench, case, metric: str, **extra) -> None:
    """Attach the metrics to the saved benchmark and record them for the gate."""
    import psutil

    runner = bench.runner(case)
    # The 1-minute load average tells a noisy neighbour from a real slowdown:
    # above the core count, other processes competed for the cores while timing.
    extra.setdefault("backend_session", runner.session_info())
    profile = get_profile(case.profile)
    # The profile's task and weights kind travel with the result, so a report of a run that used a
    # project file renders without that file.
    benchmark.extra_info.update(
        metric=metric, profile=case.profile, variant=case.variant, backend=case.backend, threads=bench.threads,
        task=profile.task, real_weights=profile.real_weights, static_length=profile.static_length,
        reference_backend=profile.reference_backend, weights_sha256=runner.weights_sha256, load_avg_1m=round(psutil.getloadavg()[0], 2), **extra)
    bench.record(dict(benchmark.extra_info, name=benchmark.name), benchmark.stats.stats.data)


def _ikey(case) -> tuple[str, str]:
    """The integrity ledger's key: (profile, variant[backend]) — each backend is timed and scored apart."""
    return case.profile, case.variant if case.backend == "torch" else f"{case.variant}[{case.backend}]"


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
    """Size on disk, parameters, non-zeros, sparsity, FLOPs and MACs (batch 1, the profile's static length).

    Size is the file the backend loads (state dict or ``.onnx``); parameters
    and FLOPs are counted on the PyTorch model the backend's artifact is made
    from (for onnxruntime: the exported fp32 or pruned fp32 variant).
    """
    if get_profile(case.profile).onnx_file is not None:
        return _static_onnx(benchmark, bench, case)
    model, info = bench.model(case)
    runner = bench.runner(case)
    length = _static_length(case)
    inputs = bench.inputs(1, length, case)
    params, nonzero = count_params(model)
    pruned_zeros, quantization_zeros = zero_split(model, info.facts.get("pruned_linear_zeros"))
    n_flops = benchmark.pedantic(flops.count_flops, args=(model, inputs), rounds=1, iterations=1)
    _tag(benchmark, bench, case, "static",
         size_mb=runner.size_bytes / 1e6, size_bytes=runner.size_bytes, weights_file=runner.weights_file,
         size_sparse_mb=sparse_size_bytes(model) / 1e6, layer_sparsity=layer_sparsity(model),
         linear_sparsity=linear_sparsity(model),
         params=params, nonzero_params=nonzero, pruned_zeros=pruned_zeros, quantization_zeros=quantization_zeros,
         # pruning's sparsity: INT8 rounding zeros are not pruned weights (None: unknown for this build)
         sparsity=None if pruned_zeros is None else pruned_zeros / params if params else 0.0,
         flops=n_flops, macs_fvcore=flops.count_macs_fvcore(model, inputs),
         flops_batch=1, flops_seq_len=length, length_axis=bench.task(case.profile).length_axis,
         flops_by_length={str(n): flops.count_flops(model, bench.inputs(1, n, case))
                          for n in get_profile(case.profile).seq_lengths},
         # Counted on the torch module: for another backend that is the source of its artifact, whose own
         # graph (e.g. ORT's quantized MatMulIntegers) it does not describe.
         int8_flops_fraction=flops.int8_flops_fraction(model, inputs) if case.backend == "torch" else None,
         build_s=info.build_s,
         pulled_from=bench.provenance(case),  # None: built on this device (else the store, run and builder)
         **runner.artifact_facts())


def _static_onnx(benchmark, bench, case) -> None:
    """:func:`test_static` of an ONNX-file profile, read off the graphs: parameters and non-zeros
    from the fp32 file's float initializers (as torch counts them on the fp32 module an INT8
    artifact is made from), MACs from its MatMul/Gemm shapes (FLOPs = 2 x MACs)."""
    runner = bench.runner(case)
    fp32 = bench.artifact_dir(bench.reference(case.profile)) / onnx_export.MODEL_FILE
    length, prof = _static_length(case), get_profile(case.profile)
    params, nonzero = benchmark.pedantic(count_params_onnx, args=(fp32,), rounds=1, iterations=1)
    inputs = runner.meta["graph"]["inputs"]
    macs = {n: flops.count_macs_onnx(fp32, inputs, 1, n) for n in dict.fromkeys((*prof.seq_lengths, length))}
    _tag(benchmark, bench, case, "static",
         size_mb=runner.size_bytes / 1e6, size_bytes=runner.size_bytes, weights_file=runner.weights_file,
         # Zeros in a user's file may be pruned weights or not: unknown, so no pruning sparsity.
         params=params, nonzero_params=nonzero, pruned_zeros=None, sparsity=None,
         flops=2 * macs[length], macs_onnx=macs[length], flops_batch=1, flops_seq_len=length,
         length_axis=bench.task(case.profile).length_axis,
         flops_by_length={str(n): 2 * m for n, m in macs.items() if n in prof.seq_lengths},
         **runner.artifact_facts())


def _timed_cell(benchmark, bench, case, batch_size: int, length: int) -> tuple[LatencyStats, dict]:
    """The cell's samples from its shape's interleaved campaign, stored; its stats and row fields."""
    samples, fields = bench.timing_record(case, batch_size, length, _ikey(case))
    journal.store_samples(benchmark, samples)
    stats = LatencyStats.from_seconds(samples)
    if not fields["campaign_stable"]:
        warnings.warn(f"{benchmark.name}: the campaign hit its time cap ({bench.timing.cap_s:g} s) before its "
                      f"ratios were decided to ±{bench.timing.precision:.0%}; the machine is noisy -- its verdicts "
                      "may be inconclusive (--timing-cap-s buys more repetitions)", stacklevel=1)
    return stats, fields


def test_latency(benchmark, bench, case, seq_len):
    """Batch-1 latency at one length (tokens or pixels per side): this cell's blocks of the
    shape's interleaved campaign (every variant and backend in shuffled repetitions, each in
    its own worker process; harness.measure.interleave)."""
    benchmark.group = f"latency {bench.task(case.profile).length_tag}={seq_len}"
    stats, fields = _timed_cell(benchmark, bench, case, 1, seq_len)
    _tag(benchmark, bench, case, "latency", seq_len=seq_len, length_axis=bench.task(case.profile).length_axis,
         batch_size=1, **stats.as_dict(), **fields)


def test_throughput(benchmark, bench, case, batch_size):
    """Samples per second at the profile's static length for one batch size (same campaigns as latency)."""
    length = _static_length(case)
    benchmark.group = f"throughput bs={batch_size}"
    stats, fields = _timed_cell(benchmark, bench, case, batch_size, length)
    # Sustained: every sample over the wall time of the cell's blocks (batches back to back within
    # a block, gaps between rounds included), beside batch / p50 of a round.
    blocks = fields.get("blocks") or []
    wall_s = sum(b["wall_s"] for b in blocks)
    _tag(benchmark, bench, case, "throughput", seq_len=length, batch_size=batch_size,
         throughput_sps=batch_size / (stats.p50_ms / 1e3),
         sustained_sps=batch_size * sum(b["rounds"] for b in blocks) / wall_s if wall_s else None,
         sustained_wall_s=wall_s, **stats.as_dict(), **fields)


def _fresh_samples(benchmark, bench, case, mode: str, warm: int, cold: int = 0, any_cache: int = 0,
                   forms: bool = False, batch_size: int | None = None) -> tuple[list[dict], dict[str, list[dict]]]:
    """Fresh-process ``mode`` results for ``case``, started once per session and shared: at least
    ``warm`` with the page cache warm and ``cold`` with the variant's files evicted first, and
    at least ``any_cache`` in all (:func:`harness.measure.cold_start.plan`); with ``forms``,
    ``warm`` more of each other deployable form of the artifact (the backend's
    ``cold_start_cases``), interleaved with the first.  An item that needs no more than earlier
    ones ran reuses theirs; pytest-benchmark times each whole process it starts.  With
    ``batch_size``, the first new process also runs one forward at that batch for its memory.

    Returns the case's samples and, by form label, each form's."""
    adapter = backends.get(case.backend)
    directory = bench.artifact_dir(case)
    bench.runner(case)  # verified (checksums, ONNX checker) in this process before timing
    samples = bench.fresh_samples.setdefault((mode, case.id), [])
    queues = [[(samples, directory, state, None) for state in cold_start.plan(samples, warm, cold, any_cache)]]
    by_form: dict[str, list[dict]] = {}
    for label, form_dir in (adapter.cold_start_cases(directory) if forms else {}).items():
        by_form[label] = bench.fresh_samples.setdefault((mode, f"{case.id}:{label}"), [])
        queues.append([(by_form[label], form_dir, state, None) for state in cold_start.plan(by_form[label], warm, 0)])
    n = sum(map(len, queues))
    if not n:
        benchmark.pedantic(lambda: None, rounds=1, iterations=1)  # nothing new to time: results reused
        return samples, by_form
    inputs_file = bench.inputs_file(1, _static_length(case), case, suffix=adapter.worker_inputs)
    if batch_size and queues[0]:  # one process is enough: the activation memory of a batch is no timing
        target, folder, state, _ = queues[0][0]
        queues[0][0] = (target, folder, state,
                        bench.inputs_file(batch_size, _static_length(case), case, suffix=adapter.worker_inputs))
    # round-robin, so that drift touches every form and cache state alike
    jobs = iter([q[i] for i in range(max(map(len, queues))) for q in queues if i < len(q)])

    def one() -> None:
        target, folder, state, batch_file = next(jobs)
        target.append(run_worker(mode, folder, inputs_file, bench.threads, backend=case.backend, page_cache=state,
                                 batch_inputs=batch_file))
        pb.update()

    with progress.bar(total=n, desc=f"{mode} {case.id}", unit="process", leave=False) as pb:
        benchmark.pedantic(one, rounds=n, iterations=1)
    return samples, by_form


def test_cold_start(benchmark, bench, opts, case):
    """Fresh interpreter per round, timed from the spawn: interpreter start, imports, load from
    disk, first forward (seq 128), with the page cache warm and -- the variant's files evicted
    first -- cold, and for each other deployable form of the artifact (onnxruntime: the graph
    pre-optimised on disk); and the kernel's peak RSS of that load (kept for test_memory).

    The benchmark's own timing is the whole process's wall time; the worker's
    breakdown goes to extra_info.
    """
    benchmark.group = "cold start"
    no_cold = page_cache.unavailable()
    samples, by_form = _fresh_samples(benchmark, bench, case, "cold-start", opts["cold_start_samples"],
                                      0 if no_cold else opts["cold_cache_samples"], forms=True,
                                      batch_size=opts["largest_batch"](case.profile))
    forms = {f"{label}_{k}": v for label, got in by_form.items() for k, v in cold_start.summarize(got).items()
             if k in cold_start.FORM_FIELDS}
    _tag(benchmark, bench, case, "cold_start", **cold_start.summarize(samples), **forms,
         cold_cache_unavailable=no_cold if opts["cold_cache_samples"] else None)


def test_memory(benchmark, bench, opts, case):
    """Peak RSS of loading the variant and one forward (seq 128) in a fresh process: the cold-start
    processes' kernel readings (VmHWM), or -- where the kernel gives none -- memory workers with a
    10 ms sampler (labelled by ``kernel_peak_source``)."""
    benchmark.group = "memory"
    mode = "memory" if memory.kernel_peak_unavailable() else "cold-start"
    samples, _ = _fresh_samples(benchmark, bench, case, mode, 0, any_cache=opts["memory_samples"])
    _tag(benchmark, bench, case, "memory", **memory.summarize(samples))


def test_quality(benchmark, bench, case, eval_set):
    """Accuracy (95% bootstrap CI), eval loss, agreement and KL against the torch FP32 reference
    (for onnxruntime fp32 too: how faithful the exported graph is)."""
    benchmark.group = f"quality {eval_set}"
    logits = benchmark.pedantic(bench.logits, args=(case, eval_set), rounds=1, iterations=1)
    ref = bench.reference(case.profile)
    reference = None if (case.variant, case.backend) == (ref.variant, ref.backend) else bench.logits(ref, eval_set)
    labels = bench.labels(case, eval_set)
    _tag(benchmark, bench, case, "quality", eval_set=eval_set, primary=eval_set == bench.task(case.profile).eval_sets[0],
         **quality_metrics(logits, labels, reference, per_class=bench.task(case.profile).per_class),
         **integrity.after_evaluation(bench.integrity, _ikey(case), bench.runner(case), eval_set, logits,
                                      rows=bench.task(case.profile).eval_rows(eval_set)))


def test_result_caching(benchmark, bench, case):
    """TEST04 analogue: a repeated input must not be materially faster than distinct ones (the profile's
    static length -- seq 128 for text -- batch 1)."""
    import pytest

    runner = bench.runner(case)
    benchmark.group = "integrity: result caching"
    length = _static_length(case)
    pool = bench.timing_pool(case, 1, length)[0]  # the task's distinct inputs (reviews, images)
    probe = benchmark.pedantic(integrity.caching_probe, args=(runner, pool), rounds=1, iterations=1)
    _tag(benchmark, bench, case, "integrity_caching", seq_len=length, batch_size=1, **probe)
    if probe["flagged"]:
        pytest.fail(f"{case.id}: a repeated input runs at {probe['ratio']:.2f}x the latency of distinct inputs "
                    f"(p = {probe['p_value']:.2g}): the model caches results, its timings are not valid", pytrace=False)


def test_int8_engine(benchmark, bench, opts, profile, engine):
    """Both maintained INT8 paths at seq 128, batch 1: evidence for the default engine."""
    from harness.backends.torch_eager import TorchRunner
    from harness.session import Case

    fp32, info = bench.model(Case(profile, "fp32"))
    model = compressors.build("int8-dynamic", fp32, engine=engine)
    benchmark.group = "int8 engine seq=128"
    pool, indices = bench.timing_pool(Case(profile, "fp32"), 1, get_profile(profile).static_length)
    stats = _timed(benchmark, integrity.TimedForward(TorchRunner(model, info), pool, indices), opts)
    benchmark.extra_info.update(metric="int8_engine", profile=profile, variant=f"int8-dynamic@{engine}",
                                engine=engine, backend="torch", threads=bench.threads,
                                seq_len=get_profile(profile).static_length, **stats.as_dict())


TRIPLE_LOSS_N = 512  # IMDB test reviews: enough for a stable mean, cheap next to test_quality's full pass


def test_triple_loss(benchmark, bench, case):
    """Study 001's quality table: distillation (KL at T=2 x T^2), cosine and (MLM profile) MLM eval losses vs FP32."""
    import pytest

    from harness.measure.quality import triple_loss_metrics

    if case.backend != "torch":
        pytest.skip("triple losses are measured on the torch model; the ORT graph's agreement and KL "
                    "with torch fp32 are in test_quality")
    if not bench.task(case.profile).triple_loss:
        pytest.skip(f"study 001's triple losses are defined for text models, not the {bench.task(case.profile).name} task")
    if not get_profile(case.profile).real_weights:
        pytest.skip("random weights: study 001's losses compare a trained model with its compressed copy; "
                    "a random network's losses say nothing about a model anyone ships")
    benchmark.group = "triple loss"
    logits, hidden, labels = benchmark.pedantic(bench.triple_loss_inputs, args=(case, TRIPLE_LOSS_N),
                                                rounds=1, iterations=1)
    ref_logits, ref_hidden, _ = bench.triple_loss_inputs(case.on("torch", "fp32"), TRIPLE_LOSS_N)
    _tag(benchmark, bench, case, "triple_loss", eval_set=bench.task(case.profile).eval_sets[0],
         n=int(logits.shape[0]), **triple_loss_metrics(logits, hidden, ref_logits, ref_hidden, mlm_labels=labels))
