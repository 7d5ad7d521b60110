"""Step detection in a run-by-run history (harness.gate.steps)."""
import numpy as np
import pytest

from harness.gate.steps import detect_steps, levels, noise_scale


def test_a_step_is_found_where_it_is_with_its_size():
    rng = np.random.default_rng(0)
    y = np.r_[1 + 0.01 * rng.standard_normal(12), 1.2 + 0.01 * rng.standard_normal(8)]
    (step,) = detect_steps(y)
    assert step.index == 12
    assert step.change == pytest.approx(0.2, abs=0.02)


def test_two_steps_up_and_back_down():
    rng = np.random.default_rng(1)
    y = np.r_[np.full(8, 10.0), np.full(6, 13.0), np.full(8, 10.0)] * (1 + 0.01 * rng.standard_normal(22))
    steps = detect_steps(y)
    assert [s.index for s in steps] == [8, 14]
    assert steps[0].change > 0.25 and steps[1].change < -0.2


@pytest.mark.parametrize("seed", range(20))
def test_noise_alone_has_no_step(seed):
    y = 1 + 0.03 * np.random.default_rng(seed).standard_normal(25)
    assert detect_steps(y, threshold=0.0) == []


def test_one_outlying_run_moves_no_level():
    y = [1.0, 1.01, 0.99, 1.0, 1.6, 1.0, 1.01, 0.99, 1.0, 1.0]
    assert detect_steps(y) == []
    assert len(levels(y)) == 1


def test_a_change_below_the_threshold_is_not_reported():
    y = [1.0] * 6 + [1.03] * 6
    assert [s.index for s in detect_steps(y, threshold=0.0)] == [6]
    assert detect_steps(y, threshold=0.05) == []


def test_precise_points_weigh_more():
    # The last three points are noisy (wide CIs, small weight); unweighted they look like a step.
    y = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.3, 1.25, 1.32]
    assert [s.index for s in detect_steps(y)] == [6]
    assert detect_steps(y, weights=[100] * 6 + [0.01] * 3) == []


def test_short_series_and_bad_weights():
    assert detect_steps([1.0, 2.0]) == []
    assert noise_scale([1.0]) == 0.0
    with pytest.raises(ValueError, match="weights"):
        levels([1.0, 2.0, 3.0], weights=[1.0, 0.0, 1.0])
