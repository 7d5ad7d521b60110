"""Parent side of interleaved timing: randomized repeated blocks, one worker per cell.

The design (issue 16; Kalibera & Jones, "Rigorous benchmarking in reasonable
time", ISMM 2013; Google Benchmark's random interleaving; pyperf's workers):

* every timed cell -- one (variant, backend) -- has its own long-lived worker
  process (:class:`TimingWorker`, :mod:`harness.measure.blocks`), started with
  ``python -m harness.measure.worker time`` rather than forked from the suite,
  so no cell shares an interpreter, allocator or garbage collector with another;
* a :class:`Campaign` times one input shape (batch size x length) as
  repetitions; in each repetition every cell runs one short block, in an order
  shuffled anew (seeded, recorded), while the parent blocks on the reply;
* a block whose machine-wide CPU use by other processes or steal time exceeds
  :data:`NOISY_FRACTION` of a core is flagged and re-timed (at most
  :data:`RETIMES` times; the last one is kept and stays flagged);
* after ``min_repetitions`` the campaign adds repetitions until every
  ``target`` is decided (a ratio CI wholly on one side of each bound it must be
  judged against) and every ratio's CI half-width is at most ``precision``, or
  until ``cap_s`` seconds have passed (then the campaign is marked unstable).

Integrity (MLPerf's TEST01 analogue, :func:`harness.measure.integrity.check_timed`): the
logits of one timed round are sent back from the blocks of repetitions 0, 1, 3, 7, 15, ...
(:func:`captured_round`), so the checked outputs are spread over the whole campaign and
over its worker processes, whatever its length (at least 4 with the default 9 repetitions).

Ratios are paired within a repetition (:func:`harness.measure.stats.paired_ratio`):
what drifts slower than one repetition cancels.  A cell may be timed by several worker
processes in turn; each process keeps a memory-layout offset of its own, so the CI
resamples processes as well as repetitions (a two-stage bootstrap) and a verdict never
rests on one process's luck.
"""
from __future__ import annotations

import dataclasses
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from harness.core.paths import ROOT
from harness.measure.fresh import MeasurementError, _how, _plugin_modules
from harness.measure.stats import RatioCI, paired_ratio, process_groups

NOISY_FRACTION = 0.25   # of one core: other processes' CPU or steal during a block above this -> re-time
RETIMES = 2
REPLY_TIMEOUT_S = 600


def captured_round(rep: int, min_rounds: int) -> int | None:
    """The timed round of repetition ``rep``'s blocks whose logits are checked, or None:
    repetitions 0, 1, 3, 7, 15, ... (``rep + 1`` a power of two), at round ``rep mod
    min_rounds`` -- a round every block runs, moving through the block from one capture to
    the next."""
    return rep % max(min_rounds, 1) if (rep + 1) & rep == 0 else None


class TimingWorker:
    """A long-lived ``python -m harness.measure.worker time`` process for one cell.

    ``artifact_dir`` is what ``backend`` loads; ``threads`` its intra-op threads.
    stderr goes to a log file (read back for the error message when the worker dies).
    The constructor only starts the process; :attr:`state` (its first reply: model loaded)
    waits for it, so many workers can import and load at the same time.

    Raises:
        MeasurementError: the worker died, replied garbage, or timed out.
    """

    def __init__(self, label: str, artifact_dir: Path, backend: str, threads: int) -> None:
        self.label = label
        self._log = tempfile.TemporaryFile(mode="w+")
        cmd = [sys.executable, "-m", "harness.measure.worker", "time", "--variant", str(artifact_dir),
               "--threads", str(threads), "--backend", backend]
        env = {**os.environ, "EDGEBENCH_PLUGINS": ",".join(_plugin_modules()),
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                      text=True, env=env, cwd=ROOT, bufsize=1)
        self._state: dict[str, Any] | None = None

    @property
    def state(self) -> dict[str, Any]:
        """The worker's loaded state (backend session, GC policy, ``state_sha256``); the first
        access waits until the model is loaded."""
        if self._state is None:
            self._state = self.request({"op": "state"})
        return self._state

    def request(self, req: dict[str, Any], timeout_s: float = REPLY_TIMEOUT_S) -> dict[str, Any]:
        """Send one request and wait (blocking, no polling loop) for its reply."""
        try:
            self._proc.stdin.write(json.dumps(req) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._fail()
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout_s)
        if not ready:
            self.close()
            raise MeasurementError(f"timing worker for {self.label} gave no reply within {timeout_s:.0f} s")
        line = self._proc.stdout.readline()
        if not line:
            self._fail()
        reply = json.loads(line)
        if "error" in reply:
            raise MeasurementError(f"timing worker for {self.label}: {reply['error']}")
        return reply

    def _fail(self) -> None:
        code = self._proc.wait()
        self._log.seek(0)
        lines = self._log.read().strip().splitlines()
        tail = lines[-1][:300] if lines else "(no output)"
        raise MeasurementError(f"timing worker for {self.label} failed ({_how(code)}): {tail}")

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self._proc.stdin.flush()
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        self._log.close()


