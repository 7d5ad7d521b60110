"""Is the model that was timed the model that was scored?  (MLPerf TEST01 / TEST04 analogues.)

MLPerf's audit tests are the bar: TEST01 logs a sample of outputs in
performance mode and checks them against accuracy mode; TEST04 checks that a
system does not get faster by caching results of repeated inputs.  Ours:

* **Weights as timed and as evaluated** -- :func:`state_sha256` hashes the
  in-memory state dict (packed INT8 weights and quantization parameters
  included; for onnxruntime, which keeps its weights out of Python's reach, the
  bytes its session was created from) after every timed measurement and after the accuracy pass; every
  result row records it (``timed_state_sha256``, ``evaluated_state_sha256``)
  and the item fails (:class:`IntegrityError`) if they differ.
* **Timed outputs** -- the timing loop cycles a pool of distinct batches of real IMDB
  test reviews (``harness.data.inputs.text_batches``: round ``i`` gets batch ``i mod N``,
  never the same tensor twice in a row) and keeps the logits of sampled timed rounds
  (:class:`TimedForward` in process; :func:`harness.measure.interleave.captured_round` in
  the timing workers).  :func:`check_timed` recomputes those batches through the accuracy
  path (``harness.models.inference.predict_logits``): same model, same batch, so they must
  agree to ``atol`` :data:`RECOMPUTE_ATOL` + ``rtol`` :data:`RECOMPUTE_RTOL`.
  :func:`after_evaluation` then has the *scored* model rerun the timed batch-1 seq-128
  reviews like for like -- same review, same batch size -- to the same tolerance, for
  every variant (dynamic INT8's per-batch activation scales move logits between batch 1
  and a padded batch of 32, so comparing with the batched accuracy pass could only be
  loose; that difference is reported, not judged).
* **Result caching** -- :func:`caching_probe` times interleaved blocks of a
  repeated input and of distinct inputs; a repeated input that is
  significantly (one-sided Mann-Whitney U, p < :data:`CACHE_ALPHA`) and
  materially (median ratio < :data:`CACHE_RATIO`) faster is flagged.
"""
from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import Any

import torch
import torch.nn as nn

from harness.core.errors import HarnessError
from harness.measure.capture import captured_view
from harness.models.inference import predict_logits

SAMPLES = 6                # timed rounds whose logits are kept and checked (rounds 0, 2, 6, 14, 30, 62)
RECOMPUTE_ATOL, RECOMPUTE_RTOL = 1e-5, 1e-4  # same model, same batch, same threads: (near-)bitwise
CACHE_ALPHA, CACHE_RATIO = 0.01, 0.8


class IntegrityError(HarnessError):
    """What was timed is not what was evaluated (weights, outputs) or results were cached."""


# --- weights -------------------------------------------------------------------------

def _feed(h: "hashlib._Hash", value: Any) -> None:
    if isinstance(value, torch.Tensor):
        if type(value) is not torch.Tensor and hasattr(value, "__tensor_flatten__"):
            names, ctx = value.__tensor_flatten__()  # torchao quantized tensor subclasses
            h.update(f"{type(value).__name__}{ctx!r}".encode())
            for name in names:
                _feed(h, getattr(value, name))
            return
        t = value.detach().cpu()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        if t.is_quantized:
            if t.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
                h.update(f"{t.q_scale()!r}{t.q_zero_point()}".encode())
            else:
                _feed(h, t.q_per_channel_scales())
                _feed(h, t.q_per_channel_zero_points())
                h.update(str(t.q_per_channel_axis()).encode())
            t = t.int_repr()
        h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, (tuple, list)):
        h.update(f"[{len(value)}".encode())
        for v in value:
            _feed(h, v)
    else:
        h.update(repr(value).encode())


def _forward(model: Any) -> Any:
    """``inputs dict -> (B, C) logits`` for a transformers classifier or a backend runner."""
    if isinstance(model, nn.Module):
        return lambda batch: model(**batch).logits
    return model  # harness.backends Runner: already inputs -> logits


