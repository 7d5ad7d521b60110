"""Vision path (issue 9): Fashion-MNIST IDX loader, image task, ConvNeXt compressors,
INT8 FLOP share and the study-004 table -- on a tiny ConvNeXt and synthetic IDX files."""
import dataclasses
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import compressors
from compressors import CompressionError
from harness.backends import variants
from harness.core.errors import HarnessError
from harness.data import images as vision_data
from harness.measure import flops
from harness.measure.params import count_params
from harness.models import tasks, vision_train
from harness.models.profiles import get_profile
from harness.report import vision as report_vision
from harness.results.rows import vision_rows


def _write_idx(path: Path, magic: int, array: np.ndarray) -> None:
    header = struct.pack(f">{2 + array.ndim - 1}I", magic, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fmnist_dir(tmp_path, monkeypatch):
    """A synthetic Fashion-MNIST: 200 train / 60 test images whose class is
    readable from the brightness of a class-specific row (so a model can learn it)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 200), ("t10k", 60)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, size=(n, 28, 28))
        images[np.arange(n), 2 + 2 * labels, :] = 255
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", vision_data.IMAGE_MAGIC, images)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", vision_data.LABEL_MAGIC, labels)
    monkeypatch.setenv("EDGEBENCH_FMNIST_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def tiny():
    return get_profile("tiny-convnext").load_fp32()


def _pixels(n=2):
    return {"pixel_values": torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(1))}


# ---------------------------------------------------------------- data


def test_idx_loader_reads_shapes_labels_and_normalises(fmnist_dir):
    train = vision_data.fashion_mnist("train")
    assert train.images.shape == (200, 1, 28, 28) and train.images.dtype == torch.float32
    assert train.labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    raw_max = (255 / 255 - vision_data.MEAN) / vision_data.STD
    assert float(train.images.max()) == pytest.approx(raw_max, rel=1e-5)


def test_missing_data_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_FMNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(HarnessError, match="apt-get install dataset-fashion-mnist"):
        vision_data.fashion_mnist("test")
    with pytest.raises(HarnessError, match="apt-get install dataset-fashion-mnist"):
        vision_data.ensure_installed()  # not the Debian folder: never runs apt-get
    with pytest.raises(HarnessError, match="apt-get install dataset-fashion-mnist"):
        tasks.ImageTask().check_data()


def test_corrupt_idx_header_is_refused(tmp_path, monkeypatch, fmnist_dir):
    _write_idx(fmnist_dir / "t10k-images-idx3-ubyte.gz", 1234, np.zeros((60, 28, 28)))
    with pytest.raises(HarnessError, match="IDX header"):
        vision_data.fashion_mnist("test")


def test_edge_samples_are_two_per_class_in_file_order(fmnist_dir):
    edge = vision_data.edge_samples(20)
    assert edge.labels.tolist() == [c for c in range(10) for _ in range(2)]
    with pytest.raises(HarnessError, match="multiple of 10"):
        vision_data.edge_samples(15)


# ---------------------------------------------------------------- task


def test_image_task_inputs_resize_and_repeat_channels(fmnist_dir, tiny):
    task = tasks.ImageTask()
    x = task.inputs(tiny, 3, 56)["pixel_values"]
    assert x.shape == (3, 1, 56, 56)
    rgb = tasks.ImageTask.resize(torch.zeros(2, 1, 28, 28), 32, 3)
    assert rgb.shape == (2, 3, 32, 32)


def test_too_small_image_names_the_minimum(fmnist_dir, tiny):
    # tiny-convnext: patch 2, 2 stages -> 2 * 2 = 4 px minimum
    with pytest.raises(HarnessError, match=r"needs at least 4×4"):
        tasks.ImageTask().inputs(tiny, 1, 3)
    small = get_profile("convnext-small")
    config = type(tiny.config)(num_channels=3, patch_size=4, hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 27, 3])
    assert tasks.min_image_size(config) == 32
    with pytest.raises(HarnessError, match=r"needs at least 32×32"):
        tasks.check_image_input(config, torch.zeros(1, 3, 16, 16))
    assert small.static_length == 224


def test_wrong_channel_count_is_one_line(tiny):
    with pytest.raises(HarnessError, match="has 3 channel.*takes 1"):
        tasks.check_image_input(tiny.config, torch.zeros(1, 3, 28, 28))


def test_image_task_quality_path(fmnist_dir, tiny):
    task = tasks.ImageTask()
    logits = task.logits(tiny, "fmnist-edge20")
    assert logits.shape == (20, 10) and task.labels("fmnist-edge20").shape == (20,)
    assert tasks.eval_suffix("fmnist-test") == "" and tasks.eval_suffix("imdb-test") == ""
    assert tasks.eval_suffix("fmnist-edge20") == "_edge20" and tasks.eval_suffix("mr") == "_mr"


# ---------------------------------------------------------------- compressors


@pytest.mark.parametrize("variant", ["l1-unstructured@0.5", "random-unstructured@0.3"])
def test_unstructured_hits_the_target_per_layer(tiny, variant):
    target = float(variant.split("@")[1])
    model = compressors.build(variant, tiny)
    for name, mod in model.named_modules():
        if type(mod) in (torch.nn.Linear, torch.nn.Conv2d):
            zeros = float((mod.weight == 0).float().mean())
            if name.startswith("classifier"):
                assert zeros == 0.0
            else:
                assert zeros == pytest.approx(target, abs=1 / mod.weight.numel() + 1e-6), name


def test_random_unstructured_is_seeded(tiny):
    a = compressors.build("random-unstructured@0.5", tiny)
    b = compressors.build("random-unstructured@0.5", tiny)
    c = compressors.build("random-unstructured@0.5", tiny, seed=7)
    wa, wb, wc = (m.convnext.encoder.stages[1].layers[0].pwconv1.weight for m in (a, b, c))
    assert torch.equal(wa == 0, wb == 0) and not torch.equal(wa == 0, wc == 0)


@pytest.mark.parametrize("variant", ["structured@0.5", "structured@0.5+int8"])
def test_structured_removes_channels_and_round_trips(tmp_path, tiny, variant):
    model = compressors.build(variant, tiny)
    params, _ = count_params(model)
    assert params < count_params(tiny)[0] * 0.5
    assert model.config.hidden_sizes == [4, 8]  # widths 8, 16 at ratio 0.5
    x = _pixels()
    assert flops.count_flops(model, x) < flops.count_flops(tiny, x) * 0.5
    info = variants.save_variant(model, tmp_path, profile="tiny-convnext", variant=variant, source_key="k")
    assert info.facts["structured_pruner"].startswith("torch-pruning")
    loaded, _ = variants.load_variant(tmp_path)
    assert torch.allclose(loaded(**x).logits, model(**x).logits, atol=1e-6)


def test_structured_ratio_that_empties_a_stage(tiny):
    # 8 channels keep int(8 * 0.1) = 0 at 0.9
    with pytest.raises(CompressionError, match=r"would empty stage 0 .*at most 0\.875"):
        compressors.build("structured@0.9", tiny)
    with pytest.raises(CompressionError, match="empty every stage"):
        compressors.make_config("structured@1.0")


def test_structured_refuses_a_text_model():
    bert = get_profile("tiny-random").load_fp32()
    with pytest.raises(CompressionError, match="prunes ConvNeXt channels"):
        compressors.build("structured@0.5", bert)


def test_structured_recovery_uses_the_context(fmnist_dir, tiny):
    ctx = tasks.ImageTask(train_batch=32).training_context()
    one_shot = compressors.build("structured@0.5", tiny)
    recovered = compressors.build("structured@0.5", tiny, context=ctx, recovery_steps=3)
    assert compressors.get("structured").describe(recovered, compressors.make_config("structured@0.5"))[
        "pruning_recovery_steps"] == 3
    w1 = one_shot.classifier.weight
    w2 = recovered.classifier.weight
    assert w1.shape == w2.shape and not torch.equal(w1, w2)


def test_int8_flops_fraction_is_the_linear_share(tiny):
    from torch.utils.flop_counter import FlopCounterMode

    x = _pixels(1)
    assert flops.int8_flops_fraction(tiny, x) == 0.0
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        tiny(**x)
    by_op = counter.get_flop_counts()["Global"]
    conv = by_op[torch.ops.aten.convolution]
    frac = flops.int8_flops_fraction(compressors.build("int8-dynamic", tiny), x)
    # every Linear goes INT8, every convolution stays FP32
    assert 0.0 < frac < 1.0
    assert frac == pytest.approx(1 - conv / sum(by_op.values()), rel=1e-9)


# ---------------------------------------------------------------- training and report


def test_vision_recipe_hash_and_tiny_training(fmnist_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "cache"))
    recipe = vision_train.VisionRecipe(depths=(1, 1), hidden_sizes=(8, 16), epochs=5, batch_size=40, lr=1e-2)
    assert vision_train.recipe_hash(recipe) != vision_train.recipe_hash(dataclasses.replace(recipe, seed=1))
    folder = vision_train.baseline_checkpoint(recipe, progress=False)
    model = vision_train.load_checkpoint(folder)
    import json

    meta = json.loads((folder / "meta.json").read_text())
    assert meta["steps"] == 25 and meta["train_loss_last_10pct"] < meta["train_loss_first"]  # it learned
    assert meta["test_accuracy"] == pytest.approx(vision_train.accuracy(model, vision_data.fashion_mnist("test")))
    assert vision_train.baseline_checkpoint(recipe, progress=False) == folder  # cached, not retrained
    with pytest.raises(ValueError, match="one entry per stage"):
        vision_train.VisionRecipe(depths=(1,), hidden_sizes=(8, 16))


def _rec(variant, metric, **kw):
    return {"profile": "convnext-fmnist", "variant": variant, "metric": metric, **kw}


def test_study_004_table_reductions_and_flag():
    results = [
        _rec("fp32", "static", size_mb=4.0, params=1000, nonzero_params=1000, flops=2000),
        _rec("fp32", "latency", seq_len=28, p50_ms=2.0),
        _rec("int8-dynamic", "static", size_mb=1.5, params=1000, nonzero_params=990, flops=2000,
             int8_flops_fraction=0.6),
        _rec("int8-dynamic", "latency", seq_len=28, p50_ms=2.0),
        _rec("structured@0.5+int8", "static", size_mb=0.4, params=250, nonzero_params=240, flops=500,
             structured_pruner="torch-pruning"),
        _rec("structured@0.5+int8", "latency", seq_len=28, p50_ms=1.0),
        _rec("structured@0.5+int8", "quality", eval_set="fmnist-test", accuracy=0.88, accuracy_ci95=[0.87, 0.89]),
    ]
    rows = {r["variant"]: r for r in report_vision.with_reductions(vision_rows(results))}
    s = rows["structured@0.5+int8"]
    assert s["size_reduction"] == pytest.approx(0.9) and s["params_reduction"] == pytest.approx(0.75)
    assert s["macs"] == 250 and s["macs_reduction"] == pytest.approx(0.75) and s["p50_ratio"] == 0.5
    assert rows["int8-dynamic"]["smaller_not_faster"] and not s["smaller_not_faster"]
    text = "\n".join(report_vision.render_section({"vision": list(rows.values())}))
    assert "90.0% vs 89.7%" in text and "smaller-not-faster" in text and "88.00%" in text
    assert report_vision.render_section({"vision": []}) == []


def test_suite_runs_an_image_profile(fmnist_dir, tmp_path, suite_log):
    """The benchmark suite's static and latency paths on tiny-convnext: the length
    axis is image size (ids say img28), FLOPs and INT8 share are recorded."""
    import json
    import os
    import subprocess
    import sys

    from harness.core.paths import ROOT

    out = tmp_path / "run.json"
    cmd = [sys.executable, "-m", "pytest", "suites/test_bench.py", "-q", "-p", "no:cacheprovider",
           "--profiles", "tiny-convnext", "--variants", "fp32,structured@0.5+int8", "-k", "static or latency",
           "--bench-seconds", "0.05", "--min-rounds", "3", "--blocks", "3", "--block-seconds", "0.05",
           "--timing-cap-s", "1", "--processes", "1", "--threads", "1", f"--benchmark-json={out}"]
    env = {**os.environ, "EDGEBENCH_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, suite_log(proc)
    bench = json.loads(out.read_text())["benchmarks"]
    assert {b["name"] for b in bench if b["extra_info"]["metric"] == "latency"} == {
        "test_latency[tiny-convnext-fp32-img28]", "test_latency[tiny-convnext-structured@0.5+int8-img28]"}
    static = {b["extra_info"]["variant"]: b["extra_info"] for b in bench if b["extra_info"]["metric"] == "static"}
    assert static["fp32"]["length_axis"] == "image_size" and static["fp32"]["flops_seq_len"] == 28
    assert static["structured@0.5+int8"]["flops"] < static["fp32"]["flops"] / 2
    assert 0 < static["structured@0.5+int8"]["int8_flops_fraction"] < 1
