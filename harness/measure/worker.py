"""Entry point of fresh-process measurements: ``python -m harness.measure.worker MODE``.

``cold-start`` and ``memory`` measure once and print one result line
(:mod:`harness.measure.fresh`); ``time`` stays alive and serves timing blocks
(:mod:`harness.measure.blocks`, driven by :mod:`harness.measure.interleave`).

Kept import-light at the top so ``import_ms`` measures torch + transformers,
not this module.
"""
from __future__ import annotations

import time

_T_START_NS = time.perf_counter_ns()

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.measure.worker")
    parser.add_argument("mode", choices=("cold-start", "memory", "time"))
    parser.add_argument("--variant", type=Path, required=True)
    parser.add_argument("--inputs", type=Path, help="the saved input batch (cold-start, memory)")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--backend", default="torch", help="harness.backends name (default: torch)")
    parser.add_argument("--batch-inputs", type=Path, default=None,
                        help="cold-start: after the timed phases, one forward of this larger batch and its memory")
    parser.add_argument("--spawned-at-ns", type=int, default=None,
                        help="the parent's time.perf_counter_ns() right before the spawn (cold-start)")
    args = parser.parse_args(argv)

    import importlib
    import os

    # Compressors registered outside the package (a pytest plugin, a user's
    # module) must be registered here too, or their variants cannot be loaded.
    for module in filter(None, os.environ.get("EDGEBENCH_PLUGINS", "").split(",")):
        importlib.import_module(module)
    from harness.measure.fresh import emit

    if args.mode == "time":  # long-lived: serves timing blocks on stdin (harness.measure.blocks)
        from harness import backends
        from harness.measure.blocks import serve

        # Replies go to a private copy of stdout; fd 1 itself now points at stderr, so
        # anything a library prints (Python or C) cannot be mistaken for a reply.
        replies = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)
        adapter = backends.get(args.backend)
        # fingerprint: the integrity checks compare the timed weights with the scored ones
        return serve(lambda: adapter.load(args.variant, args.threads, verify=False, fingerprint=True),
                     stdout=replies)
    if args.inputs is None:
        parser.error(f"{args.mode} needs --inputs")
    if args.mode == "cold-start":
        from harness.measure.cold_start import worker_cold_start

        emit(worker_cold_start(args.variant, args.inputs, args.threads, _T_START_NS, args.spawned_at_ns,
                               args.backend, args.batch_inputs))
    else:
        from harness.measure.memory import worker_peak_memory

        emit(worker_peak_memory(args.variant, args.inputs, args.threads, args.backend))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
