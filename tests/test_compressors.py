import dataclasses

import pytest
import torch

import compressors
from compressors.base import CompressionError
from compressors.quantize import ENGINES, linear_counts


def test_registry_lists_known_variants_on_unknown_name(tiny_model):
    with pytest.raises(CompressionError) as err:
        compressors.build("int4-magic", tiny_model)
    assert "fp32" in str(err.value) and "int8-dynamic" in str(err.value)


def test_unknown_option_names_the_valid_ones(tiny_model):
    with pytest.raises(CompressionError, match="valid options: engine, include_classifier"):
        compressors.build("int8-dynamic", tiny_model, bits=4)


def test_bad_engine_is_a_clear_error(tiny_model):
    with pytest.raises(CompressionError, match="unknown int8 engine"):
        compressors.build("int8-dynamic@tensorrt", tiny_model)


def test_build_does_not_modify_the_baseline(tiny_model):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    compressors.build("int8-dynamic", tiny_model)
    after = tiny_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert linear_counts(tiny_model) == (0, 14)


@pytest.mark.parametrize("engine", ENGINES)
def test_int8_quantizes_every_linear_and_stays_close(tiny_model, tiny_inputs, engine):
    q = compressors.build("int8-dynamic", tiny_model, engine=engine)
    assert linear_counts(q) == (14, 14)
    with torch.inference_mode():
        ref = tiny_model(**tiny_inputs).logits
        out = q(**tiny_inputs).logits
    assert not torch.equal(ref, out)  # it really changed the arithmetic
    assert (ref - out).abs().max() < 0.05


def test_int8_can_keep_the_head_in_fp32(tiny_model):
    q = compressors.build("int8-dynamic", tiny_model, include_classifier=False)
    assert linear_counts(q) == (12, 14)
    assert type(q.classifier) is torch.nn.Linear


@pytest.mark.parametrize("name", compressors.known_variants())
def test_every_config_round_trips_through_a_dict(name):
    config = compressors.make_config(name)
    again = type(config).from_dict(config.to_dict())
    assert again == config
    assert dataclasses.is_dataclass(config)


_TORCHAO_PROBE = """
import sys
import torch
import compressors, harness.cli
assert "torchao" not in sys.modules, "torchao imported without its engine being selected"
model = compressors.build("int8-dynamic@torchao", torch.nn.Sequential(torch.nn.Linear(16, 16)))
assert "torchao" in sys.modules
print(model(torch.randn(2, 16)).shape[1])
"""


def test_torchao_is_imported_only_for_its_engine_and_quietly():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-W", "default", "-c", _TORCHAO_PROBE], cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "16"
    # torchao's CUDA-kernel load failures and torch's pytree deprecation are dropped at the import site.
    assert "Failed to load" not in proc.stderr and "Enum subclass" not in proc.stderr, proc.stderr


_MODEL_PROBE = """
import sys
import harness
from transformers import DistilBertConfig, DistilBertForSequenceClassification
DistilBertForSequenceClassification(DistilBertConfig(n_layers=1, dim=32, hidden_dim=64, n_heads=2))
print("torchao" in sys.modules)
"""


def test_transformers_importing_torchao_prints_no_kernel_noise():
    # transformers.quantizers imports torchao on the first model class a process builds (the fine-tune,
    # every worker): its known CPU-only log records are dropped there too, nothing else.
    import subprocess
    import sys
    from pathlib import Path

    proc = subprocess.run([sys.executable, "-c", _MODEL_PROBE], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"  # the probe did reach torchao's import
    assert "Failed to load" not in proc.stderr and "Enum subclass" not in proc.stderr, proc.stderr