def state_sha256(model: Any) -> str:
    """Hex sha256 of the in-memory state dict: names, dtypes, shapes and bytes of every
    tensor (INT8 values plus scales/zero points for quantized ones).

    A backend runner counts by its in-memory torch model when it has one, else
    by the sha256 of the bytes its session was created from (``loaded_sha256``:
    ONNX Runtime holds the weights inside its session, out of Python's reach).

    Raises:
        IntegrityError: a runner loaded without that fingerprint (``fingerprint=False``).
    """
    if not isinstance(model, nn.Module):
        inner = getattr(model, "model", None)
        if isinstance(inner, nn.Module):
            return state_sha256(inner)
        if getattr(model, "loaded_sha256", None) is None:
            raise IntegrityError(f"the {getattr(model, 'backend', '?')} runner was loaded without fingerprinting "
                                 "its weights (load(..., fingerprint=True)): nothing to check them by")
        return f"loaded:{model.loaded_sha256}"
    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        _feed(h, value)
    return h.hexdigest()


# --- timing with distinct inputs --------------------------------------------------------

class TimedForward:
    """The function ``benchmark.pedantic`` times: round ``i`` runs batch ``i mod len(pool)``.

    Keeps the logits of :data:`SAMPLES` rounds spread geometrically over the
    loop.  The bookkeeping is a modulo and a set lookup per round
    (nanoseconds against a forward of >= 0.1 ms).
    """

    def __init__(self, model: nn.Module, pool: list[dict[str, torch.Tensor]], indices: list[list[int]] | None = None):
        if not pool:
            raise ValueError("empty input pool")
        self.model, self.pool, self.indices = model, pool, indices  # model: the setter below
        self.rounds = 0
        # Rounds 0, 2, 6, 14, 30, ...: spread over the loop whatever its length (>= 4 samples
        # in the suite's minimum of 20 rounds), so work skipped only after a while is caught too.
        self.sampled = {2 ** (j + 1) - 2 for j in range(SAMPLES)}
        self.captured: dict[int, torch.Tensor] = {}

    @property
    def model(self) -> Any:
        return self._model

    @model.setter
    def model(self, model: Any) -> None:
        # Resolved once, not per timed round: the forward is on the hot path.
        self._model, self._call = model, _forward(model)

    def __call__(self) -> None:
        k = self.rounds % len(self.pool)
        sample = self.rounds in self.sampled
        self.rounds += 1
        with torch.inference_mode():
            out = self._call(self.pool[k])
        if sample and k not in self.captured:
            self.captured[k] = out


@dataclasses.dataclass
class IntegrityLedger:
    """What :func:`after_timing` hands on to later checks of the same session
    (one per ``BenchSession``, its ``integrity`` attribute), keyed by (profile, variant).

    ``timed_sha``: sha256 of the state dict first timed.  ``samples``: IMDB test
    index -> (C,) float logits timed at batch 1, seq 128; ``inputs``: the same index -> the
    timed batch (``{"input_ids": (1, 128), "attention_mask": (1, 128)}``).
    """

    timed_sha: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    samples: dict[tuple[str, str], dict[int, torch.Tensor]] = dataclasses.field(default_factory=dict)
    inputs: dict[tuple[str, str], dict[int, dict[str, torch.Tensor]]] = dataclasses.field(default_factory=dict)


def after_timing(ledger: IntegrityLedger, key: tuple[str, str], fn: TimedForward, seq_len: int) -> dict[str, Any]:
    """:func:`check_timed` for an in-process :class:`TimedForward` (its model is the timed one)."""
    return check_timed(ledger, key, fn.model, fn.pool, fn.indices, [fn.captured], [state_sha256(fn.model)],
                       fn.rounds, seq_len)


