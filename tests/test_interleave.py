"""Interleaved timing: the worker protocol, randomized repetitions, paired ratios and CI budgets."""
import io
import json

import numpy as np
import pytest
import torch

import compressors
from harness.backends import variants
from harness.gate import budgets
from harness.measure import blocks, interleave
from harness.measure.fresh import MeasurementError
from harness.measure.stats import AA_BOUNDS, paired_ratio, process_groups, quantile_ci
from harness.results.rows import rows_from_results


# --- statistics on realistic samples ---------------------------------------------------

def _ar1_blocks(rng, reps, phi=0.8, drift_sd=0.08):
    """Per-repetition machine speed: AR(1) on the log scale (slow drift) around a run-level lognormal offset."""
    offset, x, out = rng.normal(0, 0.05), 0.0, []
    for _ in range(reps):
        x = phi * x + rng.normal(0, drift_sd)
        out.append(offset + x)
    return np.array(out)


def test_paired_ratio_cancels_drift_that_unpaired_ratios_do_not():
    rng = np.random.default_rng(0)
    covered, unpaired_off = 0, 0
    for _ in range(200):
        speed = _ar1_blocks(rng, 15)
        # Two cells in the same repetitions share the drift; within-block noise is 2%.
        fp32 = 0.020 * np.exp(speed + rng.normal(0, 0.02, 15))
        int8 = 0.014 * np.exp(speed + rng.normal(0, 0.02, 15))
        r = paired_ratio(int8, fp32)
        covered += r.low <= 0.7 <= r.high
        # The old design: one block of each, taken at different times.
        unpaired_off += abs(int8[-1] / fp32[0] / 0.7 - 1) > 0.05
    assert covered >= 180  # a 95% interval, ~90%+ coverage with 15 repetitions
    assert unpaired_off >= 60  # single blocks taken apart in time drift well past 5%


