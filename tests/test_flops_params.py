import torch
import torch.nn as nn

import compressors
from harness.flops import count_flops, count_macs_fvcore
from harness.params import count_params


class TwoLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 32)
        self.b = nn.Linear(32, 4)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def test_linear_flops_are_two_per_mac():
    x = {"x": torch.randn(3, 16)}
    assert count_flops(TwoLinear().eval(), x) == 2 * 3 * (16 * 32 + 32 * 4)


def test_int8_linear_is_counted_like_fp32():
    model = TwoLinear().eval()
    q = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    x = {"x": torch.randn(3, 16)}
    assert count_flops(q, x) == count_flops(model, x) > 0


def test_fvcore_macs_cross_check_on_a_transformer(tiny_model, tiny_inputs):
    flops = count_flops(tiny_model, tiny_inputs)
    macs = count_macs_fvcore(tiny_model, tiny_inputs)
    assert macs is not None
    # fvcore ignores softmax/layernorm and counts attention matmuls slightly
    # differently; the dominant Linear MACs must agree within 5%.
    assert abs(flops / (2 * macs) - 1) < 0.05


def test_params_and_nonzeros_survive_quantization(tiny_model):
    params, nonzero = count_params(tiny_model)
    assert params == sum(p.numel() for p in tiny_model.parameters())
    with torch.no_grad():
        tiny_model.classifier.weight.zero_()
    _, nonzero_after = count_params(tiny_model)
    assert nonzero - nonzero_after == tiny_model.classifier.weight.numel()
    q = compressors.build("int8-dynamic", tiny_model)
    q_params, q_nonzero = count_params(q)
    assert q_params == params
    assert q_nonzero <= nonzero_after