def check_timed(ledger: IntegrityLedger, key: tuple[str, str], model: Any, pool: list[dict[str, torch.Tensor]],
                indices: list[list[int]] | None, captured: list[dict[int, torch.Tensor]], timed_sha: list[str],
                rounds: int, seq_len: int) -> dict[str, Any]:
    """Check a finished timing: sampled logits recompute identically, weights unchanged.

    ``model`` is this process's copy of what was timed (for a timing worker: the
    same artifact loaded here); ``captured`` holds, per timing process, a map of pool
    index -> the (B, C) logits the timed loop returned for it; ``timed_sha`` the state
    sha256 of each process's timed model.  Each pool index is recomputed here once,
    however many processes captured it.  ``ledger`` is the session's
    record (updated here), ``key`` is (profile, variant).  Returns the fields
    recorded with the result row.  Raises IntegrityError.
    """
    worst = 0.0
    again_of: dict[int, torch.Tensor] = {}
    for k, timed in sorted(((k, v) for process in captured for k, v in process.items()), key=lambda kv: kv[0]):
        if k not in again_of:
            batch = pool[k]
            if "input_ids" in batch:  # text: through the accuracy pass's own function
                again_of[k] = predict_logits(model, [(batch["input_ids"], batch["attention_mask"], None)])
            else:
                with torch.inference_mode():
                    again_of[k] = _forward(model)(batch).float()
        # What a timing process keeps of its output (idempotent: an in-process capture is whole).
        again, timed = captured_view(again_of[k]), captured_view(timed)
        worst = max(worst, (again - timed).abs().max().item())
        if not torch.allclose(again, timed, atol=RECOMPUTE_ATOL, rtol=RECOMPUTE_RTOL):
            raise IntegrityError(f"{key[1]}/{key[0]}: timed logits of input batch {k} differ from the accuracy path's "
                                 f"by up to {worst:.3g} (tolerance {RECOMPUTE_ATOL:g} + {RECOMPUTE_RTOL:g}×|x|): the "
                                 "timed forward is not the evaluated one")
    here = state_sha256(model)
    for sha in timed_sha:
        if sha != here:
            raise IntegrityError(f"{key[1]}/{key[0]}: the timed weights (sha256 {sha[:12]}…) are not the ones "
                                 f"loaded for evaluation ({here[:12]}…)")
        first = ledger.timed_sha.setdefault(key, sha)
        if sha != first:
            raise IntegrityError(f"{key[1]}/{key[0]}: weights changed between timed measurements "
                                 f"(sha256 {first[:12]}… then {sha[:12]}…)")
    if captured and indices is not None and seq_len == 128 and len(pool[0]["input_ids"]) == 1:
        for process in captured:
            for k, v in process.items():
                if v.dim() != 2:  # a strided view of a large output: not a row of class logits
                    continue
                ledger.samples.setdefault(key, {})[indices[k][0]] = v[0].float()
                ledger.inputs.setdefault(key, {})[indices[k][0]] = pool[k]
    return {"timing_inputs": "distinct" if len(pool) > 1 else "repeated", "distinct_inputs": len(pool),
            "rounds_run": rounds, "logits_checked": sum(len(c) for c in captured),
            "logits_recompute_max_abs_diff": worst, "timed_state_sha256": timed_sha[0] if timed_sha else None}


