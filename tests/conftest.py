"""Shared fixtures for the unit tests: tiny randomly initialised models."""
from __future__ import annotations

import pytest
import torch


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
