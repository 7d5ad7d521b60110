"""GEMM peak measurement and the efficiency arithmetic (tiny sizes: no absolute time asserted)."""
import pytest
import torch

from harness.core.errors import HarnessError
from harness.measure import peak


def test_measure_returns_both_precisions_and_restores_threads(one_thread):
    result = peak.measure(size=128, threads=1, seconds=0.01, min_rounds=3)
    assert result["fp32"].size == 128 and result["fp32"].rounds >= 3 and result["fp32"].threads == 1
    for p in result.values():
        assert p.best >= p.median > 0  # best round can only be faster than the median round
    if hasattr(torch, "_int_mm"):
        assert "int8" in result
    assert torch.get_num_threads() == 1


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
    assert peak.efficiency(None, 15.0, 400.0) == (None, None)
    assert peak.efficiency(3e9, None, 400.0) == (None, None)
