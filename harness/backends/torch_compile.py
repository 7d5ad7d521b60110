"""``torch-compile`` backend: the saved PyTorch variant run through ``torch.compile`` (TorchInductor, CPU).

The artifact is the saved variant folder, as for :mod:`harness.backends.torch_eager`; :meth:`load`
wraps the loaded module in ``torch.compile(model, backend="inductor")`` with PyTorch's defaults
(``mode=None``, ``dynamic=None``: the first shape compiles static, a second one recompiles with
the dimensions that changed made symbolic).  Compilation is lazy, so it happens in the first
forward: a fresh process's ``first_forward_ms`` and ``time_to_first_result_ms`` include it (never
hidden), and the timing workers' warm-up absorbs it before any block is timed.

Choices, stated and recorded in ``backend_session``:

* **A cold compile in every process.** Inductor keeps compiled kernels in an on-disk cache
  (``TORCHINDUCTOR_CACHE_DIR``, ``/tmp/torchinductor_$USER`` by default) shared across processes
  and runs; a cold start measured against a cache warmed by an earlier sample or run would
  understate it.  Each process gets an empty cache directory of its own, deleted at exit.
* **No silent fallback to eager.** When a function exceeds Dynamo's recompile limit it runs
  eagerly from then on, which would time eager PyTorch under this backend's name;
  ``fail_on_recompile_limit_hit`` makes that an error instead.
* The graph count and graph breaks Dynamo reports (``torch._dynamo.utils.counters``) are
  recorded: a graph break runs the code between graphs eagerly.

INT8 variants compile too: ``int8-dynamic`` (torch.ao's quantized modules, called as opaque
ops) and ``int8-dynamic@torchao`` (torchao's tensor subclasses, which Inductor lowers).
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from harness.backends.torch_eager import TorchEager, TorchRunner
from harness.core.errors import HarnessError, first_line

#: the torch.compile call, as recorded
COMPILE = {"backend": "inductor", "mode": None, "dynamic": None, "fullgraph": False}
_CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"


_CACHE: list[str] = []  # this process's inductor cache directory, once made


def _fresh_inductor_cache() -> str:
    """An empty inductor cache directory of this process, made on first use and removed at exit
    (a worker inherits its parent's environment, so the variable alone would share the cache)."""
    if not _CACHE:
        _CACHE.append(tempfile.mkdtemp(prefix="edgebench-inductor-"))
        atexit.register(shutil.rmtree, _CACHE[0], True)
    os.environ[_CACHE_ENV] = _CACHE[0]
    return _CACHE[0]


def _dynamo_counts() -> tuple[int, dict[str, int]]:
    """Dynamo's process-wide tallies: graphs compiled, graph breaks by reason."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"]), dict(counters["graph_break"])


class CompiledRunner(TorchRunner):
    """A :class:`TorchRunner` whose forward is the compiled module.  ``model`` stays the eager
    module (the compiled one shares its parameters): what the integrity checks hash."""

    backend = "torch-compile"

    def __init__(self, model: torch.nn.Module, info: Any, cache: str) -> None:
        super().__init__(model, info)
        self.cache = cache
        self.compiled = torch.compile(model, **COMPILE)
        self.calls = self.graphs = 0
        self.graph_breaks: dict[str, int] = {}
        self._shapes: set[tuple] = set()  # input shapes already run: Dynamo compiles on a new one

    def __call__(self, inputs: Any) -> torch.Tensor:
        shapes = tuple(v.shape for v in inputs.values())
        new = shapes not in self._shapes  # only a new shape compiles: the timed path skips the tallies
        if new:
            # Dynamo's tallies are per process and other runners may share it: what changed
            # during this call is this runner's.
            self._shapes.add(shapes)
            graphs, breaks = _dynamo_counts()
        with torch.inference_mode():
            try:
                out = self.compiled(**inputs).logits
            except torch._dynamo.exc.FailOnRecompileLimitHit as exc:
                raise HarnessError(f"torch.compile recompiled this model past Dynamo's limit ({first_line(exc)}); "
                                   "it would have run eagerly from here: measure it on backend torch") from None
        self.calls += 1
        if new:
            now_graphs, now_breaks = _dynamo_counts()
            self.graphs += now_graphs - graphs
            for reason, n in now_breaks.items():
                if n > breaks.get(reason, 0):
                    self.graph_breaks[reason] = self.graph_breaks.get(reason, 0) + n - breaks.get(reason, 0)
        return out

    def session_info(self) -> dict[str, Any]:
        info = {**super().session_info(), "mode": "torch.compile, inference_mode", "compile": dict(COMPILE),
                "inductor_cache": "empty per process", "fail_on_recompile_limit_hit": True}
        if not self.calls:  # compilation is lazy: nothing to count before the first forward
            return {**info, "graphs": "compiled at the first forward"}
        return {**info, "graphs": self.graphs, "graph_breaks": sum(self.graph_breaks.values()),
                "graph_break_reasons": sorted({first_line(Exception(r), 120) for r in self.graph_breaks})[:3]}


class TorchCompile(TorchEager):
    name = "torch-compile"

    def import_runtime(self, artifact_dir: Path) -> None:
        _fresh_inductor_cache()  # before the compiler's import, which may already look at its cache
        super().import_runtime(artifact_dir)
        import torch._inductor.config  # noqa: F401 -- the compiler's import is part of the runtime's

    def load(self, artifact_dir: Path, threads: int, verify: bool = True, fingerprint: bool = False) -> CompiledRunner:
        cache = _fresh_inductor_cache()
        runner = super().load(artifact_dir, threads, verify, fingerprint)
        # Each load is a model of its own: Dynamo's guards on the previous ones would count
        # towards this one's recompile limit (a reload, another variant of the same class).
        torch._dynamo.reset()
        torch._dynamo.config.fail_on_recompile_limit_hit = True
        return CompiledRunner(runner.model, runner.info, cache)
