import pytest
import torch

import compressors
from harness.backends import variants
from harness.core.errors import HarnessError


# edgemin-* load a real 3-layer student; tests/test_pipelines.py checks their round trip with a tiny one.
# structured prunes ConvNeXt channels; tests/test_vision.py checks its round trip on a tiny ConvNeXt.
# int8-static is carried out by a deployment runtime (tests/test_openvino.py), never on a torch module.
@pytest.mark.parametrize("name", [n for n in compressors.known_variants()
                                  if not n.startswith("edgemin-") and n != "structured"
                                  and not compressors.get(n).runtime_stage])
def test_save_then_load_gives_identical_logits(tmp_path, tiny_model, tiny_inputs, tiny_context, name):
    model = compressors.build(name, tiny_model, context=tiny_context)
    info = variants.save_variant(model, tmp_path, profile="tiny", variant=name, source_key="k")
    loaded, info2 = variants.load_variant(tmp_path)
    assert info2 == info
    assert info.size_bytes == (tmp_path / info.weights_file).stat().st_size > 0
    with torch.inference_mode():
        assert torch.equal(model(**tiny_inputs).logits, loaded(**tiny_inputs).logits)


def test_int8_is_saved_as_a_weights_only_pickle_and_is_smaller(tmp_path, tiny_model):
    fp = variants.save_variant(tiny_model, tmp_path / "a", profile="t", variant="fp32", source_key="k")
    q = variants.save_variant(compressors.build("int8-dynamic", tiny_model), tmp_path / "b",
                              profile="t", variant="int8-dynamic", source_key="k")
    assert fp.weights_file == "model.safetensors" and q.weights_file == "model.pt"
    assert q.facts["quantized_linear_fraction"] == 1.0
    assert q.size_bytes < fp.size_bytes


def test_corrupt_weights_are_detected(tmp_path, tiny_model):
    variants.save_variant(tiny_model, tmp_path, profile="t", variant="fp32", source_key="k")
    weights = tmp_path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(HarnessError, match="corrupt"):
        variants.load_variant(tmp_path)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(HarnessError, match="not a saved variant"):
        variants.load_variant(tmp_path / "nope")


def test_cache_builds_once_and_rebuilds_a_corrupt_entry(tmp_path, tiny_model):
    calls = []

    def load():
        calls.append(1)
        return tiny_model

    logs = []
    d1 = variants.get_or_build("t", "int8-dynamic", "src", load, root=tmp_path, log=logs.append)
    d2 = variants.get_or_build("t", "int8-dynamic", "src", load, root=tmp_path, log=logs.append)
    assert d1 == d2 and len(calls) == 1
    (d1 / "model.pt").write_bytes(b"garbage")
    d3 = variants.get_or_build("t", "int8-dynamic", "src", load, root=tmp_path, log=logs.append)
    assert d3 == d1 and len(calls) == 2
    assert any("rebuilding" in line for line in logs)
    variants.load_variant(d3)  # valid again
    assert not list(tmp_path.rglob("*.tmp"))


def test_cache_key_depends_on_source_and_variant():
    a = variants.variant_key("p", "src1", "fp32")
    assert a != variants.variant_key("p", "src2", "fp32")
    assert a != variants.variant_key("p", "src1", "int8-dynamic")
    assert variants.variant_key("p", "src1", "int8-dynamic") != variants.variant_key("p", "src1", "int8-dynamic@torchao")


def test_a_variant_cache_key_follows_the_code_that_builds_it(monkeypatch):
    """Issue 21: a fix to a compressor (or to the modules it imports: the training loop, the
    architecture adapters) changes its cache key, with no version number to remember."""
    from compressors.base import code_sources

    found = dict(code_sources("compressors.prune"))
    assert {"compressors.prune", "compressors._train", "compressors.base", "harness.core.train"} <= set(found)
    assert "compressors.edgemin" not in found and "harness.models.finetune" not in found
    staged = dict(code_sources("compressors.edgemin"))
    assert {"compressors._stages", "compressors.heads", "compressors.distill"} <= set(staged)

    keys = {v: variants.variant_key("p", "src", v) for v in ("magnitude-global@0.5", "magnitude-global@0.5+int8",
                                                               "int8-dynamic")}
    pruner = type(compressors.get("magnitude-global"))
    monkeypatch.setattr(pruner, "code_version", lambda self: "edited")
    assert variants.variant_key("p", "src", "magnitude-global@0.5") != keys["magnitude-global@0.5"]
    assert variants.variant_key("p", "src", "magnitude-global@0.5+int8") != keys["magnitude-global@0.5+int8"]
    assert variants.variant_key("p", "src", "int8-dynamic") == keys["int8-dynamic"]


def test_a_saved_variant_records_its_code_version(tmp_path, tiny_model):
    info = variants.save_variant(tiny_model, tmp_path / "v", profile="tiny", variant="fp32", source_key="k")
    assert info.code_version == compressors.get("fp32").code_version() == info.facts["compressor_code_version"]
    assert len(info.code_version) == 12 and variants.read_info(tmp_path / "v").code_version == info.code_version
