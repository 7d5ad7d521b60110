"""GEMM ceiling measurement and the efficiency arithmetic (tiny sizes: no absolute time asserted)."""
import pytest
import torch

from harness.core.errors import HarnessError
from harness.measure import peak


def test_each_ceiling_is_measured_with_the_kernel_its_variants_call_and_threads_are_restored(one_thread):
    result = peak.measure(size=128, threads=1, seconds=0.01, min_rounds=3)
    assert set(result) == set(peak.CEILINGS)  # this build has a quantized engine and onnxruntime
    assert result["fp32"].size == 128 and result["fp32"].rounds >= 3 and result["fp32"].threads == 1
    assert torch.backends.quantized.engine in result["int8"].kernel and "MatMulInteger" in result["int8_ort"].kernel
    assert set(peak.measure(size=64, threads=1, seconds=0.0, min_rounds=1, kernels=["fp32"])) == {"fp32"}
    assert torch.get_num_threads() == 1


def test_the_int8_ceiling_is_not_below_what_a_dynamic_int8_linear_achieves(one_thread):
    """An INT8 variant's Linears call this ceiling's kernel, so a quantized Linear of the ceiling's
    own shape cannot run faster than the ceiling's best round (modulo noise).  A ceiling taken from
    another kernel -- torch._int_mm, a reference path on AVX2 machines -- fails this."""
    import statistics
    import time

    n = 256
    ceiling = peak.measure(size=n, threads=1, seconds=0.2, min_rounds=5, kernels=["int8"])["int8"].best
    linear = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(n, n, bias=False)),
                                                    {torch.nn.Linear}, dtype=torch.qint8)
    x = torch.randn(n, n)
    times = []
    with torch.inference_mode():
        linear(x)
        for _ in range(30):
            t0 = time.perf_counter()
            linear(x)
            times.append(time.perf_counter() - t0)
    achieved = 2 * n ** 3 / statistics.median(times) / 1e9
    assert achieved <= 1.25 * ceiling, (achieved, ceiling)


def test_unknown_ceiling_kernel_is_one_clear_error():
    with pytest.raises(HarnessError, match="unknown ceiling kernel.*known: fp32, int8, int8_ort"):
        peak.measure(size=64, seconds=0.0, kernels=["int8_amx"])


@pytest.mark.parametrize("precision, backend, ceiling", [
    ("fp32", "torch", "fp32"), ("fp32", "onnxruntime", "fp32"), ("int8", "torch", "int8"),
    ("int8", "onnxruntime", "int8_ort")])
def test_ceiling_of_follows_precision_and_backend(precision, backend, ceiling):
    assert peak.ceiling_of(precision, backend) == ceiling


@pytest.mark.parametrize("kwargs, message", [({"size": 16}, "size must be >= 64"),
                                             ({"size": 128, "threads": -1}, "threads must be >= 1")])
def test_bad_arguments(kwargs, message):
    with pytest.raises(HarnessError, match=message):
        peak.measure(seconds=0.01, **kwargs)


@pytest.mark.parametrize("variant, engine, expected", [
    ("fp32", None, "fp32"), ("int8-dynamic", "torch.ao", "int8"), ("int8-dynamic-pc", None, "int8"),
    ("magnitude-global@0.5", None, "fp32"), ("heads-grad@0.2+int8", None, "int8"),
    ("magnitude-global@0.5", "torch.ao", "int8"), ("magnitude-global@0.5:recovery_epochs=1", None, "fp32")])
def test_precision(variant, engine, expected):
    from harness.results.rows import variant_config

    config = variant_config(variant, {"quant_engine": engine})
    assert config.precision == peak.precision(config.methods, engine) == expected


def test_efficiency():
    assert peak.efficiency(3e9, 15.0, 400.0) == pytest.approx((200.0, 0.5))  # 3 GFLOP in 15 ms
    assert peak.efficiency(3e9, 15.0, None) == (pytest.approx(200.0), None)
    assert peak.efficiency(3e9, 15.0, 150.0) == (pytest.approx(200.0), None)  # above its ceiling: no fraction
    assert peak.efficiency(None, 15.0, 400.0) == (None, None)
    assert peak.efficiency(3e9, None, 400.0) == (None, None)
