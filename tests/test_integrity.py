"""Integrity checks between what is timed and what is evaluated (harness.measure.integrity, MLPerf TEST01/TEST04 analogues)."""
import pytest
import torch
import torch.nn as nn

import compressors
from harness.backends import variants
from harness.data.inputs import text_batches
from harness.measure import integrity
from harness.measure.integrity import IntegrityError
from harness.report.integrity import render_integrity
from harness.results.rows import integrity_rows


def _pool(n=8, seq=32):
    g = torch.Generator().manual_seed(3)
    pool = []
    for _ in range(n):
        ids = torch.randint(1000, 5000, (1, seq), generator=g)
        pool.append({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    return pool


def test_weights_hash_follows_content_not_identity(tmp_path, tiny_model):
    sha = integrity.state_sha256(tiny_model)
    q = compressors.build("int8-dynamic", tiny_model)
    variants.save_variant(q, tmp_path, profile="t", variant="int8-dynamic", source_key="k")
    loaded, _ = variants.load_variant(tmp_path)
    assert integrity.state_sha256(loaded) == integrity.state_sha256(q) != sha  # packed INT8 hashed by value
    with torch.no_grad():
        tiny_model.classifier.weight[0, 0] += 1e-6
    assert integrity.state_sha256(tiny_model) != sha


def test_timing_feeds_distinct_inputs_and_an_honest_model_passes(tiny_model, one_thread):
    fn = integrity.TimedForward(tiny_model, _pool(), [[i] for i in range(8)])
    seen = []
    fn.model = _Recorder(tiny_model, seen)
    for _ in range(20):
        fn()
    assert all(not torch.equal(a, b) for a, b in zip(seen, seen[1:]))  # never the same tensor twice in a row
    assert len({tuple(t.flatten().tolist()) for t in seen}) == 8
    fn.model = tiny_model
    ledger = integrity.IntegrityLedger()
    fields = integrity.after_timing(ledger, ("p", "v"), fn, seq_len=32)
    # rounds 0, 2, 6, 14 of 20 sampled; round 14 re-feeds pool entry 6, already checked
    assert fields["logits_checked"] == 3 and fields["distinct_inputs"] == 8
    assert fields["logits_recompute_max_abs_diff"] <= integrity.RECOMPUTE_ATOL
    assert fields["timed_state_sha256"] == integrity.state_sha256(tiny_model)


def test_several_timing_processes_are_checked_with_one_recompute_per_input(tiny_model, one_thread):
    fn = integrity.TimedForward(tiny_model, _pool(), [[i] for i in range(8)])
    for _ in range(8):
        fn()
    seen = []
    recorder = _Recorder(tiny_model, seen)
    sha = integrity.state_sha256(recorder)
    fields = integrity.check_timed(integrity.IntegrityLedger(), ("p", "v"), recorder, fn.pool, fn.indices,
                                   [fn.captured, dict(fn.captured)], [sha, sha], 8, 32)
    assert fields["logits_checked"] == 2 * len(fn.captured) and len(seen) == len(fn.captured)
    with pytest.raises(integrity.IntegrityError, match="timed weights"):  # the second process timed other weights
        integrity.check_timed(integrity.IntegrityLedger(), ("p", "v"), recorder, fn.pool, fn.indices,
                              [fn.captured, fn.captured], [sha, "0" * 64], 8, 32)


class _Recorder(nn.Module):
    def __init__(self, inner, seen):
        super().__init__()
        self.inner, self.seen = inner, seen

    def forward(self, input_ids, attention_mask):
        self.seen.append(input_ids)
        return self.inner(input_ids=input_ids, attention_mask=attention_mask)


class _SkipsWorkWhenTimed(nn.Module):
    """Cheats in 'performance mode': after 3 calls it stops running the encoder."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, input_ids, attention_mask):
        self.calls += 1
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask)
        if 3 < self.calls < 50:
            out.logits = torch.zeros_like(out.logits)
        return out


class _DriftsWhileTimed(nn.Module):
    """Changes its own weights a little on every call (timed != evaluated)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids, attention_mask):
        with torch.no_grad():
            self.inner.classifier.bias.add_(1e-3)
        return self.inner(input_ids=input_ids, attention_mask=attention_mask)


def test_timed_outputs_that_differ_from_the_accuracy_path_are_caught(tiny_model, one_thread):
    fn = integrity.TimedForward(_SkipsWorkWhenTimed(tiny_model), _pool(), None)
    for _ in range(10):
        fn()
    with pytest.raises(IntegrityError, match="timed forward is not the evaluated one"):
        integrity.after_timing(integrity.IntegrityLedger(), ("p", "cheat"), fn, 32)


def test_weights_that_change_between_timing_and_evaluation_fail(tiny_model, one_thread):
    ledger = integrity.IntegrityLedger()
    pool = _pool()
    fn = integrity.TimedForward(tiny_model, pool, [[i] for i in range(8)])
    for _ in range(8):
        fn()
    integrity.after_timing(ledger, ("p", "v"), fn, 128)
    fn2 = integrity.TimedForward(_DriftsWhileTimed(tiny_model), pool, None)
    fn2.sampled = set()  # only the weights check: the drift is what we test
    for _ in range(3):
        fn2()
    with pytest.raises(IntegrityError, match="weights changed between timed measurements"):
        integrity.after_timing(ledger, ("p", "v"), fn2, 128)
    logits = torch.zeros(8, 2)
    with pytest.raises(IntegrityError, match="evaluated weights .* are not the timed ones"):
        integrity.after_evaluation(ledger, ("p", "v"), tiny_model, "imdb-test", logits)


@pytest.mark.parametrize("quantized", [False, True])
def test_the_scored_model_gives_the_timed_logits_like_for_like(tiny_model, one_thread, quantized):
    from harness.models.inference import predict_logits

    model = torch.ao.quantization.quantize_dynamic(tiny_model, {nn.Linear}, dtype=torch.qint8) if quantized \
        else tiny_model
    ledger = integrity.IntegrityLedger()
    pool = _pool(n=8, seq=128)
    fn = integrity.TimedForward(model, pool, [[10 + i] for i in range(8)])  # rows are test reviews 10..17
    for _ in range(20):
        fn()
    integrity.after_timing(ledger, ("p", "v"), fn, 128)
    # The accuracy pass sees the same rows inside padded batches of 32: build N=20 logits with them at 10..17.
    batch = {k: torch.cat([v[k] for v in pool]) for k in ("input_ids", "attention_mask")}
    accuracy = torch.zeros(20, 2)
    accuracy[10:18] = predict_logits(model, [(batch["input_ids"], batch["attention_mask"], None)])
    fields = integrity.after_evaluation(ledger, ("p", "v"), model, "imdb-test", accuracy)
    # same review, same batch size: dynamic INT8 too is held to the recompute tolerance, not a loose one
    assert fields["timed_vs_scored_compared"] == 3  # reviews of pool entries 0, 2, 6
    assert fields["timed_vs_scored_max_abs_diff"] <= integrity.RECOMPUTE_ATOL == fields["timed_vs_scored_tolerance"]
    assert fields["evaluated_state_sha256"] == fields["timed_state_sha256"]
    assert fields["timed_vs_batched_max_abs_diff"] >= 0  # what batching moves: reported, not judged
    # the same weights run another way (dropout on): the scored model is not the timed one
    model.train()
    with pytest.raises(IntegrityError, match="the scored model's logits of timed IMDB test review"):
        integrity.after_evaluation(ledger, ("p", "v"), model, "imdb-test", accuracy)
    model.eval()


class _CachesLastOutput(nn.Module):
    """Returns its previous output when the input equals the previous input (what TEST04 hunts)."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.last = inner, None

    def forward(self, input_ids, attention_mask):
        if self.last is not None and torch.equal(self.last[0], input_ids):
            return self.last[1]
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask)
        self.last = (input_ids, out)
        return out


def test_a_model_that_caches_its_last_output_is_flagged_an_honest_one_is_not(tiny_model, one_thread):
    pool = _pool(n=12, seq=128)
    cheat = integrity.caching_probe(_CachesLastOutput(tiny_model), pool)
    assert cheat["flagged"] and cheat["ratio"] < 0.2 and cheat["p_value"] < 1e-4
    honest = integrity.caching_probe(tiny_model, pool)
    assert not honest["flagged"], honest
    # Timing with distinct inputs per round denies the cache any hit: every timed round ran the model.
    fn = integrity.TimedForward(_CachesLastOutput(tiny_model), pool, None)
    calls = []
    fn.model.inner = _Recorder(tiny_model, calls)
    for _ in range(30):
        fn()
    assert len(calls) == 30


def test_text_batches_are_distinct_full_length_test_reviews():
    reviews = tuple(tuple(range(100 * i, 100 * i + n)) for i, n in enumerate([50, 5, 40, 38, 60, 2, 39]))
    pool, idx = text_batches(2, 40, 10, reviews=reviews, cls_id=1, sep_id=2)
    assert idx == [[0, 2], [3, 4]]  # reviews with >= 38 tokens, two per batch, disjoint; 6 is left over
    for batch, rows in zip(pool, idx):
        assert batch["input_ids"].shape == (2, 40) and bool(batch["attention_mask"].all())
        for row, i in zip(batch["input_ids"].tolist(), rows):
            assert row == [1, *reviews[i][:38], 2]
    with pytest.raises(ValueError, match="too few"):
        text_batches(8, 40, 1, reviews=reviews)


def test_report_states_the_timing_inputs_and_flags_a_weights_mismatch():
    results = [
        {"metric": "latency", "profile": "p", "variant": "v", "timed_state_sha256": "a" * 64, "distinct_inputs": 256,
         "logits_checked": 4},
        {"metric": "quality", "profile": "p", "variant": "v", "evaluated_state_sha256": "b" * 64,
         "timed_vs_scored_max_abs_diff": 2e-6, "timed_vs_scored_tolerance": 1e-5},
        {"metric": "integrity_caching", "profile": "p", "variant": "v", "ratio": 0.99, "p_value": 0.4,
         "flagged": False},
    ]
    rows = integrity_rows(results)
    assert rows[0]["weights_match"] is False and rows[0]["min_distinct_inputs"] == 256
    text = "\n".join(render_integrity({"integrity": rows}))
    assert "**NO**" in text and "never one tensor repeated" in text and "0.99×" in text and "2e-06 (≤ 1e-05)" in text


def test_timed_logits_map_to_the_rows_of_an_eval_limited_set(tiny_model, one_thread):
    """With --eval-limit the accuracy pass holds a cut of the test set: timed review i is row rows[i]."""
    from harness.models.inference import predict_logits

    ledger = integrity.IntegrityLedger()
    pool = _pool(n=8, seq=128)
    fn = integrity.TimedForward(tiny_model, pool, [[10 + i] for i in range(8)])
    for _ in range(20):
        fn()
    integrity.after_timing(ledger, ("p", "v"), fn, 128)  # captured: reviews 10, 12 and 16
    batch = {k: torch.cat([v[k] for v in pool]) for k in ("input_ids", "attention_mask")}
    full = predict_logits(tiny_model, [(batch["input_ids"], batch["attention_mask"], None)])
    cut = torch.stack([full[0], full[2], full[4]])  # the cut keeps reviews 10, 12, 14 as rows 0, 1, 2
    fields = integrity.after_evaluation(ledger, ("p", "v"), tiny_model, "imdb-test", cut, rows={10: 0, 12: 1, 14: 2})
    assert fields["timed_vs_scored_compared"] == 3  # like for like needs no accuracy row: 16 is checked too
    assert fields["timed_vs_batched_max_abs_diff"] <= 1e-3  # reviews 10 and 12 found at their rows
    wrong = integrity.after_evaluation(ledger, ("p", "v"), tiny_model, "imdb-test", cut.flip(0),
                                       rows={10: 0, 12: 1, 14: 2})
    assert wrong["timed_vs_batched_max_abs_diff"] > fields["timed_vs_batched_max_abs_diff"]


def test_a_masked_lms_vocabulary_logits_are_captured_as_a_bounded_view_and_still_checked(one_thread):
    """(B, L, vocab) outputs cross the worker pipe as every s-th value (at most CAPTURE_MAX_VALUES),
    and the recompute check compares the same view: an honest model passes, a changed value fails."""
    import transformers

    from harness.measure import blocks, capture

    torch.manual_seed(0)
    model = transformers.BertForMaskedLM(transformers.BertConfig(
        vocab_size=5000, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)).eval()
    pool = _pool(n=2, seq=32)

    def run(batch):
        with torch.inference_mode():
            return model(**batch).logits

    reply = blocks.time_block(run, pool, 0.0, 1, capture=0)
    kept = torch.tensor(reply["captured"]["0"])
    assert kept.dim() == 1 and 0 < kept.numel() <= capture.CAPTURE_MAX_VALUES < run(pool[0]).numel()
    sha = integrity.state_sha256(model)
    fields = integrity.check_timed(integrity.IntegrityLedger(), ("p", "v"), model, pool, None, [{0: kept}], [sha], 1, 32)
    assert fields["logits_checked"] == 1 and fields["logits_recompute_max_abs_diff"] <= integrity.RECOMPUTE_ATOL
    kept[7] += 1.0
    with pytest.raises(IntegrityError, match="timed logits of input batch 0 differ"):
        integrity.check_timed(integrity.IntegrityLedger(), ("p", "v"), model, pool, None, [{0: kept}], [sha], 1, 32)
