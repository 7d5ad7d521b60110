"""What a timed round keeps of its output for the integrity check, on both sides of the worker pipe.

A timing worker sends the captured round's logits back as JSON; the parent recomputes them and
compares (:func:`harness.measure.integrity.check_timed`).  Both take :func:`captured_view`, so a
large output (a masked LM's (B, L, vocab)) crosses the pipe as a bounded, deterministic sample.
No torch import here: the ONNX Runtime and OpenVINO workers never import it.
"""
from __future__ import annotations

from typing import Any

CAPTURE_MAX_VALUES = 65_536
"""At most this many logits per captured round cross the pipe (about 1 MB of JSON)."""


def captured_view(out: Any) -> Any:
    """What a captured round keeps of its output (a torch tensor): the float32 logits (B, C), or,
    when they hold more than :data:`CAPTURE_MAX_VALUES` values (a masked LM's (B, L, vocab): 125M
    at batch 32, seq 128), every s-th value of the flattened logits, s = ceil(numel / the cap).
    Idempotent: a view already within the cap is returned as it is (as float32)."""
    flat = out.float()
    if flat.numel() <= CAPTURE_MAX_VALUES:
        return flat
    return flat.reshape(-1)[::-(-flat.numel() // CAPTURE_MAX_VALUES)]
