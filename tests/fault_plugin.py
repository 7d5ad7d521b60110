"""A pytest plugin for the fault-injection tests (tests/test_faults.py): deliberately broken variants.

* ``crash-worker`` -- loads fine in the suite's process, calls ``os.abort()``
  (SIGABRT, as a segfaulting kernel would die) in a fresh measurement process;
* ``oom-worker`` -- SIGKILLs itself in the fresh process, as the kernel's
  out-of-memory killer does;
* ``fail-build`` -- its compression raises;
* ``interrupt-timing`` -- sends the suite SIGINT from inside a timing loop (from its
  timing worker to the waiting suite process, as a Ctrl-C during a campaign).

With ``EDGEBENCH_TEST_SIGTERM_DURING_SAVE=<variant>`` the process sends itself
SIGTERM after that variant's files are written but before they are published
into the cache: the worst moment for an interrupt.
"""
import dataclasses
import os
import signal
import sys
import time

from compressors.base import Compressor, CompressorConfig, register


def _in_fresh_worker() -> bool:
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", None) == "harness.measure.worker"


@dataclasses.dataclass(frozen=True)
class FaultConfig(CompressorConfig):
    pass


@register
class CrashWorker(Compressor):
    name = "crash-worker"
    config_cls = FaultConfig

    def compress(self, model, config):
        return model

    def restore(self, skeleton, config):
        if _in_fresh_worker():
            os.abort()
        return skeleton


@register
class OomWorker(Compressor):
    name = "oom-worker"
    config_cls = FaultConfig

    def compress(self, model, config):
        return model

    def restore(self, skeleton, config):
        if _in_fresh_worker():
            os.kill(os.getpid(), signal.SIGKILL)
        return skeleton


@register
class FailBuild(Compressor):
    name = "fail-build"
    config_cls = FaultConfig

    def compress(self, model, config):
        raise RuntimeError("deliberate build failure (tests/fault_plugin.py)")


def _interrupt_on_call(model, n=5):
    forward, calls = model.forward, []
    timing_worker = _in_fresh_worker() and sys.argv[1:2] == ["time"]

    def counted(*args, **kwargs):
        calls.append(1)
        if len(calls) == n and timing_worker:
            os.kill(os.getppid(), signal.SIGINT)  # Ctrl-C of the suite in the middle of a timing campaign
        return forward(*args, **kwargs)

    model.forward = counted
    return model


@register
class InterruptTiming(Compressor):
    """The suite's process gets SIGINT on this variant's 5th forward in its timing worker."""

    name = "interrupt-timing"
    config_cls = FaultConfig

    def compress(self, model, config):
        return model

    def restore(self, skeleton, config):
        return _interrupt_on_call(skeleton)


_TARGET = os.environ.get("EDGEBENCH_TEST_SIGTERM_DURING_SAVE")
if _TARGET:
    from harness.backends import variants

    _save = variants.save_variant

    def _save_then_sigterm(model, out_dir, **kwargs):
        info = _save(model, out_dir, **kwargs)
        if kwargs.get("variant") == _TARGET:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here; reaching the end means SIGTERM was ignored
        return info

    variants.save_variant = _save_then_sigterm