@dataclasses.dataclass
class Block:
    """One timed block of one cell: per-round times (s) and the machine's noise over it."""

    repetition: int
    position: int  # place in the repetition's shuffled order, 0 = first
    samples_s: list[float]
    wall_s: float
    other_cpu_s: float  # CPU seconds other processes used during the block (all cores)
    steal_s: float
    retimed: int  # how many earlier attempts of this block were flagged and thrown away
    flagged: bool  # the kept attempt is itself above the noise threshold
    warmup_rounds: int = 0  # untimed rounds the worker ran just before the block (harness.measure.blocks)

    @property
    def p50_s(self) -> float:
        return float(np.median(self.samples_s))

    def summary(self) -> dict[str, Any]:
        return {"repetition": self.repetition, "position": self.position, "rounds": len(self.samples_s),
                "p50_ms": self.p50_s * 1e3, "wall_s": round(self.wall_s, 4),
                "other_cpu_s": round(self.other_cpu_s, 4), "steal_s": round(self.steal_s, 4),
                "retimed": self.retimed, "flagged": self.flagged, "warmup_rounds": self.warmup_rounds}


def _noisy(reply: dict[str, Any]) -> tuple[bool, float]:
    other = max(0.0, reply["busy_s"] - reply["own_cpu_s"])
    wall = max(reply["wall_s"], 1e-9)
    return other / wall > NOISY_FRACTION or reply["steal_s"] / wall > NOISY_FRACTION, other


@dataclasses.dataclass(frozen=True)
class Target:
    """A bound a paired ratio will be judged against: ``cell`` / ``reference`` vs ``limit``."""

    cell: str
    reference: str
    limit: float


