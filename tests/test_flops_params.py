import copy

import torch
import torch.nn as nn

import compressors
from harness.measure.flops import count_flops, count_macs_fvcore
from harness.measure.params import count_params


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
    # fvcore's tracer skips aten::scaled_dot_product_attention (an "unsupported op")
    # but counts 5 per element for each LayerNorm, which FlopCounterMode does not.
    batch, seq, dim, layers = 2, 16, 32, 2
    attention_flops = 2 * 2 * batch * layers * seq * seq * dim
    layernorm_macs = 5 * (1 + 2 * layers) * batch * seq * dim
    assert macs == (flops - attention_flops) // 2 + layernorm_macs


def test_params_and_nonzeros_survive_quantization(tiny_model):
    params, nonzero = count_params(tiny_model)
    assert params == sum(p.numel() for p in tiny_model.parameters())
    with torch.no_grad():
        tiny_model.classifier.weight.zero_()
    _, nonzero_after = count_params(tiny_model)
    assert nonzero - nonzero_after == tiny_model.classifier.weight.numel()
    for engine in ("torch.ao", "torchao"):  # torchao's Int8Tensor has no count_nonzero of its own
        q = compressors.build(f"int8-dynamic@{engine}", copy.deepcopy(tiny_model))
        q_params, q_nonzero = count_params(q)
        assert q_params == params
        assert q_nonzero <= nonzero_after


def test_attention_matmuls_are_counted_under_sdpa(tiny_model, tiny_inputs):
    """Q·K^T and P·V: 2 matmuls of (S x d_head x S) per head and layer, 2 FLOPs per MAC."""
    seq, dim, layers = 16, 32, 2
    batch = tiny_inputs["input_ids"].shape[0]
    linear = 2 * batch * seq * layers * (4 * dim * dim + 2 * dim * 64)  # q,k,v,o + ffn (dim 32, hidden 64)
    head = 2 * batch * (dim * dim + dim * 2)  # pre_classifier + classifier on the [CLS] row
    attention = 2 * 2 * batch * layers * seq * seq * dim
    assert count_flops(tiny_model, tiny_inputs) == linear + head + attention


def test_linear_sparsity_counts_the_encoder_linears_only(tiny_model):
    from harness.measure.params import linear_sparsity

    assert linear_sparsity(tiny_model) == 0.0
    with torch.no_grad():
        tiny_model.classifier.weight.zero_()  # the head does not count
        assert linear_sparsity(tiny_model) == 0.0
        lin = tiny_model.distilbert.transformer.layer[0].ffn.lin1
        lin.weight.zero_()
    encoder = sum(m.weight.numel() for n, m in tiny_model.named_modules()
                  if isinstance(m, nn.Linear) and n.startswith("distilbert."))
    assert linear_sparsity(tiny_model) == lin.weight.numel() / encoder
    q = compressors.build("int8-dynamic", tiny_model)
    assert linear_sparsity(q) >= linear_sparsity(tiny_model)  # zeros stay zero; INT8 rounds more to zero


def test_int8_rounding_zeros_are_not_counted_as_pruned(tiny_model, tmp_path):
    import copy

    from harness.backends import variants
    from harness.measure.params import zero_split

    pruned = compressors.build("magnitude-global@0.5", copy.deepcopy(tiny_model))
    params, nonzero = count_params(pruned)
    assert zero_split(pruned, None) == (params - nonzero, 0)  # a float model: every zero is a pruned one
    chain = compressors.build("magnitude-global@0.5+int8-dynamic", copy.deepcopy(tiny_model))
    info = variants.save_variant(chain, tmp_path / "v", profile="t", variant="magnitude-global@0.5+int8-dynamic",
                                 source_key="k")
    q_params, q_nonzero = count_params(chain)
    pruned_zeros, rounding = zero_split(chain, info.facts["pruned_linear_zeros"])
    # exactly the pruner's zeros; the extra zeros of the INT8 weights are rounding (|w| under half a step)
    assert q_params == params and pruned_zeros == params - nonzero
    assert rounding == (q_params - q_nonzero) - pruned_zeros > 0
    # a quantized model whose build did not count them: unknown, never guessed
    assert zero_split(chain, None) == (None, None)
    fp_params, fp_nonzero = count_params(tiny_model)  # a random model's zeros: LayerNorm biases at init
    int8 = compressors.build("int8-dynamic", copy.deepcopy(tiny_model))
    dense_zeros, int8_rounding = zero_split(int8, int8.pruned_linear_zeros)
    assert dense_zeros == fp_params - fp_nonzero
    assert int8_rounding == (count_params(int8)[0] - count_params(int8)[1]) - dense_zeros > 0
