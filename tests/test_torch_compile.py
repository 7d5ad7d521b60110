"""The torch-compile backend: the saved variant through torch.compile (Inductor), compiled cold in
each process, no silent fallback to eager, timed in the suite's campaigns beside torch eager."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from harness import backends
from harness.backends import variants
from harness.core.errors import HarnessError


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    torch.manual_seed(0)
    model = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=4,
                                                                 hidden_dim=64)).eval()
    root = tmp_path_factory.mktemp("cache")
    return variants.get_or_build("tiny", "fp32", "k", lambda: model, root=root / "variants", log=lambda _: None)


def test_the_compiled_runner_gives_eager_logits_and_records_how_it_was_compiled(saved, one_thread):
    from harness.data.inputs import text_batch

    adapter = backends.get("torch-compile")
    assert adapter.prepare("tiny", "fp32", lambda v: saved) == saved  # the saved variant is the artifact
    runner = adapter.load(saved, threads=1)
    batch = text_batch(2, 24)
    with torch.inference_mode():
        expected = runner.model(**batch).logits
    assert runner.session_info()["graphs"] == "compiled at the first forward"
    got = runner(batch)
    assert runner.backend == "torch-compile" and torch.allclose(got, expected, atol=1e-5)
    info = runner.session_info()
    assert info["compile"]["backend"] == "inductor" and info["graphs"] >= 1
    runner(batch)
    assert runner.session_info()["graphs"] == info["graphs"]  # the same shape: nothing recompiled
    assert info["fail_on_recompile_limit_hit"] is True and torch._dynamo.config.fail_on_recompile_limit_hit
    # every compile of this process writes into its own, initially empty, inductor cache
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == runner.cache and "edgebench-inductor-" in runner.cache
    again = adapter.load(saved, threads=1)  # a reload starts Dynamo afresh: no guards of the first count
    assert again.cache == runner.cache and torch.allclose(again(batch), expected, atol=1e-5)


def test_hitting_the_recompile_limit_is_an_error_not_eager_timing(saved, one_thread, monkeypatch):
    from harness.data.inputs import text_batch

    runner = backends.get("torch-compile").load(saved, threads=1)
    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 1)
    monkeypatch.setattr(torch._dynamo.config, "automatic_dynamic_shapes", False)  # each length a new graph
    runner(text_batch(1, 16))
    with pytest.raises(HarnessError, match="recompiled this model past Dynamo's limit.*measure it on backend torch"):
        runner(text_batch(1, 20))


def test_a_fresh_worker_compiles_in_its_first_forward_with_an_empty_cache(saved, tmp_path):
    from harness.data.inputs import text_batch

    inputs = tmp_path / "inputs.pt"
    torch.save(text_batch(1, 16), inputs)
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "shared-cache")}  # a parent's cache: not used
    proc = subprocess.run([sys.executable, "-m", "harness.measure.worker", "cold-start", "--variant", str(saved),
                           "--inputs", str(inputs), "--threads", "1", "--backend", "torch-compile"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from harness.measure.fresh import RESULT_PREFIX

    result = json.loads(next(line for line in proc.stdout.splitlines()
                             if line.startswith(RESULT_PREFIX))[len(RESULT_PREFIX):])
    assert result["first_forward_ms"] > 0 and result["load_ms"] > 0
    assert not (tmp_path / "shared-cache").exists()  # the compile wrote into the worker's own cache