def after_evaluation(ledger: IntegrityLedger, key: tuple[str, str], model: Any, eval_set: str,
                     logits: torch.Tensor, rows: dict[int, int] | None = None) -> dict[str, Any]:
    """Check the accuracy pass against the timed model: same weights, and the scored model gives
    the timed logits on the timed reviews, like for like.

    ``ledger`` is the session's record that :func:`check_timed` filled.  ``model`` is the
    scored runner: each timed review is run through the accuracy path's own function
    (``predict_logits``) at the timed batch size (1) and must match the timed logits to
    :data:`RECOMPUTE_ATOL` + :data:`RECOMPUTE_RTOL` -- for every variant, dynamic INT8
    included.  ``logits`` are the accuracy pass's (N, C) logits on ``eval_set`` (padded
    batches of 32); their difference from the timed logits is reported
    (``timed_vs_batched_max_abs_diff``: what batching moves, e.g. dynamic INT8's per-batch
    activation scales), not judged.  ``rows`` maps an IMDB test index to its row in ``logits``
    when the set was cut (``--eval-limit``).  None: row = index.
    Returns the fields recorded with the quality row.  Raises IntegrityError.
    """
    sha = state_sha256(model)
    timed = ledger.timed_sha.get(key)
    if timed is not None and timed != sha:
        raise IntegrityError(f"{key[1]}/{key[0]}: the evaluated weights (sha256 {sha[:12]}…) are not the timed "
                             f"ones ({timed[:12]}…)")
    out: dict[str, Any] = {"evaluated_state_sha256": sha, "timed_state_sha256": timed}
    samples = ledger.samples.get(key) if eval_set == "imdb-test" else None
    if not samples:
        return out
    inputs = ledger.inputs[key]
    worst, worst_i = 0.0, None
    for i, timed_logits in sorted(samples.items()):
        batch = inputs[i]
        scored = predict_logits(model, [(batch["input_ids"], batch["attention_mask"], None)])[0].float()
        diff = (scored - timed_logits).abs().max().item()
        if diff >= worst:
            worst, worst_i = diff, i
        if not torch.allclose(scored, timed_logits, atol=RECOMPUTE_ATOL, rtol=RECOMPUTE_RTOL):
            raise IntegrityError(f"{key[1]}/{key[0]}: the scored model's logits of timed IMDB test review {i} differ "
                                 f"from the timed ones by {diff:.3g} (tolerance {RECOMPUTE_ATOL:g} + "
                                 f"{RECOMPUTE_RTOL:g}×|x|, same review at the timed batch size): the scored model "
                                 "is not the timed one")
    out.update(timed_vs_scored_compared=len(samples), timed_vs_scored_max_abs_diff=worst,
               timed_vs_scored_tolerance=RECOMPUTE_ATOL)
    in_set = {i: v for i, v in samples.items() if rows is None or i in rows}
    if in_set:
        row = (lambda i: i) if rows is None else rows.__getitem__
        out["timed_vs_batched_max_abs_diff"] = max((logits[row(i)].float() - v).abs().max().item()
                                                   for i, v in in_set.items())
    return out


# --- TEST04: result caching ----------------------------------------------------------

def caching_probe(model: Any, pool: list[dict[str, torch.Tensor]], blocks: int = 6,
                  per_block: int = 6) -> dict[str, Any]:
    """Time a repeated input against distinct inputs, in alternating blocks (drift hits both).

    Repeated blocks run ``pool[0]`` ``per_block + 1`` times and drop the first
    round (the input is new to the model then); distinct blocks run fresh pool
    entries.  Returns ``p50_repeated_ms``, ``p50_distinct_ms``, ``ratio``
    (repeated / distinct), ``p_value`` (one-sided Mann-Whitney U, "repeated is
    faster") and ``flagged`` (p < CACHE_ALPHA and ratio < CACHE_RATIO).
    Raises ValueError when the pool has fewer than 2 batches.
    """
    import statistics

    from scipy.stats import mannwhitneyu

    if len(pool) < 2:
        raise ValueError("the caching probe needs at least 2 distinct input batches")
    repeated: list[float] = []
    distinct: list[float] = []
    nxt = 1

    call = _forward(model)

    def once(batch: dict[str, torch.Tensor]) -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            call(batch)
        return time.perf_counter() - start

    once(pool[0])  # warm-up
    for _ in range(blocks):
        times = [once(pool[0]) for _ in range(per_block + 1)]
        repeated += times[1:]
        for _ in range(per_block):
            distinct.append(once(pool[nxt]))
            nxt = nxt + 1 if nxt + 1 < len(pool) else 1
    p = float(mannwhitneyu(repeated, distinct, alternative="less").pvalue)
    rep, dis = statistics.median(repeated) * 1e3, statistics.median(distinct) * 1e3
    ratio = rep / dis if dis > 0 else 1.0
    return {"p50_repeated_ms": rep, "p50_distinct_ms": dis, "ratio": ratio, "p_value": p,
            "rounds": len(repeated) + len(distinct), "flagged": bool(p < CACHE_ALPHA and ratio < CACHE_RATIO)}