def test_paired_ratio_rejects_bad_blocks():
    with pytest.raises(ValueError, match="equal-length"):
        paired_ratio([1.0, 1.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="at least 3"):
        paired_ratio([1.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        paired_ratio([1.0, 0.0, 1.0], [1.0, 1.0, 1.0])
    same = paired_ratio([2.0] * 4, [1.0] * 4)
    assert (same.ratio, same.low, same.high, same.n) == (2.0, 2.0, 2.0, 4)


def test_two_stage_bootstrap_covers_a_per_process_offset_the_one_stage_one_hides():
    """A/A with 3 worker processes per cell used in turn, each process pair carrying its own
    offset (memory layout, measured at up to +-4% with one process): the truth is 1.0."""
    rng = np.random.default_rng(3)
    reps, procs = 60, 3
    groups = process_groups(reps, procs)
    one = two = 0
    widths = []
    for _ in range(100):
        offset = rng.normal(0, 0.025, procs)  # log offset of each process pair
        logs = offset[groups] + rng.normal(0, 0.02, reps)
        aa, fp32 = 0.02 * np.exp(logs), np.full(reps, 0.02)
        one_stage, two_stage = paired_ratio(aa, fp32, n_resamples=500), paired_ratio(aa, fp32, n_resamples=500, groups=groups)
        assert two_stage.ratio == one_stage.ratio  # the point estimate is the same pooled median
        widths.append((two_stage.high - two_stage.low) / (one_stage.high - one_stage.low))
        one += one_stage.low <= 1.0 <= one_stage.high
        two += two_stage.low <= 1.0 <= two_stage.high
    assert np.median(widths) > 1.5  # the process level widens the interval
    assert one <= 50  # resampling repetitions alone calls the offsets precision
    # With 3 groups a percentile bootstrap still under-covers (77% here; 89% with 6): the A/A control,
    # timed by processes of its own, is what catches a run whose process offsets dominate.
    assert two >= 70


def test_process_groups_label_each_repetition_by_its_process_pair():
    assert process_groups(5, 2) == [0, 1, 0, 1, 0]
    assert process_groups(5, 1) is None
    assert process_groups(6, 3, 2) is None  # crossed processes: one-stage bootstrap
    with pytest.raises(ValueError, match="label every repetition"):
        paired_ratio([1.0, 1.1, 1.2], [1.0, 1.0, 1.0], groups=[0, 1])
    same_process = paired_ratio([1.0, 1.1, 1.2, 0.9], [1.0] * 4, groups=[0, 0, 0, 0])
    assert same_process == paired_ratio([1.0, 1.1, 1.2, 0.9], [1.0] * 4)  # one group: one stage


def test_quantile_ci_covers_the_true_quantile_and_refuses_an_unreachable_tail():
    rng = np.random.default_rng(1)
    true_p90 = -np.log(0.1)  # exponential(1)
    hits = sum(lo <= true_p90 <= hi for lo, hi in (quantile_ci(rng.exponential(1, 400), 0.9)[1:] for _ in range(300)))
    assert 270 <= hits <= 300
    _, lo, hi = quantile_ci(rng.exponential(1, 100), 0.99)
    assert lo is not None and hi is None  # x_(101) does not exist: no upper bound from 100 rounds


# --- worker side -------------------------------------------------------------------------

class _Runner:
    def __init__(self):
        self.model = torch.nn.Linear(4, 2)

    def __call__(self, batch):
        return self.model(batch["x"])

    def session_info(self):
        return {"runtime": "fake"}


def _serve(tmp_path, requests):
    pool = tmp_path / "pool.pt"
    torch.save([{"x": torch.randn(1, 4)} for _ in range(3)], pool)
    lines = "".join(json.dumps({**r, "pool": str(pool)} if r.get("op") == "block" else r) + "\n" for r in requests)
    out = io.StringIO()
    assert blocks.serve(_Runner, io.StringIO(lines), out) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_worker_serves_blocks_state_and_errors(tmp_path):
    replies = _serve(tmp_path, [{"op": "state"}, {"op": "block", "seconds": 0.01, "min_rounds": 4, "capture": 2},
                                {"op": "block", "seconds": 0.0, "min_rounds": 2}, {"op": "nonsense"}, {"op": "quit"},
                                {"op": "state"}])
    state, first, second, bad = replies  # nothing after quit
    assert len(state["state_sha256"]) == 64 and state["session"] == {"runtime": "fake"} and "gc.freeze" in state["gc"]
    assert len(first["samples_s"]) >= 4 and all(s > 0 for s in first["samples_s"])
    assert first["wall_s"] >= sum(first["samples_s"]) and first["own_cpu_s"] >= 0 and "steal_s" in first
    assert list(first["captured"]) == ["2"] and np.array(first["captured"]["2"]).shape == (1, 2)  # timed round 2
    assert len(second["samples_s"]) == 2 and second["captured"] == {}
    assert bad == {"error": "unknown request 'nonsense'"}


def test_every_block_is_preceded_by_untimed_rounds_on_one_example():
    seen = []

    def run(batch):
        seen.append(tuple(batch["x"].shape))
        return batch["x"]

    pool = [{"x": torch.randn(8, 4), "scale": torch.tensor(2.0)}]
    reply = blocks.time_block(run, pool, seconds=0.0, min_rounds=3)
    warm = reply["warmup_rounds"]
    # The warm-up runs first, on one example; the timed rounds run the whole batch and only they are timed.
    assert warm >= 1 and seen[:warm] == [(1, 4)] * warm and seen[warm:] == [(8, 4)] * 3
    assert len(reply["samples_s"]) == 3
    assert "every block" in blocks.WARMUP_POLICY


def test_reload_loads_the_model_anew_and_warms_up_again(tmp_path):
    loads = []

    def load():
        loads.append(1)
        return _Runner()

    pool = tmp_path / "pool.pt"
    torch.save([{"x": torch.randn(1, 4)}], pool)
    reqs = [{"op": "block", "pool": str(pool), "seconds": 0, "min_rounds": 1, "reload": r} for r in (False, True)]
    out = io.StringIO()
    blocks.serve(load, io.StringIO("".join(json.dumps(r) + "\n" for r in reqs)), out)
    assert len(loads) == 2 and all("samples_s" in json.loads(x) for x in out.getvalue().splitlines())


def test_a_failing_request_is_answered_and_the_worker_goes_on(tmp_path):
    out = io.StringIO()
    lines = json.dumps({"op": "block", "pool": str(tmp_path / "missing.pt"), "seconds": 0, "min_rounds": 1}) + "\n"
    blocks.serve(_Runner, io.StringIO(lines + json.dumps({"op": "state"}) + "\n"), out)
    err, state = [json.loads(x) for x in out.getvalue().splitlines()]
    assert err["error"].startswith("FileNotFoundError") and "state_sha256" in state


# --- parent side: real workers on a tiny saved variant -----------------------------------

@pytest.fixture
def saved(tmp_path, tiny_model, tiny_inputs):
    out = {}
    for name in ("fp32", "int8-dynamic"):
        d = tmp_path / name
        variants.save_variant(compressors.build(name, tiny_model), d, profile="t", variant=name, source_key="k")
        out[name] = d
    pool = tmp_path / "pool.pt"
    torch.save([tiny_inputs], pool)
    return out, pool


def test_a_campaign_shuffles_repetitions_and_pairs_blocks(saved):
    dirs, pool = saved
    workers = {"fp32": interleave.TimingWorker("fp32", dirs["fp32"], "torch", 1),
               "fp32~aa": interleave.TimingWorker("fp32~aa", dirs["fp32"], "torch", 1),
               "int8": [interleave.TimingWorker(f"int8#{i}", dirs["int8-dynamic"], "torch", 1) for i in range(2)]}
    try:
        assert workers["fp32"].state["state_sha256"] == workers["fp32~aa"].state["state_sha256"]
        campaign = interleave.Campaign("t", workers, pool, block_s=0.01, min_rounds=2, seed=3)
        campaign.run(min_repetitions=6, cap_s=0.0, targets=[], precision=1.0, pairs=[("int8", "fp32")])
    finally:
        for w in [workers["fp32"], workers["fp32~aa"], *workers["int8"]]:
            w.close()
    assert campaign.repetitions == 6 and campaign.stable in (True, False)
    assert all(sorted(order) == sorted(workers) for order in campaign.order)
    assert len({tuple(o) for o in campaign.order}) > 1  # shuffled, not one fixed order
    record = campaign.record("int8")
    assert record["timing_design"] == "interleaved" and len(record["block_p50_ms"]) == 6
    assert [b["repetition"] for b in record["blocks"]] == list(range(6))
    # repetitions 0, 1 and 3 send one timed round back, whichever process timed them
    assert len(campaign.captured["fp32"]) == 3 and len(campaign.captured["int8"]) == 3
    assert all(len(c) == 1 for c in campaign.captured["int8"]) and campaign.record("int8")["processes"] == 2
    assert campaign.ratio("int8", "fp32").n == 6


def test_captured_rounds_spread_over_the_campaign_and_through_the_blocks():
    picks = {rep: interleave.captured_round(rep, 9) for rep in range(64)}
    assert [r for r, c in picks.items() if c is not None] == [0, 1, 3, 7, 15, 31, 63]
    assert [picks[r] for r in (0, 1, 3, 7, 15, 31, 63)] == [0, 1, 3, 7, 6, 4, 0]  # rep mod 9: always a run round
    assert interleave.captured_round(3, 1) == 0


def test_a_worker_that_cannot_load_is_one_clear_error(tmp_path):
    worker = interleave.TimingWorker("broken", tmp_path / "nothing-here", "torch", 1)  # started, not waited for
    with pytest.raises(MeasurementError, match="timing worker for broken failed"):
        worker.state


class _FakeWorker:
    """Replies blocks whose time is ``base`` x a shared drift; the first ``noisy`` replies carry other-CPU load."""

    def __init__(self, base, drift, noisy=0):
        self.base, self.drift, self.noisy, self.calls, self.state = base, drift, noisy, 0, {"gc": "x"}

    def request(self, req):
        self.calls += 1
        t = self.base * self.drift()
        busy = 0.5 if self.calls <= self.noisy else 0.0
        return {"samples_s": [t] * 3, "wall_s": 3 * t, "busy_s": busy + 3 * t, "own_cpu_s": 3 * t,
                "steal_s": 0.0, "captured": {}}


def test_an_undecided_target_buys_repetitions_until_the_cap_and_noisy_blocks_are_retimed(tmp_path):
    rng = np.random.default_rng(5)
    drift = lambda: float(np.exp(rng.normal(0, 0.05)))  # noqa: E731 -- 5% block-to-block noise
    workers = {"fp32": _FakeWorker(0.01, drift, noisy=1), "int8": _FakeWorker(0.009, drift)}
    campaign = interleave.Campaign("t", workers, tmp_path / "p.pt", 0.01, 1, seed=0)
    # Bound exactly at the true ratio: never decided, so the campaign runs to its (tiny) cap.
    campaign.run(5, cap_s=0.0, targets=[interleave.Target("int8", "fp32", 0.9)], precision=1.0,
                 pairs=[("int8", "fp32")])
    assert campaign.repetitions == 5 and campaign.stable is False
    assert campaign.blocks["fp32"][0].retimed == 1 and not campaign.blocks["fp32"][0].flagged
    same_seed = interleave.Campaign("t", {k: _FakeWorker(0.01, drift) for k in workers}, tmp_path / "p.pt", 0.01, 1,
                                    seed=0)
    same_seed.run(5, cap_s=0.0, targets=[], precision=1.0, pairs=[])
    assert same_seed.order == campaign.order  # the shuffles are the seed's, whatever was timed
    decided = interleave.Campaign("t", {"fp32": _FakeWorker(0.01, drift), "int8": _FakeWorker(0.005, drift)},
                                  tmp_path / "p.pt", 0.01, 1, seed=0)
    decided.run(5, cap_s=60, targets=[interleave.Target("int8", "fp32", 0.9)], precision=0.5, pairs=[("int8", "fp32")])
    assert decided.repetitions == 5 and decided.stable is True


# --- rows and budgets on the paired CIs ------------------------------------------------------

def _run(int8_blocks, aa_blocks, fp32_blocks=(10.0,) * 9):
    common = {"profile": "minilm-l6", "backend": "torch", "metric": "latency", "seq_len": 128,
              "p90_ms": 1.0, "p99_ms": None, "cv": 0.01, "timing_design": "interleaved", "campaign_stable": True}
    return [{**common, "variant": "fp32", "p50_ms": 10.0, "block_p50_ms": list(fp32_blocks),
             "aa_block_p50_ms": list(aa_blocks)},
            {**common, "variant": "int8-dynamic", "p50_ms": 7.0, "block_p50_ms": list(int8_blocks)}]


def _budget(limit):
    return budgets.Budget("minilm-l6", "int8-dynamic", "p50_ms@128", "max_ratio", limit, "test", 1)


@pytest.mark.parametrize("int8, limit, state", [
    ((7.0, 7.1, 6.9, 7.0, 7.05, 6.95, 7.0, 7.0, 7.0), 0.75, "pass"),
    ((7.0, 7.1, 6.9, 7.0, 7.05, 6.95, 7.0, 7.0, 7.0), 0.65, "fail"),
    ((7.0, 7.4, 6.6, 7.0, 7.3, 6.7, 7.2, 6.8, 7.0), 0.70, "inconclusive"),
])
def test_a_ratio_budget_judges_the_paired_ci(int8, limit, state):
    rows = rows_from_results(_run(int8, (10.0,) * 9))
    fp32 = rows[0]
    assert fp32["aa_ratio"]["latency@128"]["ratio"] == 1.0 and fp32["aa_passed"] is True
    assert rows[1]["p50_ratio"]["128"]["ratio"] == pytest.approx(0.7)
    verdict = budgets.evaluate(_budget(limit), "minilm-l6", "int8-dynamic", rows)
    assert verdict.state == state and verdict.passed is (state == "pass")
    assert "95% CI" in verdict.message and "A/A" in verdict.message


def test_a_failed_aa_control_makes_every_timing_verdict_too_noisy():
    aa = (10.0, 10.8, 10.6, 10.9, 10.7, 10.5, 10.8, 10.6, 10.7)  # the same fp32, ~7% slower: drift within the run
    rows = rows_from_results(_run((7.0,) * 9, aa))
    assert rows[0]["aa_passed"] is False and AA_BOUNDS == (0.97, 1.03)
    verdict = budgets.evaluate(_budget(0.9), "minilm-l6", "int8-dynamic", rows)
    assert verdict.state == "too noisy" and verdict.passed is None and verdict.label == "TOO NOISY"  # never a pass
    clear = budgets.evaluate(_budget(0.5), "minilm-l6", "int8-dynamic", rows)  # 0.7x vs <= 0.5x: beyond any drift
    assert clear.state == "fail" and clear.passed is False and "widened by the A/A" in clear.message


def test_a_run_saved_before_interleaving_is_judged_on_its_point_ratio_and_says_so():
    old = [{k: v for k, v in r.items() if k not in ("timing_design", "block_p50_ms", "aa_block_p50_ms")}
           for r in _run((7.0,) * 9, (10.0,) * 9)]
    rows = rows_from_results(old)
    assert rows[1]["timing_design"] == "single-block" and rows[1]["p50_ratio"] == {}
    verdict = budgets.evaluate(_budget(0.75), "minilm-l6", "int8-dynamic", rows)
    assert verdict.passed is True and "single-block timing, no CI" in verdict.message


def test_cpu_flags_condition_a_budget_on_the_recorded_isa(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text('schema = 1\n[[budget]]\nvariant = "int8-dynamic"\nmetric = "p50_ms@128"\nmax_ratio = 0.8\n'
                    'cpu_flags = ["avx512_vnni"]\nwhy = "x"\n[[budget]]\nvariant = "int8-dynamic"\n'
                    'metric = "p50_ms@128"\nmax_ratio = 0.9\ncpu_flags = ["!avx512_vnni"]\nwhy = "y"\n')
    loaded = budgets.load_budgets(path)
    vnni = budgets.applicable(loaded, "minilm-l6", "int8-dynamic", True, isa_flags=["avx2", "avx512_vnni"])
    avx2 = budgets.applicable(loaded, "minilm-l6", "int8-dynamic", True, isa_flags=["avx2"])
    assert [b.limit for b in vnni] == [0.8] and [b.limit for b in avx2] == [0.9]
    path.write_text(path.read_text().replace('"avx512_vnni"]', '"avx9000"]', 1))
    with pytest.raises(Exception, match="cpu_flags must be a list of ISA flags"):
        budgets.load_budgets(path)


# --- calibration ---------------------------------------------------------------------------

def test_the_slowdown_control_keeps_the_outputs_and_adds_the_work(tiny_model, tiny_inputs):
    from torch.utils.flop_counter import FlopCounterMode

    def flops(m):
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            out = m(**tiny_inputs).logits
        return counter.get_total_flops(), out

    base_flops, base = flops(tiny_model)
    slow = compressors.build("slowdown@0.5", tiny_model)
    slow_flops, out = flops(slow)
    assert torch.equal(out, base)
    assert 1.2 < slow_flops / base_flops <= 1.5  # half the Linear work again (Linears are most, not all, FLOPs)
    with pytest.raises(compressors.CompressionError, match="in \\(0, 1\\]"):
        compressors.build("slowdown@0", tiny_model)


def _cal_run(rng, slow=1.09, aa_sd=0.004):
    from harness import calibrate

    def v(r):
        return {"ratio": r, "ci95": [r * 0.99, r * 1.01], "n": 9}
    aa = float(np.exp(rng.normal(0, aa_sd)))
    return {"A/A p50_ratio@128": v(aa), "int8-dynamic p50_ratio@128": v(0.65 * float(np.exp(rng.normal(0, 0.01)))),
            f"{calibrate.CONTROL} p50_ratio@128": v(slow * float(np.exp(rng.normal(0, 0.01))))}


def test_calibration_counts_false_alarms_and_detections():
    from harness import calibrate
    from harness.core.errors import HarnessError

    rng = np.random.default_rng(7)
    cal = calibrate.analyse([_cal_run(rng) for _ in range(6)])
    assert cal.false_alarms["int8-dynamic p50_ratio@128"] == (0, 6)
    assert cal.false_alarms["A/A p50_ratio@128"] == (0, 6)
    assert cal.detected["p50_ratio@128"] == (6, 6)  # 9% slower than the A/A history, beyond its bound
    assert cal.in_run_detected["p50_ratio@128"] == (6, 6)
    missed = calibrate.analyse([_cal_run(rng, slow=1.0) for _ in range(6)])
    assert missed.detected["p50_ratio@128"][0] == 0  # no change: nothing to detect
    text = calibrate.render(cal, {"machine_id": "m"}, "pytest …")
    assert "| int8-dynamic p50_ratio@128 | 0/6 (0%; ≤ 39% at 95%) |" in text  # 1 - 0.05 ** (1 / 6) = 0.393
    assert "| p50_ratio@128 | 6/6 (100%; ≥ 61% at 95%) |" in text
    with pytest.raises(HarnessError, match="at least 4 runs"):
        calibrate.analyse([_cal_run(rng)] * 3)


def test_calibrate_add_counts_the_kept_runs_before_running_anything(tmp_path):
    from harness import calibrate
    from harness.core.errors import HarnessError

    with pytest.raises(HarnessError, match="0 kept .* --runs 1; pass --runs 4 or more"):
        calibrate.calibrate(1, tmp_path, add=True)
    runs = tmp_path / "runs"
    runs.mkdir()
    for n in (1, 2, 3):
        (runs / f"run-{n:02d}.json").write_text("{}")
    with pytest.raises(HarnessError, match="3 kept .* --runs 0; pass --runs 1 or more"):
        calibrate.calibrate(0, tmp_path, add=True)
    (runs / calibrate.INDEX).write_text("{not json")
    with pytest.raises(HarnessError, match="is not valid JSON"):
        calibrate.calibrate(1, tmp_path, add=True, extra=["--collect-only"])
    assert sorted(p.name for p in runs.iterdir()) == ["commands.json", "run-01.json", "run-02.json", "run-03.json"]


def test_calibration_values_need_the_aa_control():
    from harness import calibrate
    from harness.core.errors import HarnessError

    rows = rows_from_results(_run((7.0,) * 9, (10.0,) * 9))
    values = calibrate.run_values(rows)
    assert values["A/A p50_ratio@128"]["ratio"] == 1.0 and values["int8-dynamic p50_ratio@128"]["n"] == 9
    rows[0]["aa_ratio"] = {}
    with pytest.raises(HarnessError, match="no A/A control"):
        calibrate.run_values(rows)


def test_blocks_pair_only_within_one_campaign():
    run = _run((7.0,) * 9, (10.0,) * 9)
    run[0]["campaign_id"], run[1]["campaign_id"] = "a", "b"  # e.g. a resumed run: same shape, other campaign
    rows = rows_from_results(run)
    assert rows[1]["p50_ratio"] == {}
    assert budgets.evaluate(_budget(0.75), "minilm-l6", "int8-dynamic", rows).state == "not measured"
