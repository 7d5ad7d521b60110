"""Worker side of interleaved timing: one loaded model, timed one block at a time on request.

A timing worker (``python -m harness.measure.worker time``, started by
:class:`harness.measure.interleave.TimingWorker`) loads one variant on one
backend and then serves requests, one JSON object per line on stdin, one reply
per line on stdout (pyperf's parent/worker split, kept alive across blocks so a
block costs no load):

* ``{"op": "block", "pool": PATH, "seconds": S, "min_rounds": N, "capture": R | null, "reload": bool}``
  -- time one block on the input pool saved at ``PATH`` (a ``torch.save``'d
  list of input dicts; round ``i`` runs batch ``i mod len(pool)``).  With
  ``reload`` the model is first loaded anew from disk, so its weights get fresh
  memory: a process's memory-layout offset (Mytkowicz et al., "Producing wrong
  data without doing anything obviously wrong!", ASPLOS 2009) is drawn again
  instead of staying fixed for the worker's life.  The first block on a pool,
  and the first after a reload, is preceded by a warm-up (lazy kernels, allocator).  Before
  every block: ``gc.collect()`` then ``gc.freeze()`` (the collector stays
  enabled, with nothing old left to scan), then untimed rounds on one example of the
  block's first batch for at least :data:`BLOCK_WARMUP_S` (at least one round): while the
  other cells ran, this worker's weights left the caches and its intra-op threads went to
  sleep, so a block's first round is a cold round, not the steady state a served model
  runs in (one example brings back the weights and threads at a fraction of a batch's
  cost).  Reply: ``samples_s`` (seconds per
  round), ``warmup_rounds``, ``wall_s``, ``own_cpu_s`` (this process's CPU time) and the
  machine-wide ``busy_s`` / ``steal_s`` over the block (:func:`noise_window`),
  plus, with ``capture`` R, the logits of the block's timed round R (``captured``: pool
  index -> the (B, C) logits as a nested list, or a bounded sample of a larger output:
  :func:`harness.measure.capture.captured_view`) for the integrity checks.
* ``{"op": "state"}`` -- ``{"state_sha256": ..., "session": runner.session_info()}``.
* ``{"op": "quit"}`` -- exit 0.

An error inside a request is replied as ``{"error": "one line"}``; the worker
stays usable.
"""
from __future__ import annotations

import gc
import json
import sys
import time
from typing import Any, Callable

from harness.measure.capture import captured_view

WARMUP_S = 0.25
MIN_WARMUP = 1
BLOCK_WARMUP_S = 0.01
GC_POLICY = "gc.collect() + gc.freeze() before every block; collector enabled"
WARMUP_POLICY = f"untimed rounds on one example for >= {BLOCK_WARMUP_S} s (>= 1 round) before every block"


def noise_window() -> Callable[[], dict[str, float]]:
    """Start measuring what else ran on the machine; call the result to stop.

    Returns ``busy_s`` (CPU seconds of every process, all cores, from
    ``psutil.cpu_times``: user + system + nice + irq + softirq), ``steal_s``
    (hypervisor steal, seconds) and ``own_cpu_s`` (this process's user + system).
    ``busy_s - own_cpu_s`` is the CPU other processes used during the window.
    """
    import psutil

    me = psutil.Process()

    def busy(t) -> float:
        return sum(getattr(t, k, 0.0) for k in ("user", "system", "nice", "irq", "softirq"))

    sys0, own0 = psutil.cpu_times(), me.cpu_times()

    def stop() -> dict[str, float]:
        sys1, own1 = psutil.cpu_times(), me.cpu_times()
        return {"busy_s": busy(sys1) - busy(sys0), "steal_s": getattr(sys1, "steal", 0.0) - getattr(sys0, "steal", 0.0),
                "own_cpu_s": (own1.user + own1.system) - (own0.user + own0.system)}

    return stop


def time_block(run: Callable[[Any], Any], pool: list, seconds: float, min_rounds: int, start_round: int = 0,
               capture: int | None = None) -> dict[str, Any]:
    """Time rounds of ``run(pool[i % len(pool)])`` until ``seconds`` have passed and at least
    ``min_rounds`` ran, after the block's warm-up; keep the output of timed round ``capture``
    (converted after its clock stopped).  Returns the reply fields described in the module
    docstring."""
    gc.collect()
    gc.freeze()
    one = _one_example(pool[start_round % len(pool)])
    warmup_rounds, warm_from = 0, time.perf_counter()
    while warmup_rounds < 1 or time.perf_counter() - warm_from < BLOCK_WARMUP_S:
        run(one)
        warmup_rounds += 1
    samples: list[float] = []
    captured: dict[int, list[float]] = {}
    stop_noise = noise_window()
    t_begin = time.perf_counter()
    i = 0
    while i < min_rounds or time.perf_counter() - t_begin < seconds:
        k = (start_round + i) % len(pool)
        t0 = time.perf_counter()
        out = run(pool[k])
        samples.append(time.perf_counter() - t0)
        if i == capture:
            captured[k] = captured_view(out).tolist()
        i += 1
    wall = time.perf_counter() - t_begin
    return {"samples_s": samples, "warmup_rounds": warmup_rounds, "wall_s": wall, **stop_noise(),
            "captured": {str(k): v for k, v in captured.items()}}


def _one_example(batch: Any) -> Any:
    """The first example of a batch (a tensor or a dict of tensors, batch first), batch kept."""
    if isinstance(batch, dict):
        return {k: _one_example(v) for k, v in batch.items()}
    return batch[:1] if getattr(batch, "ndim", 0) >= 1 else batch


def serve(load: Callable[[], Any], stdin=None, stdout=None) -> int:
    """Answer block / state / quit requests for the runner ``load()`` returns (called again on
    ``reload``) until ``quit`` or end of input."""
    import torch

    from harness.measure.integrity import state_sha256

    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    pools: dict[str, list] = {}
    next_round: dict[str, int] = {}
    warm: set[str] = set()
    runner = load()

    def run(batch):
        with torch.inference_mode():
            return runner(batch)

    for line in stdin:
        try:
            req = json.loads(line)
            op = req.get("op")
            if op == "quit":
                return 0
            if op == "state":
                reply = {"state_sha256": state_sha256(runner), "session": runner.session_info(), "gc": GC_POLICY,
                         "warmup": WARMUP_POLICY}
            elif op == "block":
                path = req["pool"]
                if req.get("reload"):
                    runner = None
                    gc.collect()
                    runner = load()
                    warm.clear()
                if path not in pools:
                    pools[path] = torch.load(path, weights_only=True)
                    next_round[path] = 0
                if path not in warm:
                    warm_until = time.perf_counter() + WARMUP_S
                    n = 0
                    while n < MIN_WARMUP or (time.perf_counter() < warm_until and n < 50):
                        run(pools[path][n % len(pools[path])])
                        n += 1
                    warm.add(path)
                reply = time_block(run, pools[path], float(req["seconds"]), int(req["min_rounds"]),
                                   next_round[path], req.get("capture"))
                # Later blocks continue through the pool, so every batch gets timed.
                next_round[path] += len(reply["samples_s"])
            else:
                reply = {"error": f"unknown request {op!r}"}
        except Exception as exc:  # noqa: BLE001 -- one bad request must not kill the worker's other cells
            reply = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"}
        stdout.write(json.dumps(reply) + "\n")
        stdout.flush()
    return 0
