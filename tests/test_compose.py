"""``+`` chains (prune, then quantize) and the save -> load round trip of every
new variant, including the kept attention heads that only compress knows."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

import compressors
from compressors import CompressionError
from compressors.heads import kept_heads_of
from compressors.quantize import linear_counts
from harness.backends import variants
from harness.measure.params import layer_sparsity

CHAINS = ["magnitude-global@0.5+int8", "magnitude-layerwise@0.6+int8", "ffn-l1@0.6+int8",
          "heads-grad@0.5+int8", "heads-attn@0.6+int8", "heads-grad@0.25+ffn-l1@0.5+int8-dynamic"]
NEW = ["magnitude-global@0.5", "magnitude-layerwise@0.5", "ffn-l1", "heads-grad@0.5", "heads-attn@0.75"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", NEW + CHAINS)
def test_save_then_load_round_trip(tmp_path, tiny_model, tiny_inputs, tiny_context, name):
    model = compressors.build(name, tiny_model, context=tiny_context)
    info = variants.save_variant(model, tmp_path, profile="tiny", variant=name, source_key="k")
    loaded, info2 = variants.load_variant(tmp_path)
    assert info2 == info
    with torch.inference_mode():
        assert torch.equal(model(**tiny_inputs).logits, loaded(**tiny_inputs).logits)
    assert layer_sparsity(loaded) == layer_sparsity(model)
    saved = json.loads((tmp_path / "variant.json").read_text())
    stages = saved["config"]["stages"] if "+" in name else [{"config": saved["config"]}]
    heads = [s["config"]["kept_heads"] for s in stages if "kept_heads" in s["config"]]
    if heads:  # head pruning: what compress chose from data is on disk
        assert heads == [[list(kept_heads_of(b.attention)) for b in model.distilbert.transformer.layer]]
        assert sum(map(len, heads[0])) < 8


def test_round_trip_of_a_layer_that_lost_every_head(tmp_path, tiny_model, tiny_inputs):
    name = "heads-grad@0.5+int8"
    model = compressors.build(name, tiny_model, **{"heads-grad.kept_heads": [[], [0, 1, 2, 3]]})
    variants.save_variant(model, tmp_path, profile="tiny", variant=name, source_key="k")
    loaded, info = variants.load_variant(tmp_path)
    assert info.config["stages"][0]["config"]["kept_heads"] == [[], [0, 1, 2, 3]]
    assert info.facts["layers_without_heads"] == 1 and info.facts["quantized_linear_fraction"] == 1.0
    with torch.inference_mode():
        assert torch.equal(model(**tiny_inputs).logits, loaded(**tiny_inputs).logits)


def test_chain_prunes_then_quantizes_and_the_zeros_survive(tiny_model):
    pruned = compressors.build("magnitude-global@0.5", tiny_model)
    chained = compressors.build("magnitude-global@0.5+int8", tiny_model)
    assert linear_counts(chained) == (14, 14)
    before, after = layer_sparsity(pruned), layer_sparsity(chained)
    assert before.keys() == after.keys()
    for k in before:  # INT8 keeps every zero (zero point 0) and may round a few tiny weights to zero
        assert before[k] <= after[k] <= before[k] + 0.02, k
    comp = compressors.get("magnitude-global@0.5+int8")
    assert comp.name == "magnitude-global+int8-dynamic"
    assert compressors.get(comp.name).name == comp.name


def test_chain_options_are_addressed_to_a_stage(tiny_model):
    config = compressors.make_config("magnitude-global@0.5+int8",
                                     **{"magnitude-global.include_classifier": True, "int8.engine": "torchao"})
    assert [n for n, _ in config.stages] == ["magnitude-global", "int8-dynamic"]
    assert config.stages[0][1].include_classifier and config.stages[1][1].engine == "torchao"
    assert compressors.make_config("heads-grad@0.2+int8@torchao").stages[1][1].engine == "torchao"
    again = type(config).from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_name_options_set_config_fields_and_are_part_of_the_cache_key():
    config = compressors.make_config("magnitude-global@0.5:recovery_epochs=2:recovery_lr=3e-5:include_classifier=true")
    assert (config.sparsity, config.recovery_epochs, config.recovery_lr, config.include_classifier) == (0.5, 2, 3e-5, True)
    # keyword options win over the name's; chains take them per stage
    assert compressors.make_config("magnitude-global@0.5:recovery_epochs=2", recovery_epochs=0).recovery_epochs == 0
    chain = compressors.make_config("magnitude-layerwise@0.8:recovery_epochs=1+int8:engine=torchao")
    assert chain.stages[0][1].recovery_epochs == 1 and chain.stages[1][1].engine == "torchao"
    assert compressors.get("magnitude-global@0.5:recovery_epochs=1").name == "magnitude-global"
    assert compressors.get("magnitude-global@0.5:recovery_epochs=1").needs_context(config)
    assert (variants.variant_key("p", "s", "magnitude-global@0.5")
            != variants.variant_key("p", "s", "magnitude-global@0.5:recovery_epochs=1"))


@pytest.mark.parametrize("name, options, match", [
    ("magnitude-global@0.5+int4", {}, r"unknown stage 'int4'.*known stages: .*heads-grad.*int8 \(= int8-dynamic\)"),
    ("int8+magnitude-global@0.5", {}, r"'int8-dynamic' must be the last stage.*magnitude-global"),
    ("fp32+int8", {}, r"'fp32' must be the last stage"),
    ("magnitude-global@0.5+magnitude-global@0.7", {}, r"repeats a stage"),
    ("magnitude-global@0.5+", {}, r"unknown stage ''"),
    ("magnitude-global@1.5+int8", {}, r"sparsity = 1.5 is outside \[0, 1\)"),
    ("magnitude-global@0.5+int8", {"sparsity": 0.3}, r"option 'sparsity' of chain .* must be '<stage>.<field>'"),
    ("magnitude-global@0.5+int8", {"int8.bits": 4}, r"no option\(s\) bits"),
    ("heads-grad@0.2+int8", {}, r"variant 'heads-grad@0.2\+int8' needs training data"),
    ("magnitude-global@0.5:recovery_epochs+int8", {}, r"option 'recovery_epochs' .* must be field=value"),
    ("magnitude-global@0.5:epochs=1", {}, r"no option\(s\) epochs; valid options: .*recovery_epochs"),
    ("magnitude-global@0.5:recovery_epochs=-1", {}, r"recovery_epochs = -1: must be an integer >= 0"),
])
def test_bad_chains_are_one_line_errors(tiny_model, name, options, match):
    with pytest.raises(CompressionError, match=match) as err:
        compressors.build(name, tiny_model, **options)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["magnitude-global@1.0", "heads-grad@0.2", "heads-grad@0.2+int8",
                                  "heads-attn@0.5+int8@tensorrt"])
def test_bad_variants_write_nothing(tmp_path, tiny_model, name):
    with pytest.raises(CompressionError):
        variants.get_or_build("t", name, "src", lambda: tiny_model, root=tmp_path)
    assert not any(tmp_path.iterdir())


def test_a_model_without_distilbert_modules_is_refused_inside_a_chain():
    with pytest.raises(CompressionError, match="needs a DistilBERT model"):
        compressors.build("magnitude-global@0.5+int8", nn.Sequential(nn.Linear(4, 4)))


def test_cache_keys_tell_chains_apart():
    keys = {variants.variant_key("p", "s", v) for v in
            ["magnitude-global@0.5", "magnitude-global@0.5+int8", "magnitude-global@0.6+int8",
             "heads-grad@0.2+int8"]}
    assert len(keys) == 4
