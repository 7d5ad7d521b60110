"""Benchmark harness for compressed transformer models on CPUs.

``harness.benchmark(model_dir, data, variants)`` runs the suite on your own model and data from
Python (:func:`harness.cli.benchmark`); ``python -m harness`` / ``edgebench`` is the command line.

Importing the package forbids model-hub access: every weight and data file
comes from registry packages fetched by ``python -m harness setup``.  It also
drops the two known log records that importing torchao prints on a CPU-only
machine (:mod:`harness.core.quiet`): transformers imports torchao on the first
model class a process loads.
"""
import os

from harness.core.quiet import drop_known_import_noise

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

drop_known_import_noise()


def __getattr__(name: str):
    # Lazy: importing the package must stay cheap (every timing worker imports it).
    if name in ("benchmark", "BenchmarkResult"):
        from harness import cli

        return getattr(cli, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