class Campaign:
    """Randomized repeated blocks of one input shape over a set of cells.

    ``workers`` maps a cell's key to its :class:`TimingWorker` or to a list of
    them (independent processes of the same cell, used in turn: repetition ``r``
    is timed by process ``r mod len``, so each process's memory-layout offset is
    part of the cell's spread -- and of its CI -- instead of a hidden constant,
    pyperf's reason for many worker processes); ``pool`` is the
    saved input pool (``torch.save``'d list of batches) every cell runs.
    ``block_s`` is each block's target duration, ``min_rounds`` its minimum
    rounds.  ``seed`` fixes the shuffles; ``order`` records them (cell keys per
    repetition, first to last).
    """

    def __init__(self, name: str, workers: dict[str, TimingWorker], pool: Path, block_s: float, min_rounds: int,
                 seed: int, reload_every: int = 0) -> None:
        if not workers:
            raise ValueError(f"campaign {name}: no cells to time")
        self.name, self.pool = name, pool
        self.processes = {k: (w if isinstance(w, list) else [w]) for k, w in workers.items()}
        for process in (w for ws in self.processes.values() for w in ws):
            process.state  # started together by the caller; wait until every one has loaded
        self.workers = {k: ws[0] for k, ws in self.processes.items()}  # the first process: its state, its logits
        # Unique per campaign: blocks pair only within one campaign (a resumed or merged run may
        # hold two campaigns of the same shape with equally many repetitions).
        self.id = f"{name}#{seed}#{time.time_ns()}"
        self.block_s, self.min_rounds = block_s, min_rounds
        self.reload_every = reload_every  # reload every cell's model each N repetitions (0: never)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.blocks: dict[str, list[Block]] = {k: [] for k in workers}
        self.order: list[list[str]] = []
        self.captured: dict[str, list[dict[int, list[float]]]] = {}  # per process of the cell
        self.elapsed_s = 0.0
        self.cap_s: float | None = None
        self.stable: bool | None = None

    @property
    def repetitions(self) -> int:
        return len(self.order)

    def repeat(self) -> None:
        """One repetition: every cell one block, in a fresh random order."""
        keys = list(self.workers)
        order = [keys[i] for i in self._rng.permutation(len(keys))]
        rep = len(self.order)
        start = time.perf_counter()
        for position, key in enumerate(order):
            capture = captured_round(rep, self.min_rounds)
            req = {"op": "block", "pool": str(self.pool), "seconds": self.block_s, "min_rounds": self.min_rounds,
                   "capture": capture, "reload": bool(self.reload_every and rep and rep % self.reload_every == 0)}
            worker = self.processes[key][rep % len(self.processes[key])]
            for attempt in range(RETIMES + 1):
                reply = worker.request(req)
                req = {**req, "reload": False}  # a re-timed block keeps the model just loaded
                noisy, other = _noisy(reply)
                if not noisy or attempt == RETIMES:
                    break
            if capture is not None:
                self.captured.setdefault(key, []).append({int(k): v for k, v in reply["captured"].items()})
            self.blocks[key].append(Block(rep, position, reply["samples_s"], reply["wall_s"], other,
                                          reply["steal_s"], attempt, noisy, reply.get("warmup_rounds", 0)))
        self.order.append(order)
        self.elapsed_s += time.perf_counter() - start

    def block_p50_s(self, key: str) -> list[float]:
        """Per-repetition block medians of a cell, seconds, in repetition order."""
        return [b.p50_s for b in self.blocks[key]]

    def ratio(self, cell: str, reference: str, across_processes: bool = True) -> RatioCI:
        """Paired ratio of two cells' block medians (time ratio: below 1 is faster).  Its CI
        resamples the worker processes as well as the repetitions (:func:`process_groups`);
        ``across_processes=False`` resamples repetitions only -- the part of the uncertainty
        that more repetitions can reduce."""
        mine, ref = self.block_p50_s(cell), self.block_p50_s(reference)
        groups = process_groups(len(mine), len(self.processes[cell]), len(self.processes[reference]))
        return paired_ratio(mine, ref, groups=groups if across_processes else None)

    def run(self, min_repetitions: int, cap_s: float, targets: list[Target], precision: float,
            pairs: list[tuple[str, str]], progress: Callable[[str], None] | None = None) -> None:
        """Repeat until ``min_repetitions`` are done and every target is decided and every
        pair's ratio CI half-width is at most ``precision``, or ``cap_s`` seconds have passed
        (``stable`` False).  ``pairs`` are the (cell, reference) ratios reported.

        Targets are judged on the CI across processes (what the verdict reports); the
        precision on the CI over repetitions, since more repetitions cannot shrink the spread
        between a fixed set of processes -- a campaign would otherwise run to its cap for it."""
        self.cap_s = cap_s
        while True:
            self.repeat()
            if progress:
                progress(f"{self.name}: repetition {self.repetitions}, {self.elapsed_s:.0f} s")
            if self.repetitions < max(min_repetitions, 3):
                continue
            cis = {t: self.ratio(t.cell, t.reference) for t in targets}
            open_targets = [t for t, ci in cis.items() if ci.low <= t.limit <= ci.high]
            wide = [p for p in pairs if self.ratio(*p, across_processes=False).half_width > precision]
            if not open_targets and not wide:
                self.stable = True
                return
            if self.elapsed_s >= cap_s:
                self.stable = False
                return

    def record(self, key: str) -> dict[str, Any]:
        """What a cell's result row stores about the campaign."""
        blocks = self.blocks[key]
        return {"timing_design": "interleaved", "campaign": self.name, "campaign_id": self.id, "campaign_seed": self.seed,
                "repetitions": self.repetitions, "block_s": self.block_s, "block_p50_ms": [b.p50_s * 1e3 for b in blocks],
                "blocks": [b.summary() for b in blocks], "blocks_flagged": sum(b.flagged for b in blocks),
                "blocks_retimed": sum(b.retimed for b in blocks), "campaign_stable": self.stable,
                "processes": len(self.processes[key]),
                "campaign_elapsed_s": round(self.elapsed_s, 2), "campaign_cap_s": self.cap_s, "gc_policy": self.workers[key].state.get("gc"),
                "warmup_policy": self.workers[key].state.get("warmup")}

    def samples_s(self, key: str) -> list[float]:
        """Every round of every block of a cell, seconds, in time order."""
        return [s for b in self.blocks[key] for s in b.samples_s]
