import pytest

from harness.data.inputs import text_batch
from harness.measure.rounds import plan_rounds
from harness.results import fingerprint


def test_fingerprint_has_the_timing_keys_and_a_stable_id():
    info = fingerprint.collect(threads=1)
    for key in fingerprint.TIMING_KEYS:
        assert key in info
    assert info["threads"] == 1
    assert info["machine_id"] == fingerprint.machine_id(info)
    other = dict(info, threads=2)
    assert fingerprint.machine_id(other) != info["machine_id"]
    assert fingerprint.timing_mismatch(info, other) == ["threads"]
    # facts that do not change timings do not change the id
    assert fingerprint.machine_id(dict(info, python="0.0")) == info["machine_id"]


def test_plan_rounds_fills_the_target_and_respects_the_minimum():
    calls = []
    plan = plan_rounds(lambda: calls.append(1), target_s=0.01, min_rounds=7, max_rounds=50)
    assert len(calls) == 2  # two probe calls only
    assert 7 <= plan.rounds <= 50 and plan.warmup_rounds >= 2
    with pytest.raises(ValueError):
        plan_rounds(lambda: None, target_s=0, min_rounds=5)
    with pytest.raises(ValueError):
        plan_rounds(lambda: None, target_s=1, min_rounds=1)


def test_text_batch_has_the_exact_shape_and_special_tokens():
    stream = tuple(range(1000, 1100))
    batch = text_batch(2, 10, stream=stream, cls_id=101, sep_id=102)
    ids = batch["input_ids"]
    assert ids.shape == (2, 10) and batch["attention_mask"].sum() == 20
    assert ids[:, 0].tolist() == [101, 101] and ids[:, -1].tolist() == [102, 102]
    assert ids[0, 1:-1].tolist() == list(range(1000, 1008))
    assert ids[1, 1:-1].tolist() == list(range(1008, 1016))  # rows do not repeat text
    with pytest.raises(ValueError):
        text_batch(20, 10, stream=stream)
    with pytest.raises(ValueError):
        text_batch(1, 2, stream=stream)


def test_real_inputs_are_imdb_tokens():
    batch = text_batch(1, 128)
    assert batch["input_ids"].shape == (1, 128)
    assert batch["input_ids"][0, 0].item() == 101  # [CLS] of the uncased BERT vocabulary
