"""Shared fixtures for the unit tests: tiny randomly initialised models."""
from __future__ import annotations

import pytest
import torch


def pytest_configure(config):
    """Suites run by the unit tests publish nowhere (inherited by their subprocesses), whatever the
    environment names; the store's own tests (tests/test_store.py) set their store explicitly."""
    import os

    os.environ["EDGEBENCH_RESULTS_URI"] = "off"  # never a team store named in the environment


@pytest.fixture(autouse=True)
def _private_stage_cache(tmp_path, monkeypatch):
    """Pipeline stages trained by a unit test never land in the shared cache."""
    monkeypatch.setattr("compressors._stages.stage_root", lambda: tmp_path / "stages")


@pytest.fixture
def one_thread():
    """Tiny models run ~100x slower with 2 threads when other work shares the 2 cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_model():
    """A 2-layer DistilBERT classifier (dim 32, vocab 30522), seed 0, eval mode."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    torch.manual_seed(0)
    cfg = DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=4, hidden_dim=64, num_labels=2)
    return DistilBertForSequenceClassification(cfg).eval()


@pytest.fixture
def tiny_inputs():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 5000, (2, 16), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


@pytest.fixture
def tiny_context():
    """Training data for data-dependent variants: 4 batches of 4 x 12 random tokens
    (the first row of each padded after 9 tokens), labels 0, 1, 0, 1."""
    from compressors import CompressionContext

    def batches():
        g = torch.Generator().manual_seed(1)
        for _ in range(4):
            ids = torch.randint(1000, 5000, (4, 12), generator=g)
            mask = torch.ones_like(ids)
            mask[0, 9:] = 0
            yield ids, mask, torch.tensor([0, 1, 0, 1])

    return CompressionContext(batches, seed=0)


@pytest.fixture
def suite_log():
    """``log(proc)``: what to print when a suite run in a subprocess fails.  The tail of its stdout is
    pytest-benchmark's tables, so the failures section and the short summary come first."""
    import re

    def log(proc) -> str:
        out = proc.stdout
        failures = re.search(r"^=+ (FAILURES|ERRORS) =+$.*?(?=^=+ (warnings summary|short test summary))", out,
                             re.M | re.S)
        summary = [line for line in out.splitlines() if line.startswith(("FAILED", "ERROR"))]
        return "\n".join([failures.group(0)[-6000:] if failures else "", *summary, out[-1500:],
                          proc.stderr[-2000:]])

    return log
