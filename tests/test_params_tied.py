"""Parameter counts of a model with tied weights."""
import torch
from transformers import DistilBertConfig, DistilBertForMaskedLM

from harness.measure.params import count_params


def test_tied_weights_are_counted_once():
    torch.manual_seed(0)
    model = DistilBertForMaskedLM(DistilBertConfig(vocab_size=100, dim=16, n_layers=1, n_heads=2, hidden_dim=32,
                                                   max_position_embeddings=32))
    params, nonzero = count_params(model)
    assert params == sum(p.numel() for p in model.parameters())  # parameters() yields a tied tensor once
    assert nonzero <= params
