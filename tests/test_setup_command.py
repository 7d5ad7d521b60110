"""``python -m harness setup``: which installers and trainings each flag runs (all stubbed)."""
import pytest

from harness.cli import main
from harness.data import assets, images
from harness.models import finetune, vision_train


@pytest.fixture
def calls(monkeypatch):
    seen = []
    monkeypatch.setattr(assets, "fetch_all", lambda force=False: seen.append("assets"))
    monkeypatch.setattr(images, "ensure_installed", lambda *a, **k: seen.append("fashion-mnist"))
    monkeypatch.setattr(finetune, "baseline_checkpoint", lambda *a, **k: seen.append("finetune"))
    monkeypatch.setattr(vision_train, "baseline_checkpoint", lambda *a, **k: seen.append("vision"))
    return seen


@pytest.mark.parametrize("flags, expected", [
    ([], ["assets", "fashion-mnist", "finetune", "vision"]),
    (["--no-vision"], ["assets", "finetune"]),
    (["--no-finetune"], ["assets", "fashion-mnist"]),
    (["--no-finetune", "--no-vision"], ["assets"]),
])
def test_setup_flags_choose_the_steps(calls, flags, expected):
    assert main(["setup", *flags]) == 0
    assert calls == expected
