"""The one training loop (harness.core.train) on a tiny MLP and random data."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from harness.core import train as training

pytestmark = pytest.mark.usefixtures("one_thread")


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Dropout(0.5), nn.Linear(8, 2)).eval()


def _batches(n: int = 6) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(5, 4, generator=g), torch.randint(0, 2, (5,), generator=g)) for _ in range(n)]


def _loss(model: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


def _config(**kw) -> training.TrainConfig:
    return training.TrainConfig(**{"lr": 1e-2, "steps": 6, "seed": 0, "progress": False, **kw})


def _factors(**kw) -> list[float]:
    f = training.lr_factor(_config(**kw))
    return [f(s) for s in range(kw.get("steps", 6) + 1)]


def test_schedule_values():
    assert _factors(schedule="constant") == [1.0] * 7
    assert _factors(schedule="linear", steps=4) == [1.0, 0.75, 0.5, 0.25, 0.0]
    cosine = _factors(schedule="cosine", steps=4)
    assert cosine[0] == 1.0 and cosine[2] == pytest.approx(0.5) and cosine[4] == 0.0
    assert all(a > b for a, b in itertools.pairwise(cosine))
    assert training.lr_factor(_config(schedule="cosine", steps=4))(9) == 0.0  # held at 0 past the end
    assert _factors(schedule="warmup-linear", steps=6, warmup_steps=2) == [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]


def test_warmup_linear_is_transformers_schedule_bit_for_bit():
    from transformers import get_linear_schedule_with_warmup

    for total, warmup in ((250, 25), (7, 0), (13, 3), (1, 1)):
        opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1e-4)
        hf = get_linear_schedule_with_warmup(opt, warmup, total).lr_lambdas[0]
        ours = training.lr_factor(_config(schedule="warmup-linear", steps=total, warmup_steps=warmup))
        assert [ours(s) for s in range(total + 2)] == [hf(s) for s in range(total + 2)]


def test_the_optimizer_follows_the_schedule():
    model, lrs = _mlp(), []
    opt_step = torch.optim.AdamW.step

    def spy(self, *a, **kw):
        lrs.append(self.param_groups[0]["lr"])
        return opt_step(self, *a, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.optim.AdamW, "step", spy)
        training.train(model, _batches(4), _config(steps=4, schedule="linear"), _loss)
    assert lrs == [1e-2 * f for f in (1.0, 0.75, 0.5, 0.25)]


def test_bad_schedule_is_a_one_line_error_naming_the_known_ones():
    with pytest.raises(ValueError) as err:
        _config(schedule="step")
    msg = str(err.value)
    assert "\n" not in msg and "'step'" in msg
    assert all(name in msg for name in training.SCHEDULES)
    with pytest.raises(ValueError, match="must be >= 0"):
        _config(steps=-1)


def test_param_groups_exempt_1d_and_frozen_parameters():
    model = _mlp()
    model[3].bias.requires_grad_(False)
    decay, no_decay = training.param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert decay["params"] == [model[0].weight, model[3].weight]
    assert no_decay["params"] == [model[0].bias, model[1].weight, model[1].bias]


def test_clipping_is_applied_after_backward(monkeypatch):
    clip = torch.nn.utils.clip_grad_norm_
    seen = []

    def spy(params, max_norm, *a, **kw):
        params = list(params)
        before = clip(params, float("inf"))
        out = clip(params, max_norm, *a, **kw)
        after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
        seen.append((float(before), float(after)))
        return out

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    training.train(_mlp(), _batches(3), _config(steps=3, max_grad_norm=1e-3), _loss)
    assert len(seen) == 3
    assert all(before > 1e-3 and after == pytest.approx(1e-3, rel=1e-3) for before, after in seen)
    seen.clear()
    training.train(_mlp(), _batches(3), _config(steps=3), _loss)  # max_grad_norm None: no clipping
    assert seen == []


def test_hooks_run_in_order_around_every_step():
    events = []

    def loss_fn(model, batch):
        events.append("loss")
        return _loss(model, batch)

    losses = training.train(_mlp(), _batches(), _config(), loss_fn,
                            before_step=lambda s: events.append(("before", s)),
                            after_step=lambda s: events.append(("after", s)))
    assert len(losses) == 6 and all(isinstance(v, float) for v in losses)
    assert events == [e for s in range(6) for e in (("before", s), "loss", ("after", s))]


def test_after_step_sees_the_stepped_weights():
    # e.g. pruning: the optimizer moves a masked weight, after_step puts it back every step
    model = _mlp()
    mask = torch.zeros_like(model[0].weight, dtype=torch.bool)
    mask[:, 0] = True
    moved = []

    @torch.no_grad()
    def after(step):
        moved.append(bool(model[0].weight[mask].abs().sum() > 0))
        model[0].weight.masked_fill_(mask, 0.0)

    with torch.no_grad():
        model[0].weight.masked_fill_(mask, 0.0)
    training.train(model, _batches(), _config(), _loss, after_step=after)
    assert moved == [True] * 6
    assert not model[0].weight[mask].any()


def test_stops_at_steps_without_reading_further_batches():
    taken = []

    def endless():
        for i in itertools.count():
            taken.append(i)
            yield _batches(1)[0]

    losses = training.train(_mlp(), endless(), _config(steps=4), _loss)
    assert len(losses) == 4 and taken == [0, 1, 2, 3]
    # fewer batches than steps: the loop ends with the data
    assert len(training.train(_mlp(), _batches(2), _config(steps=5), _loss)) == 2


def test_seed_makes_runs_identical_and_forked_rng_leaves_the_callers_alone():
    def run(seed, **kw):
        model = _mlp()
        losses = training.train(model, _batches(), _config(seed=seed, **kw), _loss)
        return losses, model.state_dict()

    (la, wa), (lb, wb) = run(0), run(0)
    assert la == lb and all(torch.equal(wa[k], wb[k]) for k in wa)
    lc, _ = run(1)
    assert lc != la  # dropout draws differ
    model = _mlp()
    state = torch.get_rng_state()
    training.train(model, _batches(), _config(), _loss)
    assert torch.equal(torch.get_rng_state(), state)  # fork_rng=True: global RNG untouched

    run(0, fork_rng=False)
    after_unforked = torch.get_rng_state()
    torch.manual_seed(0)
    assert not torch.equal(after_unforked, torch.get_rng_state())  # seeded, then dropout drew from it
    ld, _ = run(0, fork_rng=False)
    assert ld == la  # same seed, same run, forked or not


def test_model_left_in_eval_mode_even_when_the_loss_raises():
    model = _mlp()

    def bad(model, batch):
        assert model.training
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        training.train(model, _batches(), _config(), bad)
    assert not model.training
    training.train(model, _batches(), _config(), _loss)
    assert not model.training


def test_shuffled_gives_a_seeded_permutation_per_epoch():
    a = list(training.shuffled(10, 3, seed=5))
    assert a == list(training.shuffled(10, 3, seed=5)) and a != list(training.shuffled(10, 3, seed=6))
    assert len(a) == 3 and all(sorted(p) == list(range(10)) for p in a) and a[0] != a[1]
