"""Progress bars: in place on a terminal, one line per LOG_INTERVAL_S in a log (stderr not a terminal)."""
import io

import pytest
import tqdm.std

from harness.core import progress


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture
def loud(monkeypatch):
    for k in ("CI", "EDGEBENCH_QUIET", "TQDM_DISABLE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(tqdm.std.tqdm, "monitor_interval", 0)  # no monitor thread: the fake clock alone decides


def _run(monkeypatch, stream, steps: int, step_s: float) -> str:
    clock = [1000.0]
    monkeypatch.setattr(tqdm.std, "time", lambda: clock[0])
    monkeypatch.setattr("sys.stderr", stream)
    with progress.bar(total=steps, desc="fine-tuning", unit="step") as pb:
        for _ in range(steps):
            clock[0] += step_s
            pb.update(1)
    return stream.getvalue()


def test_log_gets_one_line_per_interval_not_per_refresh(loud, monkeypatch):
    # 500 steps of 1 s: 500 s of fake time -> about 500 / 30 lines, each a whole line.
    out = _run(monkeypatch, _Stream(tty=False), steps=500, step_s=1.0)
    lines = out.splitlines()
    assert "\r" not in out and out.endswith("\n")
    expected = 500 / progress.LOG_INTERVAL_S
    assert expected - 2 <= len(lines) <= expected + 3, lines
    assert lines[0].startswith("fine-tuning:   0%") and "500/500" in lines[-1]


def test_short_bar_in_a_log_writes_its_first_and_last_line(loud, monkeypatch):
    lines = _run(monkeypatch, _Stream(tty=False), steps=200, step_s=0.01).splitlines()
    assert len(lines) == 2 and "200/200" in lines[-1]


def test_terminal_bar_still_redraws_in_place(loud, monkeypatch):
    # 0.5 s refreshes over 50 s: many in-place redraws, no newline until the bar closes.
    out = _run(monkeypatch, _Stream(tty=True), steps=100, step_s=0.5)
    assert out.count("\r") > 50 and out.count("\n") == 1


def test_quiet_still_writes_nothing(loud, monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert _run(monkeypatch, _Stream(tty=False), steps=50, step_s=1.0) == ""
