import math

import numpy as np
import pytest

from harness.measure.stats import LatencyStats, bootstrap_ci


def test_latency_stats_on_fixed_samples():
    samples_s = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    s = LatencyStats.from_seconds(samples_s)
    assert s.rounds == 100
    assert s.p50_ms == pytest.approx(50.5)
    assert s.p90_ms == pytest.approx(90.1)
    assert s.p99_ms is None  # 100 rounds: no p99 (max of n instead)
    assert s.p50_ci95[0] < 50.5 < s.p50_ci95[1]
    assert s.mean_ms == pytest.approx(50.5)
    assert s.stddev_ms == pytest.approx(np.std(np.arange(1, 101), ddof=1))
    assert s.cv == pytest.approx(s.stddev_ms / 50.5)
    assert s.min_ms == 1 and s.max_ms == 100


def test_robust_cv_ignores_one_outlier():
    base = [0.010] * 50 + [0.0101] * 49 + [1.0]
    s = LatencyStats.from_seconds(base)
    assert s.cv > 0.5
    assert s.robust_cv < 0.01


@pytest.mark.parametrize("bad", [[0.1], [], [0.1, float("nan")], [0.1, -0.1]])
def test_latency_stats_rejects_bad_samples(bad):
    with pytest.raises(ValueError):
        LatencyStats.from_seconds(bad)


def test_bootstrap_ci_covers_the_mean_and_is_deterministic():
    correct = np.array([1] * 85 + [0] * 15)
    low, high = bootstrap_ci(correct)
    assert low < 0.85 < high
    assert 0.75 < low and high < 0.95
    assert (low, high) == bootstrap_ci(correct)


def test_bootstrap_ci_degenerate_sample():
    assert bootstrap_ci([1, 1, 1]) == (1.0, 1.0)
    with pytest.raises(ValueError):
        bootstrap_ci([])
    assert not math.isnan(bootstrap_ci([0, 1])[0])


def test_p50_block_cv_measures_drift_of_the_median():
    steady = [0.010, 0.011] * 50
    assert LatencyStats.from_seconds(steady).p50_block_cv < 0.05
    drifting = [0.010] * 50 + [0.020] * 50  # the machine got busy half-way
    assert LatencyStats.from_seconds(drifting).p50_block_cv > 0.2
    assert LatencyStats.from_seconds([0.01, 0.02]).as_dict()["p50_block_cv"] is None
