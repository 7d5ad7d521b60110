"""Calibration inputs for the runtimes' static INT8 (``int8-static``): real training sequences,
never evaluation data.

Post-training static quantization fixes every activation's scale ahead of time from the ranges
it takes on a calibration set (Jacob et al., 2018); NNCF (``openvino``) and ONNX Runtime's
``quantize_static`` (``onnxruntime``) both read :func:`calibration_feeds`.  The feeds are cheap
to make (a few hundred sequences of the training split); :func:`check_held_out`, which
tokenises every evaluation set, runs only when an artifact is built, not on a cache hit.
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING

from harness.core.errors import HarnessError

if TYPE_CHECKING:
    import numpy as np


@dataclasses.dataclass(frozen=True)
class Calibration:
    """``feeds``: ``{"input_ids": (1, L), "attention_mask": (1, L)}`` int64 arrays, one sequence
    each at its own length L; ``sha256``: of their token ids, in order (part of an artifact's key)."""

    profile: str
    feeds: tuple[dict[str, "np.ndarray"], ...]
    sha256: str

    def facts(self) -> dict[str, object]:
        """What an artifact's metadata records about its calibration set."""
        import numpy as np

        return {"calibration_split": "train", "calibration_size": len(self.feeds),
                "calibration_tokens_median": float(np.median([f["input_ids"].shape[1] for f in self.feeds])),
                "calibration_sha256": self.sha256}


def calibration_feeds(profile: str, size: int) -> Calibration:
    """The first ``size`` sequences of ``profile``'s training split, unpadded (up to the task's
    training length), in the split's order.

    Raises:
        HarnessError: the profile's task has no text training split, or fewer than ``size`` sequences.
    """
    from harness.models.profiles import get_profile
    from harness.models.tasks import TextTask

    task = get_profile(profile).make_task()
    context = task.training_context() if isinstance(task, TextTask) else None
    if context is None:
        raise HarnessError(f"profile {profile} has no text training split to calibrate int8-static on; "
                           "measure int8-dynamic instead")
    feeds = []
    for ids, mask, _ in context.train_batches():
        for row, m in zip(ids, mask):
            n = int(m.sum())
            feeds.append({"input_ids": row[:n].numpy()[None], "attention_mask": m[:n].numpy()[None]})
        if len(feeds) >= size:
            break
    if len(feeds) < size:
        raise HarnessError(f"profile {profile}'s training split has {len(feeds)} sequences, int8-static asks for "
                           f"calibration_size={size}: pass a smaller one (int8-static:calibration_size=N)")
    feeds = feeds[:size]
    digest = hashlib.sha256()
    for f in feeds:
        digest.update(f["input_ids"].tobytes() + b"\0")
    return Calibration(profile, tuple(feeds), digest.hexdigest())


def check_held_out(calibration: Calibration) -> None:
    """Refuse a calibration set holding an example of any of its profile's evaluation sets (all of
    each set, whatever ``--eval-limit``): calibrating on them would grade the quantizer on its own data.

    Raises:
        HarnessError: naming how many sequences leaked and from which evaluation set.
    """
    from harness.models.profiles import get_profile

    task = get_profile(calibration.profile).make_task()
    for eval_set in task.eval_sets:
        held_out = task.eval_token_rows(eval_set)
        leaked = sum(f["input_ids"][0].tobytes() in held_out for f in calibration.feeds)
        if leaked:
            raise HarnessError(f"{leaked} of the {len(calibration.feeds)} calibration sequences of profile "
                               f"{calibration.profile} are examples of its evaluation set {eval_set}: calibrating "
                               "on them would grade the quantizer on its own data; remove them from the training split")
