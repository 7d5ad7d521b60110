"""Run-wide state of one benchmark session: variants built once, loaded once.

The suite asks this object for a variant's folder (built and cached on disk on
first use), the loaded model (what is timed is what was saved), input batches
and the FP32 reference logits for quality metrics.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

import compressors

from harness import backends
from harness.core import progress
from harness.backends import variants
from harness.backends.torch_eager import TorchRunner
from harness.data.inputs import text_batch
from harness.measure import integrity
from harness.measure.interleave import Campaign, Target, TimingWorker
from harness.measure.stats import AA_BOUNDS
from harness.models.profiles import get_profile
from harness.models.tasks import TextTask
from harness.results import faults
from harness.store import variants as store_variants


@dataclasses.dataclass
class TimingOptions:
    """How a campaign times (harness.measure.interleave): ``block_s`` seconds per block (at
    least ``min_rounds`` rounds), at least ``min_repetitions`` repetitions, then more until
    every ratio's CI half-width is at most ``precision`` (fraction) and no budget is
    undecided, or ``cap_s`` seconds per campaign have passed -- ``info_min_repetitions`` and
    ``info_cap_s`` for a campaign that judges no budget (only the A/A control: its shape is information, e.g. a point of the
    latency-vs-length curve, so the timing budget goes to the shapes that decide verdicts, the
    "declared key set" of issue 16); ``seed`` fixes the shuffles.
    Each cell is timed by ``processes`` worker processes in turn; each reloads its model
    every ``reload_every`` repetitions (0: never)."""

    # Short blocks: a shared VM's speed drifts faster than a second, so pairs of short blocks
    # taken back to back cancel more of it per second of timing than long ones (the A/A probe
    # behind this choice: reports/reference/README.md).
    block_s: float = 0.05
    min_rounds: int = 1
    min_repetitions: int = 9
    cap_s: float = 60.0
    # A shape that judges no budget gets a CI from fewer repetitions: at seq 512 nine of them
    # took 55 s on distilbert-base, more than the cap meant for it.
    info_min_repetitions: int = 5
    info_cap_s: float = 12.0
    precision: float = 0.02
    seed: int = 20261201
    reload_every: int = 0
    processes: int = 2


def default_threads() -> int:
    """Physical cores: one intra-op thread per core, no SMT siblings."""
    import os

    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


@dataclasses.dataclass
class Case:
    """One (profile, variant, backend) of the suite.  ``skip`` is why the
    backend cannot run the variant (the suite skips it with this reason)."""

    profile: str
    variant: str
    backend: str = "torch"
    skip: str | None = None

    @property
    def id(self) -> str:
        # torch ids are unchanged so runs blessed before the backend axis still match.
        suffix = "" if self.backend == "torch" else f"-{'ort' if self.backend == 'onnxruntime' else self.backend}"
        return f"{self.profile}-{self.variant}{suffix}"

    def on(self, backend: str = "torch", variant: str | None = None) -> "Case":
        """The same profile on another backend and/or variant."""
        return Case(self.profile, self.variant if variant is None else variant, backend)


class BenchSession:
    def __init__(self, threads: int, log=print, rebuild: bool = True) -> None:
        self.threads = threads
        self.log = log
        self.rebuild = rebuild  # False: a corrupt cache entry is an error (--no-rebuild)
        self.variants_from: str | None = None  # a results store to pull built variants from (--variants-from)
        self._failed: dict[tuple[str, str], str] = {}
        self._dirs: dict[tuple[str, str], Path] = {}
        self._models: dict[tuple[str, str], tuple[nn.Module, variants.VariantInfo]] = {}
        self._artifacts: dict[tuple[str, str, str], Path] = {}
        self._runners: dict[tuple[str, str, str], Any] = {}
        self._logits: dict[tuple[str, str, str, str], torch.Tensor] = {}
        self._triple_loss: dict[tuple[str, str, int], tuple] = {}
        # Timed weights and logits, for the accuracy pass's integrity checks (harness.measure.integrity).
        self.integrity = integrity.IntegrityLedger()
        self._tmp = tempfile.TemporaryDirectory(prefix="edgebench-")
        # Every measurement's extra_info (+ raw samples in seconds), for the gate.
        self.results: list[dict[str, Any]] = []
        # Interleaved timing: which cases each (profile, batch, length) campaign times (the
        # suite fills it from its collected items), budgets' ratio limits per cell, workers.
        self.timing = TimingOptions()
        self.timing_plan: dict[tuple[str, int, int], list[Case]] = {}
        self.timing_limits: Any = lambda case, batch, length: []
        self._workers: dict[tuple[str, str], TimingWorker] = {}  # (profile, cell label) -> worker
        self._campaigns: dict[tuple[str, int, int], Campaign] = {}
        self._timed_checks: dict[tuple[str, int, int], dict[str, Any]] = {}  # (cell, batch, length) -> fields
        # Fresh-process results per (worker mode, case id): a cold-start process also reads the
        # load's peak memory, so the memory benchmark reuses them instead of starting its own.
        self.fresh_samples: dict[tuple[str, str], list[dict[str, Any]]] = {}
        torch.set_num_threads(threads)

    def record(self, extra_info: dict[str, Any], samples_s: list[float] | None = None) -> None:
        self.results.append({**extra_info, "samples_s": list(samples_s or [])})

    def close(self) -> None:
        for worker in self._workers.values():
            worker.close()
        self._tmp.cleanup()

    # --- interleaved timing ---------------------------------------------------------

    def _worker(self, case: Case, label: str) -> TimingWorker:
        key = (case.profile, label)
        if key not in self._workers:
            self.runner(case)  # verified (checksums, ONNX checker) here; the worker loads unverified
            self._workers[key] = TimingWorker(label, self.artifact_dir(case), case.backend, self.threads)
        return self._workers[key]

    def reference(self, profile: str) -> Case:
        """The profile's fp32 baseline case, what every in-run ratio divides by and the A/A
        control repeats: torch fp32, or onnxruntime fp32 for a profile that is an ONNX file."""
        return Case(profile, "fp32", get_profile(profile).reference_backend)

    def campaign(self, case: Case, batch_size: int, length: int) -> Campaign:
        """The finished campaign of ``case``'s shape: every planned case of the profile at
        (``batch_size``, ``length``), the reference fp32 twice (the A/A control), timed once per run.

        A case that fails to build or load is left out (its own item reports why)."""
        key = (case.profile, batch_size, length)
        if key not in self._campaigns:
            cases = list(self.timing_plan.get(key) or [case])
            fp32 = self.reference(case.profile)
            workers: dict[str, list[TimingWorker]] = {}
            n = self.timing.processes
            for c in cases:
                try:
                    workers[c.id] = [self._worker(c, f"{c.id}#{i}") for i in range(n)]
                except Exception:  # noqa: BLE001 -- reported by that case's own item
                    if c.id == case.id:
                        raise
            if fp32.id in workers:
                workers[f"{fp32.id}~aa"] = [self._worker(fp32, f"{fp32.id}~aa#{i}") for i in range(n)]
            for cell in list(workers):  # started together above; now wait until each has loaded
                try:
                    for worker in workers[cell]:
                        worker.state
                except Exception:  # noqa: BLE001 -- its own item reports it (the worker is re-used and fails again)
                    del workers[cell]
                    if cell == case.id:
                        raise
            pool, _ = self.timing_pool(case, batch_size, length)
            path = Path(self._tmp.name) / f"pool-{case.profile}-{batch_size}x{length}.pt"
            torch.save(pool, path)
            tag = self.task(case.profile).length_tag
            campaign = Campaign(f"{case.profile} bs={batch_size} {tag}={length}", workers, path,
                                self.timing.block_s, self.timing.min_rounds, self.timing.seed + len(self._campaigns),
                                self.timing.reload_every)
            targets, pairs = [], []
            for c in cases:
                if c.id not in workers:
                    continue
                refs = [r.id for r in (fp32, fp32.on(c.backend)) if r.id in workers and r.id != c.id]
                pairs += [(c.id, r) for r in dict.fromkeys(refs)]
                if fp32.id in workers and c.id != fp32.id:
                    targets += [Target(c.id, fp32.id, limit) for limit in self.timing_limits(c, batch_size, length)]
            cap_s = self.timing.cap_s if targets else min(self.timing.cap_s, self.timing.info_cap_s)
            min_reps = (self.timing.min_repetitions if targets
                        else min(self.timing.min_repetitions, self.timing.info_min_repetitions))
            if fp32.id in workers and f"{fp32.id}~aa" in workers:
                pairs.append((f"{fp32.id}~aa", fp32.id))
                targets += [Target(f"{fp32.id}~aa", fp32.id, limit) for limit in AA_BOUNDS]
            with progress.bar(total=None, desc=f"timing {campaign.name}", unit="repetition", leave=False) as pb:
                campaign.run(min_reps, cap_s, targets, self.timing.precision, pairs,
                             progress=lambda _: pb.update())
            self._campaigns[key] = campaign
            self._close_finished_workers(case.profile)
        return self._campaigns[key]

    def _close_finished_workers(self, profile: str) -> None:
        """Once every planned campaign of ``profile`` has run, its workers are done: free their memory
        (a sweep keeps ~20 variants of one profile; each worker holds its model and runtime)."""
        if all(k in self._campaigns for k in self.timing_plan if k[0] == profile):
            for key in [k for k in self._workers if k[0] == profile]:
                self._workers.pop(key).close()

    def timing_record(self, case: Case, batch_size: int, length: int, ikey: tuple[str, str]) -> tuple[list[float], dict]:
        """``case``'s pooled per-round samples (s) and the fields its result row records:
        the campaign's blocks and order, the A/A control (torch fp32 only) and the integrity
        checks of the worker's timed logits and weights."""
        campaign = self.campaign(case, batch_size, length)
        if case.id not in campaign.workers:
            self.runner(case)  # left out of the campaign: raises this case's own build or load failure
            raise faults.VariantBuildError(f"{case.id} could not be timed: its worker failed to start")
        pool, indices = self.timing_pool(case, batch_size, length)
        worker = campaign.workers[case.id]
        fields = campaign.record(case.id)
        fields["campaign_order"] = campaign.order
        fields["backend_session"] = worker.state.get("session")
        aa = f"{case.id}~aa"
        if aa in campaign.workers:
            fields["aa_block_p50_ms"] = [s * 1e3 for s in campaign.block_p50_s(aa)]
        check = (case.id, batch_size, length)
        if check not in self._timed_checks:  # one check per timed cell, however many items report it
            captured = [{k: torch.tensor(v) for k, v in c.items()} for c in campaign.captured.get(case.id, [])]
            self._timed_checks[check] = integrity.check_timed(
                self.integrity, ikey, self.runner(case), pool, indices, captured,
                [process.state["state_sha256"] for process in campaign.processes[case.id]],
                len(campaign.samples_s(case.id)), length)
        fields.update(self._timed_checks[check])
        return campaign.samples_s(case.id), fields

    def variant_dir(self, case: Case) -> Path:
        key = (case.profile, case.variant)
        if key in self._failed:  # one failed build fails the variant's items, not the run
            raise faults.VariantBuildError(self._failed[key])
        if key not in self._dirs:
            prof = get_profile(case.profile)
            if case.variant != "fp32":  # a compressor that does not apply to this model: skipped, with why
                reason = compressors.get(case.variant).supports(self.model(Case(case.profile, "fp32"))[0])
                if reason:
                    raise faults.VariantUnsupported(f"{case.variant} does not apply to {case.profile}: {reason}")
            try:
                if self.variants_from:  # measured here, built elsewhere: nothing is trained or compressed
                    self._dirs[key] = store_variants.pull(self.variants_from, prof.name, case.variant,
                                                          prof.source_key(), log=self.log, rebuild=self.rebuild)
                else:
                    self._dirs[key] = variants.get_or_build(
                        prof.name, case.variant, prof.source_key(), prof.load_fp32, log=self.log,
                        context=self.context(case.profile), rebuild=self.rebuild)
            except Exception as exc:  # noqa: BLE001 -- any build crash is this variant's failure
                self._failed[key] = f"building {case.id} failed: {faults.one_line(exc)}"
                raise faults.VariantBuildError(self._failed[key]) from exc
        return self._dirs[key]

    def provenance(self, case: Case) -> dict[str, Any] | None:
        """Where the torch variant behind ``case`` came from: the store it was pulled from and the
        testbed that built it (see :mod:`harness.store.variants`); None when built on this device."""
        source = backends.get(case.backend).source_variant(case.variant)
        return store_variants.provenance(self.variant_dir(case.on("torch", source)))

    def model(self, case: Case) -> tuple[nn.Module, variants.VariantInfo]:
        """The PyTorch model of ``case`` -- for another backend, of the torch
        variant its artifact is made from (parameter counts, FLOPs)."""
        if get_profile(case.profile).onnx_file is not None:
            raise faults.VariantUnsupported(f"{case.id} is an ONNX file: it has no PyTorch model to measure")
        case = case.on("torch", backends.get(case.backend).source_variant(case.variant))
        key = (case.profile, case.variant)
        if key not in self._models:
            self._models[key] = variants.load_variant(self.variant_dir(case))
        return self._models[key]

    def artifact_dir(self, case: Case) -> Path:
        """What ``case.backend`` loads from disk (the saved variant for torch,
        the exported ``.onnx`` folder for onnxruntime; for an ONNX-file profile the user's file
        and its ORT quantization), built and cached."""
        if case.backend == "torch":
            return self.variant_dir(case)
        key = (case.profile, case.variant, case.backend)
        if key not in self._artifacts:
            self._artifacts[key] = backends.get(case.backend).prepare(
                case.profile, case.variant, lambda v: self.variant_dir(case.on("torch", v)),
                onnx_file=get_profile(case.profile).onnx_file)
        return self._artifacts[key]

    def runner(self, case: Case):
        """The loaded :class:`harness.backends.Runner` of ``case``, loaded once."""
        key = (case.profile, case.variant, case.backend)
        if key not in self._runners:
            if case.backend == "torch":  # share the already loaded model
                self._runners[key] = TorchRunner(*self.model(case))
            else:
                self._runners[key] = backends.get(case.backend).load(self.artifact_dir(case), self.threads)
        return self._runners[key]

    def task(self, profile: str):
        """The profile's :class:`harness.models.tasks.Task` (text or image)."""
        task = get_profile(profile).make_task()
        task.eval_limit = self.eval_limit
        return task

    def context(self, profile: str):
        """Training data for data-dependent compressors: the task's training set
        for a real-weights profile; None for random-init ones (recovering random
        weights measures nothing, so their variants are pruned one-shot)."""
        prof, task = get_profile(profile), self.task(profile)
        if isinstance(task, TextTask):  # the text and MLM tasks: IMDB training reviews, for any profile
            return task.training_context()
        return task.training_context() if prof.real_weights else None

    def inputs(self, batch_size: int, seq_len: int, case: Case | None = None) -> dict[str, torch.Tensor]:
        """Timing inputs of ``case``'s task: ``seq_len`` is the task's length axis
        (tokens for text, pixels per side for images).  Without ``case``: text."""
        if case is None:
            return text_batch(batch_size, seq_len)
        task = self.task(case.profile)
        model = self.model(Case(case.profile, "fp32"))[0] if task.inputs_need_model else None  # baseline's shapes
        return task.inputs(model, batch_size, seq_len)

    def timing_pool(self, case: Case, batch_size: int, length: int) -> tuple[list[dict[str, torch.Tensor]], Any]:
        """The task's timing pool for ``case`` (see :meth:`harness.models.tasks.Task.timing_pool`)."""
        task = self.task(case.profile)
        # Input shapes are the baseline's; loaded only for a task whose inputs depend on it.
        model = self.model(Case(case.profile, "fp32"))[0] if task.inputs_need_model else None
        return task.timing_pool(model, batch_size, length)

    def inputs_file(self, batch_size: int, seq_len: int, case: Case | None = None, suffix: str = ".pt") -> Path:
        """The batch :meth:`inputs` saved for a fresh worker: ``.pt`` (``torch.save``) or ``.npz``
        (numpy arrays, for a backend whose worker does not import torch)."""
        tag = "" if case is None else f"{case.profile}-"
        path = Path(self._tmp.name) / f"inputs-{tag}{batch_size}x{seq_len}{suffix}"
        if not path.exists():
            inputs = self.inputs(batch_size, seq_len, case)
            if suffix == ".npz":
                import numpy as np

                np.savez(path, **{k: v.numpy() for k, v in inputs.items()})
            elif suffix == ".pt":
                torch.save(inputs, path)
            else:
                raise ValueError(f"worker inputs are .pt or .npz files, not {suffix!r}")
        return path

    def logits(self, case: Case, dataset: str) -> torch.Tensor:
        """(N, C) logits of ``case`` on the task's evaluation set ``dataset`` (cut to ``eval_limit``);
        a non-torch backend is scored through its runner."""
        key = (case.profile, case.variant, case.backend, dataset)
        if key not in self._logits:
            model = self.model(case)[0] if case.backend == "torch" else self.runner(case)
            self._logits[key] = self.task(case.profile).logits(model, dataset)
        return self._logits[key]

    def labels(self, case: Case, dataset: str) -> torch.Tensor:
        """(N,) int64 labels of the task's evaluation set ``dataset``."""
        return self.task(case.profile).labels(dataset)

    def triple_loss_inputs(self, case: Case, n: int) -> tuple:
        """The task's (logits, hidden, MLM labels or None) of ``case`` on its first ``n``
        evaluation examples (see ``Task.triple_loss_inputs``), computed once per session."""
        key = (case.profile, case.variant, n)
        if key not in self._triple_loss:
            self._triple_loss[key] = self.task(case.profile).triple_loss_inputs(self.model(case)[0], n)
        return self._triple_loss[key]

    eval_limit: int | None = None
    """At most this many examples per evaluation set (``--eval-limit``); see ``Task.eval_limit``."""
